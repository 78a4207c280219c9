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
# # Lesson 9 — From f-DPG to PPO and GRPO: what the estimators really optimise
#
# **In the app:** run `streamlit run app.py`, then open the page “RLHF as practised”: <http://localhost:8501/rl>.
#
# **Goals.** After this lesson you can
# 1. take an RLHF algorithm apart into its parts — advantage, loss aggregation, KL estimator ×
#    placement × level, importance ratio and clipping — and name the recipe of PPO, GRPO,
#    Dr. GRPO, RLOO, REINFORCE++, ReMax and DAPO;
# 2. say which gradient each KL estimator k1, k2, k3 gives as a reward penalty and as a loss;
# 3. compute GRPO's per-prompt weight w(p) and the length bias of its 1/|y| token mean;
# 4. say where each algorithm's training ends — its fixed point — and how far that is from
#    the RLHF target a·e^{r/β}/Z.
#
# **Prerequisites.** Lesson 2 (RLHF is reverse KL to p = a e^{r/β}/Z), lesson 4 (the f-DPG
# gradient), lesson 6 (sampled estimators and baselines).
#
# Lesson 2 showed that RLHF minimises KL(π‖p) with p = a·e^{r/β}/Z, and lesson 4 gave its exact
# gradient. What practitioners run is PPO or GRPO: group baselines, reward normalisation,
# per-token loss averages, a KL term estimated per sample, clipped ratios, several epochs per
# batch. Each choice changes the **expected update**. Real systems cannot compute the truth; our
# toy space can, so every algorithm is held against the exact gradient and the exact fixed point.

# %%
# %matplotlib inline
import numpy as np
from IPython.display import Markdown, display

from toyfdiv import claims, fdpg, plots_rl, rl, rl_tasks, targets
from toyfdiv.exercises import lesson9
from toyfdiv.metrics import kl


def show(rows, keys, digits=4):
    """A list of dict rows as a Markdown table (display only, no maths)."""
    fmt = lambda v: f"{v:.{digits}g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    display(Markdown("\n".join(lines)))


def cos(x, y):
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


# %% [markdown]
# ## 1. The task: prompts with verifiable rewards
#
# Each prompt asks for one answer token; a response is up to three tokens then EOS, so lengths
# vary. The reward checks only the first token — it never sees the length. The base model a
# solves the five prompts with probabilities from 0.02 to 0.8.

# %%
task = rl_tasks.prompted()
print(f"{len(task.prompts)} prompts, N = {task.space.size} responses each, lengths 1…{task.space.length}")
print("base success P_a(right):", np.round(task.success(task.log_a), 3))
for name in rl.names():
    print(" ", rl.preset(name).describe())

# %% [markdown]
# ## 2. The KL estimators: a value is not a gradient
#
# With δ = log π − log a (Schulman 2020): k1 = δ, k2 = ½δ², k3 = e^{−δ} − 1 + δ. k1 and k3 are
# unbiased for KL(π‖a). But an estimate added to the **loss** is differentiated with the sample
# held fixed, which drops the score-function term:
#
# $$\mathbb E_\pi[\nabla_\theta k_1] = \mathbb E_\pi[\nabla\log\pi] = 0,\qquad
#   \mathbb E_\pi[\nabla_\theta k_2] = \mathbb E_\pi[\delta\,\nabla\log\pi] = \nabla\mathrm{KL}(\pi\|a),\qquad
#   \mathbb E_\pi[\nabla_\theta k_3] = \mathbb E_\pi[(1 - a/\pi)\nabla\log\pi] = \nabla\mathrm{KL}(a\|\pi).$$
#
# In the **reward**, k1 gives E_π[δ ∇ log π] = ∇KL(π‖a): the exact RLHF gradient. Check all twelve
# combinations against the f-DPG gradients of lesson 4 (reverse KL to a, forward KL to a):

