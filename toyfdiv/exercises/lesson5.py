"""Exercise checkers for lesson 5, "Which divergence?".

>>> from toyfdiv.exercises import lesson5
>>> print(lesson5.check_js_floor(-0.5 * np.log(2)))          # doctest: +SKIP
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .. import divergences as _divergences
from .. import experiments
from . import Verdict, as_number, right, wrong

__all__ = ["check_js_floor", "check_finite_against_zeros", "check_diversity_ranking",
           "RANKING_SETUP", "FIXED_DIVERGENCES"]

#: The registry's divergences without a parameter (alpha and gjsd are families).
FIXED_DIVERGENCES = ("forward_kl", "reverse_kl", "tv", "js", "hellinger", "pearson", "neyman")

#: Exercise 3: the experiment whose entropies the student ranks (see :func:`check_diversity_ranking`).
RANKING_SETUP = dict(task="reviews", kind="rlhf", divergences=("forward_kl", "js", "reverse_kl"),
                     policy="ngram", policy_options={"order": 1}, steps=200, lr=0.05,
                     target_options={"beta": 0.5})


def check_js_floor(answer) -> Verdict:
    """Exercise 1: the lowest value of the JS pseudo-reward, lim_{t→∞} −f'(t), t = π/p.

    Right: −½ log 2 ≈ −0.3466 (the library's ``divergences.get("js").slope_at_infinity``, negated).
    """
    value = as_number(answer, "the floor of R_JS")
    if isinstance(value, Verdict):
        return value
    truth = -_divergences.get("js").slope_at_infinity
    if math.isclose(value, truth, rel_tol=1e-6, abs_tol=1e-9):
        return right(f"R_JS = ½ log((π + p)/(2π)) → −½ log 2 = {truth:.4f} as π/p → ∞, and it equals that "
                     "value exactly where p(x) = 0: a sequence the target forbids is pushed down with a "
                     "bounded, finite force.")
    if math.isclose(value, -truth, rel_tol=1e-6):
        return wrong(f"{value:.4f} is f'(∞) itself. The pseudo-reward is R = −f'(t): flip the sign. "
                     "Sequences with too much mass (t → ∞) must get a *negative* reward.")
    if math.isclose(value, 2 * truth, rel_tol=1e-6):
        return wrong(f"{value:.4f} = −log 2 is the floor for naver/disco's JSLoss, which is 2×JS. "
                     "With the textbook JS of this course, f(t) = ½[t log t − (1 + t) log((1 + t)/2)], "
                     "halve it.")
    if math.isinf(value) and value < 0:
        return wrong("−∞ is the floor of the reverse-KL pseudo-reward log(p/π) − 1. JS compares π with the "
                     "mixture m = (π + p)/2 ≥ π/2, so log(m/π) ≥ log ½: its reward stays bounded.")
    if value == 0:
        return wrong("0 is the floor of the forward-KL pseudo-reward p/π. For JS take the limit of "
                     "−f'(t) = −½ log(2t/(1 + t)) as t → ∞ (sympy.limit does it).")
    return wrong(f"{value:.4g} is not it. Write f'(t) = ½ log(2t/(1 + t)) and let t → ∞; "
                 "the pseudo-reward is its negative.")


def _names(answer) -> set[str] | Verdict:
    if isinstance(answer, str):
        answer = [answer]
    try:
        names = {getattr(a, "name", a) for a in answer}
    except TypeError:
        return wrong(f"Give a collection of divergence names such as {{'js', 'tv'}}, got {answer!r}.")
    unknown = sorted(str(n) for n in names if n not in FIXED_DIVERGENCES)
    if unknown:
        return wrong(f"{unknown} are not among the divergences asked about: {list(FIXED_DIVERGENCES)}.")
    return names


def check_finite_against_zeros(answer) -> Verdict:
    """Exercise 2: which fixed divergences keep a finite f-DPG gradient when p(x) = 0 < π(x)?

    Right: those with a finite f'(∞) = lim f(t)/t — forward KL, TV, JS, Hellinger, Neyman χ².
    """
    names = _names(answer)
    if isinstance(names, Verdict):
        return names
    if not names:
        return wrong("no answer yet: give the set of names. Hint: where p(x) = 0 < π(x) the gradient "
                     "weight is π(x)·lim_{t→∞} f(t)/t; the library stores that limit as slope_at_infinity.")
    divs = {n: _divergences.get(n) for n in FIXED_DIVERGENCES}
    truth = {n for n, d in divs.items() if np.isfinite(d.slope_at_infinity)}
    extra, missing = sorted(names - truth), sorted(truth - names)
    if not extra and not missing:
        return right("where p(x) = 0 the ratio t = π/p is infinite and the gradient weight is "
                     "π(x)·f'(∞); it is finite exactly for " + ", ".join(sorted(truth)) + ".")
    parts = []
    if extra:
        parts.append("; ".join(f"{n} has f'(t) → ∞ as t → ∞ (lim f(t)/t = ∞), so D_f(π‖p) = ∞ for every "
                               "π that puts mass where p has none" for n in extra))
    if missing:
        parts.append("; ".join(f"{n} is missing: lim f(t)/t = {divs[n].slope_at_infinity:.4g} is finite"
                               for n in missing))
    return wrong(". ".join(parts) + ". Hint: the weight of a forbidden sequence is π(x)·lim_{t→∞} f(t)/t.")


@lru_cache(maxsize=1)
def _ranking_entropies() -> dict[str, float]:
    s = dict(RANKING_SETUP)
    hists = experiments.compare(s.pop("task"), s.pop("kind"), list(s.pop("divergences")), **s)
    return {name: float(h.final()["entropy"]) for name, h in hists.items()}


def check_diversity_ranking(answer) -> Verdict:
    """Exercise 3: rank forward KL, JS, reverse KL by the entropy of the policy they reach,
    most diverse first, for the unigram policy of :data:`RANKING_SETUP`."""
    if isinstance(answer, str) or not hasattr(answer, "__iter__"):
        return wrong(f"Give a list of three names, most diverse first, e.g. ['js', 'forward_kl', 'reverse_kl']; got {answer!r}.")
    answer = [getattr(a, "name", a) for a in answer]
    want = set(RANKING_SETUP["divergences"])
    if not answer:
        return wrong(f"no answer yet: rank {sorted(want)} by the entropy of the policy each one reaches.")
    if sorted(answer) != sorted(want):
        return wrong(f"Rank exactly these three: {sorted(want)} (each once); got {answer}.")
    h = _ranking_entropies()
    truth = sorted(h, key=h.get, reverse=True)
    table = ", ".join(f"H({n}) = {h[n]:.3f}" for n in truth)
    if answer == truth:
        return right(f"{table} nats. Forward KL covers (it pays ∞ for π → 0 where p > 0), reverse KL "
                     "seeks modes (it pays ∞ only for mass where p = 0, and a price growing like log(π/p) "
                     "for mass where p is small), JS sits in between.")
    if answer == truth[::-1]:
        return wrong("That is the order from least to most diverse — or the order by reward. Rank by "
                     "the entropy H(π) of each final policy, largest first.")
    return wrong("Not the order of the entropies. Run the setup of RANKING_SETUP and sort by "
                 "hist.final()['entropy']. Think: which f pays infinitely for dropping a sequence p needs?")
