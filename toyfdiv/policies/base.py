"""The policy contract shared by every model of a distribution over a sequence space."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod

import numpy as np
from scipy.special import logsumexp

from .._util import (as_float_array, check_int, check_positive_float, check_rng, check_sample_size, check_space,
                     sample_index)
from ..space import SequenceSpace

__all__ = ["FlatParameters", "Policy", "gaussian_init"]


def gaussian_init(n_params: int, seed: int, init_scale: float) -> np.ndarray:
    """θ0 ∼ N(0, init_scale²)^P from ``np.random.default_rng(seed)``: the initial logits of
    every softmax-table policy (init_scale = 0: uniform conditionals)."""
    check_int(seed, "seed", low=0)
    init_scale = check_positive_float(init_scale, "init_scale", allow_zero=True)
    with np.errstate(over="ignore"):  # checked just below, naming init_scale
        theta = init_scale * np.random.default_rng(seed).standard_normal(n_params)
    if not np.isfinite(theta).all():
        raise ValueError(f"init_scale={init_scale!r} is out of range: the initial logits overflow float64; "
                         "allowed: init_scale ≤ 1e300 (and ≤ 10 in practice)")
    return theta


def _normalised(lp: np.ndarray, policy) -> np.ndarray:
    """``lp`` if Σ exp(lp) = 1 to 1e-12; renormalised if only rounding broke that (logits so large,
    e.g. θ ~ 10¹⁶, that log-softmax keeps only their differences); a ValueError naming the
    parameters if a log-probability is NaN or +inf (the logits overflowed float64)."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.exp(lp).sum())
    if abs(total - 1.0) <= 1e-12:
        return lp
    if not (np.isfinite(total) and total > 0) or np.isnan(lp).any() or np.isposinf(lp).any():
        big = float(np.max(np.abs(policy._theta), initial=0.0))
        raise ValueError(f"params give {type(policy).__name__} log-probabilities that are NaN or +inf (the "
                         f"logits overflow float64; the largest |θ| is {big:.3g}); allowed: parameters small "
                         "enough for finite logits — lower the learning rate or the init_scale")
    with np.errstate(divide="ignore"):
        return lp - np.log(total) if abs(np.log(total)) < 1e-3 else lp - logsumexp(lp)


def _checked_gradient(method):
    """Σ_x w(x) ∇θ log πθ(x) with overflow caught: a ValueError naming w and the parameters, not inf/NaN."""
    @functools.wraps(method)
    def grad_log_prob_weighted(self, w):
        with np.errstate(over="ignore", invalid="ignore"):
            g = method(self, w)
        if not np.isfinite(g).all():
            big = float(np.max(np.abs(self._theta), initial=0.0))
            raise ValueError(f"w (largest |w| = {float(np.max(np.abs(w), initial=0.0)):.3g}) and params (largest "
                             f"|θ| = {big:.3g}) give a gradient that overflows float64; allowed: weights and "
                             "parameters whose gradient is finite — lower the learning rate or rescale w")
        return g
    return grad_log_prob_weighted


class FlatParameters:
    """θ, a flat float64 vector held in ``_theta`` (set once, read-only): the part of the policy
    contract that the one loop and the fixed-point solvers read — :class:`Policy` and the prompted
    policies of :mod:`toyfdiv.rl.shared` alike."""

    _theta: np.ndarray

    @property
    def params(self) -> np.ndarray:
        """θ as a flat float64 copy, shape (P,)."""
        return self._theta.copy()

    @property
    def n_params(self) -> int:
        return self._theta.size


