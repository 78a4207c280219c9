"""Gold utility against β for RLHF, DPO, IPO and χ²PO: each method's exact optimum, scored by u.

On a finite set of pairs, every direct method's loss sees the policy only through its link
β·ψ(π/π_ref) (ψ = log for DPO, z + log z for χ²PO), so over a tabular policy its minimiser is
the regularised target of the *implicit reward* r̂ that maximises the Bradley–Terry
likelihood of the pairs:

    DPO:   π ∝ π_ref exp(r̂/β)                       (KL)
    χ²PO:  π = π_ref ω((r̂ − λ)/β)                  (½χ² + KL, :func:`~toyfdiv.feedback.chipo.chipo_optimum`)
    IPO:   :func:`~toyfdiv.feedback.ipo.ipo_dataset_optimum` with τ = β (a squared loss: no r̂)
    RLHF:  π ∝ π_ref exp(r̂_RM/β), r̂_RM a separately fitted (smoother) reward model.

r̂ is the maximum-likelihood tabular reward; a small ridge (l2/2)‖r̂‖² makes it exist when a
compared output never loses (DPO's own loss would push it to +∞ — the over-optimisation
Huang et al. 2024 and Azar et al. 2023 describe).  Outputs never compared keep the ridge's
r̂ = 0 before centring.

The gold utility E_π[u] of each optimum, over a grid of β, shows where each regulariser
lets the policy exploit the errors of r̂.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit

from .. import targets as _targets
from .._util import check_int, check_positive_float
from .chipo import chipo_optimum
from .dpo import check_common, check_dataset
from .ipo import ipo_dataset_optimum
from .kto import kto_fixed_point
from .raters import PreferenceDataset, check_vector
from .reward_models import centre

__all__ = ["ml_implicit_reward", "GoldCurve", "gold_utility_curves", "kto_gold_curve", "METHODS"]

METHODS = ("RLHF", "DPO", "IPO", "χ²PO")


def ml_implicit_reward(dataset: PreferenceDataset, l2: float = 1e-2, centre_log_probs=None,
                       tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """r̂ = argmin_r −Σ_i log σ(r(w_i) − r(l_i)) + (l2/2)‖r‖², centred E_c[r̂] = 0; (N,).

    Newton's method on the strictly convex objective (Hessian Bᵀ diag σ'(d) B + l2·I, B the
    pair incidence matrix), with backtracking; the same problem as
    :func:`~toyfdiv.feedback.fit_reward_model` (tabular), solved to machine precision.
    """
    dataset = check_dataset(dataset)
    l2 = check_positive_float(l2, "l2")
    max_iter = check_int(max_iter, "max_iter")
    N, w, l_ = dataset.space_size, dataset.winners, dataset.losers

    def objective(r):
        return float(-log_expit(r[w] - r[l_]).sum() + 0.5 * l2 * r @ r)

    r = np.zeros(N)
    f = objective(r)
    for _ in range(max_iter):
        d = r[w] - r[l_]  # (n,)
        s = expit(-d)
        grad = np.bincount(l_, s, N) - np.bincount(w, s, N) + l2 * r
        c = s * (1 - s)  # σ'(d)
        H = np.bincount(np.concatenate([w * N + w, l_ * N + l_, w * N + l_, l_ * N + w]),
                        np.concatenate([c, c, -c, -c]), N * N).reshape(N, N)  # Bᵀ diag(c) B
        H[np.diag_indices(N)] += l2
        step = np.linalg.solve(H, grad)
        t = 1.0
        while objective(r - t * step) > f - 0.25 * t * grad @ step and t > 1e-12:
            t *= 0.5
        r = r - t * step
        f_new = objective(r)
        if abs(f - f_new) <= tol * max(1.0, abs(f_new)) and np.abs(grad).max() < 1e-8:
            break
        f = f_new
    return centre(r, centre_log_probs)[0]


@dataclass(frozen=True, eq=False)
class GoldCurve:
    """E_π[u] and KL(π ‖ π_ref) of one method's exact optimum along a decreasing grid of β.

    Attributes:
      method: "RLHF", "DPO", "IPO" or "χ²PO".
      betas: (G,) decreasing.
      gold, kl: (G,) E_π[u] and KL(π‖π_ref) in nats.
    """

    method: str
    betas: np.ndarray
    gold: np.ndarray
    kl: np.ndarray

    @property
    def peak_index(self) -> int:
        return int(np.argmax(self.gold))

    @property
    def peak_beta(self) -> float:
        return float(self.betas[self.peak_index])

    @property
    def peak(self) -> float:
        return float(self.gold[self.peak_index])

    @property
    def decline(self) -> float:
        """peak − E_π[u] at the smallest β: how much gold is lost by optimising harder (≥ 0)."""
        return float(self.peak - self.gold[-1])


def _kl(log_pi, log_ref) -> float:
    m = np.isfinite(log_pi)
    return float(np.exp(log_pi[m]) @ (log_pi[m] - log_ref[m]))


def gold_utility_curves(ref_log_probs, dataset: PreferenceDataset, utility, betas=None, *, rlhf_reward=None,
                        l2: float = 1e-2, methods=METHODS) -> dict[str, GoldCurve]:
    """{method: GoldCurve}: the gold utility E_π[u] of each method's exact optimum against β.

    Args:
      ref_log_probs: log π_ref = log a (N,).
      dataset: the preference pairs every direct method learns from.
      utility: the gold utility u (N,) (e.g. ``rater.utility``, without the rater's bias).
      betas: β > 0 grid (sorted decreasing); default 25 points from 10 to 0.01.
      rlhf_reward: RLHF's reward model r̂_RM (N,) (e.g. a linear ``fit_reward_model``); needed
        for "RLHF".
      l2: ridge of the implicit reward r̂ (:func:`ml_implicit_reward`).
      methods: a subset of :data:`METHODS`.
    """
    dataset = check_dataset(dataset)
    log_ref = np.asarray(ref_log_probs, dtype=float)
    check_common(log_ref, log_ref, dataset)
    u = check_vector(utility, "utility", log_ref.size)
    grid = np.geomspace(10.0, 0.01, 25) if betas is None else np.asarray(betas, dtype=float)
    if grid.ndim != 1 or grid.size < 2 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(f"betas must be ≥ 2 finite values > 0; got {grid!r}")
    grid = np.sort(grid)[::-1]
    bad = [m for m in methods if m not in METHODS] if not isinstance(methods, str) else [methods]
    if bad:
        raise ValueError(f"methods={methods!r}: {bad} unknown; allowed: {list(METHODS)}")
    if "RLHF" in methods:
        if rlhf_reward is None:
            raise ValueError("rlhf_reward=None: the RLHF curve needs a reward model r̂_RM (N,)")
        r_rm = check_vector(getattr(rlhf_reward, "values", rlhf_reward), "rlhf_reward", log_ref.size)
    r_hat = ml_implicit_reward(dataset, l2, log_ref) if {"DPO", "χ²PO"} & set(methods) else None
    solve = {
        "RLHF": lambda b: np.asarray(_targets.rlhf(log_ref, r_rm, b).log_probs),
        "DPO": lambda b: np.asarray(_targets.rlhf(log_ref, r_hat, b).log_probs),
        "IPO": lambda b: ipo_dataset_optimum(log_ref, dataset, b),
        "χ²PO": lambda b: chipo_optimum(log_ref, r_hat, b),
    }
    out = {}
    for m in methods:
        lps = [solve[m](float(b)) for b in grid]
        gold = np.array([np.exp(lp) @ u for lp in lps])
        kl = np.array([_kl(lp, log_ref) for lp in lps])
        out[m] = GoldCurve(m, grid.copy(), gold, kl)
    return out


def kto_gold_curve(ref_log_probs, p_up, utility, betas=None, *, sampling_log_probs=None, lambda_d: float = 1.0,
                   lambda_u: float = 1.0, desirable_fraction: float | None = None) -> GoldCurve:
    """E_π[u] of KTO's exact fixed point (:func:`~toyfdiv.feedback.kto.kto_fixed_point`) against β ∈ (0, 1).

    ``p_up`` is P(👍 | x) (N,) of the rater (e.g. σ((ũ − u₀)/τ)); μ = exp(sampling_log_probs)
    the rated outputs (default π_ref).  Default grid: 12 values from 0.95 down to 0.01.
    """
    log_ref = np.asarray(ref_log_probs, dtype=float)
    check_common(log_ref, log_ref, None)
    u = check_vector(utility, "utility", log_ref.size)
    grid = np.geomspace(0.95, 0.01, 12) if betas is None else np.asarray(betas, dtype=float)
    if grid.ndim != 1 or grid.size < 2 or not np.all((grid > 0) & (grid < 1)):
        raise ValueError(f"betas must be ≥ 2 values in (0, 1) (the exact KTO fixed point needs β < 1); got {grid!r}")
    grid = np.sort(grid)[::-1]
    mu = log_ref if sampling_log_probs is None else sampling_log_probs
    lps = [kto_fixed_point(log_ref, p_up, float(b), sampling_log_probs=mu, lambda_d=lambda_d, lambda_u=lambda_u,
                           desirable_fraction=desirable_fraction).log_probs for b in grid]
    return GoldCurve("KTO", grid, np.array([np.exp(lp) @ u for lp in lps]), np.array([_kl(lp, log_ref) for lp in lps]))
