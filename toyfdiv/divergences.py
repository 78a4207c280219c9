"""The f-divergences of the f-DPG table, exact in nats and computed in log space.

    D_f(π ‖ p) = Σ_x p(x) f(π(x)/p(x)),   f convex, f(1) = 0      (Go et al. 2023, eq. 1)

π (the policy) is always the first argument, p (the target) the second.  Zero support:
0·f(0/0) = 0; where p(x) > 0 = π(x) the term is p(x)·f(0+) (``f_at_zero``); where
p(x) = 0 < π(x) it is π(x)·lim_{t→∞} f(t)/t (``slope_at_infinity``, +∞ for KL(π‖p)).
Adding c(t − 1) to f leaves D_f unchanged and shifts f' by c: pseudo-rewards
R = −f'(π/p) are defined up to a constant, which a baseline absorbs.

Scaling: TV and JS are the textbook ones (naver/disco's ``JSLoss`` is 2×JS, its old TV 2×TV);
the registry's "alpha" is alpha(½) = 2 × "hellinger", the same divergence twice.  Every
factor against disco, TRL, TFP and Wang et al.: docs/conventions.md.

References, each row from its origin:
  f-divergences: Csiszár (1963, 1967); Ali & Silvey (1966), J. R. Stat. Soc. B 28.
  f-DPG (the pseudo-reward −f'(π/p)): Go, Korbak, Kruszewski, Rozen, Ryu, Dymetman, ICML
    2023 — its Table 1 gives forward KL, reverse KL, TV and JS.
  KL: Kullback & Leibler (1951), Ann. Math. Stat. 22.   TV: ½ the L¹ distance (classical).
  JS, and the skew (β-weighted) JS behind ``gjsd``: Lin (1991), "Divergence measures based on
    the Shannon entropy", IEEE Trans. Inf. Theory 37(1); as GKD's JSD(β): Agarwal, Vieillard,
    Zhou, Stanczyk, Ramos, Geist, Bachem, "On-Policy Distillation of Language Models:
    Learning from Self-Generated Mistakes", ICLR 2024.
  Squared Hellinger: Hellinger (1909), J. reine angew. Math. 136.
  Pearson χ²: Pearson (1900), Phil. Mag. 50.   Neyman χ²: Neyman (1949), Proc. Berkeley Symp. 1.
  α: Amari (1985), Differential-Geometrical Methods in Statistics; the form used here,
    (t^α − αt − (1 − α))/(α(α − 1)): Cichocki & Amari (2010), "Families of Alpha- Beta- and
    Gamma-Divergences", Entropy 12; Amari (2009), IEEE Trans. Inf. Theory 55.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.special import expm1, xlogy

from ._util import as_float_array, check_log_probs

__all__ = ["FDivergence", "get", "names", "registered", "alpha", "gjsd", "as_divergence", "kl", "parameter"]

_LOG2 = math.log(2.0)
Array = np.ndarray
_private = dict(repr=False, compare=False)  # the callables: not shown, not compared


@dataclass(frozen=True)
class FDivergence:
    """One f-divergence: its generator f, f', the pseudo-reward −f', and exact values.

    Attributes:
      name: registry key ("js") or parametrised name ("alpha(0.3)"); ``get(name)`` rebuilds it.
      title: its name in words ("forward KL", "α-divergence, α = 0.5").
      notation: what it is in π and p ("KL(p‖π)", "½Σ|π−p|"); "" when the title says it.
      role: the method it is the objective of ("GDC / DPG", "RLHF"), or "".
      formula: LaTeX of f(t).
      f_at_zero: f(0+), possibly +inf.
      slope_at_infinity: lim_{t→∞} f(t)/t = f'(∞), possibly +inf.
    The private callables are exact: ``_f`` and ``_f_prime`` take t ≥ 0, ``_f_prime_inverse``
    takes y = f'(t), ``_reward`` and ``_curvature`` take u = log t, and ``_terms`` and
    ``_weight`` take (log π, log p) — log space wherever a ratio could overflow.
    """

    name: str
    title: str
    notation: str
    role: str
    formula: str
    f_at_zero: float
    slope_at_infinity: float
    _f: Callable[[Array], Array] = field(**_private)
    _f_prime: Callable[[Array], Array] = field(**_private)
    _reward: Callable[[Array], Array] = field(**_private)  # −f'(e^u) from u = log t
    _terms: Callable[[Array, Array], Array] = field(**_private)  # p f(π/p), finite logs, max = 0
    _f_prime_inverse: Callable[[Array], Array] | None = field(default=None, **_private)
    _weight: Callable[[Array, Array], Array] | None = field(default=None, **_private)  # π f'(π/p)
    _curvature: Callable[[Array], Array] | None = field(default=None, **_private)  # t f''(t) from u

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name={self.name!r} must be a non-empty string")
        for key, v in (("f_at_zero", self.f_at_zero), ("slope_at_infinity", self.slope_at_infinity)):
            if not isinstance(v, numbers.Real) or math.isnan(v) or v == -math.inf:
                raise ValueError(f"{self.name}: {key}={v!r} must be a real number or +inf")
        for key in ("_f", "_f_prime", "_reward", "_terms"):
            if not callable(getattr(self, key)):
                raise ValueError(f"{self.name}: {key}={getattr(self, key)!r} must be a function")
        if abs(float(self.f(1.0))) > 1e-12:
            raise ValueError(f"{self.name}: f(1) = {float(self.f(1.0))!r}; an f-divergence needs f(1) = 0")

    def __repr__(self) -> str:
        return f"FDivergence({self.name!r}: f(t) = {self.formula})"

    @property
    def label(self) -> str:
        """One display line: "title  notation — role" (e.g. "forward KL  KL(p‖π) — GDC / DPG")."""
        text = f"{self.title}  {self.notation}" if self.notation else self.title
        return f"{text} — {self.role}" if self.role else text

    def __str__(self) -> str:
        return f"{self.name} — {self.label}"

    def __reduce__(self):  # pickle / copy by name: the callables are rebuilt by ``get``
        return get, (self.name,)

    @property
    def f_prime_to_minus_inf_at_zero(self) -> bool:
        """Whether f'(t) → −∞ as t → 0+ (f-DPO needs it: Wang et al. 2023, Thm 1)."""
        return bool(self.f_prime(0.0) == -math.inf)

    def f(self, t) -> Array:
        """f(t) for t ≥ 0, any shape; t = 0 gives f(0+), t = +inf the limit (±inf)."""
        t = _nonneg(t, "t")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.broadcast_to(np.asarray(self._f(t), dtype=float), t.shape).copy()
            lost = np.isnan(out) & (t > 0) & np.isfinite(t)  # e.g. (1 + t) log(1 + t) − t log t at t ~ 1e308
            if lost.any():  # f(t) = t · [1 · f(1/t)]-perspective: the value terms at (π, p) = (1, 1/t), times t
                u = np.log(t[lost])
                out[lost] = t[lost] * self._terms(np.zeros_like(u), -u)
        out = np.where(t == 0, self.f_at_zero, out)
        return np.where(np.isposinf(t) & (self.slope_at_infinity > 0), np.inf, out)

    def f_prime(self, t) -> Array:
        """f'(t) for t ≥ 0, any shape; t = 0 gives f'(0+) (maybe −inf), t = +inf gives f'(∞)."""
        t = _nonneg(t, "t")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(self._f_prime(t), dtype=float)
        return np.where(np.isposinf(t), self.slope_at_infinity, out)

    def pseudo_reward(self, log_t) -> Array:
        """R = −f'(t) at log t = log π − log p, any shape, stable for log t ∈ [−inf, +inf].

        Computed from log t without forming t (e.g. JS: ½(log(1 + e^{−log t}) − log 2)); it is
        ±inf only where −f'(t) is (or exceeds the float range).  Go et al. 2023 (f-DPG's
        pseudo-reward; their Table 1 for forward KL, reverse KL, TV and JS).
        """
        u = _log_t(log_t)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(self._reward(u), dtype=float) * np.ones_like(u)
        return np.where(np.isposinf(u), -self.slope_at_infinity, out)

    def curvature(self, log_t) -> Array:
        """t f''(t) = ∂f'(t)/∂log t at log t, any shape, stable for log t ∈ [−inf, +inf].

        How fast the pseudo-reward moves with log π; f-DPO's gradient needs it.
        """
        u = _log_t(log_t)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(self._curvature(u), dtype=float) * np.ones_like(u)

    def f_double_prime(self, t) -> Array:
        """f''(t) = curvature(log t) / t for t > 0 (≥ 0 by convexity), any shape."""
        t = _nonneg(t, "t")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = self.curvature(np.log(t)) / t
        out = np.where(np.isposinf(t), self._f_double_prime_at_infinity() if np.isposinf(t).any() else 0.0, out)
        return np.where(t == 0, self._f_double_prime_at_zero(), out)

    def _f_double_prime_at_zero(self) -> float:
        """f''(0+) = lim_{u→−∞} c(u) e^{−u}, c(u) = t f''(t) at t = e^u."""
        return _limit_at_zero(lambda u: float(self.curvature(u)) * math.exp(-u))

    def _f_double_prime_at_infinity(self) -> float:
        """f''(∞) = lim_{u→+∞} c(u) e^{−u} (Pearson: 2; every other row: 0), by the same two-point rule."""
        return _limit_at_zero(lambda u: float(self.curvature(-u)) * math.exp(u))

    def f_prime_inverse(self, y) -> Array:
        """t = (f')⁻¹(y) for y in [f'(0+), f'(∞)], any shape; the ends map to 0 and +inf.

        Defined where f' is strictly increasing (every row but TV); f-DPO's optimum
        π* = π_ref (f')⁻¹((r − λ)/β) needs it (Wang et al. 2023, Thm 1).
        """
        if self._f_prime_inverse is None:
            raise ValueError(f"{self.name}: f' is a step function, so (f')⁻¹ does not exist")
        y = as_float_array(y, "y")
        lo, hi = float(self.f_prime(0.0)), self.slope_at_infinity
        bad = np.isnan(y) | (y < lo) | (y > hi)
        if bad.any():
            raise ValueError(f"y={y[bad][:3]} is out of range for {self.name}; allowed: [{lo:.6g}, {hi:.6g}], "
                             "the range of f'")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(self._f_prime_inverse(y), dtype=float) * np.ones_like(y)
        return np.where(y == lo, 0.0, np.where(y == hi, np.inf, out))

    def weights(self, log_pi, log_p) -> Array:
        """w(x) = π(x) f'(π(x)/p(x)) from finite log π, log p of one shape.

        The f-DPG gradient is Σ_x w(x) ∇θ log π(x).  Closed form per divergence (forward KL:
        −p; Neyman: π − p²/π), so a huge ratio with a tiny π stays a finite product.
        """
        lpi, lp = as_float_array(log_pi, "log_pi"), as_float_array(log_p, "log_p")
        if lpi.shape != lp.shape:
            raise ValueError(f"log_pi has shape {lpi.shape} and log_p {lp.shape}; expected the same shape")
        for name, arr in (("log_pi", lpi), ("log_p", lp)):
            if np.isnan(arr).any() or np.isposinf(arr).any():
                raise ValueError(f"{name} contains NaN or +inf; log-probabilities must lie in [-inf, 0]")
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self._weight is not None:
                w = np.asarray(self._weight(lpi, lp), dtype=float)
            else:
                w = -np.exp(lpi) * self._reward(lpi - lp)
            w = np.broadcast_to(w, lpi.shape).copy()
            # zero support: π = 0 = p contributes 0 (0·f(0/0) = 0); p = 0 < π gives π·f'(∞)
            only_p = np.isneginf(lpi) & ~np.isneginf(lp)  # π = 0 < p: p · lim_{t→0} t f'(t)
            if only_p.any():  # an infinite limit stays infinite even where p underflows to 0 (p > 0 here)
                limit = _limit_at_zero(lambda u: -math.exp(u) * float(self._reward(u)))
                w[only_p] = limit if math.isinf(limit) else np.exp(lp[only_p]) * limit
            w[np.isneginf(lpi) & np.isneginf(lp)] = 0.0
            only_pi = np.isneginf(lp) & ~np.isneginf(lpi)
            pi_only = np.exp(lpi[only_pi])  # π > 0 = p; a π that underflows to 0 contributes 0
            w[only_pi] = np.where(pi_only > 0, pi_only * self.slope_at_infinity, 0.0)
        return w

    def value_terms(self, log_pi, log_p) -> Array:
        """p(x) f(π(x)/p(x)) per sequence, (N,) from log π, log p (N,); zero-support rules applied.

        Each term is computed at (π, p)/max(π, p), where one of the two is 1, and scaled back
        by max(π, p): the perspective p f(π/p) is 1-homogeneous, so no ratio overflows.
        """
        inner, m = self._scaled_terms(log_pi, log_p)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.where(inner == 0, 0.0, np.where(np.isposinf(inner), np.inf, inner * np.exp(m)))

    def value(self, log_pi, log_p) -> float:
        """D_f(π ‖ p) = Σ_x p(x) f(π(x)/p(x)) in nats, from log π and log p, both (N,).

        Equals ``value_terms(log_pi, log_p).sum()`` up to rounding (it is summed relative to the
        largest max(π(x), p(x)), so unnormalised inputs cannot give inf − inf).  Never NaN; +inf
        where the divergence is infinite.  Normalisation is not required.
        Reference: Go et al. 2023, eq. 1; Csiszár (1967).
        """
        inner, m = self._scaled_terms(log_pi, log_p)
        if np.isposinf(inner).any():
            return math.inf
        top = np.max(m, initial=-np.inf)  # log of the largest max(π, p)
        s = float(np.sum(inner * np.exp(m - top))) if top > -np.inf else 0.0
        if s == 0:
            return 0.0
        if top <= 700:
            return s * math.exp(top)
        with np.errstate(over="ignore"):  # beyond the float range unless s is tiny
            return float(np.sign(s) * np.exp(top + np.log(abs(s))))

    def _scaled_terms(self, log_pi, log_p) -> tuple[Array, Array]:
        """(inner, m), both (N,), with p f(π/p) = e^m · inner and m = log max(π, p)."""
        log_pi, log_p = _check_pair(log_pi, log_p)
        m = np.maximum(log_pi, log_p)  # (N,) −inf where both are zero
        pi_pos, p_pos = np.isfinite(log_pi), np.isfinite(log_p)
        both = pi_pos & p_pos
        inner = np.zeros(m.shape)
        with np.errstate(over="ignore"):
            inner[both] = self._terms(log_pi[both] - m[both], log_p[both] - m[both])
        inner[p_pos & ~pi_pos] = self.f_at_zero  # p·f(0+), at p = 1
        inner[pi_pos & ~p_pos] = self.slope_at_infinity  # π·f'(∞), at π = 1
        return inner, m


