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
# # Lesson 10 — Preference optimisation beyond DPO, and the diversity question
#
# **In the app:** run `streamlit run app.py`, then open the page “Beyond DPO”: <http://localhost:8501/beyond_dpo>.
#
# **Goals.** After this lesson you can
# 1. write IPO, χ²PO and KTO as "DPO with one piece changed", and say what each change does to
#    the optimum;
# 2. compute each method's exact optimum on a finite dataset and read its over-optimisation curve;
# 3. describe the *set* of DPO minimisers when the data cover only part of the space, and which
#    member a tabular or a shared-parameter policy picks;
# 4. say what on-policy distillation (GKD) converges to, and why it is a fixed point, not a minimum;
# 5. prove that an exact regularised target never loses pass@k — and show where training does.
#
# **Prerequisites.** Lesson 2 (RLHF's target a·e^{r/β}/Z), lesson 5 (which divergence), lesson 7
# (raters, reward models, DPO, over-optimisation).

# %%
# %matplotlib inline
import numpy as np
from IPython.display import Markdown, display
from scipy.special import expit, logit, softmax

from toyfdiv import SequenceSpace, claims, collapse, diversity, plots_po, rl, rl_tasks, tasks, targets
from toyfdiv import feedback as fb
from toyfdiv.distill import gkd_fixed_point, gkd_grid, gkd_tinylm_grid
from toyfdiv.exercises import lesson7, lesson10
from toyfdiv.policies import NgramPolicy, TabularPolicy


def show(rows, keys, digits=4):
    """A list of dict rows as a Markdown table (display only, no maths)."""
    fmt = lambda v: f"{v:.{digits}g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    display(Markdown("\n".join(lines)))


task = tasks.default()
print(task.space)

# %% [markdown]
# ## 1. IPO: a squared loss with a finite target
#
# DPO fits the Bradley–Terry likelihood of the margins $\beta\,\Delta h$, $h = \log \pi/\pi_{\mathrm{ref}}$:
# $-\log\sigma(\beta\,\Delta h)$. When the data say $a \succ b$ *every time*, the loss keeps falling
# as $\Delta h \to \infty$: nothing stops it, whatever β. IPO (Azar et al. 2023) replaces the
# log-likelihood by a regression onto a finite margin,
#
# $$\mathcal L_{\mathrm{IPO}} = \big(h(w) - h(l) - \tfrac{1}{2\tau}\big)^2 .$$
#
# Three outputs, uniform reference, one pair $a \succ b$: the loss only sees $\delta_a - \delta_b$
# (δ = the change of the logits), and a pair's softmax gradient sums to zero, so from the
# reference $\delta = (s, -s, 0)$ with $2s = 1/(2\tau)$:
# $\pi_{\mathrm{IPO}} = \mathrm{softmax}(1/(4\tau), -1/(4\tau), 0)$.

# %%
tau = 0.5
ref3 = np.log(np.full(3, 1 / 3))
pair = fb.PreferenceDataset(np.array([0]), np.array([1]), 3)
closed = softmax([1 / (4 * tau), -1 / (4 * tau), 0.0])
exact = np.exp(fb.ipo_dataset_optimum(ref3, pair, tau))
space3 = tasks.SequenceSpace(["a", "b", "c"], length=1)
run = fb.train_po(TabularPolicy.from_log_probs(space3, ref3), "ipo", ref3, pair, tau, steps=400, lr=0.1, optimizer="sgd")
print("closed form", closed.round(3), " library", exact.round(3), " trained", run.policy.probs().round(3))
assert np.allclose(exact, closed, atol=1e-12) and np.allclose(run.policy.probs(), closed, atol=1e-8)
for beta in (0.1, 1.0, 10.0):  # DPO: the loss −log σ(2βs) along θ = (s, −s, 0) only reaches 0 at s = ∞
    losses = [fb.dpo_loss(TabularPolicy(space3, params=np.array([s, -s, 0.0])), ref3, pair, beta) for s in (1, 5, 20)]
    print(f"DPO at β = {beta:g}: loss at s = 1, 5, 20: " + ", ".join(f"{v:.3g}" for v in losses)
          + " (still falling: π(a) → 1)")
    assert losses[0] > losses[1] > losses[2] > 0
