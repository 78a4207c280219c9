"""KTO on thumbs data, exact: the loss, the reference point z₀, and the loss's fixed point.

    L_KTO(πθ; π_ref) = E_{(x, y)∼D}[ λ_y − v(x) ],   h = log πθ/π_ref,  z₀ = KL(πθ ‖ π_ref)
    v(x) = λ_D σ(β (h(x) − z₀))   if x got a thumbs-up (desirable)
           λ_U σ(β (z₀ − h(x)))   if x got a thumbs-down (undesirable)

z₀ is the reference point of prospect theory; no gradient flows through it.  In practice
it is estimated on the batch, ẑ₀ = max(0, mean_j log πθ(y_j)/π_ref(y_j)) over outputs y_j
that were not rated together with x (mismatched pairs); with y_j ∼ πθ this mean is unbiased
for KL(πθ‖π_ref), with y_j from the data it estimates E_μ[log πθ/π_ref]
(:func:`kto_reference_point` takes either).

**Fixed point (population, tabular policy).**  With thumbs on x ∼ μ, s(x) = P(👍 | x),
desirable fraction ρ and weights λ_D, λ_U, the loss is Σ_x A(x)(1 − σ(β(h − z₀))) +
B(x)(1 − σ(β(z₀ − h))), A = ρ λ_D μ s/E_μ[s], B = (1 − ρ) λ_U μ (1 − s)/E_μ[1 − s].  Its
derivative in h(x) is −β σ'(β(h − z₀)) (A − B)(x): one sign per x.  A stationary point of
the softmax policy has β σ'(β(h − z₀))(A − B) = κ π_ref e^h, κ > 0 fixed by Σ π = 1 and
z₀ = KL(π‖π_ref), so π = 0 wherever A ≤ B — a hard filter on the thumbs-up odds,

    supp π ⊆ { x : s(x)/(1 − s(x)) > [(1 − ρ) λ_U E_μ[s]] / [ρ λ_D E_μ[1 − s]] }

— and on the support φ(h) := log σ'(β(h − z₀)) − h = log(κ π_ref/(β (A − B))) =: c.
Near π(x) = 0 the KTO push is β σ' (A − B) ≈ β (A − B) e^{−β z₀} (π/π_ref)^β against the
normaliser's pull κ π, which decides everything (:func:`kto_fixed_point`):

- β < 1: the push wins, every x with A > B is kept; φ decreases from +∞ to −∞, one root.
- β = 1: a tie in the exponent; φ(h) = −z₀ − 2 log(1 + e^{h − z₀}) decreases from −z₀, so
  h = z₀ + log expm1((−z₀ − c)/2) where c < −z₀, i.e. κ π_ref(x) < (A − B)(x) e^{−z₀}, and
  π(x) = 0 (stable) otherwise: a second filter, on (A − B)/π_ref.  Unique.
- β > 1: the pull wins near 0, so π(x) = 0 is a *stable* stationary point for every output;
  φ rises then falls, and each kept output sits on its larger root.  Every point mass on
  an output with A > B is a stable fixed point, and so are many mixed supports: the fixed
  point is not unique and training ends at one that depends on where it starts.

RLHF and DPO, with the same logistic reward r = logit s, target π_ref e^{r/β}/Z instead:
full support, no filter.

Reference: Ethayarajh, Xu, Muennighoff, Jurafsky, Kiela (2024), "KTO: Model Alignment as
Prospect Theoretic Optimization", §4 (eq. 8, the loss; z₀ and its batch estimate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, log_expit, logit, logsumexp

from .._util import log_normalise, check_finite_float, check_instance, check_log_probs, check_positive_float
from ..policies.base import Policy
from .dpo import check_common, as_log_pi, check_policy, check_beta
from .raters import ThumbsDataset, check_vector

__all__ = ["kto_reference_point", "kto_reference_point_estimate", "kto_loss", "kto_gradient", "kto_update",
           "kto_weights", "kto_threshold", "population_kto_loss", "population_kto_gradient", "KTOFixedPoint", "kto_fixed_point",
           "KTOSupport", "kto_support"]


def _thumbs(dataset) -> ThumbsDataset:
    if not isinstance(dataset, ThumbsDataset):
        raise ValueError(f"dataset={dataset!r} must be a ThumbsDataset (KTO learns from thumbs up/down)")
    return dataset


def _lambda(value, name: str) -> float:
    return check_positive_float(value, name)


def kto_reference_point(log_pi, ref_log_probs, sampling_log_probs=None) -> float:
    """z₀ = KL(π ‖ π_ref) = E_π[log π/π_ref]; or E_μ[log π/π_ref] with μ = exp(sampling_log_probs).

    The first is the reference point KTO defines; the second is what its batch estimate
    converges to when the mismatched outputs come from the data distribution μ.
    """
    log_pi = as_log_pi(log_pi, name="log_pi")
    h = log_pi - check_common(log_pi, ref_log_probs, None)
    w = np.exp(log_pi) if sampling_log_probs is None else np.exp(check_log_probs(sampling_log_probs, h.size, "sampling_log_probs"))
    return float(w @ h)


def kto_reference_point_estimate(log_pi, ref_log_probs, samples, clamp: bool = True) -> float:
    """ẑ₀ = max(0, (1/m) Σ_j log π(y_j)/π_ref(y_j)) for output indices ``samples`` (m,).

    ``clamp=False`` returns the plain mean (unbiased for :func:`kto_reference_point` when
    the y_j are i.i.d. from the matching distribution).  Reference: Ethayarajh et al. (2024), §4.
    """
    log_pi = as_log_pi(log_pi, name="log_pi")
    h = log_pi - check_common(log_pi, ref_log_probs, None)
    idx = np.asarray(samples)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= h.size:
        raise ValueError(f"samples must be a non-empty 1-d array of output indices in 0 … {h.size - 1}")
    m = float(h[idx].mean())
    return max(0.0, m) if clamp else m


def _terms(h, z0, beta, up_weight, down_weight):
    """Σ_x up(x)(1 − σ(β(h − z₀))) + down(x)(1 − σ(β(z₀ − h))) and ∂/∂h (N,); h may be −inf."""
    s = beta * (h - z0)  # (N,)
    with np.errstate(invalid="ignore"):
        loss = up_weight @ expit(-s) + down_weight @ expit(s)
        dsig = np.exp(log_expit(s) + log_expit(-s))  # σ'(s), 0 at s = ±inf
    return float(loss), -beta * dsig * (up_weight - down_weight)


def _dataset_weights(dataset: ThumbsDataset, lambda_d, lambda_u):
    n, N = len(dataset), dataset.space_size
    up = np.bincount(dataset.items[dataset.labels], minlength=N) * (lambda_d / n)
    down = np.bincount(dataset.items[~dataset.labels], minlength=N) * (lambda_u / n)
    return up, down


def kto_loss(policy, ref_log_probs, dataset: ThumbsDataset, beta: float, lambda_d: float = 1.0,
             lambda_u: float = 1.0, z0: float | None = None) -> float:
    """L_KTO = (1/n) Σ_i λ_{y_i} − v(x_i), z₀ = KL(π‖π_ref) exactly unless given; (float)."""
    beta = check_beta(beta)
    dataset = _thumbs(dataset)
    lambda_d, lambda_u = _lambda(lambda_d, "lambda_d"), _lambda(lambda_u, "lambda_u")
    log_pi = as_log_pi(policy)
    h = log_pi - check_common(log_pi, ref_log_probs, None)
    if dataset.space_size != h.size:
        raise ValueError(f"the dataset indexes {dataset.space_size} outputs, the policy {h.size}")
    z0 = kto_reference_point(log_pi, ref_log_probs) if z0 is None else check_finite_float(z0, "z0")
    return _terms(h, z0, beta, *_dataset_weights(dataset, lambda_d, lambda_u))[0]


def kto_gradient(policy: Policy, ref_log_probs, dataset: ThumbsDataset, beta: float, lambda_d: float = 1.0,
                 lambda_u: float = 1.0, z0: float | None = None) -> np.ndarray:
    """∇θ L_KTO with z₀ held fixed (stop-gradient): Σ_x ∂L/∂h(x) ∇θ log π(x), (P,)."""
    beta = check_beta(beta)
    dataset = _thumbs(dataset)
    lambda_d, lambda_u = _lambda(lambda_d, "lambda_d"), _lambda(lambda_u, "lambda_u")
    log_pi = check_policy(policy).log_probs()
    h = log_pi - check_common(log_pi, ref_log_probs, None)
    z0 = kto_reference_point(log_pi, ref_log_probs) if z0 is None else check_finite_float(z0, "z0")
    return policy.grad_log_prob_weighted(_terms(h, z0, beta, *_dataset_weights(dataset, lambda_d, lambda_u))[1])


def kto_update(ref_log_probs, dataset: ThumbsDataset, beta: float, lambda_d: float = 1.0, lambda_u: float = 1.0):
    """update(policy, rng) → (∇θ L_KTO, {"loss", "z0"}), z₀ exact and detached, for ``training.optimise``."""
    beta = check_beta(beta)
    dataset = _thumbs(dataset)
    weights = _dataset_weights(dataset, _lambda(lambda_d, "lambda_d"), _lambda(lambda_u, "lambda_u"))

    def update(policy, rng):
        log_pi = check_policy(policy).log_probs()
        h = log_pi - check_common(log_pi, ref_log_probs, None)
        z0 = float(np.exp(log_pi) @ h)
        loss, g = _terms(h, z0, beta, *weights)
        return policy.grad_log_prob_weighted(g), {"loss": loss, "z0": z0}

    return update


# ---------------------------------------------------------------------------- population
def _balance(p_up, sampling_log_probs, desirable_fraction):
    """(s, μ, E_μ[s], ρ), validated."""
    s = check_vector(p_up, "p_up")
    if np.any((s < 0) | (s > 1)):
        raise ValueError("p_up must hold probabilities P(👍 | x) in [0, 1]")
    mu = np.full(s.size, 1.0 / s.size) if sampling_log_probs is None else np.exp(
        check_log_probs(sampling_log_probs, s.size, "sampling_log_probs"))
    up = float(mu @ s)
    if not 0 < up < 1:
        raise ValueError("p_up gives no desirable or no undesirable examples under μ; KTO needs both classes")
    rho = up if desirable_fraction is None else float(desirable_fraction)
    if not 0 < rho < 1:
        raise ValueError(f"desirable_fraction={desirable_fraction!r} must be in (0, 1)")
    return s, mu, up, rho


def kto_weights(p_up, sampling_log_probs=None, lambda_d: float = 1.0, lambda_u: float = 1.0,
                desirable_fraction: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) (N,) each: A = ρ λ_D μ s/E_μ[s], B = (1 − ρ) λ_U μ (1 − s)/E_μ[1 − s].

    s = P(👍 | x) (N,), μ the distribution of rated outputs (uniform if None), ρ the fraction
    of desirable examples in the data (default: the natural E_μ[s]).
    """
    s, mu, up, rho = _balance(p_up, sampling_log_probs, desirable_fraction)
    return (rho * _lambda(lambda_d, "lambda_d") * mu * s / up,
            (1 - rho) * _lambda(lambda_u, "lambda_u") * mu * (1 - s) / (1 - up))


