"""Exercise checkers for lesson 7, "Where does r come from?".

>>> from toyfdiv.exercises import lesson7
>>> rater = lesson7.exercise_rater()                     # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np

from .. import divergences as _divergences
from .. import tasks as _tasks
from ..feedback import Rater, overoptimisation_curve
from . import Verdict, as_number, right, wrong

__all__ = ["exercise_rater", "biased_rater", "check_bt_reward", "check_turning_beta",
           "check_fdpo_divergences", "FIXED_DIVERGENCES"]

FIXED_DIVERGENCES = ("forward_kl", "reverse_kl", "tv", "js", "hellinger", "pearson", "neyman")


def exercise_rater() -> Rater:
    """Exercise 1: an unbiased but noisy rater of the reviews task, u = sentiment, τ = 2."""
    task = _tasks.get("reviews")
    return Rater(task.reward.values, temperature=2.0, name="sentiment rater, τ = 2")


def biased_rater() -> Rater:
    """Exercise 2 (and lesson 7): a rater who also likes reviews that mention the film,
    ũ = u + 2·#film, τ = 1."""
    task = _tasks.get("reviews")
    return Rater(task.reward.values, temperature=1.0, bias=2.0 * _tasks.count(task.space, "film").values,
                 name="likes 'film' (+2 per mention), τ = 1")


def _vector(answer, n: int) -> np.ndarray | Verdict:
    if answer is None:
        return wrong(f"no answer yet: give a vector of {n} rewards, one per sequence of the space.")
    arr = np.asarray(getattr(answer, "values", answer), dtype=float)
    if arr.shape != (n,):
        return wrong(f"the answer has shape {arr.shape}; give one reward per sequence, shape ({n},).")
    if not np.all(np.isfinite(arr)):
        return wrong("the answer contains NaN or inf; a reward is finite everywhere.")
    return arr


def _same_up_to_constant(x: np.ndarray, y: np.ndarray) -> bool:
    d = x - y
    return float(np.max(np.abs(d - d.mean()))) < 1e-6 * (1.0 + float(np.max(np.abs(y))))


def check_bt_reward(answer) -> Verdict:
    """Exercise 1: the reward r(x) that infinitely many pairs from :func:`exercise_rater` identify
    (a vector over the space; any additive constant is fine).

    Right: r = ũ/τ = u/2 (+ any constant).
    """
    rater = exercise_rater()
    r = _vector(answer, rater.size)
    if isinstance(r, Verdict):
        return r
    tau = rater.temperature
    if _same_up_to_constant(r, rater.perceived / tau):
        return right("P(x ≻ y) = σ((ũ(x) − ũ(y))/τ) only sees differences of ũ/τ: pairs identify r = ũ/τ up "
                     "to one additive constant, here u/2. A noisier rater (larger τ) gives a flatter reward, "
                     "never a wrong ranking.")
    if _same_up_to_constant(r, rater.perceived):
        return wrong("That is the utility u itself. The data only see (ũ(x) − ũ(y))/τ: the scale of u is not "
                     f"identified, only u/τ. Divide by τ = {tau:g}.")
    if _same_up_to_constant(r, rater.perceived * tau):
        return wrong(f"You multiplied by τ = {tau:g}; the Bradley–Terry logit is (ũ(x) − ũ(y))/τ: divide.")
    if np.allclose(r, 0):
        return wrong("A zero reward would make every pair a coin flip; the rater prefers higher utility.")
    return wrong("Not the identified reward. Write P(x ≻ y) = σ(r(x) − r(y)) and match it with the rater's "
                 "σ((ũ(x) − ũ(y))/τ): which r makes them equal for every pair?")


def check_turning_beta(answer) -> Verdict:
    """Exercise 2: β* at which RLHF on the biased rater's own reward r = ũ/τ (no fitting error)
    gives the most *true* utility, on ``overoptimisation_curve``'s default grid.

    Right: ``overoptimisation_curve(task.log_a, biased_rater().reward, task.reward).turning_beta``
    (within 5 %).
    """
    value = as_number(answer, "β*")
    if isinstance(value, Verdict):
        return value
    task = _tasks.get("reviews")
    rater = biased_rater()
    curve = overoptimisation_curve(task.log_a, rater.reward, task.reward.values)
    truth = curve.turning_beta
    if math.isclose(value, truth, rel_tol=0.05):
        return right(f"β* ≈ {truth:.3f}: there E_p[u] = {curve.turning_true:.3f} at KL(p‖a) = {curve.turning_kl:.2f} "
                     f"nats. Below it the biased reward wins: at β = {curve.betas[-1]:g} the true utility has "
                     f"fallen to {curve.true[-1]:.3f} while the proxy keeps rising.")
    if value <= curve.betas.min() * 1.05:
        return wrong("That is the strongest optimisation on the grid, where the *proxy* is highest. The question "
                     "asks where the *true* utility E_{p_β}[u] peaks.")
    if value >= curve.betas.max() * 0.95:
        return wrong("At large β, p_β ≈ a: almost no optimisation. The true utility rises first, then falls — "
                     "find its maximum along the curve (curve.turning_beta).")
    return wrong(f"{value:.4g} is not where E_p[u] peaks. Compute toyfdiv.feedback.overoptimisation_curve("
                 "task.log_a, rater.reward, task.reward) and read its turning point.")


def check_fdpo_divergences(answer) -> Verdict:
    """Exercise 3: which of :data:`FIXED_DIVERGENCES` can f-DPO use?

    Right: those with f'(t) → −∞ as t → 0⁺ (``f_prime_to_minus_inf_at_zero``).
    """
    if answer is None or (not isinstance(answer, str) and len(answer) == 0):
        return wrong("no answer yet: give a set of names. Hint: f-DPO reads the reward off the policy, "
                     "r = β f'(π/π_ref) + λ — when is that map invertible for every reward?")
    names = {answer} if isinstance(answer, str) else {getattr(a, "name", a) for a in answer}
    unknown = sorted(str(n) for n in names if n not in FIXED_DIVERGENCES)
    if unknown:
        return wrong(f"{unknown} are not among {list(FIXED_DIVERGENCES)}.")
    divs = {n: _divergences.get(n) for n in FIXED_DIVERGENCES}
    truth = {n for n, d in divs.items() if d.f_prime_to_minus_inf_at_zero}
    if names == truth:
        return right("f'(0⁺) = −∞ keeps the regularised optimum π* = π_ref (f')⁻¹((r − λ)/β) strictly "
                     "positive, so r ↦ π is invertible and the Bradley–Terry likelihood can be written in π: "
                     + ", ".join(sorted(truth)) + ".")
    parts = []
    for n in sorted(names - truth):
        with np.errstate(all="ignore"):
            at0 = float(np.asarray(divs[n].f_prime(np.array([1e-300])))[0])
        parts.append(f"{n} has a bounded f'(0⁺) ≈ {at0:.3g}: its optimum sets π = 0 on low-reward sequences, "
                     "and every reward below a threshold maps to the same π, so r cannot be read off π")
    for n in sorted(truth - names):
        parts.append(f"{n} is missing: its f'(t) → −∞ as t → 0⁺")
    return wrong("; ".join(parts) + ".")
