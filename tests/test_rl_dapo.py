"""DAPO as published: dynamic sampling, the overlong penalty and the batch token mean over all prompts,
each exact expectation held against brute-force enumeration of the batches."""

import itertools
import math

import numpy as np
import pytest

from toyfdiv import rl, rl_tasks
from toyfdiv.policies import AutoregressivePolicy
from toyfdiv.rl import dapo

TWO = rl_tasks.prompted((0.1, 0.6), vocab=2, length=3)  # N = 7, two prompts, EOS: lengths 1 … 3
POLS = [AutoregressivePolicy(TWO.space, seed=s, init_scale=0.7) for s in (3, 4)]


def _brute_force_two_prompts(alg, pols, task, G):
    """Σ over every batch (one group per prompt, N^G × N^G of them) of P(batch | kept) × the update on it.

    DAPO's batch token mean s = C / (tokens of both groups); dynamic sampling keeps the batches whose
    groups both have a spread of rewards.  The masses are accumulated, then turned into a gradient once."""
    N, C = task.space.size, len(pols)
    tuples = np.array(list(itertools.product(range(N), repeat=G)))  # (N^G, G)
    per = []
    for c, p in enumerate(pols):
        R = rl.expected.rewards_with_kl(alg, p, task.reward[c], task.log_a[c])[tuples]  # (N^G, G)
        prob = np.prod(p.probs()[tuples], axis=1)
        if alg.dynamic_sampling:
            prob = prob * (np.ptp(R, axis=1) > 0)
        per.append((prob / prob.sum(), rl.group_advantages(R, alg.advantage), task.space.lengths[tuples].sum(1)))
    (p0, A0, T0), (p1, A1, T1) = per
    S = C / (T0[:, None] + T1[None, :]) if alg.aggregation == "batch_token_mean" else None  # (N^G, N^G)
    grads = []
    for c, (A, P_own, P_other, axis) in enumerate(((A0, p0, p1, 1), (A1, p1, p0, 0))):
        if S is None:  # seq_sum
            s_own = np.full(len(P_own), 1.0 / G)
        else:
            s_own = (S * P_other[None, :]).sum(1) if axis == 1 else (S * P_other[:, None]).sum(0)
        weights = (P_own * s_own)[:, None] * A  # (N^G, G)
        m_A = np.bincount(tuples.ravel(), weights=weights.ravel(), minlength=N)
        grads.append(np.exp(task.log_rho[c]) * pols[c].grad_log_prob_weighted(-m_A))
    return np.concatenate(grads)


@pytest.mark.parametrize("dynamic", [True, False])
def test_dapo_exact_update_over_two_prompts_equals_the_sum_over_all_batches(dynamic):
    alg = rl.preset("dapo", dynamic_sampling=dynamic)
    exact = rl.expected_update(alg, POLS, TWO, 3, mode="exact")
    assert exact.mode == "exact"
    np.testing.assert_allclose(exact.gradient, _brute_force_two_prompts(alg, POLS, TWO, 3), atol=1e-10)
    per_group = rl.expected_update(alg, POLS[0], TWO.single(0), 3).gradient
    assert np.abs(exact.gradient[: POLS[0].n_params] * 2 - per_group).max() > 1e-4  # the batch spans both prompts


def test_dapo_monte_carlo_and_sampled_batches_agree_with_the_exact_update():
    alg = rl.preset("dapo")
    exact = rl.expected_update(alg, POLS, TWO, 3, mode="exact").gradient
    mc = rl.expected_update(alg, POLS, TWO, 3, mode="mc", trials=20_000, rng=np.random.default_rng(0), chunks=20)
    z = (mc.gradient - exact) / mc.stderr
    print(f"\nDAPO two prompts, G = 3: MC vs exact, rms z = {np.sqrt(np.mean(z**2)):.2f}, max |z| = {np.abs(z).max():.2f}")
    assert np.sqrt(np.mean(z**2)) < 2.0 and np.abs(z).max() < 5.0
    batch = rl.sample_batch(alg, POLS, TWO, 3, np.random.default_rng(1))
    assert (np.ptp(batch.R, axis=1) > 0).all()  # every group drawn with a spread
    np.testing.assert_allclose(batch.s, 2 / TWO.space.lengths[batch.idx].sum(), atol=1e-15)


