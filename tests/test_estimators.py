"""Sampled f-DPG estimators held against the exact gradient.

Statistical tests use a fixed seed and tolerances derived from the observed standard
error: a mean of T independent estimates is compared with the truth coordinate-wise within
Z_TOL standard errors (with ~10² coordinates per test, a false alarm at 4.5 σ has
probability < 10⁻³ even without the fixed seed).
"""

import numpy as np
import pytest

from toyfdiv import AutoregressivePolicy, SequenceSpace, divergences, fdpg, targets, tasks
from toyfdiv.estimator_lab import estimator_stats, format_stats, sample_estimates
from toyfdiv.estimators import EstimatorState, rlhf_reinforce_gradient, sampled_estimate

DIVS = list(divergences.registered())
DIV_IDS = [d.name for d in DIVS]
Z_TOL = 4.5  # standard errors
SPACE = SequenceSpace(["a", "b"], 3, "</s>")  # N = 7, P = 9: thousands of trials in milliseconds


def random_log_probs(rng, size, scale=1.0):
    z = scale * rng.standard_normal(size)
    return z - np.log(np.exp(z).sum())


@pytest.fixture(scope="module")
def problem():
    """A policy and a random full-support RLHF target on the small space."""
    rng = np.random.default_rng(0)
    tgt = targets.rlhf(random_log_probs(rng, SPACE.size), 2 * rng.standard_normal(SPACE.size), beta=0.7)
    return AutoregressivePolicy(SPACE, seed=1, init_scale=0.5), tgt


@pytest.fixture(scope="module")
def default_task():
    task = tasks.default()
    return task, task.target("rlhf")


def assert_unbiased(G, exact, z_tol=Z_TOL):
    """Mean of the rows of G within z_tol standard errors of ``exact``, coordinate-wise."""
    mean = G.mean(axis=0)
    se = G.std(axis=0, ddof=1) / np.sqrt(len(G))
    excess = np.abs(mean - exact) - (z_tol * se + 1e-12)
    assert excess.max() <= 0, f"|mean − exact| / se = {np.max(np.abs(mean - exact) / (se + 1e-300)):.2f}"


# ---------------------------------------------------------------------------- unbiasedness
@pytest.mark.parametrize("baseline", ["none", "loo", "dpg"])
@pytest.mark.parametrize("div", DIVS, ids=DIV_IDS)
def test_exact_z_is_unbiased(problem, div, baseline):
    """E_π[ĝ] = ∇θ D_f with exact Z and a baseline that does not depend on x_i."""
    pol, tgt = problem
    tr = sample_estimates(pol, tgt, div, n=8, trials=20_000, rng=np.random.default_rng(1),
                          z="exact", baseline=baseline)
    assert_unbiased(tr.gradients, fdpg.exact_gradient(pol, tgt, div))


@pytest.mark.parametrize("div", DIVS, ids=DIV_IDS)
def test_off_policy_is_unbiased(problem, div):
    """E_q[(π/q) f'(π/p) ∇ log π] = ∇θ D_f for a proposal q ≠ π (a Policy or a log-prob vector)."""
    pol, tgt = problem
    exact = fdpg.exact_gradient(pol, tgt, div)
    q = AutoregressivePolicy(SPACE, seed=5, init_scale=1.0)
    for proposal in (q, q.log_probs()):
        tr = sample_estimates(pol, tgt, div, n=8, trials=20_000, rng=np.random.default_rng(2),
                              z="exact", baseline="none", proposal=proposal)
        assert_unbiased(tr.gradients, exact)


@pytest.mark.parametrize("proposal", [None, "policy"], ids=["on-policy", "off-policy"])
def test_the_laboratory_measures_the_training_estimator(problem, proposal):
    """One lab trial = one sampled_estimate on the same random numbers."""
    pol, tgt = problem
    q = AutoregressivePolicy(SPACE, seed=5) if proposal else None
    for z in ("exact", "batch"):
        for baseline in ("none", "mean", "loo", "dpg"):
            est = sampled_estimate(pol, tgt, "js", n=16, rng=np.random.default_rng(3), z=z,
                                   baseline=baseline, proposal=q)
            tr = sample_estimates(pol, tgt, "js", n=16, trials=1, rng=np.random.default_rng(3), z=z,
                                  baseline=baseline, proposal=q)
            np.testing.assert_allclose(tr.gradients[0], est.gradient, rtol=1e-10, atol=1e-14)
            assert tr.log_z_hat[0] == pytest.approx(est.diagnostics["log_z_hat"], abs=1e-12)


