"""toyfdiv.rl algorithms: expected updates (exact vs brute force vs Monte Carlo), GRPO's w(p), length
drift, PPO's ratio and clipping, fixed points against the closed forms, the clip-entropy study."""

import itertools

import numpy as np
import pytest

from conftest import fd_gradient
from toyfdiv import rl, rl_tasks
from toyfdiv.metrics import kl
from toyfdiv.policies import AutoregressivePolicy
from toyfdiv.rl import ppo

TASK = rl_tasks.prompted((0.3,), vocab=2, length=3)  # N = 7, one prompt
POL = AutoregressivePolicy(TASK.space, seed=3, init_scale=0.7)  # away from the base model


def _brute_force(alg, pol, task, G, old=None):
    """Σ over all N^G batches of P(batch) × the sampled update on it: the definition of the expectation."""
    old = pol if old is None else old
    pi = old.probs()
    R = rl.expected.rewards_with_kl(alg, old, task.reward[0], task.log_a[0])
    b = R[rl.greedy_index(old)] if alg.advantage == "remax" else None
    total, kept = np.zeros(pol.n_params), 0.0
    for ys in itertools.product(range(task.space.size), repeat=G):
        idx = np.array([ys])
        if alg.dynamic_sampling and np.ptp(R[idx]) == 0:
            continue  # dynamic sampling: an all-equal group is drawn again
        A = rl.group_advantages(R[idx], alg.advantage, baseline=b)
        s = rl.scales(task.space.lengths[idx], alg.aggregation, task.space.length)
        g = ppo.sampled_update(alg, pol, task, ppo.Batch(idx, R[idx], A, s), None if old is pol else old)
        total += np.prod(pi[list(ys)]) * g
        kept += np.prod(pi[list(ys)])
    return total / kept


@pytest.mark.parametrize("name", ["reinforce", "rloo", "remax", "ppo", "grpo", "dr_grpo", "dapo"])
def test_exact_expected_update_equals_the_sum_over_all_batches(name):
    alg = rl.preset(name)
    exact = rl.expected_update(alg, POL, TASK, 3, mode="exact")
    assert exact.mode == "exact"
    np.testing.assert_allclose(exact.gradient, _brute_force(alg, POL, TASK, 3), atol=1e-10)


def test_reinforce_pp_monte_carlo_agrees_with_the_sum_over_all_batches():
    alg = rl.preset("reinforce_pp")
    mc = rl.expected_update(alg, POL, TASK, 3, mode="mc", trials=40_000, rng=np.random.default_rng(0), chunks=20)
    z = (mc.gradient - _brute_force(alg, POL, TASK, 3)) / mc.stderr
    assert np.sqrt(np.mean(z**2)) < 2.0 and np.abs(z).max() < 5.0


@pytest.mark.parametrize("name", ["grpo", "ppo"])
def test_monte_carlo_expected_update_is_within_its_noise_floor(name):
    alg = rl.preset(name)
    exact = rl.expected_update(alg, POL, TASK, 6, mode="exact").gradient
    mc = rl.expected_update(alg, POL, TASK, 6, mode="mc", trials=20_000, rng=np.random.default_rng(1), chunks=20)
    z = (mc.gradient - exact) / mc.stderr
    assert np.sqrt(np.mean(z**2)) < 2.0 and np.abs(z).max() < 5.0
    assert np.linalg.norm(mc.gradient - exact) < 4 * mc.noise_floor


@pytest.mark.parametrize("name", ["reinforce", "rloo"])
def test_k1_in_the_reward_with_an_unbiased_baseline_is_the_exact_rlhf_gradient(name):
    alg = rl.preset(name, beta=0.3)
    g = rl.expected_update(alg, POL, TASK, 4, mode="exact").gradient
    np.testing.assert_allclose(g, rl.reference_gradient(POL, TASK, 0.3), atol=1e-10)