# ---------------------------------------------------------------------------- helpers
def _fmt(x: float) -> str:
    """Shortest text that reads back as x: 0.3 → '0.3', 2.0 → '2', 1 + 1e-7 → '1.0000001'."""
    return f"{x:g}" if float(f"{x:g}") == x else repr(x)


def _limit_at_zero(g: Callable[[float], float]) -> float:
    """lim_{u→−∞} g(u) for g(u) ~ A e^{ku} far below t = e^u = 1 (every row's t f'(t) and
    f''(t) are powers of t there, plus terms that vanish): two points decide it — A (k = 0),
    ±inf (k < 0, the sign of A), 0 (k > 0)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        g1, g2 = g(-700.0), g(-701.0)  # t ≈ 1e-304: below every scale a row has (gjsd(β): β ≥ 1e-300)
    if g1 == 0.0 and g2 == 0.0:
        return 0.0
    if math.isclose(g1, g2, rel_tol=1e-9):
        return g2
    return math.copysign(math.inf, g2) if abs(g2) > abs(g1) else 0.0


def _log_t(log_t) -> Array:
    u = as_float_array(log_t, "log_t")
    if np.isnan(u).any():
        raise ValueError(f"log_t contains NaN ({np.isnan(u).sum()} of {u.size}); allowed: [-inf, inf]")
    return u


def _p_expm1(log_p: Array, x: Array) -> Array:
    """p (e^x − 1) from log p, finite wherever the product is (e^x alone may overflow)."""
    small, big = np.minimum(x, 30.0), np.maximum(x, 30.0)  # e^x − 1 = e^x (1 − e^{−x}) for x > 30
    with np.errstate(over="ignore"):
        return np.where(x > 30.0, np.exp(log_p + big) * -expm1(-big), np.exp(log_p) * expm1(small))


def _log_mix(u: Array, c: float) -> Array:
    """log((1 − c) + c e^u), exact at u = 0 and without overflow for any u (needs 1 − c exact in float)."""
    lo, hi = np.minimum(u, 0.0), np.maximum(u, 0.0)
    return np.where(u <= 0, np.log1p(c * expm1(lo)), hi + np.log1p((1.0 - c) * expm1(-hi)))


def _log_mix_from_logs(u: Array, log_c: float, log_1mc: float) -> Array:
    """log((1 − c) + c e^u) from log c and log(1 − c), for a c so close to 0 or 1 that 1 − c rounds
    (gjsd(1e-17)): log1p(c expm1 u) for |u| ≤ 1 (exact at u = 0), logaddexp of the logs elsewhere."""
    u = np.asarray(u, dtype=float)
    near = np.clip(u, -1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        far = np.logaddexp(log_1mc, log_c + u)
    return np.where(np.abs(u) <= 1.0, np.log1p(math.exp(log_c) * expm1(near)), far)


def _gap(lpi: Array, lp: Array, s: float = 1.0) -> Array:
    """|π^s − p^s| = max(π, p)^s (1 − (min/max)^s), accurate also where π ≈ p."""
    return np.exp(s * np.maximum(lpi, lp)) * -expm1(-s * np.abs(lpi - lp))


def _softplus(x: Array, scratch: bool = False) -> Array:
    """log(1 + e^x) = max(x, 0) + log1p(e^{−|x|}), exact for every x in [−inf, inf].

    Vectorised ufuncs on one new buffer (``np.logaddexp`` is scalar code, several times
    slower on the (N,) arrays of the exact f-DPG weights); ``scratch=True`` lets it
    overwrite x instead of allocating a second one.
    """
    out = np.abs(x)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    out += np.maximum(x, 0.0, out=x if scratch else None)
    return out


def _nonneg(t, name: str) -> Array:
    t = as_float_array(t, name)
    bad = np.isnan(t) | (t < 0)
    if bad.any():
        raise ValueError(f"{name}={t[bad][:3]} is out of range; allowed: t ≥ 0 (a ratio π/p)")
    return t


def _check_pair(log_pi, log_p) -> tuple[Array, Array]:
    log_pi, log_p = as_float_array(log_pi, "log_pi"), as_float_array(log_p, "log_p")
    if log_pi.shape != log_p.shape or log_pi.ndim != 1:
        raise ValueError(f"log_pi has shape {log_pi.shape} and log_p {log_p.shape}; expected the same (N,)")
    for name, arr in (("log_pi", log_pi), ("log_p", log_p)):
        bad = np.isnan(arr) | np.isposinf(arr)
        if bad.any():
            raise ValueError(f"{name} contains NaN or +inf at {np.flatnonzero(bad)[:5].tolist()}; "
                             "allowed: finite log-probabilities, or -inf for probability 0")
    return log_pi, log_p


# ---------------------------------------------------------------------------- the rows
def _forward_kl() -> FDivergence:
    return FDivergence(
        "forward_kl", title="forward KL", notation="KL(p‖π)", role="GDC / DPG", formula=r"-\log t",
        f_at_zero=math.inf, slope_at_infinity=0.0,
        _f=lambda t: -np.log(t), _f_prime=lambda t: -1.0 / t, _reward=lambda u: np.exp(-u),
        _terms=lambda lpi, lp: np.exp(lp) * (lp - lpi),  # rel_entr(p, π)
        _f_prime_inverse=lambda y: -1.0 / y, _weight=lambda lpi, lp: -np.exp(lp),
        _curvature=lambda u: np.exp(-u))


def _reverse_kl() -> FDivergence:
    return FDivergence(
        "reverse_kl", title="reverse KL", notation="KL(π‖p)", role="RLHF", formula=r"t \log t",
        f_at_zero=0.0, slope_at_infinity=math.inf,
        _f=lambda t: xlogy(t, t), _f_prime=lambda t: 1.0 + np.log(t), _reward=lambda u: -1.0 - u,
        _terms=lambda lpi, lp: np.exp(lpi) * (lpi - lp),  # rel_entr(π, p)
        _f_prime_inverse=lambda y: np.exp(y - 1.0), _weight=lambda lpi, lp: np.exp(lpi) * (1.0 + lpi - lp),
        _curvature=lambda u: np.ones_like(u))


def _tv() -> FDivergence:
    return FDivergence(
        "tv", title="total variation", notation="½Σ|π−p|", role="", formula=r"\tfrac12 |t - 1|",
        f_at_zero=0.5, slope_at_infinity=0.5,
        _f=lambda t: 0.5 * np.abs(t - 1.0), _f_prime=lambda t: 0.5 * np.sign(t - 1.0),
        _reward=lambda u: -0.5 * np.sign(u),
        _terms=lambda lpi, lp: 0.5 * _gap(lpi, lp),  # ½|π − p|
        _curvature=lambda u: np.zeros_like(u))  # 0 away from t = 1, where f' jumps


def _js() -> FDivergence:
    """Textbook JS = ½KL(π‖m) + ½KL(p‖m), m = (π + p)/2; disco's ``JSLoss`` is twice this."""
    def terms(lpi, lp):  # ½ rel_entr(π, m) + ½ rel_entr(p, m), in log space
        lm = np.logaddexp(lpi, lp) - _LOG2  # log m
        return 0.5 * (np.exp(lpi) * (lpi - lm) + np.exp(lp) * (lp - lm))

    def weight(lpi, lp):  # π f'(π/p) = ½ π (log 2 − log(1 + p/π)), on two buffers
        d = lp - lpi
        w = _softplus(d, scratch=True)  # log(1 + p/π); d is overwritten
        np.subtract(_LOG2, w, out=w)
        w *= np.exp(lpi, out=d)
        w *= 0.5
        return w

    return FDivergence(
        "js", title="Jensen–Shannon", notation="½KL(π‖m)+½KL(p‖m)", role="",
        formula=r"\tfrac12\left[t\log t-(1+t)\log\tfrac{1+t}{2}\right]", f_at_zero=_LOG2 / 2,
        slope_at_infinity=_LOG2 / 2,
        _f=lambda t: 0.5 * (xlogy(t, t) - xlogy(1.0 + t, (1.0 + t) / 2.0)),
        _f_prime=lambda t: 0.5 * (_LOG2 + np.log(t) - np.log1p(t)),
        _reward=lambda u: 0.5 * (np.logaddexp(0.0, -u) - _LOG2),
        _terms=terms,
        _f_prime_inverse=lambda y: 1.0 / expm1(_LOG2 - 2.0 * y),  # ½ log(2t/(1+t)) = y
        _weight=weight,
        _curvature=lambda u: 0.5 * np.exp(-np.logaddexp(0.0, u)))  # ½/(1 + t)


