"""REINFORCE++'s batch normalisation over all prompts: the exact expected update (reward-class counts
convolved over the prompts) against brute-force enumeration of the batches, its per-prompt weights,
Monte Carlo within the noise floor, and its fixed points (exact, and measured against the noise floor)."""

import itertools

import numpy as np
import pytest

from toyfdiv import rl, rl_tasks
from toyfdiv.metrics import kl
from toyfdiv.policies import AutoregressivePolicy

TWO = rl_tasks.prompted((0.1, 0.6), vocab=2, length=3)  # N = 7, two prompts
POLS = [AutoregressivePolicy(TWO.space, seed=s, init_scale=0.7) for s in (3, 4)]


def _brute_force(alg, pols, task, G):
    """Σ over all (N^G)² batches of P(batch) × the masses (R − mean_B R)/(std_B R + ε) · s, then the gradient."""
    N = task.space.size
    tuples = np.array(list(itertools.product(range(N), repeat=G)))  # (N^G, G)
    n = len(tuples)
    R = [rl.expected.rewards_with_kl(alg, p, task.reward[c], task.log_a[c])[tuples] for c, p in enumerate(pols)]
    P = [np.prod(p.probs()[tuples], axis=1) for p in pols]
    batch = np.concatenate([np.broadcast_to(R[0][:, None, :], (n, n, G)), np.broadcast_to(R[1][None, :, :], (n, n, G))],
                           axis=2)  # (n, n, 2G) every joint batch
    A = (batch - batch.mean(axis=2, keepdims=True)) / (batch.std(axis=2, keepdims=True) + rl.GRPO_EPS)
    joint = P[0][:, None] * P[1][None, :]  # (n, n)
    grads = []
    for c in range(2):
        A_c = A[..., c * G:(c + 1) * G]  # (n, n, G)
        s = rl.scales(task.space.lengths[tuples], alg.aggregation, task.space.length)  # (n, G) own group only
        w = (joint[..., None] * A_c).sum(axis=1 - c)  # (n, G) marginal over the other prompt's groups
        m_A = np.bincount(tuples.ravel(), weights=(w * s).ravel(), minlength=N)
        grads.append(np.exp(task.log_rho[c]) * pols[c].grad_log_prob_weighted(-m_A))
    return np.concatenate(grads)


@pytest.mark.parametrize("reward,aggregation,G", [("binary", "seq_sum", 3), ("prefix", "token_mean", 2),
                                                  ("graded", "constant", 3)])
def test_reinforce_pp_exact_update_equals_the_sum_over_all_batches(reward, aggregation, G):
    task = rl_tasks.prompted((0.1, 0.6), vocab=2, length=3, reward=reward)
    alg = rl.Algorithm("r++", "reinforce_pp", aggregation)
    exact = rl.expected_update(alg, POLS, task, G, mode="exact")
    assert exact.mode == "exact"
    np.testing.assert_allclose(exact.gradient, _brute_force(alg, POLS, task, G), atol=1e-10)


def test_reinforce_pp_binary_weights_couple_the_prompts():
    """Binary rewards: prompt c's update is w_c (−∇p_c), and w_c depends on the other prompt's p."""
    alg = rl.Algorithm("r++", "reinforce_pp", "seq_sum")
    g = rl.expected_update(alg, POLS, TWO, 4, mode="exact").gradient
    p = np.array([pol.probs() @ TWO.reward[c] for c, pol in enumerate(POLS)])
    w = rl.batch_weights(p, 4)
    true = np.concatenate([0.5 * w[c] * pol.grad_log_prob_weighted(-pol.probs() * (TWO.reward[c] - p[c]))
                           for c, pol in enumerate(POLS)])
    np.testing.assert_allclose(g, true, atol=1e-12)
    w_other = rl.batch_weights(np.array([p[0], 0.95]), 4)
    print(f"\nREINFORCE++ weights at p = {np.round(p, 3)}: {np.round(w, 4)}; with the other prompt at 0.95: "
          f"{np.round(w_other, 4)}")
    assert abs(w_other[0] - w[0]) > 1e-3


def test_reinforce_pp_monte_carlo_is_within_its_noise_floor_of_the_exact_update():
    alg = rl.Algorithm("r++", "reinforce_pp", "token_mean")
    exact = rl.expected_update(alg, POLS, TWO, 4, mode="exact").gradient
    mc = rl.expected_update(alg, POLS, TWO, 4, mode="mc", trials=20_000, rng=np.random.default_rng(0), chunks=20)
    z = (mc.gradient - exact) / mc.stderr
    assert np.sqrt(np.mean(z**2)) < 2.0 and np.abs(z).max() < 5.0


