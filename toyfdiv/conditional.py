"""Conditional (prompted) targets: one target p(·|c) per prompt c, as in conditional f-DPG.

A prompt c is drawn from ρ(c); the policy answers with y ∼ πθ(·|c).  The objective is the
prompt-averaged divergence (Go et al. 2023, §4.4; Korbak et al. 2022, CDPG):

    E_{c∼ρ}[ D_f(πθ(·|c) ‖ p(·|c)) ],   p(y|c) = a(y|c) φ(c, y) / Z(c),

with one partition function Z(c) per prompt.  Because the joint π(c, y) = ρ(c) π(y|c) and
p(c, y) = ρ(c) p(y|c) share the prompt marginal, their ratio is π(y|c)/p(y|c) and the
objective is exactly D_f between the joints; its gradient is Σ_c ρ(c) ∇θ D_f(π_c ‖ p_c).
Sampled estimates draw prompts from ρ and estimate each Ẑ(c) from that prompt's samples.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.special import logsumexp

from . import metrics, tasks
from . import targets as _targets
from ._util import as_float_array, check_choice, check_int, check_log_probs, check_rng
from .divergences import as_divergence
from . import exact as _exact
from .policies import AutoregressivePolicy
from .policies.base import Policy
from .space import SequenceSpace
from .estimators import BASELINES, Z_OPTIONS, sampled_estimate
from .training import History, optimise

__all__ = ["ConditionalTarget", "ConditionalPolicy", "rlhf", "pointwise", "value", "exact_gradient", "exact_gradient_conditional",
           "sampled_gradient", "evaluate", "train", "reviews_task", "ConditionalTask"]


@dataclass(frozen=True)
class ConditionalTarget:
    """p(y|c) for each prompt c, and the prompt distribution ρ(c).

    ``targets[c]`` is an ordinary :class:`toyfdiv.targets.Target` over the response space,
    normalised by its own Z(c); ``log_rho`` (C,) are the prompts' log-probabilities.
    """

    prompts: tuple[str, ...]
    log_rho: np.ndarray  # (C,)
    targets: tuple[_targets.Target, ...]

    def __post_init__(self):
        if not all(isinstance(c, str) for c in self.prompts):
            raise ValueError(f"prompts={self.prompts!r} must be strings")
        if not all(isinstance(t, _targets.Target) for t in self.targets):
            raise ValueError("targets must be toyfdiv.targets.Target objects, one per prompt")
        if len(self.prompts) == 0 or len(self.prompts) != len(self.targets):
            raise ValueError(f"got {len(self.prompts)} prompts and {len(self.targets)} targets; "
                             "give one target per prompt, at least one")
        log_rho = check_log_probs(self.log_rho, len(self.prompts), "log_rho").copy()
        log_rho.setflags(write=False)
        object.__setattr__(self, "log_rho", log_rho)
        sizes = {t.size for t in self.targets}
        if len(sizes) != 1:
            raise ValueError(f"the per-prompt targets have sizes {sorted(sizes)}; they must share one response space")

    @property
    def log_z(self) -> np.ndarray:
        """(C,) log Z(c), one partition function per prompt."""
        return np.array([t.log_z for t in self.targets])

    @property
    def log_probs(self) -> np.ndarray:
        """(C, N) log p(y|c), each row normalised."""
        return np.stack([t.log_probs for t in self.targets])


def _prompts(prompts) -> tuple[str, ...]:
    if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)):
        raise ValueError(f"prompts={prompts!r} must be a list of prompt strings, e.g. ['film', 'not']")
    return tuple(prompts)


def _per_prompt(log_a, values, name: str):
    log_a = as_float_array(log_a, "log_a")
    values = np.asarray(values)
    if log_a.ndim != 2 or values.shape != log_a.shape:
        raise ValueError(f"log_a has shape {log_a.shape} and {name} {values.shape}; expected the same (C, N)")
    return log_a, values


def rlhf(prompts: Sequence[str], log_rho, log_a, reward, beta: float) -> ConditionalTarget:
    """p(y|c) = a(y|c) exp(r(c, y)/β) / Z(c); log_a and reward (C, N)."""
    log_a, reward = _per_prompt(log_a, reward, "reward")
    return ConditionalTarget(_prompts(prompts), log_rho,
                             tuple(_targets.rlhf(la, r, beta) for la, r in zip(log_a, reward)))


def pointwise(prompts: Sequence[str], log_rho, log_a, constraint, epsilon: float = 0.0) -> ConditionalTarget:
    """p(y|c) = a(y|c) b(c, y) / Z(c); log_a (C, N), constraint (C, N) bool."""
    log_a, constraint = _per_prompt(log_a, constraint, "constraint")
    return ConditionalTarget(_prompts(prompts), log_rho,
                             tuple(_targets.pointwise(la, b, epsilon) for la, b in zip(log_a, constraint)))


class ConditionalPolicy:
    """πθ(y|c): one policy per prompt over the same response space; θ is their concatenation.

    Immutable like every policy: ``with_params`` returns a new one.
    """

    def __init__(self, policies: Sequence[Policy]):
        if not isinstance(policies, (list, tuple)):
            raise ValueError(f"policies={policies!r} must be a list of Policy objects, one per prompt")
        policies = tuple(policies)
        if not policies or not all(isinstance(p, Policy) for p in policies):
            raise ValueError("policies must be a non-empty sequence of Policy objects, one per prompt")
        if len({p.space for p in policies}) != 1:
            raise ValueError("the per-prompt policies must share one response space")
        self.policies = policies
        self._sizes = np.cumsum([0] + [p.n_params for p in policies])

    @property
    def space(self) -> SequenceSpace:
        return self.policies[0].space

    @property
    def params(self) -> np.ndarray:
        return np.concatenate([p.params for p in self.policies])

    @property
    def n_params(self) -> int:
        return int(self._sizes[-1])

    def with_params(self, theta) -> "ConditionalPolicy":
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.n_params,):
            raise ValueError(f"params has shape {theta.shape}; expected ({self.n_params},)")
        return ConditionalPolicy([p.with_params(theta[a:b]) for p, a, b in
                                  zip(self.policies, self._sizes[:-1], self._sizes[1:])])

    def log_probs(self) -> np.ndarray:
        """(C, N) log πθ(y|c)."""
        return np.stack([p.log_probs() for p in self.policies])


def _check(policy: ConditionalPolicy, target: ConditionalTarget) -> None:
    if not isinstance(policy, ConditionalPolicy) or not isinstance(target, ConditionalTarget):
        raise ValueError("policy and target must be a ConditionalPolicy and a ConditionalTarget")
    if len(policy.policies) != len(target.targets):
        raise ValueError(f"the policy has {len(policy.policies)} prompts, the target {len(target.targets)}")
    if policy.space.size != target.targets[0].size:
        raise ValueError(f"the policy's response space has {policy.space.size} sequences, "
                         f"the target's {target.targets[0].size}")


def value(policy: ConditionalPolicy, target: ConditionalTarget, divergence) -> float:
    """E_{c∼ρ}[D_f(π(·|c) ‖ p(·|c))] in nats."""
    _check(policy, target)
    div = as_divergence(divergence)
    per = [div.value(pi.log_probs(), t.log_probs) for pi, t in zip(policy.policies, target.targets)]
    return float(np.exp(target.log_rho) @ np.array(per))


def exact_gradient(policy: ConditionalPolicy, target: ConditionalTarget, divergence) -> np.ndarray:
    """∇θ E_ρ[D_f(π_c ‖ p_c)] = concat_c ρ(c) ∇θ_c D_f(π_c ‖ p_c), exact; (P,)."""
    _check(policy, target)
    rho = np.exp(target.log_rho)
    return np.concatenate([r * _exact.exact_gradient(pi, t, divergence)
                           for r, pi, t in zip(rho, policy.policies, target.targets)])


def exact_gradient_conditional(policy: ConditionalPolicy, target: ConditionalTarget, divergence) -> np.ndarray:
    """Deprecated name of :func:`exact_gradient` (the module already says "conditional")."""
    warnings.warn("conditional.exact_gradient_conditional is deprecated; use conditional.exact_gradient",
                  DeprecationWarning, stacklevel=2)
    return exact_gradient(policy, target, divergence)


def sampled_gradient(policy: ConditionalPolicy, target: ConditionalTarget, divergence, *, n: int,
                     rng: np.random.Generator, z: str = "batch", baseline: str = "mean") -> np.ndarray:
    """ĝ = concat_c (n_c/n) ĝ_c: prompts c ∼ ρ (counts n_c), responses y ∼ π(·|c), and each
    ĝ_c the sampled f-DPG estimate (:func:`toyfdiv.fdpg.sampled_estimate`) with its own Ẑ(c)
    from that prompt's n_c samples.  E[n_c/n] = ρ(c), so with z="exact" and a baseline
    independent of the sample ("none", "loo", "dpg") it is unbiased.  The default batch
    "mean" is not: given n_c it shrinks ĝ_c by (1 − 1/n_c) (a prompt drawn once contributes
    0), so E[block c] = [1 − (1 − (1 − ρ_c)^n)/(n ρ_c)] ρ(c) ∇θ D_f(π_c ‖ p_c)."""
    _check(policy, target)
    n = check_int(n, "n")
    rng = check_rng(rng)
    counts = rng.multinomial(n, np.exp(target.log_rho - logsumexp(target.log_rho)))
    parts = []
    for k, pi, t in zip(counts, policy.policies, target.targets):
        if k == 0:
            parts.append(np.zeros(pi.n_params))
            continue
        est = sampled_estimate(pi, t, divergence, n=int(k), rng=rng, z=z, baseline=baseline)
        parts.append(k / n * est.gradient)
    return np.concatenate(parts)


def evaluate(policy: ConditionalPolicy, target: ConditionalTarget) -> dict[str, float]:
    """Every metric of :func:`toyfdiv.metrics.evaluate`, averaged over prompts with weights ρ(c)."""
    _check(policy, target)
    rho = np.exp(target.log_rho)
    rows = [metrics.evaluate(pi.log_probs(), t) for pi, t in zip(policy.policies, target.targets)]
    return {k: float(sum(r * row[k] for r, row in zip(rho, rows))) for k in rows[0]}


def train(policy: ConditionalPolicy, target: ConditionalTarget, divergence, steps: int = 300, lr: float = 0.1,
          optimizer: str = "adam", estimator: str = "exact", seed: int = 0, *, n: int = 256,
          z: str = "batch", baseline: str = "mean", record_every: int = 1, schedule: str = "constant",
          lr_final: float | None = None, callback: Callable[[int, int], None] | None = None) -> History:
    """Minimise E_ρ[D_f(π(·|c) ‖ p(·|c))] by :func:`toyfdiv.training.optimise`; metrics in the
    History are averaged over prompts.

    ``estimator="exact"`` uses :func:`exact_gradient`; ``"sampled"``
    :func:`sampled_gradient` with ``n``, ``z`` and ``baseline``.  ``schedule``, ``lr_final``,
    ``record_every`` and ``callback(k, steps)`` as in :func:`toyfdiv.train`.
    """
    _check(policy, target)
    div = as_divergence(divergence)
    check_int(n, "n")  # checked for every estimator, so that a typo is not silently ignored
    check_choice(z, "z", Z_OPTIONS)
    check_choice(baseline, "baseline", BASELINES)
    check_choice(estimator, "estimator", ("exact", "sampled"))
    if callback is not None and not callable(callback):
        raise ValueError(f"callback={callback!r} must be a function callback(k, steps), or None")

    def record(pol):
        row = evaluate(pol, target)
        row[f"divergence/{div.name}"] = value(pol, target, div)
        return row

    def update(pol, rng):
        if estimator == "exact":
            return exact_gradient(pol, target, div), {}
        return sampled_gradient(pol, target, div, n=n, rng=rng, z=z, baseline=baseline), {}

    config = dict(divergence=div.name, steps=steps, lr=lr, optimizer=optimizer, estimator=estimator, seed=seed)
    return optimise(policy, update, steps=steps, lr=lr, optimizer=optimizer, schedule=schedule, lr_final=lr_final,
                    record=record, record_every=record_every, callbacks=() if callback is None else (callback,),
                    seed=seed, label=div.name, config=config, loss_key=f"divergence/{div.name}")


@dataclass(frozen=True)
class ConditionalTask:
    """Prompts, their distribution ρ, the response space, a(y|c), r(c, y) and b(c, y)."""

    prompts: tuple[str, ...]
    log_rho: np.ndarray  # (C,)
    space: SequenceSpace  # responses
    log_a: np.ndarray  # (C, N)
    reward: np.ndarray  # (C, N) r(c, y), scored on the whole text "c y"
    constraint: np.ndarray  # (C, N) b(c, y)

    def target(self, kind: str = "rlhf", beta: float = 1.0, epsilon: float = 0.0) -> ConditionalTarget:
        if kind == "rlhf":
            return rlhf(self.prompts, self.log_rho, self.log_a, self.reward, beta)
        if kind == "pointwise":
            return pointwise(self.prompts, self.log_rho, self.log_a, self.constraint, epsilon)
        raise ValueError(f"kind={kind!r} is not a conditional target kind; allowed: rlhf, pointwise")

    def base_policy(self) -> ConditionalPolicy:
        """The base model as a conditional policy: one exact autoregressive copy per prompt."""
        return ConditionalPolicy([AutoregressivePolicy.from_log_probs(self.space, la) for la in self.log_a])


def reviews_task(prompts: Sequence[str] = ("film", "not", "very")) -> ConditionalTask:
    """Prompted film reviews: the review starts with the prompt c, the policy writes the rest y.

    a(y|c) is the default task's bigram model of "c y" renormalised over y; r(c, y) is the
    sentiment of the whole text (so "not" flips what follows) and b(c, y) = contains "good".
    Prompts are uniform.  Responses: up to 3 words then EOS (N = 156).
    """
    prompts = _prompts(prompts)
    full = tasks.default()
    unknown = [c for c in prompts if c not in full.space.vocab]
    if not prompts or unknown:
        raise ValueError(f"prompts {list(prompts)} must be non-empty words of {list(full.space.vocab)}")
    space = SequenceSpace(full.space.vocab, full.space.length - 1, full.space.eos)
    texts = space.decode_all()  # a one-off table of N strings, built once per task
    rows = np.array([[full.space.index(f"{c} {y}") for y in texts] for c in prompts])  # (C, N)
    log_a = full.log_a[rows]
    log_a = log_a - logsumexp(log_a, axis=1, keepdims=True)  # a task of moderate log-probabilities
    return ConditionalTask(tuple(prompts), np.full(len(prompts), -np.log(len(prompts))), space, log_a,
                           full.reward.values[rows], full.constraint.values[rows])
