"""Length drift: how an update moves the expected length of right and wrong answers.

For a reward that reads only the first token y_1 (the answer), the expected length given
the answer, L(v) = E_π[|y| | y_1 = v], is what a length-neutral update should leave alone.
Along the update direction Δθ = −u (u the gradient of the minimised loss), the class drift

    D_r = Σ_{v: r(v) = r} (π(v) / P(r)) ⟨∇θ L(v), −u⟩,
    ∇θ L(v) = Σ_{y: y_1 = v} (π(y)/π(v)) (|y| − L(v)) ∇θ log π(y),

is the first-order change of the expected length of the answers of reward r.  Dr. GRPO's
update is c ∇θ p, which moves only the first token's conditional: D_r = 0 exactly.  GRPO's
1/|y| weight gives D_right < 0 < D_wrong (Liu et al. 2025, Fig. 1).
"""

from __future__ import annotations

import numpy as np

from .algorithms import Algorithm
from .expected import expected_update, policies_of

__all__ = ["length_drift"]


def length_drift(alg: Algorithm, policy, task, G: int = 8, **options) -> dict[float, float]:
    """{reward value: D_r} for a one-prompt task, exactly (module docstring); options go to expected_update."""
    (pol,) = policies_of(policy)
    if len(task.prompts) != 1:
        raise ValueError(f"length_drift takes a one-prompt task (task.single(c)); got {len(task.prompts)} prompts")
    u = expected_update(alg, pol, task, G, **options).gradient
    pi, lengths, first, r = pol.probs(), task.space.lengths.astype(float), task.first_tokens, task.reward[0]
    out = {}
    for value in np.unique(r):
        cls = r == value
        w = np.zeros_like(pi)
        for v in np.unique(first[cls]):
            branch = first == v
            pv = pi[branch].sum()
            w[branch] = pi[branch] * (lengths[branch] - pi[branch] @ lengths[branch] / pv)
        w /= pi[cls].sum()
        out[float(value)] = float(pol.grad_log_prob_weighted(w) @ (-u))
    return out