plots_po.three_outputs({"IPO (τ = 0.5)": exact, "DPO (limit, any β)": [1.0, 0.0, 0.0], "reference": [1 / 3] * 3})

# %% [markdown]
# ## 2. χ²PO: change DPO's link, get a heavier regulariser
#
# χ²PO (Huang et al. 2024) replaces $\beta\log z$ by $\beta(z + \log z)$, $z = \pi/\pi_{\mathrm{ref}}$.
# Since $z + \log z = f'(z)$ for $f(z) = \tfrac12 (z-1)^2 + z\log z$, it is f-DPO for
# ½χ² + KL, and its optimum solves $z + \log z = (r - \lambda)/\beta$: $z = \omega((r-\lambda)/\beta)$
# with ω the Wright omega function. KL lets $z$ grow like $e^{r/\beta}$; the χ² part caps it at
# about $(r - \lambda)/\beta$.
#
# On a finite dataset each direct method's exact minimiser is its regularised target of the
# **maximum-likelihood implicit reward** $\hat r$ of the pairs; RLHF uses a separately fitted
# (linear, smoother) reward model. We score every optimum with the gold utility u, on the
# lesson-7 rater who likes reviews that mention "film".

# %%
rater = lesson7.biased_rater()
pairs = fb.collect_preferences(rater, task.base, 1000, np.random.default_rng(1))
rm = fb.fit_reward_model(pairs, fb.ngram_features(task.space)[0], centre_log_probs=task.log_a)
curves = fb.gold_utility_curves(task.log_a, pairs, rater.utility, np.geomspace(10, 0.01, 13), rlhf_reward=rm)
# KTO learns from the same rater's thumbs (P(👍 | x) = σ(ũ(x))); its fixed point is unique for β ≤ 1 (section 3)
curves["KTO"] = fb.kto_gold_curve(task.log_a, rater.prob_thumbs_up(np.arange(task.space.size)), rater.utility,
                                  np.geomspace(0.95, 0.01, 8))
rows = [dict(method=m, peak=c.peak, at_beta=c.peak_beta, final=float(c.gold[-1]), decline=c.decline)
        for m, c in curves.items()]
show(rows, ["method", "peak", "at_beta", "final", "decline"])
lp = fb.chipo_optimum(task.log_a, fb.ml_implicit_reward(pairs, 1e-2, task.log_a), 0.1)
z = np.exp(lp - task.log_a)
print(f"χ²PO at β = 0.1: max π/π_ref = {z.max():.2f};  DPO: "
      f"{np.exp(targets.rlhf(task.log_a, fb.ml_implicit_reward(pairs, 1e-2, task.log_a), 0.1).log_probs - task.log_a).max():.2f}")
tie = 0.01
for r in rows:
    print(f"{r['method']}: " + (f"declines by {r['decline']:.3f} after its peak at β = {r['at_beta']:.3g}"
                               if r["decline"] > tie else f"no decline beyond {tie} (rises to the end of the grid)"))
plots_po.gold_curves(curves)

# %% [markdown]
# ## 3. KTO: thumbs, a reference point, and a filter
#
# KTO (Ethayarajh et al. 2024) learns from thumbs up/down: $\lambda_y - v(x)$ with
# $v = \lambda_D\sigma(\beta(h - z_0))$ for a thumbs-up, $\lambda_U\sigma(\beta(z_0 - h))$ for a
# thumbs-down, and $z_0 = \mathrm{KL}(\pi\|\pi_{\mathrm{ref}})$ with no gradient through it. In
# practice $z_0$ is a batch mean of $\log\pi/\pi_{\mathrm{ref}}$ over mismatched outputs.
#
# The derivative in $h(x)$ is $-\beta\sigma'(\beta(h - z_0))\,(A - B)(x)$, one sign per output
# ($A$, $B$ the desirable and undesirable weights of x). So at a stationary point of a tabular
# policy every output with $A \le B$ gets $\pi = 0$: KTO **filters** by thumbs-up odds.
#
# Near $\pi(x) = 0$ KTO's push is $\propto \pi^\beta$ and the normaliser's pull $\propto \pi$. For β < 1 the push
# wins and every output with $A > B$ is kept; at β = 1 they tie in the exponent and a second filter
# appears, $\kappa\,\pi_{\mathrm{ref}}(x) < (A - B)(x)\,e^{-z_0}$; for β > 1 the pull wins, $\pi(x) = 0$ is
# stable for every output, and the fixed point is not unique (every point mass on a desirable
# output is one) — `kto_fixed_point` refuses β > 1 and says why.

