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
# # Lesson 7 — Where does r come from?
#
# **In the app:** run `streamlit run app.py`, then open the Human feedback page: <http://localhost:8501/feedback>.
#
# **Goals.** After this lesson you can
# 1. simulate human feedback — thumbs up/down and pairwise comparisons — from a hidden utility
#    with noise (a temperature τ) and a systematic bias;
# 2. fit a Bradley–Terry reward model r̂ and say what it can and cannot identify;
# 3. show reward **over-optimisation**: as β shrinks, the proxy r̂ keeps rising while the true
#    utility peaks and falls;
# 4. derive DPO from the RLHF closed form, and f-DPO from its f-divergence version — and say
#    which f are allowed.
#
# **Prerequisites.** Lesson 2 (the RLHF target p_β = a·exp(r/β)/Z and its closed form) and
# lesson 4 (the f-divergence table).
#
# Until now r was given. In practice it is *learned* from people, who are noisy and biased, and
# the learned r̂ is then optimised hard. Everything below is exact over the 781 review sequences,
# except the feedback itself, which is sampled with fixed seeds.

# %%
# %matplotlib inline
import numpy as np
import sympy as sp
from scipy.special import expit

from toyfdiv import TabularPolicy, divergences, metrics, tasks, targets
from toyfdiv import feedback as fb
from toyfdiv import plots
from toyfdiv.exercises import lesson7

task = tasks.get("reviews")
u = task.reward.values               # the hidden true utility: the sentiment of a review
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Simulated raters
#
# A rater judges by a perceived utility $\tilde u(x) = u(x) + b(x)$ — the truth plus a bias —
# with logistic noise at temperature τ:
#
# $$ P(👍\mid x) = \sigma\!\Big(\frac{\tilde u(x) - u_0}{\tau}\Big), \qquad
#    P(x \succ y) = \sigma\!\Big(\frac{\tilde u(x) - \tilde u(y)}{\tau}\Big)\quad\text{(Bradley–Terry)}. $$
#
# The pair probabilities depend on ũ only through $r = \tilde u/\tau$ and only through differences:
# adding a constant to r, or scaling ũ and τ together, changes nothing. sympy:

# %%
rx, ry, c, k, tau = sp.symbols("r_x r_y c k tau", real=True)
bt = lambda a, b, temp: 1 / (1 + sp.exp(-(a - b) / temp))
assert sp.simplify(bt(rx + c, ry + c, tau) - bt(rx, ry, tau)) == 0      # shift: invisible
assert sp.simplify(bt(k * rx, k * ry, k * tau) - bt(rx, ry, tau)) == 0  # joint scale: invisible

# %% [markdown]
# We collect 1000 pairs from a fair rater (τ = 1, no bias) on samples of the base model a. The
# *Bayes accuracy* — how often the truly better sequence wins — is the ceiling any reward model
# can reach on held-out pairs; the collected data agree with it:

# %%
fair = fb.Rater.for_task(task, temperature=1.0)
pairs = fb.collect_preferences(fair, task.base, 1000, rng)
agree = np.mean(fair.reward[pairs.winners] > fair.reward[pairs.losers]) + 0.5 * np.mean(
    fair.reward[pairs.winners] == fair.reward[pairs.losers])
ceiling = fb.bayes_accuracy(fair, task.base)
print(f"the better sequence won {agree:.3f} of the pairs; Bayes accuracy {ceiling:.3f}")
assert abs(agree - ceiling) < 4 * np.sqrt(ceiling * (1 - ceiling) / len(pairs))
thumbs = fb.collect_thumbs(fair, task.base, 1000, rng)
print(f"thumbs up on {thumbs.labels.mean():.2f} of 1000 base samples")

# %% [markdown]
# ## 2. A reward model
#
# The Bradley–Terry reward model maximises the likelihood of the observed preferences,
# $\hat\theta = \arg\min_\theta -\sum_i \log\sigma(r_\theta(w_i) - r_\theta(l_i)) + \tfrac{l_2}{2}\|\theta\|^2$.
# Two families: **tabular** (one free value per sequence: can fit anything, but most sequences are
# never compared) and **linear** in unigram+bigram counts (the sentiment score is linear in those,
# so the truth is in the family). The constant is not identified (section 1), so r̂ is centred,
# $\mathbb E_a[\hat r] = 0$.

