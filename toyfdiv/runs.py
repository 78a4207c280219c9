"""Saved runs: a Config and its History as JSON + NPZ, written atomically, read back exactly.

A run saved at ``path`` is two files side by side:

- ``<path>.json``: ``schema_version``, the :class:`~toyfdiv.config.Config`, the summary row
  (:func:`toyfdiv.experiments.summary_table`), the metric names, the train call's own
  config and wall-clock seconds, and the SHA-256 of the NPZ;
- ``<path>.npz``: the metric arrays (``m0``, ``m1``, … in the JSON's order), the recorded
  ``step`` array and the final ``params`` θ — float64, read back bit for bit.

Both are written to temporary files in the destination folder and moved into place with
``os.replace`` (NPZ first, JSON last): a failed save leaves nothing behind, and a run
exists exactly when its JSON does.  Nothing is pickled; loading executes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .config import Config
from .training import History

__all__ = ["SCHEMA_VERSION", "Run", "save_run", "load_run", "find_runs", "write_json_atomic"]

#: The version of the saved-run format this toyfdiv writes and reads.
SCHEMA_VERSION = 1


class Run(NamedTuple):
    """A loaded run: its Config, its History (final policy rebuilt from θ) and saved summary row."""

    config: Config
    history: History
    summary: dict


def _paths(path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".json", ".npz"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".json"), p.with_name(p.name + ".npz")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _temp(folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def write_json_atomic(path, data) -> Path:
    """Write ``data`` as JSON to ``path`` via a temporary file in the same folder and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp(path.parent, path.name)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_run(path, config: Config, history: History, *, overwrite: bool = False) -> Path:
    """Write ``config`` and ``history`` to ``<path>.json`` + ``<path>.npz``; returns the JSON path.

    Atomic: both files go to temporaries in the destination folder first; on any failure
    the temporaries (and an NPZ already moved into place) are removed and the error is
    re-raised.  An existing run at ``path`` is an error unless ``overwrite``.
    """
    from .experiments import summary_table

    if not isinstance(config, Config):
        raise ValueError(f"config={config!r} must be a Config")
    if not isinstance(history, History):
        raise ValueError(f"history={history!r} must be a History")
    json_path, npz_path = _paths(path)
    if not overwrite and (json_path.exists() or npz_path.exists()):
        raise ValueError(f"a saved run already exists at {json_path}; pass overwrite=True to replace it")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    names = list(history.metrics)
    arrays = {f"m{i}": np.asarray(history.metrics[k]) for i, k in enumerate(names)}
    arrays["step"] = np.asarray(history.step)
    arrays["params"] = np.asarray(history.policy.params)
    tmp_npz = _temp(json_path.parent, npz_path.name)
    tmp_json = _temp(json_path.parent, json_path.name)
    placed_npz = False
    try:
        with open(tmp_npz, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        record = dict(schema_version=SCHEMA_VERSION, config=config.to_dict(),
                      summary=summary_table({history.divergence: history})[0], metrics=names,
                      divergence=history.divergence, seconds=float(history.seconds),
                      train_config=dict(history.config), npz=npz_path.name, npz_sha256=_sha256(tmp_npz))
        with open(tmp_json, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_npz, npz_path)
        placed_npz = True
        os.replace(tmp_json, json_path)
    except BaseException:
        tmp_npz.unlink(missing_ok=True)
        tmp_json.unlink(missing_ok=True)
        if placed_npz and not json_path.exists():
            npz_path.unlink(missing_ok=True)
        raise
    return json_path


def _read_record(json_path: Path) -> dict:
    if not json_path.is_file():
        raise FileNotFoundError(f"no saved run at {json_path.with_suffix('')} (missing {json_path.name})")
    try:
        record = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"saved run {json_path} is corrupt (not valid JSON: {err})") from None
    if not isinstance(record, dict) or "schema_version" not in record:
        raise ValueError(f"{json_path} is not a toyfdiv saved run (no schema_version)")
    version = record["schema_version"]
    if version != SCHEMA_VERSION:
        raise ValueError(f"saved run {json_path} has schema_version {version!r}; this toyfdiv reads "
                         f"version {SCHEMA_VERSION} only")
    missing = [k for k in ("config", "metrics", "divergence", "seconds", "npz_sha256") if k not in record]
    if missing:
        raise ValueError(f"saved run {json_path} is corrupt: missing fields {missing}")
    return record


def load_run(path) -> Run:
    """The Run saved at ``path`` (``<path>``, ``<path>.json`` or ``<path>.npz``).

    Raises FileNotFoundError for a missing JSON or NPZ, ValueError for an unknown
    schema_version, invalid JSON, a config that does not validate, or an NPZ that is
    corrupt or does not match the JSON's SHA-256.
    """
    from .experiments import as_task, make_policy

    json_path, npz_path = _paths(path)
    record = _read_record(json_path)
    config = Config.from_dict(record["config"])
    if not npz_path.is_file():
        raise FileNotFoundError(f"saved run {json_path} has no arrays: missing {npz_path.name}")
    if _sha256(npz_path) != record["npz_sha256"]:
        raise ValueError(f"saved run {npz_path} is corrupt (its SHA-256 does not match {json_path.name})")
    names = record["metrics"]
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            metrics = {k: z[f"m{i}"] for i, k in enumerate(names)}
            step, params = z["step"], z["params"]
    except Exception as err:  # zipfile / format errors of a damaged file
        raise ValueError(f"saved run {npz_path} is corrupt ({type(err).__name__}: {err})") from None
    task = as_task(config.task, length=config.length, eos=config.eos)
    options = {k: v for k, v in dict(config.policy_options).items() if k not in ("init",)}
    shell = make_policy(task, config.policy, seed=config.seed, init="random", **options)
    history = History(metrics, step, shell.with_params(params), record["divergence"],
                      record.get("train_config", {}), float(record["seconds"]))
    return Run(config, history, record.get("summary", {}))


def find_runs(path) -> list[Path]:
    """The saved runs at ``path``: itself if it is a run, else every run JSON in it or its runs/ folder, sorted."""
    p = Path(path)
    json_path, _ = _paths(p)
    if not p.is_dir():
        if json_path.is_file():
            return [json_path]
        raise FileNotFoundError(f"no saved run or folder of runs at {p}")
    found = []
    for folder in (p, p / "runs"):
        if folder.is_dir():
            for f in sorted(folder.glob("*.json")):
                try:
                    head = json.loads(f.read_text(encoding="utf-8"))
                except (json.JSONDecodeError, UnicodeDecodeError, OSError):
                    continue
                if isinstance(head, dict) and "schema_version" in head:
                    found.append(f)
    if not found:
        raise FileNotFoundError(f"no saved runs in {p} (looked for run JSON files there and in {p / 'runs'})")
    return found
