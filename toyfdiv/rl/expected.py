"""The expected update of an algorithm, E_batch[∇θ L], exactly or by Monte Carlo.

For a prompt, a batch is G responses y_1 … y_G ∼ π_old, with rewards R_i, advantages A_i
and weights s_i (:mod:`toyfdiv.rl.aggregation`).  The loss's gradient is linear in the
per-response masses, so by exchangeability

    E[∇θ L] = −Σ_y m_A(y) ∇θ log π(y) + β Σ_y m_s(y) ∇θ k(y),
    m_A(y) = G π_old(y) E[s_1 A_1 | y_1 = y],   m_s(y) = G π_old(y) E[s_1 | y_1 = y]

(on later PPO epochs the first sum becomes the per-token clipped-ratio form, with m_A split
into its positive and negative parts, :mod:`toyfdiv.rl.ppo`).

- exact: A_1 and s_1 read the others' responses only through their *types* (reward value,
  and length where s needs it), so E[· | y_1] is a sum over the multinomial counts of the
  G − 1 others over the K types: C(G + K − 2, K − 1) terms, enumerated when
  K × that ≤ ``max_terms`` (10⁶).  Binary rewards at G = 64: 2 × 64 terms.
- mc: ``trials`` batches drawn, the masses averaged; the noise floor is the standard error
  of the update over ``chunks`` independent chunks (like ``estimator_stats``).
A prompted task averages the prompts' updates with weights ρ(c); a batch holds one group
per prompt.  REINFORCE++ normalises over the batch of all prompts: exact through the
distribution of the batch's reward-class counts where the rewards take few values
(:mod:`toyfdiv.rl.batchnorm`), Monte Carlo otherwise (a KL penalty in the reward).  DAPO's batch token mean divides by the tokens of every prompt's group: exact
by averaging over the other prompts' token total, whose distribution is the convolution of
their groups' (:func:`rest_totals`); dynamic sampling conditions each group on a spread of
rewards (:mod:`toyfdiv.rl.dapo`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import gammaln, xlogy

from .._util import as_float_array, check_int, check_rng, check_instance
from ..policies.autoregressive import AutoregressivePolicy
from ..policies.base import Policy
from .advantages import GRPO_EPS, choice, group_advantages, scaled
from .aggregation import LENGTH_DEPENDENT, scales
from .algorithms import Algorithm
from .clip import clipped_gradient, sequence_clipped_gradient
from .batchnorm import batch_advantage_tables
from .dapo import draw_groups, kept_probability, overlong_penalty
from . import kl as _kl

__all__ = ["MODES", "Masses", "Update", "policies_of", "rewards_with_kl", "greedy_index", "masses_exact",
           "group_totals", "rest_totals", "masses_batch_normalised",
           "masses_mc", "gradient_from_masses", "expected_update", "reference_gradient", "n_terms"]

MODES = ("auto", "exact", "mc")
MAX_TERMS = 10**6


@dataclass(frozen=True)
class Masses:
    """Per-response masses of one prompt's batch loss, each (N,): m_A, its parts m_A⁺, m_A⁻, and m_s."""

    A: np.ndarray
    A_pos: np.ndarray
    A_neg: np.ndarray
    s: np.ndarray


@dataclass(frozen=True)
class Update:
    """An expected update (gradient of the quantity minimised), its noise floor and how it was computed.

    gradient (P,); stderr (P,) per-coordinate standard error (zeros when exact);
    noise_floor = ‖stderr‖; mode "exact" or "mc"; trials (0 when exact).
    """

    gradient: np.ndarray
    stderr: np.ndarray
    mode: str
    trials: int = 0

    @property
    def noise_floor(self) -> float:
        return float(np.linalg.norm(self.stderr))


def policies_of(policy) -> tuple[Policy, ...]:
    """The per-prompt policies: a Policy (one prompt), a sequence of them, or an object with ``.policies``."""
    pols = getattr(policy, "policies", policy)
    if isinstance(pols, Policy):
        return (pols,)
    if not isinstance(pols, (list, tuple)) or not pols or not all(isinstance(p, Policy) for p in pols):
        raise ValueError(f"policy={policy!r} must be a Policy, a list of Policy (one per prompt) or a "
                         "ConditionalPolicy")
    return tuple(pols)


