"""KTO: loss and gradient (finite differences, z₀ detached), the reference point z₀ exact against
its batch estimate (tolerance from the standard error), and the fixed point (stationarity, the
hard filter on thumbs-up odds, and where it sits against RLHF/DPO)."""

import numpy as np
import pytest
from scipy.special import expit, logit

from conftest import fd_gradient
from toyfdiv import optim, tasks, targets
from toyfdiv.feedback import Rater, collect_thumbs
from toyfdiv.feedback.kto import (kto_fixed_point, kto_gradient, kto_loss, kto_reference_point,
                                  kto_reference_point_estimate, kto_threshold, kto_update, kto_weights,
                                  population_kto_gradient, population_kto_loss)
from toyfdiv.policies import AutoregressivePolicy, TabularPolicy

BETA = 0.4


@pytest.fixture(scope="module")
def small():
    task = tasks.get("abc", length=3)
    u = np.random.default_rng(0).normal(0.0, 1.0, task.space.size)
    rater = Rater(u, temperature=1.0, threshold=0.3)
    data = collect_thumbs(rater, task.base, 400, np.random.default_rng(1))
    return task.space, task.log_a, rater, data


def test_loss_matches_the_per_example_sum(small):
    space, log_a, rater, data = small
    pol = AutoregressivePolicy(space, seed=2, init_scale=0.5)
    h = pol.log_probs() - log_a
    z0 = float(np.exp(pol.log_probs()) @ h)
    lam_d, lam_u = 1.3, 0.8
    v = np.where(data.labels, lam_d * expit(BETA * (h[data.items] - z0)), lam_u * expit(BETA * (z0 - h[data.items])))
    want = np.mean(np.where(data.labels, lam_d, lam_u) - v)
    assert kto_loss(pol, log_a, data, BETA, lam_d, lam_u) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("cls", [TabularPolicy, AutoregressivePolicy], ids=["tabular", "autoregressive"])
def test_gradient_with_z0_detached_matches_finite_differences(small, cls):
    space, log_a, _, data = small
    pol = cls(space, seed=3, init_scale=0.4)
    z0 = kto_reference_point(pol.log_probs(), log_a)
    fd = fd_gradient(lambda th: kto_loss(pol.with_params(th), log_a, data, BETA, 1.2, 0.9, z0=z0), pol.params)
    np.testing.assert_allclose(kto_gradient(pol, log_a, data, BETA, 1.2, 0.9), fd, atol=1e-8, rtol=1e-6)
    g, diag = kto_update(log_a, data, BETA, 1.2, 0.9)(pol, None)
    np.testing.assert_allclose(g, fd, atol=1e-8, rtol=1e-6)
    assert diag["z0"] == pytest.approx(z0)


def test_reference_point_exact_against_its_batch_estimate(small):
    """Unclamped batch means of log π/π_ref: on-policy samples → KL(π‖π_ref); data samples → E_μ[log π/π_ref]."""
    space, log_a, _, _ = small
    pol = AutoregressivePolicy(space, seed=5, init_scale=1.0)
    lp = pol.log_probs()
    h = lp - log_a
    rng = np.random.default_rng(7)
    m, trials = 64, 400
    for source, log_src in (("policy", lp), ("data", log_a)):
        exact = kto_reference_point(lp, log_a, None if source == "policy" else log_a)
        sd = np.sqrt(np.exp(log_src) @ (h - exact) ** 2)
        est = np.array([kto_reference_point_estimate(lp, log_a, rng.choice(space.size, m, p=np.exp(log_src)), clamp=False)
                        for _ in range(trials)])
        se = sd / np.sqrt(m * trials)
        assert abs(est.mean() - exact) < 4 * se, (source, est.mean(), exact, se)
        assert est.std() == pytest.approx(sd / np.sqrt(m), rel=0.15)
    assert kto_reference_point(lp, log_a) > 0 > kto_reference_point(lp, log_a, log_a)  # KL ≥ 0; −KL(a‖π) ≤ 0
    assert kto_reference_point_estimate(lp, log_a, np.arange(space.size)[np.argsort(h)[:5]]) == 0.0  # the clamp


