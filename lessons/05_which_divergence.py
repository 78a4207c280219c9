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
# # Lesson 5 — Which divergence?
#
# **In the app:** run `streamlit run app.py`, then open the scenario “RLHF vs GDC on one target”: <http://localhost:8501/scenarios?sc_pick=rlhf_vs_gdc>.
#
# **Goals.** After this lesson you can
# 1. explain why the choice of f stops mattering at the optimum when the policy can represent the
#    target, and why it matters a great deal when it cannot;
# 2. predict which compromise each f picks — *mode covering* (forward KL) or *mode seeking*
#    (reverse KL) — from two numbers, f(0⁺) and lim f(t)/t;
# 3. read an alignment–diversity frontier across β;
# 4. argue why Jensen–Shannon is a strong default (a pseudo-reward bounded below, finite where p = 0),
#    and name the cases where it is not.
#
# **Prerequisites.** Lessons 1–4: the f-divergence table, RLHF as reverse KL to
# p_β = a·exp(r/β)/Z, GDC's targets, and the f-DPG gradient
# $\nabla_\theta D_f(\pi_\theta\|p) = \mathbb E_{\pi_\theta}[f'(\pi_\theta/p)\,\nabla_\theta\log\pi_\theta]$.
#
# Every number below is computed by the library, exactly over the 781 sequences of the default task.

# %%
# %matplotlib inline
import numpy as np
import sympy as sp
from IPython.display import Markdown, display

from toyfdiv import divergences, experiments, fdpg, metrics, tasks, train
from toyfdiv import plots
from toyfdiv.policies import AutoregressivePolicy, TinyLM, TinyLMConfig
from toyfdiv.exercises import lesson5


def show(rows, keys, digits=3):
    """A list of dict rows as a Markdown table (display only, no maths)."""
    fmt = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    display(Markdown("\n".join(lines)))


# %% [markdown]
# ## 1. A target the policy cannot reach
#
# We take the film-review task and its RLHF target at β = 0.5,
# $p(x) = a(x)\,e^{r(x)/\beta}/Z$ with r the sentiment score. The policy is a **TinyLM** with a
# GRU state of only H = 2 numbers: it has about 70 parameters for 781 sequences, so it cannot put
# exactly p(x) on every x. (The autoregressive table of lessons 1–4 has one softmax per prefix and
# *can* represent any distribution over the space.)
#
# Maximum likelihood gives the closest TinyLM in forward KL,
# $\min_\theta \mathrm{KL}(p\|\pi_\theta) = \min_\theta -\sum_x p(x)\log\pi_\theta(x) - H(p)$.
# If even a careful fit stays far from 0, that is evidence — not proof — that p lies outside the
# family: the fit is non-convex in θ, so a local minimum could also stop it.

# %%
task = tasks.get("reviews")
BETA = 0.5
target = task.target("rlhf", beta=BETA)
SMALL = dict(n_hidden=2, n_embd=3)          # the capacity-limited TinyLM of this lesson

tiny_fit = TinyLM.fit(task.space, target.log_probs, TinyLMConfig(**SMALL), steps=400, lr=0.03)
table_fit = AutoregressivePolicy.from_log_probs(task.space, target.log_probs)
print(f"TinyLM (H = 2, {tiny_fit.n_params} params):  KL(p‖π) after fitting ≈ {metrics.kl(target.log_probs, tiny_fit.log_probs()):.3f} nats")
print(f"autoregressive table ({table_fit.n_params} params): KL(p‖π) = {abs(metrics.kl(target.log_probs, table_fit.log_probs())):.1e} nats")
assert metrics.kl(target.log_probs, tiny_fit.log_probs()) > 0.1      # p is out of reach
assert abs(metrics.kl(target.log_probs, table_fit.log_probs())) < 1e-9  # … but not for the table

# %% [markdown]
# ## 2. Two numbers decide the compromise
#
# Write $t = \pi(x)/p(x)$ and $D_f(\pi\|p)=\sum_x p(x) f(t(x))$. When π cannot equal p, it must
# err somewhere, in one of two ways:
#
# * **drop** a sequence p wants ($t \to 0$): the cost is $p(x)\,f(0^+)$;
# * **spill** mass on a sequence p barely wants ($t \to \infty$): the cost grows like
#   $\pi(x)\lim_{t\to\infty} f(t)/t$.
#
# | | $f(0^+)$ (dropping) | $\lim f(t)/t$ (spilling) | behaviour |
# |---|---|---|---|
# | forward KL, $-\log t$ | $\infty$ | 0 | never drops: **mode covering** |
# | reverse KL, $t\log t$ | 0 | $\infty$ | never spills: **mode seeking** |
# | JS | $\tfrac12\log 2$ | $\tfrac12\log 2$ | both finite: a balance |
#
# We derive both limits with sympy (`oo` is sympy's ∞) and hold them against the library's
# `f_at_zero` and `slope_at_infinity`.

