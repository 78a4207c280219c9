"""Saved runs: round trips, one checksum over JSON + NPZ, full validation, atomic saves under real kills."""

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from toyfdiv import experiments, runs
from toyfdiv.config import Config, run
from toyfdiv.runs import SCHEMA_VERSION, find_runs, load_run, save_run, write_json_atomic

STAGES = ("tmp_dir", "npz_half", "npz", "json", "old_aside", "renamed", "done")


def _same_history(a, b):
    assert list(a.metrics) == list(b.metrics)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)  # bit for bit
    np.testing.assert_array_equal(a.step, b.step)
    np.testing.assert_array_equal(a.policy.params, b.policy.params)


def _strict(text):
    def refuse(name):
        raise AssertionError(f"non-strict JSON literal {name}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    config = Config(divergence="js", steps=25)
    history = run(config)
    return folder, config, history, save_run(folder / "js", config, history)


@pytest.fixture(scope="module")
def other():
    """A second, different run of the same task (the 'new' run that overwrites the saved one)."""
    config = Config(divergence="tv", steps=4, seed=1)
    return config, run(config)


def _copy(saved, tmp_path, name="r"):
    _, config, history, _ = saved
    return save_run(tmp_path / name, config, history)


def _entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ---------------------------------------------------------------------------- round trips
def test_save_load_round_trip(saved):
    folder, config, history, path = saved
    assert path == folder / "js" and _entries(path) == ["arrays.npz", "run.json"]
    loaded = load_run(folder / "js")
    assert loaded.config == config
    _same_history(loaded.history, history)
    np.testing.assert_array_equal(loaded.history.policy.log_probs(), history.policy.log_probs())
    assert loaded.history.seconds == history.seconds and loaded.history.divergence == "js"
    assert loaded.summary == experiments.summary_table({"js": history})[0]
    assert dict(loaded.history.config) == dict(history.config)
    assert load_run(folder / "js" / "run.json").config == config
    assert load_run(str(folder / "js" / "arrays.npz")).config == config
    record = _strict((path / "run.json").read_text())
    assert record["schema_version"] == SCHEMA_VERSION and list(record) == list(runs.FIELDS)


def test_saved_config_reproduces_the_numbers(saved):
    folder, _, history, _ = saved
    _same_history(run(load_run(folder / "js").config), history)


@pytest.mark.parametrize("policy", ["tabular", "ngram", "tinylm"])
def test_round_trip_other_policies(tmp_path, policy):
    config = Config(policy=policy, divergence="forward_kl", steps=3,
                    policy_options={"fit_steps": 20} if policy == "tinylm" else {})
    hist = run(config)
    loaded = load_run(save_run(tmp_path / policy, config, hist))
    np.testing.assert_array_equal(loaded.history.policy.log_probs(), hist.policy.log_probs())


def test_non_finite_numbers_are_strict_json(tmp_path, saved):
    """An infinite divergence (zero support) is saved as the string "Infinity" and read back as inf."""
    _, config, history, _ = saved
    metrics = dict(history.metrics)
    metrics["divergence/js"] = np.append(metrics["divergence/js"][:-1], np.inf)
    hist = dataclasses.replace(history, metrics=metrics)
    path = save_run(tmp_path / "inf", config, hist)
    record = _strict((path / "run.json").read_text())
    assert record["summary"]["final_divergence"] == "Infinity"
    loaded = load_run(path)
    assert loaded.summary["final_divergence"] == np.inf
    assert loaded.history.metrics["divergence/js"][-1] == np.inf
    out = write_json_atomic(tmp_path / "rows.json", [{"x": float("nan"), "y": -np.inf, "z": np.float64(2.5)}])
    assert _strict(out.read_text()) == [{"x": "NaN", "y": "-Infinity", "z": 2.5}]


# ---------------------------------------------------------------------------- refusals
def test_save_refuses_to_overwrite(saved):
    folder, config, history, _ = saved
    with pytest.raises(ValueError, match="already exists"):
        save_run(folder / "js", config, history)


def test_overwrite_replaces_the_run(tmp_path, saved, other):
    path = _copy(saved, tmp_path)
    config, hist = other
    assert save_run(path, config, hist, overwrite=True) == path
    _same_history(load_run(path).history, hist)
    assert _entries(tmp_path) == ["r"]


def test_save_never_replaces_what_is_not_a_run(tmp_path, saved):
    _, config, history, _ = saved
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("precious")
    (tmp_path / "file").write_text("precious")
    for name in ("notes", "file"):
        with pytest.raises(ValueError, match="is not a saved run"):
            save_run(tmp_path / name, config, history, overwrite=True)
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("bad, match", [(5, "path=5"), (None, "path=None")])
def test_bad_path_names_the_argument(bad, match, saved):
    _, config, history, _ = saved
    with pytest.raises(ValueError, match=match):
        save_run(bad, config, history)
    with pytest.raises(ValueError, match=match):
        load_run(bad)


def test_load_missing(tmp_path, saved):
    with pytest.raises(FileNotFoundError, match="no saved run"):
        load_run(tmp_path / "nothing")
    path = _copy(saved, tmp_path)
    (path / "arrays.npz").unlink()
    with pytest.raises(FileNotFoundError, match="missing arrays.npz"):
        load_run(path)


def test_load_unknown_schema(tmp_path, saved):
    path = _copy(saved, tmp_path)
    record = json.loads((path / "run.json").read_text())
    record["schema_version"] = 99
    (path / "run.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="schema_version 99"):
        load_run(path)


def test_legacy_two_file_run_is_named(tmp_path):
    (tmp_path / "old.json").write_text('{"schema_version": 1}')
    with pytest.raises(ValueError, match="older toyfdiv"):
        load_run(tmp_path / "old")


def test_load_corrupt_json(tmp_path, saved):
    path = _copy(saved, tmp_path)
    (path / "run.json").write_text((path / "run.json").read_text()[:100])
    with pytest.raises(ValueError, match="corrupt"):
        load_run(path)


def test_load_corrupt_npz(tmp_path, saved):
    path = _copy(saved, tmp_path)
    npz = path / "arrays.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256 does not match"):
        load_run(path)


def _edit_json(path, edit):
    record = json.loads((path / "run.json").read_text())
    edit(record)
    (path / "run.json").write_text(json.dumps(record))


@pytest.mark.parametrize("edit", [
    lambda r: r["metrics"].reverse(),  # would relabel the arrays
    lambda r: r["metrics"].__setitem__(0, r["metrics"][0] + "x"),
    lambda r: r["summary"].__setitem__("entropy", r["summary"]["entropy"] + 1e-9),
    lambda r: r["config"].__setitem__("steps", 26),
    lambda r: r.__setitem__("divergence", "tv"),
], ids=["metrics-reversed", "metric-renamed", "summary", "config", "divergence"])
def test_one_checksum_covers_the_json(tmp_path, saved, edit):
    """The checksum covers both files: any edit of the JSON alone is detected."""
    path = _copy(saved, tmp_path)
    _edit_json(path, edit)
    with pytest.raises(ValueError, match="SHA-256 does not match"):
        load_run(path)


def test_every_byte_flip_of_the_json_is_refused_or_harmless(tmp_path, saved):
    """150 random single-bit flips of run.json: each is refused with a ValueError, or leaves the same data
    (e.g. 1e-05 → 1E-05, which the canonical JSON under the checksum cannot tell apart) and loads the same run."""
    _, config, history, _ = saved
    path = _copy(saved, tmp_path)
    original = (path / "run.json").read_bytes()
    expected = load_run(path)
    rng = np.random.default_rng(0)
    refused = 0
    for i in rng.choice(len(original), size=150, replace=False):
        data = bytearray(original)
        data[i] ^= 1 << int(rng.integers(8))
        (path / "run.json").write_bytes(bytes(data))
        try:
            loaded = load_run(path)
        except ValueError:
            refused += 1
            continue
        assert json.loads(bytes(data)) == json.loads(original)
        assert loaded.config == config and loaded.summary == expected.summary
        _same_history(loaded.history, history)
    assert refused >= 140


def _forge(path, edit_record=None, edit_arrays=None):
    """Rewrite a run with a *valid* checksum, as a tamperer (or a bug) would: the validation must still refuse it."""
    record = json.loads((path / "run.json").read_text())
    with np.load(path / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    if edit_record:
        edit_record(record)
    if edit_arrays:
        edit_arrays(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    record["sha256"] = runs._checksum(record, buf.getvalue())
    (path / "arrays.npz").write_bytes(buf.getvalue())
    (path / "run.json").write_text(json.dumps(record))


@pytest.mark.parametrize("edit_record, edit_arrays, match", [
    (lambda r: r.__setitem__("seconds", []), None, "seconds"),
    (lambda r: r.__setitem__("summary", [1]), None, "summary"),
    (lambda r: r["summary"].__setitem__("entropy", "abc"), None, "entropy"),
    (lambda r: r["summary"].__setitem__("steps", 2.5), None, "steps"),
    (lambda r: r.__setitem__("divergence", 5), None, "divergence=5"),
    (lambda r: r.__setitem__("metrics", "abc"), None, "metrics='abc'"),
    (lambda r: r["metrics"].append(r["metrics"][0]), None, "twice"),
    (lambda r: r.__setitem__("train_config", 3), None, "train_config"),
    (lambda r: r.__setitem__("extra", 1), None, "unknown fields"),
    (lambda r: r["config"].__setitem__("lr", -1), None, "invalid config"),
    (None, lambda a: a.__setitem__("m0", a["m0"][:-2]), "shape"),
    (None, lambda a: a.__setitem__("m0", np.full_like(a["m0"], np.nan)), "without NaN"),
    (None, lambda a: a.__setitem__("m0", a["m0"].astype(np.float32)), "float64"),
    (None, lambda a: a.__setitem__("params", a["params"][:-1]), "params has shape"),
    (None, lambda a: a.__setitem__("params", np.full_like(a["params"], np.inf)), "params"),
    (None, lambda a: a.__setitem__("step", a["step"][::-1].copy()), "step"),
    (None, lambda a: a.__setitem__("step", a["step"].astype(float)), "step"),
    (None, lambda a: a.__setitem__("zz", np.zeros(1)), "holds arrays"),
    (None, lambda a: a.pop("m1"), "holds arrays"),
], ids=["seconds-list", "summary-list", "summary-text", "steps-float", "divergence-int", "metrics-text",
        "metrics-twice", "train-config", "extra-field", "config", "metric-shape", "metric-nan", "metric-float32",
        "params-size", "params-inf", "step-order", "step-float", "extra-array", "missing-array"])
def test_validation_refuses_a_forged_run(tmp_path, saved, edit_record, edit_arrays, match):
    path = _copy(saved, tmp_path)
    _forge(path, edit_record, edit_arrays)
    with pytest.raises(ValueError, match=match):
        load_run(path)


def test_deeply_nested_json_is_a_value_error(tmp_path, saved):
    path = _copy(saved, tmp_path)
    (path / "run.json").write_text('{"schema_version": 2, "config": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError, match="nested too deeply"):
        load_run(path)


# ---------------------------------------------------------------------------- atomicity
@pytest.mark.parametrize("stage", STAGES)
def test_a_failing_save_leaves_the_old_run_or_the_new_one(tmp_path, saved, other, monkeypatch, stage):
    """An exception at any stage of an overwrite: the old run loads (or, once the new one is renamed into
    place — the commit point — the new one), and nothing else is left in the folder."""
    path = _copy(saved, tmp_path)
    config, hist = other

    def fail(at):
        if at == stage:
            raise OSError(f"disk full at {at}")
    monkeypatch.setattr(runs, "_checkpoint", fail)
    with pytest.raises(OSError, match="disk full"):
        save_run(path, config, hist, overwrite=True)
    assert _entries(tmp_path) == ["r"]
    loaded = load_run(path).history
    _same_history(loaded, hist if stage in ("renamed", "done") else saved[2])


def _fork_saver(dest, config, history, stage):
    """A real child process (os.fork: no re-import) that saves with overwrite=True and, on reaching
    ``stage``, writes b"at" to the returned pipe and sleeps until it is killed; b"finished" otherwise."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read)

            def checkpoint(at):
                if at == stage:
                    os.write(write, b"at")
                    time.sleep(120)  # killed here by the parent
            runs._checkpoint = checkpoint
            save_run(dest, config, history, overwrite=True)
            os.write(write, b"finished")
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "fresh"])
def test_a_killed_save_leaves_the_old_run_or_the_new_one(tmp_path, saved, other, overwrite):
    """SIGKILL a real saver process at each stage: afterwards the old run still loads (or, for a fresh
    save, there is no run at all) or the new run is complete; no orphan, no temporary is left."""
    config, hist = other
    outcomes = {}
    for stage in STAGES:
        folder = tmp_path / stage
        folder.mkdir()
        if overwrite:
            _copy(saved, folder)
        pid, pipe = _fork_saver(folder / "r", config, hist, stage)
        with os.fdopen(pipe, "rb") as f:
            said = f.read(2)
            if said == b"at":
                os.kill(pid, signal.SIGKILL)
            else:
                said += f.read()
        _, status = os.waitpid(pid, 0)
        if said == b"finished":  # the stage does not occur in this kind of save
            assert os.waitstatus_to_exitcode(status) == 0 and stage == "old_aside" and not overwrite, stage
            outcomes[stage] = "new"
        else:
            assert said == b"at" and os.waitstatus_to_exitcode(status) == -signal.SIGKILL, (stage, said, status)
            left = any(n.startswith(".r.") for n in _entries(folder))  # what the kill left to recover
            assert left == (STAGES.index(stage) < STAGES.index("renamed") or (stage == "renamed" and overwrite))
            try:
                loaded = load_run(folder / "r").history
            except FileNotFoundError:
                assert not overwrite, stage  # only a fresh save may leave no run
                outcomes[stage] = "none"
            else:
                new = np.array_equal(loaded.policy.params, hist.policy.params)
                _same_history(loaded, hist if new else saved[2])
                outcomes[stage] = "new" if new else "old"
        assert _entries(folder) == (["r"] if outcomes[stage] != "none" else []), (stage, _entries(folder))
    before = "old" if overwrite else "none"
    assert outcomes == {"tmp_dir": before, "npz_half": before, "npz": before, "json": before,
                        "old_aside": "old" if overwrite else "new", "renamed": "new", "done": "new"}


def test_a_live_savers_temporaries_are_left_alone(tmp_path, saved):
    path = _copy(saved, tmp_path)
    mine = tmp_path / f".r.{os.getpid()}.abcd.tmp"
    mine.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f".r.{dead.pid}.abcd.tmp"
    orphan.mkdir()
    load_run(path)
    assert mine.is_dir() and not orphan.exists()


def test_find_runs(saved, tmp_path):
    folder, *_ = saved
    assert find_runs(folder) == [folder / "js"]
    assert find_runs(folder / "js") == [folder / "js"]
    assert find_runs(folder / "js" / "run.json") == [folder / "js"]
    with pytest.raises(FileNotFoundError):
        find_runs(tmp_path)
    _copy(saved, tmp_path / "runs", "a")
    (tmp_path / "runs" / "not-a-run").mkdir()
    assert find_runs(tmp_path) == [tmp_path / "runs" / "a"]
