"""Sentences that state a result, generated from the numbers they describe, with a stated threshold.

Every function takes numbers and returns ``(verdict, sentence)`` — a short machine-readable
verdict and the sentence the app, the CLI or a lesson prints.  A difference within the stated
threshold is called a tie; nothing is declared that the numbers do not show.

Thresholds (module constants, quoted in every sentence that uses them):

- :data:`REL_TIE` — two divergence values within a relative 5 % (or :data:`ABS_TIE` nats) are a tie;
- :data:`ENTROPY_TIE` — entropies within 0.05 nats are a tie;
- :data:`BIAS_Z` — a measured bias ‖E ĝ − g‖ is called a bias only above 3 noise floors √(tr Cov ĝ / trials)
  (for an unbiased estimator E‖mean − g‖² = tr Cov / trials, so the measured norm sits near one floor);
- :data:`ACCURACY_Z` — an accuracy on n held-out pairs has standard error √(acc(1 − acc)/n); differences
  within 2 standard errors are a tie.
- :data:`PASS_TIE` — two exact pass@k values within 0.005 (half a percentage point) are a tie.
- :data:`MODE_TIE` — a fit's masses on a target's two modes within 0.05 of each other are a tie: it sits
  between the modes (mass-covering), not on one (mode-seeking).
"""

from __future__ import annotations

import math
from typing import Mapping

__all__ = ["REL_TIE", "ABS_TIE", "ENTROPY_TIE", "BIAS_Z", "ACCURACY_Z", "tied", "column_winners", "entropy_extremes",
           "bias_verdict", "accuracy_vs_bayes", "concentration", "PASS_TIE", "pass_at_k_crossing", "MODE_TIE",
           "mode_choice"]

REL_TIE = 0.05
ABS_TIE = 1e-6
ENTROPY_TIE = 0.05
BIAS_Z = 3.0
ACCURACY_Z = 2.0
PASS_TIE = 0.005
MODE_TIE = 0.05


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ValueError(f"{name}={value!r:.80} must be a real number")
    try:
        v = float(value)
    except (OverflowError, TypeError, ValueError):  # 10**400, a size-2 array, complex
        raise ValueError(f"{name}={value!r:.80} must be a real number within float64") from None
    if math.isnan(v):
        raise ValueError(f"{name}={value!r} must not be NaN")
    return v


def _reals(values, name: str) -> list[float]:
    """A list of real numbers from a sequence (list, tuple, 1-d array), or a ValueError naming ``name``."""
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__") or getattr(values, "ndim", 1) != 1:
        raise ValueError(f"{name}={values!r:.80} must be a sequence of real numbers")
    return [_real(v, f"{name}[i]") for v in values]


def tied(x: float, y: float, rel: float = REL_TIE, abs_: float = ABS_TIE) -> bool:
    """|x − y| ≤ max(rel · max(|x|, |y|), abs): a tie (inf ties only with inf)."""
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= max(rel * max(abs(x), abs(y)), abs_)


def _fmt(v: float) -> str:
    return "∞" if math.isinf(v) else f"{v:.3g}"


def column_winners(table: Mapping[str, Mapping[str, float]]) -> tuple[dict[str, str], str]:
    """Does each run minimise the divergence it was trained on?  table[run][column] = D_col(π_run ‖ p).

    For each column that is also a run (and measured for every run): "own" if the run's own value is the smallest (ties within
    :data:`REL_TIE` count as the smallest), else "lost".  Returns ({column: "own" | "lost"}, sentence).
    """
    if not isinstance(table, Mapping) or not table:
        raise ValueError(f"table={table!r} must be a non-empty mapping run → {{column: value}}")
    runs = list(table)
    columns = [c for c in next(iter(table.values())) if c in table and all(c in table[r] for r in runs)]
    verdicts: dict[str, str] = {}
    lost = []
    for col in columns:
        values = {r: _real(table[r][col], f"table[{r!r}][{col!r}]") for r in runs}
        best = min(values, key=values.get)
        own = values[col]
        if tied(own, values[best]):
            verdicts[col] = "own"
        else:
            verdicts[col] = "lost"
            lost.append(f"on {col}'s column {best} is smaller ({_fmt(values[best])} vs {_fmt(own)})")
    tol = f"ties within {REL_TIE:.0%} relative"
    if not columns:
        return verdicts, "No run is measured against its own divergence here."
    if not lost:
        return verdicts, (f"Each run has the smallest value on its own divergence's column ({tol}): "
                          "each f is minimised by the run that optimises it.")
    return verdicts, (f"Not every run wins its own column ({tol}): " + "; ".join(lost) + ". A run stops where its "
                      "optimiser stopped (finite steps, limited capacity), so another f can end closer in that "
                      "divergence too.")