# %%
s_up = expit(task.reward.values - 0.5)  # a logistic rater: P(👍 | x)
pol = TabularPolicy(task.space, seed=3, init_scale=1.0)
exact_z0 = fb.kto_reference_point(pol.log_probs(), task.log_a)
rng = np.random.default_rng(0)
batch = [fb.kto_reference_point_estimate(pol.log_probs(), task.log_a, pol.sample(64, rng), clamp=False) for _ in range(300)]
se = np.std(batch) / np.sqrt(len(batch))
print(f"z₀ exact {exact_z0:.4f}; batch mean of 300 × 64 on-policy samples {np.mean(batch):.4f} ± {se:.4f} (1 SE)")
assert abs(np.mean(batch) - exact_z0) < 4 * se
rows = []
for lam_d, lam_u, rho in ((1.0, 1.0, None), (1.0, 1.0, 0.5), (1.33, 1.0, None), (1.0, 2.0, None)):
    fp = fb.kto_fixed_point(task.log_a, s_up, 0.5, sampling_log_probs=task.log_a, lambda_d=lam_d, lambda_u=lam_u,
                            desirable_fraction=rho)
    rows.append(dict(lambda_D=lam_d, lambda_U=lam_u, rho="natural" if rho is None else rho,
                     support=int(fp.support.sum()), threshold=fp.threshold,
                     E_u=float(np.exp(fp.log_probs) @ task.reward.values), z0=fp.z0))
show(rows, ["lambda_D", "lambda_U", "rho", "support", "threshold", "E_u", "z0"])
p_rlhf = np.exp(targets.rlhf(task.log_a, logit(s_up), 0.5).log_probs)
print(f"RLHF/DPO with the same logistic reward at β = 0.5: full support ({task.space.size}), E[u] = "
      f"{p_rlhf @ task.reward.values:.3f}")

# %% [markdown]
# ## 4. DPO under partial coverage
#
# If pairs only ever involve a set S of outputs, the population DPO loss depends on π only
# through margins inside S. Its minimisers form a family (Xu et al. 2024):
# $\pi = s\,p_S$ on S, $(1 - s)\,\nu$ on the rest U, for any $s \in (0, 1]$ and any ν. Which
# member training reaches is decided by the parametrisation.

# %%
abc = tasks.get("abc", length=3)
r_abc = np.random.default_rng(0).normal(size=abc.space.size)
few = fb.collect_preferences(fb.Rater(r_abc), abc.base, 15, np.random.default_rng(4))
S = fb.seen_outputs(few)
print(f"{S.sum()} of {S.size} outputs appear in the 15 pairs")
out = {}
for name, start in (("tabular", TabularPolicy.from_log_probs(abc.space, abc.log_a)),
                    ("bigram (shared)", NgramPolicy(abc.space, 2, seed=0, init_scale=0.5))):
    ref = start.log_probs()
    hist = fb.train_dpo(start, ref, few, 0.5, steps=150, lr=0.05)
    after = hist.policy.log_probs()
    ratio = np.exp(after - ref)[~S]
    out[name] = dict(policy=name, unseen_before=fb.unseen_mass(ref, S), unseen_after=fb.unseen_mass(after, S),
                     ratio_spread=float(np.ptp(np.log(ratio))))
