"""Saved runs: a Config and its History as one directory (JSON + NPZ), written atomically, read back exactly.

A run saved at ``path`` is a directory holding two files:

- ``run.json``: ``schema_version``, the :class:`~toyfdiv.config.Config`, the summary row
  (:func:`toyfdiv.build.summary_table`), the metric names, the minimised divergence,
  the train call's own config, wall-clock seconds, and ``sha256``: one checksum over both
  parts, SHA-256(canonical JSON of every other field ‖ the NPZ's bytes);
- ``arrays.npz``: the metric arrays (``m0``, ``m1``, … in the JSON's order), the recorded
  ``step`` array and the final ``params`` θ — float64, read back bit for bit.

The JSON is strict (no NaN/Infinity literals: a non-finite number is written as the string
"Infinity", "-Infinity" or "NaN").  Nothing is pickled; loading executes nothing.

**Atomicity.**  Both files are written into a new hidden directory beside the destination
(``.<name>.<pid>.<token>.tmp``), flushed to disk, and the directory is renamed into place.
Overwriting first renames the old run aside (``….old``), then renames the new one into place,
then deletes the old one.  A save killed at any point therefore leaves either the old run or
the complete new one: the next :func:`save_run`, :func:`load_run` or :func:`find_runs` on that
path removes what a dead saver left behind and, if the kill fell between the two renames,
moves the old run back.  Temporaries of a live saver (another process) are left alone.

:func:`load_run` validates the whole run before building anything: the checksum, the schema
(exact field set, types), the Config, the metric names, and the arrays' keys, dtypes and shapes
(no NaN; finite θ of the policy's size).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import secrets
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .build import as_task, make_policy, summary_table
from .config import Config, loads_json
from .training import History

__all__ = ["SCHEMA_VERSION", "Run", "save_run", "load_run", "find_runs", "write_json_atomic"]

#: The version of the saved-run format this toyfdiv writes and reads.
SCHEMA_VERSION = 2
RUN_JSON, RUN_NPZ = "run.json", "arrays.npz"
#: The fields of run.json, in the order written.
FIELDS = ("schema_version", "config", "summary", "metrics", "divergence", "seconds", "train_config", "sha256")
#: A run.json larger than this is refused unread (a real one is a few KiB).
MAX_JSON_BYTES = 16 * 2**20
_SUMMARY_TEXT = ("divergence", "alignment_key")
_SUMMARY_NUMBERS = ("final_divergence", "alignment", "kl_from_base", "entropy", "distinct_100", "seconds")


class Run(NamedTuple):
    """A loaded run: its Config, its History (final policy rebuilt from θ) and saved summary row."""

    config: Config
    history: History
    summary: dict


def _checkpoint(stage: str) -> None:
    """Called between the steps of a save (a no-op): tests replace it to kill the saver at ``stage``."""


# ---------------------------------------------------------------------------- paths
def _run_dir(path) -> Path:
    """The run directory named by ``path`` (the directory itself, or its run.json / arrays.npz)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path={path!r} must be a path (str or pathlib.Path) to a saved run directory")
    p = Path(path)
    if p.name in (RUN_JSON, RUN_NPZ):
        return p.parent
    return p


def _is_run(d: Path) -> bool:
    return d.is_dir() and (d / RUN_JSON).is_file()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True  # cannot tell: leave it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _leftovers(dest: Path) -> list[tuple[Path, int, str]]:
    """(path, pid, "tmp" | "old") of the hidden save directories of ``dest`` in its folder."""
    out = []
    if not dest.parent.is_dir():
        return out
    prefix = f".{dest.name}."
    for entry in dest.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        parts = entry.name[len(prefix):].split(".")
        if len(parts) == 3 and parts[0].isdigit() and parts[2] in ("tmp", "old"):
            out.append((entry, int(parts[0]), parts[2]))
    return out


def _recover(dest: Path) -> None:
    """Roll back what a killed save of ``dest`` left: restore an old run moved aside, delete the rest."""
    for entry, pid, kind in sorted(_leftovers(dest), key=lambda e: e[2] != "old"):
        if _alive(pid):
            continue
        if kind == "old" and not dest.exists() and _is_run(entry):
            os.rename(entry, dest)  # killed between the two renames: the old run comes back
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)  # a temporary file of write_json_atomic