def entropy_extremes(entropies: Mapping[str, float], target_entropy: float | None = None) -> tuple[str, str]:
    """Which run is most mode-seeking (lowest H(π)) and which most mass-covering (highest), if the gap
    exceeds :data:`ENTROPY_TIE` nats.  Returns ("tie" | "ordered", sentence)."""
    if not isinstance(entropies, Mapping) or len(entropies) < 2:
        raise ValueError(f"entropies={entropies!r} must map at least two runs to H(π) in nats")
    vals = {k: _real(v, f"entropies[{k!r}]") for k, v in entropies.items()}
    lo = min(vals, key=vals.get)
    hi = max(vals, key=vals.get)
    gap = vals[hi] - vals[lo]
    ref = "" if target_entropy is None else f" The target p has {_real(target_entropy, 'target_entropy'):.3f} nats."
    if gap <= ENTROPY_TIE:
        return "tie", (f"The entropies H(π) lie within {gap:.3f} nats of each other ({vals[lo]:.3f}–{vals[hi]:.3f}): "
                       f"a tie at the threshold of {ENTROPY_TIE} nats — none is more mode-seeking here." + ref)
    return "ordered", (f"Lowest entropy H(π) = {vals[lo]:.3f} nats for {lo} (the most mode-seeking), highest "
                       f"{vals[hi]:.3f} nats for {hi} (the most mass-covering): a gap of {gap:.3f} nats, above the "
                       f"tie threshold of {ENTROPY_TIE} nats." + ref)


def bias_verdict(bias: float, bias_se: float) -> tuple[str, str]:
    """"biased" if bias > :data:`BIAS_Z` · bias_se, else "no bias detected" (a statement about these trials)."""
    b, se = _real(bias, "bias"), _real(bias_se, "bias_se")
    if b < 0 or se < 0:
        raise ValueError(f"bias={bias!r} and bias_se={bias_se!r} must be ≥ 0")
    if b > BIAS_Z * se:
        return "biased", (f"biased: ‖E ĝ − g‖ = {b:.3g} is {b / se if se > 0 else math.inf:.1f} noise floors "
                          f"(> {BIAS_Z:g})")
    return "no bias detected", (f"no bias detected: ‖E ĝ − g‖ = {b:.3g} is within {BIAS_Z:g} noise floors "
                                f"({BIAS_Z:g} × {se:.3g}); more trials lower the floor")


def accuracy_vs_bayes(accuracy: float, bayes: float, n: int) -> tuple[str, str]:
    """Held-out accuracy of a reward model against the raters' Bayes accuracy, with the standard
    error √(acc(1 − acc)/n) of n held-out pairs.  Returns ("below" | "tie" | "above", sentence)."""
    acc, bay = _real(accuracy, "accuracy"), _real(bayes, "bayes")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be the number of held-out pairs, an integer ≥ 1")
    se = math.sqrt(max(acc * (1 - acc), 1e-12) / n)
    diff = acc - bay
    head = (f"Held-out accuracy {acc:.3f} vs Bayes accuracy {bay:.3f} (± {ACCURACY_Z:g} × {se:.3f} standard errors "
            f"on {n:,} pairs)")
    if abs(diff) <= ACCURACY_Z * se:
        return "tie", (head + ": equal within the noise. On average no model beats the raters' own consistency; "
                       "a finite held-out set can land a little above it by chance.")
    if diff > 0:
        return "above", (head + ": above the Bayes accuracy by more than the noise — the held-out pairs are not "
                         "representative of base-model pairs (Bayes accuracy is an average over those).")
    return "below", (head + ": below it — more pairs or a better-specified reward model can close the gap.")


def concentration(probs: Mapping[str, float], rank_in_target: int, run: str, sequence: str,
                  threshold: float = 0.5) -> tuple[str, str]:
    """If a run puts more than ``threshold`` of its mass on one sequence, say so and where that sequence
    ranks under p (1 = p's most likely).  ``probs``: {"pi": π(x), "p": p(x)} of the run's top sequence."""
    pi, p = _real(probs["pi"], "probs['pi']"), _real(probs["p"], "probs['p']")
    if isinstance(rank_in_target, bool) or not isinstance(rank_in_target, int) or rank_in_target < 1:
        raise ValueError(f"rank_in_target={rank_in_target!r} must be an integer ≥ 1")
    if pi <= threshold:
        return "spread", f"{run} puts at most {pi:.2f} of its mass on one sequence (not above {threshold:.2f})."
    nth = {1: "most likely", 2: "second most likely", 3: "third most likely"}.get(rank_in_target,
                                                                                  f"#{rank_in_target}")
    why = ("" if rank_in_target == 1 else " — a mode of the reachable family, not p's own mode: a restricted "
           "policy that seeks a mode takes the one it can represent")
    return "collapsed", (f"{run} has collapsed: {pi:.2f} of its mass on “{sequence}”, p's {nth} sequence "
                         f"(p = {p:.3f}){why}.")