class Policy(FlatParameters, ABC):
    """πθ over the sequences of a :class:`SequenceSpace`; immutable.

    A policy is a parameter vector θ (flat float64, shape (P,)) plus a fixed architecture.
    ``with_params`` returns a new policy; nothing mutates.  Subclasses implement
    :meth:`_log_probs` (exact, over the whole space) and :meth:`grad_log_prob_weighted`.
    """

    def __init_subclass__(cls, **kwargs):
        """Every family's ``grad_log_prob_weighted`` is checked: an overflow names the parameters."""
        super().__init_subclass__(**kwargs)
        if "grad_log_prob_weighted" in cls.__dict__:
            cls.grad_log_prob_weighted = _checked_gradient(cls.__dict__["grad_log_prob_weighted"])

    def __init__(self, space: SequenceSpace, theta: np.ndarray, n_params: int):
        """``n_params``: P, the size this architecture needs on ``space`` (each subclass computes
        it from its own settings — order, config, features — and passes it here; θ is checked
        against it)."""
        check_space(space)
        if theta is None:
            raise ValueError(f"params=None; {type(self).__name__} needs a parameter vector of shape ({n_params},)")
        theta = np.array(as_float_array(theta, "params"), dtype=np.float64).reshape(-1)
        if theta.shape != (n_params,):
            raise ValueError(f"params has shape {theta.shape}; {type(self).__name__} on this space needs ({n_params},)")
        with np.errstate(over="ignore", invalid="ignore"):
            total = theta.sum()
        if not np.isfinite(total) and not np.isfinite(theta).all():  # the sum: one cheap pass
            bad = int(np.flatnonzero(~np.isfinite(theta))[0])
            raise ValueError(f"params[{bad}] = {theta[bad]} is not finite; parameters must be finite")
        theta.setflags(write=False)
        self._space = space
        self._theta = theta
        self._cache: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ contract
    @property
    def space(self) -> SequenceSpace:
        return self._space

    @abstractmethod
    def with_params(self, theta: np.ndarray) -> "Policy":
        """A new policy of the same architecture with parameters θ."""

    @abstractmethod
    def _log_probs(self) -> np.ndarray:
        """(N,) exact normalised log πθ(x) over the space."""

    @abstractmethod
    def grad_log_prob_weighted(self, w: np.ndarray) -> np.ndarray:
        """Σ_x w(x) ∇θ log πθ(x), exact over the space; w (N,) → (P,)."""

    def log_probs(self) -> np.ndarray:
        """(N,) exact normalised log πθ(x) over the space (read-only, computed once)."""
        if "log_probs" not in self._cache:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is caught by _normalised, by name
                lp = self._log_probs()
            lp = _normalised(lp, self)
            lp.setflags(write=False)
            self._cache["log_probs"] = lp
        return self._cache["log_probs"]

    def probs(self) -> np.ndarray:
        """(N,) πθ(x) = exp(log πθ(x))."""
        return np.exp(self.log_probs())

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) indices x_i ∼ πθ, i.i.d., by inverse-CDF over the enumerated space."""
        n = check_sample_size(n, self.space, 24)  # uniforms, indices, their search
        rng = check_rng(rng)
        return sample_index(self.probs(), n, rng)

    def log_prob_at(self, idx: np.ndarray) -> np.ndarray:
        """(n,) log πθ(x_i) for sequence indices ``idx``."""
        return self.log_probs()[self._check_idx(idx)]

    def grad_log_prob_at(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Σ_i w_i ∇θ log πθ(x_i) for samples ``idx`` (n,) with weights ``w`` (n,) → (P,)."""
        idx = self._check_idx(idx)
        w = np.asarray(w, dtype=float)
        if w.shape != idx.shape:
            raise ValueError(f"w has shape {w.shape}; expected {idx.shape}, one weight per sample")
        return self.grad_log_prob_weighted(np.bincount(idx, weights=w, minlength=self.space.size))

    def _required(self, theta):
        """θ for ``with_params``: None would silently mean "initialise afresh", so it is refused."""
        if theta is None:
            raise ValueError(f"theta=None; with_params needs a parameter vector of shape ({self.n_params},)")
        return theta

    def _check_w(self, w) -> np.ndarray:
        w = as_float_array(w, "w")
        if w.shape != (self.space.size,):
            raise ValueError(f"w has shape {w.shape}; expected ({self.space.size},), one weight per sequence")
        if not np.all(np.isfinite(w)):
            raise ValueError("w contains NaN or inf; weights must be finite")
        return w

    def _check_idx(self, idx) -> np.ndarray:
        idx = np.asarray(idx)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"idx must be a 1-d integer array of sequence indices, got {idx.dtype} {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.space.size):
            raise ValueError(f"idx has entries outside 0 … {self.space.size - 1}")
        return idx

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space!r}, P={self.n_params})"
