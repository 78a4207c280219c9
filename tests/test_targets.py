"""Targets checked against independent oracles.

RLHF: the probability-space formula, a numerical maximisation of J(π) = E_π[r] − β KL(π‖a)
over the simplex, and the identity J(π) = β log Z − β KL(π‖p).  Distributional / hybrid:
moments met, KL(p‖a) = λ·μ̄ − log Z, the dual's gradient vanishes (finite differences), and
no distribution meeting the moments (LP vertices and their mixtures) is closer to a.
"""

import dataclasses
import warnings

import numpy as np
import pytest
from scipy.optimize import linprog, minimize
from scipy.special import log_softmax, logsumexp, rel_entr, softmax

from toyfdiv import targets
from toyfdiv.targets import ConvergenceWarning, Target
from conftest import fd_gradient


def random_log_a(rng, n, zeros=0):
    """(N,) a normalised random base model; the first ``zeros`` entries have a = 0."""
    logits = rng.normal(scale=1.5, size=n)
    logits[:zeros] = -np.inf
    return log_softmax(logits)


def kl(p, q):
    """KL(p ‖ q) = Σ rel_entr(p, q): the textbook formula (0 log 0 = 0, ∞ off q's support)."""
    return float(rel_entr(p, q).sum())


def dual(log_base, phi, mu, lam):
    """log Z(λ) − λ·μ̄, Z(λ) = Σ_x base(x) exp(λ·φ(x))."""
    return logsumexp(log_base + phi @ lam) - lam @ mu



def feasible_problem(rng, n, k, zeros=0):
    """(log_a, φ (N, K), μ̄): μ̄ = E_q[φ] for a random full-support q, so strictly feasible."""
    log_a = random_log_a(rng, n, zeros)
    phi = rng.normal(size=(n, k))
    phi[:, 0] = rng.integers(0, 4, size=n)  # one integer-valued "count" feature
    q = rng.dirichlet(np.ones(n - zeros))
    mu = q @ phi[zeros:]
    return log_a, phi, mu


def lp_vertices(rng, phi, mu, allowed, m=6):
    """Vertices of {q ≥ 0 : Σ q = 1, E_q[φ] = μ̄, q = 0 off ``allowed``} for random costs."""
    n = phi.shape[0]
    a_eq = np.vstack([np.ones(n), phi.T])
    bounds = [(0, None) if ok else (0, 0) for ok in allowed]
    out = []
    for _ in range(m):
        res = linprog(rng.normal(size=n), A_eq=a_eq, b_eq=np.concatenate([[1.0], mu]), bounds=bounds)
        assert res.status == 0
        out.append(np.clip(res.x, 0, None))
    return out


# ---------------------------------------------------------------------------- all kinds
def _build(kind, rng):
    n = 15
    log_a = random_log_a(rng, n, zeros=2)
    b = rng.random(n) < 0.6
    b[5] = True
    if kind == "rlhf":
        return targets.rlhf(log_a, rng.normal(size=n), 0.5)
    if kind == "pointwise":
        return targets.pointwise(log_a, b)
    if kind == "pointwise-eps":
        return targets.pointwise(log_a, b, epsilon=0.1)
    phi = rng.normal(size=(n, 2))
    support = np.isfinite(log_a) & (b if kind == "hybrid" else True)
    mu = rng.dirichlet(np.ones(support.sum())) @ phi[support]
    if kind == "distributional":
        return targets.distributional(log_a, phi, mu, feature_names=["u", "v"])
    return targets.hybrid(log_a, b, phi, mu)


KINDS = ["rlhf", "pointwise", "pointwise-eps", "distributional", "hybrid"]