def kto_threshold(p_up, sampling_log_probs=None, lambda_d: float = 1.0, lambda_u: float = 1.0,
                  desirable_fraction: float | None = None) -> float:
    """log[(1 − ρ) λ_U E_μ[s]] − log[ρ λ_D E_μ[1 − s]]: A(x) > B(x) ⇔ logit s(x) exceeds it.

    With the natural class balance ρ = E_μ[s] it is log(λ_U/λ_D): equal weights keep the
    outputs more likely up than down.
    """
    _, _, up, rho = _balance(p_up, sampling_log_probs, desirable_fraction)
    return float(np.log((1 - rho) * _lambda(lambda_u, "lambda_u") * up)
                 - np.log(rho * _lambda(lambda_d, "lambda_d") * (1 - up)))


def population_kto_loss(log_pi, ref_log_probs, weights, beta: float, z0: float | None = None) -> float:
    """L(π) = Σ_x A(x)(1 − σ(β(h − z₀))) + B(x)(1 − σ(β(z₀ − h))), (A, B) = ``weights``; π may have zeros."""
    beta = check_beta(beta)
    log_pi = check_log_probs(log_pi, np.size(log_pi), "log_pi")
    log_ref = check_log_probs(ref_log_probs, log_pi.size, "ref_log_probs")
    h = log_pi - log_ref
    m = np.isfinite(log_pi)
    z = float(np.exp(log_pi[m]) @ h[m]) if z0 is None else check_finite_float(z0, "z0")
    return _terms(h, z, beta, *weights)[0]