def test_reinforce_pp_with_a_reverse_kl_loss_is_stationary_at_the_target_with_rewards_scaled_by_its_weights():
    """k2 as a sequence loss (∇KL(π‖a)), binary rewards: the exact expected update vanishes at
    π_c = a_c e^{w_c r_c/β}/Z_c, w = batch_weights(p*), p* the limit of rl.reinforce_pp_success; not at the RLHF
    target."""
    beta = 0.5
    alg = rl.Algorithm("r++-k2", "reinforce_pp", "seq_sum", "k2", "loss", "sequence", beta)
    iterates = rl.reinforce_pp_success(TWO.base_success, beta, 4, iterations=200)
    p_star = iterates[-1]
    assert np.abs(iterates[-1] - iterates[-2]).max() < 1e-13
    w = rl.batch_weights(p_star, 4)
    log_pi = [rl.rlhf_target(TWO.log_a[c], w[c] * TWO.reward[c], beta) for c in range(2)]
    np.testing.assert_allclose(TWO.success(log_pi), p_star, atol=1e-12)
    pols = [AutoregressivePolicy.from_log_probs(TWO.space, lp) for lp in log_pi]
    u = rl.expected_update(alg, pols, TWO, 4, mode="exact").gradient
    rlhf = [AutoregressivePolicy.from_log_probs(TWO.space, rl.rlhf_target(TWO.log_a[c], TWO.reward[c], beta))
            for c in range(2)]
    u_rlhf = rl.expected_update(alg, rlhf, TWO, 4, mode="exact").gradient
    print(f"\nREINFORCE++ + reverse KL: p* = {np.round(p_star, 6)}, w(p*) = {np.round(w, 4)}; ‖E[∇L]‖ there "
          f"{np.linalg.norm(u):.1e}, at the RLHF target {np.linalg.norm(u_rlhf):.1e}")
    assert np.linalg.norm(u) < 1e-10 and np.linalg.norm(u_rlhf) > 1e-3


def _mc_fixed_point(aggregation, seed):
    alg = rl.preset("reinforce_pp", beta=0.5, aggregation=aggregation)
    fp = rl.fixed_point(alg, TWO, 4, lr=2.0, mode="mc", trials=2000, seed=seed, steps=200, check_every=25)
    to_target = max(kl(fp.log_probs[c], rl.rlhf_target(TWO.log_a[c], TWO.reward[c], 0.5)) for c in range(2))
    return fp, to_target


BASE_TO_TARGET = max(kl(TWO.log_a[c], rl.rlhf_target(TWO.log_a[c], TWO.reward[c], 0.5)) for c in range(2))


def test_reinforce_pp_preset_fixed_point_measured_against_the_noise_floor():
    """k1 in the reward: one reward value per response, so the expectation is Monte Carlo.  Training on it
    stops within 3 noise floors of E[∇L] = 0; two seeds give the resolution.  The preset's token mean ends
    far beyond that resolution from the RLHF target: the batch-centred advantage of a prompt stays non-zero
    at the target (β log Z_c differs across prompts), and 1/|y| turns it into a push on length."""
    at_target = [AutoregressivePolicy.from_log_probs(TWO.space, rl.rlhf_target(TWO.log_a[c], TWO.reward[c], 0.5))
                 for c in range(2)]
    z = {agg: (lambda u: np.linalg.norm(u.gradient) / u.noise_floor)(rl.expected_update(
        rl.preset("reinforce_pp", beta=0.5, aggregation=agg), at_target, TWO, 4, mode="mc", trials=10_000,
        rng=np.random.default_rng(0), chunks=20)) for agg in ("token_mean", "seq_sum")}
    print(f"\nat the RLHF target ‖E[∇L]‖ / noise floor: token_mean {z['token_mean']:.1f}, seq_sum {z['seq_sum']:.1f}")
    assert z["token_mean"] > 10 and z["seq_sum"] < 3
    (fp0, d0), (fp1, d1) = _mc_fixed_point("token_mean", 0), _mc_fixed_point("token_mean", 1)
    between = max(kl(fp0.log_probs[c], fp1.log_probs[c]) for c in range(2))
    print(f"REINFORCE++ preset (β = 0.5, G = 4): KL(π*‖RLHF target) = {d0:.2e}, {d1:.2e} (two seeds; from the "
          f"base {BASE_TO_TARGET:.2e}); between the seeds {between:.1e}; ‖u‖ = {fp0.grad_norm:.1e} vs noise floor "
          f"{fp0.noise_floor:.1e}")
    assert fp0.converged and fp1.converged
    assert min(d0, d1) > 100 * between and min(d0, d1) > 0.02 * BASE_TO_TARGET


def test_reinforce_pp_with_a_sequence_sum_ends_at_the_rlhf_target_within_the_noise():
    """Same with s = 1/G: h_c(R) is increasing in R, so E[∇L] = 0 forces R = r − β log(π/a) constant per prompt:
    the RLHF target (up to the Monte-Carlo resolution)."""
    fp, d = _mc_fixed_point("seq_sum", 0)
    print(f"\nREINFORCE++ with seq_sum: KL(π*‖RLHF target) = {d:.2e} (from the base {BASE_TO_TARGET:.2e})")
    assert fp.converged and d < 0.002 * BASE_TO_TARGET
