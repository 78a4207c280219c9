"""Solutions to the exercises of lesson 2, "RLHF is reverse-KL minimisation" — run: python lessons/solutions/02_rlhf_is_reverse_kl.py"""

import numpy as np
from scipy.optimize import brentq

from toyfdiv import metrics, tasks, targets
from toyfdiv.exercises import lesson2

task = tasks.default()
log_a, r = task.log_a, task.reward.values

# 2.1 J(π) = β log Z − β KL(π‖p) ≤ β log Z, with equality at π = p: J* = β log Z.
p = targets.rlhf(log_a, r, lesson2.BETA)
answer_1 = lesson2.BETA * p.log_z
# the same number from the definition, at π = p
assert np.isclose(answer_1, metrics.alignment(p.log_probs, p)["reward"] - lesson2.BETA * metrics.kl(p.log_probs, log_a))
verdict = lesson2.check_optimal_value(answer_1)
print("2.1", answer_1, verdict)
assert verdict

# 2.2 As β → 0, p_β(x)/p_β(y) = a(x)/a(y)·exp((r(x) − r(y))/β): every sequence below max r loses
# all its mass, the sequences tied at max r keep a's proportions. That is GDC's pointwise
# target with the constraint b(x) = [r(x) = max r].
answer_2 = targets.pointwise(log_a, r == r.max()).log_probs
# the same limit approached from β > 0
assert np.allclose(np.exp(targets.rlhf(log_a, r, 0.01).log_probs), np.exp(answer_2), atol=1e-6)
verdict = lesson2.check_beta_zero_limit(answer_2)
print("2.2", verdict)
assert verdict

# 2.3 KL(p_β‖a) decreases in β: solve KL(p_β‖a) = 1 by bracketing root finding.
answer_3 = brentq(lambda b: targets.rlhf(log_a, r, b).kl_from_base - lesson2.KL_BUDGET, 0.1, 10.0, xtol=1e-10)
verdict = lesson2.check_kl_budget(answer_3)
print("2.3", answer_3, verdict)
assert verdict
