"""REINFORCE++'s batch-normalised advantage, exactly: the expectation over the whole batch of prompts.

REINFORCE++ (Hu et al. 2025, §3) normalises every reward by the mean and standard deviation of
the whole batch — one group of G per prompt, C prompts, B = C·G rewards:

    A_i = (R_i − mean_B R) / (std_B R + ε)        (ddof 0, ε = GRPO_EPS, as group_advantages)

A_1 reads the other B − 1 rewards only through how many take each reward value v_1 … v_K,
not which prompt gave them.  Prompt c' contributes G draws with class probabilities
q_c'(k) = Σ_{y: R_c'(y) = v_k} π_old(y|c'), so the others' class counts n (K,) are distributed
as the convolution of Multinomial(G − 1, q_c) (the own group) with Multinomial(G, q_c'),
c' ≠ c.  Hence, exactly,

    h_c(k) = E[A_1 | R_1 = v_k] = Σ_n P_c(n) (v_k − μ(n + e_k)) / (σ(n + e_k) + ε),

and prompt c's masses are m_A(y) = G π_old(y) s(y) h_c(R(y)) (s: the aggregation weight, which
must not read the other responses).  Feasible while (B + 1)^K ≤ max_terms, i.e. for rewards with
a few values; a reward with the KL penalty inside takes one value per response, and then the
expectation is Monte Carlo (:func:`toyfdiv.rl.expected_update`, mode "mc", with its noise floor).

For binary rewards the update of prompt c is w_c (−∇θ p_c) with w_c = h_c(1) − h_c(0)
(:func:`batch_weights`): like GRPO's w(p) (:func:`effective_weight`), but each prompt's weight
depends on every prompt's success probability.
"""

from __future__ import annotations

import reprlib

import numpy as np
from scipy.signal import convolve
from scipy.special import gammaln, xlogy

from .._util import as_float_array, check_int, check_positive_float
from .advantages import GRPO_EPS

__all__ = ["MAX_CELLS", "class_counts", "batch_advantage_tables", "batch_weights"]

#: the largest count table (B + 1)^K enumerated
MAX_CELLS = 10**6


def _probabilities(q, name: str) -> np.ndarray:
    """q as a float array of probabilities along its last axis (finite, ≥ 0, each row summing to 1)."""
    q = as_float_array(q, name)
    if q.ndim == 0 or q.shape[-1] == 0 or not (np.isfinite(q).all() and (q >= 0).all()
                                               and np.abs(q.sum(axis=-1) - 1).max() < 1e-8):
        raise ValueError(f"{name}={q!r} must be probabilities (finite, ≥ 0, summing to 1 along the last axis)")
    return q


def class_counts(q, n: int) -> np.ndarray:
    """P(counts = (n_1 … n_K)) for n draws from q (K,): a K-dim array of shape (n + 1,) * K (0 off the simplex)."""
    q = _probabilities(q, "q")
    n = check_int(n, "n", low=0)
    K = q.size
    if (n + 1) ** K > MAX_CELLS:
        raise ValueError(f"n={n} with K = {K} classes needs (n + 1)^K = {(n + 1) ** K:,} cells; allowed: ≤ "
                         f"MAX_CELLS = {MAX_CELLS:,}")
    grids = np.indices((n + 1,) * K).reshape(K, -1).T  # (cells, K)
    on = grids.sum(axis=1) == n
    out = np.zeros(grids.shape[0])
    m = grids[on]
    out[on] = np.exp(gammaln(n + 1) - gammaln(m + 1).sum(axis=1) + xlogy(m, q).sum(axis=1))
    return out.reshape((n + 1,) * K)


def batch_advantage_tables(qs, values, G: int, eps: float = GRPO_EPS, max_cells: int = MAX_CELLS
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """h, h⁺, h⁻ (C, K): E[A_1], E[max(A_1, 0)], E[min(A_1, 0)] given R_1 = v_k, for the first response of
    prompt c (module docstring).  qs (C, K) class probabilities per prompt; values (K,) the reward values."""
    qs = _probabilities(qs, "qs")
    v = as_float_array(values, "values")
    if not np.isfinite(v).all():
        raise ValueError("values contains NaN or inf; reward values must be finite")
    G = check_int(G, "G", low=1)
    eps = check_positive_float(eps, "eps", allow_zero=True)
    if qs.ndim != 2 or qs.shape[1] != v.size:
        raise ValueError(f"qs has shape {qs.shape}; allowed: (C, K) with K = {v.size}, one row per prompt")
    C, K = qs.shape
    B = C * G
    work = C * (B + 1) ** K * (G + 1) ** K  # the direct convolutions below, cell by cell
    if (B + 1) ** K > max_cells or work > 10 * max_cells:
        raise ValueError(f"G={reprlib.repr(G)} on C = {C} prompts with K = {K} reward values: the exact batch "
                         f"normalisation needs count tables of (C·G + 1)^K cells and ~C·(C·G + 1)^K·(G + 1)^K "
                         f"convolution steps, over max_cells = {max_cells:,} (and 10·max_cells); use mode='mc' or a "
                         "smaller G")
    full = [class_counts(q, G) for q in qs]  # each prompt's G draws
    counts = np.indices((B,) * K).reshape(K, -1).T  # (cells, K) the others' counts n, each ≤ B − 1
    h, hp, hn = (np.zeros((C, K)) for _ in range(3))
    for c in range(C):
        P = class_counts(qs[c], G - 1)
        for c2 in range(C):
            if c2 != c:
                P = convolve(P, full[c2], method="direct")
        P = P.reshape(-1)  # (B^K,) over the others' counts, shape (B,) * K
        live = P > 0
        n, p = counts[live], P[live]
        for k in range(K):
            tot = n.copy()
            tot[:, k] += 1  # the batch's counts with R_1 = v_k
            mean = tot @ v / B  # (cells,)
            std = np.sqrt((tot * (v[None, :] - mean[:, None]) ** 2).sum(axis=1) / B)  # ddof 0, no cancellation
            A = (v[k] - mean) / (std + eps)
            h[c, k], hp[c, k], hn[c, k] = p @ A, p @ np.maximum(A, 0), p @ np.minimum(A, 0)
    return h, hp, hn


def batch_weights(p, G: int, eps: float = GRPO_EPS) -> np.ndarray:
    """w_c = h_c(1) − h_c(0) for binary rewards, p (C,) the prompts' success probabilities: REINFORCE++'s update of
    prompt c is w_c (−∇θ p_c) (mean over the group, s = 1/G)."""
    p = as_float_array(p, "p").reshape(-1)
    if p.size == 0 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p={p!r} must be success probabilities in [0, 1], one per prompt")
    h, _, _ = batch_advantage_tables(np.column_stack([1 - p, p]), np.array([0.0, 1.0]), G, eps)
    return h[:, 1] - h[:, 0]
