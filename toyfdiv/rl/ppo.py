"""PPO's importance ratio, clipping and epochs; the sampled update on a batch; the clip study.

Per token, with ρ_t = π(y_t|y_<t)/π_old(y_t|y_<t) (Schulman et al. 2017, eq. 7; DAPO's
clip-higher: Yu et al. 2025, eq. 10):

    ℓ_t = −min(ρ_t A, clip(ρ_t, 1 − ε_low, 1 + ε_high) A),
    ∇ℓ_t = −A ρ_t ∇ log π(y_t|y_<t) · 1[A > 0, ρ_t ≤ 1 + ε_high  or  A < 0, ρ_t ≥ 1 − ε_low].

At θ = θ_old every ρ_t = 1, nothing is clipped and Σ_t ∇ℓ_t = −A ∇ log π(y): the first
epoch is the on-policy policy gradient exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import entr

from .._util import check_int, check_positive_float, check_rng, as_float_array, log_softmax_rows
from ..policies.base import Policy
from . import batched, expected as _expected
from .advantages import group_advantages
from .aggregation import scales
from .algorithms import Algorithm, check_epsilon
from .clip import clipped_gradient, sequence_ratios
from .dapo import draw_groups

__all__ = ["clipped_gradient", "Batch", "sample_batch", "batch_masses", "sampled_update", "ppo_epochs",
           "clipped_surrogate", "sequence_clipped_surrogate", "clipped_objective", "ClipStudy", "clip_entropy_study", "epoch_agreement"]


def clipped_surrogate(policy: Policy, old_policy: Policy, idx, sA, clip_low, clip_high) -> float:
    """L = −Σ_i Σ_t min(ρ_it sA_i, clip(ρ_it) sA_i) on sampled responses ``idx`` (n,) with weights sA (n,).

    Its value, for finite-difference checks of :func:`clipped_gradient` (s > 0, so sA has A's sign).
    """
    lo, hi = check_epsilon(clip_low, "clip_low"), check_epsilon(clip_high, "clip_high")
    space = policy.space
    toks = space.tokens[np.asarray(idx)]  # (n, T)
    lp_new, lp_old = policy.log_conditionals(), old_policy.log_conditionals()
    V, total = space.n_vocab, 0.0
    node = np.zeros(len(toks), dtype=np.int64)
    alive = np.ones(len(toks), dtype=bool)
    for t, lv in enumerate(space.levels):
        v = toks[:, t]
        alive &= v >= 0
        if not alive.any():
            break
        col = np.where(v[alive] == V, lv.choices - 1, v[alive])
        rho = np.exp(lp_new[t][node[alive], col] - lp_old[t][node[alive], col])
        a = sA[alive]
        clipped = np.clip(rho, 1 - (lo if lo is not None else np.inf), 1 + (hi if hi is not None else np.inf))
        total -= np.minimum(rho * a, clipped * a).sum()
        node = np.where(alive & (v < V), node * V + np.maximum(v, 0), node)
    return float(total)


def sequence_clipped_surrogate(policy: Policy, old_policy: Policy, idx, sA, clip_low, clip_high) -> float:
    """L = −Σ_i min(ρ̄_i sA_i, clip(ρ̄_i, 1 − ε_low, 1 + ε_high) sA_i), ρ̄_i = (π(y_i)/π_old(y_i))^{1/|y_i|}.

    GSPO's loss on sampled responses ``idx`` (n,) with weights sA (n,) (Zheng et al. 2025,
    eq. 5), for finite-difference checks of :func:`toyfdiv.rl.clip.sequence_clipped_gradient`.
    """
    idx = np.asarray(idx)
    rho = sequence_ratios(policy, old_policy)[idx]  # (n,)
    sA = as_float_array(sA, "sA")
    return float(-clipped_objective(rho, sA, clip_low, clip_high).sum())  # sA (n,) broadcasts with ρ̄ (n,)


@dataclass(frozen=True)
class Batch:
    """One sampled batch: idx (C, G) responses, R (C, G) rewards at sampling time, A, s (C, G)."""

    idx: np.ndarray
    R: np.ndarray
    A: np.ndarray
    s: np.ndarray


def sample_batch(alg: Algorithm, policy, task, G: int, rng: np.random.Generator) -> Batch:
    """y_{c,i} ∼ π_old(·|c), i ≤ G, one group per prompt; rewards, advantages and weights as ``alg`` makes them.

    With ``alg.dynamic_sampling`` a group whose rewards are all equal is drawn again; a prompt
    that can never give a spread gets s = 0 (it is not in the batch).
    """
    rng = check_rng(rng)
    G = check_int(G, "G")
    pols = _expected.policies_of(policy)
    Rs = [_expected.rewards_with_kl(alg, p, task.reward[c], task.log_a[c]) for c, p in enumerate(pols)]
    idx, kept = draw_groups(pols, Rs, G, 1, rng, alg.dynamic_sampling)
    idx = idx[0]  # (C, G); with dynamic sampling each group has a spread of rewards (or its prompt is left out)
    R = np.stack([Rs[c][idx[c]] for c in range(len(pols))])
    if alg.advantage == "reinforce_pp":
        A = group_advantages(R, "reinforce_pp")
    elif alg.advantage == "remax":
        b = np.array([Rs[c][_expected.greedy_index(p)] for c, p in enumerate(pols)])
        A = group_advantages(R, "remax", baseline=b)
    else:
        A = group_advantages(R, alg.advantage)
    s = scales(task.space.lengths[idx] * kept[:, None], alg.aggregation, task.space.length) * kept[:, None]
    return Batch(idx, R, A, s)


def batch_masses(batch: Batch, N: int) -> list[_expected.Masses]:
    """The batch's per-response masses (sums over its samples), one :class:`Masses` per prompt."""
    out = []
    for c in range(batch.idx.shape[0]):
        def mass(v):
            return np.bincount(batch.idx[c], weights=v[c], minlength=N)
        sA = batch.s * batch.A
        out.append(_expected.Masses(mass(sA), mass(np.maximum(sA, 0)), mass(np.minimum(sA, 0)), mass(batch.s)))
    return out


