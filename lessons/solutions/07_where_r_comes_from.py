"""Solutions to the exercises of lesson 7, "Where does r come from?" — run: python lessons/solutions/07_where_r_comes_from.py"""

import numpy as np

from toyfdiv import divergences, tasks
from toyfdiv import feedback as fb
from toyfdiv.exercises import lesson7

task = tasks.get("reviews")

# 1. Pairs see σ((ũ(x) − ũ(y))/τ) = σ(r(x) − r(y)) with r = ũ/τ (up to a constant) — the rater's .reward.
rater = lesson7.exercise_rater()
r = rater.perceived / rater.temperature
assert np.allclose(r, rater.reward)
verdict = lesson7.check_bt_reward(r)
print(verdict)
assert verdict

# 2. Even the exact biased reward over-optimises: read the turning point of the curve.
curve = fb.overoptimisation_curve(task.log_a, lesson7.biased_rater().reward, task.reward.values)
assert curve.is_overoptimised
verdict = lesson7.check_turning_beta(curve.turning_beta)
print(f"β* = {curve.turning_beta:.3f}", verdict)
assert verdict

# 3. f-DPO needs f'(t) → −∞ as t → 0⁺.
allowed = {n for n in lesson7.FIXED_DIVERGENCES if divergences.get(n).f_prime_to_minus_inf_at_zero}
verdict = lesson7.check_fdpo_divergences(allowed)
print(sorted(allowed), verdict)
assert verdict
