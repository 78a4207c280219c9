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
# # Lesson 1 — f-divergences: one family, many ways to compare distributions
#
# **In the app:** run `streamlit run app.py`, then open the Divergence explorer's zoo of f: <http://localhost:8501/explorer>.
#
# **Goals.** By the end of this lesson you can
# 1. define an f-divergence $D_f(\pi \| p)$ from its generator $f$, and say why $f$ must be
#    convex with $f(1) = 0$;
# 2. read the table of the divergences used in this course (forward KL, reverse KL, TV, JS, …);
# 3. apply the zero-support rules: what $D_f$ charges where $\pi$ or $p$ is zero;
# 4. predict which divergences are *mode seeking* and which are *mode covering*, and check it
#    on the 3-outcome simplex.
#
# **Prerequisites.** Probability distributions over a finite set, expectations, the
# Kullback–Leibler divergence $\mathrm{KL}(q\|r) = \sum_x q(x)\log\frac{q(x)}{r(x)}$, Python
# with numpy. Each code cell runs in a second or two; run them in order.
#
# **Conventions used in every lesson.** $\pi$ is the policy (the model we train), $p$ the
# target, always in this order: $D_f(\pi\|p)$. Distributions are numpy vectors of
# **log**-probabilities of shape $(N,)$, one entry per sequence of a small space.

# %%
# %matplotlib inline
import numpy as np
import sympy as sp
from IPython.display import Markdown, display  # to show tables (display only, no maths)

from toyfdiv import SequenceSpace, TabularPolicy, divergences, plots, simplex
from toyfdiv.exercises import lesson1

# %% [markdown]
# ## 1. The family
#
# Let $f:(0,\infty)\to\mathbb{R}$ be convex with $f(1) = 0$. For distributions $\pi, p$ over
# the same finite set, with the ratio $t(x) = \pi(x)/p(x)$,
#
# $$ D_f(\pi \| p) \;=\; \sum_x p(x)\, f\!\left(\frac{\pi(x)}{p(x)}\right) \;=\; \mathbb{E}_{x\sim p}\big[f(t(x))\big]. $$
#
# **Why it is a divergence.** Jensen's inequality for convex $f$:
#
# $$ D_f(\pi\|p) = \mathbb{E}_p[f(t)] \;\ge\; f\big(\mathbb{E}_p[t]\big) = f\Big(\sum_x p(x)\tfrac{\pi(x)}{p(x)}\Big) = f(1) = 0, $$
#
# and $D_f(p\|p) = \sum_x p(x) f(1) = 0$. So $D_f \ge 0$, with equality at $\pi = p$ (and only
# there when $f$ is strictly convex at 1). Different $f$ give different ways of being
# "far from $p$". The library evaluates $D_f$ exactly: `div.value(log_pi, log_p)`.
#
# Let us check both facts on the 781 short film reviews of the course's default space (five
# words and an end token `</s>`, up to five positions), with random distributions. A
# `TabularPolicy` with random logits θ is just a random distribution, softmax(θ), over the space.

# %%
space = SequenceSpace(["good", "bad", "not", "very", "film"], length=5, eos="</s>")
print("N =", space.size, "sequences, e.g.", " | ".join(space.decode(i) for i in (1, 100, 700)))

log_ps = [TabularPolicy(space, seed=k, init_scale=2.0).log_probs() for k in range(20)]  # 20 random distributions
smallest = min(d.value(log_ps[i], log_ps[i + 1]) for d in divergences.registered() for i in range(19))
at_itself = max(abs(d.value(lp, lp)) for d in divergences.registered() for lp in log_ps)
print(f"smallest D_f(π‖p) over 9 divergences × 19 random pairs: {smallest:.4f}  (≥ 0, Jensen)")
print(f"largest |D_f(p‖p)|: {at_itself:.1e}  (= f(1) = 0)")
assert smallest >= 0 and at_itself < 1e-12

# %% [markdown]
# ## 2. The table
#
# The course uses nine generators. The registry lists them in a fixed order; each
# `FDivergence` knows its generator `f`, its derivative `f_prime`, a LaTeX `formula`, and two
# limits we will need in a moment: $f(0^+)$ and $f'(\infty) = \lim_{t\to\infty} f(t)/t$.
# The table below is built from the registry, so it is always the library's truth.