def sampled_update(alg: Algorithm, policy, task, batch: Batch, old_policy=None) -> np.ndarray:
    """∇θ L on one batch (prompts weighted by ρ, as in :func:`expected.expected_update`); (P,)."""
    pols = _expected.policies_of(policy)
    olds = pols if old_policy is None else _expected.policies_of(old_policy)
    rho = np.exp(task.log_rho)
    ms = batch_masses(batch, task.space.size)
    return np.concatenate([rho[c] * _expected.gradient_from_masses(
        alg, pols[c], ms[c], task.log_a[c], None if old_policy is None else olds[c]) for c in range(len(pols))])


def ppo_epochs(alg: Algorithm, policy, task, batch: Batch, lr: float) -> list:
    """θ_{k+1} = θ_k − lr ∇L(θ_k; batch, π_old), k < alg.epochs (plain SGD); the policies θ_0 … θ_K."""
    lr = check_positive_float(lr, "lr")
    pols = list(_expected.policies_of(policy))
    old = tuple(pols)
    out = [old]
    for k in range(alg.epochs):
        g = sampled_update(alg, out[-1], task, batch, None if k == 0 else old)
        theta = np.concatenate([p.params for p in out[-1]]) - lr * g
        sizes = np.cumsum([0] + [p.n_params for p in old])
        out.append(tuple(p.with_params(theta[a:b]) for p, a, b in zip(old, sizes[:-1], sizes[1:])))
    return out


@dataclass(frozen=True)
class ClipStudy:
    """Final entropies (seeds,) per variant, and ΔH = variant − unclipped control with its standard error."""

    entropy: dict
    delta: dict
    stderr: dict