def _hellinger() -> FDivergence:
    return FDivergence(
        "hellinger", title="squared Hellinger", notation="Σ(√π−√p)²", role="", formula=r"(\sqrt t - 1)^2",
        f_at_zero=1.0, slope_at_infinity=1.0,
        _f=lambda t: (np.sqrt(t) - 1.0) ** 2, _f_prime=lambda t: 1.0 - 1.0 / np.sqrt(t),
        _reward=lambda u: expm1(-0.5 * u),
        _terms=lambda lpi, lp: _gap(lpi, lp, 0.5) ** 2,  # (√π − √p)²
        _f_prime_inverse=lambda y: 1.0 / (1.0 - y) ** 2,
        _weight=lambda lpi, lp: np.exp(lpi) - np.exp(0.5 * (lpi + lp)),
        _curvature=lambda u: 0.5 * np.exp(-0.5 * u))


def _pearson() -> FDivergence:
    return FDivergence(
        "pearson", title="Pearson χ²", notation="Σ(π−p)²/p", role="", formula=r"(t - 1)^2",
        f_at_zero=1.0, slope_at_infinity=math.inf,
        _f=lambda t: (t - 1.0) ** 2, _f_prime=lambda t: 2.0 * (t - 1.0), _reward=lambda u: -2.0 * expm1(u),
        _terms=lambda lpi, lp: _gap(lpi, lp) ** 2 * np.exp(-lp),  # (π − p)²/p
        _f_prime_inverse=lambda y: 1.0 + y / 2.0,
        _weight=lambda lpi, lp: 2.0 * (np.exp(2.0 * lpi - lp) - np.exp(lpi)),
        _curvature=lambda u: 2.0 * np.exp(u))


