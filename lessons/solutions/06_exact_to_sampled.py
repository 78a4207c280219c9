"""Solutions to the exercises of lesson 6, "From exact to sampled" — run: python lessons/solutions/06_exact_to_sampled.py"""

import numpy as np

from toyfdiv import experiments, fdpg, tasks
from toyfdiv.exercises import lesson6

task = tasks.get("reviews")

# 1. P = a·b with b ∈ {0, 1}: P/a = b, so Ẑ is a Bernoulli(Z) mean and Var(Ẑ) = Z(1 − Z)/n.
gdc = task.target("pointwise", epsilon=0.0)
Z = float(np.exp(gdc.log_z))
n = lesson6.Z_VARIANCE_N
var = Z * (1 - Z) / n
# the same from the general formula (E_a[(P/a)²] − Z²)/n, summed over the space
log_a = task.log_a
second = float(np.exp(2 * gdc.log_scores[np.isfinite(gdc.log_scores)] - log_a[np.isfinite(gdc.log_scores)]).sum())
assert np.isclose(var, (second - Z**2) / n)
verdict = lesson6.check_z_variance(var)
print(verdict)
assert verdict

# 2. Unbiased: baselines that never depend on the sample they correct ("ema" is the batch mean on
#    its first step, so that step is shrunk by (1 − 1/n)).
verdict = lesson6.check_unbiased_baselines({"none", "loo", "dpg"})
print(verdict)
assert verdict

# 3. Reverse KL: R = log P − log π − 1 − log Ẑ, a constant shift. Check: with the loo baseline
#    the exact-Z and batch-Z rows coincide.
policy = experiments.make_policy(task, "autoregressive")
rows = fdpg.estimator_stats(policy, task.target("rlhf", beta=0.5), "reverse_kl", n=8, trials=200,
                            rng=np.random.default_rng(0), baselines=("loo",), z_options=("exact", "batch"))
assert np.isclose(rows[0]["bias"], rows[1]["bias"]) and np.isclose(rows[0]["variance"], rows[1]["variance"])
verdict = lesson6.check_z_shift("reverse_kl")
print(verdict)
assert verdict