# ---------------------------------------------------------------------------- estimated Z
def test_z_hat_is_unbiased(problem, default_task):
    """Ẑ = (1/n) Σ P(x)/q(x) has mean Z (on- and off-policy); log Ẑ is biased low (Jensen)."""
    pol, tgt = problem
    task, rlhf = default_task
    for policy, target, q in [(pol, tgt, None), (pol, tgt, AutoregressivePolicy(SPACE, seed=5)),
                              (task.base, rlhf, None)]:
        tr = sample_estimates(policy, target, "forward_kl", n=16, trials=4000, rng=np.random.default_rng(4),
                              z="batch", proposal=q)
        ratio = np.exp(tr.log_z_hat - target.log_z)  # Ẑ / Z
        se = ratio.std(ddof=1) / np.sqrt(ratio.size)
        assert abs(ratio.mean() - 1) <= Z_TOL * se
        assert tr.log_z_hat.mean() < target.log_z


@pytest.mark.parametrize("div", DIVS, ids=DIV_IDS)
def test_estimated_z_bias_is_visible_and_shrinks(problem, div):
    """Ẑ from the batch enters f' non-linearly: an O(1/n) bias, many standard errors at n = 4."""
    pol, tgt = problem
    rows = {r["n"]: r for n in (4, 64) for r in estimator_stats(
        pol, tgt, div, n=n, trials=20_000, rng=np.random.default_rng(5), baselines="none", z_options="batch")}
    assert rows[4]["bias"] > 10 * rows[4]["bias_se"], format_stats(list(rows.values()))
    assert rows[64]["bias"] < rows[4]["bias"] / 5, format_stats(list(rows.values()))


def test_forward_kl_with_estimated_z_is_a_positive_multiple(problem):
    """R = p̂/π = (Z/Ẑ) p/π: the batch-Z estimate is (Z/Ẑ) × the exact-Z one, same samples."""
    pol, tgt = problem
    for q in (None, AutoregressivePolicy(SPACE, seed=5)):
        for seed in range(5):
            exact = sampled_estimate(pol, tgt, "forward_kl", n=8, rng=np.random.default_rng(seed), z="exact",
                                     baseline="none", proposal=q)
            batch = sampled_estimate(pol, tgt, "forward_kl", n=8, rng=np.random.default_rng(seed), z="batch",
                                     baseline="none", proposal=q)
            scale = np.exp(tgt.log_z - batch.diagnostics["log_z_hat"])
            np.testing.assert_allclose(batch.gradient, scale * exact.gradient, rtol=1e-10, atol=1e-14)


def test_running_z_averages_every_batch(problem):
    """The running Ẑ is the mean of P/q over all samples so far, kept in the state."""
    pol, tgt = problem
    rng, state, ratios = np.random.default_rng(6), None, []
    for _ in range(4):
        est = sampled_estimate(pol, tgt, "js", n=5, rng=rng, state=state, z="running")
        state = est.state
    assert state.step == 4 and state.z_count == 20
    rng = np.random.default_rng(6)
    for _ in range(4):  # replay the same draws
        idx = pol.sample(5, rng)
        ratios.append(np.exp(tgt.log_scores[idx] - pol.log_prob_at(idx)))
    assert est.diagnostics["log_z_hat"] == pytest.approx(np.log(np.mean(np.concatenate(ratios))), rel=1e-12)


@pytest.mark.parametrize("name", ["forward_kl", "reverse_kl", "js"])
def test_baselines_lower_the_variance_on_the_default_task(default_task, name):
    task, tgt = default_task
    rows = estimator_stats(task.base, tgt, name, n=64, trials=600, rng=np.random.default_rng(7),
                           baselines=("none", "mean", "loo"), z_options=("exact", "batch"))
    var = {(r["z"], r["baseline"]): r["variance"] for r in rows}
    for z in ("exact", "batch"):
        assert var[z, "mean"] < var[z, "none"] and var[z, "loo"] < var[z, "none"], format_stats(rows)


