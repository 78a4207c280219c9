"""Solutions to the exercises of lesson 3, "GDC" — run: python lessons/solutions/03_gdc.py"""

import numpy as np

from toyfdiv import tasks, targets
from toyfdiv.exercises import lesson3

task = tasks.default()
log_a, b = task.log_a, task.constraint.values

# 3.1 Z = Σ_x a(x) b(x): the base model's probability of satisfying the constraint.
answer_1 = float(np.exp(log_a)[b].sum())
assert np.isclose(answer_1, np.exp(targets.pointwise(log_a, b).log_z))
verdict = lesson3.check_pointwise_z(answer_1)
print("3.1", answer_1, "KL(p‖a) = −log Z =", -np.log(answer_1), verdict)
assert verdict

# 3.2 log(p/a) = λ*·φ − log Z; under p, E_p[φ] = μ̄, so KL(p‖a) = λ*·μ̄ − log Z.
p = lesson3.problem_target()
answer_2 = float(p.lambdas @ np.asarray(lesson3.MOMENTS) - p.log_z)
assert np.isclose(answer_2, p.kl_from_base)
verdict = lesson3.check_kl_from_base(answer_2)
print("3.2", answer_2, verdict)
assert verdict

# 3.3 GDC = Generation with Distributional Control (Khalifa, Elsahar, Dymetman, ICLR 2021).
answer_3 = "Generation with Distributional Control"
verdict = lesson3.check_gdc_name(answer_3)
print("3.3", verdict)
assert verdict