# %%
t = sp.symbols("t", positive=True)
f_sym = {
    "forward_kl": -sp.log(t),
    "reverse_kl": t * sp.log(t),
    "js": sp.Rational(1, 2) * (t * sp.log(t) - (1 + t) * sp.log((1 + t) / 2)),
    "hellinger": (sp.sqrt(t) - 1) ** 2,
    "pearson": (t - 1) ** 2,
}
rows = []
for name, f in f_sym.items():
    div = divergences.get(name)
    f0, slope = sp.limit(f, t, 0, "+"), sp.limit(f / t, t, sp.oo)
    assert np.isclose(float(f0), div.f_at_zero) and np.isclose(float(slope), div.slope_at_infinity), name
    # and the library's f is this f:
    ts = np.array([0.3, 1.0, 2.5])
    assert np.allclose(div.f(ts), [float(f.subs(t, v)) for v in ts])
    rows.append(dict(f=name, f0=str(f0), slope=str(slope)))
show(rows, ["f", "f0", "slope"])

# %% [markdown]
# ## 3. The experiment: one target, one policy family, four divergences
#
# `experiments.compare` starts every run from the same TinyLM fitted to the base model a, and
# minimises $D_f(\pi_\theta\|p)$ with exact f-DPG gradients for 200 Adam steps.

# %%
DIVS = ["forward_kl", "js", "hellinger", "reverse_kl"]
runs = experiments.compare(task, "rlhf", DIVS, policy="tinylm", policy_options=SMALL, steps=200, lr=0.03,
                           target_options={"beta": BETA})
table = experiments.summary_table(runs)
ref = experiments.target_row(target)
show(table + [dict(divergence="(target p)", final_divergence=0.0, **ref)],
     ["divergence", "final_divergence", "alignment", "entropy", "distinct_100", "kl_from_base"])

# %%
plots.training_curves(runs, target_values=ref)

# %% [markdown]
# Read the table from top to bottom:
#
# * **forward KL** keeps the most entropy — *more* than p itself ($H(p) \approx 3.76$ nats): it
#   refuses to drop anything p wants, so it also spreads mass where p has little, and pays for it
#   in reward;
# * **reverse KL** has the least entropy — less than p — and the most reward: it retreats onto
#   the sequences it can fit well and drops the rest;
# * **JS** and **Hellinger** sit in between; JS lands closest to the target's own entropy.
#
# The column `distinct_100` says the same in the units a reader of the samples sees: the
# expected number of *different* reviews among 100 drawn from π,
# $\sum_x 1-(1-\pi(x))^{100}$ (`metrics.expected_distinct`).
#
# We check these statements rather than trust our eyes:

# %%
H = {r["divergence"]: r["entropy"] for r in table}
R = {r["divergence"]: r["alignment"] for r in table}
assert H["forward_kl"] > ref["entropy"] > H["reverse_kl"]          # covering vs seeking, around H(p)
D = {r["divergence"]: r["distinct_100"] for r in table}
assert D["forward_kl"] > ref["distinct_100"] > D["reverse_kl"]     # …and so in distinct samples
assert R["reverse_kl"] > R["js"] > R["forward_kl"]                 # alignment in the opposite order
assert min(H, key=lambda d: abs(H[d] - ref["entropy"])) == "js"    # JS matches p's diversity best
# forward KL from a is (close to) the maximum-likelihood projection of section 1:
print(f"KL(p‖π) forward-KL run: {runs['forward_kl'].final()['divergence/forward_kl']:.3f}, "
      f"ML fit: {metrics.kl(target.log_probs, tiny_fit.log_probs()):.3f}")

# %%
final = experiments.final_policies(task, target, runs)
short = task.space.index("very good </s>")  # the short review every TinyLM over-weights
print("π(very good </s>):", {k: round(float(np.exp(final[k][short])), 3) for k in ("target", "forward_kl", "js", "reverse_kl")})
plots.distributions(task.space, {k: final[k] for k in ("target", "forward_kl", "js", "reverse_kl")}, k=12)