show(list(out.values()), ["policy", "unseen_before", "unseen_after", "ratio_spread"])
print("tabular: π(u)/π_ref(u) is one common factor on the unseen outputs (spread "
      f"{out['tabular']['ratio_spread']:.1e}); the shared model reshapes them (spread {out['bigram (shared)']['ratio_spread']:.2f})")

# %% [markdown]
# ## 5. On-policy distillation (GKD): a fixed point over λ × β
#
# GKD (Agarwal et al. 2024) distils a teacher into a student with the token-level skew divergence
# $D_\beta = \beta\,\mathrm{KL}(P\|M) + (1-\beta)\,\mathrm{KL}(Q\|M)$, on prefixes drawn from the
# mixture $\nu = (1-\lambda)\,p_T + \lambda\,q_\theta$ — without differentiating ν. For λ > 0 the
# solution is therefore a fixed point $\theta^* = \arg\min L(\cdot\,;\nu(\theta^*))$. For a unigram
# student each row has a closed form at β ∈ {0, 1}: the ν-average of the teacher's conditionals
# (forward KL) or their geometric mean (reverse KL).

# %%
grid = gkd_grid(abc.base, betas=(0.0, 0.5, 1.0), lams=(0.0, 0.5, 1.0))
show(grid, ["lam", "beta", "entropy", "forward_kl", "reverse_kl", "iterations"])
fwd, rev = grid[0], grid[-1]
gap = rev["entropy"] - fwd["entropy"]
verdict = ("a tie (within 0.01 nats)" if abs(gap) < 0.01 else
           "lower: reverse KL locks on to the tokens every context likes" if gap < 0 else
           "higher: with no gradient through the sampler, the geometric mean of disagreeing conditionals is flatter")
print(f"student entropy — forward KL on teacher samples {fwd['entropy']:.3f}, on-policy reverse KL "
      f"{rev['entropy']:.3f} nats: {verdict}")
plots_po.gkd_grid(grid)

# %% [markdown]
# A unigram student cannot read the prefix at all. A *narrow* TinyLM can, a little: a GRU with a
# one-number state (`n_hidden = 1`). It has no closed-form row optimum, so each (λ, β) cell is trained
# through the one loop on the exact gradient with ν recomputed and held fixed each step, until the
# gradient for its own mixture is (nearly) zero. The teacher is a bigram model on answers of 0–3
# tokens ending in EOS; the entropies against the teacher's say which end covers and which locks on.

# %%
eos_space = SequenceSpace(["a", "b", "c"], length=4, eos="</s>")
teacher = tasks.pretrain(eos_space, ["a b c", "b c a", "c a b", "a a", "b b c", "c"], order=2, smoothing=0.3)
narrow = gkd_tinylm_grid(teacher, n_hidden=1, betas=(0.0, 1.0), lams=(0.0, 1.0), steps=500)
show(narrow, ["lam", "beta", "entropy", "forward_kl", "reverse_kl", "grad_max"])
h_teacher = float(-teacher.probs() @ teacher.log_probs())
for lam in (0.0, 1.0):
    cells = {f"β = {r['beta']:g} ({'forward' if r['beta'] == 0 else 'reverse'} KL), λ = {lam:g}": r["entropy"]
             for r in narrow if r["lam"] == lam}
    print(claims.entropy_extremes(cells, h_teacher)[1])

# %% [markdown]
# ## 6. The diversity question: pass@k under every f
#
# **Theorem.** Let $\pi^*_f = \arg\max_\pi \mathbb E_\pi[r] - \beta D_f(\pi\|a)$ for convex f, and let
# every correct answer score at least as much as every incorrect one. Then
# $P_{\pi^*_f}(\mathrm{correct}) \ge P_a(\mathrm{correct})$ for every β.
#
# *Proof.* $\pi^*_f = a\,g(r)$ with $g = (f')^{-1}((\cdot - \lambda)/\beta)$ non-decreasing and
# $\mathbb E_a[g(r)] = 1$. The indicator of correctness and $g(r)$ are both non-decreasing in r,
# so they are positively correlated under a (Chebyshev's sum inequality):
# $\mathbb E_a[1_C\,g(r)] \ge \mathbb E_a[1_C]\,\mathbb E_a[g(r)] = P_a(C)$. ∎ Since
# pass@k $= 1 - (1 - P(C))^k$ increases with P(C), it never drops either.
#
# TV's $f'$ is a step, so its target is a linear programme (`diversity.tv_target`): moving mass δ from
# y to x changes $\mathbb E_\pi[r] - \beta\,\mathrm{TV}$ by $\delta\,(r(x) - r(y) - \beta)$, so every answer with
# $r < r_{\max} - \beta$ gives all its mass to the best answers (split in proportion to a), the rest keep
# $\pi = a$ — again $a\,g(r)$ with g non-decreasing, so the theorem covers it.