def test_batch_mean_baseline_shrinks_the_gradient_by_one_over_n(problem):
    """On-policy, R_i − mean(R) = (1 − 1/n)(R_i − mean_{j≠i} R_j): the "mean" estimate is exactly
    (1 − 1/n) × the unbiased leave-one-out one, so E[ĝ_mean] = (1 − 1/n) ∇θ D_f."""
    pol, tgt = problem
    for seed in range(3):
        loo = sampled_estimate(pol, tgt, "reverse_kl", n=8, rng=np.random.default_rng(seed), z="exact", baseline="loo")
        mean = sampled_estimate(pol, tgt, "reverse_kl", n=8, rng=np.random.default_rng(seed), z="exact",
                                baseline="mean")
        np.testing.assert_allclose(mean.gradient, (1 - 1 / 8) * loo.gradient, rtol=1e-10, atol=1e-14)


def test_dpg_baseline_is_the_forward_kl_advantage(problem):
    """Korbak et al.: B = Ẑπ/q in the P/q scale, i.e. R − B = p̂/π − 1 on-policy."""
    pol, tgt = problem
    est = sampled_estimate(pol, tgt, "forward_kl", n=8, rng=np.random.default_rng(8), z="exact", baseline="dpg")
    rng = np.random.default_rng(8)
    idx = pol.sample(8, rng)
    advantage = np.exp(tgt.log_probs[idx] - pol.log_prob_at(idx)) - 1
    np.testing.assert_allclose(est.gradient, pol.grad_log_prob_at(idx, -advantage / 8), rtol=1e-12, atol=1e-15)
    assert est.diagnostics["baseline"] == 1.0


def test_ema_baseline_is_carried_in_the_state(problem):
    pol, tgt = problem
    rng = np.random.default_rng(9)
    first = sampled_estimate(pol, tgt, "js", n=16, rng=rng, baseline="ema", ema_decay=0.5)
    assert first.diagnostics["baseline"] == pytest.approx(first.diagnostics["reward_mean"])
    second = sampled_estimate(pol, tgt, "js", n=16, rng=rng, state=first.state, baseline="ema", ema_decay=0.5)
    assert second.diagnostics["baseline"] == pytest.approx(first.state.ema)
    assert second.state.ema == pytest.approx(0.5 * first.state.ema + 0.5 * second.diagnostics["reward_mean"])


# ---------------------------------------------------------------------------- KL-adaptive proposal
@pytest.mark.parametrize("adaptive_kl", ["exact", "estimated"])
def test_kl_adaptive_proposal_swaps_only_when_pi_is_closer(problem, adaptive_kl):
    """GDC, Algorithm 1: q ← π iff KL(p‖π) < KL(p‖q), checked every k estimates."""
    _, tgt = problem
    mix = np.logaddexp(np.log(0.95) + tgt.log_probs, np.log(0.05 / SPACE.size))  # 0.95 p + 0.05 uniform
    close = AutoregressivePolicy.from_log_probs(SPACE, mix - np.logaddexp.reduce(mix))
    far = AutoregressivePolicy(SPACE, seed=3, init_scale=2.0)
    p = tgt.log_probs
    kl = lambda q: float(np.exp(p) @ (p - q.log_probs()))  # noqa: E731
    assert kl(close) < 0.1 < 1.0 < kl(far)
    rng = np.random.default_rng(10)
    # π far from p, q close: never swap
    state = None
    for _ in range(4):
        est = sampled_estimate(far, tgt, "forward_kl", n=256, rng=rng, state=state, proposal=close,
                               adaptive_every=1, adaptive_kl=adaptive_kl)
        state = est.state
        assert est.diagnostics["swapped"] == 0.0 and state.proposal is close
    # π close, q far: swap at the first check, which comes every 3rd estimate
    state, swaps = None, []
    for _ in range(3):
        est = sampled_estimate(close, tgt, "forward_kl", n=256, rng=rng, state=state, proposal=far,
                               adaptive_every=3, adaptive_kl=adaptive_kl)
        state = est.state
        swaps.append(est.diagnostics["swapped"])
    assert swaps == [0.0, 0.0, 1.0] and state.proposal is close and state.swaps == 1


