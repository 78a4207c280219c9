"""The expected-update table: every preset's expected update against the exact RLHF gradient.

For each algorithm, with u its expected update and g = −∇θ Σ_c ρ(c)(E_π[r] − β KL(π‖a))
the exact gradient of the objective it is meant to follow (its own β; β = 0: E_π[r]):

    cosine = ⟨u, g⟩ / (‖u‖ ‖g‖),   scale = ⟨u, g⟩ / ‖g‖²,   residual = ‖u − scale·g‖ / ‖g‖,

and the Monte-Carlo noise floor ‖s.e.(u)‖ / ‖g‖.  A cosine within the noise of 1 (residual
below 3 × the relative noise floor) means "the exact gradient up to a step size".
"""

from __future__ import annotations

import numpy as np

from .algorithms import PRESETS, Algorithm
from .expected import expected_update, policies_of, reference_gradient

__all__ = ["evaluation_policy", "update_table", "FOLLOWS_THRESHOLD"]

#: a residual below this many relative noise floors (or 1e-9 when exact) counts as following g
FOLLOWS_THRESHOLD = 3.0


def evaluation_policy(task, scale: float = 0.5, seed: int = 0) -> tuple:
    """The base policies moved by θ ← θ + scale·N(0, 1) (seeded): away from a, so the KL terms act."""
    rng = np.random.default_rng(seed)
    return tuple(p.with_params(p.params + scale * rng.standard_normal(p.n_params)) for p in task.base_policies())


def update_table(task, G: int = 8, *, algorithms=None, policy=None, mode: str = "auto", trials: int = 10_000,
                 seed: int = 0) -> list[dict]:
    """One row per algorithm: name, mode, cosine, scale, residual, noise (see the module docstring), follows."""
    algs = list(PRESETS.values()) if algorithms is None else [a if isinstance(a, Algorithm) else PRESETS[a]
                                                               for a in algorithms]
    pols = evaluation_policy(task) if policy is None else policies_of(policy)
    rows = []
    for k, alg in enumerate(algs):
        u = expected_update(alg, pols, task, G, mode=mode, trials=trials, rng=np.random.default_rng(seed + k))
        g = reference_gradient(pols, task, alg.beta)
        gg = float(g @ g)
        scale = float(u.gradient @ g) / gg
        residual = float(np.linalg.norm(u.gradient - scale * g)) / np.sqrt(gg)
        noise = u.noise_floor / np.sqrt(gg)
        cosine = float(u.gradient @ g) / (np.linalg.norm(u.gradient) * np.sqrt(gg))
        follows = residual < (FOLLOWS_THRESHOLD * noise if u.mode == "mc" else 1e-9)
        rows.append(dict(algorithm=alg.name, mode=u.mode, trials=u.trials, cosine=float(cosine), scale=scale,
                         residual=float(residual), noise=float(noise), follows=bool(follows)))
    return rows