def rewards_with_kl(alg: Algorithm, policy: Policy, reward, log_ref) -> np.ndarray:
    """R(y) = r(y) − β k(y) with the KL in the reward, else r(y); plus DAPO's R_length(|y|) with ``alg.overlong``; (N,)."""
    r = as_float_array(reward, "reward")
    if alg.overlong is not None:
        r = r + overlong_penalty(policy.space.lengths, *alg.overlong)
    if alg.kl_in_reward:
        return r - alg.beta * _kl.kl_values(policy, log_ref, alg.kl, alg.kl_level)
    return r


def greedy_index(policy: Policy) -> int:
    """The greedy response ȳ: argmax π(v|u) at each prefix, from the root (ReMax's baseline)."""
    space = policy.space
    lc = policy.log_conditionals() if hasattr(policy, "log_conditionals") else \
        AutoregressivePolicy.from_log_probs(space, policy.log_probs()).log_conditionals()
    V, node, toks = space.n_vocab, 0, []
    for lv, table in zip(space.levels, lc):
        v = int(np.argmax(table[node]))
        if space.eos is not None and (lv.choices == 1 or v == V):
            return space.index(toks + [space.eos])
        toks.append(space.vocab[v])
        node = node * V + v
    return space.index(toks)


@lru_cache(maxsize=64)
def _compositions(n: int, K: int) -> np.ndarray:
    """Every count vector m ∈ ℕ^K with Σ m = n, (M, K)."""
    if K == 1:
        return np.array([[n]])
    parts = [np.column_stack([np.full(len(rest), first), rest])
             for first in range(n, -1, -1) for rest in [_compositions(n - first, K - 1)]]
    return np.vstack(parts)


def n_terms(G: int, K: int) -> int:
    """K × C(G + K − 2, K − 1): the terms of the exact expectation with K response types."""
    return K * math.comb(G + K - 2, K - 1)


def _advantages(R: np.ndarray, alg: Algorithm, baseline: float | None) -> np.ndarray:
    return group_advantages(R, alg.advantage, baseline=baseline if alg.advantage == "remax" else None)


def _types(alg: Algorithm, R: np.ndarray, lengths: np.ndarray, G: int, max_terms: int, size=n_terms):
    """(values (K, 2) of (reward, length-or-0), type_of (N,)): the response types A and s can read."""
    use_len = alg.aggregation in LENGTH_DEPENDENT
    keys = np.column_stack([R, lengths if use_len else np.zeros_like(R)])
    values, type_of = np.unique(keys, axis=0, return_inverse=True)
    K = len(values)
    if size(G, K) > max_terms:
        raise ValueError(f"the exact expectation needs {size(G, K):,} terms (K = {K} response types, G = {G}), "
                         f"over max_terms = {max_terms:,}; use mode='mc'")
    return values, type_of.reshape(-1)


def _multinomial(m: np.ndarray, q: np.ndarray) -> np.ndarray:
    """P(counts m) for Σm draws from q: (M, K) → (M,)."""
    n = m.sum(axis=1)
    return np.exp(gammaln(n + 1) - gammaln(m + 1).sum(axis=1) + xlogy(m, q).sum(axis=1))


def group_totals(alg: Algorithm, pi_old: np.ndarray, R: np.ndarray, lengths: np.ndarray, G: int,
                 max_terms: int = MAX_TERMS) -> np.ndarray:
    """P(T = t), t = 0 … G·max|y|: the token total of one prompt's group as it enters the batch; (T + 1,).

    With ``alg.dynamic_sampling`` the group is conditioned on a spread of rewards, and a prompt
    that never gives one enters with T = 0 (left out).  Lengths must be integers.
    """
    values, type_of = _types(alg.with_(aggregation="batch_token_mean"), R, lengths, G, max_terms,
                             size=lambda G, K: math.comb(G + K - 1, K - 1))
    q = np.bincount(type_of, weights=pi_old, minlength=len(values))
    m = _compositions(G, len(values))  # (M, K) counts of the G responses
    w = _multinomial(m, q)
    total = (m @ values[:, 1]).round().astype(np.int64)  # (M,)
    if alg.dynamic_sampling:
        kept = kept_probability(pi_old, R, G)
        if kept == 0:
            return np.array([1.0])
        cls = np.unique(values[:, 0], return_inverse=True)[1].reshape(-1)  # (K,) reward class of each type
        per_class = m @ (cls[:, None] == np.arange(cls.max() + 1)[None, :])  # (M, classes) counts
        w = w * ((per_class > 0).sum(axis=1) > 1) / kept  # a spread: two classes or more
    return np.bincount(total, weights=w)


