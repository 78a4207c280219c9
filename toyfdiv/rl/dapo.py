"""DAPO's dynamic sampling and overlong reward shaping (Yu et al. 2025, §3.2 and §3.4).

Dynamic sampling (eq. 11, the constraint 0 < |{o_i : o_i right}| < G): a group whose rewards
are all equal gives every response the advantage 0 and is dropped; sampling goes on until
the batch is full of groups with some spread.  For a prompt whose responses fall into
reward classes r with probabilities q_r = Σ_{y: R(y) = r} π_old(y), the group is degenerate
with probability P_deg = Σ_r q_r^G, and the kept group is distributed as

    P(y_1 … y_G | kept) = Π_i π_old(y_i) 1[not all R(y_i) equal] / (1 − P_deg),

so a prompt's expected update is its unfiltered one (where degenerate groups contribute 0)
divided by 1 − P_deg; binary rewards with success probability p: 1/(1 − p^G − (1 − p)^G)
(:func:`dynamic_sampling_weight`).  Here a batch holds one group per prompt of the task and
a degenerate group is drawn again for the same prompt (the per-prompt conditioning above);
a prompt that can never give a spread (one reward value under π_old, P_deg = 1) is left out
of the batch, as DAPO's refill leaves it out.  (DAPO refills the batch with fresh prompts;
over the prompts its buffer then holds, prompt c appears with frequency ∝ ρ(c)(1 − P_deg(c)),
which cancels this 1/(1 − P_deg) up to one factor common to all prompts.)

Overlong reward shaping (eq. 13), a soft length penalty added to the reward:

    R_length(y) = 0                                    |y| ≤ L_max − L_cache
                = ((L_max − L_cache) − |y|) / L_cache  L_max − L_cache < |y| ≤ L_max
                = −1                                   |y| > L_max

(|y| counts the EOS token, as toyfdiv's lengths do.)
"""

from __future__ import annotations

import numpy as np

from .._util import as_float_array, check_int, check_rng
from .algorithms import check_overlong

__all__ = ["overlong_penalty", "dynamic_sampling_weight", "kept_probability", "draw_groups", "MAX_REDRAWS",
           "MAX_GROUP"]

#: the largest group size G the closed forms take
MAX_GROUP = 10**6

#: a group still degenerate after this many draws for a prompt with P_deg < 1 raises (P_deg^1000 is negligible
#: unless P_deg ≈ 1, where the draws would not end in practice either)
MAX_REDRAWS = 1000


def overlong_penalty(lengths, L_max: int, L_cache: int) -> np.ndarray:
    """R_length(|y|) = clip(((L_max − L_cache) − |y|)/L_cache, −1, 0): DAPO's soft overlong penalty, shape of ``lengths``.

    0 up to L_max − L_cache tokens, then falling linearly to −1 at L_max, −1 beyond
    (Yu et al. 2025, eq. 13).
    """
    L_max, L_cache = check_overlong((L_max, L_cache))
    n = as_float_array(lengths, "lengths")
    if not (np.isfinite(n).all() and (n >= 0).all()):
        raise ValueError("lengths must be finite and ≥ 0 (response lengths in tokens)")
    return np.clip(((L_max - L_cache) - n) / L_cache, -1.0, 0.0)


def dynamic_sampling_weight(p, G: int) -> np.ndarray:
    """1 / (1 − p^G − (1 − p)^G): the factor dynamic sampling puts on a binary-reward prompt's expected update.

    p: success probabilities in (0, 1) (any shape); G ≥ 2.  Computed with expm1/log1p, so
    that a p near 0 or 1 keeps its relative precision.
    """
    G = check_int(G, "G", low=2, high=MAX_GROUP)
    p = as_float_array(p, "p")
    if not np.all((p > 0) & (p < 1)):
        raise ValueError(f"p={p!r} must be probabilities in (0, 1) (at 0 or 1 every group is degenerate)")
    q = np.minimum(p, 1 - p)  # the rarer outcome
    kept = -np.expm1(G * np.log1p(-q)) - q**G  # 1 − (1 − q)^G − q^G
    if np.any(kept < 1 / np.finfo(float).max):  # p ≈ 1e-313: a spread so rare that 1/kept overflows
        raise ValueError(f"p has a probability {q.min():.3g} so close to 0 or 1 that a group with a spread has "
                         f"probability {kept.min():.3g} and its weight 1/P overflows float64; allowed: min(p, 1 − p) "
                         f"> ~{1 / np.finfo(float).max / G:.3g}")
    return 1.0 / kept


def kept_probability(pi, reward, G: int) -> float:
    """1 − P_deg = 1 − Σ_r q_r^G, q_r = Σ_{y: R(y) = r} π(y): the probability that a group has a spread.

    pi, reward (N,).  The largest class enters as 1 − (1 − rest)^G = −expm1(G log1p(−rest)),
    rest = the other classes' mass, so no cancellation when one class holds almost all of π.
    """
    G = check_int(G, "G", low=2, high=MAX_GROUP)
    pi, R = as_float_array(pi, "pi"), as_float_array(reward, "reward")
    if pi.shape != R.shape or pi.ndim != 1:
        raise ValueError(f"pi and reward have shapes {pi.shape}, {R.shape}; allowed: one shape (N,)")
    if not (np.isfinite(pi).all() and (pi >= 0).all() and abs(pi.sum() - 1) < 1e-8):
        raise ValueError("pi must be probabilities (finite, ≥ 0, summing to 1)")
    if not np.isfinite(R).all():
        raise ValueError("reward contains NaN or inf; rewards must be finite")
    _, cls = np.unique(R, return_inverse=True)
    q = np.bincount(cls.reshape(-1), weights=pi)  # (classes,)
    if q.size == 1:
        return 0.0
    top = int(q.argmax())
    rest = np.delete(q, top)
    return float(max(-np.expm1(G * np.log1p(-min(rest.sum(), 1.0))) - np.sum(rest**G), 0.0))


def draw_groups(policies, Rs, G: int, n: int, rng: np.random.Generator, dynamic: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """idx (n, C, G) responses, one group per prompt per trial, and kept (C,) the prompts that can enter.

    Without ``dynamic`` every group is kept as drawn.  With it, a group whose rewards Rs[c]
    are all equal is drawn again (from the same π_old(·|c)) until it has a spread; a prompt
    with one reward value under π_old is not kept (its groups are left as drawn and must be
    masked by the caller).
    """
    G, n = check_int(G, "G"), check_int(n, "n")
    rng = check_rng(rng)
    C = len(policies)
    idx = np.stack([p.sample(n * G, rng).reshape(n, G) for p in policies], axis=1)  # (n, C, G)
    kept = np.array([not dynamic or kept_probability(p.probs(), Rs[c], G) > 0 for c, p in enumerate(policies)])
    if not dynamic or G < 2:
        return idx, np.ones(C, dtype=bool)
    for c in np.flatnonzero(kept):
        for _ in range(MAX_REDRAWS):
            bad = np.flatnonzero(np.ptp(Rs[c][idx[:, c]], axis=1) == 0)  # degenerate groups of prompt c
            if bad.size == 0:
                break
            idx[bad, c] = policies[c].sample(bad.size * G, rng).reshape(bad.size, G)
        else:
            raise ValueError(f"prompt {c}: groups still all-equal after {MAX_REDRAWS} draws (1 − P_deg = "
                             f"{kept_probability(policies[c].probs(), Rs[c], G):.2e}); allowed: prompts whose "
                             "rewards vary under π_old, or dynamic_sampling=False")
    return idx, kept