def clip_entropy_study(log_pi0, *, G: int = 8, epochs: int = 4, steps: int = 20, lr: float = 1.0,
                       seeds: int = 400, eps_low: float = 0.2, eps_high: float = 0.2, p_reward: float = 0.5,
                       seed: int = 0) -> ClipStudy:
    """Entropy after ``steps`` PPO rounds with *random* rewards, clip-low only / clip-high only / both,
    each against an unclipped control with the same steps and the same random numbers.

    Each of the ``seeds`` runs is a one-token policy π = softmax(z) over the N responses (the
    AutoregressivePolicy of a length-1 space), all run at once through
    :mod:`toyfdiv.rl.batched` (each row what the Policy path gives): per round a group of G
    responses y ∼ π_old (:func:`batched.sample_rows`), rewards Bernoulli(p_reward)
    independent of the response, GRPO advantages (:func:`group_advantages`), seq_sum weights
    s = 1/G (:func:`scales`), then ``epochs`` SGD steps of rate ``lr`` on the logits along
    :func:`batched.clipped_logit_gradient` against π_old.  Under random rewards the expected
    first-epoch update is zero, so any entropy drift is the clipping's (Park et al. 2025;
    Shao et al. 2025, "Spurious rewards").
    """
    log_pi0 = as_float_array(log_pi0, "log_pi0")
    if log_pi0.ndim != 1 or log_pi0.size < 2 or not np.isfinite(log_pi0).all():
        raise ValueError(f"log_pi0 has shape {log_pi0.shape}; allowed: finite log-probabilities (N,), N ≥ 2")
    G = check_int(G, "G", low=2)
    epochs, steps, seeds = check_int(epochs, "epochs"), check_int(steps, "steps"), check_int(seeds, "seeds", low=2)
    lr = check_positive_float(lr, "lr")
    if not 0 <= p_reward <= 1:
        raise ValueError(f"p_reward={p_reward!r} is out of range; allowed: a probability in [0, 1]")
    lo, hi = check_epsilon(eps_low, "eps_low"), check_epsilon(eps_high, "eps_high")
    variants = {"none": (None, None), "clip_low": (lo, None), "clip_high": (None, hi), "both": (lo, hi)}
    N = log_pi0.size
    s = scales(np.ones((seeds, G)), "seq_sum", 1)  # (S, G) = 1/G
    H = {}
    for name, (l, h) in variants.items():
        rng = np.random.default_rng(seed)  # common random numbers across the variants
        z = np.tile(log_pi0 - log_pi0.max(), (seeds, 1))  # (S, N) logits
        for _ in range(steps):
            log_old = log_softmax_rows(z)  # (S, N)
            y = batched.sample_rows(log_old, G, rng)  # (S, G)
            sA = s * group_advantages((rng.random((seeds, G)) < p_reward).astype(float), "grpo")
            m_pos = batched.response_masses(y, np.maximum(sA, 0), N)
            m_neg = batched.response_masses(y, np.minimum(sA, 0), N)
            for _ in range(epochs):
                z = z - lr * batched.clipped_logit_gradient(log_softmax_rows(z), log_old, m_pos, m_neg, l, h)
        H[name] = entr(np.exp(log_softmax_rows(z))).sum(axis=1)
    delta = {k: float((H[k] - H["none"]).mean()) for k in variants if k != "none"}
    se = {k: float((H[k] - H["none"]).std(ddof=1) / np.sqrt(seeds)) for k in variants if k != "none"}
    return ClipStudy(H, delta, se)


def clipped_objective(rho, advantage: float, clip_low=None, clip_high=None) -> np.ndarray:
    """min(ρ A, clip(ρ, 1 − ε_low, 1 + ε_high) A) for an array of ratios ρ (the per-token PPO objective)."""
    rho = as_float_array(rho, "rho")
    lo, hi = check_epsilon(clip_low, "clip_low"), check_epsilon(clip_high, "clip_high")
    clipped = np.clip(rho, 1 - lo if lo is not None else -np.inf, 1 + hi if hi is not None else np.inf)
    return np.minimum(rho * advantage, clipped * advantage)


def epoch_agreement(alg: Algorithm, policy, task, G: int, lr: float, batches: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Mean cos(sampled update at epoch k, exact expected clipped-surrogate gradient at θ_k) over ``batches``
    batches, k = 1 … alg.epochs, and its standard error; each (epochs,).

    θ_k comes from :func:`ppo_epochs` (SGD, rate ``lr``) on the batch; the exact gradient is the
    expectation over fresh batches from π_old at the same θ_k (:func:`expected.expected_update`
    with ``old_policy``).  How much of each later epoch is the surrogate's gradient, and how much
    the batch's noise.  Batches that give no update (all rewards equal) are left out.
    """
    batches = check_int(batches, "batches", low=2)
    pols = _expected.policies_of(policy)
    cos = np.empty((batches, alg.epochs))
    for b in range(batches):
        batch = sample_batch(alg, pols, task, G, rng)
        traj = ppo_epochs(alg, pols, task, batch, lr)
        for k in range(alg.epochs):
            old = None if k == 0 else pols
            g = sampled_update(alg, traj[k], task, batch, old)
            e = _expected.expected_update(alg, traj[k], task, G, old_policy=old).gradient
            norm = np.linalg.norm(g) * np.linalg.norm(e)
            cos[b, k] = g @ e / norm if norm > 0 else np.nan  # a batch without signal (equal rewards): skipped
    n = np.sum(~np.isnan(cos), axis=0)
    return np.nanmean(cos, axis=0), np.nanstd(cos, axis=0, ddof=1) / np.sqrt(n)