@pytest.fixture(scope="module")
def reviews():
    task = tasks.default()
    s = expit(task.reward.values - 0.5)  # P(👍 | x): a logistic rater, threshold 0.5, τ = 1
    return task, s


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("lam_d,lam_u,rho", [(1.0, 1.0, None), (1.0, 1.0, 0.5), (1.33, 1.0, None), (1.0, 2.0, 0.7)])
def test_fixed_point_is_stationary_and_filters_by_odds(reviews, beta, lam_d, lam_u, rho):
    task, s = reviews
    la = task.log_a
    fp = kto_fixed_point(la, s, beta, sampling_log_probs=la, lambda_d=lam_d, lambda_u=lam_u, desirable_fraction=rho)
    W = kto_weights(s, la, lam_d, lam_u, rho)
    assert np.exp(fp.log_probs).sum() == pytest.approx(1.0, abs=1e-12)
    # support = the outputs whose thumbs-up log-odds beat the closed-form threshold
    np.testing.assert_array_equal(fp.support, logit(s) > kto_threshold(s, la, lam_d, lam_u, rho))
    np.testing.assert_array_equal(fp.support, W[0] > W[1])
    # z₀ = KL(π‖π_ref) and the z₀-detached gradient of the population loss vanishes
    m = fp.support
    assert fp.z0 == pytest.approx(float(np.exp(fp.log_probs[m]) @ (fp.log_probs[m] - la[m])), abs=1e-10)
    g = population_kto_gradient(fp.log_probs, la, W, beta, fp.z0)
    assert np.abs(g).max() < 1e-12
    # the z₀-detached loss is at a local minimum along random directions inside the support
    rng = np.random.default_rng(0)
    base = population_kto_loss(fp.log_probs, la, W, beta, fp.z0)
    for _ in range(3):
        d = np.where(m, rng.normal(size=m.size), 0.0)
        for eps in (1e-3, -1e-3):
            lp = np.where(m, fp.log_probs + eps * d, -np.inf)
            lp = lp - np.log(np.exp(lp).sum())
            assert population_kto_loss(lp, la, W, beta, fp.z0) >= base - 1e-12


def test_natural_balance_and_equal_weights_keep_the_outputs_more_likely_up(reviews):
    task, s = reviews
    assert kto_threshold(s, task.log_a) == pytest.approx(0.0, abs=1e-12)
    assert kto_threshold(s, task.log_a, 1.0, 2.0) == pytest.approx(np.log(2.0))


def test_training_reaches_the_fixed_point(reviews):
    """Exact population-gradient descent from π_ref, z₀ recomputed (detached) each step, approaches the fixed point."""
    task, s = reviews
    la, beta = task.log_a, 0.5
    W = kto_weights(s, la)
    fp = kto_fixed_point(la, s, beta, sampling_log_probs=la)
    opt = optim.get("adam", 0.1)
    theta = np.array(la)
    state = opt.init(theta)
    tv = []
    for k in range(3000):
        lp = theta - np.log(np.exp(theta - theta.max()).sum()) - theta.max()
        theta, state = opt.step(theta, population_kto_gradient(lp, la, W, beta), state)
        if k in (299, 2999):
            tv.append(0.5 * np.abs(np.exp(lp) - np.exp(fp.log_probs)).sum())
    assert tv[1] < tv[0] and tv[1] < 0.02, tv


def test_kto_sits_apart_from_rlhf(reviews):
    """RLHF/DPO with the same logistic reward keep full support; KTO's fixed point drops every output below the odds threshold."""
    task, s = reviews
    la = task.log_a
    outside = []
    for beta in (0.1, 0.5, 0.9):
        p = targets.rlhf(la, logit(s), beta)
        fp = kto_fixed_point(la, s, beta, sampling_log_probs=la)
        assert np.all(np.isfinite(p.log_probs)) and not fp.support.all()
        assert np.exp(fp.log_probs)[~fp.support].sum() == 0.0
        outside.append(np.exp(p.log_probs)[~fp.support].sum())
    assert outside[0] < outside[1] < outside[2] and outside[2] > 0.1  # RLHF's β decides; KTO's filter does not move


def test_bad_input_is_refused(small, reviews):
    space, log_a, _, data = small
    task, s = reviews
    with pytest.raises(ValueError, match="beta"):
        kto_fixed_point(task.log_a, s, 1.5)
    with pytest.raises(ValueError, match="desirable_fraction"):
        kto_weights(s, None, desirable_fraction=1.0)
    with pytest.raises(ValueError, match="ThumbsDataset"):
        kto_loss(log_a, log_a, "data", BETA)
    with pytest.raises(ValueError, match="lambda_d"):
        kto_loss(log_a, log_a, data, BETA, lambda_d=0)
    with pytest.raises(ValueError, match="samples"):
        kto_reference_point_estimate(log_a, log_a, np.array([], dtype=int))