def _neyman() -> FDivergence:
    return FDivergence(
        "neyman", title="Neyman χ²", notation="Σ(π−p)²/π", role="", formula=r"(t - 1)^2 / t",
        f_at_zero=math.inf, slope_at_infinity=1.0,
        _f=lambda t: (t - 1.0) ** 2 / t, _f_prime=lambda t: 1.0 - t**-2.0, _reward=lambda u: expm1(-2.0 * u),
        _terms=lambda lpi, lp: _gap(lpi, lp) ** 2 * np.exp(-lpi),  # (π − p)²/π
        _f_prime_inverse=lambda y: 1.0 / np.sqrt(1.0 - y),
        _weight=lambda lpi, lp: np.exp(lpi) - np.exp(2.0 * lp - lpi),
        _curvature=lambda u: 2.0 * np.exp(-2.0 * u))


def alpha(a: float) -> FDivergence:
    """f(t) = (t^α − α t − (1 − α)) / (α(α − 1)), Amari's α-divergence, for any real α.

    α → 0 gives KL(p‖π) (forward) and α → 1 gives KL(π‖p) (reverse), exactly at the ends and
    continuously near them; α = ½ is 2 × squared Hellinger, α = 2 is ½ Pearson χ², α = −1 is
    ½ Neyman χ².  With u = log t and δ = α − 1 it is computed as
    [expm1(αu)/α − expm1(u)]/(α − 1) for α ≤ ½ and [t expm1(δu)/δ − (t − 1)]/α for α > ½.
    f(0+) = 1/α (α > 0, else +inf); f'(∞) = 1/(1 − α) (α < 1, else +inf).
    References: Amari (1985; 2009); Cichocki & Amari (2010), Entropy 12 (this form).  Other
    libraries parametrise it differently (TRL, Wang et al., TFP): docs/conventions.md.
    """
    if isinstance(a, bool) or not isinstance(a, numbers.Real) or not math.isfinite(a):
        raise ValueError(f"a={a!r} must be a finite real number (the α of alpha(a))")
    a = float(a)
    d = a - 1.0

    def px(log_p, u, c):  # p expm1(c u)/c, and its limit p u at c = 0
        return np.exp(log_p) * u if c == 0 else _p_expm1(log_p, c * u) / c

    def terms(lpi, lp):  # p f(π/p), u = log π − log p
        u, diff = lpi - lp, np.exp(lpi) - np.exp(lp)  # diff = π − p
        if a <= 0.5:
            return (px(lp, u, a) - diff) / d  # [p expm1(αu)/α − (π − p)] / (α − 1)
        return (px(lpi, u, d) - diff) / a  # [π expm1(δu)/δ − (π − p)] / α

    def f(t):
        with np.errstate(divide="ignore"):
            return terms(np.log(t), np.zeros_like(t))

    def f_prime(t):  # (t^δ − 1)/δ
        with np.errstate(divide="ignore"):
            u = np.log(t)
        return u if d == 0 else expm1(d * u) / d

    def inverse(y):  # (1 + δy)^{1/δ}
        return np.exp(y) if d == 0 else np.exp(np.log1p(d * y) / d)

    def weight(lpi, lp):  # π f'(π/p) = π expm1(δu)/δ
        return px(lpi, lpi - lp, d)

    formula = {0.0: r"-\log t + t - 1", 1.0: r"t \log t - t + 1"}.get(
        a, rf"\frac{{t^\alpha - \alpha t - (1 - \alpha)}}{{\alpha(\alpha - 1)}},\ \alpha = {_fmt(a)}")
    return FDivergence(
        f"alpha({_fmt(a)})", title=f"α-divergence, α = {_fmt(a)}", notation="", role="", formula=formula,
        f_at_zero=1.0 / a if a > 0 else math.inf, slope_at_infinity=1.0 / (1.0 - a) if a < 1 else math.inf,
        _f=f, _f_prime=f_prime, _reward=lambda u: -u if d == 0 else -expm1(d * u) / d, _terms=terms,
        _f_prime_inverse=inverse, _weight=weight, _curvature=lambda u: np.exp(d * u))  # t f'' = t^δ