def population_kto_gradient(log_pi, ref_log_probs, weights, beta: float, z0: float | None = None) -> np.ndarray:
    """∂L/∂θ for the tabular softmax policy, z₀ held fixed: g − π Σ_x g(x), g = ∂L/∂h (N,)."""
    beta = check_beta(beta)
    log_pi = check_log_probs(log_pi, np.size(log_pi), "log_pi")
    h = log_pi - check_log_probs(ref_log_probs, log_pi.size, "ref_log_probs")
    m = np.isfinite(log_pi)
    pi = np.exp(log_pi)
    z = float(pi[m] @ h[m]) if z0 is None else check_finite_float(z0, "z0")
    g = _terms(h, z, beta, *weights)[1]
    return g - pi * g.sum()


@dataclass(frozen=True, eq=False)
class KTOFixedPoint:
    """KTO's stationary policy: log_probs (N,) (−inf off the support), z0 = KL(π‖π_ref), support (N,) bool."""

    log_probs: np.ndarray
    z0: float
    support: np.ndarray
    threshold: float  # log odds s/(1 − s) an output must exceed to stay in the support


def _solve_h(c: np.ndarray, z0: float, beta: float) -> np.ndarray:
    """h with log σ'(β(h − z₀)) − h = c, elementwise, for β ≤ 1 (φ strictly decreasing); −inf where no root (β = 1).

    β = 1: φ(h) = −z₀ − 2 log1p(e^{h − z₀}), so h = z₀ + log expm1((−z₀ − c)/2) for c < −z₀.
    β < 1: Newton from the right on the concave, decreasing φ.
    """
    if beta == 1.0:
        x = np.maximum(-z0 - c, 0.0) / 2
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # log expm1(x) = x + log1p(−e^{−x})
            log_expm1 = np.where(x > 30, x + np.log1p(-np.exp(-x)), np.log(np.expm1(np.minimum(x, 30))))
        return np.where(c < -z0, z0 + log_expm1, -np.inf)
    h = -np.log(4.0) - c  # φ(h) ≤ −log 4 − h, so φ(h₀) ≤ c: start right of the root
    for _ in range(200):
        s = beta * (h - z0)
        phi = log_expit(s) + log_expit(-s) - h
        slope = beta * (1 - 2 * expit(s)) - 1.0  # ≤ β − 1 < 0
        step = (phi - c) / slope
        h = h - step
        if np.all(np.abs(step) <= 1e-13 * np.maximum(1.0, np.abs(h))):
            break
    return h


