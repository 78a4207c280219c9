"""Where training loses pass@k: the fixed points of RL estimators, per prompt and with shared parameters.

    pass@k(π) = Σ_c ρ(c) [1 − (1 − P_π(correct | c))^k]           (the benchmark average over prompts)
    D_k(π)    = Σ_c ρ(c) Σ_{y correct} [1 − (1 − π(y | c))^k]      (expected distinct correct answers)

A crossing — pass@k of the trained policy above the base's at k = 1 and below it at large
k (Yue et al. 2025, Fig. 1) — needs some prompt with P_π(correct | c) < P_a(correct | c):
for one prompt pass@k is increasing in P(correct), so the curves of two policies never cross.

**Per prompt, a collapsing estimator does not lose it.**  With binary rewards on the first
token and a softmax per prefix (one parameter vector per prompt), every preset's update
moves the root logits by Σ_i s_i A_i (1[y_i1 = v] − π(v)); a correct sample has A ≥ 0 and a
wrong one A ≤ 0 (group baselines of 0/1 rewards), so the logit gap correct − wrong never
shrinks, while the KL terms pull towards a.  P(correct | c) ≥ P_a(correct | c) at every
fixed point, however little regularisation is left (k1 as a loss: none; GRPO at small β).

**With parameters shared across prompts it does.**  A single fine-tuning adapter θ added to
every prompt's logits (:class:`toyfdiv.rl.SharedAdapter`: logits(c) = logits_a(c) + θ) moves all prompts
together; the expected update of the preset, summed over prompts, is what θ follows, and the
fixed point trades a hard prompt whose answer is rare for the easy prompts: its P(correct | c)
falls far below a's, and pass@k falls below the base's at large k.

References: Yue, Chen, Lu, Zhao, Wang, Song, Huang (2025), "Does Reinforcement Learning Really
Incentivize Reasoning Capacity in LLMs Beyond the Base Model?", Fig. 1 (pass@k crossing);
Chen et al. (2021), pass@k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import as_float_array, check_instance, check_int, check_positive_float
from .diversity import expected_distinct_correct, pass_at_k_policy, p_correct, regularised_target
from .rl import Algorithm, SharedAdapter, fixed_point
from .rl_tasks import PromptedTask

__all__ = ["SharedAdapter", "RLFixedPoint", "rl_fixed_point", "average_pass_at_k", "average_distinct_correct",
           "CollapseStudy", "collapse_study"]


@dataclass(frozen=True)
class RLFixedPoint:
    """θ* with E[∇L(θ*)] = 0: log π (C, N), the update's norm there, converged, and the parametrisation."""

    log_probs: np.ndarray
    grad_norm: float
    converged: bool
    shared: bool
    algorithm: str


def rl_fixed_point(alg: Algorithm, task: PromptedTask, G: int = 4, *, shared: bool = False, steps: int = 300,
                   lr: float = 0.1, tol: float = 1e-9) -> RLFixedPoint:
    """θ* with E_batch[∇θ L(θ*)] = 0 for ``alg`` on ``task``: :func:`toyfdiv.rl.fixed_point` with Adam and the polish,

        rl_fixed_point(alg, task, G, shared=s, steps=n, lr=η, tol=ε)
          = rl.fixed_point(alg, task, G, start=SharedAdapter.at_base(task) if s else None, steps=n, lr=η,
                           tol=ε, optimizer="adam", check_every=n, polish=True)

    i.e. ``steps`` of Adam through the one loop from the base (one uninterrupted run), then
    Powell's hybrid root finder on the same exact expected update (:func:`toyfdiv.rl.expected_update`).
    ``shared=False``: one autoregressive policy per prompt; ``shared=True``: one
    :class:`SharedAdapter` for all prompts.  Warns (a :class:`~toyfdiv.rl.FixedPointWarning`, a
    :class:`~toyfdiv.targets.ConvergenceWarning`; converged=False) if ‖E[∇L]‖ ≥ ``tol``.
    """
    check_instance(alg, Algorithm, "alg")
    check_instance(task, PromptedTask, "task")
    G = check_int(G, "G", low=2)
    steps = check_int(steps, "steps")
    if not isinstance(shared, bool):
        raise ValueError(f"shared={shared!r} must be True (one adapter for all prompts) or False (one policy each)")
    fp = fixed_point(alg, task, G, start=SharedAdapter.at_base(task) if shared else None, steps=steps, lr=lr, tol=tol,
                     optimizer="adam", check_every=steps, polish=True)
    return RLFixedPoint(fp.log_probs, fp.grad_norm, fp.converged, shared, alg.name)


