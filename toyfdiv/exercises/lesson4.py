"""Lesson 4 exercises: the f-DPG gradient, RLHF and DPG as two rows of one table.

1. :func:`check_pseudo_reward` — R(t) = −f'(t) for a divergence of the table, as a function of t = π/p.
2. :func:`check_rlhf_constant` — the c with β·w_reverse_kl − w_RLHF = c·π (default task, β = :data:`BETA`).
3. :func:`check_dpg_weights` — the forward-KL f-DPG weights w = π f'(π/p) for the pointwise
   target of the default task, written without calling :mod:`toyfdiv.fdpg`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import divergences, fdpg
from . import Verdict, agrees, as_number, default_task, right, wrong
from .lesson1 import T_GRID, evaluate

__all__ = ["BETA", "check_pseudo_reward", "check_rlhf_constant", "check_dpg_weights"]

#: The β of exercise 2.
BETA = 0.5


# ---------------------------------------------------------------------------- exercise 1
def check_pseudo_reward(name: str, reward: Callable) -> Verdict:
    """Is ``reward``(t) = −f'(t) for the divergence ``name`` (t = π/p > 0)?"""
    try:
        div = divergences.get(name)
    except ValueError as exc:
        return wrong(str(exc))
    t = T_GRID
    mine, err = evaluate(reward, t, "R")
    if err is not None:
        return err
    truth = div.pseudo_reward(np.log(t))
    if np.allclose(mine, truth, rtol=1e-6, atol=1e-9):
        return right(f"R(t) = −f'(t) for {div.name}: the gradient is −E_π[R ∇θ log π], REINFORCE with reward R.")
    if np.allclose(mine, -truth, rtol=1e-6, atol=1e-9):
        return wrong("sign: you wrote f'(t). The pseudo-reward is R = −f'(t), so that minimising D_f means "
                     "raising log π where R is high.")
    shift = mine - truth
    if np.allclose(shift, shift[0], rtol=1e-6, atol=1e-9):
        mine_at_1 = float(evaluate(reward, np.array([1.0]), "R")[0][0])
        return wrong(f"your R is off by a constant c = {shift[0]:.4g}: that shifts pseudo-rewards but not the "
                     "gradient (E_π[c ∇θ log π] = 0, a baseline absorbs it). It is the R of f − c(t − 1), the "
                     f"same divergence. The table's R is −f' of the table's f exactly: your R(1) = {mine_at_1:.4g}, "
                     f"−f'(1) = {float(div.pseudo_reward(0.0)):.4g}.")
    swapped, err = evaluate(reward, 1.0 / t, "R")
    if swapped is not None and np.allclose(swapped, truth, rtol=1e-6, atol=1e-9):
        return wrong("you used the ratio upside down: t = π/p (policy over target), not p/π.")
    k = int(np.argmin(np.abs(t - 2.0)))
    return wrong(f"at t = {t[k]:.3g} your R gives {mine[k]:.4g}, but −f'(t) = {truth[k]:.4g}. "
                 f"Differentiate f(t) = {div.formula} (sympy.diff) and flip the sign.")


# ---------------------------------------------------------------------------- exercise 2
def check_rlhf_constant(c: float) -> Verdict:
    """Is ``c`` the constant with β π f'_rev(π/p) − w_RLHF = c·π for p = a exp(r/β)/Z, β = BETA?"""
    v = as_number(c, "c")
    if isinstance(v, Verdict):
        return v
    task = default_task()
    p = task.target("rlhf", beta=BETA)
    truth = BETA * (1.0 + p.log_z)
    close = lambda x: agrees(v, x)  # noqa: E731
    if close(truth):
        return right(f"c = β(1 + log Z) = {truth:.6g}: the two rows differ by c·π, and Σ_x c π ∇θ log π = "
                     "c ∇θ Σ_x π = 0, so β ∇KL(π‖p) is exactly the RLHF gradient.")
    if close(BETA * p.log_z):
        return wrong("you dropped the 1 in f'(t) = 1 + log t for reverse KL: c = β(1 + log Z).")
    if close(1.0 + p.log_z):
        return wrong("missing the factor β: the RLHF gradient equals β × the reverse-KL gradient.")
    if close(-truth):
        return wrong("sign: compute β w_reverse_kl − w_RLHF (in that order).")
    if close(p.log_z) or close(BETA):
        return wrong("expand β log(π/p) = β log(π/a) − r + β log Z and collect what multiplies π.")
    return wrong(f"{v:.6g} is not it. Write β π (1 + log π − log p) with log p = log a + r/β − log Z and "
                 "compare with π (β log(π/a) − r).")


# ---------------------------------------------------------------------------- exercise 3
def check_dpg_weights(w) -> Verdict:
    """Is ``w`` (N,) = π f'_fwd(π/p) for π = the base model a and p = the pointwise target?"""
    task = default_task()
    p = task.target("pointwise", epsilon=0.0)
    n = task.space.size
    try:
        x = np.asarray(w, dtype=float)
    except (TypeError, ValueError):
        return wrong(f"give a numpy array of {n} weights, one per sequence; got {type(w).__name__}")
    if x.shape != (n,):
        return wrong(f"give one weight per sequence, shape ({n},); got {x.shape}")
    if not np.all(np.isfinite(x)):
        return wrong("your weights contain NaN or inf. Where p(x) = 0, forward KL's weight is π·f'(∞) = 0.")
    truth = fdpg.gradient_weights(task.log_a, p.log_probs, "forward_kl")
    close = lambda y: np.allclose(x, y, rtol=1e-6, atol=1e-12)  # noqa: E731
    if close(truth):
        return right("w = π·(−p/π) = −p, whatever π is: the forward-KL gradient is −Σ_x p(x) ∇θ log π(x) = "
                     "−E_p[∇θ log π], DPG's gradient (Khalifa et al. 2021).")
    prob_p = np.exp(p.log_probs)
    pi = np.exp(task.log_a)
    if close(prob_p):
        return wrong("sign: f'(t) = −1/t for forward KL, so w = π·(−p/π) = −p.")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pi > 0, prob_p / pi, 0.0)
    if close(ratio):
        return wrong("that is the pseudo-reward R = p/π; the weights are w = π f'(π/p) = −π R.")
    if close(-ratio):
        return wrong("that is f'(π/p) = −p/π; the weights multiply it by π: w = π f'(π/p).")
    if close(-pi):
        return wrong("−π gives Σ_x −π ∇θ log π = 0; the DPG weights sample from p, not π.")
    return wrong("not w = π f'(π/p). For forward KL f'(t) = −1/t: simplify π·f'(π/p) first.")
