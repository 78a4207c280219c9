"""A run, fully determined: the :class:`Config` of one training run, its JSON, and :func:`run`.

    config ↦ History = train(π_θ0(task, policy), p(task, kind, β/ε/μ̄), f, optimiser, estimator, seed)

Everything that changes a number is a field: the task (catalogue name, length, EOS), the
target (kind and its options), the policy family and its options, the divergence, the
optimiser and schedule, the estimator and its options, the seed.  A Config is plain data:
JSON in and out (``to_json`` / ``from_json``), validated field by field, nothing executed.
Re-running the same Config on the same machine reproduces the History bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, Mapping

from . import divergences as _divergences
from . import optim as _optim
from . import tasks as _tasks
from .build import POLICIES, as_task, make_policy, make_target
from .training import ESTIMATORS, SCHEDULES, History, train

__all__ = ["Config", "run", "loads_json", "configs_to_json", "configs_from_json"]

_SCALAR = (str, bool, int, float, type(None))


def _int(value, name: str, low: int, optional: bool = False):
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} must be an integer{' or null' if optional else ''}")
    if value < low:
        raise ValueError(f"{name}={value!r} is out of range; allowed: ≥ {low}")
    return int(value)


def _float(value, name: str, low: float, *, strict: bool, high: float = math.inf, optional: bool = False):
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a number{' or null' if optional else ''}")
    v = float(value)
    if not math.isfinite(v) or v < low or (strict and v == low) or v >= high:
        lo = f"{'>' if strict else '≥'} {low:g}"
        raise ValueError(f"{name}={value!r} is out of range; allowed: finite, {lo}" + (f", < {high:g}" if high < math.inf else ""))
    return v


def _choice(value, name: str, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is unknown; allowed: {list(allowed)}")
    return value


def _options(value, name: str) -> tuple[tuple[str, object], ...]:
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        value = dict(value)
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}={value!r} must be a mapping of option names to plain values")
    out = []
    for k, v in value.items():
        if not isinstance(k, str):
            raise ValueError(f"{name} key {k!r} must be a string")
        if not isinstance(v, _SCALAR) or (isinstance(v, float) and not math.isfinite(v)):
            raise ValueError(f"{name}[{k!r}]={v!r} must be a string, a finite number, a boolean or null")
        out.append((k, v))
    return tuple(sorted(out))


@dataclass(frozen=True)
class Config:
    """Every input of one training run (see :func:`run`); validated in ``__post_init__``.

    Mapping options are stored as sorted (key, value) tuples (hashable, picklable);
    ``dict(config.policy_options)`` gives them back.
    """

    task: str = "reviews"  # catalogue name, tasks.names()
    length: int | None = None  # reshape the task's space (None: the task's own)
    eos: bool | None = None  # with / without EOS (None: the task's own)
    kind: str = "rlhf"  # target kind, tasks.TARGET_KINDS
    beta: float | None = None  # rlhf: KL coefficient β > 0 (None: the task's default)
    epsilon: float | None = None  # pointwise: smoothing 0 ≤ ε < 1 (None: the task's default)
    moments: tuple[float, ...] | None = None  # distributional / hybrid: μ̄ (None: the task's default)
    policy: str = "autoregressive"  # build.POLICIES
    policy_options: tuple = field(default=())  # e.g. {"order": 2} (ngram), {"n_hidden": 4} (tinylm)
    divergence: str = "reverse_kl"  # a registry key or alpha(a) / gjsd(b); stored canonically
    steps: int = 300  # number of updates
    lr: float = 0.1  # learning rate
    optimizer: str = "adam"  # optim.names()
    schedule: str = "constant"  # training.SCHEDULES
    lr_final: float | None = None  # the schedule's final learning rate (None: its default)
    estimator: str = "exact"  # "exact" or "sampled"
    estimator_options: tuple = field(default=())  # sampled only: {"n": 64, "baseline": "mean", …}
    seed: int = 0  # seeds the sampler and any random initialisation
    record_every: int = 1  # record metrics every k updates

    def __post_init__(self):
        s = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        s("task", _choice(self.task, "task", _tasks.names()))
        s("length", _int(self.length, "length", 1, optional=True))
        if self.eos is not None and not isinstance(self.eos, bool):
            raise ValueError(f"eos={self.eos!r} must be true, false or null")
        s("kind", _choice(self.kind, "kind", _tasks.TARGET_KINDS))
        s("beta", _float(self.beta, "beta", 0.0, strict=True, optional=True))
        s("epsilon", _float(self.epsilon, "epsilon", 0.0, strict=False, high=1.0, optional=True))
        if self.moments is not None:
            if isinstance(self.moments, (str, bytes, Mapping)) or not hasattr(self.moments, "__iter__"):
                raise ValueError(f"moments={self.moments!r} must be a list of numbers or null")
            s("moments", tuple(_float(m, "moments[]", -math.inf, strict=False) for m in self.moments))
        s("policy", _choice(self.policy, "policy", POLICIES))
        s("policy_options", _options(self.policy_options, "policy_options"))
        if not isinstance(self.divergence, str):
            raise ValueError(f"divergence={self.divergence!r} must be a name from {_divergences.names()}")
        try:
            s("divergence", _divergences.get(self.divergence).name)
        except ValueError as err:
            raise ValueError(f"divergence={self.divergence!r}: {err}") from None
        s("steps", _int(self.steps, "steps", 0))
        s("lr", _float(self.lr, "lr", 0.0, strict=True))
        s("optimizer", _choice(self.optimizer, "optimizer", _optim.names()))
        s("schedule", _choice(self.schedule, "schedule", SCHEDULES))
        s("lr_final", _float(self.lr_final, "lr_final", 0.0, strict=False, optional=True))
        if self.lr_final is not None and self.schedule == "constant":
            raise ValueError(f"lr_final={self.lr_final!r} only applies to schedule='cosine' or 'exponential'")
        s("estimator", _choice(self.estimator, "estimator", ESTIMATORS))
        s("estimator_options", _options(self.estimator_options, "estimator_options"))
        if self.estimator == "exact" and self.estimator_options:
            raise ValueError(f"estimator_options {dict(self.estimator_options)} only apply to estimator='sampled'")
        s("seed", _int(self.seed, "seed", 0))
        s("record_every", _int(self.record_every, "record_every", 1))

    # ------------------------------------------------------------------ views
    @property
    def target_options(self) -> dict:
        """The overrides passed to ``task.target(kind, ...)`` (only those that are set)."""
        opts = {"beta": self.beta, "epsilon": self.epsilon,
                "moments": None if self.moments is None else list(self.moments)}
        return {k: v for k, v in opts.items() if v is not None}

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """Plain JSON-ready data: every field, options as objects, moments as a list."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["policy_options"] = dict(self.policy_options)
        out["estimator_options"] = dict(self.estimator_options)
        out["moments"] = None if self.moments is None else list(self.moments)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> "Config":
        """The Config of plain data; unknown keys and wrong types raise ValueError (missing keys take defaults)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; allowed: {sorted(known)}")
        return cls(**dict(data))

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict` (floats written exactly: they round-trip bit for bit)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        """The Config of JSON text; invalid JSON, NaN/Infinity, unknown keys or wrong types raise ValueError."""
        return cls.from_dict(loads_json(text))


def loads_json(text) -> object:
    """Parse untrusted JSON text strictly: plain data only (nothing is executed), finite numbers,
    bounded nesting; any failure is a ValueError that says why."""
    if not isinstance(text, (str, bytes)):
        raise ValueError(f"expected JSON text, got {type(text).__name__}")

    def no_constants(name):
        raise ValueError(f"the JSON contains {name}; numbers must be finite")

    try:
        return json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON: {err}") from None
    except RecursionError:
        raise ValueError("the JSON is nested too deeply to be a config") from None


def configs_to_json(configs) -> str:
    """JSON text of several runs: one object for one Config, an array of objects for more."""
    configs = [configs] if isinstance(configs, Config) else list(configs)
    if not configs or not all(isinstance(c, Config) for c in configs):
        raise ValueError(f"configs={configs!r} must be one Config or a non-empty list of them")
    if len(configs) == 1:
        return configs[0].to_json()
    return json.dumps([c.to_dict() for c in configs], indent=2, allow_nan=False)


def configs_from_json(text, *, max_configs: int = 1000) -> list[Config]:
    """The Configs of JSON text written by :func:`configs_to_json` (or by the app's download):
    one object, or an array of 1…``max_configs`` objects; anything else raises ValueError."""
    data = loads_json(text)
    items = data if isinstance(data, list) else [data]
    if not items or len(items) > max_configs:
        raise ValueError(f"expected one config object or an array of 1…{max_configs} of them, "
                         f"got an array of {len(items)}")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(Config.from_dict(item))
        except ValueError as err:
            raise ValueError(f"config {i + 1} of {len(items)}: {err}" if len(items) > 1 else str(err)) from None
    return out


def run(config: Config, *, callback: Callable[[int, int], None] | None = None) -> History:
    """History = train(π_θ0, p, f, …) with every input taken from ``config``.

    The same path as :func:`toyfdiv.experiments.compare` (task → target → starting policy
    → :func:`toyfdiv.train`), so a comparison and the Configs of its runs give identical
    numbers.  ``callback(k, steps)`` is called after each update.
    """
    if not isinstance(config, Config):
        raise ValueError(f"config={config!r} must be a Config")
    task = as_task(config.task, length=config.length, eos=config.eos)
    target = make_target(task, config.kind, config.target_options)
    policy = make_policy(task, config.policy, seed=config.seed, **dict(config.policy_options))
    hist = train(policy, target, config.divergence, steps=config.steps, lr=config.lr, optimizer=config.optimizer,
                 estimator=config.estimator, seed=config.seed, schedule=config.schedule, lr_final=config.lr_final,
                 record_every=config.record_every, callback=callback, **dict(config.estimator_options))
    return hist
