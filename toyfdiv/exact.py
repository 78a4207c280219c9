"""f-DPG: the gradient of D_f(πθ ‖ p), exact over the space.

    ∇θ D_f(πθ ‖ p) = E_{x∼πθ}[ f'(πθ(x)/p(x)) ∇θ log πθ(x) ]          (Go et al. 2023, eq. 4)

No gradient flows through the ratio; minimising D_f is REINFORCE with the pseudo-reward
R(x) = −f'(πθ(x)/p(x)).  Over an enumerable space the expectation is a finite sum,
Σ_x w(x) ∇θ log πθ(x) with w = πθ ⊙ f'(πθ/p), which the policy evaluates in O(N).
Beside it stand the two classical gradients the f-DPG table unifies: the KL-penalised
RLHF policy gradient and the DPG (cross-entropy) gradient of GDC.
"""

from __future__ import annotations

import numpy as np

from ._util import BLOCK, as_float_array, check_instance, check_log_probs, check_positive_float
from .divergences import FDivergence, as_divergence
from .policies.base import Policy
from .targets import Target

__all__ = ["gradient_weights", "exact_gradient", "rlhf_gradient", "dpg_gradient", "check_pair"]


def check_pair(policy: Policy, target: Target) -> None:
    check_instance(policy, Policy, "policy")
    check_instance(target, Target, "target")
    if target.log_scores.shape != (policy.space.size,):
        raise ValueError(
            f"target has {target.log_scores.shape[0]} sequences but the policy's space has {policy.space.size}"
        )


def gradient_weights(log_pi: np.ndarray, log_p: np.ndarray, divergence) -> np.ndarray:
    """w(x) = π(x) f'(π(x)/p(x)) = −π(x) R(x), the exact f-DPG weights, (N,).

    Zero support: w = 0 where π = 0; where p = 0 < π the ratio is +∞ and
    f'(∞) = lim f(t)/t must be finite (forward KL: 0, JS: ½ log 2, TV: ½, …).  For reverse
    KL, Pearson χ² and α ≥ 1 it is +∞: D_f(π‖p) is infinite for every full-support π and
    has no gradient, which raises a ValueError (smooth the target, e.g. a pointwise
    constraint with ε > 0, or pick a divergence with finite f'(∞)).
    """
    div = as_divergence(divergence)
    log_pi, log_p = as_float_array(log_pi, "log_pi"), as_float_array(log_p, "log_p")
    if log_pi.ndim != 1 or log_pi.shape != log_p.shape or log_pi.size == 0:
        raise ValueError(f"log_pi has shape {log_pi.shape} and log_p {log_p.shape}; expected the same (N,), N ≥ 1")
    with np.errstate(invalid="ignore"):
        total = log_pi.sum() + log_p.sum()  # one cheap pass: NaN or +inf anywhere shows here
    if np.isnan(total) or total == np.inf:
        for name, arr in (("log_pi", log_pi), ("log_p", log_p)):
            bad = np.isnan(arr) | np.isposinf(arr)
            if bad.any():
                raise ValueError(f"{name} contains NaN or +inf at {np.flatnonzero(bad)[:5].tolist()}; "
                                 "allowed: finite log-probabilities, or -inf for probability 0")
    if log_pi.min() > -np.inf and log_p.min() > -np.inf:  # full support (the usual case): no masks
        w = np.empty(log_pi.shape)
        for s in range(0, w.size, BLOCK):  # cache-sized blocks: the weights' temporaries stay in cache
            w[s : s + BLOCK] = div.weights(log_pi[s : s + BLOCK], log_p[s : s + BLOCK])
        if not np.isfinite(w.sum()) and not np.isfinite(w).all():  # the sum is one cheap pass
            raise _overflow(div)
        return w
    pi_pos = np.isfinite(log_pi)
    p_pos = np.isfinite(log_p)
    outside = pi_pos & ~p_pos
    if outside.any() and not np.isfinite(div.slope_at_infinity):
        raise ValueError(
            f"divergence {div.name!r} is infinite here: the target gives probability 0 to "
            f"{int(outside.sum())} sequences the policy can produce, and f'(∞) = ∞ for this f. "
            "Use a smoothed target (pointwise epsilon > 0) or a divergence with finite f'(∞) "
            "such as forward_kl, js, tv or hellinger"
        )
    w = np.zeros_like(log_pi)
    both = pi_pos & p_pos
    w[both] = div.weights(log_pi[both], log_p[both])
    if not np.all(np.isfinite(w[both])):
        raise _overflow(div)
    w[outside] = np.exp(log_pi[outside]) * div.slope_at_infinity
    return w


