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
# # Lesson 6 — From exact to sampled
#
# **In the app:** run `streamlit run app.py`, then open the Estimator lab: <http://localhost:8501/estimators>.
#
# **Goals.** After this lesson you can
# 1. say why every method used on real language models samples, and what it must then estimate;
# 2. estimate the partition function Z by importance sampling, and show that Ẑ is unbiased
#    while log Ẑ and the plug-in target p̂ = P/Ẑ are not;
# 3. tell, for a given f, whether a wrong Ẑ rescales, shifts, or distorts the f-DPG gradient;
# 4. measure bias and variance of the sampled gradient for several baselines, and explain why
#    the batch-mean baseline is slightly biased;
# 5. run off-policy f-DPG with a proposal q and GDC's KL-adaptive rule, and say what it costs.
#
# **Prerequisites.** Lessons 2–4 (targets p = P/Z, the f-DPG gradient and its pseudo-reward).
#
# Until now every expectation was a sum over the whole space. Here we replace sums by samples and
# hold every estimate against the exact value, which on our toy space we still know.

# %%
# %matplotlib inline
import numpy as np
import sympy as sp
from IPython.display import Markdown, display

from toyfdiv import SequenceSpace, experiments, fdpg, metrics, tasks, train
from toyfdiv import plots
from toyfdiv.estimator_lab import format_stats
from toyfdiv.exercises import lesson6

rng = np.random.default_rng(0)


def show(rows, keys, digits=3):
    """A list of dict rows as a Markdown table (display only, no maths)."""
    fmt = lambda v: f"{v:.{digits}g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    display(Markdown("\n".join(lines)))


# %% [markdown]
# ## 1. Why sample at all?
#
# The exact f-DPG gradient is $\sum_x \pi_\theta(x) f'(\pi_\theta(x)/p(x))\,\nabla_\theta\log\pi_\theta(x)$:
# one term per sequence. Our review space has 781 sequences. A real model's does not fit in any
# computer:

# %%
ours = tasks.get("reviews").space
print(f"our space:            N = {ours.size:,}")
print(f"GPT-2 vocabulary, 20 tokens: N = {float(SequenceSpace.size_of(50257, 20)):.2e}")
try:
    SequenceSpace([f"w{i}" for i in range(1000)], length=6)
except ValueError as err:
    print("SequenceSpace refuses:", str(err)[:120], "…")

# %% [markdown]
# What *can* be done at scale is to **draw** n sequences $x_i \sim q$, evaluate $\pi_\theta(x_i)$,
# the unnormalised target $P(x_i) = Z\,p(x_i)$ (e.g. $a(x_i)e^{r(x_i)/\beta}$ — a reward call
# and a forward pass of the base model), and back-propagate through $\log\pi_\theta(x_i)$:
#
# $$
# \hat g = -\frac1n\sum_{i=1}^n \rho(x_i)\,\big[R(x_i) - B_i\big]\,\nabla_\theta\log\pi_\theta(x_i),\qquad
# \rho = \frac{\pi_\theta}{q},\quad R = -f'\!\Big(\frac{\pi_\theta}{\hat p}\Big),\quad \hat p = \frac{P}{\hat Z}.
# $$
#
# Three things are new compared with the exact gradient: the **proposal** q (with importance
# weights ρ; on-policy q = πθ and ρ = 1), the **estimate Ẑ** of the normaliser, and the
# **baseline** B. We take them one at a time, on the RLHF target of the review task at β = 0.5,
# with the base model a as the policy.

# %%
task = tasks.get("reviews")
target = task.target("rlhf", beta=0.5)
policy = experiments.make_policy(task, "autoregressive")   # πθ = a
Z = np.exp(target.log_z)
print(f"Z = Σ_x a(x) exp(r(x)/β) = {Z:.4f}")

# %% [markdown]
# ## 2. Estimating Z by importance sampling
#
# For any q that covers P,
# $$ Z = \sum_x P(x) = \sum_x q(x)\,\frac{P(x)}{q(x)} = \mathbb E_{x\sim q}\Big[\frac{P(x)}{q(x)}\Big],
# \qquad \hat Z = \frac1n\sum_{i=1}^n \frac{P(x_i)}{q(x_i)} . $$
# So **Ẑ is unbiased**, $\mathbb E[\hat Z] = Z$, with variance
# $\operatorname{Var}\hat Z = \big(\mathbb E_q[(P/q)^2] - Z^2\big)/n$.
#
# Check both with 4000 independent batches of n = 16 (`fdpg.sample_estimates` returns the log Ẑ
# of every batch), against the exact sums over the space:

# %%
n, trials = 16, 4000
batches = fdpg.sample_estimates(policy, target, "js", n=n, trials=trials, rng=rng, z="batch")
z_hat = np.exp(batches.log_z_hat)                                     # (trials,)
log_q = policy.log_probs()
second_moment = np.exp(2 * target.log_scores - log_q).sum()           # E_q[(P/q)²] = Σ P²/q
var_exact = (second_moment - Z**2) / n
se = np.sqrt(var_exact / trials)
print(f"E[Ẑ] ≈ {z_hat.mean():.4f} ± {se:.4f}   (Z = {Z:.4f})")
print(f"Var(Ẑ) ≈ {z_hat.var():.4f}   (exact {var_exact:.4f})")
assert abs(z_hat.mean() - Z) < 4 * se
assert abs(z_hat.var() / var_exact - 1) < 0.25

# %% [markdown]
# **But log Ẑ is biased low.** log is concave, so by Jensen $\mathbb E[\log\hat Z] \le \log\mathbb E[\hat Z] = \log Z$.
# A second-order Taylor expansion (the delta method) gives its size:
# $$ \mathbb E[\log \hat Z] \approx \log Z - \frac{\operatorname{Var}\hat Z}{2Z^2} = \log Z - \frac{\mathbb E_q[(P/q)^2]/Z^2 - 1}{2n} = O(1/n). $$
# sympy confirms the second-order coefficient; the simulation confirms the sign and the 1/n decay:

# %%
z, Zs, eps = sp.symbols("z Z epsilon", positive=True)
taylor = sp.series(sp.log(Zs + eps), eps, 0, 3).removeO()                 # log(Z + ε) around ε = 0
assert sp.simplify(taylor - (sp.log(Zs) + eps / Zs - eps**2 / (2 * Zs**2))) == 0
bias_rows = []
for n_ in (4, 16, 64):
    b = fdpg.sample_estimates(policy, target, "js", n=n_, trials=2000, rng=rng, z="batch")
    predicted = -(second_moment / Z**2 - 1) / (2 * n_)
    bias_rows.append(dict(n=n_, measured=float(b.log_z_hat.mean() - target.log_z), delta_method=predicted))
show(bias_rows, ["n", "measured", "delta_method"])
assert all(r["measured"] < 0 for r in bias_rows)
assert bias_rows[0]["measured"] < bias_rows[1]["measured"] < bias_rows[2]["measured"]

# %% [markdown]
# The delta method is only a guide here, and it overstates the bias at small n: P/q is
# heavy-tailed (a few rare high-reward sequences carry much of Z and of its variance), and a small
# batch usually misses them altogether. The sign and the decay with n are what to remember.
#
# ## 3. p̂ = P/Ẑ inside a non-linear f
#
# The pseudo-reward needs $p = P/Z$; in practice we plug in $\hat p = P/\hat Z$. Even with an
# unbiased Ẑ, $\mathbb E[-f'(\pi\hat Z/P)] \ne -f'(\pi Z/P)$ unless $-f'$ is affine in Ẑ.
# How Ẑ enters depends on f:
#
# | f | $R(x) = -f'(\pi\hat Z/P)$ | a wrong Ẑ … |
# |---|---|---|
# | forward KL | $\dfrac{P(x)}{\pi(x)}\cdot\dfrac{1}{\hat Z}$ | **rescales** every reward of the batch: the direction of ĝ is unchanged |
# | reverse KL | $\log P(x) - \log\pi(x) - 1 - \log\hat Z$ | **shifts** every reward by one constant: a batch baseline removes it exactly |
# | JS | $\tfrac12\log\dfrac{\pi\hat Z + P}{2\pi\hat Z}$ | **distorts**: different x move by different amounts |
#
# We let sympy decide which case each f is in, by asking whether $\partial R/\partial\log\hat Z$
# depends on the sequence (on π and P):

# %%
pi_, P_, lz = sp.symbols("pi P ell", positive=True)                 # ell = log Ẑ
t_ = pi_ * sp.exp(lz) / P_
fprime = {"forward_kl": -1 / t_, "reverse_kl": 1 + sp.log(t_),
          "js": sp.log(2 * t_ / (1 + t_)) / 2}
