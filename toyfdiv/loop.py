"""The one optimisation loop: θ_{k+1} = opt(θ_k, g_k), g_k = update(πθ_k, rng), and its History.

    for k = 0 … steps − 1:   (g_k, diagnostics) = update(πθ_k, rng);   (θ_{k+1}, s_{k+1}) = opt(θ_k, g_k, s_k)

Every trainer in toyfdiv is this loop with its own ``update`` (the gradient of the
quantity it minimises) and ``record`` (the metrics it reports): f-DPG training
(:func:`toyfdiv.train`), conditional training, DPO / f-DPO and TinyLM pretraining.  So each
has the same schedules, callbacks, ``record_every`` and the same guards: a non-finite
gradient or parameter vector, or a watched loss that grows by orders of magnitude, stops
the run with a ValueError naming the step, the quantity and the remedy.

Exported as ``toyfdiv.training.optimise``; it lives in this low layer (next to
:mod:`toyfdiv.optim`) so that pretraining, which sits below the tasks, can use it too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from . import optim
from ._util import check_int, check_positive_float

__all__ = ["History", "optimise", "SCHEDULES", "make_schedule", "LOSS_GROWTH", "LOSS_FLOOR", "PARAM_LIMIT"]

SCHEDULES = ("constant", "cosine", "exponential")
#: a watched loss that exceeds L₀ + LOSS_GROWTH·max(|L₀|, LOSS_FLOOR) has diverged
LOSS_GROWTH = 1e3
LOSS_FLOOR = 1e-3
#: parameters beyond this magnitude have saturated every softmax (exp underflows past 745
#: nats): the run has diverged even if every number is still finite
PARAM_LIMIT = 1e8

Update = Callable[[Any, np.random.Generator], "tuple[np.ndarray, Mapping[str, float]]"]


@dataclass(frozen=True)
class History:
    """A finished run: metrics per recorded step, and the final policy.

    Attributes:
      metrics: {name: (R,) array}; R = number of recorded steps, first entry = before any
        update.  Always "lr" (the learning rate of the update that follows); the rest come
        from the trainer's ``record`` — for :func:`toyfdiv.train`: "divergence/<name>" for
        every registered divergence and the minimised one, "kl_from_base",
        "alignment/<key>", "entropy", "effective_sequences", "grad_norm" (norm of the exact
        gradient at that step); DPO: "loss" and, given a target, "kl_to_target",
        "tv_to_target".  The update's diagnostics (e.g. "estimator/<key>" of the sampled
        estimator) have one entry per recorded step that made an update (R − 1 entries).
      step: (R,) the update count of each record.
      policy: the final policy.
      divergence: what was minimised (a divergence name, or a label such as "dpo").
      config: the arguments of the run.
      seconds: wall-clock time of the run.
    """

    metrics: Mapping[str, np.ndarray]
    step: np.ndarray
    policy: Any
    divergence: str
    config: Mapping[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def final(self) -> dict[str, float]:
        """The last recorded value of every metric."""
        return {k: float(v[-1]) for k, v in self.metrics.items()}

    @property
    def label(self) -> str:
        """What was minimised (the same string as ``divergence``)."""
        return self.divergence

    @property
    def loss(self) -> np.ndarray:
        """``metrics["loss"]``: the recorded loss of a run that has one (DPO, f-DPO)."""
        if "loss" not in self.metrics:
            raise AttributeError(f"this History ({self.divergence}) records no 'loss'; "
                                 f"its metrics are {sorted(self.metrics)}")
        return self.metrics["loss"]

    def __repr__(self) -> str:
        key = "divergence/" + self.divergence if "divergence/" + self.divergence in self.metrics else "loss"
        value = self.final().get(key, float("nan"))
        return f"History({self.divergence!r}, steps={int(self.step[-1])}, final {key}={value:.3g})"


def make_schedule(schedule: str, lr: float, steps: int, lr_final: float | None):
    """lr(k) for "constant", "cosine" (to ``lr_final`` or 0) or "exponential" (to ``lr_final`` or lr/1000)."""
    if lr_final is not None:
        if schedule == "constant":
            raise ValueError(f"lr_final={lr_final!r} only applies to a decaying schedule; allowed with "
                             f"schedule='cosine' or 'exponential', not 'constant'")
        lr_final = check_positive_float(lr_final, "lr_final", allow_zero=schedule != "exponential")
    if schedule == "constant":
        return optim.constant(lr)
    if schedule == "cosine":
        return optim.cosine_decay(lr, steps, 0.0 if lr_final is None else lr_final)
    if schedule == "exponential":
        return optim.exponential_decay(lr, steps, lr * 1e-3 if lr_final is None else lr_final)
    raise ValueError(f"schedule={schedule!r} is unknown; allowed: {list(SCHEDULES)}")


def _callbacks(callbacks) -> tuple:
    if callbacks is None:
        return ()
    if callable(callbacks):
        return (callbacks,)
    if isinstance(callbacks, (list, tuple)) and all(callable(c) for c in callbacks):
        return tuple(callbacks)
    raise ValueError(f"callbacks={callbacks!r} must be a sequence of functions callback(k, steps)")


def optimise(policy, update: Update, *, steps: int, lr: float, optimizer: str = "adam",
             schedule: str = "constant", lr_final: float | None = None,
             record: Callable[[Any], Mapping[str, float]] | None = None, record_every: int = 1,
             callbacks=(), seed: int = 0, label: str = "loss", config: Mapping | None = None,
             loss_key: str = "loss") -> History:
    """θ_{k+1} = opt(θ_k, g_k) for k < ``steps``, g_k = update(πθ_k, rng)[0]: the one loop.

    Args:
      policy: the start πθ_0: anything with ``params`` (P,) and ``with_params(θ)``.
      update: update(policy, rng) -> (g, diagnostics): g (P,) the gradient (or an estimate)
        of the quantity *minimised* at πθ_k, diagnostics {name: float} recorded with the
        metrics of that step.
      steps, lr, optimizer: the number of updates, the learning rate, "adam" or "sgd".
      schedule: "constant", "cosine" (to ``lr_final`` or 0) or "exponential" (to
        ``lr_final`` or lr/1000), over ``steps``.
      record: record(policy) -> {name: float}, evaluated every ``record_every`` updates, at
        the start and at the end; "lr" is added.
      callbacks: each called as callback(k, steps) after update k = 1 … steps.
      seed: seeds the Generator passed to ``update`` (the loop's only randomness).
      label: what is minimised; names the run (``History.divergence``) and its errors.
      config: stored as ``History.config``.
      loss_key: the recorded metric watched for divergence (default "loss").
    Returns:
      a :class:`History`.
    Raises:
      ValueError for bad arguments; and, naming the step and the remedy, when the gradient
      or the parameters stop being finite or exceed 10⁸ in magnitude, when the watched loss
      becomes non-finite or grows past L₀ + 10³·max(|L₀|, 10⁻³), or when ``update``/``record`` fails after the
      first update (e.g. a policy whose log-probabilities overflowed).
    """
    steps = check_int(steps, "steps", low=0)
    lr = check_positive_float(lr, "lr")
    record_every = check_int(record_every, "record_every")
    seed = check_int(seed, "seed", low=0)
    if not callable(update):
        raise ValueError(f"update={update!r} must be a function update(policy, rng) -> (gradient, diagnostics)")
    if record is not None and not callable(record):
        raise ValueError(f"record={record!r} must be a function record(policy) -> dict of floats, or None")
    callbacks = _callbacks(callbacks)
    sched = make_schedule(schedule, lr, max(steps, 1), lr_final)
    opt = optim.get(optimizer, sched)
    rng = np.random.default_rng(seed)

    def fail(k: int, what: str) -> ValueError:
        return ValueError(f"{label}: {what} at step {k} ({optimizer}, lr={sched(max(k - 1, 0)):g}); "
                          "lower the learning rate (lr), or use a decaying schedule")

    theta = np.asarray(policy.params, dtype=float)
    state = opt.init(theta)
    records: dict[str, list[float]] = {}
    recorded: list[int] = []
    loss_0 = None
    start = time.perf_counter()
    for k in range(steps + 1):
        is_record = k % record_every == 0 or k == steps
        if is_record:
            try:
                row = dict(record(policy)) if record is not None else {}
            except ValueError as err:
                if k == 0:
                    raise
                raise fail(k, f"recording the metrics failed ({err})") from err
            row["lr"] = float(sched(k))
            for key, v in row.items():
                records.setdefault(key, []).append(v)
            recorded.append(k)
            if loss_key in row:
                loss = float(row[loss_key])
                if not math.isfinite(loss):
                    raise fail(k, f"the {loss_key} became {loss}")
                if loss_0 is None:
                    loss_0 = loss
                elif loss - loss_0 > LOSS_GROWTH * max(abs(loss_0), LOSS_FLOOR):
                    raise fail(k, f"the {loss_key} grew from {loss_0:.3g} to {loss:.3g} (diverging)")
        if k == steps:
            break
        try:
            grad, diagnostics = update(policy, rng)
        except ValueError as err:
            if k == 0:
                raise
            raise fail(k, f"the update failed ({err})") from err
        grad = np.asarray(grad, dtype=float)
        if grad.shape != theta.shape:
            raise ValueError(f"update returned a gradient of shape {grad.shape}; the parameters have {theta.shape}")
        if not np.all(np.isfinite(grad)):
            raise fail(k + 1, "the gradient is not finite")
        if is_record:
            for key, v in diagnostics.items():
                records.setdefault(key, []).append(float(v))
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            theta, state = opt.step(theta, grad, state)
        if not np.all(np.isfinite(theta)):
            raise fail(k + 1, "parameters became non-finite")
        if np.abs(theta).max(initial=0.0) > PARAM_LIMIT:
            raise fail(k + 1, f"parameters grew to max |θ| = {np.abs(theta).max():.3g} > {PARAM_LIMIT:g} "
                              "(every softmax has saturated)")
        policy = policy.with_params(theta)
        for callback in callbacks:
            callback(k + 1, steps)
    seconds = time.perf_counter() - start
    return History({k: np.asarray(v) for k, v in records.items()}, np.asarray(recorded), policy, label,
                   dict(config or {}), seconds)