def test_k1_in_the_loss_changes_nothing_with_a_length_free_aggregation():
    alg = rl.Algorithm("rloo-k1", "rloo", "seq_sum", "k1", "loss", "token", 0.5)
    np.testing.assert_allclose(rl.expected_update(alg, POL, TASK, 4).gradient,
                               rl.expected_update(alg.with_(kl=None, beta=0.0), POL, TASK, 4).gradient, atol=1e-12)


def test_k1_in_the_loss_under_the_token_mean_is_a_length_bonus():
    """With GRPO's 1/|y| the k1 loss no longer vanishes: β E_π[∇ log π(y)/|y|] = β ∇ E_π[1/|y|], which
    the loss minimises, so it lengthens responses."""
    alg = rl.Algorithm("grpo-k1", "grpo", "token_mean", "k1", "loss", "token", 0.5)
    extra = rl.expected_update(alg, POL, TASK, 4).gradient - rl.expected_update(alg.with_(kl=None, beta=0.0), POL,
                                                                                TASK, 4).gradient
    inv_len = 1.0 / TASK.space.lengths
    fd = fd_gradient(lambda th: POL.with_params(th).probs() @ inv_len, POL.params)
    np.testing.assert_allclose(extra, 0.5 * fd, atol=1e-9)


# ---------------------------------------------------------------- GRPO's per-prompt weight
P_GRID = np.array([0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98])


def test_grpo_weight_table():
    """w(p) over G ∈ {2, 4, 8, 16, 64}: flat at G = 2, U-shaped at G = 8, tending to 1/√(p(1−p))."""
    table = {G: rl.effective_weight(P_GRID, G) for G in (2, 4, 8, 16, 64)}
    limit = 1 / np.sqrt(P_GRID * (1 - P_GRID))
    print("\nG   " + " ".join(f"p={p:<5}" for p in P_GRID))
    for G, w in table.items():
        print(f"{G:<3} " + " ".join(f"{x:7.3f}" for x in w))
    print("∞   " + " ".join(f"{x:7.3f}" for x in limit))
    assert np.ptp(table[2]) < 1e-12  # flat: GRPO at G = 2 is a multiple of Dr. GRPO
    assert abs(table[2][0] - 0.5 / (np.sqrt(0.5) + rl.GRPO_EPS)) < 1e-12
    w8 = table[8]
    assert w8.argmin() == 3 and w8[0] > 1.3 * w8[3] and w8[-1] > 1.3 * w8[3]  # U-shaped, rare successes up
    gaps = [np.abs(table[G] - limit).max() for G in (4, 8, 16, 64)]
    assert all(a > b for a, b in zip(gaps, gaps[1:]))  # approaching the limit


def test_effective_weight_is_the_expected_update_over_the_true_gradient():
    """On a binary task the exact expected GRPO update is w(p) × (−∇p), p the success probability."""
    pi = POL.probs()
    p = pi @ TASK.reward[0]
    true = POL.grad_log_prob_weighted(-pi * (TASK.reward[0] - p))  # −∇p
    for method, G in (("grpo", 2), ("grpo", 8), ("rloo", 8), ("dr_grpo", 8)):
        alg = rl.Algorithm(method, method, "seq_sum")
        g = rl.expected_update(alg, POL, TASK, G, mode="exact").gradient
        np.testing.assert_allclose(g, rl.effective_weight(p, G, method) * true, atol=1e-12)
    assert rl.effective_weight(p, 8, "rloo") == pytest.approx(1.0, abs=1e-12)
    assert rl.effective_weight(p, 8, "dr_grpo") == pytest.approx(7 / 8, abs=1e-12)


