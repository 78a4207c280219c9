"""Solutions to the exercises of lesson 4, "f-DPG" — run: python lessons/solutions/04_f_dpg.py"""

import numpy as np
import sympy as sp

from toyfdiv import TabularPolicy, fdpg, tasks, targets
from toyfdiv.exercises import lesson4

task = tasks.default()
log_a, r = task.log_a, task.reward.values

# 4.1 f(t) = (√t − 1)², f'(t) = 1 − 1/√t, so R(t) = −f'(t) = 1/√t − 1 (= √(p/π) − 1).
t = sp.symbols("t", positive=True)
R_sym = -sp.diff((sp.sqrt(t) - 1) ** 2, t)
assert sp.simplify(R_sym - (1 / sp.sqrt(t) - 1)) == 0
answer_1 = sp.lambdify(t, R_sym, "numpy")
verdict = lesson4.check_pseudo_reward("hellinger", answer_1)
print("4.1", sp.simplify(R_sym), verdict)
assert verdict

# 4.2 β π (1 + log π − log p) with log p = log a + r/β − log Z equals
#     π (β log(π/a) − r) + β (1 + log Z) π, so c = β (1 + log Z).
#     Σ_x c π ∇θ log π = c ∇θ Σ_x π = 0: the gradients agree.
p = targets.rlhf(log_a, r, lesson4.BETA)
answer_2 = lesson4.BETA * (1.0 + p.log_z)
log_pi = TabularPolicy(task.space, seed=0, init_scale=1.0).log_probs()  # any π: check on a random one
pi = np.exp(log_pi)
w_rev = fdpg.gradient_weights(log_pi, p.log_probs, "reverse_kl")
assert np.allclose(lesson4.BETA * w_rev - pi * (lesson4.BETA * (log_pi - log_a) - r), answer_2 * pi)
verdict = lesson4.check_rlhf_constant(answer_2)
print("4.2", answer_2, verdict)
assert verdict

# 4.3 π f'(π/p) = π · (−p/π) = −p for forward KL: the DPG weights are −p, whatever π is.
p_point = targets.pointwise(log_a, task.constraint.values)
answer_3 = -np.exp(p_point.log_probs)
verdict = lesson4.check_dpg_weights(answer_3)
print("4.3", verdict)
assert verdict
