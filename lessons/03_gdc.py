# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 3 — GDC: targets from constraints
#
# **In the app:** run `streamlit run app.py`, then open the scenario “Pointwise GDC and what reverse KL cannot do”: <http://localhost:8501/scenarios?sc_pick=pointwise>.
#
# **Goals.** By the end of this lesson you can
# 1. say what GDC is (and what it is not);
# 2. build GDC's target for a **pointwise** constraint, $p = a\cdot b/Z$, and explain why it is
#    the distribution closest to $a$ that always satisfies the constraint;
# 3. build the target for **distributional** constraints $\mathbb{E}_p[\phi] = \bar\mu$,
#    $p = a\,e^{\lambda\cdot\phi}/Z(\lambda)$, and read $\lambda$ as the information projection
#    of $a$: the moments are met, $\mathrm{KL}(p\|a) = \lambda\cdot\bar\mu - \log Z$, and every
#    other distribution that meets them is farther from $a$;
# 4. see GDC train its policy by minimising the **forward** KL.
#
# **Prerequisites.** Lesson 1 (KL, forward vs reverse) and lesson 2 (a target $p$ built from
# $a$ in closed form). Convexity and a gradient, once.
#
# ## What GDC is — and what it is not
#
# **GDC = Generation with Distributional Control** (Khalifa, Elsahar and Dymetman, "A
# distributional approach to controlled text generation", ICLR 2021). It separates *what* the
# model should be from *how* to train it: first define an explicit target distribution $p$ —
# an energy-based model built from the base model $a$ and the constraints — then train a
# policy $\pi_\theta$ towards $p$ with DPG (Distributional Policy Gradient), which minimises
# the forward KL $\mathrm{KL}(p\|\pi_\theta)$.
#
# Some secondary write-ups expand GDC as "gradient compression" or "(gradient) consistency
# distillation". **That is wrong.** Nothing in GDC compresses gradients or distils a
# model into another; the "D" is *distributional* and the "C" is *control*.

# %%
# %matplotlib inline
import numpy as np
import sympy as sp

from toyfdiv import TabularPolicy, experiments, metrics, plots, targets, tasks, train
from toyfdiv.exercises import lesson3

task = tasks.default()
space, log_a = task.space, task.log_a
kl = metrics.kl  # kl(log_q, log_r) = KL(q‖r) in nats
print(f"N = {space.size} sequences; constraint b = '{task.constraint.name}'; features φ = {task.feature_names}")

# %% [markdown]
# ## 1. Pointwise constraints: $p = a\cdot b / Z$
#
# A pointwise constraint is a test $b(x)\in\{0, 1\}$ every sample must pass — here: the review
# contains the word "good". GDC's target is $a$ conditioned on $b$:
#
# $$ p(x) = \frac{a(x)\,b(x)}{Z}, \qquad Z = \sum_x a(x)\,b(x) = a(b = 1). $$
#
# **Why this one?** Among all distributions $q$ with $\mathbb{E}_q[b] = 1$ (so $q$ lives where
# $b = 1$), it is the closest to $a$. On that support $p/a = 1/Z$, so
#
# $$ \mathrm{KL}(q\|a) = \mathbb{E}_q\Big[\log\frac{q}{p} + \log\frac{p}{a}\Big] = \mathrm{KL}(q\|p) - \log Z \;\ge\; -\log Z = \mathrm{KL}(p\|a), $$
#
# with equality only at $q = p$. Checks: the constraint holds under $p$; $\mathrm{KL}(p\|a) = -\log Z$;
# and random distributions $q$ on the support (random tables, conditioned on $b$ by the same
# builder) obey the decomposition and are all farther from $a$.

# %%
b = task.constraint.values  # (N,) bool
p_point = targets.pointwise(log_a, b)
print(p_point.describe())
print(f"E_p[b] = {metrics.alignment(p_point.log_probs, p_point)['constraint']:.6f};  "
      f"Z = a(b) = {np.exp(p_point.log_z):.4f}")
