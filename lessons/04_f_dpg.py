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
# # Lesson 4 — f-DPG: one gradient for every divergence
#
# **In the app:** run `streamlit run app.py`, then open the Divergence explorer's simplex flows: <http://localhost:8501/explorer?ex_section=simplex>.
#
# **Goals.** By the end of this lesson you can
# 1. derive the f-DPG theorem, $\nabla_\theta D_f(\pi_\theta\|p) = \mathbb{E}_{\pi_\theta}\big[f'(\pi_\theta/p)\,\nabla_\theta\log\pi_\theta\big]$,
#    and check it against finite differences;
# 2. read it as REINFORCE with a *pseudo-reward* $R = -f'(\pi_\theta/p)$;
# 3. recover the RLHF gradient (reverse KL, times $\beta$) and GDC's DPG gradient (forward KL)
#    as two rows of one table;
# 4. predict from the shape of $R$ how training behaves, and see it in training curves.
#
# **Prerequisites.** Lessons 1–3: the f-divergence table, RLHF's target $p = a\,e^{r/\beta}/Z$
# (reverse KL), GDC's targets (forward KL). The log-derivative trick
# $\nabla\pi = \pi\,\nabla\log\pi$.
#
# This is the result of Go, Korbak, Kruszewski, Rozen, Ryu and Dymetman, "Aligning Language
# Models with Preferences through f-divergence Minimization" (ICML 2023).

# %%
# %matplotlib inline
import numpy as np
import sympy as sp

from toyfdiv import AutoregressivePolicy, divergences, experiments, fdpg, plots, tasks, targets
from toyfdiv.exercises import lesson4

task = tasks.default()
space, log_a, r = task.space, task.log_a, task.reward.values
beta = task.beta
p_rlhf = targets.rlhf(log_a, r, beta)  # full support: every divergence is finite
p_point = targets.pointwise(log_a, task.constraint.values)  # GDC's pointwise target
pol = AutoregressivePolicy(space, seed=1, init_scale=0.5)  # a random policy π_θ: one softmax per prefix
print(f"N = {space.size} sequences, P = {pol.n_params} parameters")

# %% [markdown]
# ## 1. The theorem
#
# $p$ does not depend on $\theta$. Differentiate $D_f(\pi_\theta\|p) = \sum_x p(x)\,f\big(\pi_\theta(x)/p(x)\big)$
# term by term with the chain rule, then use $\nabla\pi_\theta = \pi_\theta\nabla\log\pi_\theta$:
#
# $$
# \nabla_\theta D_f(\pi_\theta\|p)
#   = \sum_x p(x)\, f'\!\Big(\frac{\pi_\theta(x)}{p(x)}\Big)\,\frac{\nabla_\theta\pi_\theta(x)}{p(x)}
#   = \sum_x \pi_\theta(x)\, f'\!\Big(\frac{\pi_\theta(x)}{p(x)}\Big)\,\nabla_\theta\log\pi_\theta(x)
#   = \mathbb{E}_{x\sim\pi_\theta}\Big[f'\!\Big(\frac{\pi_\theta(x)}{p(x)}\Big)\nabla_\theta\log\pi_\theta(x)\Big].
# $$
#
# That is all: the derivative of the ratio inside $f$ is already accounted for by $f'$; no
# extra term appears. With the **pseudo-reward** $R(x) = -f'(\pi_\theta(x)/p(x))$,
#
# $$ \nabla_\theta D_f = -\,\mathbb{E}_{\pi_\theta}\big[R(x)\,\nabla_\theta\log\pi_\theta(x)\big], $$
#
# the REINFORCE (policy-gradient) estimator for the reward $R$: **minimising any
# f-divergence is reinforcement learning with reward $-f'(\pi/p)$.** Over our enumerated
# space the expectation is a finite sum with weights $w = \pi\odot f'(\pi/p)$
# (`fdpg.gradient_weights`), and `fdpg.exact_gradient` evaluates it.
#
# First, sympy does the chain rule for one term, with $f$ and $\pi(\theta)$ left abstract:

# %%
theta_s, p_s, u = sp.symbols("theta p u", positive=True)
f_s, pi_s = sp.Function("f"), sp.Function("pi")  # f and π(θ) left abstract
term = p_s * f_s(pi_s(theta_s) / p_s)  # one term of D_f
f_prime_at_ratio = sp.diff(f_s(u), u).subs(u, pi_s(theta_s) / p_s)  # f'(π/p)
claimed = pi_s(theta_s) * f_prime_at_ratio * sp.diff(sp.log(pi_s(theta_s)), theta_s)
print("d/dθ [p f(π/p)] =", sp.diff(term, theta_s))
print("difference from π f'(π/p) d/dθ log π:", sp.simplify(sp.diff(term, theta_s) - claimed))