def kto_fixed_point(ref_log_probs, p_up, beta: float, *, sampling_log_probs=None, lambda_d: float = 1.0,
                    lambda_u: float = 1.0, desirable_fraction: float | None = None) -> KTOFixedPoint:
    """The stable stationary point of population KTO over a tabular softmax policy, z₀ = KL(π‖π_ref); β ∈ (0, 1].

    Support: A > B (:func:`kto_weights`), and for β = 1 also κ π_ref < (A − B) e^{−z₀}.  On it,
    h = log π/π_ref solves log σ'(β(h − z₀)) − h = log(κ π_ref/(β (A − B))) (strictly
    decreasing in h for β ≤ 1, so at most one root; closed form at β = 1), κ > 0 by Σ π = 1
    (brentq in log κ), and z₀ by z₀ = KL(π‖π_ref) (brentq on [0, max_supp log 1/π_ref]).
    β > 1 is refused: π(x) = 0 is then a stable stationary point for every output (the KTO
    push ∝ π^β loses to the normaliser's pull ∝ π), each point mass on an output with A > B
    is a stable fixed point, and the point training reaches depends on its start (module
    docstring) — train instead, e.g. with :func:`kto_update` through ``toyfdiv.training.optimise``.
    """
    beta = check_beta(beta)
    if beta > 1:
        raise ValueError(f"beta={beta!r}: KTO's fixed point is unique only for β ≤ 1. For β > 1 the push on an "
                         "output, ∝ π^β near π = 0, loses to the normaliser's pull ∝ π, so π(x) = 0 is stable for every "
                         "output and every point mass on a desirable output is a fixed point: which one training "
                         "reaches depends on its start. Allowed: 0 < beta ≤ 1 (or train with kto_update)")
    log_ref = check_log_probs(ref_log_probs, np.size(ref_log_probs), "ref_log_probs")
    A, B = kto_weights(p_up, sampling_log_probs, lambda_d, lambda_u, desirable_fraction)
    if A.size != log_ref.size:
        raise ValueError(f"p_up has {A.size} entries, ref_log_probs {log_ref.size}")
    support = A > B
    if not support.any():
        raise ValueError(f"p_up, lambda_d={lambda_d!r}, lambda_u={lambda_u!r} and desirable_fraction="
                         f"{desirable_fraction!r} give no output with A > B: every output is net-undesirable")
    scale = beta * (A - B)[support]
    if not np.all(scale > 0):  # β (A − B) underflows to 0
        raise ValueError(f"beta={beta!r} is too small: β·(A − B) underflows float64; allowed: β·min(A − B) > 0")
    base = log_ref[support] - np.log(scale)  # (S,) log(π_ref/(β(A − B)))

    def h_of(log_kappa, z0):
        return _solve_h(log_kappa + base, z0, beta)

    def log_mass(log_kappa, z0):
        return float(logsumexp(log_ref[support] + h_of(log_kappa, z0)))

    def policy(z0):
        lo, hi, step = -10.0, 10.0, 20.0
        while log_mass(lo, z0) < 0:  # steps that double: log π_ref may be as far as −1e300
            lo, step = lo - step, 2 * step
        step = 20.0
        while log_mass(hi, z0) > 0:
            hi, step = hi + step, 2 * step
        lk = brentq(lambda k: log_mass(k, z0), lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)
        h = h_of(lk, z0)
        lp = log_ref[support] + h
        return log_normalise(lp), h

    def gap(z0):
        lp, h = policy(z0)
        kept = np.isfinite(lp)  # β = 1 drops outputs with no root
        return float(np.exp(lp[kept]) @ (lp - log_ref[support])[kept]) - z0

    z_hi = float(np.max(-log_ref[support]))
    z0 = 0.0 if gap(0.0) <= 0 else (z_hi if gap(z_hi) >= 0 else
                                    brentq(gap, 0.0, z_hi, xtol=1e-13, rtol=4 * np.finfo(float).eps))
    lp = np.full(log_ref.size, -np.inf)
    lp[support] = policy(z0)[0]
    thr = kto_threshold(p_up, sampling_log_probs, lambda_d, lambda_u, desirable_fraction)
    return KTOFixedPoint(lp, float(z0), np.isfinite(lp), thr)


