"""The f-divergences of the f-DPG table, exact in nats and computed in log space.

    D_f(π ‖ p) = Σ_x p(x) f(π(x)/p(x)),   f convex, f(1) = 0           (Go et al. 2023, eq. 1)

π (the policy) is always the first argument, p (the target) the second.  Zero support:
0·f(0/0) = 0; where p(x) > 0 = π(x) the term is p(x)·f(0+); where p(x) = 0 < π(x) it is
π(x)·lim_{t→∞} f(t)/t (``slope_at_infinity``, +∞ for KL(π‖p)).  Adding c(t − 1) to f
leaves D_f unchanged and shifts f' by c: pseudo-rewards R = −f'(π/p) are defined up to a
constant, which a baseline absorbs.

Scaling: TV and JS are the textbook ones (naver/disco's ``JSLoss`` is 2×JS, its old TV 2×TV).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.special import expm1, xlogy

__all__ = ["FDivergence", "get", "names", "registered", "alpha", "gjsd"]

_LOG2 = math.log(2.0)
Array = np.ndarray


@dataclass(frozen=True)
class FDivergence:
    """One f-divergence: its generator f, f', the pseudo-reward, and exact values.

    Attributes:
      name: registry key ("js") or parametrised name ("alpha(0.3)").
      label: human display name.
      formula: LaTeX of f(t).
      f_at_zero: f(0+), possibly +inf.
      slope_at_infinity: lim_{t→∞} f(t)/t = f'(∞), possibly +inf.
      f_prime_to_minus_inf_at_zero: whether f'(t) → −∞ as t → 0+ (needed by f-DPO).
    """

    name: str
    label: str
    formula: str
    f_at_zero: float
    slope_at_infinity: float
    f_prime_to_minus_inf_at_zero: bool
    _f: Callable[[Array], Array] = field(repr=False)
    _f_prime: Callable[[Array], Array] = field(repr=False)
    _reward: Callable[[Array], Array] = field(repr=False)  # −f'(e^u) from u = log t
    _terms: Callable[[Array, Array], Array] = field(repr=False)  # p f(π/p) where both > 0
    _f_prime_inverse: Callable[[Array], Array] | None = field(default=None, repr=False)
    _weight: Callable[[Array, Array], Array] | None = field(default=None, repr=False)  # π f'(π/p)
    _curvature: Callable[[Array], Array] | None = field(default=None, repr=False)  # t f''(t) from u = log t

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"name={self.name!r} must be a non-empty string")
        if math.isnan(self.f_at_zero) or math.isnan(self.slope_at_infinity):
            raise ValueError(f"{self.name}: f_at_zero and slope_at_infinity must not be NaN")

    def __repr__(self) -> str:
        return f"FDivergence({self.name!r}: f(t) = {self.formula})"

    def f(self, t) -> Array:
        """f(t) for t ≥ 0 (t = 0 gives f(0+), t = ∞ gives the limit)."""
        t = _nonneg(t, "t")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(self._f(t), dtype=float)
        out = np.where(t == 0, self.f_at_zero, out)
        return np.where(np.isposinf(t), np.inf if self.slope_at_infinity > 0 else out, out)

    def f_prime(self, t) -> Array:
        """f'(t) for t ≥ 0 (the right limits at 0 and ∞)."""
        t = _nonneg(t, "t")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.asarray(self._f_prime(t), dtype=float)

    def pseudo_reward(self, log_t) -> Array:
        """R = −f'(t) at log t = log π − log p, stable for log t ∈ [−∞, +∞]."""
        u = np.asarray(log_t, dtype=float)
        if np.isnan(u).any():
            raise ValueError("log_t contains NaN; expected log π − log p in [-inf, inf]")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(self._reward(u), dtype=float)
        return np.where(np.isposinf(u), -self.slope_at_infinity, out)

    def curvature(self, log_t) -> Array:
        """t f''(t) = d f'(t) / d log t at log t, stable for log t ∈ [−∞, +∞].

        How fast the pseudo-reward moves with log π; f-DPO's gradient needs it.
        """
        u = np.asarray(log_t, dtype=float)
        if np.isnan(u).any():
            raise ValueError("log_t contains NaN; expected log π − log p in [-inf, inf]")
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(self._curvature(u), dtype=float) * np.ones_like(u)

    def f_double_prime(self, t) -> Array:
        """f''(t) for t > 0 (≥ 0 by convexity)."""
        t = _nonneg(t, "t")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self.curvature(np.log(t)) / t

    def f_prime_inverse(self, y) -> Array:
        """t = (f')⁻¹(y), for f' strictly increasing (every row but TV)."""
        if self._f_prime_inverse is None:
            raise ValueError(f"{self.name}: f' is not invertible (it is a step function); no (f')⁻¹")
        y = np.asarray(y, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.asarray(self._f_prime_inverse(y), dtype=float)

    def weights(self, log_pi, log_p) -> Array:
        """w(x) = π(x) f'(π(x)/p(x)) from log π and log p, where both are finite.

        The f-DPG gradient is Σ_x w(x) ∇θ log π(x).  Computed in closed form per
        divergence (e.g. forward KL: −p; Neyman: π − p²/π) so that a huge ratio with a tiny
        π does not overflow on the way to a finite product.
        """
        lpi, lp = np.asarray(log_pi, dtype=float), np.asarray(log_p, dtype=float)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self._weight is not None:
                return np.asarray(self._weight(lpi, lp), dtype=float)
            return -np.exp(lpi) * self._reward(lpi - lp)

    def value_terms(self, log_pi, log_p) -> Array:
        """(N,) the terms p(x) f(π(x)/p(x)) of D_f(π ‖ p), zero-support rules applied."""
        log_pi, log_p = _check_pair(log_pi, log_p)
        pi_pos, p_pos = np.isfinite(log_pi), np.isfinite(log_p)
        out = np.zeros(log_pi.shape)
        both = pi_pos & p_pos
        with np.errstate(over="ignore"):
            out[both] = self._terms(log_pi[both], log_p[both])
        only_p = p_pos & ~pi_pos
        if only_p.any():
            out[only_p] = np.exp(log_p[only_p]) * self.f_at_zero
        only_pi = pi_pos & ~p_pos
        if only_pi.any():
            out[only_pi] = np.exp(log_pi[only_pi]) * self.slope_at_infinity
        return out

    def value(self, log_pi, log_p) -> float:
        """D_f(π ‖ p) = Σ_x p(x) f(π(x)/p(x)) in nats, from log π and log p (N,); may be +inf."""
        return float(self.value_terms(log_pi, log_p).sum())


def _log_abs_expm1(d: Array) -> Array:
    """log |e^d − 1|, without overflow for large |d| (−inf at d = 0)."""
    with np.errstate(divide="ignore"):
        return np.where(d > 0, d + np.log(-expm1(-np.abs(d))), np.log(-expm1(-np.abs(d))))


def _nonneg(t, name: str) -> Array:
    t = np.asarray(t, dtype=float)
    if np.isnan(t).any() or (t < 0).any():
        raise ValueError(f"{name} must be ≥ 0 (a ratio π/p); got values {t[np.isnan(t) | (t < 0)][:3]}")
    return t


def _check_pair(log_pi, log_p) -> tuple[Array, Array]:
    log_pi = np.asarray(log_pi, dtype=float)
    log_p = np.asarray(log_p, dtype=float)
    if log_pi.shape != log_p.shape or log_pi.ndim != 1:
        raise ValueError(f"log_pi has shape {log_pi.shape} and log_p {log_p.shape}; expected the same (N,)")
    for name, arr in (("log_pi", log_pi), ("log_p", log_p)):
        if np.isnan(arr).any() or np.isposinf(arr).any():
            raise ValueError(f"{name} contains NaN or +inf; log-probabilities must lie in [-inf, 0]")
    return log_pi, log_p


# ---------------------------------------------------------------------------- the rows
def _forward_kl() -> FDivergence:
    return FDivergence(
        "forward_kl", "forward KL  KL(p‖π) — GDC / DPG", r"-\log t", math.inf, 0.0, True,
        lambda t: -np.log(t), lambda t: -1.0 / t, lambda u: np.exp(-u),
        lambda lpi, lp: np.exp(lp) * (lp - lpi),
        lambda y: -1.0 / y,
        lambda lpi, lp: -np.exp(lp),
        lambda u: np.exp(-u),
    )


def _reverse_kl() -> FDivergence:
    return FDivergence(
        "reverse_kl", "reverse KL  KL(π‖p) — RLHF", r"t \log t", 0.0, math.inf, True,
        lambda t: xlogy(t, t), lambda t: 1.0 + np.log(t), lambda u: -1.0 - u,
        lambda lpi, lp: np.exp(lpi) * (lpi - lp),
        lambda y: np.exp(y - 1.0),
        lambda lpi, lp: np.exp(lpi) * (1.0 + lpi - lp),
        lambda u: np.ones_like(u),
    )


def _tv() -> FDivergence:
    return FDivergence(
        "tv", "total variation  ½Σ|π−p|", r"\tfrac12 |t - 1|", 0.5, 0.5, False,
        lambda t: 0.5 * np.abs(t - 1.0), lambda t: 0.5 * np.sign(t - 1.0), lambda u: -0.5 * np.sign(u),
        lambda lpi, lp: 0.5 * np.abs(np.exp(lpi) - np.exp(lp)),
        None, None,
        lambda u: np.zeros_like(u),  # 0 away from t = 1, where f' jumps
    )


def _js() -> FDivergence:
    def terms(lpi, lp):
        lm = np.logaddexp(lpi, lp) - _LOG2  # log m, m = (π + p)/2
        return 0.5 * (np.exp(lpi) * (lpi - lm) + np.exp(lp) * (lp - lm))

    return FDivergence(
        "js", "Jensen–Shannon  ½KL(π‖m)+½KL(p‖m)",
        r"\tfrac12\left[t\log t-(1+t)\log\tfrac{1+t}{2}\right]", _LOG2 / 2, _LOG2 / 2, True,
        lambda t: 0.5 * (xlogy(t, t) - xlogy(1.0 + t, (1.0 + t) / 2.0)),
        lambda t: 0.5 * (_LOG2 + np.log(t) - np.log1p(t)),
        lambda u: 0.5 * (np.logaddexp(0.0, -u) - _LOG2),
        terms,
        lambda y: np.exp(2.0 * y) / (2.0 - np.exp(2.0 * y)),  # s/(2 − s), s = e^{2y}
        None,
        lambda u: 0.5 * np.exp(-np.logaddexp(0.0, u)),  # ½/(1 + t)
    )


def _hellinger() -> FDivergence:
    return FDivergence(
        "hellinger", "squared Hellinger  Σ(√π−√p)²", r"(\sqrt t - 1)^2", 1.0, 1.0, True,
        lambda t: (np.sqrt(t) - 1.0) ** 2, lambda t: 1.0 - 1.0 / np.sqrt(t), lambda u: np.exp(-0.5 * u) - 1.0,
        lambda lpi, lp: (np.exp(0.5 * lpi) - np.exp(0.5 * lp)) ** 2,
        lambda y: 1.0 / (1.0 - y) ** 2,
        lambda lpi, lp: np.exp(lpi) - np.exp(0.5 * (lpi + lp)),
        lambda u: 0.5 * np.exp(-0.5 * u),
    )


def _pearson() -> FDivergence:
    return FDivergence(
        "pearson", "Pearson χ²  Σ(π−p)²/p", r"(t - 1)^2", 1.0, math.inf, False,
        lambda t: (t - 1.0) ** 2, lambda t: 2.0 * (t - 1.0), lambda u: -2.0 * expm1(u),
        lambda lpi, lp: np.exp(lp + 2.0 * _log_abs_expm1(lpi - lp)),  # (π − p)²/p
        lambda y: 1.0 + y / 2.0,
        lambda lpi, lp: 2.0 * (np.exp(2.0 * lpi - lp) - np.exp(lpi)),
        lambda u: 2.0 * np.exp(u),
    )


def _neyman() -> FDivergence:
    return FDivergence(
        "neyman", "Neyman χ²  Σ(π−p)²/π", r"(t - 1)^2 / t", math.inf, 1.0, True,
        lambda t: (t - 1.0) ** 2 / t, lambda t: 1.0 - t**-2.0, lambda u: expm1(-2.0 * u),
        lambda lpi, lp: np.exp(lpi + 2.0 * _log_abs_expm1(lp - lpi)),  # (π − p)²/π
        lambda y: 1.0 / np.sqrt(1.0 - y),
        lambda lpi, lp: np.exp(lpi) - np.exp(2.0 * lp - lpi),
        lambda u: 2.0 * np.exp(-2.0 * u),
    )


def alpha(a: float) -> FDivergence:
    """Amari's α-divergence, f(t) = (t^α − α t − (1 − α)) / (α(α − 1)).

    α → 0 gives KL(p‖π) (forward), α → 1 gives KL(π‖p) (reverse), continuously; α = ½ is
    2 × squared Hellinger, α = 2 is ½ Pearson χ², α = −1 is ½ Neyman χ² (Amari 2009;
    Go et al. 2023, Table 1).  Computed with expm1 forms that stay exact near α ∈ {0, 1}.
    """
    if isinstance(a, bool) or not isinstance(a, (int, float, np.floating, np.integer)) or not math.isfinite(a):
        raise ValueError(f"alpha={a!r} must be a finite real number")
    a = float(a)
    d = a - 1.0

    def g(u):  # f(e^u)/1, via the form stable near the closer limit
        t = np.exp(u)
        if abs(a) <= abs(d):  # near 0: [expm1(αu)/α − expm1(u)] / (α − 1), the p-scaled form
            first = u if a == 0 else expm1(a * u) / a
            return (first - expm1(u)) / d
        second = u if d == 0 else expm1(d * u) / d  # near 1: [t·expm1(δu)/δ − (t − 1)] / α
        return (t * second - expm1(u)) / a

    def f(t):
        with np.errstate(divide="ignore"):
            return g(np.log(t))

    def f_prime(t):
        with np.errstate(divide="ignore"):
            u = np.log(t)
        return u if d == 0 else expm1(d * u) / d

    def reward(u):
        return -u if d == 0 else -expm1(d * u) / d

    def terms(lpi, lp):
        u = lpi - lp
        out = np.empty_like(u)
        small = np.abs(u) <= 30  # p·f(e^u) directly; beyond, exact forms without overflow
        out[small] = np.exp(lp[small]) * g(u[small])
        lb, lq, ub = lpi[~small], lp[~small], u[~small]
        if a == 0:  # π − p + p log(p/π)
            out[~small] = np.exp(lb) - np.exp(lq) - np.exp(lq) * ub
        elif d == 0:  # π log(π/p) − π + p
            out[~small] = np.exp(lb) * (ub - 1.0) + np.exp(lq)
        else:  # (π^α p^(1−α) − απ − (1−α)p) / (α(α−1))
            out[~small] = (np.exp(a * lb + (1 - a) * lq) - a * np.exp(lb) - (1 - a) * np.exp(lq)) / (a * d)
        return out

    def inverse(y):
        return np.exp(y) if d == 0 else (1.0 + d * y) ** (1.0 / d)

    def weight(lpi, lp):  # π (t^{α−1} − 1)/(α − 1), as π·expm1(δu)/δ or (π^α p^{1−α} − π)/δ
        u = lpi - lp
        if d == 0:
            return np.exp(lpi) * u
        small = np.abs(d * u) <= 30
        return np.where(small, np.exp(lpi) * expm1(np.where(small, d * u, 0.0)) / d,
                        (np.exp(a * lpi + (1 - a) * lp) - np.exp(lpi)) / d)

    f0 = 1.0 / a if a > 0 else math.inf
    slope = 1.0 / (1.0 - a) if a < 1 else math.inf
    name = f"alpha({a:g})"
    formula = {0.0: r"-\log t + t - 1", 1.0: r"t \log t - t + 1"}.get(
        a, rf"\frac{{t^{{{a:g}}} - {a:g}\,t - ({1 - a:g})}}{{{a:g}\,({d:g})}}")
    return FDivergence(name, f"α-divergence, α = {a:g}", formula,
                       f0, slope, a <= 1, f, f_prime, reward, terms, inverse, weight,
                       lambda u: np.exp(d * u))  # t f''(t) = t^{α−1}


def gjsd(beta: float) -> FDivergence:
    """Generalised JS: β KL(p‖M) + (1 − β) KL(π‖M), M = βp + (1 − β)π, β ∈ (0, 1); gjsd(½) = JS."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.floating, np.integer)) \
            or not math.isfinite(beta) or not 0 < beta < 1:
        raise ValueError(f"beta={beta!r} is out of range; allowed: 0 < beta < 1")
    b = float(beta)

    def f(t):
        m = b + (1 - b) * t
        return -b * np.log(m) + (1 - b) * (xlogy(t, t) - xlogy(t, m))

    def f_prime(t):
        return (1 - b) * (np.log(t) - np.log(b + (1 - b) * t))

    def reward(u):  # −(1−β) log(t / (β + (1−β)t)) = (1−β) log((β + (1−β)t)/t)
        return (1 - b) * np.logaddexp(math.log(b) - u, math.log(1 - b))

    def terms(lpi, lp):
        lm = np.logaddexp(math.log(b) + lp, math.log(1 - b) + lpi)
        return b * np.exp(lp) * (lp - lm) + (1 - b) * np.exp(lpi) * (lpi - lm)

    def inverse(y):  # t/(β + (1−β)t) = e^{y/(1−β)} =: s  →  t = βs / (1 − (1−β)s)
        s = np.exp(y / (1 - b))
        return b * s / (1 - (1 - b) * s)

    return FDivergence(f"gjsd({b:g})", f"generalised JS, β = {b:g}",
                       rf"-{b:g}\log({b:g}+{1 - b:g}t)+{1 - b:g}\,t\log\frac{{t}}{{{b:g}+{1 - b:g}t}}",
                       -b * math.log(b), (1 - b) * math.log(1 / (1 - b)), True, f, f_prime, reward, terms, inverse,
                       None, lambda u: (1 - b) * b * np.exp(-np.logaddexp(math.log(b), math.log(1 - b) + u)))


# ---------------------------------------------------------------------------- registry
_REGISTRY: dict[str, Callable[[], FDivergence]] = {
    "forward_kl": _forward_kl,
    "reverse_kl": _reverse_kl,
    "tv": _tv,
    "js": _js,
    "hellinger": _hellinger,
    "pearson": _pearson,
    "neyman": _neyman,
    "alpha": lambda: alpha(0.5),
    "gjsd": lambda: gjsd(0.25),
}
_PARAM = re.compile(r"^(alpha|gjsd)\(\s*([-+0-9.eE]+)\s*\)$")


def names() -> list[str]:
    """Registry keys, in the f-DPG table's order."""
    return list(_REGISTRY)


def registered() -> tuple[FDivergence, ...]:
    """One instance per registry key, in order (alpha = alpha(0.5), gjsd = gjsd(0.25))."""
    return tuple(get(k) for k in _REGISTRY)


def get(name: str) -> FDivergence:
    """The divergence called ``name``: a registry key or "alpha(a)" / "gjsd(b)"."""
    if isinstance(name, FDivergence):
        return name
    if not isinstance(name, str):
        raise ValueError(f"divergence name {name!r} must be a string; allowed: {names()}, alpha(a), gjsd(b)")
    key = name.strip()
    if key in _REGISTRY:
        return _REGISTRY[key]()
    m = _PARAM.match(key)
    if m:
        try:
            value = float(m.group(2))
        except ValueError:
            value = None
        if value is not None:
            return alpha(value) if m.group(1) == "alpha" else gjsd(value)
    raise ValueError(f"divergence {name!r} is unknown; allowed: {names()}, or alpha(a), gjsd(b)")