def pass_at_k_crossing(ks, base, trained, name: str = "the trained policy", tol: float = PASS_TIE
                       ) -> tuple[str, str]:
    """Does pass@k of ``trained`` fall below the base's as k grows?  ``ks`` increasing, ``base``/``trained``
    the exact pass@k at each k.  A gap within ``tol`` (:data:`PASS_TIE`) is a tie.

    Returns ("crosses" — at or above the base at the first k, below it by more than tol later;
    "below" — below from the first k; "never below", sentence).
    """
    ks_real = _reals(ks, "ks")
    if any(k != int(k) for k in ks_real):
        raise ValueError(f"ks={ks!r:.80} must be increasing integers ≥ 1")
    ks = [int(k) for k in ks_real]
    b, t = _reals(base, "base"), _reals(trained, "trained")
    tol = _real(tol, "tol")
    if not ks or len(b) != len(ks) or len(t) != len(ks):
        raise ValueError(f"ks, base and trained have lengths {len(ks)}, {len(b)}, {len(t)}; give one pass@k per k, "
                         "at least one k")
    if any(k2 <= k1 for k1, k2 in zip(ks, ks[1:])) or ks[0] < 1:
        raise ValueError(f"ks={ks!r} must be increasing integers ≥ 1")
    if tol < 0:
        raise ValueError(f"tol={tol!r} must be ≥ 0")
    below = [i for i in range(len(ks)) if t[i] < b[i] - tol]
    thr = f"gaps within {tol:g} are ties"
    if not below:
        worst = min(range(len(ks)), key=lambda i: t[i] - b[i])
        return "never below", (f"pass@k of {name} is never below the base's for k = {ks[0]} … {ks[-1]} (closest at "
                               f"k = {ks[worst]}: {t[worst]:.3f} vs {b[worst]:.3f}; {thr}).")
    i, j = below[0], below[-1]
    tail = f"; at k = {ks[j]}: {t[j]:.3f} vs {b[j]:.3f} ({thr})."
    if i == 0:
        return "below", f"pass@k of {name} is below the base's from k = {ks[0]} ({t[0]:.3f} vs {b[0]:.3f})" + tail
    return "crosses", (f"pass@k of {name} starts above or level with the base's (k = {ks[0]}: {t[0]:.3f} vs "
                       f"{b[0]:.3f}) and falls below it from k = {ks[i]} ({t[i]:.3f} vs {b[i]:.3f})" + tail)


def mode_choice(target, ends: Mapping[str, object], outcomes=None, tol: float = MODE_TIE) -> tuple[dict[str, str], str]:
    """Which of a two-mode target's modes each fit ends on: "one mode" if |π(m₁) − π(m₂)| > ``tol``, else
    "between the modes" (a tie within ``tol``, :data:`MODE_TIE`).

    ``target`` p over the outcomes; its modes m₁, m₂ are its two largest entries, the other
    outcomes the valley.  ``ends`` {run: π} over the same outcomes (e.g. where each divergence's
    restricted flow ends, :func:`toyfdiv.simplex.mode_seeking_ends`).  ``outcomes``: their names
    (default x1, x2, …).  Returns ({run: "one mode" | "between the modes"}, sentence).
    """
    p = _reals(target, "target")
    if len(p) < 3 or any(v < 0 for v in p):
        raise ValueError(f"target={target!r:.80} must be ≥ 0 probabilities of at least 3 outcomes: two modes and a "
                         "valley")
    names = [f"x{i + 1}" for i in range(len(p))] if outcomes is None else [str(o) for o in outcomes]
    if len(names) != len(p):
        raise ValueError(f"outcomes has {len(names)} names for {len(p)} outcomes of target; give one per outcome")
    if not isinstance(ends, Mapping) or not ends:
        raise ValueError(f"ends={ends!r:.80} must be a non-empty mapping run → π over the target's outcomes")
    tol = _real(tol, "tol")
    if tol < 0:
        raise ValueError(f"tol={tol!r} must be ≥ 0")
    m1, m2 = sorted(sorted(range(len(p)), key=lambda i: -p[i])[:2])  # the modes, in outcome order
    valley = [i for i in range(len(p)) if i not in (m1, m2)]
    if p[m2] <= max(p[i] for i in valley):
        raise ValueError(f"target={target!r:.80} has no two modes: its second largest entry ties the rest")
    verdicts, clauses = {}, []
    for run, pi in ends.items():
        q = _reals(pi, f"ends[{run!r}]")
        if len(q) != len(p):
            raise ValueError(f"ends[{run!r}] has {len(q)} entries; expected {len(p)}, one per outcome of target")
        hi, lo = (m1, m2) if q[m1] >= q[m2] else (m2, m1)
        if q[hi] - q[lo] > tol:
            verdicts[run] = "one mode"
            clauses.append(f"{run} ends on one mode, {names[hi]}: π({names[hi]}) = {q[hi]:.2f} against "
                           f"π({names[lo]}) = {q[lo]:.2f} (mode-seeking)")
        else:
            verdicts[run] = "between the modes"
            clauses.append(f"{run} ends between the modes, giving both the same mass within {tol:g} "
                           f"(π({names[m1]}) = {q[m1]:.2f}, π({names[m2]}) = {q[m2]:.2f}) and "
                           f"{sum(q[i] for i in valley):.2f} to the valley {', '.join(names[i] for i in valley)} "
                           "(mass-covering)")
    head = (f"Where each fit ends (p's modes are {names[m1]} and {names[m2]}; masses on them within {tol:g} of each "
            "other are a tie): ")
    return verdicts, head + "; ".join(clauses) + "."
