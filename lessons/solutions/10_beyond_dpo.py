"""Solutions to the exercises of lesson 10, "Preference optimisation beyond DPO" — run: python lessons/solutions/10_beyond_dpo.py"""

import numpy as np
from scipy.special import softmax

from toyfdiv import diversity
from toyfdiv import feedback as fb
from toyfdiv.exercises import lesson10

# 1. IPO: δ = (s, −s, 0) with 2s = 1/(2τ); check against the library's optimum reached from the reference.
tau = lesson10.IPO_TAU
pi = softmax([1 / (4 * tau), -1 / (4 * tau), 0.0])
lib = np.exp(fb.ipo_dataset_optimum(np.log(np.full(3, 1 / 3)), fb.PreferenceDataset(np.array([0]), np.array([1]), 3), tau))
assert np.allclose(pi, lib)
verdict = lesson10.check_ipo_pi_a(pi[0])
print(verdict)
assert verdict

# 2. Forward KL: π* = β a/(λ − r); equal rewards → the ratio of a.
a = np.log([*lesson10.RATIO_A, 0.5, 1 - sum(lesson10.RATIO_A) - 0.5])
r = np.array([1.0, 1.0, 0.0, 0.0])
p = np.exp(diversity.regularised_target(a, r, lesson10.RATIO_BETA, "forward_kl"))
verdict = lesson10.check_ratio(p[0] / p[1])
print(verdict)
assert verdict

# 3. pass@k = 1 − (1 − p)^k.
verdict = lesson10.check_pass_at_k(float(diversity.pass_at_k(lesson10.PASS_P, lesson10.PASS_K)))
print(verdict)
assert verdict