@pytest.mark.parametrize("kind", KINDS)
def test_log_probs_normalised_and_absolutely_continuous(kind):
    tgt = _build(kind, np.random.default_rng(0))
    assert logsumexp(tgt.log_probs) == pytest.approx(0.0, abs=1e-12)
    assert tgt.log_z == pytest.approx(logsumexp(tgt.log_scores), abs=1e-12)
    assert np.all(np.isneginf(tgt.log_probs[np.isneginf(tgt.log_a)]))  # p ≪ a
    assert tgt.size == 15 and tgt.kind == kind.split("-")[0]
    assert tgt.kl_from_base == pytest.approx(kl(np.exp(tgt.log_probs), np.exp(tgt.log_a)), abs=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_target_is_frozen_with_readonly_copies(kind):
    tgt = _build(kind, np.random.default_rng(1))
    for name in ["log_scores", "log_a", "log_probs", "reward", "constraint", "features", "moments",
                 "lambdas"]:
        arr = getattr(tgt, name)
        if arr is not None:
            assert not arr.flags.writeable, name
    with pytest.raises(dataclasses.FrozenInstanceError):
        tgt.log_z = 0.0
    with pytest.raises(TypeError):
        tgt.params["x"] = 1
    line = tgt.describe()
    assert "\n" not in line and tgt.name in line and "log Z" in line


def test_inputs_are_copied():
    rng = np.random.default_rng(2)
    log_a, r = random_log_a(rng, 8), rng.normal(size=8)
    tgt = targets.rlhf(log_a, r, 1.0)
    before = tgt.log_probs.copy()
    log_a[0], r[0] = -5.0, 100.0
    np.testing.assert_array_equal(tgt.log_probs, before)


# ---------------------------------------------------------------------------- RLHF
def J(pi, r, log_a, beta):
    """E_π[r] − β KL(π‖a)."""
    return float(pi @ r) - beta * kl(pi, np.exp(log_a))


@pytest.mark.parametrize("beta", [0.1, 1.0, 5.0])
def test_rlhf_equals_probability_space_formula(beta):
    rng = np.random.default_rng(3)
    log_a, r = random_log_a(rng, 12, zeros=3), rng.normal(size=12)
    a = np.exp(log_a)
    p = a * np.exp(r / beta) / np.sum(a * np.exp(r / beta))
    tgt = targets.rlhf(log_a, r, beta)
    np.testing.assert_allclose(np.exp(tgt.log_probs), p, rtol=1e-12, atol=1e-15)
    assert tgt.log_z == pytest.approx(np.log(np.sum(a * np.exp(r / beta))), rel=1e-12)
    assert tgt.params["beta"] == beta and tgt.name == f"RLHF, β = {beta:g}"
    np.testing.assert_array_equal(tgt.reward, r)


@pytest.mark.parametrize("n,beta", [(6, 0.3), (12, 1.0), (20, 2.0)], ids=["N6", "N12", "N20"])
def test_rlhf_target_maximises_kl_regularised_reward(n, beta):
    rng = np.random.default_rng(n)
    log_a, r = random_log_a(rng, n), rng.normal(size=n)
    tgt = targets.rlhf(log_a, r, beta)
    p = np.exp(tgt.log_probs)

    def neg_j(theta):  # −J(softmax θ) and its gradient π ⊙ (g − π·g), g = ∂J/∂π
        log_pi = log_softmax(theta)
        pi = np.exp(log_pi)
        g = r - beta * (log_pi - log_a + 1)
        return -(pi @ r - beta * pi @ (log_pi - log_a)), -pi * (g - pi @ g)

    res = minimize(neg_j, np.zeros(n), jac=True, method="BFGS", options={"gtol": 1e-12})
    pi_opt = softmax(res.x)
    assert J(p, r, log_a, beta) >= J(pi_opt, r, log_a, beta) - 1e-9
    np.testing.assert_allclose(pi_opt, p, atol=1e-6)


def test_rlhf_objective_identity():
    """J(π) = β log Z − β KL(π‖p) for any π ≪ a."""
    rng = np.random.default_rng(4)
    log_a, r = random_log_a(rng, 10), rng.normal(size=10)
    for beta in [0.05, 0.7, 3.0]:
        tgt = targets.rlhf(log_a, r, beta)
        for _ in range(5):
            pi = rng.dirichlet(np.full(10, 0.5))
            assert J(pi, r, log_a, beta) == pytest.approx(
                beta * tgt.log_z - beta * kl(pi, np.exp(tgt.log_probs)), abs=1e-10)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("scale", [1.0, 1e3], ids=["r~1", "r~1e3"])
@pytest.mark.parametrize("beta", [1e-3, 1e-1, 1.0, 1e3])
def test_rlhf_extremes_no_overflow(beta, scale):
    rng = np.random.default_rng(5)
    log_a = random_log_a(rng, 40, zeros=4)
    r = 0.99 * scale * np.tanh(rng.normal(size=40))  # |r| < 0.99 scale ...
    r[4], r[5] = scale, -scale  # ... but for r = ±scale
    tgt = targets.rlhf(log_a, r, beta)
    assert not np.isnan(tgt.log_probs).any() and np.isfinite(tgt.log_z)
    assert np.isfinite(tgt.log_probs[4:]).all() and np.isneginf(tgt.log_probs[:4]).all()
    assert logsumexp(tgt.log_probs) == pytest.approx(0.0, abs=1e-10)
    if 0.01 * scale / beta > 100:  # cold: all mass on the best sequence (r = scale)
        assert tgt.log_probs[4] == pytest.approx(0.0, abs=1e-10)


# ---------------------------------------------------------------------------- pointwise
def test_pointwise_support_is_exactly_b():
    rng = np.random.default_rng(6)
    log_a = random_log_a(rng, 20, zeros=3)
    b = rng.random(20) < 0.5
    b[10] = True
    tgt = targets.pointwise(log_a, b.astype(int))  # 0/1 integers are boolean-like
    allowed = b & np.isfinite(log_a)
    np.testing.assert_array_equal(np.isneginf(tgt.log_probs), ~allowed)
    p = np.exp(tgt.log_probs)
    assert np.all(p[allowed] > 0)
    a = np.exp(log_a)
    np.testing.assert_allclose(p, a * b / np.sum(a * b), rtol=1e-12)
    assert tgt.log_z == pytest.approx(np.log(np.sum(a * b)), rel=1e-12)  # Z = a(b)
    np.testing.assert_array_equal(tgt.constraint, b)
    assert tgt.kl_from_base == pytest.approx(-tgt.log_z, abs=1e-12)  # KL(a|b ‖ a) = −log a(b)


def test_pointwise_smoothed_has_full_support():
    rng = np.random.default_rng(7)
    log_a = random_log_a(rng, 12, zeros=2)
    b = np.arange(12) % 3 == 0
    eps = 0.05
    tgt = targets.pointwise(log_a, b, epsilon=eps)
    a = np.exp(log_a)
    w = np.where(b, 1.0, eps)
    np.testing.assert_allclose(np.exp(tgt.log_probs), a * w / np.sum(a * w), rtol=1e-12)
    assert np.isfinite(tgt.log_probs[2:]).all() and np.isneginf(tgt.log_probs[:2]).all()
    assert tgt.name == "GDC pointwise, ε = 0.05" and tgt.params["epsilon"] == eps


# ---------------------------------------------------------------------------- distributional
@pytest.mark.parametrize("k", [1, 2, 3], ids=["K1", "K2", "K3"])
@pytest.mark.parametrize("zeros", [0, 3], ids=["full", "a-zeros"])
def test_distributional_is_the_information_projection(k, zeros):
    rng = np.random.default_rng(10 * k + zeros)
    n = 14
    log_a, phi, mu = feasible_problem(rng, n, k, zeros)
    tgt = targets.distributional(log_a, phi, mu)
    p, a = np.exp(tgt.log_probs), np.exp(log_a)
    # moments met, exponential-family form, support of a
    assert np.max(np.abs(p @ phi - mu)) <= 1e-8
    np.testing.assert_allclose(tgt.log_scores, log_a + phi @ tgt.lambdas, rtol=1e-12)
    assert np.all(np.isneginf(tgt.log_probs) == np.isneginf(log_a))
    # KL(p‖a) = λ·μ̄ − log Z
    assert kl(p, a) == pytest.approx(tgt.lambdas @ mu - tgt.log_z, abs=1e-10)
    # λ* is a stationary point (and the minimum) of the convex dual
    fun = lambda lam: dual(log_a, phi, mu, lam)  # noqa: E731
    assert np.max(np.abs(fd_gradient(fun, tgt.lambdas))) < 1e-7
    for _ in range(5):
        assert fun(tgt.lambdas) <= fun(tgt.lambdas + 0.1 * rng.normal(size=k)) + 1e-14
    # no distribution meeting the moments is closer to a (and Pythagoras holds exactly)
    vertices = lp_vertices(rng, phi, mu, np.isfinite(log_a))
    candidates = vertices + [rng.dirichlet(np.ones(len(vertices))) @ np.array(vertices) for _ in range(5)]
    candidates += [(1 - t) * p + t * v for t in (0.01, 0.5) for v in vertices[:3]]
    for q in candidates:
        np.testing.assert_allclose(q @ phi, mu, atol=1e-8)
        assert kl(q, a) >= kl(p, a) - 1e-10
        assert kl(q, a) == pytest.approx(kl(q, p) + kl(p, a), abs=1e-7)


def test_distributional_display_and_params():
    rng = np.random.default_rng(11)
    log_a, phi, mu = feasible_problem(rng, 10, 2)
    tgt = targets.distributional(log_a, phi, mu, feature_names=("len", "pos"))
    assert tgt.params["feature_names"] == ("len", "pos")
    assert tgt.params["residual"] <= 1e-8 and tgt.params["moments"] == tuple(mu)
    assert tgt.name.startswith("GDC distributional, E[len] = ") and "λ*" in tgt.describe()


def test_distributional_at_base_moments_is_the_base():
    rng = np.random.default_rng(12)
    log_a = random_log_a(rng, 9)
    phi = rng.normal(size=(9, 2))
    tgt = targets.distributional(log_a, phi, np.exp(log_a) @ phi)
    np.testing.assert_allclose(tgt.lambdas, 0.0, atol=1e-8)
    np.testing.assert_allclose(tgt.log_probs, log_a, atol=1e-8)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("gap", [1e-3, 1e-6], ids=["gap1e-3", "gap1e-6"])
def test_distributional_near_the_boundary_is_solved(gap):
    """Close to (not on) the hull's boundary λ* is large but finite and the moments are met."""
    log_a = np.log(np.full(3, 1 / 3))
    phi = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mu = np.array([0.5 - gap, 0.5 - gap])
    tgt = targets.distributional(log_a, phi, mu)
    assert np.max(np.abs(np.exp(tgt.log_probs) @ phi - mu)) <= 1e-8
    # closed form: p = (2·gap, ½ − gap, ½ − gap), λ_k = log(p_k / p_0)
    np.testing.assert_allclose(tgt.lambdas, np.log((0.5 - gap) / (2 * gap)), rtol=1e-6)


def test_distributional_large_feature_scale():
    rng = np.random.default_rng(13)
    log_a, phi, mu = feasible_problem(rng, 30, 2)
    phi, mu = phi * [1e3, 1e-3], mu * [1e3, 1e-3]
    tgt = targets.distributional(log_a, phi, mu, tol=1e-6)
    assert np.max(np.abs(np.exp(tgt.log_probs) @ phi - mu)) <= 1e-6


def test_convergence_warning_states_the_residual():
    """Near the hull's boundary λ* ≈ 6.2 is far from the start λ = 0: one step is not enough."""
    mu = np.array([0.499, 0.499])
    with pytest.warns(ConvergenceWarning, match=r"stopped after 1 iterations .* residual .* > tol=1e-08"):
        tgt = targets.distributional(_uniform(3), TRIANGLE, mu, max_iter=1)
    assert tgt.params["residual"] > 1e-8
    assert logsumexp(tgt.log_probs) == pytest.approx(0.0, abs=1e-12)  # still a valid target


# ---------------------------------------------------------------------------- hybrid
@pytest.mark.parametrize("k", [1, 2], ids=["K1", "K2"])
def test_hybrid_support_moments_and_kl_identity(k):
    rng = np.random.default_rng(20 + k)
    n = 16
    log_a = random_log_a(rng, n, zeros=2)
    b = rng.random(n) < 0.6
    b[[2, 3, 4, 5]] = True
    phi = rng.normal(size=(n, k))
    allowed = b & np.isfinite(log_a)
    mu = rng.dirichlet(np.ones(allowed.sum())) @ phi[allowed]
    tgt = targets.hybrid(log_a, b, phi, mu, feature_names=[f"f{i}" for i in range(k)])
    p, a = np.exp(tgt.log_probs), np.exp(log_a)
    np.testing.assert_array_equal(np.isneginf(tgt.log_probs), ~allowed)
    assert np.max(np.abs(p @ phi - mu)) <= 1e-8
    assert kl(p, a) == pytest.approx(tgt.lambdas @ mu - tgt.log_z, abs=1e-10)
    log_ab = np.where(b, log_a, -np.inf)
    assert np.max(np.abs(fd_gradient(lambda lam: dual(log_ab, phi, mu, lam), tgt.lambdas))) < 1e-7
    for q in lp_vertices(rng, phi, mu, allowed):  # the I-projection among q ≪ a·b
        assert kl(q, a) >= kl(p, a) - 1e-10
    assert tgt.kind == "hybrid" and tgt.constraint is not None and tgt.lambdas.shape == (k,)


def test_hybrid_smoothed_full_support():
    rng = np.random.default_rng(23)
    log_a, phi, mu = feasible_problem(rng, 12, 2)
    b = np.arange(12) % 2 == 0
    tgt = targets.hybrid(log_a, b, phi, mu, epsilon=0.2)
    assert np.isfinite(tgt.log_probs).all()
    assert np.max(np.abs(np.exp(tgt.log_probs) @ phi - mu)) <= 1e-8
    np.testing.assert_allclose(tgt.log_scores, log_a + np.where(b, 0, np.log(0.2)) + phi @ tgt.lambdas)


# ---------------------------------------------------------------------------- infeasible moments
SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
TRIANGLE = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
LINE = np.c_[SQUARE[:, 0], 2 * SQUARE[:, 0] + 1]  # φ_1 = 2 φ_0 + 1: affinely dependent


def _uniform(n):
    return np.full(n, -np.log(n))


@pytest.mark.parametrize("phi,mu,match", [
    (SQUARE, [1.5, 0.5], r"constraint 0 \('len'\): E\[φ_0\] = 1.5 cannot be met: it is outside the "),
    (SQUARE, [0.5, -0.1], r"constraint 1 \('pos'\).*outside the convex hull.*range \[0, 1\]"),
    (SQUARE, [0.5, 1.0], r"constraint 1 \('pos'\).*on the boundary.*λ_1 would diverge"),
    (SQUARE, [0.0, 0.5], r"constraint 0 \('len'\).*on the boundary"),
    (TRIANGLE, [0.6, 0.6], r"jointly infeasible, outside the .*constraint 0 \('len'\), constraint 1 \('pos'\)"),
    (TRIANGLE, [0.5, 0.5], r"jointly infeasible, on the boundary.*λ would diverge.*constraint 0 \('len'\)"),
    (np.c_[SQUARE[:, 0], np.full(5, 2.0)], [0.5, 2.0], r"constraint 1 \('pos'\).*constant feature"),
    (LINE, [0.5, 2.0], r"not unique: drop a redundant one, such as constraint 1 \('pos'\)"),
    (LINE, [0.5, 1.5], r"jointly infeasible.*breaks that dependency; constraint 1 \('pos'\)"),
], ids=["outside-0", "outside-1", "boundary-1", "boundary-0", "joint-outside", "joint-boundary",
        "constant", "dependent", "dependent-broken"])
def test_infeasible_moments_name_the_constraint(phi, mu, match):
    with pytest.raises(ValueError, match=match):
        targets.distributional(_uniform(len(phi)), phi, mu, feature_names=["len", "pos"])


def test_joint_infeasibility_names_the_culprit():
    """Square corners with φ_2 = 0 plus one point (0.9, 0.9, 1): E[φ_2] = 0.5 needs half the
    mass on that point, which pushes E[φ_0], E[φ_1] ≥ 0.45 > 0.1.  Without constraint 2 the
    others are feasible; without 0 or 1 they are not: constraint 2 is named."""
    phi = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.9, 0.9, 1.0]])
    with pytest.raises(ValueError, match=r"jointly infeasible, outside.*: constraint 2 \('c'\) cannot be met"):
        targets.distributional(_uniform(5), phi, [0.1, 0.1, 0.5], feature_names=["a", "b", "c"])