# %% [markdown]
# Now the numbers. For every divergence, compare the theorem's gradient with a 4th-order
# central finite difference of the exact divergence along three random directions $v$:
#
# $$ v\cdot\nabla_\theta D \approx \frac{-D(\theta+2hv) + 8D(\theta+hv) - 8D(\theta-hv) + D(\theta-2hv)}{12h}. $$

# %%
rng = np.random.default_rng(0)
theta = pol.params
directions = rng.standard_normal((3, theta.size))  # (3, P)
h = 1e-3


def D(div, th):
    """D_f(π_θ ‖ p) for parameters θ, by the library."""
    return div.value(pol.with_params(th).log_probs(), p_rlhf.log_probs)


for div in divergences.registered():
    g = fdpg.exact_gradient(pol, p_rlhf, div)
    errors = []
    for v in directions:
        fd = (-D(div, theta + 2 * h * v) + 8 * D(div, theta + h * v) - 8 * D(div, theta - h * v)
              + D(div, theta - 2 * h * v)) / (12 * h)
        errors.append(abs(fd - g @ v) / abs(fd))
    print(f"{div.name:11s} v·∇D = {g @ directions[0]:+.6f} …  largest relative error vs finite differences: {max(errors):.1e}")
    assert max(errors) < 1e-6

# %% [markdown]
# **Pseudo-rewards are defined up to a constant.** $\mathbb{E}_\pi[\nabla\log\pi] = \nabla\sum_x\pi = \nabla 1 = 0$,
# so adding a constant to $R$ (a *baseline*) leaves the gradient unchanged — which is why
# $f$ and $f + c(t-1)$, whose $f'$ differ by $c$, have the same gradient (lesson 1). Check:
# the weights $w = \pi$ give a zero gradient.

# %%
print(f"‖Σ_x π(x) ∇ log π(x)‖ = {np.linalg.norm(pol.grad_log_prob_weighted(pol.probs())):.1e}")

# %% [markdown]
# ## 2. RLHF and DPG: two rows of one table
#
# | method | target $p$ | divergence | $f'(t)$ | pseudo-reward $R$ | gradient |
# |---|---|---|---|---|---|
# | RLHF (KL-penalised PG) | $a\,e^{r/\beta}/Z$ | reverse KL $\mathrm{KL}(\pi\Vert p)$ | $1+\log t$ | $\log\frac{p}{\pi} - 1$ | $-\mathbb{E}_\pi\big[(r - \beta\log\frac{\pi}{a})\nabla\log\pi\big] = \beta\,\nabla\mathrm{KL}(\pi\Vert p)$ |
# | GDC (DPG) | $a\,b\,e^{\lambda\cdot\phi}/Z$ | forward KL $\mathrm{KL}(p\Vert \pi)$ | $-1/t$ | $\frac{p}{\pi}$ | $-\mathbb{E}_p[\nabla\log\pi] = \nabla\mathrm{KL}(p\Vert \pi)$ |
#
# **RLHF row.** Multiply the reverse-KL pseudo-reward by $\beta$ and substitute $\log p = \log a + r/\beta - \log Z$:
#
# $$ \beta R = \beta\log\frac{p}{\pi} - \beta = r - \beta\log\frac{\pi}{a} - \beta(\log Z + 1) , $$
#
# the familiar KL-penalised reward, shifted by a constant — which a baseline absorbs. So $\beta$
# times the reverse-KL f-DPG gradient *is* the RLHF policy gradient. `fdpg.rlhf_gradient` is
# written from RLHF's own objective; the two agree:

# %%
log_pi = pol.log_probs()
R_rev = divergences.get("reverse_kl").pseudo_reward(log_pi - p_rlhf.log_probs)
kl_penalised = r - beta * (log_pi - log_a)
print(f"β R − (r − β log(π/a)) is the constant {np.ptp(beta * R_rev - kl_penalised):.1e} apart from "
      f"{np.mean(beta * R_rev - kl_penalised):.6f} = −β(log Z + 1) = {-beta * (p_rlhf.log_z + 1):.6f}")
g_rev = fdpg.exact_gradient(pol, p_rlhf, "reverse_kl")
g_rlhf = fdpg.rlhf_gradient(pol, r, log_a, beta)
print(f"‖β ∇KL(π‖p) − RLHF gradient‖ / ‖RLHF gradient‖ = {np.linalg.norm(beta * g_rev - g_rlhf) / np.linalg.norm(g_rlhf):.1e}")
assert np.allclose(beta * g_rev, g_rlhf)