# ---------------------------------------------------------------------------- RLHF REINFORCE
def test_rlhf_reinforce_k1_is_unbiased_and_k3_is_not(problem):
    """k1 = log(π/a): unbiased for rlhf_gradient.  k3 = a/π − 1 − log(a/π): same E_π[k], but
    E[ĝ_k3] = rlhf_gradient − β ∇θ KL(a‖π), a different objective."""
    pol, tgt = problem
    beta, r, log_a = tgt.params["beta"], tgt.reward, tgt.log_a
    truth = fdpg.rlhf_gradient(pol, r, log_a, beta)
    grad_kl_a_pi = -pol.grad_log_prob_weighted(np.exp(log_a))  # ∇θ KL(a‖π) = −Σ a ∇ log π
    rng = np.random.default_rng(11)
    trials = 3000
    for k, expected in (("k1", truth), ("k3", truth - beta * grad_kl_a_pi)):
        for baseline in ("none", "loo"):
            G = np.stack([rlhf_reinforce_gradient(pol, r, log_a, beta, 8, rng, kl_estimator=k, baseline=baseline)
                          for _ in range(trials)])
            assert_unbiased(G, expected)
            if k == "k3":
                se = G.std(axis=0, ddof=1) / np.sqrt(trials)
                assert np.max(np.abs(G.mean(axis=0) - truth) / se) > 10


# ---------------------------------------------------------------------------- diagnostics, input
def test_diagnostics(problem):
    pol, tgt = problem
    est = sampled_estimate(pol, tgt, "js", n=32, rng=np.random.default_rng(12), z="batch")
    d = est.diagnostics
    assert set(d) == {"log_z_hat", "log_z_error", "ess", "ess_target", "reward_mean", "reward_std", "baseline"}
    assert d["ess"] == pytest.approx(32.0) and 1 <= d["ess_target"] <= 32
    assert d["log_z_error"] == pytest.approx(d["log_z_hat"] - tgt.log_z)
    assert all(isinstance(v, float) and np.isfinite(v) for v in d.values())
    off = sampled_estimate(pol, tgt, "js", n=32, rng=np.random.default_rng(12),
                           proposal=AutoregressivePolicy(SPACE, seed=5, init_scale=1.0))
    assert 1 <= off.diagnostics["ess"] < 32
    assert isinstance(est.state, EstimatorState) and est.gradient.shape == (pol.n_params,)


def test_zero_support_target(problem):
    """Samples with P(x) = 0 get R = −f'(∞); infinite for reverse KL: a clear error."""
    pol, _ = problem
    constraint = np.ones(SPACE.size, bool)
    constraint[[1, 4]] = False
    tgt = targets.pointwise(random_log_probs(np.random.default_rng(13), SPACE.size), constraint)
    tr = sample_estimates(pol, tgt, "js", n=8, trials=20_000, rng=np.random.default_rng(14))
    assert_unbiased(tr.gradients, fdpg.exact_gradient(pol, tgt, "js"))
    with pytest.raises(ValueError, match="divergence 'reverse_kl' is infinite here"):
        sampled_estimate(pol, tgt, "reverse_kl", n=64, rng=np.random.default_rng(0))


@pytest.mark.parametrize("kw, match", [
    (dict(n=0), r"n=0 is out of range; allowed: ≥ 1"),
    (dict(rng=0), r"rng=0 must be a numpy Generator"),
    (dict(z="guess"), r"z='guess' is unknown; allowed: \['exact', 'batch', 'running'\]"),
    (dict(baseline="median"), r"baseline='median' is unknown; allowed: \['none', 'mean', 'loo', 'ema', 'dpg'\]"),
    (dict(proposal=np.zeros(3)), r"proposal has shape \(3,\); expected \(7,\)"),
    (dict(proposal=np.log([0.5, 0.5]).tolist() + [-np.inf] * 5),
     r"proposal gives probability 0 to 5 sequences where π > 0 .*importance weights π/q would be infinite"),
    (dict(proposal=AutoregressivePolicy(SequenceSpace(["a", "b"], 2))), r"proposal lives on"),
    (dict(ema_decay=1.0), r"ema_decay=1.0 is out of range; allowed: \[0, 1\)"),
    (dict(adaptive_every=0), r"adaptive_every=0 is out of range"),
    (dict(adaptive_every=2, adaptive_kl="guess"), r"adaptive_kl='guess' is unknown"),
    (dict(state=(0, 1)), r"state=\(0, 1\) must be an EstimatorState"),
])
def test_bad_input(problem, kw, match):
    pol, tgt = problem
    args = dict(n=4, rng=np.random.default_rng(0)) | kw
    with pytest.raises(ValueError, match=match):
        sampled_estimate(pol, tgt, "js", **args)