def test_hull_is_over_the_support_of_a():
    log_a = np.array([-np.inf, np.log(0.5), np.log(0.5)])
    phi = np.array([[3.0], [0.0], [1.0]])
    targets.distributional(log_a, phi, [0.5])  # feasible on the support
    with pytest.raises(ValueError, match=r"constraint 0: E\[φ_0\] = 2 cannot be met.*range \[0, 1\]"):
        targets.distributional(log_a, phi, [2.0])


def test_hybrid_hull_is_over_the_support_of_b():
    phi = np.array([[0.0], [1.0], [2.0], [3.0]])
    b = np.array([True, True, False, False])
    targets.distributional(_uniform(4), phi, [2.0])  # fine without b
    with pytest.raises(ValueError, match=r"constraint 0 \('x'\).*outside the convex hull.*\[0, 1\]"):
        targets.hybrid(_uniform(4), b, phi, [2.0], feature_names=["x"])


def test_large_support_detects_diverging_lambda(monkeypatch):
    """Beyond LP_MAX_SIZE no LP is solved; diverging λ is detected instead."""
    monkeypatch.setattr(targets, "LP_MAX_SIZE", 2)
    with pytest.raises(ValueError, match=r"constraint \d \('(len|pos)'\) cannot be met: λ diverges"):
        targets.distributional(_uniform(3), TRIANGLE, [0.6, 0.6], feature_names=["len", "pos"])
    tgt = targets.distributional(_uniform(3), TRIANGLE, [0.3, 0.3])  # feasible: unaffected
    assert np.max(np.abs(np.exp(tgt.log_probs) @ TRIANGLE - 0.3)) <= 1e-8


