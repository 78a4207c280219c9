"""The one optimisation loop (toyfdiv.training.optimise): its arithmetic, its records and its guards.

Oracles: closed forms of gradient descent on a quadratic (θ_k = θ₀(1 − lr)^k), the
schedules' own formulas, and the trainers that now run through the loop (f-DPG, conditional,
DPO, TinyLM pretraining) each showing the loop's features.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from toyfdiv import SequenceSpace, conditional, tasks, train
from toyfdiv.feedback import DPOResult, Rater, collect_preferences, train_dpo
from toyfdiv.policies import TinyLM, TinyLMConfig
from toyfdiv.training import History, optimise


class Point:
    """A 'policy' that is just its parameters: enough for the loop."""

    def __init__(self, theta):
        self.params = np.array(theta, dtype=float)

    def with_params(self, theta):
        return Point(theta)


def quadratic(pol, rng):
    """∇ ½‖θ‖² = θ."""
    return pol.params.copy(), {"half_norm2": 0.5 * float(pol.params @ pol.params)}


def test_sgd_on_a_quadratic_is_geometric():
    theta0 = np.array([1.0, -2.0, 0.5])
    hist = optimise(Point(theta0), quadratic, steps=7, lr=0.3, optimizer="sgd",
                    record=lambda p: {"loss": 0.5 * float(p.params @ p.params)}, record_every=2)
    np.testing.assert_allclose(hist.policy.params, theta0 * 0.7**7, rtol=1e-14)
    np.testing.assert_array_equal(hist.step, [0, 2, 4, 6, 7])
    want = 0.5 * (theta0 @ theta0) * 0.49 ** np.array([0, 2, 4, 6, 7])
    np.testing.assert_allclose(hist.metrics["loss"], want, rtol=1e-13)
    np.testing.assert_array_equal(hist.metrics["lr"], 0.3)
    # diagnostics: one per recorded step that made an update (k = 0, 2, 4, 6), at θ_k
    np.testing.assert_allclose(hist.metrics["half_norm2"], want[:4], rtol=1e-13)
    assert hist.loss is hist.metrics["loss"] and hist.label == "loss"


@pytest.mark.parametrize("schedule, lr_final, formula", [
    ("cosine", 0.01, lambda k, n: 0.01 + (0.5 - 0.01) * 0.5 * (1 + math.cos(math.pi * k / n))),
    ("exponential", None, lambda k, n: 0.5 * (0.5e-3 / 0.5) ** (k / n)),
])
def test_schedules_record_their_formula(schedule, lr_final, formula):
    hist = optimise(Point([1.0]), quadratic, steps=10, lr=0.5, optimizer="sgd", schedule=schedule, lr_final=lr_final)
    np.testing.assert_allclose(hist.metrics["lr"], [formula(k, 10) for k in range(11)], rtol=1e-12)


def test_callbacks_and_seed():
    calls = []
    draws = []

    def noisy(pol, rng):
        draws.append(rng.random())
        return np.zeros(1), {}

    optimise(Point([0.0]), noisy, steps=4, lr=0.1, seed=7, callbacks=(lambda k, n: calls.append((k, n)),))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    np.testing.assert_array_equal(draws, np.random.default_rng(7).random(4))


def test_non_finite_gradient_names_the_step_and_the_remedy():
    def blows_up(pol, rng):
        return (np.array([np.inf]) if pol.params[0] < 0.5 else pol.params.copy()), {}  # θ = 0.75³ < ½ at update 4

    with pytest.raises(ValueError, match=r"demo: the gradient is not finite at step 4 \(sgd, lr=0\.25\); "
                                         r"lower the learning rate"):
        optimise(Point([1.0]), blows_up, steps=10, lr=0.25, optimizer="sgd", label="demo")


def test_a_loss_that_grows_by_orders_of_magnitude_stops_the_run():
    def grows(pol, rng):
        return -pol.params, {}  # ascent: ½θ² grows by (1.5)² a step

    with pytest.raises(ValueError, match=r"the loss grew from 0\.5 to .* at step \d+ \(sgd, lr=0\.5\)"):
        optimise(Point([1.0]), grows, steps=100, lr=0.5, optimizer="sgd",
                 record=lambda p: {"loss": 0.5 * float(p.params @ p.params)})
    # below the threshold L₀ + 10³ max(|L₀|, 10⁻³) nothing happens: 8 steps give 0.5·1.5¹⁶ ≈ 329
    hist = optimise(Point([1.0]), grows, steps=8, lr=0.5, optimizer="sgd",
                    record=lambda p: {"loss": 0.5 * float(p.params @ p.params)})
    assert hist.final()["loss"] == pytest.approx(0.5 * 1.5**16)


def test_bad_arguments_name_themselves():
    for kw, match in [(dict(steps=-1), "steps=-1"), (dict(lr=0.0), "lr=0.0"), (dict(optimizer="x"), "optimizer='x'"),
                      (dict(schedule="x"), "schedule='x'"), (dict(callbacks=5), "callbacks=5"),
                      (dict(record=3), "record=3"), (dict(lr_final=0.1), "lr_final=0.1")]:
        args = dict(steps=2, lr=0.1) | kw
        with pytest.raises(ValueError, match=match):
            optimise(Point([1.0]), quadratic, **args)


# ---------------------------------------------------------------------------- the trainers through it
def test_adam_at_lr_10_against_a_flat_target_stops_with_the_step():
    """Issue 14 item 5: Adam at lr = 10 with β = 10³ used to drive D_f from 1e-6 to nats."""
    task = tasks.get("abc")
    with pytest.raises(ValueError, match=r"reverse_kl: the divergence/reverse_kl grew from .* at step \d+ "
                                         r"\(adam, lr=10\); lower the learning rate"):
        train(task.base, task.target("rlhf", beta=1e3), "reverse_kl", steps=50, lr=10.0)


def test_cli_run_with_an_absurd_learning_rate_exits_non_zero(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"task": "abc", "lr": 1e300, "steps": 3}))
    out = subprocess.run([sys.executable, "-m", "toyfdiv", "run", str(cfg), "--out", str(tmp_path / "o"),
                          "--no-figures"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "at step 1 (adam, lr=1e+300); lower the learning rate" in out.stderr


def test_tinylm_with_sgd_that_overflows_names_the_step_and_lr():
    task = tasks.get("abc")
    pol = TinyLM.fit(task.space, task.log_a, TinyLMConfig(n_hidden=4), steps=20)
    with pytest.raises(ValueError, match=r"neyman: .* at step 1 \(sgd, lr=10\); lower the learning rate"):
        train(pol, task.target("rlhf", beta=1.0), "neyman", steps=5, lr=10.0, optimizer="sgd")


def test_tinylm_pretraining_goes_through_the_loop():
    space = SequenceSpace(["a", "b"], 3)
    log_p = np.log(np.arange(1.0, space.size + 1) / np.arange(1.0, space.size + 1).sum())
    calls = []
    fit = TinyLM.fit(space, log_p, TinyLMConfig(n_hidden=3), steps=6, lr=0.05, schedule="cosine",
                     callback=lambda k, n: calls.append(k))
    assert calls == list(range(1, 7))
    cross_entropy = lambda pol: -float(np.exp(log_p) @ pol.log_probs())  # noqa: E731
    assert cross_entropy(fit) < cross_entropy(TinyLM(space, TinyLMConfig(n_hidden=3)))
    with pytest.raises(ValueError, match=r"TinyLM pretraining .* at step \d+ \(adam, lr=1e\+300\)"):
        TinyLM.fit(space, log_p, TinyLMConfig(n_hidden=3), steps=3, lr=1e300)


def test_conditional_training_gains_schedules_and_callbacks():
    ct = conditional.reviews_task(("film", "not"))
    calls = []
    hist = conditional.train(ct.base_policy(), ct.target("rlhf", beta=1.0), "js", steps=4, lr=0.1,
                             schedule="exponential", lr_final=0.001, callback=lambda k, n: calls.append(k))
    np.testing.assert_allclose(hist.metrics["lr"], 0.1 * 0.01 ** (np.arange(5) / 4), rtol=1e-12)
    assert calls == [1, 2, 3, 4] and isinstance(hist, History)


def test_dpo_returns_a_history_with_its_loss():
    task = tasks.get("abc")
    r = np.random.default_rng(0).normal(size=task.space.size)
    data = collect_preferences(Rater(r, 1.0), task.base, 50, np.random.default_rng(1))
    hist = train_dpo(task.base, task.log_a, data, 0.5, steps=6, lr=0.05, record_every=3, schedule="cosine")
    assert isinstance(hist, History) and DPOResult is History and hist.divergence == "dpo"
    np.testing.assert_array_equal(hist.step, [0, 3, 6])
    assert hist.loss[0] == pytest.approx(math.log(2)) and hist.loss[-1] < hist.loss[0]
    assert hist.metrics["lr"][-1] == pytest.approx(0.0)  # cosine to 0
