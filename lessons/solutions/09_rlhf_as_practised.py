"""Solutions to the exercises of lesson 9, "From f-DPG to PPO and GRPO" — run: python lessons/solutions/09_rlhf_as_practised.py"""

import numpy as np
from scipy.stats import binom

from toyfdiv import fdpg, rl, targets
from toyfdiv.exercises import lesson9
from toyfdiv.policies import AutoregressivePolicy
from toyfdiv.space import SequenceSpace

# 1. k3 in the loss: E_π[(1 − a/π) ∇ log π] = −Σ a ∇ log π = ∇ KL(a‖π). Check against the f-DPG forward-KL gradient.
space = SequenceSpace(["a", "b"], 3, "</s>")
pol = AutoregressivePolicy(space, seed=1, init_scale=1.0)
log_a = AutoregressivePolicy(space, seed=2, init_scale=1.0).log_probs()
forward = fdpg.exact_gradient(pol, targets.rlhf(log_a, np.zeros(space.size), 1.0), "forward_kl")
assert np.allclose(rl.expected_kl_gradient(pol, log_a, "k3", "loss"), forward, atol=1e-12)
verdict = lesson9.check_k3_loss_kl("forward")
print(verdict)
assert verdict

# 2. w(p) = h(1) − h(0), h(r) = E[A_1 | R_1 = r], the other G − 1 rewards ∼ Binomial(G − 1, p).
G, p = lesson9.GRPO_G, lesson9.GRPO_P
k = np.arange(G)
others = (np.arange(G - 1)[None, :] < k[:, None]).astype(float)  # k successes among the others
h = [rl.group_advantages(np.column_stack([np.full(G, r), others]), "grpo")[:, 0] @ binom.pmf(k, G - 1, p)
     for r in (1.0, 0.0)]
w = h[0] - h[1]
assert np.isclose(w, rl.effective_weight(p, G))
verdict = lesson9.check_grpo_weight(w)
print(verdict)
assert verdict

# 3. RLOO = G/(G − 1) × Dr. GRPO.
R = np.random.default_rng(0).standard_normal((4, lesson9.RLOO_G))
c = (rl.group_advantages(R, "rloo") / rl.group_advantages(R, "dr_grpo")).mean()
verdict = lesson9.check_rloo_factor(c)
print(verdict)
assert verdict