def masses_exact(alg: Algorithm, pi_old: np.ndarray, R: np.ndarray, lengths: np.ndarray, G: int, max_length: int,
                 baseline: float | None = None, max_terms: int = MAX_TERMS, rest_totals=None, n_prompts: int = 1
                 ) -> Masses:
    """The masses of one prompt, exactly, by enumerating the others' type counts (module docstring).

    Dynamic sampling (``alg.dynamic_sampling``) keeps only the compositions with a spread of
    rewards and divides by their probability 1 − P_deg.  DAPO's batch token mean
    s = n_prompts / (own group's tokens + T_rest) averages over ``rest_totals``, the
    distribution of the other prompts' token total (:func:`group_totals`, convolved; None: a
    lone prompt, T_rest = 0).
    """
    if alg.advantage == "reinforce_pp":
        raise ValueError("advantage 'reinforce_pp' normalises over the whole batch of prompts: its exact "
                         "expectation is masses_batch_normalised (expected_update does it), not per prompt")
    values, type_of = _types(alg, R, lengths, G, max_terms)
    K = len(values)
    q = np.bincount(type_of, weights=pi_old, minlength=K)  # (K,) type probabilities
    m = _compositions(G - 1, K)  # (M, K) the others' counts
    w = _multinomial(m, q)  # (M,)
    others = (np.cumsum(m, axis=1)[:, None, :] <= np.arange(G - 1)[None, :, None]).sum(axis=2)  # (M, G−1) types
    own = np.arange(K)[:, None, None]  # (K, 1, 1) the first response's type
    types = np.concatenate([np.broadcast_to(own, (K, len(m), 1)), np.broadcast_to(others, (K,) + others.shape)],
                           axis=2)  # (K, M, G)
    rewards = values[types, 0]  # (K, M, G)
    A = _advantages(rewards, alg, baseline)[..., 0]  # (K, M)
    if alg.aggregation == "batch_token_mean":
        rest = np.array([1.0]) if rest_totals is None else np.asarray(rest_totals, dtype=float)
        n_own = values[types, 1].sum(axis=2)  # (K, M) the group's tokens
        s = (n_prompts / (n_own[..., None] + np.arange(rest.size))) @ rest  # (K, M) E[C / (n_own + T_rest)]
    else:
        s = scales(values[types, 1], alg.aggregation, max_length)[..., 0]  # (K, M)
    W = np.broadcast_to(w, A.shape)  # (K, M) P(others' counts)
    if alg.dynamic_sampling:
        kept = kept_probability(pi_old, R, G)
        if kept == 0:  # never a spread: the prompt is left out of the batch
            z = np.zeros_like(pi_old)
            return Masses(z, z, z, z)
        W = W * (np.ptp(rewards, axis=2) > 0) / kept
    sA = s * A
    per_type = [G * (sA * W).sum(1), G * (np.maximum(sA, 0) * W).sum(1), G * (np.minimum(sA, 0) * W).sum(1),
                G * (s * W).sum(1)]  # (K,) each
    return Masses(*(pi_old * t[type_of] for t in per_type))


def rest_totals(alg: Algorithm, pis, Rs, lengths, G: int, max_terms: int = MAX_TERMS) -> list:
    """For DAPO's batch token mean: per prompt c, P(T_rest = t), the token total of the other prompts' groups
    (the convolution of their :func:`group_totals`); None for other aggregations or a lone prompt."""
    C = len(pis)
    if alg.aggregation != "batch_token_mean" or C == 1:
        return [None] * C
    totals = [group_totals(alg, pis[c], Rs[c], lengths, G, max_terms) for c in range(C)]
    out = []
    for c in range(C):
        d = np.array([1.0])
        for c2 in range(C):
            if c2 != c:
                d = np.convolve(d, totals[c2])
        out.append(d)
    return out