def gjsd(beta: float) -> FDivergence:
    """β KL(p‖M) + (1 − β) KL(π‖M), M = βp + (1 − β)π: the generalised JS, 0 < β < 1.

    f(t) = −β log(β + (1−β)t) + (1−β) t log(t/(β + (1−β)t)), f'(t) = (1−β) log(t/(β + (1−β)t));
    gjsd(½) = js.  f(0+) = −β log β, f'(∞) = −(1−β) log(1−β).  References: Lin (1991), the
    weighted JS; GKD's JSD(β) (Agarwal et al., ICLR 2024) — whose β → 0, 1 endpoints are the
    limits of JSD(β)/β and JSD(β)/(1 − β) (docs/conventions.md).
    """
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 < beta < 1:
        raise ValueError(f"beta={beta!r} is out of range; allowed: 0 < beta < 1 (open interval)")
    b = float(beta)
    lb, lc = math.log(b), math.log1p(-b)  # log β, log(1 − β)

    exact = 1.0 - (1.0 - b) == b  # β and 1 − β both exact in float: the expm1 form is exact
    if exact:
        mix, mix_r = (lambda u: _log_mix(u, 1 - b)), (lambda u: _log_mix(u, b))
    else:  # e.g. β = 1e-17, where 1 − β rounds to 1
        mix, mix_r = (lambda u: _log_mix_from_logs(u, lc, lb)), (lambda u: _log_mix_from_logs(u, lb, lc))
    # mix(u) = log(β + (1−β)t), mix_r(u) = log((1−β) + βt), at u = log t; both exact at t = 1

    def f(t):  # −β log(β + (1−β)t) − (1−β) t log((1−β) + β/t): no cancellation at large t
        u = np.log(t)
        return -b * mix(u) - (1 - b) * t * mix_r(-u)

    def terms(lpi, lp):  # β rel_entr(p, M) + (1 − β) rel_entr(π, M), in log space
        lm = lp + mix(lpi - lp)  # log M = log p + log(β + (1−β)t)
        return b * np.exp(lp) * (lp - lm) + (1 - b) * np.exp(lpi) * (lpi - lm)

    return FDivergence(
        f"gjsd({_fmt(b)})", title=f"generalised JS, β = {_fmt(b)}", notation="", role="",
        formula=rf"-{_fmt(b)}\log({_fmt(b)}+{_fmt(1 - b)}t)+{_fmt(1 - b)}\,t\log\frac{{t}}{{{_fmt(b)}+{_fmt(1 - b)}t}}",
        f_at_zero=-b * lb, slope_at_infinity=-(1 - b) * lc,
        _f=f,
        _f_prime=lambda t: (1 - b) * (np.log(t) - np.log(b + (1 - b) * t)),
        _reward=lambda u: (1 - b) * mix_r(-u),  # (1−β) log((1−β) + β/t)
        _terms=terms,
        _f_prime_inverse=lambda y: b / ((1 - b) * expm1(-y / (1 - b) - lc)),  # 1/t = (e^{−y/(1−β)} − 1 + β)/β
        _curvature=lambda u: (1 - b) * b * np.exp(-np.logaddexp(lb, lc + u)))  # β(1−β)/(β + (1−β)t)