# ---------------------------------------------------------------- length
@pytest.mark.parametrize("reward", ["binary", "graded"])
def test_length_drift_grpo_token_mean_versus_dr_grpo(reward):
    task = rl_tasks.prompted((0.3,), vocab=3, length=4, reward=reward).single(0)
    base = task.base_policies()[0]
    grpo = rl.length_drift(rl.preset("grpo", kl=None, beta=0.0), base, task, 8)
    dr = rl.length_drift(rl.preset("dr_grpo"), base, task, 8)
    print(f"\n{reward}: length drift per unit step, GRPO {grpo}, Dr. GRPO {dr}")
    assert grpo[0.0] > 1e-4 and grpo[1.0] < -1e-4  # wrong answers grow, right ones shrink
    assert max(abs(v) for v in dr.values()) < 1e-14


# ---------------------------------------------------------------- PPO
def test_ppo_first_epoch_is_the_on_policy_policy_gradient():
    alg = rl.preset("ppo", kl=None, beta=0.0)
    batch = rl.sample_batch(alg, POL, TASK, 8, np.random.default_rng(0))
    m = ppo.batch_masses(batch, TASK.space.size)[0]
    same = POL.with_params(POL.params)  # a distinct object: the ratio path with ρ = 1
    pg = POL.grad_log_prob_weighted(-m.A)
    np.testing.assert_allclose(rl.clipped_gradient(POL, same, m.A_pos, m.A_neg, 0.2, 0.2), pg, atol=1e-12)
    steps = rl.ppo_epochs(alg, POL, TASK, batch, lr=0.5)
    np.testing.assert_allclose(steps[1][0].params - POL.params, -0.5 * pg, atol=1e-12)


def test_clipped_gradient_matches_finite_differences_of_the_clipped_surrogate():
    rng = np.random.default_rng(2)
    old = POL
    new = POL.with_params(POL.params + 0.25 * rng.standard_normal(POL.n_params))
    idx = old.sample(16, rng)
    sA = rng.standard_normal(16)
    m_pos = np.bincount(idx, weights=np.maximum(sA, 0), minlength=TASK.space.size)
    m_neg = np.bincount(idx, weights=np.minimum(sA, 0), minlength=TASK.space.size)
    for lo, hi in ((0.2, 0.28), (None, 0.1), (0.1, None), (None, None)):
        g = rl.clipped_gradient(new, old, m_pos, m_neg, lo, hi)
        fd = fd_gradient(lambda th: ppo.clipped_surrogate(new.with_params(th), old, idx, sA, lo, hi), new.params,
                         h=1e-6)
        np.testing.assert_allclose(g, fd, atol=1e-6)


def test_later_epochs_against_the_exact_clipped_surrogate_gradient():
    """The expected update at θ ≠ θ_old (old policy sampling) equals the sum over all batches; the sampled
    later-epoch update is reported against it."""
    alg = rl.preset("ppo", kl=None, beta=0.0)
    new = POL.with_params(POL.params + 0.3 * np.random.default_rng(4).standard_normal(POL.n_params))
    exact = rl.expected_update(alg, new, TASK, 3, mode="exact", old_policy=POL).gradient
    np.testing.assert_allclose(exact, _brute_force(alg, new, TASK, 3, old=POL), atol=1e-10)
    unclipped = rl.expected_update(alg.with_(clip_low=None, clip_high=None), new, TASK, 3, old_policy=POL).gradient
    assert np.linalg.norm(exact - unclipped) > 1e-3  # clipping is active at this distance


def test_clip_high_and_clip_low_move_entropy_against_an_unclipped_control():
    """Random rewards: against the unclipped control (same steps, same random numbers), clip-low raises the
    entropy and clip-high lowers it from a skewed start; from a near-uniform start clip-high's sign flips."""
    skewed = rl.clip_entropy_study(np.log([0.9, 0.05, 0.05]), steps=10, seeds=400)
    flat = rl.clip_entropy_study(np.log([0.34, 0.33, 0.33]), steps=10, seeds=400)
    print(f"\nΔH vs control (± s.e.): skewed {skewed.delta} ± {skewed.stderr}; flat {flat.delta} ± {flat.stderr}")
    assert skewed.delta["clip_low"] > 3 * skewed.stderr["clip_low"]
    assert skewed.delta["clip_high"] < -3 * skewed.stderr["clip_high"]
    assert flat.delta["clip_high"] > 2 * flat.stderr["clip_high"]