# %%
train_pairs, test_pairs = pairs.split(0.25, rng)
phi, phi_names = fb.ngram_features(task.space, order=2)
models = {"tabular": fb.fit_reward_model(train_pairs, None, centre_log_probs=task.log_a),
          "linear": fb.fit_reward_model(train_pairs, phi, centre_log_probs=task.log_a)}
truth_centred = fb.centre(fair.reward, task.log_a)[0]
for name, rm in models.items():
    ev = fb.evaluate(rm, test_pairs)
    err = np.exp(task.log_a) @ np.abs(rm.values - truth_centred)
    print(f"{name:8s} held-out accuracy {ev.accuracy:.3f} (ceiling {ceiling:.3f}), "
          f"E_a|r̂ − r| = {err:.3f}, corr(r̂, r) = {np.corrcoef(rm.values, fair.reward)[0, 1]:.3f}")
assert fb.evaluate(models["linear"], test_pairs).accuracy > fb.evaluate(models["tabular"], test_pairs).accuracy

# %% [markdown]
# The linear model generalises to sequences nobody compared; the tabular one only knows the ones
# that were. Either way r̂ is an estimate of $\tilde u/\tau$ — of what the rater *perceives*.
#
# ## 3. Over-optimisation
#
# Now a biased rater: besides sentiment, it likes reviews that mention the film,
# $\tilde u = u + 2\cdot\#\text{film}$. We fit a linear r̂ to 1000 of its pairs and run exact RLHF
# on it, $p_\beta = a\,e^{\hat r/\beta}/Z$, for β from 30 down to 0.01. `overoptimisation_curve`
# records, along the way, the proxy $\mathbb E_{p_\beta}[\hat r]$ and the true utility
# $\mathbb E_{p_\beta}[u]$.

# %%
biased = lesson7.biased_rater()
biased_pairs = fb.collect_preferences(biased, task.base, 1000, np.random.default_rng(1))
proxy = fb.fit_reward_model(biased_pairs, phi, centre_log_probs=task.log_a)
curve = fb.overoptimisation_curve(task.log_a, proxy, u)
plots.overoptimisation(curve)

# %%
top = int(np.argmax(proxy.values))
print(f"turning point β* = {curve.turning_beta:.3f}: E[u] = {curve.turning_true:.3f} at KL(p‖a) = {curve.turning_kl:.2f} nats")
print(f"at β = {curve.betas[-1]:g}: E[u] = {curve.true[-1]:.3f}, E[r̂] = {curve.proxy[-1]:.3f}")
print(f"the proxy's favourite review: {task.space.decode(top)!r}, true utility {u[top]:g}")
assert curve.is_overoptimised and curve.proxy[-1] > curve.proxy[curve.turning_index]
assert not fb.overoptimisation_curve(task.log_a, models["linear"], u).is_overoptimised  # the fair rater's r̂: no turn

# %% [markdown]
# This is Goodhart's law in one figure (Gao, Schulman, Hilton 2022): the proxy keeps rising, the
# truth peaks at β* and falls. The error that turns here is *systematic*: +2 per film mention
# holds wherever the rater looks, so p_β staying close to a does not make r̂ right there. β is
# still the brake — it bounds how far p_β moves from a (KL(p_β‖a) on the x-axis), and with it
# how much of the bias can be exploited. (The fair rater's reward model of section 2, fitted on
# 750 pairs, has no turning point.)
#
# A systematic error is not needed. **Statistical error alone** can turn a proxy: the same fair
# rater (τ = 1, no bias), only 300 pairs, ten seeds, the two reward-model families of section 2.
# The rater's own reward r = u/τ never turns — E_{p_β}[u] rises all the way as β falls.

# %%
assert not fb.overoptimisation_curve(task.log_a, fair.reward, u).is_overoptimised  # the truth itself: no turn
turned = {"linear": [], "tabular": []}
for seed in range(100, 110):
    few = fb.collect_preferences(fair, task.base, 300, np.random.default_rng(seed))
    for name, feats in (("linear", phi), ("tabular", None)):
        c = fb.overoptimisation_curve(task.log_a, fb.fit_reward_model(few, feats, centre_log_probs=task.log_a), u)
        if c.is_overoptimised:
            turned[name].append((seed, c.turning_beta, c.true[c.turning_index] - c.true[-1]))
for name, rows in turned.items():
    print(f"{name:8s} r̂ turned in {len(rows)} of 10 seeds: " + ", ".join(
        f"seed {s} (β* = {b:.3f}, E[u] then falls by {d:.3f})" for s, b, d in rows))