def test_bad_input_elsewhere(problem):
    pol, tgt = problem
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"n=0 is out of range"):
        fdpg.sampled_gradient(pol, tgt, "js", 0, rng=rng)
    with pytest.raises(ValueError, match=r"z='running' needs a history"):
        estimator_stats(pol, tgt, "js", n=4, trials=10, rng=rng, z_options=("running",))
    with pytest.raises(ValueError, match=r"baseline='ema' needs a history"):
        estimator_stats(pol, tgt, "js", n=4, trials=10, rng=rng, baselines=("ema",))
    with pytest.raises(ValueError, match=r"trials=1 is out of range"):
        estimator_stats(pol, tgt, "js", n=4, trials=1, rng=rng)
    with pytest.raises(ValueError, match=r"kl_estimator='k2' is unknown; allowed: \['k1', 'k3'\]"):
        rlhf_reinforce_gradient(pol, tgt.reward, tgt.log_a, 0.7, 4, rng, kl_estimator="k2")
    with pytest.raises(ValueError, match=r"baseline='dpg' is unknown; allowed: \['none', 'mean', 'loo'\]"):
        rlhf_reinforce_gradient(pol, tgt.reward, tgt.log_a, 0.7, 4, rng, baseline="dpg")


def test_estimator_stats_table(problem):
    pol, tgt = problem
    rows = estimator_stats(pol, tgt, "tv", n=16, trials=500, rng=np.random.default_rng(15),
                           baselines=("none", "mean", "loo", "dpg"), z_options=("exact", "batch"))
    assert [(r["z"], r["baseline"]) for r in rows] == [
        (z, b) for z in ("exact", "batch") for b in ("none", "mean", "loo", "dpg")]
    for r in rows:
        assert r["mse"] == pytest.approx(r["bias"] ** 2 + r["variance"] * (499 / 500), rel=1e-9)
        assert -1 <= r["cosine"] <= 1 and r["relative_bias"] == pytest.approx(r["bias"] / r["grad_norm"])
    assert "baseline" in format_stats(rows).splitlines()[0]


def test_bad_input_audit():
    space = SequenceSpace(["a", "b"], 3)
    pol = AutoregressivePolicy(space)
    tgt = targets.rlhf(pol.log_probs(), np.arange(8.0), 1.0)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="adaptive_kl='zz'"):  # was ignored without adaptive_every
        sampled_estimate(pol, tgt, "js", n=4, rng=rng, adaptive_kl="zz")
    with pytest.raises(ValueError, match="reward contains NaN"):
        rlhf_reinforce_gradient(pol, np.full(8, np.nan), pol.log_probs(), 1.0, 4, rng)
    with pytest.raises(ValueError, match="log_a is -inf where π > 0"):
        rlhf_reinforce_gradient(pol, np.zeros(8), np.r_[-np.inf, np.full(7, -np.log(7))], 1.0, 4, rng)
    with pytest.raises(ValueError, match="baselines=None"):
        estimator_stats(pol, tgt, "js", n=4, trials=2, rng=rng, baselines=None)
    with pytest.raises(ValueError, match=r"z=\['exact', 'batch'\] must be one name"):
        sample_estimates(pol, tgt, "js", n=4, trials=2, rng=rng, z=["exact", "batch"])
    with pytest.raises(ValueError, match=r"rows lack the keys"):
        format_stats([{"a": 1}])
    with pytest.raises(ValueError, match=r"rows=None"):
        format_stats(None)