# %%
one = task.single(2)
pol = rl.evaluation_policy(one)[0]  # a policy away from a, so the KL terms act
log_a = one.log_a[0]
to_a = targets.rlhf(log_a, np.zeros(log_a.size), 1.0)  # the target p = a
rev, fwd = fdpg.exact_gradient(pol, to_a, "reverse_kl"), fdpg.exact_gradient(pol, to_a, "forward_kl")
rows = []
for est in rl.ESTIMATORS:
    for place in rl.PLACEMENTS:
        for level in rl.LEVELS:
            g = rl.expected_kl_gradient(pol, log_a, est, place, level)
            n = float(np.linalg.norm(g))
            rows.append(dict(estimator=est, placement=place, level=level, norm=n,
                             cos_reverse=cos(g, rev) if n > 1e-12 else float("nan"),
                             cos_forward=cos(g, fwd) if n > 1e-12 else float("nan")))
show(rows, list(rows[0]))
k3_loss = rl.expected_kl_gradient(pol, log_a, "k3", "loss")
assert np.allclose(k3_loss, fwd, atol=1e-10) and np.linalg.norm(rl.expected_kl_gradient(pol, log_a, "k1", "loss")) < 1e-12
tok = {r["estimator"]: r["cos_reverse" if r["estimator"] == "k2" else "cos_forward"] for r in rows
       if r["placement"] == "loss" and r["level"] == "token" and r["estimator"] != "k1"}
display(Markdown(f"k3 as a sequence loss equals ∇KL(a‖π) to {np.abs(k3_loss - fwd).max():.0e}; k1 as a loss has "
                 f"zero expected gradient. Summed per token, k2 and k3 as losses are only partial gradients: "
                 f"cosine {tok['k2']:.4f} (k2 to ∇KL(π‖a)) and {tok['k3']:.4f} (k3 to ∇KL(a‖π))."))

# %% [markdown]
# ## 3. Advantages: a baseline, or a reweighting?
#
# RLOO subtracts the mean of the *other* responses; Dr. GRPO the group mean, so
# A_RLOO = G/(G−1) · A_DrGRPO (same direction). GRPO also divides by the group's standard
# deviation. For binary rewards E[A_1 | y_1] depends only on R(y_1), so GRPO's expected update is
# w(p)·∇p — the true gradient scaled **per prompt** by a weight that depends on its success rate p.

# %%
P = np.array([0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98])
table = [dict(G=G, **{f"p={p:g}": float(w) for p, w in zip(P, rl.effective_weight(P, G))}) for G in (2, 4, 8, 16, 64)]
show(table, list(table[0]))
grid = np.linspace(0.01, 0.99, 99)
plots_rl.grpo_weight(grid, {G: rl.effective_weight(grid, G) for G in (2, 4, 8, 16, 64)}, 1 / np.sqrt(grid * (1 - grid)))

# %%
w2, w8 = rl.effective_weight(P, 2), rl.effective_weight(P, 8)
flat = np.ptp(w2) < 1e-9
display(Markdown(f"At G = 2 w(p) is {'flat' if flat else 'not flat'} (spread {np.ptp(w2):.0e}): GRPO is a multiple of "
                 f"Dr. GRPO. At G = 8 a prompt with p = 0.02 gets {w8[0] / w8[3]:.2f}× the weight of one with "
                 f"p = 0.5: rare successes are weighted up. As G grows w(p) approaches 1/√(p(1 − p))."))

# %% [markdown]
# ## 4. Aggregation and length
#
# GRPO averages each response's token losses (1/|y|). With A > 0 a short right answer gets a larger
# push per token; with A < 0 a long wrong answer a smaller penalty. Dr. GRPO divides by a constant.
# Below: the first-order change of E[|y| | answer] along each expected update (tokens per unit step).

# %%
drift = {name: rl.length_drift(rl.preset(name, kl=None, beta=0.0), one.base_policies()[0], one, 8)
         for name in ("grpo", "dr_grpo", "dapo")}
plots_rl.length_drift(drift)

# %%
g, d = drift["grpo"], drift["dr_grpo"]
display(Markdown(f"GRPO: wrong answers {'grow' if g[0.0] > 0 else 'shrink'} ({g[0.0]:+.2e}) and right answers "
                 f"{'shrink' if g[1.0] < 0 else 'grow'} ({g[1.0]:+.2e}); Dr. GRPO: largest drift "
                 f"{max(abs(v) for v in d.values()):.0e} "
                 f"({'zero' if max(abs(v) for v in d.values()) < 1e-12 else 'not zero'} at the threshold 1e-12)."))

