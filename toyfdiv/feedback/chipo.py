"""χ²PO (χPO): DPO with the link φ(z) = z + log z, and its mixed χ² + KL target.

    L_χPO(πθ; π_ref) = −E_{(w,l)}[ log σ(clip_{2R}[β φ(πθ(w)/π_ref(w)) − β φ(πθ(l)/π_ref(l))]) ]

The one-line change to DPO: DPO's link is φ(z) = log z.  φ(z) = z + log z = f'(z) for
f(z) = ½(z − 1)² + z log z, the generator of ½χ²(π‖π_ref) + KL(π‖π_ref), so χPO is f-DPO
for that f, and its population optimum is the maximiser of

    E_π[r] − β [½ χ²(π ‖ π_ref) + KL(π ‖ π_ref)]:   z + log z = (r − λ)/β,  z = π*/π_ref

i.e. z = ω((r − λ)/β) with ω the Wright omega function (ω + log ω = y), λ fixing Σ π* = 1.
The χ² term caps π*/π_ref at about (r − λ)/β instead of KL's exp((r − λ)/β): the policy
cannot move much mass to outputs the reference (and hence the data) rarely covers, which is
what protects it from over-optimisation.  ``clip`` (R) bounds the margin as in the paper; None
leaves it unclipped.

Reference: Huang, Zhan, Xie, Lee, Sun, Krishnamurthy, Foster (2024), "Correcting the Mythos of
KL-Regularization: Direct Alignment without Overoptimization via χ²-Preference
Optimization", §3 (eq. 7, the χPO objective; the link φ; Alg. 1).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from .._util import log_normalise, check_reward_scale, check_log_probs, check_positive_float
from ..policies.base import Policy
from .dpo import check_common, check_dataset, as_log_pi, check_policy, check_beta
from .pairs import Logistic, pair_loss
from .raters import PreferenceDataset, check_vector

__all__ = ["chipo_link", "chipo_loss", "chipo_gradient", "chipo_update", "chipo_lambda", "chipo_optimum",
           "log_omega"]


def chipo_link(log_z) -> np.ndarray:
    """φ(z) = z + log z, evaluated from log z (any shape): exp(log z) + log z."""
    log_z = np.asarray(log_z, dtype=float)
    return np.exp(log_z) + log_z


def log_omega(y) -> np.ndarray:
    """u = log ω(y), ω the Wright omega function (ω + log ω = y): the root of e^u + u = y, any shape.

    Newton's method on the convex, increasing F(u) = e^u + u − y from u₀ = min(y, log y) ≥ u*
    (F(u₀) ≥ 0), so the iterates decrease monotonically to the root; a few steps reach
    machine precision.  Exact in both tails (no ω − y cancellation): log ω ≈ y as y → −∞,
    ≈ log y as y → ∞.  (scipy.special.wrightomega gives ω itself, in ~10× the time.)
    """
    y = np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(y > 1.0, np.log(np.where(y > 1.0, y, 1.0)), y)  # F(u₀) ≥ 0
    for _ in range(60):
        e = np.exp(u)
        step = (e + u - y) / (e + 1.0)
        u = u - step
        if np.all(np.abs(step) <= 4e-16 * np.maximum(1.0, np.abs(u))):
            break
    return u


def _clip(clip) -> float | None:
    return None if clip is None else check_positive_float(clip, "clip")


def _pair_loss(h, dh, winners, losers, beta, clip):
    """L = −mean log σ(clip(β[h(w) − h(l)])) and ∂L/∂log π (N,), h = φ(π/π_ref), dh = ∂h/∂log π.

    DPO's logistic margin loss with χ²PO's clip, on the shared kernel (:func:`toyfdiv.feedback.pairs.pair_loss`).
    """
    loss, g_h = pair_loss(Logistic(beta, clip), h, winners, losers)
    return loss, g_h * dh


def _h(log_pi, ref_log_probs, dataset):
    log_t = log_pi - check_common(log_pi, ref_log_probs, dataset)
    t = np.exp(log_t)
    return t + log_t, t + 1.0  # φ(t), ∂φ(t)/∂log t = t + 1


def chipo_loss(policy, ref_log_probs, dataset: PreferenceDataset, beta: float, clip: float | None = None) -> float:
    """L_χPO = −(1/n) Σ_i log σ(clip_{2R}[β φ(t(w_i)) − β φ(t(l_i))]),  t = π/π_ref, φ(z) = z + log z.

    Shapes: policy a Policy or log π (N,); ref_log_probs (N,); n pairs.  Reference: Huang et
    al. (2024), Alg. 1.
    """
    beta = check_beta(beta)
    dataset = check_dataset(dataset)
    log_pi = as_log_pi(policy)
    h, dh = _h(log_pi, ref_log_probs, dataset)
    return _pair_loss(h, dh, dataset.winners, dataset.losers, beta, _clip(clip))[0]


def chipo_gradient(policy: Policy, ref_log_probs, dataset: PreferenceDataset, beta: float,
                   clip: float | None = None) -> np.ndarray:
    """∇θ L_χPO = Σ_x (∂L/∂φ(x)) (1 + t(x)) ∇θ log π(x): DPO's per-pair weights times φ'(t) t = 1 + t; (P,)."""
    beta = check_beta(beta)
    dataset = check_dataset(dataset)
    log_pi = check_policy(policy).log_probs()
    h, dh = _h(log_pi, ref_log_probs, dataset)
    return policy.grad_log_prob_weighted(_pair_loss(h, dh, dataset.winners, dataset.losers, beta, _clip(clip))[1])


def chipo_update(ref_log_probs, dataset: PreferenceDataset, beta: float, clip: float | None = None):
    """update(policy, rng) → (∇θ L_χPO, {"loss": L_χPO}) for ``toyfdiv.training.optimise``."""
    beta = check_beta(beta)
    dataset = check_dataset(dataset)
    clip = _clip(clip)

    def update(policy, rng):
        log_pi = check_policy(policy).log_probs()
        h, dh = _h(log_pi, ref_log_probs, dataset)
        loss, g = _pair_loss(h, dh, dataset.winners, dataset.losers, beta, clip)
        return policy.grad_log_prob_weighted(g), {"loss": loss}

    return update


# ---------------------------------------------------------------------------- closed form
def chipo_lambda(ref_log_probs, reward, beta: float) -> float:
    """λ solving Σ_x π_ref(x) ω((r(x) − λ)/β) = 1: Newton from the left, brentq as a fallback.

    g(λ) = Σ π_ref ω((r − λ)/β) − 1 is decreasing and convex in λ (ω' = ω/(1 + ω) > 0,
    ω'' > 0), so Newton's iterates from a point with g ≥ 0 increase monotonically to the root.
    Bracket: ω(1) = 1, so λ = max r − β gives every z ≤ 1 (g ≤ 0) and λ = min r − β every
    z ≥ 1 (g ≥ 0).
    """
    beta = check_beta(beta)
    log_ref = check_log_probs(ref_log_probs, None, "ref_log_probs")
    check_common(log_ref, log_ref, None)
    r = check_vector(reward, "reward", log_ref.size)
    check_reward_scale(r, beta)
    ref = np.exp(log_ref)
    lo, hi = r.min() - beta, r.max() - beta
    if hi - lo < 1e-300:
        return lo
    lam = lo
    for _ in range(100):
        w = np.exp(log_omega((r - lam) / beta))  # (N,) z = ω(y)
        g = float(ref @ w) - 1.0
        slope = -float(ref @ (w / (1.0 + w))) / beta  # g'(λ) < 0
        if g <= 4 * np.finfo(float).eps:
            return lam
        step = -g / slope
        lam = min(lam + step, hi)
        if step <= 1e-15 * max(1.0, abs(lam)):
            return lam

    def g_log(lam):  # log Σ π_ref ω, in log space
        return float(logsumexp(log_ref + log_omega((r - lam) / beta)))

    return float(brentq(g_log, lo, hi, xtol=1e-14 * max(1.0, abs(hi)), rtol=4 * np.finfo(float).eps, maxiter=500))


def chipo_optimum(ref_log_probs, reward, beta: float) -> np.ndarray:
    """log π*(x) = log π_ref(x) + log ω((r(x) − λ)/β): argmax E_π[r] − β[½χ²(π‖π_ref) + KL(π‖π_ref)], (N,).

    ω(y) + log ω(y) = y is the stationarity condition z + log z = (r − λ)/β, z = π*/π_ref.
    O(N) per root-finder step.
    """
    lam = chipo_lambda(ref_log_probs, reward, beta)
    out = np.asarray(ref_log_probs, dtype=float) + log_omega((np.asarray(reward, dtype=float) - lam) / beta)
    return log_normalise(out)  # removes the root-finder's last rounding
