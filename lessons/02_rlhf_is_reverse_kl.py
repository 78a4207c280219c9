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
# # Lesson 2 — RLHF is reverse-KL minimisation
#
# **In the app:** run `streamlit run app.py`, then open the scenario “Collapse at small β”: <http://localhost:8501/scenarios?sc_pick=collapse>.
#
# **Goals.** By the end of this lesson you can
# 1. write down the KL-regularised objective of RLHF, $J(\pi) = \mathbb{E}_\pi[r] - \beta\,\mathrm{KL}(\pi\|a)$;
# 2. derive its maximiser in closed form, $p(x) = a(x)\,e^{r(x)/\beta}/Z$;
# 3. prove and check the identity $J(\pi) = \beta\log Z - \beta\,\mathrm{KL}(\pi\|p)$, which makes
#    RLHF the minimisation of the **reverse** KL to $p$ — one row of lesson 1's table;
# 4. say what $\beta$ does, including its limits $\beta\to 0$ and $\beta\to\infty$.
#
# **Prerequisites.** Lesson 1 (f-divergences, reverse KL $= D_f$ with $f(t) = t\log t$).
# A Lagrange multiplier, once.
#
# **The setting.** A *base model* $a$ (a "pretrained" language model) and a *reward* $r(x)$
# that scores whole sequences. Here $a$ is a small bigram model fitted to a corpus of
# five-word film reviews and $r$ is a sentiment score ("good" +1, "bad" −1, flipped after
# "not", doubled after "very"). The 781 sequences are enumerated, so every expectation
# below is an exact sum.

# %%
# %matplotlib inline
import numpy as np
import sympy as sp

from toyfdiv import AutoregressivePolicy, TabularPolicy, divergences, experiments, fdpg, metrics, plots, tasks, \
    targets, train
from toyfdiv.exercises import lesson2

task = tasks.default()
space, log_a, r = task.space, task.log_a, task.reward.values  # (N,), (N,)
beta = task.beta
print(f"N = {space.size} sequences, reward '{task.reward.name}' from {r.min():g} to {r.max():g}, β = {beta:g}")
for text in ["very good film </s>", "film not good </s>", "bad </s>"]:
    i = space.index(text)
    print(f"  {text:22s} a(x) = {np.exp(log_a[i]):.4f}   r(x) = {r[i]:+g}")

# %% [markdown]
# ## 1. The objective
#
# RLHF fine-tunes the model to raise the reward without drifting too far from $a$ (drift
# loses fluency and diversity, and invites "reward hacking"). The standard objective is
#
# $$ J(\pi) = \mathbb{E}_{x\sim\pi}[r(x)] - \beta\,\mathrm{KL}(\pi\|a), \qquad \beta > 0 . $$
#
# The library evaluates it exactly: `metrics.rlhf_objective(log_pi, r, log_a, beta)`.

# %%
p = targets.rlhf(log_a, r, beta)  # the target of section 2


def J(log_pi):
    """E_π[r] − β KL(π‖a), exact over the space."""
    return metrics.rlhf_objective(log_pi, r, log_a, beta)


print(f"J(a) = {J(log_a):.4f}  (no KL cost, the base model's mean reward)")

# %% [markdown]
# ## 2. The maximiser in closed form
#
# Maximise $\sum_x \pi(x) r(x) - \beta\sum_x \pi(x)\log\frac{\pi(x)}{a(x)}$ subject to
# $\sum_x\pi(x) = 1$. With a multiplier $\mu$, the derivative in $\pi(x)$ vanishes:
#
# $$ r(x) - \beta\Big(\log\frac{\pi(x)}{a(x)} + 1\Big) - \mu = 0 \;\Longrightarrow\; \pi(x) = a(x)\,e^{r(x)/\beta}\,e^{-1-\mu/\beta}. $$
#
# The last factor does not depend on $x$: it is whatever normalises. So
#
# $$ p(x) = \frac{a(x)\,e^{r(x)/\beta}}{Z}, \qquad Z = \sum_x a(x)\,e^{r(x)/\beta}. $$
#
# (Since $J$ is strictly concave in $\pi$ — a linear term minus $\beta$ times a strictly
# convex one — this stationary point is the maximum.) sympy solves the stationarity
# condition for us:

# %%
pi_x, a_x, r_x, b = sp.symbols("pi_x a_x r_x beta", positive=True)
mu = sp.symbols("mu", real=True)  # a multiplier may have either sign
lagrangian_term = pi_x * r_x - b * pi_x * sp.log(pi_x / a_x) - mu * pi_x  # the x-th term of the Lagrangian
solution = sp.solve(sp.diff(lagrangian_term, pi_x), pi_x)
print("π(x) =", solution[0])
assert sp.simplify(solution[0] / (a_x * sp.exp(r_x / b)) - sp.exp(-1 - mu / b)) == 0

# %% [markdown]
# `targets.rlhf(log_a, r, β)` builds this $p$ in log space. Two numerical checks: the
# gradient of $J$ with respect to the policy's parameters θ vanishes at $p$ and not at $a$;
# and no random $\pi$ scores higher than $p$. (`fdpg.rlhf_gradient` is the classical
# KL-penalised policy gradient; it returns $\nabla_\theta(-J)$, the direction a gradient-*descent*
# optimiser follows, so its norm is $\|\nabla_\theta J\|$.)

# %%
at_p = AutoregressivePolicy.from_log_probs(space, p.log_probs)  # a policy with π = p exactly
print(f"‖∇J‖ at π = a: {np.linalg.norm(fdpg.rlhf_gradient(task.base, r, log_a, beta)):.3f}")
print(f"‖∇J‖ at π = p: {np.linalg.norm(fdpg.rlhf_gradient(at_p, r, log_a, beta)):.1e}")
random_pis = [TabularPolicy(space, seed=k, init_scale=2.0).log_probs() for k in range(20)]
print(f"J(p) = {J(p.log_probs):.4f} ≥ best of 20 random π: {max(J(lp) for lp in random_pis):.4f}")

# %% [markdown]
# ## 3. The identity: $J(\pi) = \beta\log Z - \beta\,\mathrm{KL}(\pi\|p)$
#
# Take logs of $p$: $\log p = \log a + r/\beta - \log Z$, so $r = \beta\log\frac{p}{a} + \beta\log Z$. Then
#
# $$ J(\pi) = \mathbb{E}_\pi\Big[\beta\log\frac{p}{a} + \beta\log Z - \beta\log\frac{\pi}{a}\Big]
#          = \beta\log Z - \beta\,\mathbb{E}_\pi\Big[\log\frac{\pi}{p}\Big]
#          = \beta\log Z - \beta\,\mathrm{KL}(\pi\|p). $$
#
# Three consequences:
# - $\beta\log Z$ does not depend on $\pi$: **maximising $J$ is minimising $\mathrm{KL}(\pi\|p)$**,
#   the reverse KL, $D_f$ with $f(t) = t\log t$.
# - $J(\pi) \le \beta\log Z$, with equality only at $\pi = p$: the optimum is $J^* = \beta\log Z$.
# - Any policy's shortfall is exactly $\beta$ times its reverse KL to $p$.
#
# Checked on the 20 random policies (both sides computed independently by the library):

# %%
reverse_kl = divergences.get("reverse_kl")
gaps = [J(lp) - (beta * p.log_z - beta * reverse_kl.value(lp, p.log_probs)) for lp in random_pis]
print(f"largest |J(π) − (β log Z − β KL(π‖p))| over 20 random π: {max(map(abs, gaps)):.1e}")
assert max(map(abs, gaps)) < 1e-10

# %% [markdown]
# So "doing RLHF" and "minimising the reverse KL to $p$" are the same optimisation. Let us
# run it that way: train the base model by exact gradient descent on $\mathrm{KL}(\pi\|p)$
# (`train(..., "reverse_kl")`) and watch $J$ climb to $\beta\log Z$. The figure shows the
# run's divergence, reward, KL from $a$ and entropy; the dashed line marks where $p$
# itself sits.

# %%
hist = train(task.base, p, "reverse_kl", steps=200, lr=0.05)
J_curve = hist.metrics["alignment/reward"] - beta * hist.metrics["kl_from_base"]
print(f"J after 0, 50, 200 steps: {J_curve[0]:.4f}, {J_curve[50]:.4f}, {J_curve[-1]:.4f};  β log Z = {beta * p.log_z:.4f}")
plots.training_curves({"reverse_kl": hist}, target_values=experiments.target_row(p))

