"""Building a run from its settings, and reading a finished run back as one row.

    (task name, kind, target options, policy family, options, seed)  ↦  (task, p, π_θ0)
    History  ↦  {final D_f, alignment, KL(π‖a), H(π), distinct/100, steps, seconds}

The one place that turns plain settings into the objects of a run — :func:`as_task`,
:func:`make_target`, :func:`make_policy` — used by :func:`toyfdiv.config.run`, by the
comparisons of :mod:`toyfdiv.experiments` and by the saved runs of :mod:`toyfdiv.runs`;
and the one summary of a finished run, :func:`summary_table`.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from . import metrics as _metrics
from . import tasks as _tasks
from ._util import check_instance, check_int
from .loop import History
from .policies import AutoregressivePolicy, NgramPolicy, TabularPolicy, TinyLM, TinyLMConfig
from .policies.base import Policy
from .policies.tinylm import FIT_LR, FIT_STEPS
from .targets import Target

__all__ = ["POLICIES", "as_task", "make_target", "make_policy", "summary_table", "primary_alignment",
           "target_row", "check_target", "require_task"]

#: Policy families a run can start from (:func:`make_policy`).
POLICIES = ("autoregressive", "tabular", "ngram", "tinylm")

def as_task(task, *, length: int | None = None, eos: bool | None = None) -> _tasks.Task:
    """A :class:`~toyfdiv.tasks.Task` from itself or its catalogue name (``tasks.names()``)."""
    if isinstance(task, _tasks.Task):
        if length is not None or eos is not None:
            raise ValueError("length and eos reshape a task given by name; pass the name instead of a Task")
        return task
    if task is None:
        return _tasks.get(_tasks.names()[0], length=length, eos=eos)
    if isinstance(task, str):
        return _tasks.get(task, length=length, eos=eos)
    raise ValueError(f"task={task!r} must be a Task or one of {_tasks.names()}")



def make_target(task: _tasks.Task, kind: str = "rlhf", target_options: Mapping | None = None) -> Target:
    """p = task.target(kind, **target_options): rlhf (beta), pointwise (epsilon), distributional/hybrid (moments)."""
    task = require_task(task)
    if kind not in _tasks.TARGET_KINDS:
        raise ValueError(f"kind={kind!r} is not a target kind; allowed: {list(_tasks.TARGET_KINDS)}")
    if target_options is not None and not isinstance(target_options, Mapping):
        raise ValueError(f"target_options={target_options!r} must be a dict such as {{'beta': 0.5}}, or None")
    opts = {k: v for k, v in dict(target_options or {}).items() if v is not None}
    return task.target(kind, **opts)


def require_task(task) -> _tasks.Task:
    """A Task, or one built from its catalogue name."""
    if isinstance(task, (_tasks.Task, str)):
        return as_task(task)
    raise ValueError(f"task={task!r} must be a Task or one of {_tasks.names()}")



def make_policy(task: _tasks.Task, policy: str = "autoregressive", *, seed: int = 0, **options) -> Policy:
    """The starting policy π_θ0 ≈ a: the task's base model written in the chosen family.

    - "autoregressive": θ0 = the base model's conditionals exactly (a copy of ``task.base``);
    - "tabular": θ0 = log a (``TabularPolicy.from_log_probs``);
    - "ngram": the maximum-likelihood k-gram of a (option ``order``, default 2);
    - "tinylm": a GRU fitted to a by maximum likelihood (options ``n_embd``, ``n_hidden``,
      ``init_scale``, ``fit_steps`` = FIT_STEPS (400), ``fit_lr`` = FIT_LR (0.03); ``seed`` seeds its init).

    Option ``init="random"`` starts from random parameters (``init_scale``, ``seed``)
    instead of a (tinylm: its initialisation, unfitted).
    """
    task = require_task(task)
    check_int(seed, "seed", low=0)
    space, log_a = task.space, task.log_a
    init = options.pop("init", "base")
    if init not in ("base", "random"):
        raise ValueError(f"init={init!r} is unknown; allowed: 'base', 'random'")
    if policy in ("autoregressive", "tabular", "ngram") and init == "random":
        scale = options.pop("init_scale", 0.1)
        if policy == "ngram":
            return _no_extra(NgramPolicy(space, options.pop("order", 2), seed, init_scale=scale), options, policy)
        cls = AutoregressivePolicy if policy == "autoregressive" else TabularPolicy
        return _no_extra(cls(space, seed, init_scale=scale), options, policy)
    if policy == "autoregressive":
        return _no_extra(AutoregressivePolicy(space, params=task.base.params), options, policy)
    if policy == "tabular":
        return _no_extra(TabularPolicy.from_log_probs(space, log_a), options, policy)
    if policy == "ngram":
        return _no_extra(NgramPolicy.from_log_probs(space, log_a, options.pop("order", 2)), options, policy)
    if policy == "tinylm":
        steps, lr = options.pop("fit_steps", FIT_STEPS), options.pop("fit_lr", FIT_LR)
        config = TinyLMConfig(**{k: options.pop(k) for k in ("n_embd", "n_hidden", "init_scale") if k in options},
                            seed=seed)
        _no_extra(None, options, policy)
        return TinyLM(space, config) if init == "random" else TinyLM.fit(space, log_a, config, steps=steps, lr=lr)
    raise ValueError(f"policy={policy!r} is unknown; allowed: {list(POLICIES)}")


def _no_extra(pol, options: Mapping, policy: str):
    if options:
        raise ValueError(f"options {sorted(options)} do not apply to policy={policy!r}")
    return pol



def primary_alignment(metrics: Mapping) -> tuple[str, float]:
    """The headline alignment of a metrics row: (key, value) of the first "alignment/<key>"."""
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics={metrics!r} must be a dict of metrics, e.g. History.final()")
    for key, value in metrics.items():
        if key.startswith("alignment/"):
            return key.split("/", 1)[1], float(np.asarray(value).reshape(-1)[-1])
    return "", float("nan")


def summary_table(histories: Mapping[str, History]) -> list[dict]:
    """One row per run: D_f(π_final ‖ p) for the run's own f, alignment, KL(π‖a), H(π), the
    expected number of distinct sequences in 100 samples, steps, seconds.

    Row keys: "divergence", "final_divergence" (nats), "alignment_key", "alignment",
    "kl_from_base" (nats), "entropy" (nats), "distinct_100", "steps", "seconds", and every
    "alignment/<key>" of the run.
    """
    if not isinstance(histories, Mapping) or not all(isinstance(h, History) for h in histories.values()):
        raise ValueError(f"histories={histories!r} must be a dict {{name: History}}, e.g. from compare()")
    rows = []
    for name, hist in histories.items():
        final = hist.final()
        key, value = primary_alignment(final)
        row = dict(divergence=hist.divergence, final_divergence=final[f"divergence/{hist.divergence}"],
                   alignment_key=key, alignment=value, kl_from_base=final["kl_from_base"],
                   entropy=final["entropy"], distinct_100=_metrics.expected_distinct(hist.policy.log_probs(), 100),
                   steps=int(hist.step[-1]), seconds=float(hist.seconds))
        row.update({k: v for k, v in final.items() if k.startswith("alignment/")})
        rows.append(row)
    return rows



def check_target(target) -> Target:
    return check_instance(target, Target, "target")



def target_row(target: Target) -> dict:
    """The target's own alignment, entropy and KL from the base: where a perfect minimiser lands."""
    m = _metrics.evaluate(check_target(target).log_probs, target, divergences=())
    key, value = primary_alignment(m)
    return dict(alignment_key=key, alignment=value, entropy=m["entropy"], kl_from_base=m["kl_from_base"],
                distinct_100=_metrics.expected_distinct(target.log_probs, 100))
