"""Optimisers as pure functions: (params, grad, state) → (params, state).

Each optimiser is an :class:`Optimizer` pair ``init(params) -> state`` and
``step(params, grad, state) -> (params, state)``, with its state an explicit NamedTuple
(the optax ``GradientTransformation`` pattern).  Nothing is mutated.  A learning rate is a
float or a schedule ``lr(k)`` of the step count k = 0, 1, ….
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Union

import numpy as np

from ._util import check_int, check_positive_float

__all__ = ["Optimizer", "SGDState", "AdamState", "sgd", "adam", "get", "names",
           "constant", "cosine_decay", "exponential_decay"]

Schedule = Callable[[int], float]
LearningRate = Union[float, Schedule]


class Optimizer(NamedTuple):
    name: str
    init: Callable[[np.ndarray], NamedTuple]
    step: Callable[[np.ndarray, np.ndarray, NamedTuple], tuple[np.ndarray, NamedTuple]]


class SGDState(NamedTuple):
    count: int  # steps taken
    velocity: np.ndarray  # (P,) momentum buffer


class AdamState(NamedTuple):
    count: int  # steps taken
    mu: np.ndarray  # (P,) first-moment estimate
    nu: np.ndarray  # (P,) second-moment estimate


def constant(lr: float) -> Schedule:
    """lr(k) = lr."""
    lr = check_positive_float(lr, "lr")
    return lambda k: lr


def cosine_decay(lr: float, steps: int, final: float = 0.0) -> Schedule:
    """lr(k) = final + (lr − final)·½(1 + cos(π min(k, steps)/steps))."""
    lr = check_positive_float(lr, "lr")
    steps = check_int(steps, "steps")
    final = check_positive_float(final, "final", allow_zero=True)
    return lambda k: final + (lr - final) * 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps))


def exponential_decay(lr: float, steps: int, final: float) -> Schedule:
    """lr(k) = lr·(final/lr)^(min(k, steps)/steps): geometric from lr to final."""
    lr = check_positive_float(lr, "lr")
    steps = check_int(steps, "steps")
    final = check_positive_float(final, "final")
    return lambda k: lr * (final / lr) ** (min(k, steps) / steps)


def _schedule(lr: LearningRate) -> Schedule:
    return lr if callable(lr) else constant(lr)


def sgd(lr: LearningRate, momentum: float = 0.0) -> Optimizer:
    """v ← μ v + g;  θ ← θ − lr(k) v  (heavy-ball momentum μ; μ = 0 is plain gradient descent)."""
    sched = _schedule(lr)
    momentum = check_positive_float(momentum, "momentum", allow_zero=True)
    if momentum >= 1:
        raise ValueError(f"momentum={momentum} must be in [0, 1)")

    def init(params):
        return SGDState(0, np.zeros_like(params))

    def step(params, grad, state):
        v = momentum * state.velocity + grad
        return params - sched(state.count) * v, SGDState(state.count + 1, v)

    return Optimizer("sgd", init, step)


def adam(lr: LearningRate, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """m ← b1 m + (1−b1) g;  v ← b2 v + (1−b2) g²;  θ ← θ − lr(k) m̂ / (√v̂ + ε).

    m̂ = m/(1 − b1^k), v̂ = v/(1 − b2^k) (Kingma & Ba 2015, Algorithm 1).
    """
    sched = _schedule(lr)
    for name, b in (("b1", b1), ("b2", b2)):
        if isinstance(b, bool) or not isinstance(b, (int, float, np.floating, np.integer)) or not 0 <= b < 1:
            raise ValueError(f"{name}={b!r} must be in [0, 1)")
    eps = check_positive_float(eps, "eps")

    def init(params):
        return AdamState(0, np.zeros_like(params), np.zeros_like(params))

    def step(params, grad, state):
        k = state.count + 1
        mu = b1 * state.mu + (1 - b1) * grad
        nu = b2 * state.nu + (1 - b2) * grad * grad
        mu_hat = mu / (1 - b1**k)
        nu_hat = nu / (1 - b2**k)
        return params - sched(state.count) * mu_hat / (np.sqrt(nu_hat) + eps), AdamState(k, mu, nu)

    return Optimizer("adam", init, step)


_OPTIMIZERS = {"adam": adam, "sgd": sgd}


def names() -> list[str]:
    return list(_OPTIMIZERS)


def get(name: str, lr: LearningRate, **kwargs) -> Optimizer:
    """The optimiser called ``name`` ("adam" or "sgd") with learning rate ``lr``."""
    if not isinstance(name, str) or name not in _OPTIMIZERS:
        raise ValueError(f"optimizer={name!r} is unknown; allowed: {names()}")
    return _OPTIMIZERS[name](lr, **kwargs)