for name, fp in fprime.items():
    dR = sp.simplify(sp.diff(-fp, lz))
    kind = ("shift (constant)" if not dR.free_symbols & {pi_, P_}
            else "rescale" if sp.simplify(sp.diff(-fp, lz) + (-fp)) == 0 else "distortion")
    print(f"{name:11s} ∂R/∂log Ẑ = {dR!s:35s} → {kind}")

# %% [markdown]
# Now the numbers. `fdpg.estimator_stats` draws many independent batches and reports, per
# option, the bias $\|\mathbb E\hat g - g\|$ (with its noise floor `bias_se`), the variance
# $\operatorname{tr}\operatorname{Cov}\hat g$ and the mean cosine with the exact gradient g. Every
# option sees the same samples, so differences between rows are not sampling noise.

# %%
lab = {}
for name in ("forward_kl", "reverse_kl", "js"):
    lab[name] = fdpg.estimator_stats(policy, target, name, n=4, trials=1500, rng=np.random.default_rng(1),
                                     baselines=("none", "loo"), z_options=("exact", "batch"))
    print(format_stats(lab[name]))
row = {(r["divergence"], r["z"], r["baseline"]): r for rows in lab.values() for r in rows}

# %%
# forward KL: Ẑ rescales each estimate -> the same cosine, a very different length (bias)
assert np.isclose(row["forward_kl", "exact", "none"]["cosine"], row["forward_kl", "batch", "none"]["cosine"])
assert row["forward_kl", "batch", "none"]["bias"] > 5 * row["forward_kl", "batch", "none"]["bias_se"]
assert row["forward_kl", "batch", "none"]["variance"] < row["forward_kl", "exact", "none"]["variance"] / 10  # …for far less variance
# reverse KL: Ẑ shifts every reward; the leave-one-out baseline removes it exactly
assert np.isclose(row["reverse_kl", "exact", "loo"]["bias"], row["reverse_kl", "batch", "loo"]["bias"])
# JS: a genuine distortion -> bias well above the noise floor with a batch Ẑ, none with the exact Z
assert row["js", "batch", "none"]["bias"] > 3 * row["js", "batch", "none"]["bias_se"]
assert row["js", "exact", "none"]["bias"] < 3 * row["js", "exact", "none"]["bias_se"]

# %% [markdown]
# Two lessons hide in these rows. First, with the *exact* Z every estimator is unbiased (its bias
# is within its noise floor) — the bias comes from Ẑ. Second, the self-normalised forward-KL
# estimate trades bias for a much smaller variance (over ten times smaller in its rows).
# Plugging p̂ = P/Ẑ into f' is f-DPG and disco practice (Go et al. 2023, Algorithm 1), with a
# running Ẑ over all samples seen
# (`z="running"` in `train`, which shrinks the bias as training goes on). Khalifa et al.'s DPG
# (GDC, 2021) is different: its update weights ∇ log π by P/q with no Ẑ at all — an unbiased
# estimate of Z times the gradient, a constant factor the learning rate absorbs; their running
# Ẑ serves only the test that decides whether to replace the proposal q.
#
# ## 4. Baselines and variance
#
# Subtracting $B_i$ from $R(x_i)$ does not move the expectation when $B_i$ does not depend on $x_i$:
# $$ \mathbb E_{q}\big[\rho\,B\,\nabla_\theta\log\pi_\theta\big] = B\sum_x \nabla_\theta\pi_\theta(x) = B\,\nabla_\theta 1 = 0, $$
# yet it can shrink the variance a lot. The options of `toyfdiv`: `none`, the batch `mean`,
# the leave-one-out `loo`, a moving average `ema` over past batches (on the very first step,
# with no past, it is the batch mean, below), and `dpg`, the constant
# $-f'(1)$ (for forward KL: B = 1, the advantage $p/\pi - 1$ of Korbak et al. 2022).
#
# The batch mean contains $R_i$ itself. On-policy,
# $R_i - \bar R = (1 - \tfrac1n)\big(R_i - \bar R_{-i}\big)$, so $\mathbb E[\hat g] = (1-\tfrac1n)\,g$: a
# relative bias of exactly 1/n. In the table it hides in the noise, so we check the identity
# itself, batch by batch, below the figure.

# %%
stats = []
for n_ in (4, 16, 64):
    stats += fdpg.estimator_stats(policy, target, "reverse_kl", n=n_, trials=600, rng=np.random.default_rng(2),
                                  baselines=("none", "mean", "loo"), z_options=("exact",))
