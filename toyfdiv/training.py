"""f-DPG training: θ_{k+1} = opt(θ_k, ∇̂θ D_f(πθ_k ‖ p)) by the one loop, :func:`optimise`.

Exported as ``toyfdiv.train``; the module is called ``training`` so that the function does
not shadow it.  :func:`optimise` and :class:`History` (defined in :mod:`toyfdiv.loop`, a
lower layer that pretraining also uses) are re-exported here.
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from . import divergences, fdpg, metrics
from ._util import check_int
from .estimators import sampled_estimate
from .loop import SCHEDULES, History, optimise
from .policies.base import Policy
from .targets import Target

__all__ = ["History", "optimise", "train", "ESTIMATORS", "SCHEDULES", "SAMPLED_OPTIONS"]

ESTIMATORS = ("exact", "sampled")
#: keyword options of :func:`toyfdiv.fdpg.sampled_estimate` that ``train`` passes through
#: (read from its signature; rng and state are managed by the loop)
SAMPLED_OPTIONS = tuple(name for name, p in inspect.signature(sampled_estimate).parameters.items()
                        if p.kind is p.KEYWORD_ONLY and name not in ("rng", "state"))


def train(
    policy: Policy,
    target: Target,
    divergence,
    steps: int = 300,
    lr: float = 0.1,
    optimizer: str = "adam",
    estimator: str = "exact",
    seed: int = 0,
    *,
    schedule: str = "constant",
    lr_final: float | None = None,
    record_every: int = 1,
    callback: Callable[[int, int], None] | None = None,
    **estimator_options,
) -> History:
    """Minimise D_f(πθ ‖ p) over θ from ``policy`` for ``steps`` updates.

    Args:
      policy: the starting policy (e.g. the base model, or a fresh one).
      target: the target p.
      divergence: an FDivergence or its name.
      steps, lr, optimizer: the optimisation ("adam" or "sgd").
      estimator: "exact" (the gradient summed over the space) or "sampled" (Monte-Carlo
        f-DPG, :func:`toyfdiv.fdpg.sampled_gradient`, with ``estimator_options`` such as n,
        baseline, proposal).
      seed: seeds the sampler (the only randomness; exact runs are deterministic).
      schedule: "constant", "cosine" (to ``lr_final`` or 0) or "exponential" (to
        ``lr_final`` or lr/1000).
      record_every: record metrics every k updates (and always at the end).
      callback: called as callback(k, steps) after each update (progress bars).
    Returns:
      a :class:`History`.
    Raises:
      ValueError for bad arguments, and (naming the step, the quantity and the remedy) if the
      gradient or the parameters stop being finite or D_f grows by orders of magnitude.
    """
    div = fdpg.as_divergence(divergence)
    fdpg.check_pair(policy, target)
    check_int(seed, "seed", low=0)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r} is unknown; allowed: {list(ESTIMATORS)}")
    if estimator == "exact" and estimator_options:
        raise ValueError(f"options {sorted(estimator_options)} only apply to estimator='sampled'")
    unknown = sorted(set(estimator_options) - set(SAMPLED_OPTIONS))
    if unknown:
        raise ValueError(f"estimator options {unknown} are unknown; allowed: {list(SAMPLED_OPTIONS)} "
                         "(rng and state are managed by train: seed it with seed=)")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback={callback!r} must be a function callback(k, steps), or None")
    tracked = divergences.registered()  # built once: every record evaluates all of them
    if div.name not in {d.name for d in tracked}:
        tracked = (*tracked, div)  # the minimised f is always recorded, e.g. "alpha(0.3)"
    exact = {}  # the exact gradient at the policy last recorded: its norm is a metric, and the
    #             exact estimator's update at that same policy reuses it

    def record(pol):
        g = exact["g"] = fdpg.exact_gradient(pol, target, div)
        exact["policy"] = pol
        row = metrics.evaluate(pol.log_probs(), target, tracked)
        row["grad_norm"] = float(np.linalg.norm(g))
        return row

    def exact_update(pol, rng):
        return (exact["g"] if exact.get("policy") is pol else fdpg.exact_gradient(pol, target, div)), {}

    est_state = None  # the sampled estimator's explicit state (running Ẑ, baselines, proposal)

    def sampled_update(pol, rng):
        nonlocal est_state
        est = sampled_estimate(pol, target, div, rng=rng, state=est_state, **estimator_options)
        est_state = est.state
        return est.gradient, {f"estimator/{key}": v for key, v in est.diagnostics.items()}

    config = dict(divergence=div.name, steps=steps, lr=lr, optimizer=optimizer, estimator=estimator,
                  seed=seed, schedule=schedule, lr_final=lr_final, target=target.name, **estimator_options)
    return optimise(policy, exact_update if estimator == "exact" else sampled_update, steps=steps, lr=lr,
                    optimizer=optimizer, schedule=schedule, lr_final=lr_final, record=record,
                    record_every=record_every, callbacks=() if callback is None else (callback,), seed=seed,
                    label=div.name, config=config, loss_key=f"divergence/{div.name}")