# %% [markdown]
# ## 4. The role of β
#
# $\beta$ is the price of one nat of KL from $a$. Small $\beta$: reward is cheap to buy, $p$
# moves far from $a$. Large $\beta$: $p$ stays near $a$. In the limits, for two sequences with
# $r(x) > r(y)$,
#
# $$ \frac{p(x)}{p(y)} = \frac{a(x)}{a(y)}\,e^{(r(x)-r(y))/\beta}
#    \;\xrightarrow[\beta\to 0]{}\; \infty, \qquad
#    \xrightarrow[\beta\to\infty]{}\; \frac{a(x)}{a(y)} . $$
#
# So as $\beta\to\infty$, $p\to a$; as $\beta\to 0$, all the mass goes to the sequences of
# maximal reward. sympy checks both limits on two outcomes:

# %%
a1, r1, r2 = sp.symbols("a_1 r_1 r_2", positive=True)
p1 = a1 * sp.exp(r1 / b) / (a1 * sp.exp(r1 / b) + (1 - a1) * sp.exp(r2 / b))  # p(x₁) for two outcomes
gap = sp.symbols("delta", positive=True)  # r₁ = r₂ + δ, δ > 0
p1 = p1.subs(r1, r2 + gap)
print("β → 0:  p(x₁) →", sp.limit(p1, b, 0, "+"), "   β → ∞:  p(x₁) →", sp.limit(p1, b, sp.oo))

# %% [markdown]
# And on the real space: mean reward, KL from $a$ and entropy of $p_\beta$ across $\beta$.

# %%
print(f"{'β':>6s} {'E_p[r]':>8s} {'KL(p‖a)':>8s} {'H(p)':>6s}")
for b_ in [0.05, 0.2, 0.5, 1.0, 2.0, 5.0, 50.0]:
    p_b = targets.rlhf(log_a, r, b_)
    print(f"{b_:6g} {metrics.alignment(p_b.log_probs, p_b)['reward']:8.3f} {p_b.kl_from_base:8.3f} "
          f"{metrics.entropy(p_b.log_probs):6.3f}")
print(f"base a: E_a[r] = {metrics.alignment(log_a, p)['reward']:.3f}, H(a) = {metrics.entropy(log_a):.3f};  max r = {r.max():g}")

# %% [markdown]
# The figure: the eight most likely sequences under the base model $a$, and their
# probabilities under $p_\beta$ for $\beta = 5, 1, 0.5$. As $\beta$ falls, mass leaves the
# negative reviews that $a$ likes ("bad", "not good", "very bad") and the neutral "film", and
# goes to positive ones ("very good"); at $\beta = 0.5$ most of it already sits on longer
# sequences, outside $a$'s top eight.

# %%
dists = {"base": log_a, **{f"p, β = {b_:g}": targets.rlhf(log_a, r, b_).log_probs for b_ in [5.0, 1.0, 0.5]}}
plots.distributions(space, dists, k=8)

# %% [markdown]
# **Takeaway.** RLHF's objective is $J(\pi) = \beta\log Z - \beta\,\mathrm{KL}(\pi\|p)$ with
# $p = a\,e^{r/\beta}/Z$: maximising it *is* minimising the reverse KL to an explicit target,
# and $\beta$ only decides where that target sits between $a$ ($\beta\to\infty$) and the best
# sequences ($\beta\to 0$).
#
# ## Exercises
#
# Solutions: `lessons/solutions/02_rlhf_is_reverse_kl.py`.
#
# **2.1 The optimal value.** For the same task at $\beta = 0.5$ (`lesson2.BETA`), what is
# $\max_\pi J(\pi)$? Compute it without training anything; check with
# `lesson2.check_optimal_value(value)`.

# %%
value = None  # your answer here
print(lesson2.check_optimal_value(value))

# %% [markdown]
# **2.2 The β → 0 limit.** Which distribution does $p_\beta$ tend to as $\beta\to 0$ on this
# task? Build it as a log-probability vector of shape $(N,)$ and check it with
# `lesson2.check_beta_zero_limit(log_probs)`. Hint: how many sequences have the maximal
# reward, and what does the limit do with ties?

# %%
log_probs = np.full(space.size, -np.log(space.size))  # your answer here (the uniform distribution is wrong)
print(lesson2.check_beta_zero_limit(log_probs))

# %% [markdown]
# **2.3 A KL budget.** Find the $\beta$ at which $\mathrm{KL}(p_\beta\|a) = 1$ nat
# (`lesson2.KL_BUDGET`, to $\pm 10^{-3}$). `p.kl_from_base` gives $\mathrm{KL}(p\|a)$ of a target;
# the table in section 4 tells you which way to move. Check with `lesson2.check_kl_budget(beta)`.

# %%
beta_answer = 1.0  # your answer here
print(lesson2.check_kl_budget(beta_answer))