# %% [markdown]
# In the figure, every TinyLM gives the short "very good </s>" more mass than p does — reverse
# KL the most, forward KL the least — and the longest of p's favourites ("very good very good
# </s>", "good film very good </s>") less: a GRU with two numbers of state cannot copy p exactly.
#
# With the full autoregressive table instead, every divergence reaches p itself
# ($D_f(\pi\|p)=0$ ⇔ π = p for every strictly convex f), and the four rows collapse into one.
# The choice of f then only changes the *path*, not the destination:

# %%
full = experiments.compare(task, "rlhf", ["forward_kl", "js", "reverse_kl"], policy="autoregressive",
                           steps=300, lr=0.1, target_options={"beta": BETA})
for name, h in full.items():
    print(f"{name:11s} KL(π‖p) = {h.final()['divergence/reverse_kl']:.1e}, entropy {h.final()['entropy']:.3f}"
          f" (H(p) = {ref['entropy']:.3f})")
    assert h.final()["divergence/reverse_kl"] < 5e-3

# %% [markdown]
# ## 4. The alignment–diversity frontier
#
# β sets how far p_β moves from a: as β shrinks, p_β concentrates on high-reward sequences
# (more alignment, less entropy, more KL from a). Sweeping β traces one curve per divergence in
# the (entropy, reward) plane. The target's own curve is the ideal; each f's curve is the
# compromise it picks inside the TinyLM family.

# %%
BETAS = (0.25, 0.5, 1.0)
rows = experiments.frontier(task, ["forward_kl", "js", "reverse_kl"], betas=BETAS, policy="tinylm",
                            policy_options=dict(SMALL, fit_steps=200), steps=200, lr=0.03)
plots.frontier(rows)

# %%
show(rows, ["divergence", "beta", "alignment", "entropy", "kl_from_base", "target_alignment", "target_entropy"])
for beta in BETAS:
    at = {r["divergence"]: r for r in rows if r["beta"] == beta}
    assert at["reverse_kl"]["entropy"] < at["js"]["entropy"] < at["forward_kl"]["entropy"], beta  # at every β
low = {r["divergence"]: r for r in rows if r["beta"] == min(BETAS)}
assert low["reverse_kl"]["alignment"] > low["reverse_kl"]["target_alignment"]   # more reward than p_β itself…
assert low["reverse_kl"]["entropy"] < 0.5 * low["reverse_kl"]["target_entropy"]  # …by collapsing
for beta in (0.25, 0.5):                                                          # strong pressure:
    at = {r["divergence"]: r for r in rows if r["beta"] == beta}
    assert max(at, key=lambda d: at[d]["alignment"]) == "reverse_kl", beta         # reverse KL: most reward
weak = [r for r in rows if r["beta"] == 1.0]
assert np.ptp([r["alignment"] for r in weak]) < np.ptp([r["entropy"] for r in weak])  # β = 1: diversity differs more

# %% [markdown]
# At every β the diversity order is the same: reverse KL < JS < forward KL. Under strong pressure
# (β = 0.25) reverse KL *collapses*: its entropy falls far below the target's, and it even earns
# more reward than p_β itself — it has stopped approximating p and started maximising reward on
# the few sequences it can fit. Forward KL never collapses, but spends mass on sequences p does
# not want. At weak pressure (β = 1) the three rewards are close (reverse KL's is even the
# lowest) and the divergences differ mostly in diversity. Neither end is "wrong": they answer different questions, and the
# frontier tells you what each choice costs on *your* task.
#
# ## 5. Why JS is a strong default
#
# f-DPG is REINFORCE with the pseudo-reward $R = -f'(t)$. Its *shape* decides how learning
# behaves when the policy errs:
#
# $$
# R_{\text{fKL}} = \frac{p}{\pi},\qquad
# R_{\text{rKL}} = \log\frac{p}{\pi}-1,\qquad
# R_{\text{JS}} = \tfrac12\log\frac{\pi+p}{2\pi}.
# $$
#
# * forward KL's reward explodes like 1/t where π ≪ p: huge, rare rewards — a high-variance
#   estimator once we sample (lesson 6);
# * reverse KL's reward is unbounded *below*: $-\infty$ where p = 0, so against a pointwise
#   constraint with forbidden sequences the divergence itself is infinite;
# * JS's reward grows only logarithmically where π ≪ p, and is **bounded below by −½ log 2**,
#   reached exactly where p = 0 (the mixture $m = (\pi+p)/2 \ge \pi/2$ never vanishes where π lives).

