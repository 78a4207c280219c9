"""Experiments shared by the command line, the app and the lessons.

    θ_f* ≈ argmin_θ D_f(πθ ‖ p)   for every f, from the same start (the task's base model a)

:func:`compare` trains one policy per divergence on one target and returns their
histories; :func:`summary_table` reduces them to one row each; :func:`frontier` sweeps the
RLHF temperature β and records where each divergence lands (alignment against entropy and
KL from the base).  Nothing here is new mathematics: every number comes from
:func:`toyfdiv.train` and :mod:`toyfdiv.metrics`.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Mapping, Sequence

import numpy as np

from . import divergences as _divergences
from . import tasks as _tasks
from ._util import check_instance, check_int
from .build import (POLICIES, as_task, check_target, make_policy, make_target, primary_alignment, require_task,
                    summary_table, target_row)
from .config import Config, run
from .config import start as config_start
from .policies.base import Policy
from .targets import Target
from .training import History, train

__all__ = ["POLICIES", "DEFAULT_BETAS", "as_task", "make_policy", "make_target", "compare",
           "summary_table", "primary_alignment", "frontier", "final_policies", "target_row",
           "sweep_configs", "run_many", "frontier_from_runs", "compare_configs", "run_configs"]

#: Default grid of RLHF temperatures for :func:`frontier`.
DEFAULT_BETAS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def _resolve_divergences(divergences) -> tuple[list, bool]:
    if divergences is None:
        return list(_divergences.registered()), True
    if isinstance(divergences, str):
        divergences = [d.strip() for d in divergences.split(",") if d.strip()]
    elif isinstance(divergences, _divergences.FDivergence):
        divergences = [divergences]
    elif not isinstance(divergences, (list, tuple)):
        raise ValueError(f"divergences={divergences!r} must be a list of names or FDivergences, "
                         f"from {_divergences.names()}")
    divs = [_divergences.get(d) for d in divergences]
    if not divs:
        raise ValueError("divergences is empty; give at least one name from divergences.names()")
    names = [d.name for d in divs]
    if len(set(names)) != len(names):
        raise ValueError(f"divergences {names} name the same divergence twice")
    return divs, False


def compare(task, kind: str = "rlhf", divergences=None, *, policy: str = "autoregressive", steps: int = 300,
            lr: float = 0.1, optimizer: str = "adam", estimator: str = "exact", seed: int = 0,
            callback: Callable[[int, int], None] | None = None, target_options: Mapping | None = None,
            policy_options: Mapping | None = None, schedule: str = "constant", lr_final: float | None = None,
            record_every: int = 1, start: Policy | None = None, **estimator_options) -> dict[str, History]:
    """{f.name: train(π_θ0, p, f)} for every divergence f, all from the same start π_θ0.

    Args:
      task: a Task or a catalogue name; p = ``task.target(kind, **target_options)``.
      divergences: names or FDivergences (default: every registered one, in table order;
        those that are infinite for this target — reverse KL and Pearson χ² against a
        target with zeros — are then skipped with a warning, while naming one explicitly
        raises the library's ValueError).
      policy, policy_options: the starting policy, see :func:`make_policy` (seeded by ``seed``).
      start: a ready starting policy on ``task.space`` instead (built once, e.g. a fitted
        TinyLM shared by several comparisons); then ``policy`` and ``policy_options`` are unused.
      steps, lr, optimizer, schedule, lr_final, record_every, estimator, seed,
      estimator_options: passed to :func:`toyfdiv.train`.
      callback: called as callback(done, total) after every update, counting the updates
        of all runs together (for a single progress bar).
    Returns:
      {divergence name: History}, keyed by the canonical name ("alpha(0.5)" for "alpha").
    """
    task = as_task(task)
    target = make_target(task, kind, target_options)
    if start is None:
        start = make_policy(task, policy, seed=seed, **dict(policy_options or {}))
    elif not isinstance(start, Policy) or start.space != task.space:
        raise ValueError(f"start={start!r} must be a Policy on the task's space {task.space!r}")
    divs, defaulted = _resolve_divergences(divergences)
    if defaulted:
        ok = [d for d in divs if np.isfinite(d.value(start.log_probs(), target.log_probs))]
        skipped = [d.name for d in divs if d not in ok]
        if skipped:
            warnings.warn(f"skipping {skipped}: D_f(π‖p) is infinite for this target (it has zeros); "
                          "smooth it (epsilon > 0) to include them", stacklevel=2)
        divs = ok
    total = steps * len(divs)
    out: dict[str, History] = {}
    for j, div in enumerate(divs):
        inner = None if callback is None else (lambda k, _n, j=j: callback(j * steps + k, total))
        hist = train(start, target, div, steps=steps, lr=lr, optimizer=optimizer, estimator=estimator,
                     seed=seed, schedule=schedule, lr_final=lr_final, record_every=record_every,
                     callback=inner, **estimator_options)
        out[div.name] = hist
    return out


def final_policies(task: _tasks.Task, target: Target, histories: Mapping[str, History]) -> dict[str, np.ndarray]:
    """{"base": log a, "target": log p, f: log π_f} — the distributions a comparison ends with."""
    task, target = require_task(task), check_target(target)
    summary_table(histories)  # validates the histories
    out = {"base": np.asarray(task.log_a), "target": np.asarray(target.log_probs)}
    out.update({name: np.asarray(h.policy.log_probs()) for name, h in histories.items()})
    return out


def _betas(betas, name: str = "betas") -> list[float]:
    """A non-empty list of finite β > 0."""
    if isinstance(betas, str) or not isinstance(betas, (list, tuple, np.ndarray)):
        raise ValueError(f"{name}={betas!r} must be a non-empty list of finite values > 0")
    bad = [b for b in betas if isinstance(b, bool) or not isinstance(b, (int, float, np.integer, np.floating))
           or not np.isfinite(b) or b <= 0]
    if len(betas) == 0 or bad:
        raise ValueError(f"{name}={list(betas)!r} must be a non-empty list of finite values > 0")
    return [float(b) for b in betas]


def frontier(task, divergences=None, *, betas: Sequence[float] = DEFAULT_BETAS, steps: int = 300,
             lr: float = 0.1, policy: str = "autoregressive", optimizer: str = "adam", seed: int = 0,
             policy_options: Mapping | None = None, callback: Callable[[int, int], None] | None = None,
             **train_options) -> list[dict]:
    """Where each f lands on the alignment–diversity plane, for p_β = a·exp(r/β)/Z across β.

    For each β and each divergence f: π_f,β = the policy after ``steps`` updates of
    D_f(π ‖ p_β) from π_θ0 (:func:`compare`), and the target p_β itself (what an exact
    minimiser in a complete family reaches).  With a capacity-limited ``policy`` ("ngram",
    "tinylm") the divergences' minimisers differ even at convergence.

    Returns:
      rows (dict), one per (divergence, β), with "divergence", "beta", "alignment_key",
      "alignment", "entropy", "kl_from_base", "final_divergence", and the target's own
      "target_alignment", "target_entropy", "target_kl_from_base".
    """
    task = as_task(task)
    betas = _betas(betas)
    check_int(steps, "steps", low=0)
    n_div = len(_resolve_divergences(divergences)[0])
    total = steps * n_div * len(betas)
    start = make_policy(task, policy, seed=seed, **dict(policy_options or {}))  # fitted once, shared by every β
    rows = []
    for i, beta in enumerate(sorted(betas)):
        inner = None if callback is None else (lambda k, _n, i=i: callback(i * steps * n_div + k, total))
        hists = compare(task, "rlhf", divergences, steps=steps, lr=lr, optimizer=optimizer, seed=seed,
                        callback=inner, target_options={"beta": beta}, start=start, **train_options)
        ref = target_row(make_target(task, "rlhf", {"beta": beta}))
        for row in summary_table(hists):
            rows.append(dict(divergence=row["divergence"], beta=beta, alignment_key=row["alignment_key"],
                             alignment=row["alignment"], entropy=row["entropy"],
                             kl_from_base=row["kl_from_base"], final_divergence=row["final_divergence"],
                             target_alignment=ref["alignment"], target_entropy=ref["entropy"],
                             target_kl_from_base=ref["kl_from_base"]))
    return rows


# ---------------------------------------------------------------------------- comparisons as Configs
def compare_configs(base: Config, divergences=None) -> list[Config]:
    """[base with divergence f for every f]: a comparison written as the Configs of its runs.

    ``divergences`` default: every registered one, in table order, skipping (with a warning)
    those infinite for the base's target and start — as :func:`compare` does.  Running them
    (:func:`run_configs`) gives the numbers of :func:`compare` bit for bit.
    """
    check_instance(base, Config, "base")
    divs, defaulted = _resolve_divergences(divergences)
    if defaulted:
        task, start = config_start(base)
        target = make_target(task, base.kind, base.target_options)
        ok = [d for d in divs if np.isfinite(d.value(start.log_probs(), target.log_probs))]
        skipped = [d.name for d in divs if d not in ok]
        if skipped:
            warnings.warn(f"skipping {skipped}: D_f(π‖p) is infinite for this target (it has zeros); "
                          "smooth it (epsilon > 0) to include them", stacklevel=2)
        divs = ok
    return [base.replace(divergence=d.name) for d in divs]


def run_configs(configs: Sequence[Config], *, callback: Callable[[int, int], None] | None = None
                ) -> dict[str, History]:
    """{c.divergence: run(c)} for Configs that differ in their divergence (e.g. from
    :func:`compare_configs`); ``callback(done, total)`` counts the updates of all runs together."""
    configs = list(configs)
    if not configs or not all(isinstance(c, Config) for c in configs):
        raise ValueError(f"configs={configs!r} must be a non-empty list of Config objects")
    names = [c.divergence for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"configs minimise {names}: the same divergence twice (key the runs yourself, or use run_many)")
    total = sum(c.steps for c in configs)
    out, done = {}, 0
    for c in configs:
        inner = None if callback is None else (lambda k, _n, done=done: callback(done + k, total))
        out[c.divergence] = run(c, callback=inner)
        done += c.steps
    return out


# ---------------------------------------------------------------------------- sweeps
def sweep_configs(base: Config, divergences=None, betas: Sequence[float] | None = None,
                  seeds: Sequence[int] = (0,)) -> list[Config]:
    """The grid {base with divergence f, β, seed}: divergences × betas × seeds, in that order.

    ``divergences`` default: every registered one; ``betas`` default: the base's β only.
    """
    if not isinstance(base, Config):
        raise ValueError(f"base={base!r} must be a Config")
    divs = [d.name for d in _resolve_divergences(divergences)[0]]
    betas = [base.beta] if betas is None else _betas(betas)
    if isinstance(seeds, str) or not isinstance(seeds, (list, tuple, range, np.ndarray)):
        raise ValueError(f"seeds={seeds!r} must be a list of integers ≥ 0")
    seeds = [check_int(s, "seeds[]", low=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed")
    return [base.replace(divergence=d, beta=b, seed=s) for d in divs for b in betas for s in seeds]


def run_many(configs: Sequence[Config], *, workers: int = 1,
             callback: Callable[[int, int], None] | None = None) -> list[History]:
    """[run(c) for c in configs], over ``workers`` processes (ProcessPoolExecutor); results in order.

    ``callback(done, total)`` after each finished run.  Each run is deterministic, so the
    numbers do not depend on ``workers``.
    """
    if not isinstance(configs, (list, tuple)):
        raise ValueError(f"configs={configs!r} must be a list of Config objects")
    configs = list(configs)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r} must be an integer ≥ 1")
    total = len(configs)
    if workers == 1 or total <= 1:
        out = []
        for i, c in enumerate(configs):
            out.append(run(c))
            if callback is not None:
                callback(i + 1, total)
        return out
    results: list[History | None] = [None] * total
    with ProcessPoolExecutor(max_workers=min(workers, total)) as pool:
        futures = {pool.submit(run, c): i for i, c in enumerate(configs)}
        for done, fut in enumerate(as_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            if callback is not None:
                callback(done, total)
    return results


def frontier_from_runs(configs: Sequence[Config], histories: Sequence[History]) -> list[dict]:
    """:func:`frontier`-style rows from a sweep: per (divergence, β), the mean over seeds of the
    final alignment, entropy, KL(π‖a) and D_f to the target, with the target p_β's own values."""
    configs, histories = list(configs), list(histories)
    if len(configs) != len(histories):
        raise ValueError(f"got {len(configs)} configs and {len(histories)} histories; expected one History per Config")
    for c, h in zip(configs, histories):
        if not isinstance(c, Config) or not isinstance(h, History):
            raise ValueError(f"configs and histories must hold Config and History objects; got {c!r}, {h!r}")
    groups: dict[tuple, list] = {}
    for c, h in zip(configs, histories):
        if c.kind != "rlhf":
            raise ValueError(f"a frontier needs rlhf targets (β); got kind={c.kind!r}")
        groups.setdefault((h.divergence, c.task, c.length, c.eos, c.beta), []).append(summary_table({h.divergence: h})[0])
    rows = []
    for (name, task, length, eos, beta), rs in groups.items():
        t = as_task(task, length=length, eos=eos)
        b = t.beta if beta is None else beta
        ref = target_row(make_target(t, "rlhf", {"beta": b}))
        mean = {k: float(np.mean([r[k] for r in rs])) for k in ("alignment", "entropy", "kl_from_base", "final_divergence")}
        rows.append(dict(divergence=name, beta=b, alignment_key=rs[0]["alignment_key"], seeds=len(rs), **mean,
                         target_alignment=ref["alignment"], target_entropy=ref["entropy"],
                         target_kl_from_base=ref["kl_from_base"]))
    return rows