# ---------------------------------------------------------------- fixed points
BETA = 0.5


def _kls(log_pi, task, reward=None):
    r = task.reward[0] if reward is None else reward
    return (kl(log_pi, rl.rlhf_target(task.log_a[0], task.reward[0], BETA)),
            kl(log_pi, rl.k3_target(task.log_a[0], r, BETA)))


def test_reinforce_with_k1_in_the_reward_ends_at_the_rlhf_target():
    task = rl_tasks.prompted((0.3,), vocab=3, length=3, reward="graded")
    fp = rl.fixed_point(rl.preset("reinforce", beta=BETA), task, 4)
    to_rlhf, to_k3 = _kls(fp.log_probs[0], task)
    print(f"\nREINFORCE + k1 reward: KL(π*‖RLHF target) = {to_rlhf:.2e}, KL(π*‖k3 form) = {to_k3:.2e}")
    assert fp.converged and to_rlhf < 1e-12 and to_k3 > 1e-3


def test_rloo_with_k3_in_the_loss_ends_at_the_k3_closed_form():
    task = rl_tasks.prompted((0.3,), vocab=3, length=3, reward="graded")
    fp = rl.fixed_point(rl.Algorithm("rloo-k3", "rloo", "seq_sum", "k3", "loss", "sequence", BETA), task, 4)
    to_rlhf, to_k3 = _kls(fp.log_probs[0], task)
    print(f"\nRLOO + k3 loss: KL(π*‖β a/(Λ − r)) = {to_k3:.2e}, KL(π*‖RLHF target) = {to_rlhf:.2e}")
    assert fp.converged and to_k3 < 1e-12 and to_rlhf > 1e-3


def test_grpo_with_k3_in_the_loss_ends_at_the_k3_form_with_reward_w_times_r():
    """Binary reward: π* = β a/(Λ − w(p*) r), not a e^{r/β}/Z nor β a/(Λ − r)."""
    fp = rl.fixed_point(rl.Algorithm("grpo-k3", "grpo", "seq_sum", "k3", "loss", "sequence", BETA), TASK, 8)
    p_star = TASK.success(fp.log_probs)[0]
    w = float(rl.effective_weight(p_star, 8))
    to_rlhf, to_k3 = _kls(fp.log_probs[0], TASK)
    to_k3w = _kls(fp.log_probs[0], TASK, w * TASK.reward[0])[1]
    print(f"\nGRPO + k3 loss (G = 8): p* = {p_star:.4f}, w(p*) = {w:.4f}; KL(π*‖β a/(Λ − w r)) = {to_k3w:.2e}, "
          f"KL(π*‖β a/(Λ − r)) = {to_k3:.3e}, KL(π*‖RLHF target) = {to_rlhf:.3e}")
    assert fp.converged and to_k3w < 1e-12 and to_k3 > 1e-3 and to_rlhf > 1e-3


@pytest.mark.parametrize("est", ["k2", "k3"])
def test_token_level_kl_losses_end_at_neither_target(est):
    task = rl_tasks.prompted((0.3,), vocab=3, length=3, reward="prefix")
    alg = rl.Algorithm("rloo-tok", "rloo", "seq_sum", est, "loss", "token", BETA)
    fp = rl.fixed_point(alg, task, 4, lr=3.0)
    seq = rl.fixed_point(alg.with_(kl_level="sequence"), task, 4, lr=3.0)
    to_rlhf, to_k3 = _kls(fp.log_probs[0], task)
    print(f"\ntoken-level {est} loss: KL(π*‖RLHF target) = {to_rlhf:.3e}, KL(π*‖k3 form) = {to_k3:.3e}")
    assert fp.converged and seq.converged
    assert to_rlhf > 1e-4 and to_k3 > 1e-4
    assert min(_kls(seq.log_probs[0], task)) < 1e-12  # the sequence-level one ends at its own target


