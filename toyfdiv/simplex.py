"""The 3-outcome simplex: D_f(π‖p) over every π, and the exact f-DPG gradient flow.

With three outcomes every distribution π = (π₁, π₂, π₃) is a point of a triangle
(barycentric coordinates), so a divergence is a landscape that can be drawn whole, and the
path of gradient descent on it can be followed exactly:

    θ_{k+1} = θ_k − η ∇θ D_f(πθ_k ‖ p),   πθ = softmax(θ)   (a TabularPolicy, Go et al. 2023, eq. 4)

The figures live in :func:`toyfdiv.plots.simplex`; every number is computed here.
"""

from __future__ import annotations

import numpy as np

from . import divergences as _divergences
from . import fdpg as _fdpg
from . import targets as _targets
import warnings
from dataclasses import dataclass

from ._util import as_float_array, check_finite_float, check_int, check_positive_float
from .policies import LogLinearPolicy, TabularPolicy
from .space import SequenceSpace

__all__ = ["Panel", "panels", "mode_seeking_ends", "CORNERS", "DEFAULT_TARGET", "DEFAULT_START", "SPACE", "to_xy", "from_xy", "simplex_grid",
           "gradient_flow", "contour_levels", "BIMODAL_TARGET", "location_family", "family_curve",
           "restricted_flow"]

#: Cartesian corners of the triangle: δ(x₁) bottom left, δ(x₂) bottom right, δ(x₃) top.
CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0]])  # (3, 2)
#: A lopsided target with a small third outcome, and a start that sits on that outcome.
DEFAULT_TARGET = np.log(np.array([0.62, 0.33, 0.05]))
DEFAULT_START = np.array([0.1, 0.1, 0.8])
#: The three-sequence space the flow runs on (one token among three).
SPACE = SequenceSpace(["x1", "x2", "x3"], length=1)


def to_xy(pi) -> np.ndarray:
    """(x, y) = Σ_i π_i c_i, the Cartesian point of barycentric π; (..., 3) → (..., 2)."""
    pi = as_float_array(pi, "pi")
    if pi.ndim == 0 or pi.shape[-1] != 3:
        raise ValueError(f"pi has shape {pi.shape}; expected (..., 3), barycentric coordinates")
    return pi @ CORNERS


def from_xy(x, y) -> np.ndarray:
    """π with Σ_i π_i c_i = (x, y): π₃ = y/(√3/2), π₂ = x − π₃/2, π₁ = 1 − π₂ − π₃; (...,) → (..., 3).

    Points outside the triangle get negative entries."""
    x, y = as_float_array(x, "x"), as_float_array(y, "y")
    p3 = y / CORNERS[2, 1]
    p2 = x - 0.5 * p3
    return np.stack([1.0 - p2 - p3, p2, p3], axis=-1)


def _check_log_p(log_p) -> np.ndarray:
    log_p = as_float_array(log_p, "log_p")
    if log_p.shape != (3,):
        raise ValueError(f"log_p has shape {log_p.shape}; expected (3,), a distribution over three outcomes")
    return _targets.from_log_probs(log_p, log_p).log_probs  # validates normalisation


def simplex_grid(log_p, divergence, resolution: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """D(x, y) = D_f(π(x, y) ‖ p) on a resolution × resolution grid over the triangle.

    Returns X, Y (res, res) Cartesian coordinates and D (res, res) in nats; NaN outside the
    triangle and where D_f is infinite (on the edges, e.g. forward KL where π has zeros).
    """
    log_p = _check_log_p(log_p)
    div = _divergences.get(divergence)
    resolution = check_int(resolution, "resolution", low=3, high=MAX_RESOLUTION)
    X, Y = np.meshgrid(np.linspace(0.0, 1.0, resolution), np.linspace(0.0, CORNERS[2, 1], resolution))
    pi = from_xy(X, Y).reshape(-1, 3)  # (M, 3)
    inside = np.all(pi >= -1e-12, axis=1)
    pi = np.clip(pi[inside], 0.0, None)
    pi /= pi.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi)
    terms = div.value_terms(log_pi.ravel(), np.broadcast_to(log_p, log_pi.shape).ravel())  # (3M,)
    D = np.full(X.size, np.nan)
    D[inside] = terms.reshape(-1, 3).sum(axis=1)
    D[~np.isfinite(D)] = np.nan
    return X, Y, D.reshape(X.shape)