# %% [markdown]
# **DPG row.** For the forward KL, $\pi f'(\pi/p) = \pi\cdot(-p/\pi) = -p$: the f-DPG gradient is
# $-\sum_x p(x)\nabla\log\pi(x) = -\mathbb{E}_p[\nabla\log\pi]$, the gradient of the cross-entropy
# to $p$ — exactly DPG. And it works on GDC's pointwise target, zeros and all (the reverse
# KL would be infinite there):

# %%
g_fwd = fdpg.exact_gradient(pol, p_point, "forward_kl")
g_dpg = fdpg.dpg_gradient(pol, p_point)
print(f"‖∇KL(p‖π) − DPG gradient‖ / ‖DPG gradient‖ = {np.linalg.norm(g_fwd - g_dpg) / np.linalg.norm(g_dpg):.1e}")
assert np.allclose(g_fwd, g_dpg)

# %% [markdown]
# So RLHF and GDC differ in two choices only — *which target* and *which divergence* — and
# f-DPG lets you pick each freely: any $f$ from lesson 1's table, with any target.
#
# ## 3. The shape of the pseudo-reward
#
# Since $\nabla D_f = -\mathbb{E}_\pi[R\,\nabla\log\pi]$, a gradient step raises $\log\pi(x)$ where
# $R(x)$ is above its mean and lowers it where $R$ is below. How $R$ depends on the ratio
# $t = \pi/p$ decides which mistakes get corrected first. sympy gives the limits at both ends
# ($t\to 0$: $\pi$ misses mass that $p$ has; $t\to\infty$: $\pi$ has too much):

# %%
t = sp.symbols("t", positive=True)
F = {"forward_kl": -sp.log(t), "reverse_kl": t * sp.log(t),
     "js": (t * sp.log(t) - (1 + t) * sp.log((1 + t) / 2)) / 2, "tv": sp.Abs(t - 1) / 2}
grid = np.geomspace(0.05, 20, 50)
for key, f in F.items():
    R = -sp.diff(f, t)
    assert np.allclose(sp.lambdify(t, R, "numpy")(grid), divergences.get(key).pseudo_reward(np.log(grid)))
    shown = R if R.has(sp.sign) else sp.simplify(R)  # (simplify would turn TV's sign into a Piecewise)
    print(f"{key:11s} R(0+) = {sp.limit(R, t, 0, '+')!s:4s}  R(∞) = {sp.limit(R, t, sp.oo)!s:10s}  R(t) = {shown}")

# %% [markdown]
# - **Forward KL**, $R = p/\pi = 1/t$: huge where $\pi$ *misses* mass ($t\to 0$), never below 0.
#   It pulls hardest on under-covered sequences and only gently pushes mass off over-covered
#   ones — **mode covering**, entropy stays high while it learns.
# - **Reverse KL**, $R = -\log t - 1$: unbounded on both sides, but only logarithmically, and the
#   gradient weight $\pi\,f'(\pi/p)$ vanishes where $\pi$ is small. It drains over-covered
#   sequences and barely rescues missed ones — **mode seeking**: it can overshoot into the
#   high-reward mode and lose entropy on the way.
# - **JS**, $R = \tfrac12\log\frac{1+t}{2t}$: bounded below by $-\tfrac12\log 2$, logarithmic above —
#   gentle both ways; far from $p$ its gradients are small, so it starts slowly.
# - **TV**, $R = -\tfrac12\,\mathrm{sign}(t - 1)$: only the *sign* of the error counts, not its size.
#
# The curves, from the library:

# %%
plots.divergence_zoo(["forward_kl", "reverse_kl", "js", "tv"], alphas=[0.0, 0.25, 0.5, 0.75, 1.0])

# %% [markdown]
# ## 4. What the shape does to learning
#
# Train the base model towards a sharper RLHF target ($\beta = 0.3$, far from $a$) with each
# divergence, using **plain gradient descent** so that the size of the pseudo-rewards shows
# (an adaptive optimiser such as Adam rescales the gradient and hides part of this). Every
# run uses the same policy family, start and learning rate; `experiments.compare` runs them.

# %%
runs = experiments.compare(task, "rlhf", ["forward_kl", "reverse_kl", "js", "tv"], steps=300, lr=1.0,
                           optimizer="sgd", target_options={"beta": 0.3})
target_03 = experiments.target_row(task.target("rlhf", beta=0.3))
print(f"target p (β = 0.3): E_p[r] = {target_03['alignment']:.3f}, H(p) = {target_03['entropy']:.3f}")
for row in experiments.summary_table(runs):
    name = row["divergence"]
    m = runs[name].metrics
    print(f"{name:11s} after 30 / 300 steps: E_π[r] = {m['alignment/reward'][30]:.2f} / {row['alignment']:.2f}, "
          f"H(π) = {m['entropy'][30]:.2f} / {row['entropy']:.2f}, final KL(p‖π) = {m['divergence/forward_kl'][-1]:.3f}")