# %%
correct = task.reward.values > 0
reward = correct.astype(float)
fs = ["reverse_kl", "forward_kl", "js", "hellinger", "pearson", "alpha(0.5)", "tv"]
rows = diversity.diversity_rows(task.log_a, reward, correct, [0.03, 0.1, 0.3, 1.0, 3.0], fs, k=8)
worst = min(r["p_correct"] - r["base_p_correct"] for r in rows)
print(f"P(correct) under a: {rows[0]['base_p_correct']:.4f}; smallest gain over every f and β: {worst:+.2e}")
assert worst >= -1e-12
plots_po.distinct_correct(rows)

# %% [markdown]
# Within the correct answers every target keeps a's ratios: $\pi^*(y_1)/\pi^*(y_2) = a(y_1)/a(y_2)$
# when $r(y_1) = r(y_2)$. Two correct answers at a = 0.1 and 0.001 stay 100 : 1 at every β, under
# reverse and forward KL. MARA (GX-Chen et al. 2025) raises each good answer's reward by
# $\beta\log(a(z)/a(y))$, z the good answer a likes best, which makes the reverse-KL target flat on
# the good set.

# %%
a4 = np.log([0.1, 0.001, 0.5, 0.399])
r4 = np.array([1.0, 1.0, 0.0, 0.0])
for f in ("reverse_kl", "forward_kl"):
    ratios = [np.exp(np.diff(diversity.regularised_target(a4, r4, b, f)[:2]))[0] ** -1 for b in (0.01, 0.1, 1, 10)]
    mara = np.exp(diversity.mara_target(a4, r4, 0.5, 0.5, f))
    print(f"{f}: ratio at β = 0.01, 0.1, 1, 10: {np.round(ratios, 6)};  with MARA (β = 0.5): {mara[0] / mara[1]:.4g}"
          + (" — flat" if abs(mara[0] / mara[1] - 1) < 1e-9 else
             " — MARA's augmentation is built for reverse KL; under forward KL it overshoots"))
ks = np.array([1, 2, 4, 8, 16, 32])
plain = diversity.regularised_target(task.log_a, reward, 0.3, "reverse_kl")
mara_t = diversity.mara_target(task.log_a, reward, 0.3, 0.5)
plots_po.pass_at_k({"base a": diversity.pass_at_k_policy(task.log_a, correct, ks),
                    "reverse KL, β = 0.3": diversity.pass_at_k_policy(plain, correct, ks),
                    "MARA, β = 0.3": diversity.pass_at_k_policy(mara_t, correct, ks)}, ks)

# %% [markdown]
# **Where training loses it.** The theorem is about the exact per-prompt target. A policy whose
# parameters are shared across prompts cannot reach every target, and its compromise can trade a
# rare prompt away. Two prompts, three answers; A is correct for the first (75 % of the prompts),
# B for the second; one head θ shared by both. (The RL estimators of lesson 9 come next.)

# %%
la2 = np.log(np.array([[0.3, 0.3, 0.4], [0.3, 0.3, 0.4]]))
c2 = np.array([[1, 0, 0], [0, 1, 0]], dtype=bool)
lp2 = np.stack([diversity.regularised_target(la2[c], c2[c].astype(float), 0.3) for c in range(2)])
for f in ("reverse_kl", "forward_kl"):
    shared = diversity.shared_head_optimum(la2, lp2, np.eye(3), f, np.log([0.75, 0.25]))
    pc = diversity.p_correct(shared, c2)
    print(f"{f}: P(correct) per prompt — base {diversity.p_correct(la2, c2).round(3)}, exact targets "
          f"{diversity.p_correct(lp2, c2).round(3)}, shared head {pc.round(3)} "
          f"({'below' if pc[1] < 0.3 else 'not below'} the base on the rare prompt)")

