"""Solutions to the exercises of lesson 1, "f-divergences" — run: python lessons/solutions/01_f_divergences.py"""

import numpy as np
import sympy as sp

from toyfdiv import divergences
from toyfdiv.exercises import lesson1

# 1.1 Neyman's χ²: (π − p)²/π = p · (π/p − 1)² / (π/p), so f(t) = (t − 1)²/t.
answer_1 = lambda t: (t - 1) ** 2 / t  # noqa: E731
verdict = lesson1.check_generator(answer_1)
print("1.1", verdict)
assert verdict

# 1.2 lim_{t→∞} f_JS(t)/t, with sympy: the t log t terms cancel and leave ½ log 2.
t = sp.symbols("t", positive=True)
f_js = sp.Rational(1, 2) * (t * sp.log(t) - (1 + t) * sp.log((1 + t) / 2))
limit = sp.limit(f_js / t, t, sp.oo)
assert sp.simplify(limit - sp.log(2) / 2) == 0
answer_2 = float(limit)
verdict = lesson1.check_js_slope(answer_2)
print("1.2", limit, verdict)
assert verdict

# 1.3 The mode seekers are the rows with f'(∞) = lim f(t)/t = ∞: they cannot afford π ≫ p on the valley.
valley = {key: float(np.exp(lesson1.family_minimiser(key)[1][1])) for key in divergences.names()}
answer_3 = sorted(key for key, mass in valley.items() if mass < lesson1.VALLEY_MASS)
infinite_slope = sorted(key for key, d in zip(divergences.names(), divergences.registered())
                        if np.isinf(d.slope_at_infinity))
assert answer_3 == infinite_slope == ["pearson", "reverse_kl"], (answer_3, infinite_slope)
verdict = lesson1.check_mode_seeking(answer_3)
print("1.3", answer_3, verdict)
assert verdict