# %%
R_sym = {name: -sp.diff(f, t) for name, f in f_sym.items() if name in ("forward_kl", "reverse_kl", "js")}
for name, R_ in R_sym.items():
    lo, hi = sp.limit(R_, t, sp.oo), sp.limit(R_, t, 0, "+")
    print(f"{name:11s} R(t) = {sp.simplify(R_)!s:40s} R(∞) = {lo!s:12s} R(0⁺) = {hi}")
    log_t = np.log([0.5, 3.0])
    assert np.allclose(divergences.get(name).pseudo_reward(log_t), [float(R_.subs(t, v)) for v in np.exp(log_t)])
assert sp.simplify(sp.limit(R_sym["js"], t, sp.oo) + sp.log(2) / 2) == 0

# %%
plots.divergence_zoo(["forward_kl", "reverse_kl", "js"], alphas=[0.0, 0.5, 1.0])

# %% [markdown]
# A pointwise GDC constraint ("the review contains *good*") makes a target with zeros: 341 of the
# 781 sequences are forbidden. Reverse KL refuses it; JS trains, and its gradient weight on a
# forbidden sequence is exactly $\pi(x)\cdot\tfrac12\log 2$.

# %%
hard = task.target("pointwise", epsilon=0.0)
start = experiments.make_policy(task, "tinylm", **SMALL)
try:
    train(start, hard, "reverse_kl", steps=1)
except ValueError as err:
    print("reverse KL:", err)

w = fdpg.gradient_weights(start.log_probs(), hard.log_probs, "js")
forbidden = ~np.asarray(task.constraint.values, dtype=bool)
assert np.allclose(w[forbidden], np.exp(start.log_probs()[forbidden]) * 0.5 * np.log(2))
print(f"{forbidden.sum()} forbidden sequences; JS weight / π there = {w[forbidden][0] / np.exp(start.log_probs()[forbidden][0]):.4f} = ½ log 2")

# %% [markdown]
# ## 6. …and when it is not
#
# 1. **When the family can represent p**, every f reaches p (section 3): pick f for optimisation
#    comfort, not for the destination.
# 2. **When alignment is all that counts** (a reward to maximise, diversity a nuisance), reverse
#    KL — i.e. RLHF — gets the most reward at a given β under strong pressure (β = 0.25 and 0.5 in
#    section 4; at β = 1 the three rewards are nearly equal).
# 3. **When a hard constraint must hold**, JS's bounded push on forbidden sequences is gentle.
#    Smoothing the target (ε > 0 in `targets.pointwise`) lets reverse KL in, and it drives the
#    violations out harder:

# %%
cons = experiments.compare(task, "pointwise", ["js", "reverse_kl"], policy="tinylm", policy_options=SMALL,
                           steps=200, lr=0.03, target_options={"epsilon": 1e-3})
sat = {n: h.final()["alignment/constraint"] for n, h in cons.items()}
print({n: round(v, 4) for n, v in sat.items()})
assert sat["reverse_kl"] > sat["js"]

# %% [markdown]
# **Takeaway.** When the policy cannot represent the target, f chooses the compromise: forward KL
# covers, reverse KL seeks, and JS — a divergence bounded by log 2, with a pseudo-reward bounded
# below and finite where p = 0, closest to p's own diversity — is the safe default unless you want maximal alignment or strict constraints.
#
# ## Exercises
#
# Solutions: `lessons/solutions/05_which_divergence.py`.
#
# **5.1 The floor.** What is the lowest value the JS pseudo-reward $R = -f'(t)$ can take (t = π/p)? Use sympy.

# %%
my_floor = None  # your answer: a float
print(lesson5.check_js_floor(my_floor))

# %% [markdown]
# **5.2 Zeros in the target.** Among `lesson5.FIXED_DIVERGENCES`, which keep a finite f-DPG gradient against a target
# with zeros (p(x) = 0 < π(x))? Answer with a set of names.

# %%
my_set = set()  # your answer, e.g. {"js", ...}
print(lesson5.check_finite_against_zeros(my_set))

# %% [markdown]
# **5.3 A weaker policy.** Repeat section 3 with an even weaker policy: a *unigram* model,
# `policy="ngram", policy_options={"order": 1}` (every token drawn from one softmax, ignoring
# the prefix). The full setup is `lesson5.RANKING_SETUP`. Rank forward KL, JS and reverse KL
# by the entropy of the policy they reach, most diverse first. Does the picture change?

# %%
print(lesson5.RANKING_SETUP)
my_ranking = []  # your answer, e.g. ["js", "forward_kl", "reverse_kl"]
print(lesson5.check_diversity_ranking(my_ranking))
