"""Training: exact f-DPG reaches the target for every divergence; bad input; History."""

import numpy as np
import pytest

from toyfdiv import AutoregressivePolicy, History, SequenceSpace, divergences, optim, tasks, train

NAMES = divergences.names()


@pytest.fixture(scope="module")
def task():
    return tasks.default()


@pytest.mark.parametrize("name", NAMES)
def test_every_divergence_reaches_the_target(task, name):
    """The autoregressive family is well-specified: D_f(π‖p) → 0 from the base model."""
    target = task.target("rlhf")
    hist = train(task.base, target, name, steps=3000, lr=0.1, schedule="cosine", record_every=50)
    assert isinstance(hist, History)
    for key, values in hist.metrics.items():
        assert values.shape == (61,), key
        assert np.all(np.isfinite(values)), key
    final = hist.final()
    assert final[f"divergence/{hist.divergence}"] < 1e-6
    assert final["divergence/reverse_kl"] < 1e-5
    np.testing.assert_allclose(final["alignment/reward"], np.exp(target.log_probs) @ task.reward.values, atol=1e-3)
    assert hist.metrics[f"divergence/{hist.divergence}"][0] > 1e-2  # it did have to move


def test_history_records_and_is_deterministic(task):
    target = task.target("pointwise", epsilon=0.01)
    a = train(task.base, target, "js", steps=20, lr=0.1, record_every=7)
    b = train(task.base, target, "js", steps=20, lr=0.1, record_every=7)
    np.testing.assert_array_equal(a.step, [0, 7, 14, 20])
    for key in a.metrics:
        np.testing.assert_array_equal(a.metrics[key], b.metrics[key])
    assert set(f"divergence/{n}" for n in [d.name for d in divergences.registered()]) <= set(a.metrics)
    assert {"kl_from_base", "entropy", "grad_norm", "alignment/constraint"} <= set(a.metrics)
    assert a.metrics["kl_from_base"][0] == pytest.approx(0.0, abs=1e-12)  # starts at the base


def test_non_finite_parameters_name_the_step():
    space = SequenceSpace(["a", "b"], 3)
    z = np.arange(space.size, dtype=float)
    from toyfdiv import targets
    tgt = targets.rlhf(np.full(space.size, -np.log(space.size)), z, beta=1.0)
    with pytest.raises(ValueError, match=r"parameters became non-finite at step \d+"):
        train(AutoregressivePolicy(space), tgt, "pearson", steps=5, lr=1e308, optimizer="sgd")


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(steps=-1), "steps=-1"),
        (dict(lr=0.0), "lr=0.0"),
        (dict(lr=float("nan")), "lr=nan"),
        (dict(optimizer="lbfgs"), "optimizer='lbfgs' is unknown"),
        (dict(estimator="magic"), "estimator='magic' is unknown"),
        (dict(schedule="step"), "schedule='step' is unknown"),
        (dict(n=10), r"options \['n'\] only apply to estimator='sampled'"),
        (dict(seed=-3), "seed=-3"),
    ],
)
def test_bad_arguments(task, kw, match):
    with pytest.raises(ValueError, match=match):
        train(task.base, task.target("rlhf"), "js", **{"steps": 3, **kw})


def test_optimisers_are_pure_and_match_their_formulas():
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(5)
    grads = rng.standard_normal((4, 5))
    opt = optim.adam(0.1)
    state = opt.init(theta)
    params, m, v = theta.copy(), np.zeros(5), np.zeros(5)
    for k, g in enumerate(grads, start=1):
        before = state
        theta, state = opt.step(theta, g, state)
        assert before.count == k - 1  # the old state is untouched
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        params = params - 0.1 * (m / (1 - 0.9**k)) / (np.sqrt(v / (1 - 0.999**k)) + 1e-8)
    np.testing.assert_allclose(theta, params, rtol=1e-14)
    sgd = optim.sgd(0.5, momentum=0.5)
    th, st = sgd.step(np.ones(2), np.array([1.0, -2.0]), sgd.init(np.ones(2)))
    th, st = sgd.step(th, np.array([1.0, -2.0]), st)
    np.testing.assert_allclose(th, np.ones(2) - 0.5 * np.array([1.0, -2.0]) - 0.5 * 1.5 * np.array([1.0, -2.0]))
    with pytest.raises(ValueError, match="momentum=1"):
        optim.sgd(0.1, momentum=1.0)
    sched = optim.cosine_decay(1.0, 10)
    assert sched(0) == 1.0 and sched(10) == pytest.approx(0.0) and sched(5) == pytest.approx(0.5)


def test_the_minimised_divergence_is_always_recorded(task):
    hist = train(task.base, task.target("rlhf"), "alpha(0.3)", steps=5)
    values = hist.metrics["divergence/alpha(0.3)"]
    assert values.shape == (6,) and np.all(np.isfinite(values)) and values[-1] < values[0]


@pytest.mark.parametrize("kw, match", [
    (dict(estimator="sampled", foo=1), r"estimator options \['foo'\] are unknown"),  # was a TypeError mid-run
    (dict(estimator="sampled", rng=np.random.default_rng(0)), r"estimator options \['rng'\] are unknown"),
    (dict(callback=5), r"callback=5"),
    (dict(schedule="cosine", lr_final=float("nan")), r"lr_final=nan"),
    (dict(lr_final=0.01), r"lr_final=0.01 only applies to a decaying schedule"),
    (dict(optimizer=["adam"]), r"optimizer=\['adam'\]"),
])
def test_bad_arguments_audit(task, kw, match):
    with pytest.raises(ValueError, match=match):
        train(task.base, task.target("rlhf"), "js", steps=2, **kw)
    with pytest.raises(ValueError, match="b1='a'"):
        optim.adam(0.1, "a")