print(f"KL(p‖a) = {p_point.kl_from_base:.6f},  −log Z = {-p_point.log_z:.6f}")

qs = [targets.pointwise(TabularPolicy(space, seed=k, init_scale=1.0).log_probs(), b).log_probs for k in range(10)]
decomposition = max(abs(kl(q, log_a) - (kl(q, p_point.log_probs) - p_point.log_z)) for q in qs)
print(f"largest |KL(q‖a) − (KL(q‖p) − log Z)| over 10 random q: {decomposition:.1e}")
print(f"smallest KL(q‖a) among them: {min(kl(q, log_a) for q in qs):.4f}  > KL(p‖a) = {p_point.kl_from_base:.4f}")
assert decomposition < 1e-10 and min(kl(q, log_a) for q in qs) > p_point.kl_from_base

# %% [markdown]
# Note the zeros: $p(x) = 0$ wherever $b(x) = 0$. The reverse KL $\mathrm{KL}(\pi\|p)$ is then
# infinite for any policy with full support (lesson 1's zero-support rule), so RLHF-style
# training cannot even start; `targets.pointwise(..., epsilon=ε)` gives $b = \varepsilon$ instead
# of 0 when you need a full-support target. The forward KL has no such problem.
#
# ## 2. Distributional constraints: $p = a\,e^{\lambda\cdot\phi}/Z(\lambda)$
#
# Now ask for *proportions*: features $\phi(x)\in\mathbb{R}^K$ whose means should be
# $\mathbb{E}_p[\phi] = \bar\mu$. Here $\phi_1$ = "mentions *film*" and $\phi_2$ = "is positive"
# (sentiment > 0), and we ask for half and half: $\bar\mu = (0.5, 0.5)$. Under $a$ these are:

# %%
phi, mu_bar = task.feature_matrix, task.moments  # (N, K), (K,)
print("E_a[φ] =", (np.exp(log_a) @ phi).round(4), "   wanted μ̄ =", mu_bar)

# %% [markdown]
# **The information projection.** Of all $q$ with $\mathbb{E}_q[\phi] = \bar\mu$, take the one
# closest to $a$: minimise $\mathrm{KL}(q\|a)$ under the moment constraints and $\sum_x q = 1$.
# As in lesson 2, a multiplier $\lambda_k$ per constraint and a zero derivative give
# $\log\frac{q(x)}{a(x)} = \lambda\cdot\phi(x) - \log Z$, i.e.
#
# $$ p_\lambda(x) = \frac{a(x)\,e^{\lambda\cdot\phi(x)}}{Z(\lambda)}, \qquad Z(\lambda) = \sum_x a(x)\,e^{\lambda\cdot\phi(x)} . $$
#
# $\lambda$ is found from the **dual**: $\lambda^* = \arg\min_\lambda\; \log Z(\lambda) - \lambda\cdot\bar\mu$.
# It is convex: its gradient is $\mathbb{E}_{p_\lambda}[\phi] - \bar\mu$ and its Hessian is
# $\mathrm{Cov}_{p_\lambda}[\phi] \succeq 0$. So at $\lambda^*$ the moments are met — the gradient
# vanishes. sympy checks gradient and Hessian on three outcomes and one feature:

# %%
lam = sp.symbols("lambda", real=True)
a_s = sp.symbols("a1:4", positive=True)
f_s = sp.symbols("phi1:4", real=True)
Z = sum(ai * sp.exp(lam * fi) for ai, fi in zip(a_s, f_s))
p_s = [ai * sp.exp(lam * fi) / Z for ai, fi in zip(a_s, f_s)]  # p_λ over three outcomes
mean = sum(pi * fi for pi, fi in zip(p_s, f_s))
var = sum(pi * fi**2 for pi, fi in zip(p_s, f_s)) - mean**2
print("d/dλ log Z − E_p[φ] =", sp.simplify(sp.diff(sp.log(Z), lam) - mean))
print("d²/dλ² log Z − Var_p[φ] =", sp.simplify(sp.diff(sp.log(Z), lam, 2) - var))

