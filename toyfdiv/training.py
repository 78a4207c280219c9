"""The training loop: θ_{k+1} = opt(θ_k, ∇̂θ D_f(πθ_k ‖ p)), and its History.

Exported as ``toyfdiv.train``; the module is called ``training`` so that the function does
not shadow it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from . import divergences, fdpg, metrics, optim
from ._util import check_int, check_positive_float
from .policies.base import Policy
from .targets import Target

__all__ = ["History", "train", "ESTIMATORS", "SCHEDULES"]

ESTIMATORS = ("exact", "sampled")
SCHEDULES = ("constant", "cosine", "exponential")
#: keyword options of :func:`toyfdiv.fdpg.sampled_estimate` that ``train`` passes through
SAMPLED_OPTIONS = ("n", "proposal", "z", "baseline", "ema_decay", "adaptive_every", "adaptive_kl")


@dataclass(frozen=True)
class History:
    """A finished run: metrics per recorded step, and the final policy.

    Attributes:
      metrics: {name: (R,) array}; R = number of recorded steps, first entry = before any
        update.  Keys: "divergence/<name>" for every registered divergence and the
        minimised one, "kl_from_base",
        "alignment/<key>", "entropy", "effective_sequences", "grad_norm" (norm of the exact
        gradient at that step), "lr"; with the sampled estimator also "estimator/<key>"
        diagnostics, one entry per recorded step that made an update (R − 1 entries).
      step: (R,) the update count of each record.
      policy: the final policy.
      divergence: the name of the divergence that was minimised.
      config: the arguments of the run.
      seconds: wall-clock time of the run.
    """

    metrics: Mapping[str, np.ndarray]
    step: np.ndarray
    policy: Policy
    divergence: str
    config: Mapping[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def final(self) -> dict[str, float]:
        """The last recorded value of every metric."""
        return {k: float(v[-1]) for k, v in self.metrics.items()}

    def __repr__(self) -> str:
        return (f"History(divergence={self.divergence!r}, steps={int(self.step[-1])}, "
                f"final D_f={self.final().get('divergence/' + self.divergence, float('nan')):.3g})")


def _make_schedule(schedule: str, lr: float, steps: int, lr_final: float | None):
    if schedule == "constant":
        return optim.constant(lr)
    if schedule == "cosine":
        return optim.cosine_decay(lr, steps, 0.0 if lr_final is None else lr_final)
    if schedule == "exponential":
        return optim.exponential_decay(lr, steps, lr * 1e-3 if lr_final is None else lr_final)
    raise ValueError(f"schedule={schedule!r} is unknown; allowed: {list(SCHEDULES)}")


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
      ValueError for bad arguments, and if the parameters stop being finite (naming the step).
    """
    div = fdpg.as_divergence(divergence)
    fdpg._check_pair(policy, target)
    steps = check_int(steps, "steps", low=0)
    lr = check_positive_float(lr, "lr")
    record_every = check_int(record_every, "record_every")
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
    if lr_final is not None:
        if schedule == "constant":
            raise ValueError(f"lr_final={lr_final!r} only applies to a decaying schedule; allowed with "
                             f"schedule='cosine' or 'exponential', not 'constant'")
        lr_final = check_positive_float(lr_final, "lr_final", allow_zero=schedule != "exponential")
    sched = _make_schedule(schedule, lr, max(steps, 1), lr_final)
    opt = optim.get(optimizer, sched)
    rng = np.random.default_rng(seed)
    est_state = None  # the sampled estimator's explicit state (running Ẑ, baselines, proposal)

    tracked = divergences.registered()  # built once: every record evaluates all of them
    if div.name not in {d.name for d in tracked}:
        tracked = (*tracked, div)  # the minimised f is always recorded, e.g. "alpha(0.3)"
    theta = policy.params
    state = opt.init(theta)
    records: dict[str, list[float]] = {}
    recorded_steps: list[int] = []
    start = time.perf_counter()
    for k in range(steps + 1):
        record = k % record_every == 0 or k == steps
        exact = fdpg.exact_gradient(policy, target, div) if (record or estimator == "exact") else None
        if record:
            row = metrics.evaluate(policy.log_probs(), target, tracked)
            row["grad_norm"] = float(np.linalg.norm(exact))
            row["lr"] = float(sched(k))
            for key, v in row.items():
                records.setdefault(key, []).append(v)
            recorded_steps.append(k)
        if k == steps:
            break
        if estimator == "exact":
            grad = exact
        else:
            est = fdpg.sampled_estimate(policy, target, div, rng=rng, state=est_state, **estimator_options)
            grad, est_state = est.gradient, est.state
            if record:
                for key, v in est.diagnostics.items():
                    records.setdefault(f"estimator/{key}", []).append(float(v))
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            theta, state = opt.step(theta, grad, state)
        if not np.all(np.isfinite(theta)):
            raise ValueError(
                f"parameters became non-finite at step {k + 1} (lr={sched(k):g}, {div.name}); "
                "lower the learning rate"
            )
        policy = policy.with_params(theta)
        if callback is not None:
            callback(k + 1, steps)
    seconds = time.perf_counter() - start
    hist_metrics = {k: np.asarray(v) for k, v in records.items()}
    config = dict(divergence=div.name, steps=steps, lr=lr, optimizer=optimizer, estimator=estimator,
                  seed=seed, schedule=schedule, lr_final=lr_final, target=target.name, **estimator_options)
    return History(hist_metrics, np.asarray(recorded_steps), policy, div.name, config, seconds)

