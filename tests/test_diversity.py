"""Diversity: pass@k exact vs Monte Carlo, distinct correct answers, the f-regularised targets
(KKT and an independent optimiser), the never-loses-pass@k theorem for every f, and MARA."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import comb, log_softmax, softmax

from toyfdiv import divergences
from toyfdiv import diversity as dv

FS = ["reverse_kl", "forward_kl", "js", "hellinger", "pearson", "neyman", "alpha(0.5)", "alpha(2)", "gjsd(0.3)"]


def _div(name):
    if name.startswith("alpha("):
        return divergences.alpha(float(name[6:-1]))
    if name.startswith("gjsd("):
        return divergences.gjsd(float(name[5:-1]))
    return divergences.get(name)


@pytest.fixture(scope="module")
def prompts():
    """C = 4 prompts over N = 12 answers; a reward that is higher on every correct answer."""
    rng = np.random.default_rng(0)
    log_a = log_softmax(rng.normal(0, 1.5, (4, 12)), axis=1)
    correct = rng.random((4, 12)) < 0.3
    correct[:, 0] = True
    correct[:, 1] = False
    reward = np.where(correct, 1.0 + rng.random((4, 12)), rng.random((4, 12)))  # correct ≥ 1 > incorrect
    return log_a, correct, reward


def test_pass_at_k_exact_against_monte_carlo(prompts):
    log_a, correct, _ = prompts
    k, trials = 5, 20000
    rng = np.random.default_rng(1)
    exact = dv.pass_at_k_policy(log_a, correct, k)
    for c in range(log_a.shape[0]):
        draws = rng.choice(log_a.shape[1], size=(trials, k), p=np.exp(log_a[c]))
        hit = correct[c][draws].any(axis=1)
        se = np.sqrt(exact[c] * (1 - exact[c]) / trials)
        assert abs(hit.mean() - exact[c]) < 4 * se + 1e-12, (c, hit.mean(), exact[c])


def test_unbiased_estimator_averages_to_the_exact_value(prompts):
    """E over n-sample draws of 1 − C(n−c, k)/C(n, k) equals pass@k: an exact binomial sum."""
    log_a, correct, _ = prompts
    p = dv.p_correct(log_a, correct)
    n, k = 10, 4
    c = np.arange(n + 1)
    for pc in p:
        weights = comb(n, c) * pc**c * (1 - pc) ** (n - c)
        assert weights @ dv.pass_at_k_estimate(c, n, k) == pytest.approx(dv.pass_at_k(pc, k), abs=1e-12)
    np.testing.assert_allclose(dv.pass_at_k_estimate(np.array([0, 7, 10]), 10, 4), [0.0, 1.0, 1.0])


def test_expected_distinct_correct_against_monte_carlo(prompts):
    log_a, correct, _ = prompts
    k, trials = 6, 20000
    rng = np.random.default_rng(2)
    exact = dv.expected_distinct_correct(log_a, correct, k)
    for c in range(2):
        draws = rng.choice(log_a.shape[1], size=(trials, k), p=np.exp(log_a[c]))
        counts = np.array([len(set(row[correct[c][row]])) for row in draws])
        assert abs(counts.mean() - exact[c]) < 4 * counts.std() / np.sqrt(trials)


@pytest.mark.parametrize("name", FS)
@pytest.mark.parametrize("beta", [0.05, 0.5, 5.0])
def test_regularised_target_is_the_optimum(prompts, name, beta):
    """KKT: r − β f'(π/a) is one constant on supp π (and lower off it); an optimiser over the simplex agrees."""
    log_a, _, reward = prompts
    div = _div(name)
    la, r = log_a[0], reward[0]
    lp = dv.regularised_target(la, r, beta, div)
    assert abs(np.exp(lp).sum() - 1) < 1e-12
    on = np.isfinite(lp)
    with np.errstate(divide="ignore", over="ignore"):
        lam = r[on] - beta * div.f_prime(np.exp(lp[on] - la[on]))
    assert np.ptp(lam) < 1e-7 * max(1.0, np.abs(lam).max())
    if not on.all():  # clipped: a reward too low to earn mass even at t = 0
        assert np.all(r[~on] - beta * float(div.f_prime(0.0)) <= lam.mean() + 1e-9)

    def objective(th):  # −J(softmax θ) and its gradient, J = E_π[r] − β D_f(π ‖ a)
        pi = softmax(th)
        v = r - beta * div.f_prime(pi / np.exp(la))  # ∂J/∂π
        return -(pi @ r - beta * div.value(np.log(pi), la)), -pi * (v - pi @ v)
    if on.all():  # an independent optimiser over softmax logits (interior optimum only)
        res = minimize(objective, la, jac=True, method="BFGS", options=dict(gtol=1e-10, maxiter=2000))
        assert -res.fun <= -objective(lp)[0] + 1e-7
        np.testing.assert_allclose(softmax(res.x), np.exp(lp), atol=2e-4)