@dataclass(frozen=True)
class KTOSupport:
    """What KTO's filter keeps, against another policy q (:func:`kto_support`)."""

    kept: int  # |supp π_KTO| = #{x : π_KTO(x) > 0}
    above_threshold: int  # #{x : logit s(x) > τ}, τ the fixed point's log-odds threshold
    odds_filter_only: bool  # supp π_KTO = {x : logit s(x) > τ}: the odds filter alone (β < 1); β = 1 may drop more
    other_kept: int  # |supp q|
    other_smallest: float  # min_x q(x)
    other_mass_outside: float  # q(X ∖ supp π_KTO), in [0, 1]


def kto_support(fixed_point: KTOFixedPoint, p_up, other_log_probs) -> KTOSupport:
    """q(X ∖ supp π_KTO) = Σ_{x : π_KTO(x) = 0} q(x), |supp π_KTO|, #{x : log s(x)/(1 − s(x)) > τ} and |supp q|.

    ``fixed_point``: :func:`kto_fixed_point`'s result (its support and threshold τ); ``p_up``
    s(x) = P(👍 | x) (N,) it was computed from; ``other_log_probs`` log q (N,), normalised (e.g.
    RLHF's and DPO's π_ref e^{r/β}/Z with r = logit s, :func:`toyfdiv.feedback.dpo_optimum`).
    The mass outside is a logsumexp over the dropped outputs (0 when none is dropped).
    """
    check_instance(fixed_point, KTOFixedPoint, "fixed_point")
    support = fixed_point.support
    s = check_vector(p_up, "p_up", support.size)
    if np.any((s < 0) | (s > 1)):
        raise ValueError(f"p_up must hold probabilities P(👍 | x) in [0, 1]; got values in [{s.min():g}, {s.max():g}]")
    log_q = check_log_probs(other_log_probs, support.size, "other_log_probs")
    above = logit(s) > fixed_point.threshold  # (N,) logit 0 = −inf, logit 1 = +inf
    outside = float(np.exp(logsumexp(log_q[~support]))) if (~support).any() else 0.0
    return KTOSupport(int(support.sum()), int(above.sum()), bool(np.array_equal(support, above)),
                      int(np.isfinite(log_q).sum()), float(np.exp(log_q.min())), min(outside, 1.0))
