"""Small shared helpers: argument checks with clear messages, and log-space kernels."""

from __future__ import annotations

import math
import numbers
import reprlib

import numpy as np
from scipy.special import logsumexp

from .space import SequenceSpace

__all__ = ["check_rng", "check_int", "check_real", "check_positive_float", "check_finite_float", "check_choice",
           "check_instance", "check_space", "as_float_array", "check_vector", "check_log_probs", "check_sample_size",
           "log_softmax_rows", "softmax_rows"]

# Every check returns the value it accepted (converted: int, float, a fresh float64 array) and
# otherwise raises a ValueError of one shape: "<argument>=<value, shortened> <what is wrong>;
# allowed: <what is>".  ``name`` is always the name of the argument the caller's user passed.


def check_rng(rng, name: str = "rng") -> np.random.Generator:
    """Return ``rng`` if it is a ``np.random.Generator``; randomness is always explicit."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"{name}={rng!r} must be a numpy Generator, e.g. np.random.default_rng(0)"
        )
    return rng


def check_int(value, name: str, low: int = 1, high: int | None = None, *, optional: bool = False) -> int | None:
    """Return ``value`` as int if it is an integer in [low, high] (None too, if ``optional``)."""
    if optional and value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={reprlib.repr(value)} must be an integer ≥ {low}{' or None' if optional else ''}")
    if value < low or (high is not None and value > high):
        allowed = f"≥ {low}" if high is None else f"in {low} … {high}"
        raise ValueError(f"{name}={reprlib.repr(value)} is out of range; allowed: {allowed}")
    return int(value)


def check_real(value, name: str, low: float = -math.inf, high: float = math.inf, *, open_low: bool = False,
               open_high: bool = False, optional: bool = False) -> float | None:
    """Return ``value`` as float if it is a finite real number in the interval from ``low`` to ``high``
    (open at an end with ``open_low`` / ``open_high``; None too, if ``optional``).

    Python ints beyond the float range (10**400) are refused here, not by a numpy TypeError.
    """
    if optional and value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={reprlib.repr(value)} must be a finite real number{' or None' if optional else ''}")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf if value > 0 else -math.inf
    if not math.isfinite(v):
        raise ValueError(f"{name}={reprlib.repr(value)} must be a finite real number")
    if v < low or v > high or (open_low and v == low) or (open_high and v == high):
        interval = (f"{'(' if open_low or low == -math.inf else '['}{low:g}, "
                    f"{high:g}{')' if open_high or high == math.inf else ']'}")
        raise ValueError(f"{name}={reprlib.repr(value)} is out of range; allowed: {interval}")
    return v


def check_sample_size(n, space, bytes_per_sample: int) -> int:
    """Return ``n`` as an int ≥ 1 if n samples (``bytes_per_sample`` each) fit in ``space.max_bytes``;
    refused before anything is allocated otherwise."""
    n = check_int(n, "n")
    need = n * bytes_per_sample
    if need > space.max_bytes:
        raise ValueError(f"n={n:,} samples need ~{need / 2**30:.1f} GiB, over the space's limit "
                         f"max_bytes = {space.max_bytes / 2**30:.1f} GiB; draw fewer samples, in batches")
    return n


def check_positive_float(value, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float if it is finite and > 0 (or ≥ 0 with ``allow_zero``)."""
    return check_real(value, name, 0.0, open_low=not allow_zero)


def check_finite_float(value, name: str) -> float:
    """Return ``value`` as float if it is a finite real number (any sign)."""
    return check_real(value, name)