@pytest.mark.parametrize("name", FS)
def test_exact_targets_never_lose_pass_at_k(prompts, name):
    """P_{π*_f}(correct | c) ≥ P_a(correct | c) for every prompt, β and convex f; so does pass@k."""
    log_a, correct, reward = prompts
    div = _div(name)
    for beta in (0.02, 0.2, 2.0, 20.0):
        for c in range(log_a.shape[0]):
            lp = dv.regularised_target(log_a[c], reward[c], beta, div)
            assert dv.p_correct(lp, correct[c]) >= dv.p_correct(log_a[c], correct[c]) - 1e-12
            for k in (1, 4, 16):
                assert dv.pass_at_k_policy(lp, correct[c], k) >= dv.pass_at_k_policy(log_a[c], correct[c], k) - 1e-12


def test_the_theorem_needs_the_ordering():
    """A reward that ranks an incorrect answer above a correct one can lose P(correct) (the hypothesis matters)."""
    log_a = np.log([0.5, 0.25, 0.25])
    correct = np.array([True, False, False])
    reward = np.array([0.0, 1.0, 0.0])
    lp = dv.regularised_target(log_a, reward, 0.1, "reverse_kl")
    assert dv.p_correct(lp, correct) < 0.5


@pytest.mark.parametrize("name", ["reverse_kl", "forward_kl"])
def test_two_correct_answers_stay_100_to_1_and_mara_flattens_reverse_kl(name):
    log_a = np.log([0.1, 0.001, 0.5, 0.399])
    reward = np.array([1.0, 1.0, 0.0, 0.0])
    correct = reward > 0
    for beta in np.geomspace(0.01, 100, 9):
        p = np.exp(dv.regularised_target(log_a, reward, beta, name))
        assert p[0] / p[1] == pytest.approx(100.0, rel=1e-9)
    for beta in (0.1, 1.0, 10.0):
        q = np.exp(dv.mara_target(log_a, reward, beta, 0.5, name))
        plain = dv.regularised_target(log_a, reward, beta, name)
        if name == "reverse_kl":
            assert q[0] / q[1] == pytest.approx(1.0, rel=1e-9)  # flat on the good set
            np.testing.assert_allclose(q[2:] / q[2:].sum(), [0.5 / 0.899, 0.399 / 0.899])
        assert dv.expected_distinct_correct(np.log(q), correct, 8) > dv.expected_distinct_correct(plain, correct, 8)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="k="):
        dv.pass_at_k(0.5, 0)
    with pytest.raises(ValueError, match="p must"):
        dv.pass_at_k(1.5, 2)
    with pytest.raises(ValueError, match="correct"):
        dv.p_correct(np.log([0.5, 0.5]), [1, 2])
    with pytest.raises(ValueError, match="log_a is -inf"):
        dv.tv_target([0.0, -np.inf], [0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="beta"):
        dv.tv_target(np.log([0.5, 0.5]), [0.0, 1.0], 0.0)
    with pytest.raises(ValueError, match="reward has shape"):
        dv.tv_target(np.log([0.5, 0.5]), [0.0, np.inf], 1.0)
    with pytest.raises(ValueError, match="threshold"):
        dv.mara_reward(np.log([0.5, 0.5]), [0.0, 1.0], 1.0, 2.0)
    with pytest.raises(ValueError, match="n_correct"):
        dv.pass_at_k_estimate(np.array([11]), 10, 2)


def test_shared_head_gradient_matches_finite_differences(prompts):
    from conftest import fd_gradient

    log_a, correct, reward = prompts
    log_p = np.stack([dv.regularised_target(log_a[c], reward[c], 0.5, "reverse_kl") for c in range(4)])
    phi = np.random.default_rng(3).normal(size=(12, 3))
    log_rho = np.log([0.1, 0.2, 0.3, 0.4])
    th = np.array([0.3, -0.2, 0.5])
    for name in ("reverse_kl", "forward_kl", "js"):
        fd = fd_gradient(lambda t: dv.shared_head_objective(t, log_a, log_p, phi, name, log_rho)[0], th)
        np.testing.assert_allclose(dv.shared_head_objective(th, log_a, log_p, phi, name, log_rho)[1], fd, atol=1e-8)


def test_a_shared_parameter_policy_loses_pass_at_k_on_a_minority_prompt():
    """Two prompts sharing one head: the exact targets raise P(correct) on both (0.30 → 0.923), but the
    shared optimum trades the rarer prompt away — below the base model's 0.30 under reverse and forward KL."""
    la = np.log(np.array([[0.3, 0.3, 0.4], [0.3, 0.3, 0.4]]))
    correct = np.array([[1, 0, 0], [0, 1, 0]], dtype=bool)
    log_p = np.stack([dv.regularised_target(la[c], correct[c].astype(float), 0.3, "reverse_kl") for c in range(2)])
    np.testing.assert_allclose(dv.p_correct(log_p, correct), 0.3 * np.exp(1 / 0.3) / (0.3 * np.exp(1 / 0.3) + 0.7))
    lost = {}
    for name in ("reverse_kl", "forward_kl"):
        lpi = dv.shared_head_optimum(la, log_p, np.eye(3), name, np.log([0.75, 0.25]))
        theta = lpi[0] - la[0]  # π ∝ a e^θ with one-hot features: θ = log π/a up to a constant
        _, g = dv.shared_head_objective(theta, la, log_p, np.eye(3), name, np.log([0.75, 0.25]))
        assert np.abs(g).max() < 1e-6  # stationary
        pc = dv.p_correct(lpi, correct)
        assert pc[0] > 0.3 and pc[1] < 0.3, (name, pc)
        assert dv.pass_at_k_policy(lpi, correct, 4)[1] < dv.pass_at_k_policy(la, correct, 4)[1]
        lost[name] = pc[1]
    assert lost["reverse_kl"] < lost["forward_kl"]  # mode seeking trades more of the minority prompt away


# ---------------------------------------------------------------------------- TV: a linear programme
def _tv_objective(pi, a, r, beta):
    return float(pi @ r - beta * 0.5 * np.abs(pi - a).sum())


def _tv_linprog(a, r, beta):
    """max r·π − (β/2) Σ u  s.t.  u ≥ ±(π − a), Σ π = 1, π, u ≥ 0 (scipy's HiGHS): the independent oracle."""
    from scipy.optimize import linprog

    N = a.size
    eye = np.eye(N)
    A_ub = np.block([[eye, -eye], [-eye, -eye]])
    b_ub = np.concatenate([a, -a])
    res = linprog(np.concatenate([-r, np.full(N, beta / 2)]), A_ub=A_ub, b_ub=b_ub,
                  A_eq=np.concatenate([np.ones(N), np.zeros(N)])[None, :], b_eq=[1.0], bounds=(0, None), method="highs")
    assert res.status == 0
    return -res.fun


@pytest.mark.parametrize("seed", range(8))
def test_tv_target_is_the_linprog_optimum(seed):
    rng = np.random.default_rng(seed)
    N = int(rng.integers(2, 12))
    a = rng.dirichlet(np.ones(N))
    r = np.round(rng.normal(size=N), 1) if seed % 2 else rng.normal(size=N)  # rounded: ties at r_max and r_max − β
    beta = float(rng.choice([0.05, 0.3, 1.0, 3.0])) if seed % 2 == 0 else 0.5
    lp = dv.regularised_target(np.log(a), r, beta, "tv")
    np.testing.assert_array_equal(lp, dv.tv_target(np.log(a), r, beta))
    pi = np.exp(lp)
    assert pi.sum() == pytest.approx(1.0, abs=1e-14)
    assert _tv_objective(pi, a, r, beta) == pytest.approx(_tv_linprog(a, r, beta), abs=1e-9)
    # the shape derived in the docstring: zero below r_max − β, a in between, the rest on the maximisers ∝ a
    drop, top = r < r.max() - beta, r == r.max()
    assert np.all(pi[drop] == 0)
    np.testing.assert_allclose(pi[~drop & ~top], a[~drop & ~top], rtol=1e-13)
    np.testing.assert_allclose(pi[top] / pi[top].sum(), a[top] / a[top].sum(), rtol=1e-13)
    # no feasible move improves it: mass δ from any y with π(y) > 0 to any x
    base = _tv_objective(pi, a, r, beta)
    for y in np.flatnonzero(pi > 0):
        for x in range(N):
            q = pi.copy()
            d = min(1e-3, pi[y])
            q[y] -= d
            q[x] += d
            assert _tv_objective(q, a, r, beta) <= base + 1e-12


def test_tv_target_never_loses_pass_at_k_and_joins_the_rows():
    a = np.log([0.1, 0.001, 0.5, 0.399])
    correct = np.array([True, True, False, False])
    r = correct.astype(float)
    for beta in (0.3, 0.999, 1.0, 3.0):
        pi = np.exp(dv.tv_target(a, r, beta))
        want = 1.0 if beta < 1 else 0.101  # r_max − r = 1: moved iff β < 1
        assert pi[correct].sum() == pytest.approx(want, abs=1e-12)
        assert pi[0] / pi[1] == pytest.approx(100.0)  # a's ratio within the correct answers, as for every f
    rows = dv.diversity_rows(a, r, correct, [0.3, 3.0], ["tv", "reverse_kl"], k=4)
    tv = [row for row in rows if row["divergence"] == "tv"]
    assert [row["p_correct"] for row in tv] == pytest.approx([1.0, 0.101])
    assert all(row["pass_at_k"] >= row["base_pass_at_k"] - 1e-12 for row in rows)