plots.training_curves(runs, keys=("alignment", "entropy", "divergence/forward_kl", "divergence/reverse_kl"),
                      target_values=target_03)

# %% [markdown]
# What the table predicted:
# - **Reverse KL** gains reward fastest, then *overshoots* the target's reward while its
#   entropy falls well below $H(p)$: it has collapsed onto the top mode, and its
#   $\mathrm{KL}(p\|\pi)$ stalls — missed sequences get almost no gradient.
# - **Forward KL** climbs steadily with entropy *above* $H(p)$ all the way — covering first,
#   sharpening later — and ends closest to $p$ in forward KL.
# - **JS and TV** start slowly, then JS catches up; TV, whose $R$ only knows the *sign* of the
#   error, ends up chattering back and forth around the sequences it overshoots.
#
# Why so slow at the start? Most of $a$'s mass sits on sequences that $p$ (at β = 0.3) wants far
# less, where $t = \pi/p \gg 1$. There the f' of JS and TV has already *saturated* — at
# $\tfrac12\log 2$ and $\tfrac12$ — so all those sequences get nearly the same weight $c\,\pi$,
# and a constant times $\pi$ gives no gradient (section 1). What is left comes from the
# sequences where $t < 1$, weighted by their small $\pi$. Reverse KL's $f' = 1 + \log t$ keeps
# growing with $t$, and forward KL's weight $-p$ does not depend on $\pi$ at all. The exact
# gradients at the start agree:

# %%
p_03 = task.target("rlhf", beta=0.3)
log_t0 = log_a - p_03.log_probs  # (N,) log(π/p) at the start, π = a
print(f"mass of a on sequences with π/p > 20: {np.exp(log_a)[log_t0 > np.log(20)].sum():.2f}")
for key in ["forward_kl", "reverse_kl", "js", "tv"]:
    d = divergences.get(key)
    print(f"{key:11s} f'(20) = {d.f_prime(20.0):+.3f}, f'(1000) = {d.f_prime(1000.0):+.3f};  "
          f"‖∇θ D_f‖ at π = a: {np.linalg.norm(fdpg.exact_gradient(task.base, p_03, key)):.3f}")

# %% [markdown]
# This policy family — one softmax per prefix — can represent $p$ exactly, so every run heads
# for the same $p$; the divergence decides the path and the speed. When the policy is too
# small to represent $p$, it also decides where the run ends (lesson 5).
#
# **Takeaway.** For every f, $\nabla_\theta D_f(\pi_\theta\|p) = \mathbb{E}_{\pi_\theta}[f'(\pi_\theta/p)\nabla_\theta\log\pi_\theta]$:
# minimising a divergence is policy-gradient RL with pseudo-reward $-f'(\pi/p)$, RLHF is the
# reverse-KL row (times $\beta$), GDC's DPG the forward-KL row, and the shape of $-f'$ decides
# what training fixes first.
#
# ## Exercises
#
# Solutions: `lessons/solutions/04_f_dpg.py`.
#
# **4.1 A pseudo-reward.** Derive $R(t) = -f'(t)$ for the squared Hellinger distance,
# $f(t) = (\sqrt t - 1)^2$ (by hand or with `sp.diff`), and check your function of `t` with
# `lesson4.check_pseudo_reward("hellinger", R)`.

# %%
R = lambda t: 1 - 1 / np.sqrt(t)  # noqa: E731  — your answer here (this is f'(t), not R: try it)
print(lesson4.check_pseudo_reward("hellinger", R))

# %% [markdown]
# **4.2 The RLHF constant.** For the default task at $\beta = 0.5$ (`lesson4.BETA`), the weights
# of the two rows differ by a multiple of $\pi$: $\beta\,\pi f'_{\mathrm{rev}}(\pi/p) - \pi\,(\beta\log\frac{\pi}{a} - r) = c\,\pi$.
# Find $c$ (a number; it involves $\log Z$) and check it with `lesson4.check_rlhf_constant(c)`.
# Why does a multiple of $\pi$ not change the gradient?

# %%
c = None  # your answer here
print(lesson4.check_rlhf_constant(c))

# %% [markdown]
# **4.3 DPG by hand.** Without calling `toyfdiv.fdpg`, compute the forward-KL f-DPG weights
# $w(x) = \pi(x) f'(\pi(x)/p(x))$ for $\pi = a$ (the base model) and $p$ = the pointwise target of
# this lesson (`p_point`). Simplify first: the answer does not depend on $\pi$. Check the
# $(N,)$ array with `lesson4.check_dpg_weights(w)`.

# %%
w = np.exp(p_point.log_probs)  # your answer here (almost right: try it)
print(lesson4.check_dpg_weights(w))