assert len(turned["linear"]) >= 1 and len(turned["tabular"]) >= 1   # a fair rater is enough to turn
assert len(turned["tabular"]) > len(turned["linear"])                # the free-form r̂ turns more often

# %% [markdown]
# So both causes turn a proxy: a systematic bias (the rater perceives something other than u) and
# plain sampling noise in the fit (too few pairs for what the family must learn; the tabular r̂,
# with one free value per sequence, turns more often than the linear one). For a statistical
# error the proxy is most reliable where a put its compared samples, and staying close to a is
# the right reading of β; for a bias that is equally wrong everywhere, β only limits the damage.
#
# ## 4. DPO: skip the reward model
#
# The RLHF optimum is known in closed form (lesson 2): $\pi^*(x) = \pi_{\text{ref}}(x)e^{r(x)/\beta}/Z$.
# Solve it for the reward:
# $$ r(x) = \beta\log\frac{\pi^*(x)}{\pi_{\text{ref}}(x)} + \beta\log Z . $$
# In the Bradley–Terry likelihood only differences $r(w)-r(l)$ appear, so **Z cancels**, and the
# reward-model loss becomes a loss on the policy (Rafailov et al. 2023):
# $$ \mathcal L_{\text{DPO}}(\pi_\theta) = -\mathbb E_{(w,l)}\Big[\log\sigma\Big(\beta\log\frac{\pi_\theta(w)}{\pi_{\text{ref}}(w)} - \beta\log\frac{\pi_\theta(l)}{\pi_{\text{ref}}(l)}\Big)\Big]. $$

# %%
beta, piw, pil, refw, refl, Zs = sp.symbols("beta pi_w pi_l ref_w ref_l Z", positive=True)
r_of = lambda pi, ref: beta * sp.log(pi / ref) + beta * sp.log(Zs)
margin = sp.expand_log(r_of(piw, refw) - r_of(pil, refl), force=True)
assert Zs not in margin.free_symbols                                    # Z cancels
print("r(w) − r(l) =", sp.simplify(margin))

# %% [markdown]
# On infinitely many pairs (`population_dpo_loss`, an exact sum over all 781² ordered pairs), the
# DPO loss is minimised exactly at the RLHF target for the rater's reward: its gradient vanishes there.

# %%
BETA = 1.0
ref = task.log_a
star = fb.dpo_optimum(ref, fair.reward, BETA)
assert np.allclose(star, targets.rlhf(ref, fair.reward, BETA).log_probs)
g = fb.population_dpo_gradient(TabularPolicy.from_log_probs(task.space, star), ref, fair.reward, BETA)
print(f"‖∇ population DPO loss‖ at π* = {np.linalg.norm(g):.1e}")
assert np.linalg.norm(g) < 1e-8

# %% [markdown]
# On a *finite* dataset there is no such anchor: DPO keeps pushing the observed margins apart.
# We train a tabular policy on the 1000 fair pairs and track its distance to π*:

# %%
dpo = fb.train_dpo(TabularPolicy.from_log_probs(task.space, ref), ref, pairs, BETA, steps=200, lr=0.05,
                   record_every=20, target_log_probs=star)
kl_path = dpo.metrics["kl_to_target"]
for s, l, d in zip(dpo.step, dpo.loss, kl_path):
    print(f"step {s:3d}: DPO loss {l:.3f}   KL(π‖π*) {d:.3f}")
best = int(np.argmin(kl_path))
assert 0 < best < len(kl_path) - 1 and kl_path[-1] > kl_path[best]   # approaches π*, then overfits

# %% [markdown]
# The loss falls monotonically, but the policy first approaches π* and then overshoots it: with
# finitely many pairs, DPO over-optimises too — early stopping or a larger β is its brake.
#
# ## 5. f-DPO
#
# Replace KL(π‖π_ref) by any $D_f(\pi\|\pi_{\text{ref}})$ in the regularised objective
# $\max_\pi \mathbb E_\pi[r] - \beta D_f(\pi\|\pi_{\text{ref}})$. Stationarity with a multiplier λ
# for $\sum\pi = 1$:
# $$ r(x) - \beta f'\!\Big(\frac{\pi^*(x)}{\pi_{\text{ref}}(x)}\Big) - \lambda = 0
#    \;\Longleftrightarrow\; r(x) = \beta f'\!\Big(\frac{\pi^*(x)}{\pi_{\text{ref}}(x)}\Big) + \lambda, $$
# and λ cancels in Bradley–Terry differences (Wang et al. 2023). This needs the optimum to be
# interior, π* > 0 everywhere, which holds when $f'(t)\to-\infty$ as $t\to0^+$. sympy checks the
# limit for each f; the library's flag agrees:

# %%
t = sp.symbols("t", positive=True)
f_sym = {"reverse_kl": t * sp.log(t), "forward_kl": -sp.log(t),
         "js": sp.Rational(1, 2) * (t * sp.log(t) - (1 + t) * sp.log((1 + t) / 2)),
         "hellinger": (sp.sqrt(t) - 1) ** 2, "pearson": (t - 1) ** 2}
for name, f in f_sym.items():
    lim = sp.limit(sp.diff(f, t), t, 0, "+")
    print(f"{name:11s} f'(0⁺) = {lim}")
    assert (lim == -sp.oo) == divergences.get(name).f_prime_to_minus_inf_at_zero
try:
    fb.check_divergence("tv")
except ValueError as err:
    print("\nTV:", err)

# %% [markdown]
# The f-DPO optimum $\pi^* = \pi_{\text{ref}}\,(f')^{-1}((r-\lambda)/\beta)$ differs with f at the
# same β — β's meaning depends on f. And on infinitely many pairs the f-DPO loss is minimised there:

# %%
rows = []
for name in ("reverse_kl", "js", "forward_kl"):
    opt = fb.fdpo_optimum(ref, fair.reward, BETA, name)
    rows.append((name, metrics.entropy(opt), float(np.exp(opt) @ u)))
    at_opt = fb.population_fdpo_loss(opt, ref, fair.reward, BETA, name)
    nudged = opt + 0.05 * rng.standard_normal(opt.size)
    nudged -= np.log(np.exp(nudged).sum())
    assert at_opt < fb.population_fdpo_loss(nudged, ref, fair.reward, BETA, name)
    print(f"{name:11s} H(π*) = {rows[-1][1]:.3f} nats   E_π*[u] = {rows[-1][2]:.3f}   loss at π* {at_opt:.4f}")
assert np.allclose(fb.fdpo_optimum(ref, fair.reward, BETA, "reverse_kl"), star)   # reverse KL gives DPO back
assert np.allclose([fb.population_fdpo_loss(fb.fdpo_optimum(ref, fair.reward, BETA, n), ref, fair.reward, BETA, n)
                    for n in ("reverse_kl", "js", "forward_kl")], at_opt)              # one minimum value for all f

# %% [markdown]
# The minimum loss is the same for every f: at π* each f-DPO model predicts the rater's own
# probabilities σ(r(x) − r(y)), so what remains is the rater's noise, the entropy
# $\sum_{x\ne y} q(x,y)\,H\big(\sigma(r(x)-r(y))\big)$, with $q$ the distribution of the compared
# pairs (here, by default, uniform over all ordered pairs $x\ne y$). The f only changes *which*
# policy encodes that reward — JS at β = 1 is much less diverse than reverse KL at β = 1.

# %% [markdown]
# **Takeaway.** A reward learned from people identifies only what they perceive (ũ/τ, up to a
# constant), so optimising it hard eventually hurts the truth; β — or early stopping in DPO,
# which folds the reward model into the policy through the closed form π_ref·exp(r/β)/Z — is
# what limits the damage, and f-DPO extends the trick to every f with f'(0⁺) = −∞.
#
# ## Exercises
#
# Solutions: `lessons/solutions/07_where_r_comes_from.py`.
#
# **7.1 What pairs identify.** `lesson7.exercise_rater()` is a fair but noisy rater (τ = 2). Which reward vector r
# (one value per sequence; any additive constant is fine) do infinitely many of its pairs identify?

# %%
rater = lesson7.exercise_rater()
my_r = None  # your answer: an array of shape (781,)
print(lesson7.check_bt_reward(my_r))

# %% [markdown]
# **7.2 A perfect proxy.** Take the biased rater's *own* reward, `lesson7.biased_rater().reward` — no fitting error
# at all — as the proxy. At which β does RLHF give the most true utility? Does a perfect reward
# model save you from over-optimisation?

# %%
my_beta = None  # your answer: a float
print(lesson7.check_turning_beta(my_beta))

# %% [markdown]
# **7.3 Which f for f-DPO.** Which of `lesson7.FIXED_DIVERGENCES` can f-DPO use? Answer with a set of names.

# %%
my_fs = set()  # your answer
print(lesson7.check_fdpo_divergences(my_fs))
