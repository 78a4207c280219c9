"""f-DPO: DPO with any f-divergence whose derivative f'(t) → −∞ as t → 0.

Replacing KL(π‖π_ref) by D_f(π‖π_ref) = Σ_x π_ref(x) f(π(x)/π_ref(x)) in the regularised
objective max_π E_π[r] − β D_f(π‖π_ref) gives the stationarity condition (Lagrange
multiplier λ for Σπ = 1)

    r(x) − β f'(π*(x)/π_ref(x)) − λ = 0   ⇔   π*(x) = π_ref(x) (f')⁻¹((r(x) − λ)/β)

When f'(0⁺) = −∞ the non-negativity constraints π ≥ 0 are never active, so π* is interior
and the map r ↦ π is invertible: r = β f'(π/π_ref) + λ.  Substituting this reward into the
Bradley–Terry likelihood gives the f-DPO loss

    L_f(πθ) = −E_{(w,l)}[ log σ(β f'(πθ(w)/π_ref(w)) − β f'(πθ(l)/π_ref(l))) ]

(λ cancels in the difference).  Reverse KL, f'(t) = 1 + log t, gives back DPO.  TV and
Pearson χ² have f' bounded at 0 and are excluded (see :func:`check_divergence`).

Reference: Wang, Jiang, Yang, Liu, Chen (2023), "Beyond Reverse KL: Generalizing Direct
Preference Optimization with Diverse Divergence Constraints", Theorem 1 and eq. (9).
"""

from __future__ import annotations


import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from .. import divergences
from .. import targets as _targets
from .._util import check_log_probs, check_reward_scale
from ..divergences import as_divergence
from ..policies.base import Policy
from ..training import History
from .dpo import (check_common, check_dataset, as_log_pi, check_policy, sampling_log_q, check_beta, train_dpo)
from .pairs import Logistic, bt_pair_mass, pair_loss, population_pair_loss
from .raters import PreferenceDataset, check_vector

__all__ = ["check_divergence", "implicit_reward", "fdpo_loss", "fdpo_gradient", "fdpo_lambda",
           "fdpo_optimum", "population_fdpo_loss", "train_fdpo"]


def check_divergence(divergence):
    """The FDivergence for ``divergence`` if f-DPO is defined for it, else a ValueError saying why.

    f-DPO needs f'(t) → −∞ as t → 0⁺ (Wang et al. 2023, Thm 1): then π* > 0 everywhere and
    r = β f'(π/π_ref) + λ can be read off the policy.  If f'(0⁺) is finite (TV: −½,
    Pearson χ²: −2, alpha(α) with α > 1: −1/(α − 1); alpha(1) is reverse KL and qualifies, as
    does every other registered divergence) the optimum of E_π[r] − β D_f(π‖π_ref) sets π(x) = 0 on
    low-reward sequences, where the constraint π ≥ 0 is active and the stationarity
    condition fails; there r < λ + β f'(0⁺) for a whole range of rewards that all give
    π = 0, so the reward is not a function of the policy and the loss is not a
    reparametrised Bradley–Terry likelihood.
    """
    div = as_divergence(divergence)
    if not getattr(div, "f_prime_to_minus_inf_at_zero", False):
        with np.errstate(all="ignore"):
            at0 = float(np.asarray(div.f_prime(np.array([1e-300])))[0])
        raise ValueError(
            f"divergence {div.name!r} is not allowed in f-DPO: its f'(t) stays bounded as t → 0 "
            f"(f'(0⁺) ≈ {at0:.3g}), so the regularised optimum is not interior (π* = 0 on low-reward "
            "sequences) and the reward parametrisation r = β f'(π/π_ref) + c is not invertible. "
            f"f-DPO needs f'(0⁺) = −∞: use one of {_allowed()}, alpha(α) with α ≤ 1, or gjsd(β)"
        )
    return div


