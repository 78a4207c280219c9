"""Config ↔ JSON, run(config) reproducibility, saved runs: round trips, error paths, atomic saves."""

import json
import os

import numpy as np
import pytest

from toyfdiv import experiments, runs
from toyfdiv.config import Config, configs_from_json, configs_to_json, run
from toyfdiv.runs import SCHEMA_VERSION, load_run, save_run

FULL = Config(task="abc", length=3, eos=True, kind="rlhf", beta=0.7, policy="ngram", policy_options={"order": 2},
              divergence="alpha", steps=12, lr=0.05, optimizer="sgd", schedule="cosine", lr_final=0.001,
              estimator="sampled", estimator_options={"n": 32, "baseline": "mean"}, seed=3, record_every=2)


def _same_history(a, b):
    assert list(a.metrics) == list(b.metrics)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)  # bit for bit (NaN == NaN)
    np.testing.assert_array_equal(a.step, b.step)
    np.testing.assert_array_equal(a.policy.params, b.policy.params)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    config = Config(divergence="js", steps=25)
    history = run(config)
    return folder, config, history, save_run(folder / "js", config, history)


# ---------------------------------------------------------------------------- Config
def test_config_json_round_trip():
    text = FULL.to_json()
    assert Config.from_json(text) == FULL
    data = json.loads(text)
    assert data["divergence"] == "alpha(0.5)"  # stored canonically
    assert data["policy_options"] == {"order": 2} and data["estimator_options"] == {"baseline": "mean", "n": 32}
    assert Config.from_json(Config().to_json()) == Config()
    assert hash(FULL) == hash(Config.from_json(text))
    assert Config.from_dict({"steps": 5}) == Config(steps=5)  # missing keys take defaults
    assert FULL.target_options == {"beta": 0.7}


@pytest.mark.parametrize("change, match", [
    ({"colour": "red"}, "unknown config keys"),
    ({"steps": "10"}, "steps"),
    ({"steps": 1.5}, "steps"),
    ({"steps": True}, "steps"),
    ({"steps": -1}, "steps"),
    ({"lr": "0.1"}, "lr"),
    ({"lr": 0.0}, "lr"),
    ({"beta": -1.0}, "beta"),
    ({"epsilon": 1.0}, "epsilon"),
    ({"eos": "yes"}, "eos"),
    ({"task": "nope"}, "task"),
    ({"kind": "nope"}, "kind"),
    ({"policy": "nope"}, "policy"),
    ({"divergence": "nope"}, "divergence"),
    ({"divergence": 3}, "divergence"),
    ({"optimizer": "lbfgs"}, "optimizer"),
    ({"policy_options": {"order": [2]}}, "policy_options"),
    ({"policy_options": [1, 2]}, "policy_options"),
    ({"estimator_options": {"n": 8}}, "only apply to estimator='sampled'"),
    ({"moments": "0.5"}, "moments"),
    ({"lr_final": 0.01}, "lr_final=0.01 only applies to schedule='cosine' or 'exponential'"),
], ids=lambda v: str(v) if isinstance(v, str) else "-".join(map(str, v)))
def test_config_rejects(change, match):
    data = Config().to_dict() | change
    with pytest.raises(ValueError, match=match):
        Config.from_json(json.dumps(data))


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", '{"lr": NaN}', '{"lr": Infinity}'])
def test_config_rejects_bad_json(text):
    with pytest.raises(ValueError):
        Config.from_json(text)


def test_several_configs_round_trip():
    many = [FULL, Config(divergence="js"), Config(divergence="gjsd(0.3)", steps=7)]
    assert configs_from_json(configs_to_json(many)) == many
    assert json.loads(configs_to_json(FULL)) == FULL.to_dict()  # one run: a plain object
    assert configs_from_json(FULL.to_json()) == [FULL]