def gradient_flow(log_p, divergence, start, steps: int = 300, lr: float = 0.5, *,
                  max_dtheta: float = 0.02) -> np.ndarray:
    """π(t_k) along the gradient flow dθ/dt = −∇θ D_f(πθ ‖ p), πθ = softmax(θ), θ(0) = log start.

    The exact f-DPG gradient (:func:`toyfdiv.fdpg.exact_gradient`) of a TabularPolicy on a
    three-sequence space, recorded at times t_k = k·``lr``.  Each interval is integrated by
    explicit Euler sub-steps small enough that no logit moves by more than ``max_dtheta``,
    so the path follows the continuous flow whatever the scale of f' (Pearson χ² is steep
    far from p, TV's gradient is a step: it then chatters within ~max_dtheta of p).  With
    lr ≤ max_dtheta / ‖∇‖_∞ this is plain gradient descent with step lr.

    Returns:
      (steps + 1, 3) probabilities, row k = π(t_k).
    """
    log_p = _check_log_p(log_p)
    div = _divergences.get(divergence)
    steps = check_int(steps, "steps", low=0)
    lr = check_positive_float(lr, "lr")
    max_dtheta = check_positive_float(max_dtheta, "max_dtheta")
    start = as_float_array(start, "start")
    if start.shape != (3,) or not np.all(start > 0) or not abs(start.sum() - 1.0) <= 1e-9:
        raise ValueError(f"start={start!r} must be 3 probabilities > 0 summing to 1")
    target = _targets.from_log_probs(log_p, log_p)
    pol = TabularPolicy.from_log_probs(SPACE, np.log(start))
    return _flow(pol, target, div, steps, lr, max_dtheta)


def _flow(pol, target, div, steps: int, lr: float, max_dtheta: float) -> np.ndarray:
    """Probabilities along θ_{k+1} = θ_k − lr ∇θ D_f, in Euler sub-steps of at most max_dtheta."""
    path = np.empty((steps + 1, 3))
    path[0] = pol.probs()
    for k in range(steps):
        remaining = lr
        for _ in range(_MAX_SUBSTEPS):
            g = _fdpg.exact_gradient(pol, target, div)  # (3,)
            size = float(np.abs(g).max())
            h = remaining if size * remaining <= max_dtheta else max_dtheta / size
            pol = pol.with_params(pol.params - h * g)
            remaining -= h
            if remaining <= 0:
                break
        else:
            warnings.warn(f"the flow did not reach t = {k + 1}·lr: {_MAX_SUBSTEPS} Euler sub-steps of at most "
                          f"max_dtheta={max_dtheta:g} cover less than lr={lr:g}; the path stops early there "
                          "(raise max_dtheta or lower lr)", RuntimeWarning, stacklevel=3)
            path[k + 1:] = pol.probs()
            return path
        path[k + 1] = pol.probs()
    return path


# ---------------------------------------------------------------------------- a restricted family
#: Two modes at the ends, a valley in the middle: no unimodal π can match it.
BIMODAL_TARGET = np.log(np.array([0.46, 0.08, 0.46]))
_K = np.arange(3.0)  # outcome positions k = 0, 1, 2


def location_family(mu: float = 1.0, width: float = 0.5) -> LogLinearPolicy:
    """π_μ(k) ∝ exp(−(k − μ)²/2s²), k = 0, 1, 2: a discretised Gaussian, one parameter.

    Log-linear with feature ψ(k) = k, offset −k²/2s² and θ = μ/s², so its f-DPG gradient is
    the same theorem as everywhere; it is unimodal, hence it cannot fit a two-mode target
    and each divergence has to choose: one mode (seeking) or the middle (covering).
    """
    width = check_positive_float(width, "width")
    mu = check_finite_float(mu, "mu")
    if width**2 == 0 or not np.isfinite(mu / width**2) or not np.isfinite(4 / (2 * width**2)):
        raise ValueError(f"width={width!r} is too small for mu={mu!r}: θ = μ/width² overflows; allowed: width ≥ 1e-100")
    return LogLinearPolicy(SPACE, _K[:, None], offset=-_K**2 / (2 * width**2), params=[mu / width**2])