# %% [markdown]
# `targets.distributional(log_a, φ, μ̄)` solves the dual. Check the three promises: the
# moments are met; $\mathrm{KL}(p\|a) = \lambda^*\cdot\bar\mu - \log Z$ (average
# $\log\frac{p}{a} = \lambda^*\cdot\phi - \log Z$ under $p$); and $p$ has the exponential form
# (its log-ratio to $a$ is affine in $\phi$).

# %%
p_dist = targets.distributional(log_a, phi, mu_bar, feature_names=task.feature_names)
print(p_dist.describe())
print("E_p[φ] =", (np.exp(p_dist.log_probs) @ phi).round(10))
identity = p_dist.lambdas @ mu_bar - p_dist.log_z
print(f"KL(p‖a) = {p_dist.kl_from_base:.8f},  λ*·μ̄ − log Z = {identity:.8f}")
residual = (p_dist.log_probs - log_a) - (phi @ p_dist.lambdas - p_dist.log_z)
print(f"largest |log(p/a) − (λ*·φ − log Z)| = {np.abs(residual).max():.1e}")
assert np.isclose(p_dist.kl_from_base, identity) and np.abs(residual).max() < 1e-10

# %% [markdown]
# **Every other distribution meeting the moments is farther from $a$.** For any $q$ with
# $\mathbb{E}_q[\phi] = \bar\mu$, since $\mathbb{E}_q[\lambda^*\cdot\phi] = \lambda^*\cdot\bar\mu = \mathbb{E}_p[\lambda^*\cdot\phi]$:
#
# $$ \mathrm{KL}(q\|a) = \mathbb{E}_q\Big[\log\frac{q}{p} + \log\frac{p}{a}\Big]
#    = \mathbb{E}_q\Big[\log\frac{q}{p}\Big] + \mathbb{E}_q\big[\lambda^*\cdot\phi - \log Z\big]
#    = \mathrm{KL}(q\|p) + \underbrace{\lambda^*\cdot\bar\mu - \log Z}_{=\,\mathrm{KL}(p\|a)} . $$
#
# A Pythagorean theorem, with $\mathrm{KL}(q\|p) \ge 0$ as the gap. To get other distributions
# that meet the same moments, project *other* bases (random tables) onto the same constraints:

# %%
others = [targets.distributional(TabularPolicy(space, seed=k, init_scale=1.0).log_probs(), phi, mu_bar).log_probs
          for k in range(5)]
for q in others:
    print(f"E_q[φ] = {(np.exp(q) @ phi).round(6)}   KL(q‖a) = {kl(q, log_a):.4f} = "
          f"KL(q‖p) {kl(q, p_dist.log_probs):.4f} + KL(p‖a) {p_dist.kl_from_base:.4f}")
    assert np.isclose(kl(q, log_a), kl(q, p_dist.log_probs) + p_dist.kl_from_base)

# %% [markdown]
# **Moments that cannot be met.** $\bar\mu$ must lie strictly inside the convex hull of the
# feature vectors: no distribution has $\mathbb{E}[\text{mentions film}] = 1.2$, and
# $\mathbb{E}[\text{mentions film}] = 1$ would need $\lambda_1 = +\infty$. The library refuses
# both with an error rather than return something silently wrong. (A pointwise constraint is
# exactly such a boundary case, $\mathbb{E}_p[b] = 1$; that is why GDC writes it as a factor $b$.)

# %%
for bad in ([1.2, 0.5], [1.0, 0.5]):
    try:
        targets.distributional(log_a, phi, bad)
    except ValueError as err:
        print(f"μ̄ = {bad}: ValueError: {err}\n")

# %% [markdown]
# Both kinds combine: the **hybrid** target $p \propto a\cdot b\cdot e^{\lambda\cdot\phi}$ solves for
# $\lambda$ on the support of $b$.

