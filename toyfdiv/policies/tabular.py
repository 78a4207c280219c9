"""The tabular policy: one logit per sequence, πθ = softmax(θ)."""

from __future__ import annotations

import numpy as np

from .._util import check_space, check_log_probs
from ..space import SequenceSpace
from .base import Policy, gaussian_init

__all__ = ["TabularPolicy"]


class TabularPolicy(Policy):
    """πθ(x) = exp θ_x / Σ_y exp θ_y: the most expressive policy, P = N parameters.

    Args:
      space: the sequence space.
      seed: seeds the initial logits θ ∼ N(0, init_scale²).
      init_scale: standard deviation of the initial logits (0 gives the uniform policy).
      params: explicit θ (N,), overriding seed and init_scale.
    """

    def __init__(self, space: SequenceSpace, seed: int = 0, *, init_scale: float = 0.1, params=None):
        check_space(space)
        if params is None:
            params = gaussian_init(space.size, seed, init_scale)
        super().__init__(space, params, self.n_params_for(space))

    @classmethod
    def n_params_for(cls, space: SequenceSpace) -> int:
        return space.size

    @classmethod
    def from_log_probs(cls, space: SequenceSpace, log_pi: np.ndarray) -> "TabularPolicy":
        """The tabular policy with πθ = π exactly (θ = log π); π must have full support."""
        log_pi = check_log_probs(log_pi, check_space(space).size, "log_pi")
        if np.isneginf(log_pi).any():
            raise ValueError("log_pi has zero-probability sequences; a softmax policy needs full support")
        return cls(space, params=log_pi)

    def with_params(self, theta: np.ndarray) -> "TabularPolicy":
        return TabularPolicy(self.space, params=self._required(theta))

    def _log_probs(self) -> np.ndarray:
        theta = self._theta
        shifted = theta - theta.max()
        return shifted - np.log(np.exp(shifted).sum())

    def grad_log_prob_weighted(self, w: np.ndarray) -> np.ndarray:
        """Σ_x w(x) ∇θ log πθ(x) = w − (Σ_x w(x)) πθ, since ∂ log π_x / ∂θ_y = δ_xy − π_y."""
        w = self._check_w(w)
        return w - w.sum() * self.probs()