# ---------------------------------------------------------------------------- bad input
LOG_A = _uniform(4)
R = np.array([0.0, 1.0, 2.0, 3.0])
B = np.array([True, False, True, False])
PHI = np.array([[0.0], [1.0], [2.0], [3.0]])
A_HOLES = np.array([-np.inf, -np.log(2), -np.log(2), -np.inf])  # a = (0, ½, ½, 0)

BAD = {
    "beta-zero": (lambda: targets.rlhf(LOG_A, R, 0.0), r"beta=0.0 is out of range; allowed: \(0, inf\)"),
    "beta-negative": (lambda: targets.rlhf(LOG_A, R, -1), r"beta=-1 is out of range"),
    "beta-nan": (lambda: targets.rlhf(LOG_A, R, np.nan), r"beta=nan must be a finite real number"),
    "beta-inf": (lambda: targets.rlhf(LOG_A, R, np.inf), r"beta=inf must be a finite real number"),
    "beta-bool": (lambda: targets.rlhf(LOG_A, R, True), r"beta=True must be a finite real number"),
    "beta-str": (lambda: targets.rlhf(LOG_A, R, "0.1"), r"beta='0.1' must be a finite real number"),
    "reward-shape": (lambda: targets.rlhf(LOG_A, R[:3], 1.0), r"reward has shape \(3,\); expected \(4,\)"),
    "reward-nan": (lambda: targets.rlhf(LOG_A, [0, np.nan, 1, 2], 1.0),
                   r"reward contains NaN or inf at \[1\]"),
    "reward-inf": (lambda: targets.rlhf(LOG_A, [0, 1, np.inf, 2], 1.0),
                   r"reward contains NaN or inf at \[2\]"),
    "log_a-unnormalised": (lambda: targets.rlhf(np.zeros(4), R, 1.0),
                           r"log_a is not normalised: logsumexp\(log_a\) = 1.39"),
    "log_a-nan": (lambda: targets.rlhf([np.nan, 0, 0, 0], R, 1.0), r"log_a contains NaN or \+inf"),
    "log_a-posinf": (lambda: targets.pointwise([np.inf, 0, 0, 0], B), r"log_a contains NaN or \+inf"),
    "log_a-2d": (lambda: targets.rlhf(LOG_A[None], R, 1.0), r"log_a has shape \(1, 4\); expected \(N,\)"),
    "constraint-values": (lambda: targets.pointwise(LOG_A, [0, 1, 2, 1]),
                          r"constraint must be boolean-like .*got \[2\]"),
    "constraint-float": (lambda: targets.pointwise(LOG_A, [0, 0.5, 1, 1]),
                         r"constraint must be boolean-like .*0.5"),
    "constraint-str": (lambda: targets.pointwise(LOG_A, ["y", "n", "y", "n"]),
                       r"constraint must be boolean-like"),
    "constraint-shape": (lambda: targets.pointwise(LOG_A, B[:2]),
                         r"constraint has shape \(2,\); expected \(4,\)"),
    "constraint-empty": (lambda: targets.pointwise(LOG_A, np.zeros(4, bool)),
                         r"constraint: no sequence with a\(x\) > 0"),
    "constraint-off-support": (lambda: targets.pointwise(A_HOLES, [1, 0, 0, 1]),
                               r"constraint: no sequence with a\(x\) > 0 satisfies it"),
    "epsilon-negative": (lambda: targets.pointwise(LOG_A, B, epsilon=-0.1),
                         r"epsilon=-0.1 is out of range; allowed: \[0, 1\)"),
    "epsilon-one": (lambda: targets.pointwise(LOG_A, B, epsilon=1.0),
                    r"epsilon=1.0 is out of range; allowed: \[0, 1\)"),
    "epsilon-hybrid": (lambda: targets.hybrid(LOG_A, B, PHI, [1.0], epsilon=2), r"epsilon=2 is out of range"),
    "features-1d": (lambda: targets.distributional(LOG_A, PHI[:, 0], [1.0]),
                    r"features has shape \(4,\); expected \(4, K\)"),
    "features-rows": (lambda: targets.distributional(LOG_A, PHI[:3], [1.0]),
                      r"features has shape \(3, 1\); expected \(4, K\)"),
    "features-nan": (lambda: targets.distributional(LOG_A, PHI * np.nan, [1.0]), r"features must be finite"),
    "moments-length": (lambda: targets.distributional(LOG_A, PHI, [1.0, 2.0]),
                       r"moments has shape \(2,\); expected \(1,\)"),
    "moments-nan": (lambda: targets.hybrid(LOG_A, B, PHI, [np.nan]), r"moments=\[nan\] must be finite"),
    "feature_names": (lambda: targets.distributional(LOG_A, PHI, [1.0], feature_names=["a", "b"]),
                      r"feature_names has 2 names; expected 1"),
    "tol": (lambda: targets.distributional(LOG_A, PHI, [1.0], tol=0), r"tol=0 is out of range"),
    "max_iter": (lambda: targets.distributional(LOG_A, PHI, [1.0], max_iter=0),
                 r"max_iter=0 must be an integer ≥ 1"),
    "log_p": (lambda: targets.from_log_probs(np.zeros(4), LOG_A), r"log_p is not normalised"),
    "target-kind": (lambda: Target("ppo", LOG_A, 0.0, LOG_A, {}), r"kind='ppo' is not a target kind"),
    "target-log_z": (lambda: Target("custom", LOG_A, 1.0, LOG_A, {}),
                     r"log_z=1.0 is not logsumexp\(log_scores\)"),
    "target-log_a": (lambda: Target("custom", LOG_A, 0.0, _uniform(3), {}),
                     r"log_a has shape \(3,\); expected \(4,\)"),
    "target-reward": (lambda: Target("rlhf", LOG_A, 0.0, LOG_A, {}, reward=R[:2]),
                      r"reward has shape \(2,\); expected \(4,\)"),
}