def masses_batch_normalised(alg: Algorithm, pis, Rs, lengths, G: int, max_length: int, max_terms: int = MAX_TERMS
                            ) -> list[Masses]:
    """REINFORCE++'s masses of every prompt, exactly (:mod:`toyfdiv.rl.batchnorm`): m_A(y) = G π_old(y) s(y) h_c(R(y)).

    Refused (ValueError: use mode='mc') when the rewards take too many values for the count table,
    with dynamic sampling, or with an aggregation that reads the other responses' lengths.
    """
    if alg.dynamic_sampling or alg.aggregation == "batch_token_mean":
        raise ValueError("the exact REINFORCE++ expectation needs independent groups and an aggregation weight "
                         "of the response alone (not dynamic sampling, not batch_token_mean); use mode='mc'")
    values, cls = np.unique(np.concatenate(Rs), return_inverse=True)
    cls = cls.reshape(len(Rs), -1)  # (C, N) class of each response
    qs = np.stack([np.bincount(cls[c], weights=pis[c], minlength=values.size) for c in range(len(Rs))])  # (C, K)
    h, hp, hn = batch_advantage_tables(qs, values, G, max_cells=max_terms)
    s = scales(np.column_stack([lengths, np.ones((len(lengths), G - 1))]), alg.aggregation, max_length)[:, 0]  # (N,)
    return [Masses(*(G * pis[c] * s * t[c, cls[c]] for t in (h, hp, hn)), G * pis[c] * s) for c in range(len(Rs))]


def masses_mc(alg: Algorithm, policies, Rs, lengths, G: int, max_length: int, baselines, trials: int,
              rng: np.random.Generator) -> list[Masses]:
    """The masses of every prompt from ``trials`` sampled batches (one group of G per prompt each)."""
    C, N = len(policies), len(Rs[0])
    idx, kept = draw_groups(policies, Rs, G, trials, rng, alg.dynamic_sampling)  # (trials, C, G), (C,)
    R = np.stack([Rs[c][idx[:, c]] for c in range(C)], axis=1)  # (trials, C, G)
    if alg.advantage == "reinforce_pp":  # each trial's batch of C·G rewards, as group_advantages on it
        A = _batch_normalised(R.reshape(trials, C * G)).reshape(R.shape)
    else:
        b = None if alg.advantage != "remax" else np.asarray(baselines, dtype=float)[None, :]
        A = _advantages(R, alg, b)
    s = scales(lengths[idx] * kept[:, None], alg.aggregation, max_length) * kept[:, None]  # (trials, C, G)
    sA = s * A
    out = []
    for c in range(C):
        def mass(v):
            return np.bincount(idx[:, c].ravel(), weights=v[:, c].ravel(), minlength=N) / trials
        out.append(Masses(mass(sA), mass(np.maximum(sA, 0)), mass(np.minimum(sA, 0)), mass(s)))
    return out


def _batch_normalised(flat: np.ndarray) -> np.ndarray:
    """REINFORCE++ per batch row: (R − mean)/(std + ε), ddof 0, as :func:`group_advantages` on each row."""
    centred = flat - flat.mean(axis=1, keepdims=True)
    return scaled(centred, flat.std(axis=1, keepdims=True) + GRPO_EPS)


def gradient_from_masses(alg: Algorithm, policy: Policy, masses: Masses, log_ref, old_policy: Policy | None = None
                         ) -> np.ndarray:
    """−Σ_y m_A ∇ log π + β Σ_y m_s ∇ k (first epoch), or the clipped per-token form against ``old_policy``.

    With ``alg.ratio_level == "sequence"`` (GSPO) the ratio is (π/π_old)^{1/|y|}: the first epoch
    is −Σ_y (m_A/|y|) ∇ log π, later ones :func:`toyfdiv.rl.clip.sequence_clipped_gradient`.
    """
    sequence = alg.ratio_level == "sequence"
    if old_policy is None or old_policy is policy:
        g = policy.grad_log_prob_weighted(-masses.A / policy.space.lengths if sequence else -masses.A)
    elif sequence:
        g = sequence_clipped_gradient(policy, old_policy, masses.A_pos, masses.A_neg, alg.clip_low, alg.clip_high)
    else:
        g = clipped_gradient(policy, old_policy, masses.A_pos, masses.A_neg, alg.clip_low, alg.clip_high)
    if alg.kl_in_loss:
        g = g + alg.beta * _kl.kl_loss_gradient(policy, log_ref, alg.kl, alg.kl_level, masses.s)
    return g


