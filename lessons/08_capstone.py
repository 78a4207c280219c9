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
# # Lesson 8 — Capstone: your own task, every method, one table
#
# **In the app:** run `streamlit run app.py`, then open the Playground with a hybrid GDC target: <http://localhost:8501/?pg_kind=hybrid>.
#
# **Goals.** You will
# 1. design a task of your own: a sequence space, a corpus and its base model, a reward, a
#    pointwise constraint and a set of moments;
# 2. solve it with every method of the course — RLHF, GDC pointwise, GDC distributional, f-DPG
#    with several f, and DPO;
# 3. compare them in one table and one figure, and explain the differences with lessons 1–7.
#
# **Prerequisites.** All previous lessons. This notebook runs as it is with an example task
# ("weather reports"); the exercises ask you to replace it with your own — change section 1,
# re-run everything, and read your table.

# %%
# %matplotlib inline
import numpy as np
from IPython.display import Markdown, display

from toyfdiv import SequenceSpace, experiments, metrics, targets, tasks, train
from toyfdiv import feedback as fb
from toyfdiv import plots
from toyfdiv.exercises import lesson8


def show(rows, keys, digits=3):
    """A list of dict rows as a Markdown table (display only, no maths)."""
    fmt = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    display(Markdown("\n".join(lines)))


# %% [markdown]
# ## 1. Design the task
#
# Everything the methods need is a plain vector over the space, wrapped in a named
# `tasks.Signal`:
#
# * a **space**: a vocabulary, a maximum length, an end-of-sequence token;
# * a **base model** a: `tasks.pretrain` fits a smoothed bigram model to a small corpus;
# * a **reward** r (RLHF, DPO): here, how pleasant the weather report is;
# * a **pointwise constraint** b (GDC pointwise): here, "the report mentions the day";
# * **features** φ and **moments** μ̄ (GDC distributional): here, "rain in 30 % of reports" and
#   "warmth in half of them".
#
# *Exercise 1 asks you to change this cell.*

# %%
space = SequenceSpace(["sunny", "rainy", "cold", "warm", "day"], length=4, eos="</s>")
corpus = ["sunny day", "rainy day", "cold rainy day", "warm sunny day", "rainy", "cold day",
          "cold", "rainy cold", "sunny warm", "day rainy", "cold cold day", "rainy rainy"]
base = tasks.pretrain(space, corpus, order=2, smoothing=0.5)

count = lambda w: tasks.count(space, w).values
reward = tasks.Signal("pleasant", count("sunny") + count("warm") - count("rainy") - count("cold"))
constraint = tasks.contains(space, "day")
features = (tasks.contains(space, "rainy"), tasks.contains(space, "warm"))
moments = np.array([0.3, 0.5])

task = tasks.Task("weather", "Weather reports in three words.", space, tuple(corpus), base, reward,
                  constraint, features, moments, beta=1.0)
print(space)
print(lesson8.check_design(task))

# %% [markdown]
# ## 2. The targets
#
# One base model, four targets — each the solution of its own problem (lessons 2–3):
#
# | method | target p | minimised |
# |---|---|---|
# | RLHF | $a\,e^{r/\beta}/Z$ | reverse KL(π‖p) |
# | GDC pointwise | $a\,b/Z$ | forward KL(p‖π) (DPG) |
# | GDC distributional | $a\,e^{\lambda\cdot\phi}/Z$, $\mathbb E_p[\phi]=\bar\mu$ | forward KL(p‖π) |
# | f-DPG | the hybrid $a\,b\,e^{\lambda\cdot\phi}/Z$ | $D_f(\pi\|p)$ for several f |
#
# and DPO, which never builds p: it fits the policy to preference pairs directly (lesson 7), and
# its population optimum is the RLHF target.

# %%
T = {kind: task.target(kind) for kind in ("rlhf", "pointwise", "distributional", "hybrid")}
for kind, tgt in T.items():
    print(f"{tgt.name:55s} KL(p‖a) = {tgt.kl_from_base:.3f} nats, H(p) = {metrics.entropy(tgt.log_probs):.3f}")
assert np.allclose(np.exp(T["distributional"].log_probs) @ task.feature_matrix, moments, atol=1e-6)

# %% [markdown]
# ## 3. Solve it with every method
#
# Every run starts from the base model a (written as an autoregressive policy, which can
# represent every target exactly), with exact gradients and the same optimiser, so differences
# come from the *method*, not from the noise. For DPO we simulate a rater whose utility is our
# reward (τ = 1) and collect 1000 pairs from a.

# %%
STEPS, LR = 300, 0.1
runs = {
    "RLHF (reverse KL)": train(task.base, T["rlhf"], "reverse_kl", steps=STEPS, lr=LR),
    "GDC pointwise (forward KL)": train(task.base, T["pointwise"], "forward_kl", steps=STEPS, lr=LR),
    "GDC distributional (forward KL)": train(task.base, T["distributional"], "forward_kl", steps=STEPS, lr=LR),
}
fdpg_runs = experiments.compare(task, "hybrid", ["forward_kl", "js", "hellinger", "tv"], steps=STEPS, lr=LR)
runs.update({f"f-DPG hybrid ({name})": h for name, h in fdpg_runs.items()})