show(stats, ["n", "baseline", "bias", "bias_se", "relative_bias", "variance", "cosine"])
plots.estimator_stats(stats)

# %%
by = {(r["n"], r["baseline"]): r for r in stats}
for n_ in (4, 16, 64):
    assert by[n_, "loo"]["variance"] < by[n_, "none"]["variance"]      # a baseline helps
    assert by[n_, "loo"]["bias"] < 3 * by[n_, "loo"]["bias_se"]        # loo: unbiased
# The (1 − 1/n) identity holds batch by batch: the same samples (same seed), two baselines.
for n_ in (4, 16):
    g_mean = fdpg.sample_estimates(policy, target, "reverse_kl", n=n_, trials=50, baseline="mean",
                                   rng=np.random.default_rng(3)).gradients
    g_loo = fdpg.sample_estimates(policy, target, "reverse_kl", n=n_, trials=50, baseline="loo",
                                  rng=np.random.default_rng(3)).gradients
    assert np.allclose(g_mean, (1 - 1 / n_) * g_loo)
print("ĝ_mean = (1 − 1/n) ĝ_loo on every batch ✓")

# %% [markdown]
# ## 5. Off-policy proposals and GDC's KL-adaptive rule
#
# On-policy sampling needs fresh samples from πθ at every step. GDC's DPG (Khalifa et al. 2021)
# instead samples from a **proposal** q — at first the base model a — and corrects with
# $\rho = \pi_\theta/q$. As πθ moves away from q the weights degenerate; the **effective sample
# size** $\text{ESS} = (\sum\rho)^2/\sum\rho^2$ says how many of the n samples still count.
# The *KL-adaptive* rule replaces q by the current πθ whenever πθ is closer to p:
# $q \leftarrow \pi_\theta$ if $\mathrm{KL}(p\|\pi_\theta) < \mathrm{KL}(p\|q)$, with both KLs estimated
# from the batch by self-normalised importance sampling.
#
# We run DPG (forward KL) four ways, n = 32 samples per step, 150 steps, three seeds each, and
# report two effective sample sizes at the last step: that of ρ = πθ/q (how well the batch
# represents πθ) and that of P/q (how well it represents p). First on GDC's pointwise target
# ("the review contains *good*"):

# %%
gdc = task.target("pointwise", epsilon=0.0)
a = experiments.make_policy(task, "autoregressive")
settings = {"exact": dict(estimator="exact"),
            "on-policy": dict(estimator="sampled", n=32, baseline="dpg"),
            "q = a (fixed)": dict(estimator="sampled", n=32, baseline="dpg", proposal=a),
            "KL-adaptive": dict(estimator="sampled", n=32, baseline="dpg", proposal=a, adaptive_every=10)}


def four_ways(tgt, alignment_key, alignment_label):
    """DPG from a to ``tgt`` in each of the four settings; one row per setting, means over seeds."""
    rows = []
    for label, opts in settings.items():
        seeds = [0] if opts["estimator"] == "exact" else [0, 1, 2]
        hs = [train(a, tgt, "forward_kl", steps=150, lr=0.05, seed=s, **opts) for s in seeds]
        m = lambda key: float(np.mean([h.metrics[key][-1] for h in hs])) if key in hs[0].metrics else "—"
        rows.append({"run": label, "KL(p‖π)": m("divergence/forward_kl"), alignment_label: m(alignment_key),
                     "ESS of π/q": m("estimator/ess"), "ESS of P/q": m("estimator/ess_target"),
                     "swaps": float(np.mean([h.metrics.get("estimator/swapped", np.zeros(1)).sum() for h in hs])),
                     "seconds": float(np.mean([h.seconds for h in hs]))})
    return rows


offp = four_ways(gdc, "alignment/constraint", "E_π[b]")
show(offp, list(offp[0]))

# %%
res = {r["run"]: r for r in offp}
assert res["q = a (fixed)"]["ESS of π/q"] < 0.75 * 32          # the weights ρ have degenerated…
assert res["KL-adaptive"]["ESS of π/q"] > res["q = a (fixed)"]["ESS of π/q"]  # …the rule restores them
assert res["KL-adaptive"]["swaps"] >= 1
assert all(r["KL(p‖π)"] < metrics.kl(gdc.log_probs, a.log_probs()) for r in offp)  # every run learns
assert res["q = a (fixed)"]["KL(p‖π)"] < min(res["on-policy"]["KL(p‖π)"], res["KL-adaptive"]["KL(p‖π)"])
print(f"Z = a(b) = {np.exp(gdc.log_z):.3f}: the share of a's samples that satisfy b")

