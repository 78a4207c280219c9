"""Lesson 2 exercises: RLHF is reverse-KL minimisation.

All three use the default task (film reviews, sentiment reward r, base model a).

1. :func:`check_optimal_value` — J* = max_π E_π[r] − β KL(π‖a) at β = :data:`BETA`.
2. :func:`check_beta_zero_limit` — the limit of p_β = a·exp(r/β)/Z as β → 0, as log-probabilities.
3. :func:`check_kl_budget` — the β at which KL(p_β ‖ a) = :data:`KL_BUDGET` nat.
"""

from __future__ import annotations

import math

import numpy as np

from .. import metrics, tasks, targets
from . import Verdict, agrees, as_number, default_task, right, wrong

__all__ = ["BETA", "KL_BUDGET", "check_optimal_value", "check_beta_zero_limit", "check_kl_budget"]

#: The β of exercise 1.
BETA = 0.5
#: The KL budget (nats) of exercise 3.
KL_BUDGET = 1.0
_KL_TOL = 1e-3


# ---------------------------------------------------------------------------- exercise 1
def check_optimal_value(value: float) -> Verdict:
    """Is ``value`` = max_π J(π) = β log Z for the default task at β = BETA?"""
    v = as_number(value, "J*")
    if isinstance(v, Verdict):
        return v
    task = default_task()
    p = task.target("rlhf", beta=BETA)
    truth = BETA * p.log_z
    close = lambda x: agrees(v, x)  # noqa: E731
    if close(truth):
        return right(f"J* = β log Z = {truth:.6g}: the identity J(π) = β log Z − β KL(π‖p) at π = p.")
    reward = float(np.exp(p.log_probs) @ task.reward.values)
    if close(p.log_z):
        return wrong(f"{v:.6g} is log Z; J* = β log Z carries the factor β = {BETA}.")
    if close(reward):
        return wrong(f"{v:.6g} is E_p[r], only the reward part: J* also subtracts β KL(p‖a) = "
                     f"{BETA * p.kl_from_base:.4g}.")
    if close(reward + BETA * p.kl_from_base):
        return wrong("you added β KL(p‖a); J = E_π[r] − β KL(π‖a) subtracts it.")
    if close(float(task.reward.values.max())):
        return wrong("max r is what β → 0 reaches; at β > 0 the KL penalty costs something: J* < max r.")
    if v > truth:
        return wrong(f"{v:.6g} is larger than max_π J(π): no π scores that much. Evaluate J at π = p.")
    return wrong(f"{v:.6g} is smaller than J at π = p = a·exp(r/β)/Z; the maximiser is p itself. "
                 "Evaluate J there, or use the identity J(π) = β log Z − β KL(π‖p).")


# ---------------------------------------------------------------------------- exercise 2
def beta_zero_limit() -> np.ndarray:
    """(N,) log lim_{β→0} p_β: a restricted to argmax r, renormalised (a pointwise target)."""
    task = default_task()
    r = task.reward.values
    return targets.pointwise(task.log_a, r == r.max()).log_probs


def check_beta_zero_limit(log_probs) -> Verdict:
    """Is ``log_probs`` (N,) the β → 0 limit of p_β on the default task?"""
    task = default_task()
    n = task.space.size
    try:
        x = np.asarray(log_probs, dtype=float)
    except (TypeError, ValueError):
        return wrong(f"give a numpy array of {n} log-probabilities, one per sequence; got {type(log_probs).__name__}")
    if x.shape != (n,):
        return wrong(f"give a log-probability vector of shape ({n},), one entry per sequence; got {x.shape}")
    if np.isnan(x).any() or np.isposinf(x).any():
        return wrong("log-probabilities must lie in [-inf, 0]; yours contain NaN or +inf")
    if np.all(x >= 0) and math.isclose(float(x.sum()), 1.0, rel_tol=1e-6):
        return wrong("those look like probabilities; give log-probabilities (np.log of them), "
                     "the library's convention")
    pi = np.exp(x)
    if not math.isclose(float(pi.sum()), 1.0, rel_tol=1e-5):
        return wrong(f"exp(log_probs) sums to {pi.sum():.4g}, not 1: normalise.")
    truth = np.exp(beta_zero_limit())
    r = task.reward.values
    best = r == r.max()
    tv = 0.5 * float(np.abs(pi - truth).sum())
    if tv < 1e-4:
        return right(f"p_β → a(x)·1[r(x) = max r] / a(max r): the {int(best.sum())} best sequences, in a's "
                     "proportions — the pointwise GDC target with b = [r = max r] (lesson 3).")
    a = np.exp(task.log_a)
    if 0.5 * float(np.abs(pi - a).sum()) < 1e-4:
        return wrong("that is a, the β → ∞ limit. As β → 0, exp(r/β) favours the highest reward without bound.")
    if abs(float(pi[best].sum()) - 1.0) < 1e-4:
        uniform = best / best.sum()
        if 0.5 * float(np.abs(pi - uniform).sum()) < 1e-4:
            return wrong("right support, wrong weights: the limit keeps a's proportions among the best "
                         "sequences (p_β(x)/p_β(y) = a(x)/a(y) when r(x) = r(y)), not uniform ones.")
        if int((pi > 1e-6).sum()) == 1:
            return wrong(f"you put all the mass on one sequence, but {int(best.sum())} sequences tie for "
                         "max r; the limit shares the mass among them in a's proportions.")
        return wrong("right support (the sequences with max r), wrong weights: the limit keeps a's proportions.")
    return wrong(f"your distribution puts {pi[best].sum():.3g} on the sequences with max r; the limit puts all "
                 "its mass there. Try targets.rlhf with a small β, and watch where the mass goes.")


# ---------------------------------------------------------------------------- exercise 3
def check_kl_budget(beta: float) -> Verdict:
    """Does ``beta`` give KL(p_β ‖ a) = KL_BUDGET nats (± 1e-3) on the default task?"""
    b = as_number(beta, "beta")
    if isinstance(b, Verdict):
        return b
    if not b > 0 or math.isinf(b):
        return wrong(f"β must be a finite number > 0; got {b}")
    task = default_task()
    p = task.target("rlhf", beta=b)
    kl = p.kl_from_base
    if abs(kl - KL_BUDGET) <= _KL_TOL:
        gain = float(np.exp(p.log_probs) @ task.reward.values) - _base_reward(task)
        return right(f"β = {b:.4g}: KL(p_β‖a) = {kl:.4f} nats, and E_p[r] rises by {gain:.3g} over E_a[r]. "
                     "KL(p_β‖a) falls as β grows, so bisection on β finds it.")
    direction = "increase β (a larger β keeps p closer to a)" if kl > KL_BUDGET else \
        "decrease β (a smaller β lets p move further from a)"
    return wrong(f"at β = {b:.4g}, KL(p_β‖a) = {kl:.4f} nats, not {KL_BUDGET:g} ± {_KL_TOL:g}: {direction}.")


def _base_reward(task: tasks.Task) -> float:
    """E_a[r] under the base model."""
    return metrics.alignment(task.log_a, task.target("rlhf", beta=1.0))["reward"]
