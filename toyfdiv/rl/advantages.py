"""Group advantages: how each RLHF algorithm turns the rewards of a group into advantages.

A prompt's group holds G responses y_1 … y_G ∼ π(·|c) with rewards R_i.  Every method
maps the (…, G) rewards to (…, G) advantages A_i; the policy-gradient loss is then
−Σ_i s_i A_i log π(y_i) (:mod:`toyfdiv.rl.aggregation` gives s_i).

    none          A_i = R_i                                   REINFORCE (Williams 1992)
    rloo          A_i = R_i − (1/(G−1)) Σ_{j≠i} R_j            Ahmadian et al. 2024, eq. (5)
    dr_grpo       A_i = R_i − (1/G) Σ_j R_j                    Liu et al. 2025 ("Dr. GRPO"), eq. (3)
    grpo          A_i = (R_i − mean_j R_j) / (std_j R_j + ε)   Shao et al. 2024, eq. (outcome supervision)
    reinforce_pp  A_i = (R_i − mean R) / (std R + ε), over the whole array (the batch)
                                                               Hu et al. 2025 ("REINFORCE++"), §3
    remax         A_i = R_i − R(ȳ), ȳ the greedy response      Li et al. 2023 ("ReMax"), Alg. 1

GRPO's std convention: the sample standard deviation (ddof = 1, as ``torch.std`` in TRL's
GRPOTrainer) and ε = 1e-4 added to it (TRL's default); a group with all-equal rewards
gets A = 0.  RLOO's advantage is exactly G/(G−1) times Dr. GRPO's.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from .._util import as_float_array, check_positive_float

__all__ = ["ADVANTAGES", "GROUP_ADVANTAGES", "GRPO_EPS", "group_advantages", "effective_weight", "choice"]

#: every advantage method; the group ones need G ≥ 2
ADVANTAGES = ("none", "rloo", "dr_grpo", "grpo", "reinforce_pp", "remax")
GROUP_ADVANTAGES = ("rloo", "dr_grpo", "grpo", "reinforce_pp")
GRPO_EPS = 1e-4


def choice(value, name: str, allowed) -> str:
    """Return ``value`` if it is one of ``allowed``; else a ValueError listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is unknown; allowed: {list(allowed)}")
    return value


#: largest |reward| :func:`group_advantages` takes: its squares and their sums over a group stay finite
MAX_ABS_REWARD = 1e150


def group_advantages(rewards, method: str, *, baseline=None, eps: float = GRPO_EPS) -> np.ndarray:
    """A = advantage(R) along the last axis (one group of G per row); (…, G) → (…, G).

    Args:
      rewards: (…, G) rewards, one group per last axis.
      method: one of :data:`ADVANTAGES` (see the module docstring for each formula).
      baseline: ReMax only: the greedy response's reward R(ȳ), a scalar or (…) array.
      eps: the ε added to the standard deviation (grpo, reinforce_pp).
    Raises:
      ValueError for an unknown method, G < 2 with a group baseline, or non-finite rewards or
      rewards beyond ±MAX_ABS_REWARD.
    """
    choice(method, "method", ADVANTAGES)
    R = as_float_array(rewards, "rewards")
    if R.ndim == 0:
        raise ValueError("rewards is a scalar; expected shape (..., G), one group per last axis")
    if not np.isfinite(R).all():
        raise ValueError("rewards contains NaN or inf; rewards must be finite")
    if R.size and np.abs(R).max() > MAX_ABS_REWARD:  # (R − mean)² and Σ R² overflow float64 beyond
        raise ValueError(f"rewards has |R| up to {np.abs(R).max():.3g}; allowed: |R| ≤ {MAX_ABS_REWARD:g} "
                         "(a group's variance overflows float64 beyond); rescale the rewards")
    eps = check_positive_float(eps, "eps", allow_zero=True)
    G = R.shape[-1]
    if method in GROUP_ADVANTAGES and G < 2:
        raise ValueError(f"G={G}: method {method!r} uses a group baseline and needs G ≥ 2 responses per prompt")
    if method != "remax" and baseline is not None:
        raise ValueError(f"baseline= only applies to method='remax', not {method!r}")
    if method == "none":
        return R.copy()
    if method == "remax":
        if baseline is None:
            raise ValueError("method='remax' needs baseline=, the reward of the greedy response")
        b = as_float_array(baseline, "baseline")
        return R - b[..., None] if b.ndim else R - float(b)
    mean = R.mean(axis=-1, keepdims=True)
    if method == "dr_grpo":
        return R - mean
    if method == "rloo":
        return G / (G - 1) * (R - mean)  # R_i − (Σ_j R_j − R_i)/(G − 1)
    if method == "grpo":
        return scaled(R - mean, np.std(R, axis=-1, ddof=1, keepdims=True) + eps)
    return scaled(R - R.mean(), R.std() + eps)  # reinforce_pp: one mean and std over the whole batch


def scaled(centred: np.ndarray, scale) -> np.ndarray:
    """centred / scale, and 0 where the scale is 0 (a group of equal rewards with ε = 0)."""
    scale = np.broadcast_to(scale, centred.shape)
    out = np.zeros_like(centred)
    np.divide(centred, scale, out=out, where=scale > 0)
    return out


#: largest group size for :func:`effective_weight`'s exact (G, G − 1) table (≈ 8 MB per array)
MAX_GROUP = 1_000


def effective_weight(p, G: int, method: str = "grpo", eps: float = GRPO_EPS) -> np.ndarray:
    """w(p) = E[update] / ∇θ p for binary rewards: h(1) − h(0), h(r) = E[A_1 | R_1 = r], others ∼ Bin(G − 1, p).

    With R ∈ {0, 1} and success probability p = E_π[R], E[A_1 | y_1] = h(R(y_1)), so the
    expected policy gradient (mean over the group) is Σ_y π(y) h(R(y)) ∇ log π(y) = w(p) ∇p:
    a per-prompt reweighting of the true gradient.  RLOO: w = 1; Dr. GRPO: (G − 1)/G; GRPO:
    flat at G = 2, U-shaped for larger G, tending to 1/√(p(1 − p)) (Mroueh 2025; Liu et al. 2025).
    """
    choice(method, "method", tuple(m for m in GROUP_ADVANTAGES if m != "reinforce_pp"))
    if isinstance(G, bool) or not isinstance(G, (int, np.integer)) or G < 2:
        raise ValueError(f"G={G!r}: a group baseline needs an integer G ≥ 2")
    if G > MAX_GROUP:  # the exact sum builds a (G, G − 1) table: refuse before allocating it
        raise ValueError(f"G={G!r} is too large for the exact weight: it sums over a (G, G − 1) table; "
                         f"allowed 2 ≤ G ≤ {MAX_GROUP:,}")
    p = as_float_array(p, "p")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p={p!r} must be probabilities in [0, 1]")
    k = np.arange(G)  # successes among the G − 1 others
    others = (np.arange(G - 1)[None, :] < k[:, None]).astype(float)  # (G, G − 1)
    h = [group_advantages(np.column_stack([np.full(G, r), others]), method, eps=eps)[:, 0] for r in (1.0, 0.0)]
    pmf = binom.pmf(k[:, None], G - 1, p.reshape(-1)[None, :])  # (G, |p|)
    return ((h[0] - h[1]) @ pmf).reshape(p.shape)