def _allowed() -> list[str]:
    """The registered divergences f-DPO accepts (f'(0⁺) = −∞)."""
    return [d.name for d in divergences.registered() if d.f_prime_to_minus_inf_at_zero and "(" not in d.name]


def _h(log_pi: np.ndarray, log_ref: np.ndarray, div) -> np.ndarray:
    """h = f'(π/π_ref) (N,), evaluated from log t = log π − log π_ref in log space."""
    return -div.pseudo_reward(log_pi - log_ref)


def _dh_dlog_pi(log_pi: np.ndarray, log_ref: np.ndarray, div) -> np.ndarray:
    """∂f'(t)/∂log t = t f''(t) (N,), from the divergence's closed form."""
    return div.curvature(log_pi - log_ref)


def implicit_reward(policy, ref_log_probs, beta: float, divergence="reverse_kl") -> np.ndarray:
    """r̂(x) = β f'(π(x)/π_ref(x)), the reward the policy implies (up to the constant λ), (N,).

    For reverse KL: β log(π/π_ref) + β, DPO's implicit reward (Rafailov et al. 2023, eq. 5).
    Reference: Wang et al. (2023), Thm 1.
    """
    beta = check_beta(beta)
    div = check_divergence(divergence)
    log_pi = as_log_pi(policy)
    return beta * _h(log_pi, check_common(log_pi, ref_log_probs, None), div)


def fdpo_loss(policy, ref_log_probs, dataset: PreferenceDataset, beta: float, divergence="reverse_kl") -> float:
    """L_f = −(1/n) Σ_i log σ(β f'(π(w_i)/π_ref(w_i)) − β f'(π(l_i)/π_ref(l_i))).

    Shapes: policy a Policy or log π (N,); ref_log_probs (N,); n pairs.
    Reference: Wang et al. (2023), eq. (9).
    """
    beta = check_beta(beta)
    div = check_divergence(divergence)
    dataset = check_dataset(dataset)
    log_pi = as_log_pi(policy)
    h = _h(log_pi, check_common(log_pi, ref_log_probs, dataset), div)
    return pair_loss(Logistic(beta), h, dataset.winners, dataset.losers)[0]


def fdpo_gradient(policy: Policy, ref_log_probs, dataset: PreferenceDataset, beta: float,
                  divergence="reverse_kl") -> np.ndarray:
    """∇θ L_f = Σ_x (∂L_f/∂h(x)) t(x) f''(t(x)) ∇θ log π(x),  t = π/π_ref, h = f'(t); (P,).

    ∂L_f/∂h is DPO's per-pair weight binned per sequence; t f''(t) = ∂f'(t)/∂log t.
    """
    beta = check_beta(beta)
    div = check_divergence(divergence)
    dataset = check_dataset(dataset)
    log_pi = check_policy(policy).log_probs()
    log_ref = check_common(log_pi, ref_log_probs, dataset)
    g_h = pair_loss(Logistic(beta), _h(log_pi, log_ref, div), dataset.winners, dataset.losers)[1]
    return policy.grad_log_prob_weighted(g_h * _dh_dlog_pi(log_pi, log_ref, div))


def train_fdpo(policy: Policy, ref_log_probs, dataset: PreferenceDataset, beta: float,
               divergence="reverse_kl", steps: int = 300, lr: float = 0.05, optimizer: str = "adam",
               **options) -> History:
    """θ_{k+1} = opt(θ_k, ∇θ L_f(πθ_k)): :func:`toyfdiv.feedback.dpo.train_dpo` with the f-DPO loss.

    Returns a :class:`toyfdiv.training.History` labelled "fdpo(<f>)"."""
    div = check_divergence(divergence)
    loss = (lambda p, r, d, b: fdpo_loss(p, r, d, b, div), lambda p, r, d, b: fdpo_gradient(p, r, d, b, div))
    options.setdefault("label", f"fdpo({div.name})")
    return train_dpo(policy, ref_log_probs, dataset, beta, steps, lr, optimizer, loss=loss, **options)