def check_choice(value, name: str, allowed) -> str:
    """``value`` if it is one of the strings ``allowed``, else a ValueError naming the choices."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={reprlib.repr(value)} is unknown; allowed: {list(allowed)}")
    return value


def check_instance(value, types, name: str, why: str = ""):
    """Return ``value`` if it is an instance of ``types`` (a class or a tuple of classes);
    otherwise a ValueError naming the argument, its (shortened) value and what is allowed."""
    if not isinstance(value, types):
        allowed = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise ValueError(f"{name}={reprlib.repr(value)} must be a {allowed}{f' ({why})' if why else ''}")
    return value


def check_space(space, name: str = "space"):
    """Return ``space`` if it is a :class:`~toyfdiv.space.SequenceSpace`."""
    return check_instance(space, SequenceSpace, name)


def as_float_array(x, name: str) -> np.ndarray:
    """``np.asarray(x, dtype=float)``, with a ValueError naming ``name`` for text (also numeric
    text such as "1.5"), None-filled, complex or out-of-float-range input."""
    try:
        if x is None or isinstance(x, (str, bytes)):
            raise TypeError
        arr = np.asarray(x)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}={reprlib.repr(x)} must be real numbers") from None
    if arr.dtype.kind in "USVcMm":
        raise ValueError(f"{name} has dtype {arr.dtype}; expected real numbers: {name}={reprlib.repr(x)}")
    try:
        return arr.astype(float, copy=False)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}={reprlib.repr(x)} must be real numbers") from None


def check_vector(x, name: str, size: int | None = None, *, finite: bool = True) -> np.ndarray:
    """A fresh float64 vector of shape (size,) (any (N,), N ≥ 1, if ``size`` is None) from ``x``
    (a list, an array, or anything with ``.values``: a tasks.Signal); NaN and ±inf are refused
    unless ``finite=False``."""
    arr = np.array(as_float_array(getattr(x, "values", x), name), dtype=float)
    if arr.ndim != 1 or arr.size == 0 or (size is not None and arr.shape != (size,)):
        want = f"({size},)" if size is not None else "(N,) with N ≥ 1"
        raise ValueError(f"{name} has shape {arr.shape}; expected {want}, one entry per sequence")
    if finite and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf at {np.flatnonzero(~np.isfinite(arr))[:5].tolist()}; "
                         "allowed: finite values")
    return arr


def check_log_probs(log_p, size: int | None, name: str, *, atol: float = 1e-8) -> np.ndarray:
    """Validate a normalised log-probability vector of shape (size,) (any (N,) if ``size`` is None);
    −inf marks zeros."""
    arr = check_vector(log_p, name, size, finite=False)
    if np.isnan(arr).any() or np.isposinf(arr).any():
        raise ValueError(f"{name} contains NaN or +inf; log-probabilities must lie in [-inf, 0]")
    if arr.size and arr.max() > atol:  # before logsumexp, which overflows on a spread like (1e308, −1e308)
        raise ValueError(f"{name} has a log-probability {arr.max():.6g} > 0; log-probabilities must lie in [-inf, 0]")
    total = logsumexp(arr)
    if not abs(total) <= atol:
        raise ValueError(f"{name} is not normalised: logsumexp({name}) = {total:.3g}; expected 0 (±{atol:g})")
    return arr


def check_reward_scale(reward: np.ndarray, beta: float) -> None:
    """Refuse a reward whose spread over β overflows float64: max r/β − min r/β must stay ≤ 1e300."""
    with np.errstate(over="ignore"):  # a spread past 1.8e308 is inf, and refused
        spread = float(np.ptp(reward)) if reward.size else 0.0
    if not spread <= beta * 1e300:
        raise ValueError(f"reward spans {spread:.3g} and beta={beta!r}: r/β overflows float64; allowed: "
                         "(max r − min r)/β ≤ 1e300; rescale the reward or raise beta")


def log_normalise(scores: np.ndarray, axis: int | None = None) -> np.ndarray:
    """log softmax(s) = (s − m) − log Σ exp(s − m), m = max s: normalised log-probabilities, same shape.

    The shift comes first so that the normaliser is computed on values near 0: at
    |s| ≈ 1e300, ``s − logsumexp(s)`` loses the log 2 of two tied maxima to rounding
    (Σ exp = 2), while ``(s − m) − logsumexp(s − m)`` keeps it.  All −inf along ``axis`` is
    left to the caller (the result is NaN there).
    """
    with np.errstate(invalid="ignore"):
        shifted = scores - np.max(scores, axis=axis, keepdims=axis is not None)
    return shifted - logsumexp(shifted, axis=axis, keepdims=axis is not None)


def sample_index(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """x_i = min{k : Σ_{j≤k} w_j > u_i Σ_j w_j}, u_i ∼ U[0, 1): n i.i.d. indices x_i ∼ w / Σw, (n,).

    Inverse-CDF sampling from non-negative, possibly unnormalised weights w (N,) — the one
    sampler of every enumerated distribution (policies, proposals, raters, pretraining
    minibatches).  Indices are clipped to N − 1 against rounding in u·Σw.
    """
    cdf = np.cumsum(weights)  # (N,)
    return np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), cdf.size - 1)


def log_softmax_rows(logits: np.ndarray) -> np.ndarray:
    """log softmax(z)_v = z_v − log Σ_u exp z_u, row-wise: (n, k) float64 → (n, k).

    A lean version of ``scipy.special.log_softmax(z, axis=1)`` for the hot path
    (:func:`softmax_rows` without the probabilities).
    """
    return np.subtract(logits, softmax_rows(logits, probs=False)[0][:, None])


# Below this spread max(z) − min(z) within a block, one shift keeps every exp in range: the largest
# entry of each row gives exp(·) ≥ e^−600 ≫ the smallest float64, a sum of k ≤ 10⁹ terms stays
# ≤ 10⁹; beyond it each row is shifted by its own maximum (slower: a short-row reduction).
_GLOBAL_SHIFT_SPREAD = 600.0

#: Large arrays are processed in blocks of about this many entries (512 KiB of float64), so
#: that the temporaries of one block stay in the CPU cache: on arrays larger than the cache the
#: passes of numpy's unfused ufuncs are bound by memory traffic, not arithmetic.
BLOCK = 1 << 16


def softmax_rows(logits: np.ndarray, probs: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(log Σ_v exp z_v, softmax(z)) row-wise for (n, k) float64 z: (n,) and (n, k).

        log_z = m + log Σ_v exp(z_v − m),   softmax(z)_v = exp(z_v − m) / Σ_u exp(z_u − m)

    so that log softmax(z) = z − log_z[:, None].  One shift m = max(z) serves a whole block
    of rows when its max(z) − min(z) ≤ 600 (the usual case), else m is the row maximum (the
    textbook guard).  Row sums are matrix-vector products (far faster than short-row
    reductions); one exp per entry, computed in the buffer that becomes the softmax, is the
    only (n, k) allocation.  ``probs=False`` returns None in its place.
    """
    n, k = logits.shape
    log_z = np.empty(n)
    e = np.empty((n, k)) if probs else np.empty((min(n, max(1, BLOCK // k)), k))
    ones = np.ones(k)
    step = max(1, BLOCK // k)
    for start in range(0, n, step):  # a loop over cache-sized blocks of rows, not over rows
        z = logits[start : start + step]  # (b, k)
        eb = e[start : start + step] if probs else e[: len(z)]
        top, bottom = z.max(), z.min()
        if top - bottom <= _GLOBAL_SHIFT_SPREAD:  # also False for NaN: the row-wise path propagates it
            shift = top
        else:
            shift = z.max(axis=1, keepdims=True)  # (b, 1)
        np.subtract(z, shift, out=eb)
        np.exp(eb, out=eb)  # (b, k) exp(z − m)
        total = eb @ ones  # (b,) Σ_v exp(z_v − m)
        lz = log_z[start : start + step]
        np.log(total, out=lz)
        lz += shift if np.ndim(shift) == 0 else shift[:, 0]  # (b,) log Σ_v exp z_v
        if probs:
            np.reciprocal(total, out=total)
            eb *= total[:, None]  # (b, k) softmax, in place
    return log_z, (e if probs else None)
