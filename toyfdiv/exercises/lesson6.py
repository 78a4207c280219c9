"""Exercise checkers for lesson 6, "From exact to sampled".

>>> from toyfdiv.exercises import lesson6
>>> print(lesson6.check_z_variance(0.0))          # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np

from .. import tasks as _tasks
from ..estimators import BASELINES
from . import Verdict, as_number, right, wrong

__all__ = ["check_z_variance", "check_unbiased_baselines", "check_z_shift", "Z_VARIANCE_N"]

#: Exercise 1: the batch size n of the importance-sampling estimate Ẑ.
Z_VARIANCE_N = 10


def _pointwise_z() -> float:
    return float(np.exp(_tasks.get("reviews").target("pointwise", epsilon=0.0).log_z))


def check_z_variance(answer) -> Verdict:
    """Exercise 1: Var(Ẑ) for the pointwise target of the reviews task ("contains good", ε = 0),
    Ẑ = (1/n) Σ_i P(x_i)/a(x_i), x_i ∼ a i.i.d., n = :data:`Z_VARIANCE_N`.

    Right: P/a = b ∈ {0, 1}, so Ẑ is a Bernoulli mean: Var(Ẑ) = Z(1 − Z)/n.
    """
    value = as_number(answer, "Var(Ẑ)")
    if isinstance(value, Verdict):
        return value
    z, n = _pointwise_z(), Z_VARIANCE_N
    truth = z * (1 - z) / n
    if math.isclose(value, truth, rel_tol=1e-3):
        return right(f"P/a = b(x) ∈ {{0, 1}}, so Ẑ is the fraction of n = {n} base samples that satisfy the "
                     f"constraint: a Bernoulli({z:.4f}) mean with variance Z(1 − Z)/n = {truth:.5f}. Its "
                     f"standard deviation, {math.sqrt(truth):.3f}, is {math.sqrt(truth) / z:.0%} of Z.")
    if math.isclose(value, truth * n, rel_tol=1e-3):
        return wrong(f"{value:.4g} is the variance of a single term P(x)/a(x). Ẑ averages n = {n} "
                     "independent terms: divide by n.")
    if math.isclose(value, math.sqrt(truth), rel_tol=1e-3):
        return wrong(f"{value:.4g} is the standard deviation of Ẑ; the question asks for its variance.")
    if math.isclose(value, z * z / n, rel_tol=1e-3) or math.isclose(value, z / n, rel_tol=1e-3):
        return wrong("Close: Var(Ẑ) = (E_a[(P/a)²] − Z²)/n. With P/a = b ∈ {0, 1}, b² = b, so "
                     "E_a[(P/a)²] = Z — do not forget to subtract Z².")
    if math.isclose(value, 0.0, abs_tol=1e-12):
        return wrong("Ẑ is a random variable — it depends on which n sequences were drawn — so its "
                     "variance is > 0. Write Ẑ as a mean of P(x)/a(x) and compute the variance of one term.")
    return wrong(f"{value:.4g} is not it. Hint: here P(x) = a(x) b(x), so P(x)/a(x) = b(x) ∈ {{0, 1}}; "
                 "Z = target.log_z exponentiated is the chance that b = 1 under a.")


def check_unbiased_baselines(answer) -> Verdict:
    """Exercise 2: which baselines of the sampled estimator keep E[ĝ] = ∇θ D_f exactly, with exact Z?

    Right: "none", "loo" and "dpg" — those that never depend on the sample x_i they are
    subtracted from; the batch "mean" includes x_i itself and gives (1 − 1/n) ∇θ D_f on-policy,
    and so does "ema" on its first step (it is the batch mean there: no past batch yet).
    """
    if answer is None:
        return wrong(f"no answer yet: give a set of baseline names from {list(BASELINES)}.")
    names = {answer} if isinstance(answer, str) else set(answer)
    unknown = sorted(str(b) for b in names - set(BASELINES))
    if unknown:
        return wrong(f"{unknown} are not baselines of toyfdiv.estimators; allowed: {list(BASELINES)}.")
    truth = {"none", "loo", "dpg"}
    if not names:
        return wrong("no answer yet: give the set of baselines. Hint: a baseline keeps the estimate "
                     "unbiased when it does not depend on the very sample it is subtracted from.")
    if names == truth:
        return right("a baseline B that does not depend on x_i adds E_q[ρ B ∇ log π] = B Σ_x ∇π(x) = 0. "
                     "The batch mean uses x_i itself: on-policy R_i − mean(R) = (1 − 1/n)(R_i − mean_{j≠i} R), "
                     "so its estimate is shrunk by exactly (1 − 1/n) — the leave-one-out 'loo' fixes that.")
    parts = []
    if "mean" in names:
        parts.append("'mean' is biased: the batch mean contains R_i itself, and on-policy "
                     "R_i − mean(R) = (1 − 1/n)(R_i − mean_{j≠i} R), so E[ĝ] = (1 − 1/n) ∇θ D_f "
                     "(look at relative_bias ≈ 1/n in estimator_stats)")
    if "ema" in names:
        parts.append("'ema' is not exactly unbiased: on the first step it has no past batch and is the "
                     "batch mean, so that estimate is (1 − 1/n) ∇θ D_f; from the second step on it averages "
                     "past batches only and is unbiased")
    for b in sorted(truth - names):
        why = {"none": "no baseline is trivially unbiased",
               "loo": "the leave-one-out mean does not depend on x_i",
               "dpg": "−f'(1) is a constant"}[b]
        parts.append(f"'{b}' is missing: {why}")
    return wrong("; ".join(parts) + ". A baseline keeps the estimate unbiased when it does not depend on "
                 "the very sample it is subtracted from.")


def check_z_shift(answer) -> Verdict:
    """Exercise 3: for which divergence does an estimated Ẑ only *shift* every pseudo-reward of
    a batch by one constant — so that a batch baseline removes its effect exactly?

    Right: "reverse_kl" (R = log P − log π − log Ẑ − 1).
    """
    if answer is None:
        return wrong("no answer yet: give one divergence name, e.g. 'js'.")
    name = getattr(answer, "name", answer)
    if name == "reverse_kl":
        return right("R = log P(x) − log π(x) − log Ẑ − 1: Ẑ enters as the same additive constant for the "
                     "whole batch, and a batch baseline (mean, loo) subtracts it away — the rows with exact "
                     "and batch Z coincide.")
    if name == "forward_kl":
        return wrong("For forward KL, R = P/(π Ẑ): Ẑ *rescales* every reward by 1/Ẑ. The direction of each "
                     "estimate is unchanged (same cosine), but a baseline subtracts, it cannot undo a "
                     "scale: the length is biased.")
    if name in ("js", "hellinger", "tv", "pearson", "neyman"):
        return wrong(f"For {name}, −f'(π Ẑ/P) is non-linear in log Ẑ: a wrong Ẑ changes the rewards of "
                     "different sequences by different amounts, which no constant baseline can undo. "
                     "Look for the f whose f'(t) is affine in log t.")
    return wrong(f"{answer!r} is not a registered divergence name; look for the f whose f'(t) is affine in log t.")