@pytest.mark.parametrize("G", [2, 3, 8])
def test_dynamic_sampling_divides_a_binary_prompt_by_one_minus_the_degenerate_probability(G):
    """GRPO on one binary prompt: E[update | a spread] = w(p) / (1 − p^G − (1 − p)^G) × (−∇p)."""
    task = rl_tasks.prompted((0.3,), vocab=2, length=3)
    pol = POLS[0]
    pi, r = pol.probs(), task.reward[0]
    p = pi @ r
    true = pol.grad_log_prob_weighted(-pi * (r - p))  # −∇p
    alg = rl.Algorithm("grpo-ds", "grpo", "seq_sum", dynamic_sampling=True)
    g = rl.expected_update(alg, pol, task, G, mode="exact").gradient
    factor = float(rl.effective_weight(p, G) * dapo.dynamic_sampling_weight(p, G))
    np.testing.assert_allclose(g, factor * true, atol=1e-12)
    assert dapo.kept_probability(pi, r, G) == pytest.approx(1 - p**G - (1 - p) ** G, abs=1e-14)


def test_dynamic_sampling_weight_keeps_its_precision_near_zero_and_one():
    """Against the cancellation-free sum Σ_{k=1}^{G−1} C(G, k) p^k (1 − p)^(G − k)."""
    for p in (1e-12, 1e-6, 0.3, 1 - 1e-9):
        for G in (2, 8, 64):
            kept = sum(math.comb(G, k) * p**k * (1 - p) ** (G - k) for k in range(1, G))
            assert dapo.dynamic_sampling_weight(p, G) == pytest.approx(1 / kept, rel=1e-6 if p > 0.99 else 1e-12)


def test_overlong_penalty_on_the_eos_space():
    """DAPO eq. 13 on every response of an EOS space, lengths 1 … 5, against the three cases written out."""
    space = rl_tasks.prompted((0.3,), vocab=2, length=5).space
    for L_max, L_cache in ((5, 2), (4, 1), (3, 2)):
        want = [0.0 if n <= L_max - L_cache else ((L_max - L_cache) - n) / L_cache if n <= L_max else -1.0
                for n in space.lengths]
        np.testing.assert_allclose(dapo.overlong_penalty(space.lengths, L_max, L_cache), want, atol=1e-15)
    task = rl_tasks.prompted((0.3,), vocab=2, length=5)
    alg = rl.preset("dapo", overlong=(5, 2))
    shaped = rl.expected.rewards_with_kl(alg, task.base_policies()[0], task.reward[0], task.log_a[0])
    np.testing.assert_allclose(shaped - task.reward[0], dapo.overlong_penalty(task.space.lengths, 5, 2), atol=0)
    assert set(np.round(shaped - task.reward[0], 12)) == {0.0, -0.5, -1.0}


def test_overlong_penalty_shortens_responses_in_expectation():
    """With the penalty the exact expected DAPO update lowers E[|y|] (first order); without it, it does not
    by as much — the penalty's own contribution is a push towards short responses."""
    task = rl_tasks.prompted((0.3,), vocab=2, length=4)
    pol = task.base_policies()[0]
    lengths = task.space.lengths.astype(float)
    grad_len = pol.grad_log_prob_weighted(pol.probs() * (lengths - pol.probs() @ lengths))  # ∇ E[|y|]
    with_pen = rl.expected_update(rl.preset("dapo"), pol, task, 4, mode="exact").gradient
    without = rl.expected_update(rl.preset("dapo", overlong=None), pol, task, 4, mode="exact").gradient
    change = {k: float(grad_len @ -u) for k, u in (("with", with_pen), ("without", without))}
    print(f"\nd E|y| along the DAPO update: with the overlong penalty {change['with']:+.4f}, without {change['without']:+.4f}")
    assert change["with"] < change["without"] - 1e-3 and change["with"] < 0


@pytest.mark.parametrize("call,match", [
    (lambda: rl.preset("dapo", overlong=(2, 2)), "overlong"),
    (lambda: rl.preset("dapo", overlong=(4.0, 1)), "overlong"),
    (lambda: rl.preset("dapo", dynamic_sampling="yes"), "dynamic_sampling"),
    (lambda: dapo.overlong_penalty([1, -2], 4, 1), "lengths"),
    (lambda: dapo.dynamic_sampling_weight(0.0, 8), "p="),
    (lambda: dapo.dynamic_sampling_weight(0.5, 1), "G=1"),
    (lambda: dapo.kept_probability(np.ones(3) / 3, np.ones(4), 4), "shapes"),
])
def test_dapo_parts_refuse_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
