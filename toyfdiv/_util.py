"""Small shared helpers: argument checks with clear messages, and log-space kernels."""

from __future__ import annotations

import numbers
import reprlib

import numpy as np
from scipy.special import logsumexp

from .space import SequenceSpace

__all__ = ["check_rng", "check_int", "check_positive_float", "check_finite_float", "check_space", "as_float_array",
           "check_log_probs", "log_softmax_rows", "softmax_rows"]


def check_rng(rng, name: str = "rng") -> np.random.Generator:
    """Return ``rng`` if it is a ``np.random.Generator``; randomness is always explicit."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"{name}={rng!r} must be a numpy Generator, e.g. np.random.default_rng(0)"
        )
    return rng


def check_int(value, name: str, low: int = 1, high: int | None = None) -> int:
    """Return ``value`` as int if it is an integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} must be an integer ≥ {low}")
    if value < low or (high is not None and value > high):
        allowed = f"≥ {low}" if high is None else f"in {low} … {high}"
        raise ValueError(f"{name}={value!r} is out of range; allowed: {allowed}")
    return int(value)


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
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a real number")
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name}={value!r} must be finite and {'≥' if allow_zero else '>'} 0")
    return v


def check_finite_float(value, name: str) -> float:
    """Return ``value`` as float if it is a finite real number (any sign)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite real number")
    return float(value)


def check_choice(value, name: str, allowed) -> str:
    """``value`` if it is one of the strings ``allowed``, else a ValueError naming the choices."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is unknown; allowed: {list(allowed)}")
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
    """``np.asarray(x, dtype=float)``, with a ValueError naming ``name`` for text, None-filled or complex input."""
    try:
        if x is None or np.iscomplexobj(x):
            raise TypeError
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        text = repr(x) if len(repr(x)) <= 60 else repr(x)[:57] + "..."
        raise ValueError(f"{name}={text} must be real numbers") from None


def check_log_probs(log_p, size: int, name: str, *, atol: float = 1e-8) -> np.ndarray:
    """Validate a normalised log-probability vector of shape (size,); −inf marks zeros."""
    arr = as_float_array(log_p, name)
    if arr.shape != (size,):
        raise ValueError(f"{name} has shape {arr.shape}; expected ({size},), one entry per sequence")
    if np.isnan(arr).any() or np.isposinf(arr).any():
        raise ValueError(f"{name} contains NaN or +inf; log-probabilities must lie in [-inf, 0]")
    total = logsumexp(arr)
    if not abs(total) <= atol:
        raise ValueError(f"{name} is not normalised: logsumexp = {total:.3g}; expected 0 (±{atol:g})")
    return arr


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