def expected_update(alg: Algorithm, policy, task, G: int = 8, *, mode: str = "auto", trials: int = 10_000,
                    rng: np.random.Generator | None = None, chunks: int = 10, old_policy=None,
                    max_terms: int = MAX_TERMS) -> Update:
    """E_batch[∇θ L(θ)] for ``alg`` on a prompted ``task``: Σ_c ρ(c) (per-prompt update), concatenated; (P,).

    Args:
      alg: the :class:`Algorithm`.
      policy: the current policy (a Policy for a one-prompt task, a list, or a ConditionalPolicy).
      task: a :class:`toyfdiv.rl_tasks.PromptedTask` (reward (C, N), log_a (C, N) the reference, ρ).
      G: responses per prompt.
      mode: "exact" (type enumeration), "mc" (``trials`` batches, in ``chunks`` for the noise
        floor) or "auto" (exact where it fits in ``max_terms``, else mc).
      old_policy: the policy that sampled the batch (PPO's later epochs); default the current one.
    """
    check_instance(alg, Algorithm, "alg")
    choice(mode, "mode", MODES)
    G = check_int(G, "G", low=1)
    if alg.advantage in ("rloo", "dr_grpo", "grpo", "reinforce_pp") and G < 2:
        raise ValueError(f"G={G}: advantage {alg.advantage!r} uses a group baseline and needs G ≥ 2")
    pols = policies_of(policy)
    olds = pols if old_policy is None else policies_of(old_policy)
    C = len(task.prompts)
    if len(pols) != C or len(olds) != C:
        raise ValueError(f"the task has {C} prompts but the policy has {len(pols)}; give one policy per prompt")
    rho = np.exp(task.log_rho)
    lengths = task.space.lengths.astype(float)
    L = task.space.length
    Rs = [rewards_with_kl(alg, o, task.reward[c], task.log_a[c]) for c, o in enumerate(olds)]
    base = [float(Rs[c][greedy_index(o)]) for c, o in enumerate(olds)] if alg.advantage == "remax" else [None] * C

    def grad(all_masses):
        return np.concatenate([rho[c] * gradient_from_masses(alg, pols[c], all_masses[c], task.log_a[c],
                                                             None if old_policy is None else olds[c])
                               for c in range(C)])

    if mode in ("auto", "exact"):
        try:
            if alg.advantage == "reinforce_pp":
                ms = masses_batch_normalised(alg, [o.probs() for o in olds], Rs, lengths, G, L, max_terms)
            else:
                rest = rest_totals(alg, [o.probs() for o in olds], Rs, lengths, G, max_terms)
                ms = [masses_exact(alg, olds[c].probs(), Rs[c], lengths, G, L, base[c], max_terms, rest[c], C)
                      for c in range(C)]
            g = grad(ms)
            return Update(g, np.zeros_like(g), "exact")
        except ValueError:
            if mode == "exact":
                raise
    rng = np.random.default_rng(0) if rng is None else check_rng(rng)
    trials = check_int(trials, "trials", low=chunks)
    chunks = check_int(chunks, "chunks", low=2)
    per = trials // chunks
    gs = np.stack([grad(masses_mc(alg, olds, Rs, lengths, G, L, base, per, rng)) for _ in range(chunks)])
    return Update(gs.mean(axis=0), gs.std(axis=0, ddof=1) / np.sqrt(chunks), "mc", per * chunks)


def reference_gradient(policy, task, beta: float) -> np.ndarray:
    """−∇θ Σ_c ρ(c) (E_π[r] − β KL(π‖a)) exactly (β = 0: −∇ E_π[r]); (P,).  The RLHF gradient."""
    pols = policies_of(policy)
    rho = np.exp(task.log_rho)
    out = []
    for c, p in enumerate(pols):
        pi, log_pi = p.probs(), p.log_probs()
        w = task.reward[c] - (beta * (log_pi - task.log_a[c]) if beta > 0 else 0.0)
        out.append(rho[c] * p.grad_log_prob_weighted(-pi * (w - pi @ w)))
    return np.concatenate(out)
