"""The log-linear (exponential-family) policy: πθ(x) ∝ exp(b(x) + θ·ψ(x)).

A capacity knob that is easy to see: with K fixed features ψ the policy has K parameters,
however large the space, so most targets lie outside the family and each divergence picks
its own compromise (mode seeking or mode covering).
"""

from __future__ import annotations

import numpy as np

from .._util import as_float_array, check_space
from ..space import SequenceSpace
from .base import Policy

__all__ = ["LogLinearPolicy"]


class LogLinearPolicy(Policy):
    """πθ(x) = exp(b(x) + θ·ψ(x)) / Σ_y exp(b(y) + θ·ψ(y)),  θ ∈ R^K.

    Args:
      space: the sequence space.
      features: ψ, (N, K) fixed features.
      offset: b, (N,) fixed log-weights (default 0): e.g. a base model's log-probs, or
        −k²/2s² for a discretised Gaussian whose location is θ s².
      params: θ, (K,) (default 0).

    ∇θ log πθ(x) = ψ(x) − E_πθ[ψ], so Σ_x w(x) ∇θ log πθ(x) = ψᵀw − (Σ_x w(x)) ψᵀπθ.
    """

    def __init__(self, space: SequenceSpace, features, *, offset=None, params=None):
        check_space(space)
        psi = np.array(as_float_array(features, "features"), dtype=float)
        if psi.ndim != 2 or psi.shape[0] != space.size or psi.shape[1] == 0:
            raise ValueError(f"features has shape {psi.shape}; expected ({space.size}, K) with K ≥ 1")
        if not np.all(np.isfinite(psi)):
            raise ValueError("features must be finite")
        b = np.zeros(space.size) if offset is None else np.array(as_float_array(offset, "offset"), dtype=float)
        if b.shape != (space.size,):
            raise ValueError(f"offset has shape {b.shape}; expected ({space.size},), one log-weight per sequence")
        if np.isnan(b).any() or np.isposinf(b).any() or np.isneginf(b).all():
            raise ValueError("offset must lie in [-inf, inf) with at least one finite entry "
                             "(NaN, +inf or all -inf leave no distribution)")
        psi.setflags(write=False)
        b.setflags(write=False)
        self._psi, self._offset = psi, b
        super().__init__(space, np.zeros(psi.shape[1]) if params is None else params, psi.shape[1])

    @property
    def features(self) -> np.ndarray:
        return self._psi

    def with_params(self, theta) -> "LogLinearPolicy":
        return LogLinearPolicy(self.space, self._psi, offset=self._offset, params=self._required(theta))

    def _log_probs(self) -> np.ndarray:
        z = self._offset + self._psi @ self._theta  # (N,)
        z = z - z.max()
        return z - np.log(np.exp(z).sum())

    def grad_log_prob_weighted(self, w: np.ndarray) -> np.ndarray:
        """Σ_x w(x) ∇θ log πθ(x) = ψᵀw − (Σ_x w(x)) ψᵀπθ; (K,)."""
        w = self._check_w(w)
        return self._psi.T @ w - w.sum() * (self._psi.T @ self.probs())