# ---------------------------------------------------------------------------- registry
_REGISTRY: dict[str, Callable[[], FDivergence]] = {  # the table's order
    "forward_kl": _forward_kl, "reverse_kl": _reverse_kl, "tv": _tv, "js": _js, "hellinger": _hellinger,
    "pearson": _pearson, "neyman": _neyman, "alpha": lambda: alpha(0.5), "gjsd": lambda: gjsd(0.25),
}
_PARAM = re.compile(r"^(alpha|gjsd)\(\s*([^()]+?)\s*\)$")


def parameter(name) -> tuple[str, float] | None:
    """(family, parameter) of a parametrised name: "alpha(0.3)" → ("alpha", 0.3); None for any other."""
    m = _PARAM.match(name) if isinstance(name, str) else None
    if m is None:
        return None
    try:
        return m.group(1), float(m.group(2))
    except ValueError:
        return None


def names() -> list[str]:
    """The registry keys, in the order of the project's divergence table (DESIGN.md §1)."""
    return list(_REGISTRY)


def registered() -> tuple[FDivergence, ...]:
    """One instance per registry key, in order (alpha = alpha(0.5), gjsd = gjsd(0.25))."""
    return tuple(make() for make in _REGISTRY.values())


def get(name: str, *, argument: str = "name") -> FDivergence:
    """The divergence called ``name``: a registry key, "alpha(a)" or "gjsd(b)" (or an FDivergence).

    ``argument``: the name of the caller's own argument, used in the error message (e.g. "divergence").
    """
    if isinstance(name, FDivergence):
        return name
    allowed = f"allowed: {names()}, or 'alpha(a)' with a finite, or 'gjsd(b)' with 0 < b < 1"
    if not isinstance(name, str):
        raise ValueError(f"{argument}={name!r} must be a string; {allowed}")
    key = name.strip()
    if key in _REGISTRY:
        return _REGISTRY[key]()
    m = _PARAM.match(key)
    if m:
        try:
            value = float(m.group(2))
        except ValueError:
            raise ValueError(f"{argument}={name!r}: {m.group(2)!r} is not a number; {allowed}") from None
        try:
            return alpha(value) if m.group(1) == "alpha" else gjsd(value)
        except ValueError as err:
            raise ValueError(f"{argument}={name!r}: {err}") from None
    raise ValueError(f"{argument}={name!r} is unknown; {allowed}")


def as_divergence(divergence) -> FDivergence:
    """An :class:`FDivergence` from itself or its registry name ("js", "alpha(0.3)", …)."""
    if isinstance(divergence, FDivergence):
        return divergence
    if isinstance(divergence, str):
        return get(divergence, argument="divergence")
    raise ValueError(f"divergence={divergence!r} must be an FDivergence or a name from {names()}")


@functools.lru_cache(maxsize=1)
def _reverse_kl() -> FDivergence:
    return get("reverse_kl")  # frozen: one instance serves every call


def kl(log_p, log_q) -> float:
    """KL(p ‖ q) = Σ_x p(x) log(p(x)/q(x)) in nats (+inf if p puts mass where q has none).

    The one KL of the library: the reverse-KL row's D_f(p ‖ q) with f(t) = t log t, so it
    shares that row's zero-support rules.  Both must be normalised (N,) log-probability vectors
    (for unnormalised ones the sum is not a divergence and can be negative): a ValueError names
    the one that is not.
    """
    log_p = check_log_probs(log_p, None, "log_p")
    return _reverse_kl().value(log_p, check_log_probs(log_q, log_p.size, "log_q"))
