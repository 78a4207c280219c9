"""χ²PO: the link, loss gradient (finite differences), the mixed χ²+KL target against an
independent optimiser, and the gold-utility curves of RLHF, DPO, IPO and χ²PO."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax, xlogy

from conftest import fd_gradient
from toyfdiv import tasks, targets
from toyfdiv.exercises import lesson7
from toyfdiv.feedback import Rater, collect_preferences, fit_reward_model, ngram_features
from toyfdiv.feedback.chipo import chipo_gradient, chipo_link, chipo_loss, chipo_optimum, chipo_update, log_omega
from toyfdiv.feedback.gold import gold_utility_curves, ml_implicit_reward
from toyfdiv.feedback.ipo import ipo_dataset_optimum
from toyfdiv.policies import AutoregressivePolicy, TabularPolicy

BETA = 0.7


@pytest.fixture(scope="module")
def small():
    task = tasks.get("abc", length=3)
    r = np.random.default_rng(0).normal(0.0, 1.0, task.space.size)
    data = collect_preferences(Rater(r), task.base, 300, np.random.default_rng(1))
    return task.space, task.log_a, r, data


def test_link_and_wright_omega():
    z = np.array([1e-6, 0.3, 1.0, 7.0, 1e4])
    np.testing.assert_allclose(chipo_link(np.log(z)), z + np.log(z), rtol=1e-14)
    from scipy.special import wrightomega

    y = np.array([-800.0, -30.0, -3.0, 0.0, 1.0, 1.5, 50.0, 1e6, 1e300])
    u = log_omega(y)
    np.testing.assert_allclose(np.exp(u) + u, y, rtol=1e-13, atol=1e-13)  # the defining equation
    finite = y > -700
    np.testing.assert_allclose(np.exp(u[finite]), np.real(wrightomega(y[finite])), rtol=1e-13)  # scipy's ω
    assert log_omega(np.array([-800.0]))[0] == pytest.approx(-800.0)  # ω ≈ e^y: log ω = y


@pytest.mark.parametrize("clip", [None, 0.3], ids=["unclipped", "clip0.3"])
@pytest.mark.parametrize("cls", [TabularPolicy, AutoregressivePolicy], ids=["tabular", "autoregressive"])
def test_gradient_matches_finite_differences(small, cls, clip):
    space, log_a, _, data = small
    pol = cls(space, seed=4, init_scale=0.3)
    fd = fd_gradient(lambda th: chipo_loss(pol.with_params(th), log_a, data, BETA, clip), pol.params)
    np.testing.assert_allclose(chipo_gradient(pol, log_a, data, BETA, clip), fd, atol=1e-7, rtol=1e-6)
    g, diag = chipo_update(log_a, data, BETA, clip)(pol, None)
    np.testing.assert_array_equal(g, chipo_gradient(pol, log_a, data, BETA, clip))
    assert diag["loss"] == chipo_loss(pol, log_a, data, BETA, clip)


def test_loss_is_dpo_with_the_link_changed(small):
    space, log_a, _, data = small
    pol = AutoregressivePolicy(space, seed=1, init_scale=0.5)
    t = np.exp(pol.log_probs() - log_a)
    d = BETA * ((t + np.log(t))[data.winners] - (t + np.log(t))[data.losers])
    assert chipo_loss(pol, log_a, data, BETA) == pytest.approx(np.mean(np.log1p(np.exp(-d))), rel=1e-12)


@pytest.mark.parametrize("beta", [0.2, 0.7, 20.0])
def test_mixed_target_solves_its_equation_and_maximises_the_objective(small, beta):
    """z + log z = (r − λ)/β with one λ, and an optimiser of E_π[r] − β[½χ² + KL] finds the same π."""
    space, log_a, r, _ = small
    lp = chipo_optimum(log_a, r, beta)
    log_z = lp - log_a
    lam = r - beta * (np.exp(log_z) + log_z)
    assert np.ptp(lam) < 1e-9 * max(1.0, abs(lam).max())
    a = np.exp(log_a)

    def neg_objective(th):  # −(E_π[r] − β Σ a(½(z − 1)² + z log z)) and its gradient in θ
        pi = softmax(th)
        zz = pi / a
        v = r - beta * (zz + np.log(zz))
        return -(pi @ r - beta * (a @ (0.5 * (zz - 1) ** 2) + xlogy(pi, zz).sum())), -pi * (v - pi @ v)

    res = minimize(neg_objective, log_a, jac=True, method="BFGS", options=dict(gtol=1e-11, maxiter=5000))
    np.testing.assert_allclose(softmax(res.x), np.exp(lp), atol=1e-6)
    assert neg_objective(lp)[0] <= res.fun + 1e-10


def test_chi_squared_caps_the_ratio_where_kl_does_not(small):
    """max π*/π_ref grows like 1/β under χ²PO but like exp(1/β) under KL (same reward)."""
    space, log_a, r, _ = small
    ratio = lambda lp: np.exp(lp - log_a).max()
    for beta in (0.3, 0.1):
        assert ratio(chipo_optimum(log_a, r, beta)) < ratio(targets.rlhf(log_a, r, beta).log_probs)
    assert ratio(chipo_optimum(log_a, r, 0.01)) < (r.max() - r.min()) / 0.01 + 1 + 1e-9


def test_newton_implicit_reward_equals_the_lbfgs_reward_model(small):
    space, log_a, _, data = small
    r1 = ml_implicit_reward(data, l2=0.1, centre_log_probs=log_a)
    r2 = fit_reward_model(data, l2=0.1, centre_log_probs=log_a, tol=1e-14).values
    np.testing.assert_allclose(r1, r2, atol=1e-5)


@pytest.fixture(scope="module")
def gold():
    """The lesson-7 rater task: a rater that likes 'film' (+2 per mention), 1000 pairs from a."""
    task = tasks.default()
    rater = lesson7.biased_rater()
    data = collect_preferences(rater, task.base, 1000, np.random.default_rng(1))
    rm = fit_reward_model(data, ngram_features(task.space)[0], centre_log_probs=task.log_a)
    betas = np.geomspace(10, 0.01, 13)
    return task, rater, data, rm, betas, gold_utility_curves(task.log_a, data, rater.utility, betas, rlhf_reward=rm)


def test_gold_curves_are_each_methods_closed_form(gold):
    task, rater, data, rm, betas, curves = gold
    r_hat = ml_implicit_reward(data, 1e-2, task.log_a)
    u = rater.utility
    i = 5
    b = curves["DPO"].betas[i]
    assert curves["RLHF"].gold[i] == pytest.approx(np.exp(targets.rlhf(task.log_a, rm.values, b).log_probs) @ u)
    assert curves["DPO"].gold[i] == pytest.approx(np.exp(targets.rlhf(task.log_a, r_hat, b).log_probs) @ u)
    assert curves["χ²PO"].gold[i] == pytest.approx(np.exp(chipo_optimum(task.log_a, r_hat, b)) @ u)
    assert curves["IPO"].gold[i] == pytest.approx(np.exp(ipo_dataset_optimum(task.log_a, data, b)) @ u)
    for c in curves.values():
        assert np.all(np.diff(c.betas) < 0) and c.decline >= 0 and c.peak == c.gold.max()
        assert c.kl[0] < c.kl[-1]  # optimising harder moves further from a


def test_rlhf_on_the_biased_reward_model_peaks_and_declines(gold):
    """Goodhart on the rater task: RLHF's gold utility turns (peak inside the grid, then a drop ≫ rounding)."""
    *_, curves = gold
    c = curves["RLHF"]
    assert 0 < c.peak_index < c.betas.size - 1 and c.decline > 0.1, (c.peak_beta, c.peak, c.decline)