# %%
p_hybrid = targets.hybrid(log_a, b, phi, mu_bar, feature_names=task.feature_names)
print(p_hybrid.describe())
print(f"E_p[b] = {np.exp(p_hybrid.log_probs) @ b:.6f},  E_p[φ] = {(np.exp(p_hybrid.log_probs) @ phi).round(8)}")

# %% [markdown]
# ## 3. The targets, side by side
#
# The ten most likely sequences under $a$, and their probabilities under the three targets.
# The pointwise target removes every review without "good" and rescales the rest by $1/Z$;
# the distributional one only tilts $a$, just enough to meet the proportions. The hybrid
# even raises "not good": every review must contain "good", yet only half may be positive.

# %%
plots.distributions(space, {"base": log_a, "pointwise a·b/Z": p_point.log_probs,
                            "distributional a·exp(λ·φ)/Z": p_dist.log_probs,
                            "hybrid": p_hybrid.log_probs}, k=10)

# %% [markdown]
# ## 4. How GDC trains: DPG, the forward KL
#
# With $p$ fixed, GDC trains $\pi_\theta$ by minimising $\mathrm{KL}(p\|\pi_\theta) = -\mathbb{E}_p[\log\pi_\theta] + \text{const}$,
# a cross-entropy to $p$: DPG's gradient is $-\mathbb{E}_p[\nabla_\theta\log\pi_\theta]$ (at scale,
# estimated by importance sampling, since one cannot sample $p$ directly — lesson 6). In
# lesson 1's table, this is the **forward KL** row — where lesson 2 put RLHF in the reverse
# KL row. Lesson 4 shows both are one gradient. Here we simply run it on the pointwise
# target: $\mathbb{E}_\pi[b]$ climbs towards 1 and $\mathrm{KL}(\pi\|a)$ towards $-\log Z$.

# %%
hist = train(task.base, p_point, "forward_kl", steps=200, lr=0.1)
final = hist.final()
print(f"after 200 steps: E_π[b] = {final['alignment/constraint']:.4f}, KL(π‖a) = {final['kl_from_base']:.4f} "
      f"(−log Z = {-p_point.log_z:.4f}), KL(p‖π) = {final['divergence/forward_kl']:.1e}")
plots.training_curves({"forward_kl": hist}, target_values=experiments.target_row(p_point))

# %% [markdown]
# **Takeaway.** GDC first writes down *what the model should be* — the distribution closest
# to $a$ that satisfies the constraints, $p \propto a\cdot b\cdot e^{\lambda\cdot\phi}$ with $\lambda$
# the information projection — and then trains towards it with the forward KL; GDC stands for
# Generation with Distributional Control.
#
# ## Exercises
#
# Solutions: `lessons/solutions/03_gdc.py`.
#
# **3.1 The partition function.** For the pointwise constraint of this lesson
# ('contains good'), what is $Z$ — the number itself, not its log? Check with
# `lesson3.check_pointwise_z(value)`. What is $\mathrm{KL}(p\|a)$ then?

# %%
value = None  # your answer here
print(lesson3.check_pointwise_z(value))

# %% [markdown]
# **3.2 The KL identity.** Build the distributional target with moments
# $\bar\mu = (0.6, 0.7)$ (`lesson3.MOMENTS`; the target is `lesson3.problem_target()`), and
# compute $\mathrm{KL}(p\|a)$ from $\lambda^*$, $\bar\mu$ and $\log Z$ alone. Check with
# `lesson3.check_kl_from_base(value)`.

# %%
value = None  # your answer here
print(lesson3.check_kl_from_base(value))

# %% [markdown]
# **3.3 The name.** A classmate's notes say "GDC (gradient compression) is a distillation
# trick". Write the correct expansion and check it with `lesson3.check_gdc_name(text)`.

# %%
text = "gradient compression"  # your answer here
print(lesson3.check_gdc_name(text))
