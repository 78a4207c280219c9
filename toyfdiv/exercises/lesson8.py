"""Exercise checkers for lesson 8, the capstone: a task of your own design.

Each checker takes the student's own objects (a :class:`toyfdiv.tasks.Task`, trained
policies) and checks them against the targets the library builds from that task.

>>> from toyfdiv.exercises import lesson8
>>> print(lesson8.check_design(my_task))          # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from .. import metrics as _metrics
from .. import targets as _targets
from ..policies.base import Policy
from ..tasks import Task
from . import Verdict, right, wrong

__all__ = ["check_design", "check_pointwise_solution", "check_moments_solution", "MAX_SIZE"]

#: The largest space the capstone accepts (keeps every exact run well under a second).
MAX_SIZE = 5000


def check_design(task) -> Verdict:
    """Exercise 1: is the task well posed for every method of the course?

    Checks: a Task on a space of ≤ :data:`MAX_SIZE` sequences; a finite, non-constant reward;
    a constraint that the base model a satisfies sometimes but not always; moments that are
    feasible and differ from a's own moments (else λ = 0 and there is nothing to do).
    """
    if not isinstance(task, Task):
        return wrong(f"give a toyfdiv.tasks.Task (see section 1 of the lesson), got {type(task).__name__}.")
    n = task.space.size
    if n > MAX_SIZE:
        return wrong(f"the space has N = {n:,} sequences; keep it ≤ {MAX_SIZE:,} so that every exact run "
                     "stays fast — shrink the vocabulary or the length.")
    r = np.asarray(task.reward.values, dtype=float)
    if r.shape != (n,) or not np.all(np.isfinite(r)):
        return wrong(f"the reward must be a finite vector of shape ({n},), one value per sequence.")
    if np.ptp(r) == 0:
        return wrong("the reward is the same for every sequence: p_β = a for every β, RLHF has nothing to do. "
                     "Make it depend on the sequence.")
    a = np.exp(task.log_a)
    b = np.asarray(task.constraint.values)
    if b.shape != (n,) or not (b.dtype == bool or np.isin(b, (0, 1)).all()):
        return wrong(f"the constraint must be a bool vector of shape ({n},) (True where it holds).")
    sat = float(a @ b.astype(float))
    if sat >= 1 - 1e-12:
        return wrong("every sequence the base model can produce satisfies the constraint: the pointwise "
                     "target is a itself. Pick a constraint a sometimes violates.")
    if sat <= 1e-12:
        return wrong("no sequence satisfies the constraint (under a): the pointwise target p = a·b/Z "
                     "has Z = 0 and does not exist.")
    try:
        dist = _targets.distributional(task.log_a, task.feature_matrix, task.moments,
                                       feature_names=task.feature_names)
    except ValueError as err:
        return wrong(f"the moments cannot be met: {err}.")
    base_moments = a @ task.feature_matrix
    if np.allclose(base_moments, task.moments, atol=1e-3):
        return wrong(f"the moments {np.round(task.moments, 3).tolist()} are the base model's own "
                     f"({np.round(base_moments, 3).tolist()}): λ* = 0 and the distributional target is a. "
                     "Ask for something a does not already do.")
    rl = task.target("rlhf")
    return right(f"a well-posed task on N = {n} sequences. Under a: E[r] = {a @ r:.3f}, the constraint holds "
                 f"with probability {sat:.3f}, moments {np.round(base_moments, 3).tolist()}. KL(p‖a) of the "
                 f"targets: RLHF (β = {task.beta:g}) {rl.kl_from_base:.3f}, pointwise "
                 f"{-np.log(sat):.3f} (= −log P_a(b)), distributional {dist.kl_from_base:.3f} nats.")


def _policy_on(task, policy) -> np.ndarray | Verdict:
    if not isinstance(policy, Policy):
        return wrong(f"give the trained policy (a toyfdiv Policy, e.g. hist.policy), got {type(policy).__name__}.")
    if policy.space != task.space:
        return wrong("the policy lives on another space than the task's.")
    return policy.log_probs()


def check_pointwise_solution(task, policy, *, min_satisfaction: float = 0.95, max_kl: float = 0.05) -> Verdict:
    """Exercise 2: does ``policy`` solve GDC's pointwise problem for ``task``?

    Right when E_π[b] ≥ ``min_satisfaction`` and KL(p‖π) ≤ ``max_kl`` nats, p = a·b/Z (ε = 0):
    the constraint holds *and* the policy stays the closest distribution to a that satisfies it.
    """
    log_pi = _policy_on(task, policy)
    if isinstance(log_pi, Verdict):
        return log_pi
    p = _targets.pointwise(task.log_a, task.constraint.values)
    sat = float(np.exp(log_pi) @ np.asarray(task.constraint.values, dtype=float))
    kl = _metrics.kl(p.log_probs, log_pi)
    if np.allclose(log_pi, task.log_a):
        return wrong("this is the base model a itself: train it first (forward KL to the pointwise target).")
    if sat < min_satisfaction:
        return wrong(f"the constraint holds with probability {sat:.3f} < {min_satisfaction}: train longer, "
                     f"with a larger learning rate, or check that you trained on the *pointwise* target "
                     f"(KL(p‖π) = {kl:.3f} nats).")
    if kl > max_kl:
        return wrong(f"the constraint holds ({sat:.3f}), but KL(p‖π) = {kl:.3f} > {max_kl} nats: the policy "
                     "satisfies b by collapsing onto a few sequences instead of keeping a's distribution on "
                     "the allowed ones. GDC minimises the *forward* KL(p‖π), which covers all of p.")
    return right(f"E_π[b] = {sat:.3f} and KL(p‖π) = {kl:.4f} nats: the constraint holds and π stays close to "
                 "p = a·b/Z, the closest distribution to a that satisfies it.")


def check_moments_solution(task, policy, *, tol: float = 0.02) -> Verdict:
    """Exercise 3: does ``policy`` meet the task's moments, |E_π[φ_k] − μ̄_k| ≤ ``tol`` for every k?"""
    log_pi = _policy_on(task, policy)
    if isinstance(log_pi, Verdict):
        return log_pi
    phi, mu = task.feature_matrix, np.asarray(task.moments, dtype=float)
    got = np.exp(log_pi) @ phi
    base = np.exp(task.log_a) @ phi
    if np.allclose(log_pi, task.log_a):
        return wrong(f"this is the base model a itself, whose moments are {np.round(base, 3).tolist()}; train "
                     "it on the distributional target first.")
    off = np.abs(got - mu)
    if np.all(off <= tol):
        p = _targets.distributional(task.log_a, phi, mu, feature_names=task.feature_names)
        return right(f"E_π[φ] = {np.round(got, 3).tolist()} ≈ μ̄ = {np.round(mu, 3).tolist()}; "
                     f"KL(p‖π) = {_metrics.kl(p.log_probs, log_pi):.4f} nats to the I-projection p "
                     f"(λ* = {np.round(p.lambdas, 3).tolist()}).")
    names = task.feature_names
    worst = int(np.argmax(off))
    return wrong(f"E_π[{names[worst]}] = {got[worst]:.3f} but the target moment is {mu[worst]:.3f} (off by "
                 f"{off[worst]:.3f} > {tol}). Train longer on the distributional (or hybrid) target, and check "
                 f"which moments you asked for: the base model has {np.round(base, 3).tolist()}.")