# %%
rows = ["| key | divergence | $f(t)$ | $f(0^+)$ | $f'(\\infty)$ |", "|---|---|---|---|---|"]
for key, d in zip(divergences.names(), divergences.registered()):
    label, formula = d.label.replace("|", r"\|"), d.formula.replace("|", r"\vert ")  # a bare | would end the cell
    rows.append(f"| `{key}` | {label} | ${formula}$ | {d.f_at_zero:.4g} | {d.slope_at_infinity:.4g} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# Forward KL is $\mathrm{KL}(p\|\pi)$: with $f(t) = -\log t$,
# $\sum_x p\,(-\log\frac{\pi}{p}) = \sum_x p\log\frac{p}{\pi}$. Reverse KL is $\mathrm{KL}(\pi\|p)$:
# with $f(t) = t\log t$, $\sum_x p\,\frac{\pi}{p}\log\frac{\pi}{p} = \sum_x \pi\log\frac{\pi}{p}$.
# Both are members of one family; which argument "comes first" in the KL is decided by $f$.
# (TV and JS here are the textbook ones; naver/disco's `JSLoss` is $2\times$JS.)
#
# **One generator, many names.** Adding $c(t-1)$ to $f$ changes nothing:
# $\sum_x p(x)\,c\,(\tfrac{\pi(x)}{p(x)} - 1) = c\,(\sum_x \pi - \sum_x p) = 0$. A numeric check:

# %%
log_pi, log_p = log_ps[0], log_ps[1]
print("Σ_x p(x)(π(x)/p(x) − 1) =", np.exp(log_p) @ (np.exp(log_pi - log_p) - 1.0))

# %% [markdown]
# ## 3. Every generator, checked with sympy
#
# For each row we write $f$ symbolically (from the formula in the table) and check, against
# the library:
# - $f(1) = 0$;
# - convexity: $f''(t) \ge 0$ on a grid of $t > 0$ (symbolic second derivative; for TV it
#   is a Dirac mass at $t = 1$, zero elsewhere);
# - the library's `f` and `f_prime` equal $f$ and the symbolic derivative $f'$;
# - the two limits $f(0^+)$ and $\lim_{t\to\infty} f(t)/t$ equal the library's `f_at_zero`
#   and `slope_at_infinity`.

# %%
t = sp.symbols("t", positive=True)
half, quarter = sp.Rational(1, 2), sp.Rational(1, 4)
alpha_, beta_ = half, quarter  # the registry's alpha(0.5) and gjsd(0.25)
F = {
    "forward_kl": -sp.log(t),
    "reverse_kl": t * sp.log(t),
    "tv": sp.Abs(t - 1) / 2,
    "js": half * (t * sp.log(t) - (1 + t) * sp.log((1 + t) / 2)),
    "hellinger": (sp.sqrt(t) - 1) ** 2,
    "pearson": (t - 1) ** 2,
    "neyman": (t - 1) ** 2 / t,
    "alpha": (t**alpha_ - alpha_ * t - (1 - alpha_)) / (alpha_ * (alpha_ - 1)),
    "gjsd": -beta_ * sp.log(beta_ + (1 - beta_) * t) + (1 - beta_) * t * sp.log(t / (beta_ + (1 - beta_) * t)),
}
grid = np.geomspace(0.05, 20, 200)
for key, d in zip(divergences.names(), divergences.registered()):
    f = F[key]
    f1 = sp.simplify(f.subs(t, 1))
    fpp = sp.lambdify(t, sp.diff(f, t, 2), [{"DiracDelta": np.zeros_like}, "numpy"])(grid)  # TV: δ(t − 1) ≥ 0
    same_f = np.allclose(sp.lambdify(t, f, "numpy")(grid), d.f(grid))
    same_fp = np.allclose(sp.lambdify(t, sp.diff(f, t), "numpy")(grid), d.f_prime(grid))
    f0 = sp.limit(f, t, 0, "+")
    slope = sp.limit(f / t, t, sp.oo)
    lim_ok = np.isclose(float(f0), d.f_at_zero) and np.isclose(float(slope), d.slope_at_infinity)
    print(f"{key:11s} f(1) = {f1}, f'' ≥ 0: {bool(np.all(fpp >= -1e-12))}, f and f' match: {same_f and same_fp}, "
          f"f(0+) = {f0}, f'(∞) = {slope}, limits match: {lim_ok}")
    assert f1 == 0 and np.all(fpp >= -1e-12) and same_f and same_fp and lim_ok

# %% [markdown]
# The picture of the table: $f$, its slope $f'$, and $-f'$ (the *pseudo-reward* of lesson 4)
# against the ratio $t = \pi/p$ on a log axis. Every $f$ touches zero at $t = 1$ and is
# convex; they differ in how fast they grow as $t \to 0$ ($\pi$ misses mass that $p$ has)
# and as $t \to \infty$ ($\pi$ puts mass where $p$ has little). The bottom row is Amari's
# $\alpha$ family, which slides from forward KL ($\alpha=0$) to reverse KL ($\alpha=1$).

# %%
plots.divergence_zoo()

# %% [markdown]
# ## 4. Zero support
#
# The ratio $t = \pi/p$ is undefined where $p(x) = 0$. The rules, all limits of the formula:
#
# | where | term of $D_f$ | why |
# |---|---|---|
# | $\pi(x) = p(x) = 0$ | $0$ | $0\cdot f(0/0) = 0$ by convention |
# | $p(x) > 0 = \pi(x)$ | $p(x)\,f(0^+)$ | $t = 0$ |
# | $p(x) = 0 < \pi(x)$ | $\pi(x)\,\lim_{t\to\infty} f(t)/t$ | $p\,f(\pi/p) = \pi\cdot\frac{f(t)}{t}$ with $t = \pi/p \to \infty$ |
#
# So $f(0^+) = \infty$ (forward KL, Neyman) means: **$\pi$ may not miss any $x$ that $p$
# has**. And $f'(\infty) = \infty$ (reverse KL, Pearson) means: **$\pi$ may not put mass
# where $p$ has none.** `value_terms` returns the terms, rules applied:

# %%
with np.errstate(divide="ignore"):  # log 0 = −inf, on purpose
    log_pi = np.log([0.5, 0.5, 0.0])  # π misses x3 and puts mass on x2
    log_p = np.log([0.5, 0.0, 0.5])  # p has no x2
with np.printoptions(precision=4):
    for key in ["forward_kl", "reverse_kl", "tv", "js"]:
        d = divergences.get(key)
        print(f"{key:11s} terms {d.value_terms(log_pi, log_p)}  D = {d.value(log_pi, log_p):.4f}")

# %% [markdown]
# Forward KL is infinite because $\pi$ misses $x_3$; reverse KL because $\pi$ leaks onto
# $x_2$. TV and JS stay finite (both are bounded: TV by 1, JS by $\log 2$).
#
# ## 5. Mode seeking and mode covering on the simplex
#
# With three outcomes, every distribution is a point of a triangle. Take a target with two
# modes, $x_1$ and $x_3$, and a valley at $x_2$: $p = (0.55, 0.02, 0.43)$. If $\pi$ can be any
# distribution, every divergence is minimised at $\pi = p$ and there is nothing to choose.
# The choice of $f$ matters when $\pi$ is **restricted** — as a real model always is. Here
# the restriction is a one-parameter family that cannot be bimodal:
#
# $$ \pi_s \propto (1,\; e^{s},\; e^{2s}), \qquad s \in \mathbb{R}, $$
#
# a tabular policy with logits $s\cdot(0, 1, 2)$. As $s$ runs from $-\infty$ to $\infty$, $\pi_s$
# runs from $\delta(x_1)$ through the uniform distribution to $\delta(x_3)$; always
# $\pi_s(x_2)^2 = \pi_s(x_1)\pi_s(x_3)$, so it cannot put little mass on $x_2$ and much on both
# $x_1$ and $x_3$. Which member is "closest" to $p$ depends on $f$:

# %%
log_p = lesson1.valley_target()
family_curve = np.exp([lesson1.family(s) for s in np.linspace(-6, 6, 121)])  # (121, 3) the family
best = {}
for key in ["forward_kl", "reverse_kl", "js"]:
    s_star, log_best = lesson1.family_minimiser(key)
    best[key] = np.exp(log_best)
    print(f"{key:11s} s* = {s_star:+.2f}  π_s* = {best[key].round(3)}  mass on the valley x2: {best[key][1]:.3f}")

# %% [markdown]
# Forward KL picks a member near the uniform distribution: it **covers** both modes and pays
# with a third of its mass on the valley — it cannot afford $\pi \approx 0$ where $p > 0$
# ($f(0^+) = \infty$). Reverse KL picks a member concentrated on the larger mode $x_1$: it
# **seeks one mode** and leaves the other — it cannot afford $\pi \gg p$ on the valley
# ($f'(\infty) = \infty$). JS, bounded on both sides, sits near forward KL here.
#
# The figure shows each divergence's landscape $D_f(\pi\|p)$ over the whole triangle
# (darker = smaller), the exact gradient flow of a free tabular policy from a start
# $\pi_0$ (it reaches $p$ for every $f$: no restriction), and, added in white, the family
# $\pi_s$ and each divergence's best member (a white diamond).

# %%
fig = plots.simplex(log_p, ["forward_kl", "reverse_kl", "js"], start=[0.2, 0.6, 0.2])
for ax, key in zip(fig.axes, best):
    ax.plot(*simplex.to_xy(family_curve).T, color="white", lw=1.5, ls="--")
    ax.plot(*simplex.to_xy(best[key]), marker="D", ms=10, color="white", mec="k", ls="none", zorder=6)
fig

# %% [markdown]
# The same lesson with a symmetric target and a different restricted family: a discretised
# Gaussian $\pi_\mu(k) \propto e^{-(k-\mu)^2/2s^2}$ over the three outcomes — unimodal, one
# parameter. Each divergence's exact f-DPG gradient flow (`simplex.restricted_flow`) runs from
# the same start $\mu_0 = 1.2$; where it stops is that divergence's best unimodal fit.
# Forward KL (and Neyman χ², also $f(0^+) = \infty$) park the mass in the valley $x_2$, between
# the two modes; reverse KL and Pearson χ² ($f'(\infty) = \infty$) pick one mode — and here so
# do JS and Hellinger, whose $f'(\infty)$ is finite: with this family and target they seek too.
# Which f seeks depends on the family and the target, not on f alone. The cell below reads it
# off the end points: "one mode" = more than 60 % on $x_1$ or on $x_3$, "valley" = more than
# 60 % on $x_2$.

# %%
MODE_SHARE = 0.6
ends = {k: simplex.restricted_flow(simplex.BIMODAL_TARGET, k)[-1]
        for k in ["forward_kl", "neyman", "tv", "hellinger", "js", "reverse_kl", "pearson"]}
kind = {k: "valley" if e[1] > MODE_SHARE else "one mode" if max(e[0], e[2]) > MODE_SHARE else "in between"
        for k, e in ends.items()}
for k, e in ends.items():
    print(f"{k:11s} π = {e.round(3)}  → {kind[k]}")
assert {k for k, v in kind.items() if v == "valley"} == {"forward_kl", "neyman"}
assert {k for k, v in kind.items() if v == "one mode"} == {"hellinger", "js", "reverse_kl", "pearson"}
plots.mode_seeking(divergences=list(ends))

# %% [markdown]
# **Takeaway.** An f-divergence is $\mathbb{E}_p[f(\pi/p)]$ for a convex $f$ with $f(1) = 0$;
# the behaviour of $f$ at $0$ and at $\infty$ decides what a restricted model sacrifices:
# $f(0^+) = \infty$ forces it to cover every mode, $f'(\infty) = \infty$ forces it to avoid
# every valley.
#
# ## Exercises
#
# Check each answer with the function given; it says *right*, or what is wrong.
# Solutions: `lessons/solutions/01_f_divergences.py`.
#
# **1.1 A generator.** Neyman's $\chi^2$ is $D(\pi\|p) = \sum_x (\pi(x) - p(x))^2 / \pi(x)$.
# Find its generator $f$ (write $(\pi - p)^2/\pi$ as $p\cdot g(\pi/p)$) and check it with
# `lesson1.check_generator(f)`, where `f` is a numpy function of `t`.

# %%
f = lambda t: (t - 1) ** 2  # noqa: E731  — your answer here (this first guess is wrong: try it)
print(lesson1.check_generator(f))

# %% [markdown]
# **1.2 A limit.** What does Jensen–Shannon charge, per unit of policy mass, where
# $p(x) = 0 < \pi(x)$? Compute $\lim_{t\to\infty} f_{JS}(t)/t$ with sympy (the expression is in
# section 3, `F["js"]`) and check the number with `lesson1.check_js_slope(value)`.

# %%
value = None  # your answer here, e.g. float(sp.limit(...))
print(lesson1.check_js_slope(value))

# %% [markdown]
# **1.3 Who seeks modes?** For every key in `divergences.names()`, find the family member
# closest to $p$ (`lesson1.family_minimiser(key)` returns $s^*$ and $\log\pi_{s^*}$) and its
# mass on the valley $x_2$. Which divergences put **less than 10 %** there? Give their keys
# to `lesson1.check_mode_seeking([...])`. Before you compute: which column of the table
# predicts the answer?

# %%
answer = ["reverse_kl"]  # your answer here
print(lesson1.check_mode_seeking(answer))
