"""f-DPG, the public face: the gradient of D_f(πθ ‖ p), exact and estimated from samples.

    ∇θ D_f(πθ ‖ p) = E_{x∼πθ}[ f'(πθ(x)/p(x)) ∇θ log πθ(x) ]          (Go et al. 2023, eq. 4)

One namespace for the three layers that compute it, each in its own module below this one:

- :mod:`toyfdiv.exact` — the exact gradient over the space (:func:`exact_gradient`,
  :func:`gradient_weights`) and the classical RLHF and DPG gradients it unifies;
- :mod:`toyfdiv.estimators` — the Monte-Carlo estimators disco and TRL use
  (:func:`sampled_estimate`, :func:`sampled_gradient`), with the same signature;
- :mod:`toyfdiv.estimator_lab` — many independent estimates held against the exact one
  (:func:`estimator_stats`, :func:`sample_estimates`).

Nothing is defined here: the names are those modules' own objects.
"""

from __future__ import annotations

from .divergences import as_divergence
from .estimator_lab import estimator_stats, sample_estimates
from .estimators import Estimate, EstimatorState, rlhf_reinforce_gradient, sampled_estimate, sampled_gradient
from .exact import check_pair, dpg_gradient, exact_gradient, gradient_weights, rlhf_gradient

__all__ = ["gradient_weights", "exact_gradient", "rlhf_gradient", "dpg_gradient", "as_divergence", "check_pair",
           "sampled_estimate", "sampled_gradient", "estimator_stats", "Estimate", "EstimatorState",
           "rlhf_reinforce_gradient", "sample_estimates"]
