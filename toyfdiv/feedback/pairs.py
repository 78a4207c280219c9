"""The pair-loss kernel shared by DPO, f-DPO, χ²PO and IPO: the per-pair loss is passed in.

On a dataset of n pairs (w_i ≻ l_i) with weights ω_i, and on the population with the mass
m(x, y) of the pair "x beats y",

    L = Σ_i ω_i ℓ(h(w_i) − h(l_i)),     ∂L/∂h(x) = Σ_i ω_i ℓ'(Δ_i) (1[x = w_i] − 1[x = l_i])
    L = Σ_{x,y} m(x,y) ℓ(h(x) − h(y)),  ∂L/∂h(x) = Σ_y m(x,y) ℓ'(d_xy) − Σ_y m(y,x) ℓ'(d_yx)

with h the method's log-ratio (DPO: log π − log π_ref; f-DPO: f'(π/π_ref); χ²PO:
t + log t) and ℓ the margin loss: :class:`Logistic` (−log σ(β Δ), DPO, f-DPO, χ²PO with
its clip) or :class:`Squared` ((Δ − target)², IPO).  A margin loss returns ℓ(Δ) and
ℓ'(Δ) = c · w(Δ) as (ℓ, w, c) with c a constant: the kernel bins ω·w and multiplies once
by c, the arithmetic DPO always had (so its numbers are unchanged bit for bit).

References: Rafailov et al. (2023), eq. 7 (DPO); Wang et al. (2023), eq. 9 (f-DPO); Huang
et al. (2024), Alg. 1 (χ²PO); Azar et al. (2023), eq. 15 and 17 (IPO).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import expit, log_expit

from .._util import as_float_array, check_log_probs, check_positive_float, check_vector

__all__ = ["Logistic", "Squared", "pair_loss", "population_pair_loss", "bt_pair_mass"]

#: ℓ(Δ) → (value ℓ(Δ), weight w(Δ), constant c) with ℓ'(Δ) = c · w(Δ); arrays of Δ's shape
MarginLoss = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, float]]


@dataclass(frozen=True)
class Logistic:
    """ℓ(Δ) = −log σ(clip_{2R}(β Δ)),  ℓ'(Δ) = −β σ(−β Δ) 1[|β Δ| < 2R]  (R = ``clip``; None: no clip).

    DPO and f-DPO (no clip); χ²PO clips the scaled margin to [−2R, 2R] (Huang et al. 2024, Alg. 1),
    where the gradient is 0.
    """

    beta: float
    clip: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "beta", check_positive_float(self.beta, "beta"))
        if self.clip is not None:
            object.__setattr__(self, "clip", check_positive_float(self.clip, "clip"))

    def __call__(self, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        d = self.beta * delta  # scaled margins
        if self.clip is None:
            return -log_expit(d), expit(-d), -self.beta
        dc = np.clip(d, -2 * self.clip, 2 * self.clip)
        return -log_expit(dc), np.where(np.abs(d) < 2 * self.clip, expit(-dc), 0.0), -self.beta


@dataclass(frozen=True)
class Squared:
    """ℓ(Δ) = (Δ − target)², ℓ'(Δ) = 2 (Δ − target); ``target`` a float or an array broadcasting with Δ.

    IPO: target 1/(2τ) on a dataset, (P(x ≻ y) − ½)/τ per pair on the population (Azar et al. 2023).
    """

    target: float | np.ndarray

    def __post_init__(self):
        t = as_float_array(self.target, "target")
        if not np.all(np.isfinite(t)):
            raise ValueError(f"target={self.target!r} must be finite: the margin each pair is pulled to")
        object.__setattr__(self, "target", float(t) if t.ndim == 0 else t)

    def __call__(self, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        e = delta - self.target  # residuals
        return e * e, e, 2.0


def _check_h(h) -> np.ndarray:
    h = as_float_array(h, "h")
    if h.ndim != 1 or not np.all(np.isfinite(h)):
        raise ValueError(f"h must be a finite vector (N,) of log-ratios; got shape {h.shape}")
    return h


def _indices(x, name: str, n: int) -> np.ndarray:
    """Sequence indices (k,) in 0 … n − 1, or a ValueError naming ``name``."""
    arr = np.asarray(x) if isinstance(x, (list, tuple, np.ndarray)) else None
    if arr is None or arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"{name}={x!r:.80} must be a list of integer sequence indices in 0 … {n - 1}")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise ValueError(f"{name} has an index {int(arr.min() if arr.min() < 0 else arr.max())} outside 0 … {n - 1}")
    return arr.astype(np.intp)


def pair_loss(margin_loss: MarginLoss, h, winners, losers, weights=None) -> tuple[float, np.ndarray]:
    """L = Σ_i ω_i ℓ(h(w_i) − h(l_i)) (ω = 1/n by default) and ∂L/∂h (N,); ``margin_loss`` as in the module docstring.

    Shapes: h (N,); winners, losers (n,) indices; weights (n,) or None.
    """
    if not callable(margin_loss):
        raise ValueError(f"margin_loss={margin_loss!r} must be a margin loss, e.g. Logistic(beta) or Squared(target)")
    h = _check_h(h)
    winners, losers = _indices(winners, "winners", h.size), _indices(losers, "losers", h.size)
    if winners.shape != losers.shape or winners.size == 0:
        raise ValueError(f"winners and losers have shapes {winners.shape} and {losers.shape}; expected equal (n,), n ≥ 1")
    delta = h[winners] - h[losers]
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            value, w, c = margin_loss(delta)  # (n,) each
        except ValueError as err:  # e.g. a Squared target of another shape
            raise ValueError(f"margin_loss={margin_loss!r:.80} cannot take {delta.size} margins: {err}") from None
    value, w = np.broadcast_arrays(value, w)
    if value.shape != delta.shape:
        raise ValueError(f"margin_loss={margin_loss!r:.80} gives shape {value.shape} on {delta.size} pairs; "
                         "expected one loss per pair")
    if not (np.all(np.isfinite(value)) and np.all(np.isfinite(w))):
        raise ValueError(f"h gives margins up to |Δ| = {np.abs(delta).max():.3g} whose loss overflows float64 under "
                         f"margin_loss={margin_loss!r:.80}; allowed: margins with a finite loss")
    omega = np.full(value.shape, 1.0 / value.size) if weights is None else as_float_array(weights, "weights")
    if omega.shape != value.shape or not np.all(np.isfinite(omega)):
        raise ValueError(f"weights has shape {omega.shape}; expected finite values of shape {value.shape}, one per pair")
    s = omega * w
    n = h.size
    return _finite(float((omega * value).sum()), c * (np.bincount(winners, s, n) - np.bincount(losers, s, n)))


def _finite(loss: float, grad: np.ndarray) -> tuple[float, np.ndarray]:
    if not (np.isfinite(loss) and np.all(np.isfinite(grad))):
        raise ValueError("h, the weights and the margin loss give a loss or gradient that overflows float64; allowed: "
                         "smaller margins h(w) − h(l), weights or beta")
    return loss, grad


def population_pair_loss(margin_loss: MarginLoss, h, mass) -> tuple[float, np.ndarray]:
    """L = Σ_{x,y} m(x,y) ℓ(h(x) − h(y)) and ∂L/∂h (N,); m (N, N) the mass of the pair "x beats y"."""
    if not callable(margin_loss):
        raise ValueError(f"margin_loss={margin_loss!r} must be a margin loss, e.g. Logistic(beta) or Squared(target)")
    h = _check_h(h)
    m = as_float_array(mass, "mass")
    if m.shape != (h.size, h.size):
        raise ValueError(f"mass has shape {m.shape}; expected ({h.size}, {h.size}), m[x, y] = mass of 'x beats y'")
    if not np.all(np.isfinite(m)):
        raise ValueError("mass has NaN or inf entries; expected the finite mass of each ordered pair")
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            value, w, c = margin_loss(h[:, None] - h[None, :])  # (N, N) each
        except ValueError as err:
            raise ValueError(f"margin_loss={margin_loss!r:.80} cannot take an ({h.size}, {h.size}) margin table: "
                             f"{err}") from None
        s = m * w
        return _finite(float((m * value).sum()), c * (s.sum(axis=1) - s.sum(axis=0)))


def bt_pair_mass(reward, log_q) -> np.ndarray:
    """m(x, y) = [q(x,y) + q(y,x)] σ(r(x) − r(y)), (N, N): the probability that a dataset pair is (winner x, loser y).

    A pair drawn as (x, y) or as (y, x) (q (N, N) the ordered-pair probabilities, in log space) is
    labelled "x ≻ y" with the Bradley–Terry probability σ(r(x) − r(y)); Σ m = 1 when Σ q = 1.
    """
    r = check_vector(reward, "reward")
    lq = as_float_array(log_q, "log_q")
    if lq.shape != (r.size, r.size):
        raise ValueError(f"reward has shape {r.shape} and log_q {lq.shape}; expected (N,) and (N, N)")
    q = np.exp(check_log_probs(lq.ravel(), None, "log_q")).reshape(lq.shape)  # (N, N) ordered pair draws
    return (q + q.T) * expit(r[:, None] - r[None, :])