def _fsync_dir(d: Path) -> None:
    if os.name == "posix":
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------- strict JSON
def _plain(x):
    """JSON-ready plain data: numpy scalars → Python, tuples → lists, non-finite floats → strings."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else ("NaN" if v != v else ("Infinity" if v > 0 else "-Infinity"))
    if x is None or isinstance(x, str):
        return x
    return repr(x)


def _number(x, where: str) -> float:
    """A saved number: a finite JSON number or one of the strings "Infinity", "-Infinity", "NaN"."""
    if isinstance(x, str) and x in ("Infinity", "-Infinity", "NaN"):
        return float(x.lower().replace("infinity", "inf"))
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"{where}={x!r} must be a number")
    return float(x)


def _canonical(record: dict) -> bytes:
    body = {k: v for k, v in record.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _checksum(record: dict, npz_bytes: bytes) -> str:
    h = hashlib.sha256(_canonical(record))
    h.update(b"\0")
    h.update(npz_bytes)
    return h.hexdigest()


def write_json_atomic(path, data) -> Path:
    """Write ``data`` as strict JSON to ``path`` via a temporary file in the same folder and os.replace
    (non-finite floats are written as the strings "Infinity", "-Infinity", "NaN")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(_plain(data), f, indent=2, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------- save
def save_run(path, config: Config, history: History, *, overwrite: bool = False) -> Path:
    """Write ``config`` and ``history`` as the run directory ``path`` (run.json + arrays.npz); returns it.

    Atomic (see the module docstring): a save that fails or is killed leaves the old run or
    the complete new one, never a mix.  An existing run at ``path`` is an error unless
    ``overwrite``; a path that exists and is not a saved run is never replaced.
    """
    if not isinstance(config, Config):
        raise ValueError(f"config={config!r} must be a Config")
    if not isinstance(history, History):
        raise ValueError(f"history={history!r} must be a History")
    if not isinstance(overwrite, bool):
        raise ValueError(f"overwrite={overwrite!r} must be True or False")
    dest = _run_dir(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _recover(dest)
    if dest.exists():
        if not _is_run(dest):
            raise ValueError(f"path={str(path)!r} exists and is not a saved run; refusing to replace it")
        if not overwrite:
            raise ValueError(f"a saved run already exists at {dest}; pass overwrite=True to replace it")
    names = [str(k) for k in history.metrics]
    arrays = {f"m{i}": np.asarray(history.metrics[k], dtype=float) for i, k in enumerate(names)}
    arrays["step"] = np.asarray(history.step, dtype=np.int64)
    arrays["params"] = np.asarray(history.policy.params, dtype=float)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    npz_bytes = buf.getvalue()
    record = dict(schema_version=SCHEMA_VERSION, config=config.to_dict(),
                  summary=summary_table({history.divergence: history})[0], metrics=names,
                  divergence=history.divergence, seconds=float(history.seconds),
                  train_config=dict(history.config))
    record = _plain(record)
    record["sha256"] = _checksum(record, npz_bytes)
    token = f"{os.getpid()}.{secrets.token_hex(4)}"
    tmp = dest.with_name(f".{dest.name}.{token}.tmp")
    old = dest.with_name(f".{dest.name}.{token}.old")
    moved_aside = False
    try:
        tmp.mkdir()
        _checkpoint("tmp_dir")
        with open(tmp / RUN_NPZ, "wb") as f:
            f.write(npz_bytes[: len(npz_bytes) // 2])
            _checkpoint("npz_half")
            f.write(npz_bytes[len(npz_bytes) // 2:])
            f.flush()
            os.fsync(f.fileno())
        _checkpoint("npz")
        with open(tmp / RUN_JSON, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        _checkpoint("json")
        if dest.exists():
            os.rename(dest, old)
            moved_aside = True
            _checkpoint("old_aside")
        try:
            os.rename(tmp, dest)
        except OSError:
            if moved_aside or not dest.exists():
                raise
            raise ValueError(f"a saved run appeared at {dest} during the save; pass overwrite=True "
                             "to replace it") from None
        _fsync_dir(dest.parent)
        _checkpoint("renamed")
        moved_aside = False  # committed: from here on the new run stands
        shutil.rmtree(old, ignore_errors=True)
        _checkpoint("done")
    except BaseException:
        if moved_aside and not dest.exists():
            os.rename(old, dest)
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and dest.exists():
            shutil.rmtree(old, ignore_errors=True)
        raise
    return dest


# ---------------------------------------------------------------------------- load
def _read_record(dest: Path) -> tuple[dict, bytes]:
    json_path, npz_path = dest / RUN_JSON, dest / RUN_NPZ
    if not json_path.is_file():
        legacy = dest.with_name(dest.name + ".json")
        if legacy.is_file() or (dest.suffix == ".json" and dest.is_file()):
            raise ValueError(f"{dest} is a run saved by an older toyfdiv (two files, schema_version 1); "
                             "re-create it with `python -m toyfdiv run` on its config")
        raise FileNotFoundError(f"no saved run at {dest} (missing {RUN_JSON})")
    if json_path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"saved run {dest} is corrupt: {RUN_JSON} is over {MAX_JSON_BYTES >> 20} MiB")
    try:
        record = loads_json(json_path.read_bytes())
    except ValueError as err:
        raise ValueError(f"saved run {dest} is corrupt ({RUN_JSON}: {err})") from None
    if not isinstance(record, dict) or "schema_version" not in record:
        raise ValueError(f"{dest} is not a toyfdiv saved run ({RUN_JSON} has no schema_version)")
    version = record["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ValueError(f"saved run {dest} has schema_version {version!r}; this toyfdiv reads "
                         f"version {SCHEMA_VERSION} only")
    if set(record) != set(FIELDS):
        missing, extra = sorted(set(FIELDS) - set(record)), sorted(set(record) - set(FIELDS))
        raise ValueError(f"saved run {dest} is corrupt: missing fields {missing}, unknown fields {extra}")
    if not npz_path.is_file():
        raise FileNotFoundError(f"saved run {dest} has no arrays: missing {RUN_NPZ}")
    npz_bytes = npz_path.read_bytes()
    if not isinstance(record["sha256"], str) or _checksum(record, npz_bytes) != record["sha256"]:
        raise ValueError(f"saved run {dest} is corrupt: its SHA-256 does not match the contents of "
                         f"{RUN_JSON} and {RUN_NPZ}")
    return record, npz_bytes


def _check_record(record: dict, dest: Path) -> dict:
    """Types of every run.json field; returns the summary row with its numbers decoded."""
    bad = lambda what: ValueError(f"saved run {dest} is corrupt: {what}")  # noqa: E731
    names = record["metrics"]
    if not isinstance(names, list) or not names or not all(isinstance(k, str) and k for k in names):
        raise bad(f"metrics={names!r:.80} must be a non-empty list of metric names")
    if len(set(names)) != len(names):
        raise bad("metrics lists a name twice")
    div = record["divergence"]
    if not isinstance(div, str) or f"divergence/{div}" not in names:
        raise bad(f"divergence={div!r:.80} must be the name of a recorded divergence")
    if not isinstance(record["train_config"], dict):
        raise bad(f"train_config={record['train_config']!r:.80} must be an object")
    seconds = record["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
        raise bad(f"seconds={seconds!r:.80} must be a number ≥ 0")
    summary = record["summary"]
    if not isinstance(summary, dict):
        raise bad(f"summary={summary!r:.80} must be an object")
    out = {}
    for key in (*_SUMMARY_TEXT, *_SUMMARY_NUMBERS, "steps"):
        if key not in summary:
            raise bad(f"summary has no {key!r}")
    for key, v in summary.items():
        if key in _SUMMARY_TEXT:
            if not isinstance(v, str):
                raise bad(f"summary[{key!r}]={v!r:.80} must be text")
            out[key] = v
        elif key == "steps":
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(f"summary['steps']={v!r:.80} must be an integer ≥ 0")
            out[key] = v
        elif key in _SUMMARY_NUMBERS or key.startswith("alignment/"):
            try:
                out[key] = _number(v, f"summary[{key!r}]")
            except ValueError as err:
                raise bad(err) from None
        else:
            raise bad(f"summary has an unknown field {key!r:.80}")
    return out


#: a Config run's update diagnostics (the sampled estimator's) have one entry per update, R − 1;
#: every other metric one per recorded step, R
UPDATE_METRIC_PREFIX = "estimator/"


def _check_arrays(npz_bytes: bytes, names: list[str], dest: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    bad = lambda what: ValueError(f"saved run {dest} is corrupt: {RUN_NPZ} {what}")  # noqa: E731
    expected = {f"m{i}" for i in range(len(names))} | {"step", "params"}
    try:
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as z:
            if set(z.files) != expected:
                raise bad(f"holds arrays {sorted(z.files)[:8]}; expected {sorted(expected)[:8]}")
            arrays = {k: z[k] for k in expected}
    except ValueError:
        raise
    except Exception as err:  # zipfile / format errors of a damaged file
        raise bad(f"cannot be read ({type(err).__name__}: {err})") from None
    step, params = arrays["step"], arrays["params"]
    if step.ndim != 1 or step.size == 0 or step.dtype.kind not in "iu" or (step < 0).any() or (np.diff(step) <= 0).any():
        raise bad(f"step has dtype {step.dtype} and shape {step.shape}; expected increasing integers ≥ 0, shape (R,)")
    if params.ndim != 1 or params.dtype != np.float64 or not np.isfinite(params).all():
        raise bad(f"params has dtype {params.dtype} and shape {params.shape}; expected finite float64, shape (P,)")
    metrics = {}
    for i, name in enumerate(names):
        m = arrays[f"m{i}"]
        rows = len(step) - 1 if name.startswith(UPDATE_METRIC_PREFIX) else len(step)  # History's two kinds
        if m.dtype != np.float64 or m.ndim != 1 or len(m) != rows or np.isnan(m).any():
            raise bad(f"metric {name!r} has dtype {m.dtype} and shape {m.shape}; expected float64 without NaN, "
                      f"shape ({rows},)")
        metrics[name] = m
    return metrics, step, params


def load_run(path) -> Run:
    """The Run saved in the directory ``path`` (or named by its run.json / arrays.npz).

    Raises FileNotFoundError for a missing run.json or arrays.npz, ValueError for anything
    else that is wrong: an unknown schema_version, invalid or non-strict JSON, a checksum
    that does not match both files, a field of the wrong type, a config that does not
    validate, arrays of the wrong keys, dtypes or shapes, NaN, or θ of the wrong size.
    """
    dest = _run_dir(path)
    _recover(dest)
    record, npz_bytes = _read_record(dest)
    summary = _check_record(record, dest)
    try:
        config = Config.from_dict(record["config"])
    except ValueError as err:
        raise ValueError(f"saved run {dest} has an invalid config: {err}") from None
    metrics, step, params = _check_arrays(npz_bytes, record["metrics"], dest)
    task = as_task(config.task, length=config.length, eos=config.eos)
    options = {k: v for k, v in dict(config.policy_options).items() if k not in ("init",)}
    shell = make_policy(task, config.policy, seed=config.seed, init="random", **options)
    if params.shape != shell.params.shape:
        raise ValueError(f"saved run {dest} is corrupt: params has shape {params.shape}; the {config.policy} "
                         f"policy of its config has {shell.params.shape}")
    history = History(metrics=metrics, step=step, policy=shell.with_params(params), divergence=record["divergence"],
                      config=record["train_config"], seconds=float(record["seconds"]))
    return Run(config, history, summary)


def find_runs(path) -> list[Path]:
    """The saved runs at ``path``: itself if it is a run directory, else every run directory in it
    or in its runs/ folder, sorted by name."""
    dest = _run_dir(path)
    _recover(dest)
    if _is_run(dest):
        return [dest]
    if not dest.is_dir():
        raise FileNotFoundError(f"no saved run or folder of runs at {dest}")
    found = []
    for folder in (dest, dest / "runs"):
        if folder.is_dir():
            for entry in list(folder.iterdir()):  # saves of runs in this folder killed half-way
                parts = entry.name.rsplit(".", 3)
                if entry.name.startswith(".") and len(parts) == 4 and parts[3] in ("tmp", "old"):
                    _recover(folder / parts[0][1:])
            found += sorted(d for d in folder.iterdir() if not d.name.startswith(".") and _is_run(d))
    if not found:
        raise FileNotFoundError(f"no saved runs in {dest} (looked for run directories there and in {dest / 'runs'})")
    return found