# %% [markdown]
# **An RL estimator that collapses, trained to its fixed point.** Take GRPO (lesson 9) at a small
# β = 0.02 — almost no regularisation left — on a prompted task with a hard prompt (P_a(correct) =
# 0.05, answer "0") and an easy one (0.6, answer "1"), and train it on its exact expected update to
# the fixed point, twice: with one policy per prompt, and with one adapter θ added to both prompts'
# logits (`collapse.SharedAdapter`, the way a network's weights are shared across prompts).
#
# Per prompt, the collapse cannot lose pass@k: with 0/1 rewards a correct sample's advantage is ≥ 0
# and a wrong one's ≤ 0, so each update widens the correct − wrong logit gap, and P(correct | c)
# ends at or above a's on every prompt. A crossing of the pass@k curves (Yue et al. 2025) needs a
# prompt whose P(correct | c) drops — and sharing parameters is what makes one drop.

# %%
rl_task = rl_tasks.prompted(success=(0.05, 0.6), vocab=2, length=3)
study = collapse.collapse_study(rl_task, rl.preset("grpo", beta=0.02), beta=0.02)
labels = list(study.pass_at_k)
for name in labels:
    print(f"{name:38s} P(correct | c) = {np.round(study.p_correct[name], 4)}")
verdicts = {name: claims.pass_at_k_crossing(study.ks, study.pass_at_k[labels[0]], study.pass_at_k[name], name)
            for name in labels[1:]}
display(Markdown("\n\n".join(sentence for _, sentence in verdicts.values())))
assert verdicts[labels[-1]][0] == "crosses" and verdicts[labels[-2]][0] == "never below"
plots_po.collapse_curves(study)

# %% [markdown]
# Read the curves: pass@1 is what RL optimises, and the shared adapter buys it on the easy prompt
# with the hard prompt's chance; the base keeps that small chance, which k samples eventually find.
# Is the estimator to blame? Train the regularised REINFORCE update (k1 in the reward: the exact
# RLHF gradient, β = 0.1) and the unregularised one (k1 as a loss) with the same shared adapter.

# %%
base_hard = float(rl_task.base_success[0])
for alg in (rl.preset("reinforce", beta=0.1), rl.preset("reinforce", kl_placement="loss")):
    fp = collapse.rl_fixed_point(alg, rl_task, 4, shared=True, steps=150)
    p_hard = float(np.exp(fp.log_probs[0])[rl_task.reward[0] >= 1].sum())
    lost = p_hard < base_hard / 10
    print(f"{alg.name}, {alg.kl} in the {alg.kl_placement}: P(correct | hard prompt) = {p_hard:.2e} vs a's "
          f"{base_hard:g} — {'lost (below a tenth of a’s)' if lost else 'kept (at least a tenth of a’s)'}")

# %% [markdown]
# ## Exercises
#
# **1.** One pair $a \succ b$ over {a, b, c}, uniform reference, IPO with τ = 1. What is π(a) at the
# optimum reached from the reference?

# %%
answer_1 = 1.0  # replace with your number (the placeholder is DPO's limit)
print(lesson10.check_ipo_pi_a(answer_1))

# %% [markdown]
# **2.** Two correct answers with the same reward have reference probabilities 0.1 and 0.001.
# Under forward-KL regularisation at β = 0.05, what is π*(y₁)/π*(y₂)?

# %%
answer_2 = 1.0  # replace with your number
print(lesson10.check_ratio(answer_2))

# %% [markdown]
# **3.** A prompt is solved with probability 0.2 per sample. What is pass@8?

# %%
answer_3 = 1.6  # replace with your number
print(lesson10.check_pass_at_k(answer_3))