# %% [markdown]
# ## 5. PPO: ratios, clipping, epochs
#
# PPO reuses a batch for several epochs with the per-token ratio ρ = π/π_old and the objective
# min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A). On the first epoch ρ = 1: the update *is* the on-policy
# policy gradient. Afterwards the clipped tokens stop contributing (shaded):

# %%
plots_rl.clip_region(0.2, 0.28)

# %%
batch = rl.sample_batch(rl.preset("ppo"), [pol], one, 8, np.random.default_rng(0))
m = rl.ppo.batch_masses(batch, one.space.size)[0]
first = rl.clipped_gradient(pol, pol.with_params(pol.params), m.A_pos, m.A_neg, 0.2, 0.2)
print("first epoch − on-policy PG:", np.abs(first - pol.grad_log_prob_weighted(-m.A)).max())

# %% [markdown]
# The later epochs follow the *clipped surrogate* of the batch. Against the exact gradient of the
# surrogate at the same θ (expected over fresh batches from π_old), each epoch's sampled update
# agrees less — it fits the batch:

# %%
small = rl_tasks.prompted((0.3,), vocab=2, length=3)
agree, agree_se = rl.epoch_agreement(rl.preset("ppo", kl=None, beta=0.0), small.base_policies(), small, 8, lr=2.0,
                                     batches=40, rng=np.random.default_rng(0))
drop = agree[0] - agree[-1] > 3 * np.hypot(agree_se[0], agree_se[-1])
display(Markdown("cos(epoch-k update, exact clipped-surrogate gradient), 40 batches: "
                 + ", ".join(f"epoch {k + 1}: {m:.3f} ± {e:.3f}" for k, (m, e) in enumerate(zip(agree, agree_se)))
                 + f" — the last epoch agrees {'less than' if drop else 'as well as (within 3 s.e.)'} the first."))

# %% [markdown]
# With **random** rewards the expected update is zero, yet clipping moves the entropy. Each variant
# is compared with an unclipped control with the same steps and random numbers (400 runs):

# %%
studies = {"skewed start (0.9, 0.05, 0.05)": rl.clip_entropy_study(np.log([0.9, 0.05, 0.05]), steps=10),
           "near-uniform start": rl.clip_entropy_study(np.log([0.34, 0.33, 0.33]), steps=10)}
plots_rl.clip_entropy(studies)

# %%
def verdict(st, k):
    d, se = st.delta[k], st.stderr[k]
    return "raises" if d > 3 * se else "lowers" if d < -3 * se else "does not change (within 3 s.e.)"
lines = [f"- {start}: clip-low {verdict(st, 'clip_low')} the entropy ({st.delta['clip_low']:+.3f} ± "
         f"{st.stderr['clip_low']:.3f}), clip-high {verdict(st, 'clip_high')} it ({st.delta['clip_high']:+.3f} ± "
         f"{st.stderr['clip_high']:.3f})" for start, st in studies.items()]
display(Markdown("\n".join(lines)))

# %% [markdown]
# GSPO (Zheng et al. 2025, `ratio_level="sequence"`) clips one ratio (π/π_old)^{1/|y|} per response
# instead of one per token. DAPO (Yu et al. 2025) draws a group again when all its rewards are equal
# (*dynamic sampling*), adds a soft penalty for responses near the length limit, and averages the token
# losses over the whole batch of prompts.

# %%
gspo = rl.preset("grpo", ratio_level="sequence")
gm = rl.ppo.batch_masses(rl.sample_batch(gspo, [pol], one, 8, np.random.default_rng(0)), one.space.size)[0]
gap = np.abs(rl.sequence_clipped_gradient(pol, pol.with_params(pol.params), gm.A_pos, gm.A_neg, 0.2, 0.2)
             - pol.grad_log_prob_weighted(-gm.A / one.space.lengths)).max()