def test_bad_input_is_refused(small):
    space, log_a, r, data = small
    with pytest.raises(ValueError, match="beta"):
        chipo_optimum(log_a, r, 0.0)
    with pytest.raises(ValueError, match="clip"):
        chipo_loss(log_a, log_a, data, BETA, clip=-1)
    with pytest.raises(ValueError, match="methods"):
        gold_utility_curves(log_a, data, r, methods=["PPO"])
    with pytest.raises(ValueError, match="rlhf_reward"):
        gold_utility_curves(log_a, data, r)


def test_training_through_the_one_loop_closes_the_gap_to_the_likelihood_floor(small):
    """χ²PO by train_po from π_ref: the loss falls towards its infimum, the Bradley–Terry NLL of the ML
    implicit reward (φ(t) spans ℝ, so β φ(π/π_ref) can equal r̂_ML + c), and the margins follow r̂_ML."""
    from scipy.special import log_expit

    from toyfdiv.feedback import train_po

    space, log_a, _, data = small
    hist = train_po(TabularPolicy.from_log_probs(space, log_a), "chipo", log_a, data, BETA, steps=600, lr=0.05)
    r_ml = ml_implicit_reward(data, 1e-6, log_a)
    floor = float(-log_expit(r_ml[data.winners] - r_ml[data.losers]).mean())
    assert np.all(np.diff(hist.loss) <= 1e-9)  # full-batch Adam at this lr: monotone here
    assert hist.loss[-1] - floor < 0.1 * (hist.loss[0] - floor)
    t = np.exp(hist.policy.log_probs() - log_a)
    phi = BETA * (t + np.log(t))
    d_fit, d_ml = phi[data.winners] - phi[data.losers], r_ml[data.winners] - r_ml[data.losers]
    assert np.corrcoef(d_fit, d_ml)[0, 1] > 0.95
