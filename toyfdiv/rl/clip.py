"""PPO's clipped per-token gradient, a leaf that the expected and the sampled updates share.

    ∇θ L = −Σ_{t,u,v} ρ_t[u,v] (M⁺ 1[ρ ≤ 1 + ε_high] + M⁻ 1[ρ ≥ 1 − ε_low]) ∇ log π(v|u)

(Its own module so that :mod:`toyfdiv.rl.expected` and :mod:`toyfdiv.rl.ppo` both import it
without importing each other.)
"""

from __future__ import annotations

import numpy as np

from .._util import as_float_array, check_instance, check_vector
from ..policies.base import Policy
from .algorithms import check_epsilon

__all__ = ["clip_weights", "clipped_gradient", "token_ratios", "sequence_ratios", "sequence_clipped_gradient"]


def clip_weights(rho, m_pos, m_neg, clip_low, clip_high) -> np.ndarray:
    """W = −ρ (M⁺ 1[ρ ≤ 1 + ε_high] + M⁻ 1[ρ ≥ 1 − ε_low]), elementwise over arrays of one shape.

    The weight of ∇ log π on each edge (token) in the gradient of PPO's clipped loss
    −min(ρ A, clip(ρ, 1 − ε_low, 1 + ε_high) A): a positive mass M⁺ stops pulling once
    ρ > 1 + ε_high, a negative one M⁻ once ρ < 1 − ε_low (ε None: that side unclipped).
    Shared by :func:`clipped_gradient` (per tree level) and
    :func:`toyfdiv.rl.batched.clipped_logit_gradient` (per run).
    """
    lo, hi = check_epsilon(clip_low, "clip_low"), check_epsilon(clip_high, "clip_high")
    rho, m_pos, m_neg = (as_float_array(x, name) for x, name in ((rho, "rho"), (m_pos, "m_pos"), (m_neg, "m_neg")))
    for x, name in ((rho, "rho"), (m_pos, "m_pos"), (m_neg, "m_neg")):
        if not np.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf; allowed: finite numbers")
    if not rho.shape == m_pos.shape == m_neg.shape:
        raise ValueError(f"rho, m_pos, m_neg have shapes {rho.shape}, {m_pos.shape}, {m_neg.shape}; "
                         "allowed: one shape for all three")
    keep_p = np.ones_like(rho) if hi is None else (rho <= 1 + hi)
    keep_n = np.ones_like(rho) if lo is None else (rho >= 1 - lo)
    with np.errstate(over="ignore"):
        w = -rho * (m_pos * keep_p + m_neg * keep_n)
    if not np.isfinite(w).all():
        raise ValueError(f"rho up to {np.abs(rho).max():.3g} times masses up to "
                         f"{max(np.abs(m_pos).max(), np.abs(m_neg).max()):.3g} overflows float64; allowed: ratios and "
                         "masses whose product is finite")
    return w


def token_ratios(policy: Policy, old_policy: Policy) -> list[np.ndarray]:
    for p in (policy, old_policy):
        if not hasattr(p, "grad_log_cond_weighted"):
            raise ValueError(f"per-token ratios need per-token log-probabilities: {type(p).__name__} has none; "
                             "allowed: AutoregressivePolicy, TinyLM")
    return [np.exp(a - b) for a, b in zip(policy.log_conditionals(), old_policy.log_conditionals())]


def clipped_gradient(policy: Policy, old_policy: Policy, m_pos, m_neg, clip_low, clip_high) -> np.ndarray:
    """−Σ_{t,u,v} ρ_t[u,v] (M⁺_t[u,v] 1[ρ ≤ 1 + ε_high] + M⁻_t[u,v] 1[ρ ≥ 1 − ε_low]) ∇ log π(v|u); (P,).

    M± = child_mass(m±): the positive and negative parts of the per-response masses s·A
    (sampled counts, or expectations under π_old), carried to every edge of the tree.
    """
    check_epsilon(clip_low, "clip_low"), check_epsilon(clip_high, "clip_high")
    space = policy.space
    W = [clip_weights(rho, Mp, Mn, clip_low, clip_high)
         for rho, Mp, Mn in zip(token_ratios(policy, old_policy), space.child_mass(m_pos), space.child_mass(m_neg))]
    return policy.grad_log_cond_weighted(W)


def sequence_ratios(policy: Policy, old_policy: Policy) -> np.ndarray:
    """ρ̄(y) = (π(y)/π_old(y))^{1/|y|} = exp((log π(y) − log π_old(y)) / |y|) for every response; (N,).

    GSPO's sequence-level importance ratio (Zheng et al. 2025, eq. 7), the geometric mean of
    the per-token ratios.
    """
    check_instance(policy, Policy, "policy")
    check_instance(old_policy, Policy, "old_policy")
    if policy.space is not old_policy.space and policy.space.size != old_policy.space.size:
        raise ValueError(f"old_policy is over a space of {old_policy.space.size} sequences, policy over "
                         f"{policy.space.size}; allowed: two policies over one space")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp((policy.log_probs() - old_policy.log_probs()) / policy.space.lengths)


def sequence_clipped_gradient(policy: Policy, old_policy: Policy, m_pos, m_neg, clip_low, clip_high) -> np.ndarray:
    """−Σ_y (ρ̄(y)/|y|) (M⁺(y) 1[ρ̄ ≤ 1 + ε_high] + M⁻(y) 1[ρ̄ ≥ 1 − ε_low]) ∇ log π(y); (P,).

    The gradient of GSPO's loss −Σ_i s_i min(ρ̄_i A_i, clip(ρ̄_i, 1 − ε_low, 1 + ε_high) A_i),
    using ∇ρ̄ = ρ̄ ∇ log π(y)/|y| (Zheng et al. 2025, eqs. 5-10); m± (N,) the positive and
    negative parts of the per-response masses s·A.  At θ = θ_old, ρ̄ = 1 and nothing is
    clipped: −Σ_y (m_A(y)/|y|) ∇ log π(y), the on-policy gradient of the length-normalised loss.
    Any Policy (no per-token log-probabilities needed).
    """
    check_epsilon(clip_low, "clip_low"), check_epsilon(clip_high, "clip_high")
    rho = sequence_ratios(policy, old_policy)  # (N,)
    m_pos, m_neg = (check_vector(m, name, rho.size) for m, name in ((m_pos, "m_pos"), (m_neg, "m_neg")))
    live = (m_pos != 0) | (m_neg != 0)
    rho = np.where(live, rho, 0.0)  # responses with no mass (π_old = 0 among them) contribute nothing
    if not np.isfinite(rho).all():
        raise ValueError("π/π_old overflows for a response with mass; allowed: π_old > 0 wherever a mass is non-zero")
    return policy.grad_log_prob_weighted(clip_weights(rho, m_pos, m_neg, clip_low, clip_high) / policy.space.lengths)
