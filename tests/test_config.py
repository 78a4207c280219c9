"""Config ↔ JSON and run(config) reproducibility (saved runs: tests/test_runs.py)."""

import json

import numpy as np
import pytest

from toyfdiv import experiments
from toyfdiv.config import Config, configs_from_json, configs_to_json, run

FULL = Config(task="abc", length=3, eos=True, kind="rlhf", beta=0.7, policy="ngram", policy_options={"order": 2},
              divergence="alpha", steps=12, lr=0.05, optimizer="sgd", schedule="cosine", lr_final=0.001,
              estimator="sampled", estimator_options={"n": 32, "baseline": "mean"}, seed=3, record_every=2)


def _same_history(a, b):
    assert list(a.metrics) == list(b.metrics)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)  # bit for bit (NaN == NaN)
    np.testing.assert_array_equal(a.step, b.step)
    np.testing.assert_array_equal(a.policy.params, b.policy.params)


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


def test_unregistered_divergence_is_recorded_at_every_step():
    hist = run(Config(divergence="alpha(0.3)", steps=5))
    values = hist.metrics["divergence/alpha(0.3)"]
    assert values.shape == (6,) and np.isfinite(values).all()
    assert experiments.summary_table({"a": hist})[0]["final_divergence"] == values[-1]
