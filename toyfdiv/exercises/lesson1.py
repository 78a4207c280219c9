"""Lesson 1 exercises: f-divergences, their generators, limits and mode seeking.

Each checker takes the student's answer and returns a :class:`~toyfdiv.exercises.Verdict`.

1. :func:`check_generator` — the generator f of Neyman's χ², D(π‖p) = Σ_x (π(x) − p(x))² / π(x).
2. :func:`check_js_slope` — lim_{t→∞} f(t)/t for Jensen–Shannon: what JS charges per unit of
   policy mass where p(x) = 0.
3. :func:`check_mode_seeking` — which registered divergences are mode seeking on the
   lesson's one-parameter family (their best member puts < 10 % of its mass on the valley x2).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np

from .. import divergences
from ..policies import TabularPolicy
from ..simplex import SPACE
from ..space import SequenceSpace
from . import Verdict, as_number, right, wrong

__all__ = ["check_generator", "check_js_slope", "check_mode_seeking",
           "simplex_space", "valley_target", "family", "family_minimiser", "VALLEY_MASS"]

#: A ratio grid on which two generators are compared (t = π/p > 0).
T_GRID = np.geomspace(0.05, 20.0, 61)


# ---------------------------------------------------------------------------- helpers
def evaluate(fn: Callable, t: np.ndarray, what: str) -> tuple[np.ndarray | None, Verdict | None]:
    """fn(t) as a float array (vectorised, or element by element), or a Verdict saying why not."""
    if not callable(fn):
        return None, wrong(f"{what} must be a function of t (e.g. `lambda t: ...`), got {type(fn).__name__}")
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(fn(t), dtype=float)
        if out.shape != t.shape:
            out = np.array([float(fn(float(x))) for x in t])
    except Exception as exc:  # the student's code: report, never crash
        return None, wrong(f"calling your {what} on a numpy array of ratios t raised "
                           f"{type(exc).__name__}: {exc}. Use numpy functions (np.log, np.sqrt) so it works on arrays")
    if not np.all(np.isfinite(out)):
        return None, wrong(f"your {what} is not finite for some t in [0.05, 20], e.g. "
                           f"t = {t[~np.isfinite(out)][0]:.3g}")
    return out, None


def linear_offset(diff: np.ndarray, t: np.ndarray) -> tuple[float, float, bool]:
    """Fit diff ≈ c (t − 1) + d; returns (c, d, whether the fit is exact)."""
    design = np.stack([t - 1.0, np.ones_like(t)], axis=1)
    (c, d), *_ = np.linalg.lstsq(design, diff, rcond=None)
    exact = np.allclose(design @ [c, d], diff, rtol=1e-6, atol=1e-8)
    return float(c), float(d), bool(exact)


# ---------------------------------------------------------------------------- exercise 1
def check_generator(f: Callable) -> Verdict:
    """Is ``f`` a generator of Neyman's χ², D(π‖p) = Σ_x (π(x) − p(x))² / π(x)?

    Right if f(t) = (t − 1)²/t + c (t − 1) for some c (every such f gives the same D_f).
    """
    t = T_GRID
    mine, err = evaluate(f, t, "f")
    if err is not None:
        return err
    truth = divergences.get("neyman").f(t)
    c, d, linear = linear_offset(mine - truth, t)
    if linear and abs(d) < 1e-6:
        if abs(c) < 1e-6:
            return right("f(t) = (t − 1)²/t: Σ_x p(x) f(π/p) = Σ_x p (π/p − 1)² · p/π = Σ_x (π − p)²/π.")
        return right(f"your f is (t − 1)²/t + {c:.3g}·(t − 1): adding c(t − 1) to a generator leaves D_f "
                     "unchanged (Σ_x p (π/p − 1) = 0), so this generates Neyman's χ² too. The table's "
                     "choice is c = 0.")
    f1 = float(evaluate(f, np.array([1.0]), "f")[0][0]) if linear else None
    if linear and f1 is not None and abs(f1) > 1e-6:
        return wrong(f"your f is right up to a constant: f(1) = {f1:.3g}, not 0. A generator needs f(1) = 0, "
                     "otherwise D_f(p‖p) = f(1) ≠ 0.")
    pearson = divergences.get("pearson").f(t)
    if np.allclose(mine, pearson, rtol=1e-6, atol=1e-9):
        return wrong("that is (t − 1)², Pearson's generator: Σ_x p (π/p − 1)² = Σ_x (π − p)²/p divides by p. "
                     "Neyman divides by π = p·t.")
    ratio = mine / np.where(truth == 0, np.nan, truth)
    ratio = ratio[np.isfinite(ratio)]
    if ratio.size and np.allclose(ratio, ratio[0], rtol=1e-6) and abs(ratio[0]) > 1e-9:
        return wrong(f"your f is {ratio[0]:.3g} × the generator: the divergence comes out {ratio[0]:.3g} times too large.")
    k = int(np.argmin(np.abs(t - 2.0)))
    return wrong(f"at t = {t[k]:.3g} your f gives {mine[k]:.4g}, but the generator gives {truth[k]:.4g}. "
                 "Write (π − p)²/π as p · g(π/p) with t = π/p, and read off g.")


# ---------------------------------------------------------------------------- exercise 2
def check_js_slope(value: float) -> Verdict:
    """Is ``value`` = lim_{t→∞} f_JS(t)/t for the textbook Jensen–Shannon divergence (½ log 2)?"""
    v = as_number(value, "the limit (nats)")
    if isinstance(v, Verdict):
        return v
    truth = divergences.get("js").slope_at_infinity
    if math.isclose(v, truth, rel_tol=1e-6):
        return right(f"lim f(t)/t = ½ log 2 ≈ {truth:.4f} nats: where p(x) = 0 < π(x), JS charges π(x)·½ log 2, "
                     "a finite price, so JS stays finite when the policy leaks mass outside p's support.")
    if math.isclose(v, 2 * truth, rel_tol=1e-6):
        return wrong("log 2 is twice the answer: that is the scale of disco's JSLoss (2 × JS). "
                     "The textbook JS has the factor ½ in front.")
    if math.isclose(v, truth / 2, rel_tol=1e-6) or math.isclose(v, math.log(2) / 4, rel_tol=1e-6):
        return wrong("that is half the answer: f_JS(t)/t → ½ [log t − log((1 + t)/2)] as t → ∞; "
                     "log(t/((1 + t)/2)) → log 2.")
    if math.isinf(v) and v > 0:
        return wrong("JS is bounded (by log 2), so f(t)/t cannot grow without bound: compute the limit of "
                     "½[t log t − (1 + t) log((1 + t)/2)] / t; the two log t terms cancel.")
    if math.isclose(v, 0.0, abs_tol=1e-9):
        return wrong("0 is forward KL's value (−log t / t → 0). For JS the t log t terms leave a constant: "
                     "½ [log t − (1 + 1/t) log((1 + t)/2)] → ½ log 2.")
    if math.isclose(v, truth, rel_tol=1e-2):
        return wrong(f"close ({v:.4g}), but the limit is exact: give it to six digits, or use sympy.limit.")
    return wrong(f"{v:.4g} is not the limit. Use sympy: sp.limit(f(t)/t, t, sp.oo) with "
                 "f = ½ [t log t − (1 + t) log((1 + t)/2)].")


# ---------------------------------------------------------------------------- exercise 3
#: The valley outcome x2 gets less than this share under a mode-seeking minimiser.
VALLEY_MASS = 0.10
_S_GRID = np.linspace(-8.0, 8.0, 801)


def simplex_space() -> SequenceSpace:
    """The 3-outcome space {x1, x2, x3} of :mod:`toyfdiv.simplex`: one token, no EOS."""
    return SPACE


def valley_target() -> np.ndarray:
    """(3,) log p: two modes, x1 and x3, with a valley at x2 (p = 0.55, 0.02, 0.43)."""
    return np.log(np.array([0.55, 0.02, 0.43]))


def family(s: float) -> np.ndarray:
    """(3,) log π_s: the tabular policy with logits θ = s·(0, 1, 2), i.e. π_s ∝ (1, e^s, e^2s).

    A one-parameter family that cannot be bimodal: π_s(x2)² = π_s(x1) π_s(x3).
    """
    return TabularPolicy(simplex_space(), params=float(s) * np.arange(3.0)).log_probs()


def family_minimiser(divergence, log_p: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """(s*, log π_s*): the member of :func:`family` closest to p in D_f(π_s ‖ p), on a grid of s."""
    div = divergences.get(divergence)
    log_p = valley_target() if log_p is None else log_p
    values = np.array([div.value(family(s), log_p) for s in _S_GRID])
    k = int(np.argmin(values))
    return float(_S_GRID[k]), family(_S_GRID[k])


def check_mode_seeking(names: Iterable[str]) -> Verdict:
    """Are ``names`` exactly the registered divergences whose family minimiser puts < 10 % on x2?"""
    if isinstance(names, str):
        names = [names]
    try:
        given = {divergences.get(n).name for n in names}
    except (TypeError, ValueError) as exc:
        return wrong(f"give a list of registry keys such as ['forward_kl', 'js'] ({exc})")
    keys = dict(zip((d.name for d in divergences.registered()), divergences.names()))
    valley = {d.name: float(np.exp(family_minimiser(d)[1][1])) for d in divergences.registered()}
    truth = {n for n, m in valley.items() if m < VALLEY_MASS}
    shown = lambda ns: ", ".join(sorted(keys.get(n, n) for n in ns)) or "none"  # noqa: E731
    if given == truth:
        return right(f"{shown(truth)}: exactly the rows with lim f(t)/t = ∞: mass where π ≫ p costs them without "
                     "bound, so they keep the valley (p(x2) = 0.02: small, not zero) nearly empty; in this family the "
                     "others keep mass there to cover both modes. That is not a law of f alone: in the lesson's "
                     "Gaussian example JS and Hellinger (finite f'(∞)) pick one mode too.")
    missing, extra = truth - given, given - truth
    parts = []
    if missing:
        parts.append(f"you missed {shown(missing)} (valley mass "
                     + ", ".join(f"{valley[n]:.3f}" for n in sorted(missing)) + ")")
    if extra:
        parts.append(f"{shown(extra)} put "
                     + ", ".join(f"{valley[n]:.3f}" for n in sorted(extra)) + " on x2, more than 10 % (mode covering)")
    return wrong("; ".join(parts) + ". Compute each minimiser with lesson1.family_minimiser(name) and read π(x2); "
                 "hint: compare the answer with each divergence's slope_at_infinity.")
