"""KTO's fixed point at β = 1 (exact, with its second filter) and why there is none to compute for β > 1.

Oracles: the z₀-detached population gradient (zero at the fixed point), z₀ = KL(π‖π_ref) by
enumeration, the β → 1⁻ limit of the β < 1 solver (Newton, another code path), training through
the one loop (toyfdiv.training.optimise) from π_ref, and — for β > 1 — two trainings from two
starts that end at two different stationary points.
"""

import numpy as np
import pytest
from scipy.special import expit, log_expit

from toyfdiv import tasks
from toyfdiv.feedback.kto import kto_fixed_point, kto_weights, population_kto_gradient
from toyfdiv.policies import TabularPolicy
from toyfdiv.training import optimise

KW = dict(lambda_u=2.0, desirable_fraction=0.7)  # undesirable outputs weigh double: the β = 1 filter bites


@pytest.fixture(scope="module")
def problem():
    task = tasks.get("abc", length=3)  # N = 27
    s = expit(np.random.default_rng(0).normal(0.0, 1.5, task.space.size))  # P(👍 | x)
    A, B = kto_weights(s, task.log_a, **KW)
    return task, s, A, B


def _train(task, A, B, beta, start, steps):
    def update(pol, rng):
        return population_kto_gradient(pol.log_probs(), task.log_a, (A, B), beta), {}  # z₀ exact, detached

    pol = optimise(TabularPolicy(task.space, params=start), update, steps=steps, lr=0.1, optimizer="adam",
                   record_every=steps, label=f"kto(beta={beta})").policy
    return pol.log_probs(), np.abs(update(pol, None)[0]).max()


def test_beta_one_is_stationary_with_a_second_filter(problem):
    task, s, A, B = problem
    la = task.log_a
    fp = kto_fixed_point(la, s, 1.0, sampling_log_probs=la, **KW)
    m = fp.support
    assert np.exp(fp.log_probs).sum() == pytest.approx(1.0, abs=1e-12)
    assert fp.z0 == pytest.approx(float(np.exp(fp.log_probs[m]) @ (fp.log_probs[m] - la[m])), abs=1e-12)
    assert np.abs(population_kto_gradient(fp.log_probs, la, (A, B), 1.0, fp.z0)).max() < 1e-12
    # the support: A > B, and κ π_ref < (A − B) e^{−z₀}, κ read off the stationarity condition
    D = A - B
    h = (fp.log_probs - la)[m]
    kappa = np.exp(log_expit(h - fp.z0) + log_expit(fp.z0 - h)) * D[m] / np.exp(fp.log_probs[m])
    assert np.ptp(kappa) < 1e-10 * kappa.mean()  # one κ for every kept output
    dropped = (D > 0) & ~m
    assert dropped.any() and m.sum() < (D > 0).sum()
    np.testing.assert_array_equal(m, (D > 0) & (kappa[0] * np.exp(la) < D * np.exp(-fp.z0)))
    # a dropped output nudged to ε mass is pushed back: its θ-gradient (descent direction −g) is positive
    y = int(np.flatnonzero(dropped)[0])
    lp = fp.log_probs.copy()
    lp[y] = np.log(1e-8)
    lp = lp - np.log(np.exp(lp).sum())
    assert population_kto_gradient(lp, la, (A, B), 1.0)[y] > 0


def test_beta_one_is_the_limit_from_below(problem):
    """The β < 1 solver (Newton on φ, no second filter) converges to the β = 1 closed form at rate O(1 − β)."""
    task, s, _, _ = problem
    one = kto_fixed_point(task.log_a, s, 1.0, sampling_log_probs=task.log_a, **KW)
    tv = []
    for eps in (1e-2, 1e-3):
        near = kto_fixed_point(task.log_a, s, 1 - eps, sampling_log_probs=task.log_a, **KW)
        tv.append(0.5 * np.abs(np.exp(one.log_probs) - np.exp(near.log_probs)).sum())
    assert tv[1] < 1e-3 and 5 < tv[0] / tv[1] < 20, tv


def test_beta_one_training_through_the_one_loop_reaches_it(problem):
    task, s, A, B = problem
    fp = kto_fixed_point(task.log_a, s, 1.0, sampling_log_probs=task.log_a, **KW)
    lp, g = _train(task, A, B, 1.0, task.log_a.copy(), 400)
    assert 0.5 * np.abs(np.exp(lp) - np.exp(fp.log_probs)).sum() < 2e-3 and g < 1e-4


def test_beta_above_one_has_no_unique_fixed_point(problem):
    task, s, A, B = problem
    with pytest.raises(ValueError, match=r"beta=1.5: KTO's fixed point is unique only for β ≤ 1.*point mass"):
        kto_fixed_point(task.log_a, s, 1.5, sampling_log_probs=task.log_a, **KW)
    x = int(np.argmax(A - B))
    point = np.where(np.arange(task.space.size) == x, 0.0, -np.inf)  # δ_x: stationary exactly
    assert np.all(population_kto_gradient(point, task.log_a, (A, B), 2.0) == 0)
    start = task.log_a.copy()
    start[x] += 8.0  # near δ_x
    ends = [_train(task, A, B, 2.0, st, 300) for st in (task.log_a.copy(), start)]
    assert all(g < 1e-3 for _, g in ends)  # both (nearly) stationary …
    assert 0.5 * np.abs(np.exp(ends[0][0]) - np.exp(ends[1][0])).sum() > 0.3  # … and far apart
    assert np.exp(ends[1][0][x]) > 0.999  # the point mass keeps itself
