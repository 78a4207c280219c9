"""Exercise checkers for lesson 9, "From f-DPG to PPO and GRPO: what the estimators really optimise".

>>> from toyfdiv.exercises import lesson9
>>> print(lesson9.check_k3_loss_kl("forward"))          # doctest: +SKIP
"""

from __future__ import annotations

import math

from ..rl import effective_weight
from . import Verdict, agrees, as_number, right, wrong

__all__ = ["check_k3_loss_kl", "check_grpo_weight", "check_rloo_factor", "GRPO_G", "GRPO_P", "RLOO_G"]

#: Exercise 2: the group size and the prompt's success probability.
GRPO_G, GRPO_P = 8, 0.1
#: Exercise 3: the group size.
RLOO_G = 8

_FORWARD = {"forward", "forward_kl", "forward kl", "kl(a||pi)", "kl(a‖π)", "kl(a||π)", "kl(a‖pi)", "kl(a, pi)"}
_REVERSE = {"reverse", "reverse_kl", "reverse kl", "kl(pi||a)", "kl(π‖a)", "kl(π||a)", "kl(pi‖a)", "kl(pi, a)"}


def check_k3_loss_kl(answer) -> Verdict:
    """Exercise 1: which KL does E_π[∇θ k3] minimise when k3 = a/π − 1 − log(a/π) is added to the loss?

    Right: the forward KL, KL(a‖π): ∇θ k3 = (1 − a/π) ∇ log π, and E_π of that is −Σ a ∇ log π.
    """
    if answer is None:
        return wrong("no answer yet: write 'forward' (KL(a‖π)) or 'reverse' (KL(π‖a)), or 'none'.")
    text = str(answer).strip().lower().replace(" ", "") if isinstance(answer, str) else None
    if text is None:
        return wrong(f"answer with a string such as 'forward' or 'reverse', got {answer!r}.")
    norm = {s.replace(" ", "") for s in _FORWARD}
    if text in norm:
        return right("∇θ k3 = (1 − a/π) ∇θ log π with the sample held fixed, and E_π[(1 − a/π) ∇ log π] = "
                     "Σ (π − a) ∇ log π = −Σ a ∇ log π = ∇θ KL(a‖π): the forward KL, mass-covering — not the "
                     "reverse KL of RLHF, although E_π[k3] = KL(π‖a). The value is unbiased; its gradient is not.")
    if text in {s.replace(" ", "") for s in _REVERSE}:
        return wrong("E_π[k3] = KL(π‖a), but the loss is differentiated with the sample held fixed, which drops "
                     "the score-function part ∇ log π · k3. Write ∇θ k3 = (1 − a/π) ∇θ log π and take E_π of it.")
    if text in {"none", "neither", "no"}:
        return wrong("that is k1 in the loss (E_π[∇ log π] = 0). For k3 compute E_π[(1 − a/π) ∇ log π].")
    return wrong(f"{answer!r} is not one of 'forward', 'reverse', 'none'.")


def check_grpo_weight(answer) -> Verdict:
    """Exercise 2: GRPO's per-prompt weight w(p) = E[update]/∇p for binary rewards at G = 8, p = 0.1.

    Right: :func:`toyfdiv.rl.effective_weight` (0.1, 8) ≈ 2.18 (with ε = 1e-4 in the std).
    """
    value = as_number(answer, "w(p)")
    if isinstance(value, Verdict):
        return value
    truth = float(effective_weight(GRPO_P, GRPO_G))
    G, p = GRPO_G, GRPO_P
    if agrees(value, truth) or math.isclose(value, truth, rel_tol=1e-3):
        return right(f"w({p}) = {truth:.4f} at G = {G}: a prompt solved 10% of the time gets its gradient "
                     f"multiplied by {truth:.2f}, against {float(effective_weight(0.5, G)):.2f} at p = 0.5 — "
                     "GRPO weights rare successes up (the U shape).")
    if math.isclose(value, 1.0, rel_tol=1e-3):
        return wrong("w = 1 is RLOO's (unbiased). GRPO divides by the group's standard deviation: compute "
                     "h(1) − h(0), h(r) = E[A_1 | R_1 = r] with the other G − 1 rewards ∼ Binomial(G − 1, p).")
    if math.isclose(value, (G - 1) / G, rel_tol=1e-3):
        return wrong(f"{(G - 1) / G:.4f} = (G − 1)/G is Dr. GRPO's weight (mean baseline, no std).")
    if math.isclose(value, 1 / math.sqrt(p * (1 - p)), rel_tol=1e-3):
        return wrong("1/√(p(1 − p)) is the G → ∞ limit; at G = 8 the sample std of the group fluctuates: "
                     "average over the binomial number of successes among the others.")
    return wrong(f"{value:.4g} is not it. Hint: rl.group_advantages on the G possible groups "
                 "(1 or 0 for the first response, k successes among the others), weighted by binom.pmf(k, G − 1, p).")


def check_rloo_factor(answer) -> Verdict:
    """Exercise 3: the constant c with A_RLOO = c · A_Dr.GRPO for a group of G = 8.

    Right: G/(G − 1) = 8/7, since R_i − mean_{j≠i} R_j = (G/(G − 1)) (R_i − mean_j R_j).
    """
    value = as_number(answer, "c")
    if isinstance(value, Verdict):
        return value
    G = RLOO_G
    if agrees(value, G / (G - 1)):
        return right(f"c = G/(G − 1) = {G / (G - 1):.4f}: the leave-one-out mean is (G·mean − R_i)/(G − 1). "
                     "Same direction, so RLOO and Dr. GRPO differ only in step size — and RLOO is the unbiased one.")
    if agrees(value, (G - 1) / G):
        return wrong("inverted: the leave-one-out advantage is the larger one. Write mean_{j≠i} R_j = "
                     "(G·mean − R_i)/(G − 1) and expand R_i − that.")
    if agrees(value, 1.0):
        return wrong("not equal: the leave-one-out mean excludes R_i, the group mean includes it.")
    return wrong(f"{value:.4g} is not it. Hint: compare rl.group_advantages(R, 'rloo') with "
                 "rl.group_advantages(R, 'dr_grpo') for any R of shape (…, 8).")