# ---------------------------------------------------------------- the one loop
def test_make_update_through_the_one_loop():
    from toyfdiv.conditional import ConditionalPolicy
    from toyfdiv.training import optimise

    task = rl_tasks.prompted((0.1, 0.6), vocab=2, length=3)
    start = ConditionalPolicy([POL, POL.with_params(-POL.params)])
    alg = rl.preset("grpo")
    hist = optimise(start, rl.make_update(alg, task, 4), steps=1, lr=0.5, optimizer="sgd")
    expected = rl.expected_update(alg, start, task, 4).gradient
    np.testing.assert_allclose(hist.policy.params, start.params - 0.5 * expected, atol=1e-12)
    # sampled PPO: one batch per alg.epochs calls, the first call the on-policy gradient on that batch
    ppo_alg = rl.preset("ppo")
    update = rl.make_update(ppo_alg, task, 4, estimator="sampled")
    rng, pol = np.random.default_rng(3), start
    rewards = []
    for k in range(2 * ppo_alg.epochs):
        g, diag = update(pol, rng)
        rewards.append(diag["batch_reward"])
        if k == 0:
            batch = rl.sample_batch(ppo_alg, start, task, 4, np.random.default_rng(3))
            np.testing.assert_allclose(g, rl.sampled_update(ppo_alg, start, task, batch), atol=1e-12)
        pol = pol.with_params(pol.params - 0.5 * g)
    assert len(set(rewards[: ppo_alg.epochs])) == 1  # the epochs reuse one batch


def test_grpo_with_a_reverse_kl_penalty_ends_at_the_success_recursion_fixed_point():
    """GRPO + β KL(π‖a) (k2 as a sequence loss): π* = a e^{w(p*) r/β}/Z, and p* is the fixed point of
    Mroueh's success recursion p ← p_a e^{w(p)/β}/(p_a e^{w(p)/β} + 1 − p_a)."""
    fp = rl.fixed_point(rl.Algorithm("grpo-k2", "grpo", "seq_sum", "k2", "loss", "sequence", BETA), TASK, 8, lr=6.0)
    p_star = TASK.success(fp.log_probs)[0]
    w = float(rl.effective_weight(p_star, 8))
    assert kl(fp.log_probs[0], rl.rlhf_target(TASK.log_a[0], w * TASK.reward[0], BETA)) < 1e-12
    iterates = rl.grpo_success_recursion(TASK.base_success[0], BETA, 8, iterations=400)
    print(f"\nGRPO + reverse KL: p* = {p_star:.6f}; recursion from p_a = {TASK.base_success[0]}: "
          f"{iterates[1]:.4f}, {iterates[2]:.4f}, … → {iterates[-1]:.6f}")
    assert abs(iterates[-1] - p_star) < 1e-9
    assert kl(fp.log_probs[0], rl.rlhf_target(TASK.log_a[0], TASK.reward[0], BETA)) > 1e-3  # not the RLHF target


def test_later_ppo_epochs_follow_the_clipped_surrogate_less_and_less():
    """cos(sampled epoch-k update, exact clipped-surrogate gradient at θ_k), mean over 40 batches: the
    later epochs fit the batch, not the surrogate (differences beyond 3 standard errors)."""
    mean, se = rl.epoch_agreement(rl.preset("ppo", kl=None, beta=0.0), TASK.base_policies(), TASK, 8, lr=2.0,
                                  batches=40, rng=np.random.default_rng(0))
    print(f"\nPPO epochs 1…4: cos to the exact clipped-surrogate gradient {np.round(mean, 3)} ± {np.round(se, 3)}")
    assert mean[0] - mean[-1] > 3 * np.hypot(se[0], se[-1])
    assert mean[-1] > 3 * se[-1]  # still positively aligned