# ---------------------------------------------------------------------------- closed form
_LOG_TINY = float(np.log(np.finfo(float).tiny))  # ≈ −708.4: below, exp underflows to a subnormal or 0


def _t_of(div, reward: np.ndarray, lam: float, beta: float) -> np.ndarray:
    """t = (f')⁻¹((r − λ)/β), with y pulled back into the range of f' when rounding alone put it out.

    y = (r − λ)/β carries an absolute rounding error of a few ulps of (|r| + |λ|)/β; at the
    bracket end λ_lo, where y(x*) = f'(1/π_ref(x*)) may equal sup f' (JS: ½ log 2), that error
    can step past the end.  Excursions beyond the rounding are left for f_prime_inverse to refuse.
    """
    y = (reward - lam) / beta
    lo, hi = float(div.f_prime(0.0)), div.slope_at_infinity
    ulps = 8 * np.finfo(float).eps * (np.abs(reward).max() + abs(lam)) / beta
    y = np.where((y > hi) & (y <= hi + ulps), hi, np.where((y < lo) & (y >= lo - ulps), lo, y))
    return np.asarray(div.f_prime_inverse(y), dtype=float)


def fdpo_lambda(ref_log_probs, reward, beta: float, divergence="reverse_kl") -> float:
    """λ solving Σ_x π_ref(x) (f')⁻¹((r(x) − λ)/β) = 1, by a bracketed root-find (brentq).

    g(λ) = Σ π_ref (f')⁻¹((r − λ)/β) − 1 decreases in λ ((f')⁻¹ increases: f is convex).
    Bracket, with x* = argmax r:
      λ_hi = max r − β f'(1):  every t ≤ 1, so g(λ_hi) ≤ 0;
      λ_lo = max(min r − β f'(1), max r − β f'(1/π_ref(x*))):  every t ≥ 1, or
        t(x*) = 1/π_ref(x*) alone carries mass 1, so g(λ_lo) ≥ 0; and (r − λ_lo)/β ≤
        f'(1/π_ref(x*)) stays inside the range of f' even when f' is bounded above
        (forward KL: f' < 0; JS: f' < ½ log 2).
    """
    beta = check_beta(beta)
    div = check_divergence(divergence)
    log_ref = check_log_probs(ref_log_probs, None, "ref_log_probs")
    check_common(log_ref, log_ref, None)  # normalised, full support
    if div.name != "reverse_kl" and log_ref.min() < _LOG_TINY:  # π_ref·(f')⁻¹ would be 0·inf
        raise ValueError(f"ref_log_probs has min {log_ref.min():.6g} < {_LOG_TINY:.6g}: π_ref(x) underflows float64 "
                         f"there; allowed: every π_ref(x) ≥ {np.finfo(float).tiny:.3g} for {div.name}")
    r = check_vector(reward, "reward", log_ref.size)
    check_reward_scale(r, beta)
    ref = np.exp(log_ref)
    fp1 = float(np.asarray(div.f_prime(np.array([1.0])))[0])
    star = int(np.argmax(r))
    fp_star = float(-np.asarray(div.pseudo_reward(np.array([-log_ref[star]])))[0])  # f'(1/π_ref(x*))
    hi = r.max() - beta * fp1
    lo = max(r.min() - beta * fp1, r.max() - beta * fp_star)

    def g(lam):
        return float(ref @ _t_of(div, r, lam, beta)) - 1.0

    g_lo, g_hi = g(lo), g(hi)
    if abs(g_lo) < 1e-13 or lo >= hi:
        return lo
    if abs(g_hi) < 1e-13:
        return hi
    if g_lo < 0 or g_hi > 0:  # cannot happen in exact arithmetic: rounding of (r − λ)/β at a tiny β
        end, g_end = (lo, g_lo) if g_lo < 0 else (hi, g_hi)
        if abs(g_end) < 1e-6:  # the root is at that end to within rounding; fdpo_optimum renormalises
            return end
        raise ValueError(f"beta={beta!r} is too small for this reward (spread {np.ptp(r):.3g}): (r − λ)/β loses "
                         f"the precision λ needs (Σ π* − 1 = {g_end:.3g} at the best bracket end); allowed: a "
                         "larger beta, or rewards of a smaller spread")
    return float(brentq(g, lo, hi, xtol=1e-15 * max(1.0, abs(hi)), rtol=4 * np.finfo(float).eps, maxiter=500))