def test_training_through_the_one_loop(small):
    """train_po('kto') on thumbs: the recorded z₀-detached loss falls, and KL(π‖π_ref) is recorded."""
    from toyfdiv.feedback import train_po

    space, log_a, _, data = small
    hist = train_po(TabularPolicy.from_log_probs(space, log_a), "kto", log_a, data, BETA, steps=200, lr=0.05,
                    lambda_d=1.0, lambda_u=1.5)
    assert hist.loss[-1] < hist.loss[0] - 0.05
    assert abs(hist.metrics["kl_from_ref"][0]) < 1e-12 < hist.metrics["kl_from_ref"][-1]


def test_kto_gold_curve_is_the_fixed_points_utility(reviews):
    from toyfdiv.feedback import kto_gold_curve

    task, s = reviews
    u = task.reward.values
    c = kto_gold_curve(task.log_a, s, u, [0.9, 0.3, 0.05])
    for b, g in zip(c.betas, c.gold):
        assert g == pytest.approx(np.exp(kto_fixed_point(task.log_a, s, b, sampling_log_probs=task.log_a).log_probs) @ u)
    with pytest.raises(ValueError, match="β < 1"):
        kto_gold_curve(task.log_a, s, u, [2.0, 0.5])


# ---------------------------------------------------------------------------- what the filter keeps
def _support_by_hand(fp, s, log_q):
    """The independent count: π_KTO(x) = 0 read off log_probs, the odds s/(1 − s) against e^τ, q summed in a loop."""
    dropped = [i for i, lp in enumerate(fp.log_probs) if lp == -np.inf]
    odds_above = sum(1 for v in s if v == 1 or (v > 0 and v / (1 - v) > np.exp(fp.threshold)))
    return (len(s) - len(dropped), odds_above, sum(float(np.exp(log_q[i])) for i in dropped),
            sum(1 for v in log_q if v > -np.inf))


@pytest.mark.parametrize("beta, only_odds", [(0.5, True), (1.0, False)], ids=["beta<1", "beta=1"])
def test_kto_support_counts_and_mass_outside_against_enumeration(beta, only_odds):
    """β < 1: the support is exactly the odds filter; β = 1 (undesirable outputs weighing double) a second filter
    drops more.  The RLHF/DPO optimum π_ref e^{logit s/β}/Z has full support and puts mass outside KTO's."""
    from toyfdiv.feedback import dpo_optimum, kto_support

    task = tasks.get("abc", length=3)  # N = 27
    s = expit(np.random.default_rng(0).normal(0.0, 1.5, task.space.size))
    kw = dict(sampling_log_probs=task.log_a, lambda_u=2.0, desirable_fraction=0.7)
    fp = kto_fixed_point(task.log_a, s, beta, **kw)
    log_q = dpo_optimum(task.log_a, logit(s), beta)
    got = kto_support(fp, s, log_q)
    kept, above, outside, q_kept = _support_by_hand(fp, s, log_q)
    assert (got.kept, got.above_threshold, got.other_kept) == (kept, above, q_kept) == (kept, above, 27)
    assert got.odds_filter_only is only_odds and (kept == above) is only_odds
    assert 0 < kept < 27 and got.other_mass_outside == pytest.approx(outside, rel=1e-12)
    assert got.other_mass_outside == pytest.approx(1 - np.exp(log_q[np.isfinite(fp.log_probs)]).sum(), abs=1e-12)
    assert got.other_smallest == pytest.approx(min(np.exp(log_q)), rel=1e-12)


def test_kto_support_of_a_policy_with_zeros_and_bad_input():
    from toyfdiv.feedback import kto_support

    task = tasks.get("abc", length=2)  # N = 9
    s = np.linspace(0.05, 0.95, 9)
    fp = kto_fixed_point(task.log_a, s, 0.5, sampling_log_probs=task.log_a)  # threshold 0 at the natural balance
    q = np.where(fp.support, 0.0, np.exp(task.log_a))  # q only where KTO has nothing
    with np.errstate(divide="ignore"):
        log_q = np.log(q / q.sum())
    got = kto_support(fp, s, log_q)
    assert got.kept == 4 and got.above_threshold == 4 and got.odds_filter_only  # s > ½: 0.6125, 0.725, 0.8375, 0.95
    assert got.other_kept == 5 and got.other_smallest == 0.0 and got.other_mass_outside == pytest.approx(1.0)
    with pytest.raises(ValueError, match="fixed_point="):
        kto_support("fp", s, task.log_a)
    with pytest.raises(ValueError, match=r"p_up has shape \(3,\)"):
        kto_support(fp, s[:3], task.log_a)
    with pytest.raises(ValueError, match="p_up must hold probabilities"):
        kto_support(fp, s + 0.1, task.log_a)
    with pytest.raises(ValueError, match="other_log_probs is not normalised"):
        kto_support(fp, s, task.log_a + 0.1)