@pytest.mark.parametrize("text, match", [
    ("[]", "array of 0"),
    ("[" + ",".join(["{}"] * 4) + "]", "array of 4"),
    ('[{}, {"steps": -1}]', "config 2 of 2: steps"),
    ('[{}, 3]', "config 2 of 2: a config must be a JSON object"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    (b"\xff\xfe", "not valid JSON"),
], ids=["empty", "too-many", "bad-item", "not-object", "deep", "bytes"])
def test_configs_from_json_rejects(text, match):
    with pytest.raises(ValueError, match=match):
        configs_from_json(text, max_configs=3)


@pytest.mark.parametrize("value", [[], [1], "config"], ids=repr)
def test_configs_to_json_rejects(value):
    with pytest.raises(ValueError, match="configs="):
        configs_to_json(value)


# ---------------------------------------------------------------------------- run
def test_run_is_bit_for_bit_reproducible():
    _same_history(run(FULL), run(Config.from_json(FULL.to_json())))  # sampled: the seed is the only randomness


def test_run_matches_compare():
    config = Config(divergence="hellinger", steps=20, beta=0.5, seed=2)
    hist = experiments.compare("reviews", "rlhf", ["hellinger"], steps=20, seed=2, target_options={"beta": 0.5})
    _same_history(run(config), hist["hellinger"])


# ---------------------------------------------------------------------------- saved runs
def test_save_load_round_trip(saved):
    folder, config, history, path = saved
    assert path == folder / "js.json" and (folder / "js.npz").is_file()
    loaded = load_run(folder / "js")
    assert loaded.config == config
    _same_history(loaded.history, history)
    np.testing.assert_array_equal(loaded.history.policy.log_probs(), history.policy.log_probs())
    assert loaded.history.seconds == history.seconds and loaded.history.divergence == "js"
    assert loaded.summary == experiments.summary_table({"js": history})[0]
    assert dict(loaded.history.config) == dict(history.config)
    assert load_run(folder / "js.npz").config == config
    record = json.loads(path.read_text())
    assert record["schema_version"] == SCHEMA_VERSION


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


def test_save_refuses_to_overwrite(saved):
    folder, config, history, _ = saved
    with pytest.raises(ValueError, match="already exists"):
        save_run(folder / "js", config, history)


def _copy(saved, tmp_path, name="r"):
    _, config, history, _ = saved
    return save_run(tmp_path / name, config, history)


def test_load_missing(tmp_path, saved):
    with pytest.raises(FileNotFoundError, match="no saved run"):
        load_run(tmp_path / "nothing")
    path = _copy(saved, tmp_path)
    path.with_suffix(".npz").unlink()
    with pytest.raises(FileNotFoundError, match="missing r.npz"):
        load_run(path)


def test_load_unknown_schema(tmp_path, saved):
    path = _copy(saved, tmp_path)
    record = json.loads(path.read_text())
    record["schema_version"] = 99
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="schema_version 99"):
        load_run(path)


def test_load_corrupt_json(tmp_path, saved):
    path = _copy(saved, tmp_path)
    path.write_text(path.read_text()[:100])
    with pytest.raises(ValueError, match="corrupt"):
        load_run(path)


def test_load_corrupt_npz(tmp_path, saved):
    path = _copy(saved, tmp_path)
    npz = path.with_suffix(".npz")
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt"):
        load_run(path)


def test_interrupted_save_leaves_nothing(tmp_path, saved, monkeypatch):
    _, config, history, _ = saved

    def half_written(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(runs.np, "savez", half_written)
    with pytest.raises(OSError, match="disk full"):
        save_run(tmp_path / "r", config, history)
    assert os.listdir(tmp_path) == []


def test_failed_final_rename_leaves_nothing(tmp_path, saved, monkeypatch):
    _, config, history, _ = saved
    real, calls = os.replace, []

    def fail_second(src, dst):  # the NPZ lands, then the JSON rename fails
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("interrupted")
        return real(src, dst)

    monkeypatch.setattr(runs.os, "replace", fail_second)
    with pytest.raises(OSError, match="interrupted"):
        save_run(tmp_path / "r", config, history)
    assert os.listdir(tmp_path) == []


def test_find_runs(saved, tmp_path):
    folder, *_ = saved
    assert runs.find_runs(folder) == [folder / "js.json"]
    assert runs.find_runs(folder / "js") == [folder / "js.json"]
    with pytest.raises(FileNotFoundError):
        runs.find_runs(tmp_path)


def test_unregistered_divergence_is_recorded_at_every_step():
    hist = run(Config(divergence="alpha(0.3)", steps=5))
    values = hist.metrics["divergence/alpha(0.3)"]
    assert values.shape == (6,) and np.isfinite(values).all()
    assert experiments.summary_table({"a": hist})[0]["final_divergence"] == values[-1]