def family_curve(width: float = 0.5, mus=None) -> np.ndarray:
    """(M, 3) probabilities of the location family for μ along ``mus`` (default −1 … 3)."""
    mus = np.linspace(-1.0, 3.0, 161) if mus is None else as_float_array(mus, "mus")
    if mus.ndim != 1 or mus.size == 0:
        raise ValueError(f"mus has shape {mus.shape}; expected (M,) with M ≥ 1, a list of locations")
    return np.stack([location_family(m, width).probs() for m in mus])


def restricted_flow(log_p, divergence, mu0: float = 1.2, steps: int = 300, lr: float = 0.5, *,
                    width: float = 0.5, max_dtheta: float = 0.02) -> np.ndarray:
    """π along the exact f-DPG gradient flow of the location family from μ₀; (steps + 1, 3).

    Where the flow stops is the family's best approximation of p under D_f: for a two-mode
    target, reverse KL (mode seeking) ends on one mode, forward KL (mode covering) in
    the middle, spreading mass over both.
    """
    log_p = _check_log_p(log_p)
    div = _divergences.get(divergence)
    steps = check_int(steps, "steps", low=0)
    lr = check_positive_float(lr, "lr")
    max_dtheta = check_positive_float(max_dtheta, "max_dtheta")
    target = _targets.from_log_probs(log_p, log_p)
    return _flow(location_family(mu0, width), target, div, steps, lr, max_dtheta)


#: Largest grid of :func:`simplex_grid` (resolution² points; 2000² is about 100 MB per array).
MAX_RESOLUTION = 2000
_MAX_SUBSTEPS = 2000  # per recorded interval: a bound on the work, never reached on the simplex


def contour_levels(D: np.ndarray, n: int = 12) -> np.ndarray:
    """n increasing contour levels spread by quantile over the finite values of D (nats)."""
    n = check_int(n, "n", low=2)
    D = as_float_array(D, "D")
    finite = D[np.isfinite(D)]
    if finite.size == 0:
        return np.linspace(0.0, 1.0, n)
    levels = np.unique(np.quantile(finite, np.linspace(0.0, 0.97, n) ** 2))
    return levels if levels.size >= 2 else np.array([finite.min(), finite.min() + 1.0])


# ---------------------------------------------------------------------------- figure data
@dataclass(frozen=True)
class Panel:
    """One divergence on the simplex: D_f(π‖p) over a grid, its contour levels, and the exact
    f-DPG gradient flow from π₀ — everything a simplex figure draws (:func:`toyfdiv.plots.simplex`)."""

    name: str  # the divergence
    X: np.ndarray  # (R, R) grid x in the plane of CORNERS
    Y: np.ndarray  # (R, R) grid y
    D: np.ndarray  # (R, R) D_f(π‖p) there (NaN outside the triangle)
    levels: np.ndarray  # contour levels of D
    path: np.ndarray  # (steps + 1, 3) π along the flow


def _registered_or(divergences) -> list:
    return list(_divergences.registered()) if divergences is None else [_divergences.get(d) for d in divergences]


def panels(log_p, divergences=None, start=None, steps: int = 300, lr: float = 0.5, *,
           resolution: int = 120) -> list[Panel]:
    """[Panel(f) for every f]: grid, contour levels and gradient flow (:func:`gradient_flow`
    from ``start``, default :data:`DEFAULT_START`) per divergence (default: every registered one)."""
    start = DEFAULT_START if start is None else np.asarray(start, dtype=float)
    out = []
    for d in _registered_or(divergences):
        X, Y, D = simplex_grid(log_p, d, resolution=resolution)
        out.append(Panel(d.name, X, Y, D, contour_levels(D), gradient_flow(log_p, d, start, steps=steps, lr=lr)))
    return out


def mode_seeking_ends(log_p=None, divergences=None, *, mu0: float = 1.2, width: float = 0.5, steps: int = 300,
                      lr: float = 0.5) -> dict[str, np.ndarray]:
    """{f: π at the end of the restricted flow (:func:`restricted_flow`)} of the location family
    from μ₀ to the two-mode ``log_p`` (default :data:`BIMODAL_TARGET`); each (3,)."""
    log_p = BIMODAL_TARGET if log_p is None else log_p
    return {d.name: restricted_flow(log_p, d, mu0, steps=steps, lr=lr, width=width)[-1]
            for d in _registered_or(divergences)}