# %% [markdown]
# Read the KL column with care: here the *fixed* proposal ends closest to p of the three sampled
# runs, despite its lower ESS of π/q. For forward KL the importance-weighted reward is
# $\rho R = \frac{\pi_\theta}{q}\cdot\frac{P}{\hat Z\pi_\theta} = \frac{P}{\hat Z q}$; with q = a
# and P = a·b it is $b/\hat Z$, the same for every sample that satisfies b — and those samples are
# exact draws from p, because p *is* a conditioned on b. The ESS of P/q stays at a's acceptance
# rate, Z·n ≈ 13 of 32, for the whole run. A proposal is only as good as it is a sampler of p.
#
# An RLHF target far from a is different: $P/a = e^{r/\beta}$ is heavy-tailed, a rarely draws
# the high-reward sequences that carry most of p, and the fixed proposal falls behind. The
# KL-adaptive rule, which hands sampling over to πθ once πθ is closer to p, matches the
# on-policy result (the same four settings, on the RLHF target at β = 0.5):

# %%
offp_rlhf = four_ways(target, "alignment/reward", "E_π[r]")
show(offp_rlhf, list(offp_rlhf[0]))
res = {r["run"]: r for r in offp_rlhf}
assert res["q = a (fixed)"]["KL(p‖π)"] > 1.5 * res["KL-adaptive"]["KL(p‖π)"]      # a is a poor sampler of p…
assert res["q = a (fixed)"]["ESS of P/q"] < 0.5 * res["KL-adaptive"]["ESS of P/q"]  # …and P/q says so

# %% [markdown]
# ## 6. What sampling costs
#
# * **Variance → more steps.** A sampled run follows a noisy gradient: at equal steps it ends
#   further from p than the exact run (table above). The cure — more samples, better baselines,
#   smaller learning rates — costs compute.
# * **Bias from Ẑ.** An estimated Z biases the gradient by O(1/n) for every f but reverse KL with
#   a leave-one-out baseline (a shift, removed exactly). Forward KL keeps the direction of each
#   estimate (a rescaling by Z/Ẑ) but is still biased in length — section 3 measured it; the
#   other f are distorted. A running Ẑ over all past samples shrinks the bias.
# * **Off-policy samples are only as good as the proposal.** Reusing a fixed q saves sampling from
#   πθ, but the ESS of π/q falls as πθ learns, and when q samples p poorly (the ESS of P/q is
#   small) learning slows; the KL-adaptive rule hands sampling over to πθ once πθ is closer to p,
#   at the price of estimating two KLs and keeping a copy of the proposal.
#
# On our space none of this is needed — which is exactly why we can measure what it costs.
#
# **Takeaway.** Sampled f-DPG replaces sums by importance-weighted batch means: Ẑ is unbiased
# but p̂ = P/Ẑ biases the gradient (forward KL only rescales: same direction, biased length;
# reverse KL only shifts: unbiased with "loo"; every other f distorts),
# baselines buy variance for free when they ignore the sample they correct, and an off-policy
# proposal is only as good as it samples p — GDC's KL-adaptive rule replaces it by πθ once πθ is
# closer to p.
#
# ## Exercises
#
# Solutions: `lessons/solutions/06_exact_to_sampled.py`.
#
# **6.1 Var(Ẑ) under a constraint.** For GDC's pointwise target ("contains *good*", ε = 0) and q = a, what is Var(Ẑ) for a
# batch of `lesson6.Z_VARIANCE_N` = 10 samples? (Hint: what is P(x)/a(x) here?) Give a number.

# %%
my_var = None  # your answer: a float
print(lesson6.check_z_variance(my_var))

# %% [markdown]
# **6.2 Unbiased baselines.** Which of the baselines `"none", "mean", "loo", "ema", "dpg"` keep the sampled gradient
# exactly unbiased at every step, the first included, when Z is known? Answer with a set.

# %%
my_baselines = set()  # your answer
print(lesson6.check_unbiased_baselines(my_baselines))

# %% [markdown]
# **6.3 Shift, rescale or distort.** For which divergence does an estimated Ẑ only *shift* all pseudo-rewards of a batch by
# one constant (so that a batch baseline removes it exactly)? Check your answer in the table of
# section 3.

# %%
my_divergence = None  # your answer, a name such as "js"
print(lesson6.check_z_shift(my_divergence))
