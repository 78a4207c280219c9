"""Solutions to the exercises of lesson 5, "Which divergence?" — run: python lessons/solutions/05_which_divergence.py"""

import numpy as np
import sympy as sp

from toyfdiv import divergences, experiments
from toyfdiv.exercises import lesson5

# 1. The JS pseudo-reward R = −f'(t) = −½ log(2t/(1 + t)) tends to −½ log 2 as t = π/p → ∞.
t = sp.symbols("t", positive=True)
f = sp.Rational(1, 2) * (t * sp.log(t) - (1 + t) * sp.log((1 + t) / 2))
floor = sp.limit(-sp.diff(f, t), t, sp.oo)
assert sp.simplify(floor + sp.log(2) / 2) == 0
verdict = lesson5.check_js_floor(float(floor))
print(verdict)
assert verdict

# 2. Where p(x) = 0 < π(x) the f-DPG weight is π(x)·f'(∞), f'(∞) = lim f(t)/t.
finite = {n for n in lesson5.FIXED_DIVERGENCES if np.isfinite(divergences.get(n).slope_at_infinity)}
verdict = lesson5.check_finite_against_zeros(finite)
print(sorted(finite), verdict)
assert verdict

# 3. Run the unigram experiment and sort by final entropy, largest first.
setup = dict(lesson5.RANKING_SETUP)
runs = experiments.compare(setup.pop("task"), setup.pop("kind"), list(setup.pop("divergences")), **setup)
entropy = {name: h.final()["entropy"] for name, h in runs.items()}
ranking = sorted(entropy, key=entropy.get, reverse=True)
verdict = lesson5.check_diversity_ranking(ranking)
print(ranking, verdict)
assert verdict
assert ranking == ["forward_kl", "js", "reverse_kl"]  # the same picture as with the TinyLM