def _overflow(div: FDivergence) -> ValueError:
    return ValueError(
        f"the f-DPG weights π f'(π/p) of {div.name!r} overflow: π/p spans more than float64 "
        "allows here; start closer to the target or use a divergence with a bounded f'"
    )


def exact_gradient(policy: Policy, target: Target, divergence) -> np.ndarray:
    """∇θ D_f(πθ ‖ p) = Σ_x πθ(x) f'(πθ(x)/p(x)) ∇θ log πθ(x), exact over the space; (P,).

    References: Go et al., "Aligning Language Models with Preferences through
    f-divergence Minimization", ICML 2023, eq. (4) (the f-DPG theorem).
    """
    check_pair(policy, target)
    w = gradient_weights(policy.log_probs(), target.log_probs, divergence)
    return policy.grad_log_prob_weighted(w)


def rlhf_gradient(policy: Policy, reward: np.ndarray, log_a: np.ndarray, beta: float) -> np.ndarray:
    """∇θ −(E_π[r] − β KL(π‖a)) = −Σ_x π(x) [r(x) − β log(π(x)/a(x))] ∇θ log π(x); (P,).

    The KL-penalised policy gradient of RLHF (Ziegler et al. 2019; Stiennon et al. 2020),
    written from its own objective; equal to β ∇θ KL(π‖p) for p = a exp(r/β)/Z
    (Korbak, Perez, Buckley 2022), i.e. β × the reverse-KL f-DPG gradient.
    """
    log_pi = check_instance(policy, Policy, "policy").log_probs()
    reward = as_float_array(reward, "reward")
    if reward.shape != log_pi.shape:
        raise ValueError(f"reward has shape {reward.shape}; expected {log_pi.shape}, one entry per sequence")
    if not np.isfinite(reward).all():
        raise ValueError(f"reward contains NaN or inf at {np.flatnonzero(~np.isfinite(reward))[:5].tolist()}")
    log_a = check_log_probs(log_a, log_pi.size, "log_a")
    if (np.isneginf(log_a) & np.isfinite(log_pi)).any():
        raise ValueError("log_a is -inf where π > 0: KL(π‖a) is infinite and has no gradient; "
                         "give a base model with full support")
    beta = check_positive_float(beta, "beta")
    w = -np.exp(log_pi) * (reward - beta * (log_pi - log_a))
    return policy.grad_log_prob_weighted(w)


def dpg_gradient(policy: Policy, target: Target) -> np.ndarray:
    """∇θ CE(p, πθ) = −Σ_x p(x) ∇θ log πθ(x); (P,).

    The distributional policy gradient (DPG: Parshakova, Andreoli, Dymetman, "Global
    Autoregressive Models for Data-Efficient Sequence Learning", CoNLL 2019; developed in
    their "Distributional Reinforcement Learning for Energy-Based Sequential Models", 2019),
    used by GDC (Khalifa et al. 2021, eq. 2), written from its own objective, the
    cross-entropy to p; equal to the forward-KL f-DPG gradient.
    """
    check_pair(policy, target)
    return policy.grad_log_prob_weighted(-np.exp(target.log_probs))