def _rho_rows(log_pi, task: PromptedTask) -> np.ndarray:
    lp = as_float_array(log_pi, "log_pi")
    if lp.shape != task.log_a.shape:
        raise ValueError(f"log_pi has shape {lp.shape}; expected {task.log_a.shape}: one row per prompt of the task")
    return lp


def _ks(ks) -> np.ndarray:
    k = np.asarray(ks)
    if k.ndim != 1 or k.size == 0 or not np.issubdtype(k.dtype, np.integer) or np.any(k < 1):
        raise ValueError(f"ks={ks!r} must be a non-empty 1-d array of integers ≥ 1: the numbers of samples")
    return k


def average_pass_at_k(log_pi, task: PromptedTask, ks) -> np.ndarray:
    """Σ_c ρ(c) [1 − (1 − P_π(correct | c))^k] for each k in ``ks``; (K,).  Correct = reward 1."""
    check_instance(task, PromptedTask, "task")
    lp, k = _rho_rows(log_pi, task), _ks(ks)
    per_prompt = pass_at_k_policy(lp, task.reward >= 1, k[:, None])  # (K, C)
    return per_prompt @ np.exp(task.log_rho)


def average_distinct_correct(log_pi, task: PromptedTask, ks) -> np.ndarray:
    """Σ_c ρ(c) Σ_{y correct} [1 − (1 − π(y | c))^k] for each k in ``ks``; (K,)."""
    check_instance(task, PromptedTask, "task")
    lp, k = _rho_rows(log_pi, task), _ks(ks)
    rho = np.exp(task.log_rho)
    return np.array([expected_distinct_correct(lp, task.reward >= 1, int(kk)) @ rho for kk in k])


@dataclass(frozen=True)
class CollapseStudy:
    """pass@k and distinct correct answers against k for each policy, and P(correct | c) per prompt.

    ks (K,); pass_at_k, distinct_correct: {label: (K,)}; p_correct: {label: (C,)}; fixed_points:
    {label: RLFixedPoint} for the trained ones.  The first label is the base a.
    """

    ks: np.ndarray
    pass_at_k: dict
    distinct_correct: dict
    p_correct: dict
    fixed_points: dict


def collapse_study(task: PromptedTask, alg: Algorithm, beta: float, G: int = 4, ks=2 ** np.arange(11), *,
                   steps: int = 300, lr: float = 0.1) -> CollapseStudy:
    """The base a, the exact per-prompt target a·e^{r/β}/Z (:func:`toyfdiv.diversity.regularised_target`,
    reverse KL), and the fixed point of ``alg`` per prompt and with a :class:`SharedAdapter`, side by side."""
    check_instance(task, PromptedTask, "task")
    beta = check_positive_float(beta, "beta")
    ks = _ks(ks)
    target = np.stack([regularised_target(la, r, beta) for la, r in zip(task.log_a, task.reward)])
    fps = {f"{alg.name}, one policy per prompt": rl_fixed_point(alg, task, G, shared=False, steps=steps, lr=lr),
           f"{alg.name}, shared adapter": rl_fixed_point(alg, task, G, shared=True, steps=steps, lr=lr)}
    policies = {"base a": task.log_a, f"exact target a·e^(r/β)/Z, β = {beta:g}": target,
                **{k: v.log_probs for k, v in fps.items()}}
    correct = task.reward >= 1
    return CollapseStudy(ks, {k: average_pass_at_k(v, task, ks) for k, v in policies.items()},
                         {k: average_distinct_correct(v, task, ks) for k, v in policies.items()},
                         {k: np.atleast_1d(p_correct(v, correct)) for k, v in policies.items()}, fps)