ds = rl.dynamic_sampling_weight(task.base_success, 8)
display(Markdown(f"GSPO's first epoch is the on-policy gradient of the length-normalised loss −Σ s A log π(y)/|y| "
                 f"(largest difference {gap:.0e}, {'zero' if gap < 1e-12 else 'not zero'} at the threshold 1e-12). "
                 f"Dynamic sampling divides a binary prompt's expected update by 1 − p^G − (1 − p)^G: at G = 8 the "
                 f"hardest prompt (p = {task.base_success[0]:g}) is scaled by {ds[0]:.2f}, the easiest "
                 f"(p = {task.base_success[-1]:g}) by {ds[-1]:.2f}."))

# %% [markdown]
# ## 6. Every algorithm against the exact gradient
#
# The expected update u of each preset at one policy, against g = −∇(E[r] − β KL(π‖a)) with the
# preset's β: exact where the batch space is small, else 10 000 Monte-Carlo batches with the noise
# floor.

# %%
rows = rl.update_table(task, 8)
show(rows, ["algorithm", "mode", "cosine", "scale", "residual", "noise", "follows"])
plots_rl.update_table(rows)

# %%
follow = [r["algorithm"] for r in rows if r["follows"]]
display(Markdown(f"Following the exact gradient up to a step size (residual below {rl.FOLLOWS_THRESHOLD:g} noise floors, "
                 f"or 1e-9 when exact): {', '.join(follow)}. The others reweight it across prompts and lengths."))

# %% [markdown]
# ## 7. Where training ends
#
# Training on the exact expected update until it stops moving gives each algorithm's fixed point.
# REINFORCE with k1 in the reward ends at the RLHF target. k3 in the loss follows
# E[r] − β KL(a‖π), maximised at π = β·a/(Λ − r) (stationarity r + β a/π = Λ). GRPO's w(p) rescales
# the reward: it ends at β·a/(Λ − w(p*)·r).

# %%
beta = 0.5
graded = rl_tasks.prompted((0.3,), vocab=3, length=3, reward="graded")
algs = [rl.preset("reinforce"), rl.Algorithm("rloo + k3 loss", "rloo", "seq_sum", "k3", "loss", "sequence", beta)]
ends = rl.atlas(graded, algs, 4, beta=beta)
names = list(ends)
kls = {n: {"RLHF": kl(ends[n], ends[names[0]]), "k3": kl(ends[n], ends[names[1]])} for n in names[2:]}
plots_rl.atlas(graded.space, ends, kls)

# %%
binary = rl_tasks.prompted((0.3,), vocab=2, length=3)
grpo_k3 = rl.Algorithm("grpo + k3 loss", "grpo", "seq_sum", "k3", "loss", "sequence", beta)
fp = rl.fixed_point(grpo_k3, binary, 8)
p_star = binary.success(fp.log_probs)[0]
w = float(rl.effective_weight(p_star, 8))
res = [dict(algorithm=n, **{f"KL to {k}": v for k, v in d.items()}) for n, d in kls.items()]
res.append({"algorithm": "grpo + k3 loss (binary)",
            "KL to RLHF": kl(fp.log_probs[0], rl.rlhf_target(binary.log_a[0], binary.reward[0], beta)),
            "KL to k3": kl(fp.log_probs[0], rl.k3_target(binary.log_a[0], binary.reward[0], beta)),
            "KL to k3 with w·r": kl(fp.log_probs[0], rl.k3_target(binary.log_a[0], w * binary.reward[0], beta))})
show([{k: r.get(k, float("nan")) for k in res[-1]} for r in res], list(res[-1]))

# %%
display(Markdown(f"GRPO with k3 in the loss ends at p* = {p_star:.3f} with w(p*) = {w:.3f}: KL to β·a/(Λ − w·r) is "
                 f"{res[-1]['KL to k3 with w·r']:.0e} ({'zero' if res[-1]['KL to k3 with w·r'] < 1e-10 else 'not zero'} at the "
                 f"threshold 1e-10), to the RLHF target {res[-1]['KL to RLHF']:.3f} nats."))

# %% [markdown]
# REINFORCE++ with k1 in the reward normalises over the whole batch: its rewards take one value per
# response, so its expected update is Monte Carlo only. Is the RLHF target its fixed point? Measure the
# expected update there against its noise floor:

# %%
at_target = [type(p).from_log_probs(task.space, rl.rlhf_target(task.log_a[c], task.reward[c], 0.1))
             for c, p in enumerate(task.base_policies())]
for agg in ("token_mean", "seq_sum"):
    u = rl.expected_update(rl.preset("reinforce_pp", aggregation=agg), at_target, task, 8, mode="mc", trials=10_000,
                           rng=np.random.default_rng(0))
    z = np.linalg.norm(u.gradient) / u.noise_floor
    display(Markdown(f"REINFORCE++ with {agg}: at the RLHF target ‖E[update]‖ is {z:.1f} noise floors from 0 — "
                     + ("not a fixed point" if z > claims.BIAS_Z else "a fixed point within the noise")
                     + f" (threshold {claims.BIAS_Z:g} noise floors)."))

# %% [markdown]
# ## 8. Sampled training through the one loop
#
# The same algorithms run sampled, as in practice: `rl.make_update` turns an algorithm into the
# update of `toyfdiv.training.optimise` (PPO reuses each batch for its epochs with clipped ratios).
# GRPO against RLOO, both with k1 in the reward here so that only the advantage differs:

# %%
from toyfdiv.conditional import ConditionalPolicy
from toyfdiv.training import optimise

runs, STEPS = {}, 60  # plain SGD: Adam would rescale each prompt's parameters and hide GRPO's w(p)
for name in ("rloo", "grpo"):
    alg = rl.preset(name).with_(kl="k1", kl_placement="reward", kl_level="sequence", aggregation="seq_sum")
    runs[name] = optimise(ConditionalPolicy(list(task.base_policies())), rl.make_update(alg, task, 8, estimator="sampled"),
                          steps=STEPS, lr=1.0, optimizer="sgd", record=lambda p: dict(rl.summary(p, task),
                                                                   **{f"p/{c}": s for c, s in zip(task.prompts, task.success(p.log_probs()))}),
                          record_every=STEPS, seed=0, label=name)
rows = [dict(algorithm=n, **{k: float(h.metrics[k][-1]) for k in ("reward", "kl_from_base", *(f"p/{c}" for c in task.prompts))})
        for n, h in runs.items()]
show(rows, list(rows[0]))
hard = f"p/{task.prompts[0]}"
display(Markdown(f"After {STEPS} sampled steps the hardest prompt (base success {task.base_success[0]:g}) is solved with "
                 f"probability {runs['grpo'].metrics[hard][-1]:.3f} under GRPO and {runs['rloo'].metrics[hard][-1]:.3f} "
                 f"under RLOO (one seed: a single run, not an average)."))

# %% [markdown]
# **Takeaway.** Only REINFORCE/RLOO/ReMax with k1 in the reward follow the RLHF gradient
# (Dr. GRPO follows E[r]'s, up to a step size). k3 in the loss optimises the *forward* KL; k1 in
# the loss does nothing (unless a 1/|y| weight turns it into a length bonus); GRPO's std reweights
# prompts by difficulty and its 1/|y| biases lengths; clipping moves the entropy even when the
# rewards carry no signal. Each is an f-divergence story: know which divergence, and which target.
#
# ## Exercises
#
# Solutions: `lessons/solutions/09_rlhf_as_practised.py`.
#
# **9.1 Which KL?** Adding k3 = a/π − 1 − log(a/π) to the loss (sample held fixed): which KL does the
# expected gradient minimise — "forward" KL(a‖π), "reverse" KL(π‖a), or "none"?

# %%
my_kl = "reverse"  # your answer
print(lesson9.check_k3_loss_kl(my_kl))

# %% [markdown]
# **9.2 GRPO's weight.** For binary rewards at G = `lesson9.GRPO_G` = 8, what is w(p) for a prompt with
# p = `lesson9.GRPO_P` = 0.1? (Use `rl.group_advantages`; do not call `rl.effective_weight`.)

# %%
my_w = None  # your answer: a float
print(lesson9.check_grpo_weight(my_w))

# %% [markdown]
# **9.3 RLOO and Dr. GRPO.** For G = 8, A_RLOO = c · A_DrGRPO. What is c?

# %%
my_c = 7 / 8  # your answer
print(lesson9.check_rloo_factor(my_c))