rater = fb.Rater(reward.values, temperature=1.0, name="pleasantness rater")
pairs = fb.collect_preferences(rater, task.base, 1000, np.random.default_rng(0))
dpo = fb.train_dpo(task.base, task.log_a, pairs, task.beta, steps=60, lr=0.05, record_every=10,
                   target_log_probs=T["rlhf"].log_probs)
print(f"DPO: KL(π‖p_RLHF) {dpo.metrics['kl_to_target'][0]:.3f} → {dpo.metrics['kl_to_target'][-1]:.3f} nats")

# %% [markdown]
# ## 4. One table
#
# Each final policy is measured against *everything* the task asks for: the reward, the
# constraint, both moments, the distance from a, the diversity — and the distance to its own
# target.

# %%
policies = {name: h.policy for name, h in runs.items()}
policies["DPO (1000 pairs)"] = dpo.policy
own_target = {name: T["rlhf"] if name.startswith(("RLHF", "DPO")) else T["pointwise"] if "pointwise" in name
              else T["distributional"] if "distributional" in name else T["hybrid"] for name in policies}
table = []
for name, pol in {"base a": task.base, **policies}.items():
    lp = pol.log_probs()
    on_all = metrics.alignment(lp, T["hybrid"]) | metrics.alignment(lp, T["rlhf"])
    own = own_target.get(name)
    table.append({"method": name, "E[r]": on_all["reward"], "E[b]": on_all["constraint"],
                  "E[rainy]": on_all["moment/contains(rainy)"], "E[warm]": on_all["moment/contains(warm)"],
                  "KL(π‖a)": metrics.kl(lp, task.log_a), "H(π)": metrics.entropy(lp),
                  "KL(p‖π) own target": metrics.kl(own.log_probs, lp) if own is not None else "—"})
show(table, list(table[0]))

# %% [markdown]
# ## 5. One figure
#
# The most likely reports under the base model, and the probability each method gives them:

# %%
plots.distributions(space, {"base": task.log_a, **{k: p.log_probs() for k, p in policies.items()
                                                   if not k.startswith("f-DPG") or "js" in k}}, k=12)

# %% [markdown]
# ## 6. Read the table — and check what you read
#
# * **RLHF** raises the reward most; it knows nothing of the constraint or the moments, which
#   drift wherever the reward pushes them (in the example, fewer reports mention the day).
# * **GDC pointwise** satisfies the constraint (E[b] ≈ 1) at the smallest possible cost,
#   KL(p‖a) = −log P_a(b): it is a conditioned on b.
# * **GDC distributional** meets the moments and nothing else.
# * **f-DPG on the hybrid target** does both at once, and pays for two demands with the largest
#   KL(π‖a) of the GDC rows; with an expressive policy every f reaches the same p, so the f-DPG
#   rows agree with each other (lesson 5: f only matters when the policy cannot represent p).
# * **DPO** approaches the RLHF target from pairs alone — without ever computing r or Z — but
#   only as closely as a finite dataset (and early stopping, lesson 7) allows.

# %%
row = {r["method"]: r for r in table}
assert row["RLHF (reverse KL)"]["E[r]"] == max(r["E[r]"] for r in table)
gdc_rows = [r for r in table if r["method"].startswith(("GDC", "f-DPG"))]
assert max(gdc_rows, key=lambda r: r["KL(π‖a)"])["method"].startswith("f-DPG")
assert row["GDC pointwise (forward KL)"]["E[b]"] > 0.95
assert np.allclose([row["GDC distributional (forward KL)"]["E[rainy]"], row["GDC distributional (forward KL)"]["E[warm]"]],
                   moments, atol=0.02)
assert abs(row["GDC pointwise (forward KL)"]["KL(π‖a)"] - T["pointwise"].kl_from_base) < 0.05
for name in fdpg_runs:
    r = row[f"f-DPG hybrid ({name})"]
    assert r["E[b]"] > 0.95 and np.allclose([r["E[rainy]"], r["E[warm]"]], moments, atol=0.03), name
assert dpo.metrics["kl_to_target"][-1] < 0.5 * dpo.metrics["kl_to_target"][0]

# %% [markdown]
# **Takeaway.** One base model, one space, and every method of the course is the same move —
# choose a target p, then minimise a divergence to it: RLHF, GDC and f-DPG differ only in *which*
# p and *which* f, and DPO reaches RLHF's p through its closed form without ever building it.
#
# ## Exercises
#
# Solutions: `lessons/solutions/08_capstone.py`.
#
# **8.1 Your own task.** Replace section 1 by a task of your own: another vocabulary and corpus, your own
# reward (any `tasks.Signal`, e.g. built from `tasks.count`, `tasks.contains`,
# `tasks.no_repeat`, `tasks.mean_length`), constraint and moments. Check it is well posed, then
# re-run the whole notebook.

# %%
print(lesson8.check_design(task))

# %% [markdown]
# **8.2 The pointwise solution.** On your task, the GDC pointwise policy should satisfy the constraint *and* stay close to
# $p = a\,b/Z$. Check it — and then check the RLHF policy with the same function: why does it fail?

# %%
print(lesson8.check_pointwise_solution(task, runs["GDC pointwise (forward KL)"].policy))

# %% [markdown]
# **8.3 The moments.** Check that your distributional policy meets your moments. Which of the other methods
# also meet them, and why?

# %%
print(lesson8.check_moments_solution(task, runs["GDC distributional (forward KL)"].policy))