def fdpo_optimum(ref_log_probs, reward, beta: float, divergence="reverse_kl") -> np.ndarray:
    """log π*(x) = log π_ref(x) + log (f')⁻¹((r(x) − λ)/β), λ from :func:`fdpo_lambda`; (N,).

    The maximiser of E_π[r] − β D_f(π‖π_ref) over the simplex (Wang et al. 2023, Thm 1);
    for reverse KL, π_ref·exp(r/β)/Z (computed in log space, λ = β log Z − β).
    """
    div = check_divergence(divergence)
    if div.name == "reverse_kl":  # (f')⁻¹(y) = exp(y − 1): π_ref exp(r/β)/Z, normalised in log space
        beta = check_beta(beta)
        log_ref = check_log_probs(ref_log_probs, None, "ref_log_probs")
        check_common(log_ref, log_ref, None)  # normalised, full support
        return np.array(_targets.rlhf(log_ref, check_vector(reward, "reward", log_ref.size), beta).log_probs)
    lam = fdpo_lambda(ref_log_probs, reward, beta, div)  # validates every argument
    log_ref = np.asarray(ref_log_probs, dtype=float)
    reward = np.asarray(reward, dtype=float)
    with np.errstate(divide="ignore"):
        log_t = np.log(_t_of(div, reward, lam, beta))
    if not np.all(np.isfinite(log_t)):
        raise ValueError(f"beta={beta!r} is too small for this reward with {div.name}: π*/π_ref rounds to 0 "
                         f"(largest |r| = {np.abs(reward).max():.3g}); allowed: a larger beta or smaller rewards")
    out = log_ref + log_t
    total = logsumexp(out)
    if abs(total) > 1e-12:  # λ is exact only to rounding of (r − λ)/β: normalise once more
        if abs(total) > 1e-6:
            raise ValueError(f"beta={beta!r} is too small for this reward with {div.name}: Σ π* = "
                             f"{np.exp(total):.6g} after the root-find; allowed: a larger beta")
        out = out - total
    return out


def population_fdpo_loss(policy, ref_log_probs, reward, beta: float, divergence="reverse_kl",
                         sampling_log_probs=None) -> float:
    """L_f(π) = Σ_{x≠y} [q(x,y) + q(y,x)] σ(r(x) − r(y)) · −log σ(β[f'(t(x)) − f'(t(y))]),  t = π/π_ref.

    The expected per-pair f-DPO loss on infinitely many Bradley–Terry pairs (the n → ∞ limit
    of :func:`fdpo_loss`, on the same axis).  Minimised, when μ has full support, by
    :func:`fdpo_optimum` for the same r and β, where it equals the noise entropy
    Σ_{x≠y} q(x,y) H(σ(r(x) − r(y))).  Shapes as in
    :func:`toyfdiv.feedback.dpo.population_dpo_loss`.
    """
    beta = check_beta(beta)
    div = check_divergence(divergence)
    log_pi = as_log_pi(policy)
    h = _h(log_pi, check_common(log_pi, ref_log_probs, None), div)
    r = check_vector(reward, "reward", log_pi.size)
    return population_pair_loss(Logistic(beta), h, bt_pair_mass(r, sampling_log_q(sampling_log_probs, log_pi.size)))[0]
