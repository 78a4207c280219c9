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
import functools
import json
import math
import reprlib
from dataclasses import dataclass, field
from typing import Callable, Mapping

from . import divergences as _divergences
from . import optim as _optim
from . import tasks as _tasks
from .build import POLICIES, as_task, make_policy, make_target
from ._util import check_choice, check_int, check_real
from .training import ESTIMATORS, SAMPLED_OPTIONS, SCHEDULES, History, train

__all__ = ["Config", "Field", "FIELDS", "run", "start", "loads_json", "configs_to_json", "configs_from_json"]

_SCALAR = (str, bool, int, float, type(None))


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
class Field:
    """One setting of a run: its type, its allowed values and what it means (a row of :data:`FIELDS`).

    kind: "choice" (one of ``choices``), "int", "float" (finite, ≥ ``low`` — > ``low`` when
    ``strict`` — and < ``high``), "bool", "floats" (a list of finite numbers), "divergence"
    (a registry name or alpha(a) / gjsd(b), stored canonically) or "options" (a mapping of
    names to plain values).  ``optional``: None is allowed (the task's or schedule's default).
    """

    name: str
    kind: str
    help: str
    choices: tuple[str, ...] = ()
    low: float = -math.inf
    high: float = math.inf
    strict: bool = False
    optional: bool = False

    def check(self, value):
        """The value, validated and normalised; a ValueError naming the field otherwise."""
        if self.kind == "choice":
            return check_choice(value, self.name, self.choices)
        if self.kind == "int":
            return check_int(value, self.name, int(self.low), optional=self.optional)
        if self.kind == "float":
            return check_real(value, self.name, self.low, self.high, open_low=self.strict, open_high=True,
                              optional=self.optional)
        if self.kind == "bool":
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{self.name}={value!r} must be true, false or null")
            return value
        if self.kind == "floats":
            if value is None:
                return None
            if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
                raise ValueError(f"{self.name}={value!r} must be a list of numbers or null")
            return tuple(check_real(m, f"{self.name}[]", self.low) for m in value)
        if self.kind == "divergence":
            if not isinstance(value, str):
                raise ValueError(f"{self.name}={value!r} must be a name from {_divergences.names()}")
            return _divergences.get(value, argument=self.name).name
        return _options(value, self.name)  # "options"


#: Every field of a :class:`Config`, in order, with its allowed values — the one table that
#: the validation, the command line and the app's settings forms read (choices come from the
#: registries: tasks.names(), tasks.TARGET_KINDS, build.POLICIES, optim.names(), …).
FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("task", "choice", "catalogue task", choices=tuple(_tasks.names())),
    Field("length", "int", "reshape the task's space to this length (null: the task's own)", low=1, optional=True),
    Field("eos", "bool", "with / without EOS (null: the task's own)", optional=True),
    Field("kind", "choice", "target kind", choices=tuple(_tasks.TARGET_KINDS)),
    Field("beta", "float", "rlhf: KL coefficient β > 0 (null: the task's)", low=0.0, strict=True, optional=True),
    Field("epsilon", "float", "pointwise: smoothing 0 ≤ ε < 1 (null: the task's)", low=0.0, high=1.0,
          optional=True),
    Field("moments", "floats", "distributional / hybrid: the moments μ̄ (null: the task's)", optional=True),
    Field("policy", "choice", "policy family of the start π_θ0", choices=tuple(POLICIES)),
    Field("policy_options", "options", 'e.g. {"order": 2} (ngram), {"n_hidden": 4, "fit_steps": 400} (tinylm)'),
    Field("divergence", "divergence", f"the f minimised: {', '.join(_divergences.names())}, alpha(a), gjsd(b)",
          choices=tuple(_divergences.names())),
    Field("steps", "int", "number of updates", low=0),
    Field("lr", "float", "learning rate", low=0.0, strict=True),
    Field("optimizer", "choice", "optimiser", choices=tuple(_optim.names())),
    Field("schedule", "choice", "learning-rate schedule", choices=tuple(SCHEDULES)),
    Field("lr_final", "float", "the schedule's final learning rate (null: its default)", low=0.0, optional=True),
    Field("estimator", "choice", "exact gradients or sampled f-DPG", choices=tuple(ESTIMATORS)),
    Field("estimator_options", "options", f"sampled only: {', '.join(SAMPLED_OPTIONS)}",
          choices=tuple(SAMPLED_OPTIONS)),
    Field("seed", "int", "seeds the sampler and any random initialisation", low=0),
    Field("record_every", "int", "record metrics every k updates", low=1),
)}


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
        for f in FIELDS.values():  # each field checked by its row of the table
            s(f.name, f.check(getattr(self, f.name)))
        if self.lr_final is not None and self.schedule == "constant":
            raise ValueError(f"lr_final={self.lr_final!r} only applies to schedule='cosine' or 'exponential'")
        if self.estimator == "exact" and self.estimator_options:
            raise ValueError(f"estimator_options {dict(self.estimator_options)} only apply to estimator='sampled'")

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
            raise ValueError(f"a config must be a JSON object (a mapping of config fields), got "
                             f"{type(data).__name__}: data={reprlib.repr(data)}")
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
        data = loads_json(text)
        if not isinstance(data, Mapping):
            raise ValueError(f"text={reprlib.repr(text)} must hold a JSON object of config fields, "
                             f"got {type(data).__name__}")
        return cls.from_dict(data)


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
    except UnicodeDecodeError as err:
        raise ValueError(f"not valid JSON: the text is not UTF-8 (byte {err.start}: {err.object[err.start:err.start + 1]!r})") from None
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


def start(config: Config):
    """(task, π_θ0): the task and the starting policy of ``config``, built once per distinct
    (task, length, eos, policy, policy_options, seed) — a TinyLM fit is the slow part, and
    policies are immutable, so runs that differ only in f, the target or the optimiser share it."""
    if not isinstance(config, Config):
        raise ValueError(f"config={config!r} must be a Config")
    return _start(config.task, config.length, config.eos, config.policy, config.policy_options, config.seed)


@functools.lru_cache(maxsize=4)
def _start(task_name, length, eos, policy, policy_options, seed):
    task = as_task(task_name, length=length, eos=eos)
    return task, make_policy(task, policy, seed=seed, **dict(policy_options))


def run(config: Config, *, callback: Callable[[int, int], None] | None = None) -> History:
    """History = train(π_θ0, p, f, …) with every input taken from ``config``.

    The same path as :func:`toyfdiv.experiments.compare` (task → target → starting policy
    → :func:`toyfdiv.train`), so a comparison and the Configs of its runs give identical
    numbers.  ``callback(k, steps)`` is called after each update.
    """
    if not isinstance(config, Config):
        raise ValueError(f"config={config!r} must be a Config")
    task, policy = start(config)
    target = make_target(task, config.kind, config.target_options)
    hist = train(policy, target, config.divergence, steps=config.steps, lr=config.lr, optimizer=config.optimizer,
                 estimator=config.estimator, seed=config.seed, schedule=config.schedule, lr_final=config.lr_final,
                 record_every=config.record_every, callback=callback, **dict(config.estimator_options))
    return hist