@pytest.mark.parametrize("key", list(BAD))
def test_bad_input_raises_value_error(key):
    build, match = BAD[key]
    with pytest.raises(ValueError, match=match):
        build()


def test_from_log_probs():
    rng = np.random.default_rng(30)
    log_a, log_p = random_log_a(rng, 6), random_log_a(rng, 6, zeros=2)
    tgt = targets.from_log_probs(log_p, log_a, name="mine")
    assert tgt.kind == "custom" and tgt.name == "mine" and tgt.log_z == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(tgt.log_probs, log_p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "mine" in tgt.describe()


def test_boolean_features_are_accepted():
    rng = np.random.default_rng(31)
    log_a = random_log_a(rng, 10)
    phi = np.c_[np.arange(10) % 2 == 0, np.arange(10) % 3 == 0]  # (N, 2) bool
    tgt = targets.distributional(log_a, phi, [0.4, 0.3])
    np.testing.assert_allclose(np.exp(tgt.log_probs) @ phi, [0.4, 0.3], atol=1e-8)
    assert tgt.features.dtype == float


_LA4 = np.log(np.full(4, 0.25))
_PHI = np.arange(4.0)[:, None]
_HALF = np.array([np.log(0.5), np.log(0.5), -np.inf, -np.inf])


@pytest.mark.parametrize("call, match", [
    (lambda: targets.rlhf(_LA4, np.arange(4.0), 1e-320), r"beta=1e-320 is too small"),  # was inf log-scores
    (lambda: targets.rlhf(_LA4, np.arange(4.0) + 0j, 1.0), r"reward has dtype complex"),
    (lambda: targets.rlhf(_LA4.astype(complex), np.arange(4.0), 1.0), r"log_a="),
    (lambda: targets.rlhf("abcd", np.arange(4.0), 1.0), r"log_a='abcd'"),
    (lambda: targets.distributional(_LA4, _PHI, ["a"]), r"moments="),
    (lambda: targets.distributional(_LA4, _PHI, [1.0], feature_names=5), r"feature_names=5"),
    (lambda: targets.from_log_probs(_LA4, _LA4, name=5), r"name=5"),
    (lambda: targets.from_log_probs(_LA4, _HALF), r"p ≪ a"),
    (lambda: Target("custom", _LA4, None, _LA4), r"log_z=None"),
    (lambda: Target("custom", _LA4, 0.0, _LA4, 5), r"params=5"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_bad_input_audit(call, match):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning or ComplexWarning on the way
        with pytest.raises(ValueError, match=match):
            call()
