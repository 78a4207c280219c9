"""Exercise checkers for lesson 10, "Preference optimisation beyond DPO, and the diversity question".

>>> from toyfdiv.exercises import lesson10
>>> print(lesson10.check_ipo_pi_a(0.5))          # doctest: +SKIP
"""

from __future__ import annotations

import math

from . import Verdict, agrees, as_number, right, wrong

__all__ = ["check_ipo_pi_a", "check_ratio", "check_pass_at_k", "IPO_TAU", "RATIO_A", "RATIO_BETA", "PASS_P", "PASS_K"]

#: Exercise 1: IPO's τ in the three-output example (one pair a ≻ b, uniform reference).
IPO_TAU = 1.0
#: Exercise 2: the reference probabilities of two correct answers, and β (forward-KL regularisation).
RATIO_A, RATIO_BETA = (0.1, 0.001), 0.05
#: Exercise 3: P(correct | c) of a prompt, and the number of samples k.
PASS_P, PASS_K = 0.2, 8


def _softmax3(x: float) -> list[float]:
    e = [math.exp(x), math.exp(-x), 1.0]
    return [v / sum(e) for v in e]


def check_ipo_pi_a(answer) -> Verdict:
    """Exercise 1: π(a) at IPO's optimum for one pair a ≻ b over {a, b, c}, uniform reference, τ = IPO_TAU.

    Right: softmax(1/(4τ), −1/(4τ), 0)[0] (≈ 0.419 at τ = 1).
    """
    value = as_number(answer, "π(a)")
    if isinstance(value, Verdict):
        return value
    truth = _softmax3(1 / (4 * IPO_TAU))[0]
    if agrees(value, truth):
        return right(f"π(a) = e^(1/4τ)/(e^(1/4τ) + e^(−1/4τ) + 1) = {truth:.4f}: the margin log π(a)/π(b) is "
                     "1/(2τ), split evenly between a and b because the softmax gradient of a pair sums to zero; "
                     "c, never compared, keeps its logit.")
    if agrees(value, 1.0):
        return wrong("π(a) = 1 is DPO's limit, not IPO's: IPO's squared loss is zero at a finite margin 1/(2τ).")
    if agrees(value, _softmax3(1 / (2 * IPO_TAU))[0]):
        return wrong("that puts the whole margin 1/(2τ) on each side: the margin log π(a) − log π(b) is 1/(2τ), "
                     "so a gets +1/(4τ) and b −1/(4τ).")
    if agrees(value, 1 / (1 + math.exp(-1 / (2 * IPO_TAU)))):
        return wrong("that is π(a)/(π(a) + π(b)): remember c, which keeps logit 0, in the normaliser.")
    return wrong(f"{value:.4g} is not it. Write δ = (s, −s, 0) for the logits (a pair's gradient sums to zero), set "
                 "2s = 1/(2τ), and normalise over all three outputs.")


def check_ratio(answer) -> Verdict:
    """Exercise 2: π*(y₁)/π*(y₂) for two correct answers (same reward) with a = RATIO_A under forward-KL
    regularisation at β = RATIO_BETA.  Right: 100 (a's ratio, for every f and β)."""
    value = as_number(answer, "the ratio π*(y₁)/π*(y₂)")
    if isinstance(value, Verdict):
        return value
    truth = RATIO_A[0] / RATIO_A[1]
    if agrees(value, truth):
        return right("100: π* = a·(f')⁻¹((r − λ)/β) is a times a function of the reward, so equal rewards keep a's "
                     "ratio — for forward KL, reverse KL, every f, every β. Regularising toward a keeps a's taste "
                     "among equally good answers; MARA is one way out.")
    if agrees(value, 1.0):
        return wrong("equal rewards do not give equal probabilities: the target is a·g(r), so the ratio is "
                     "a(y₁)/a(y₂) · g(r)/g(r).")
    return wrong(f"{value:.4g}: write the forward-KL optimum π* = β a/(λ − r) and divide for the two answers.")


def check_pass_at_k(answer) -> Verdict:
    """Exercise 3: pass@k for P(correct) = PASS_P and k = PASS_K.  Right: 1 − (1 − p)^k."""
    value = as_number(answer, "pass@k")
    if isinstance(value, Verdict):
        return value
    truth = 1 - (1 - PASS_P) ** PASS_K
    if agrees(value, truth):
        return right(f"1 − (1 − {PASS_P})^{PASS_K} = {truth:.4f}: at least one of {PASS_K} independent answers is "
                     "correct unless all fail.")
    if agrees(value, PASS_K * PASS_P):
        return wrong("k·p counts expected correct answers (and can exceed 1); pass@k is P(at least one correct).")
    if agrees(value, PASS_P**PASS_K):
        return wrong("p^k is the chance that *all* k answers are correct; pass@k needs at least one.")
    if agrees(value, (1 - PASS_P) ** PASS_K):
        return wrong("(1 − p)^k is the chance that all k fail: take its complement.")
    return wrong(f"{value:.4g} is not it: P(no correct answer in k independent tries) = (1 − p)^k.")
