"""Estimator lab: the sampled f-DPG gradient held against the exact one — bias, variance, cosine vs n."""

import numpy as np
import streamlit as st

from app_pages import common
from app_pages.links import lesson_line
from toyfdiv import claims, divergences, estimator_lab, experiments, plots, train

P = "el"
N_VALUES = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]
AUTO_SAMPLES = 300_000  # Σ n·trials·divergences below which the lab runs without a button (about a second)
AUTO_N = 5_000  # larger spaces wait for the button too (the exact gradient and the Jacobian grow with N)

st.title("Estimator lab: sampled vs exact gradients")
lesson_line("app_pages/estimators.py")
st.markdown("At scale nobody can sum over every sequence: disco and TRL *sample*. Here the exact gradient is "
            "known, so every estimator can be checked — how biased, how noisy, how well aligned — as the "
            "number of samples n grows, with and without baselines, with Z known or estimated.")
c1, c2 = st.columns(2)  # two columns: the sampled gradient is too wide for a third of a projector screen
with c1:
    common.formula(r"\hat g = -\frac1n\sum_{i=1}^n \frac{\pi_\theta(x_i)}{q(x_i)}\,\big[R(x_i) - B\big]\,"
                   r"\nabla_\theta\log\pi_\theta(x_i)", "fdpg", note="f-DPG, sampled (eq. 4, Alg. 1)")
    common.formula(r"B = \hat Z\,\frac{\pi_\theta(x)}{q(x)} \;\Rightarrow\; \text{advantage } \frac{p}{\pi}-1",
                   "dpg_baseline", note="the DPG baseline (here in the P/q scale: B = −f′(1))")
with c2:
    common.formula(r"\hat Z = \frac1n\sum_{i=1}^n \frac{P(x_i)}{q(x_i)},\quad \hat p = P/\hat Z", "gdc",
                   note="Z by importance sampling. Ẑ enters forward KL's f′ as a factor (a rescale of each batch), reverse KL's "
                        "additively in log Ẑ (a shift, which a leave-one-out baseline removes); the others distort")

with st.sidebar:
    st.header("Space and target")
    space = common.space_controls(P)
    tgt_s = common.target_controls(P, space["task"])
    st.header("Estimators")
    divs = common.divergence_options(P, "divs", help="Divergences whose gradient is estimated")
    baselines = common.choice("Baselines", f"{P}_baselines", "none: plain REINFORCE; mean: batch mean; loo: "
                              "leave-one-out mean; dpg: −f′(1) (Korbak et al.)", widget=st.multiselect)
    zs = common.choice("Z", f"{P}_zs", "exact: the true partition function; batch: estimated from the same samples",
                       widget=st.multiselect)
    ns = common.choice("Sample sizes n", f"{P}_ns", "Samples per gradient estimate", widget=st.multiselect)
    trials = int(common.slider("Trials per point", f"{P}_trials",
                               "Independent estimates averaged for bias, variance and cosine; more trials lower "
                               "the noise floor"))
    k = int(common.slider("Policy: exact steps from a", f"{P}_k",
                          "Where the gradient is taken: the base model a (0) or after k exact f-DPG steps towards p "
                          "with the first divergence"))
    seed = int(common.number_input("Seed", f"{P}_seed", "Seeds the samplers", step=1))


@st.cache_resource(max_entries=16, show_spinner=False)
def lab_policy(task_key: tuple, target_key: tuple, div: str, k: int):
    """The policy after k exact steps of D_f(π‖p) from the base model (k = 0: a itself)."""
    task = common.get_task(*task_key)
    start = experiments.make_policy(task, "autoregressive")
    if k == 0:
        return start
    target, _ = common.get_target(*task_key, *target_key)
    return train(start, target, div, steps=k, lr=0.1).policy


@st.cache_data(max_entries=256, show_spinner=False)
def lab_rows(task_key: tuple, target_key: tuple, div: str, n: int, trials: int, baselines: tuple, zs: tuple,
             k: int, k_div: str, seed: int) -> list[dict]:
    target, _ = common.get_target(*task_key, *target_key)
    policy = lab_policy(task_key, target_key, k_div, k)
    return estimator_lab.estimator_stats(policy, target, div, n=n, trials=trials, rng=np.random.default_rng(seed),
                                         baselines=baselines, z_options=zs)


@st.cache_data(max_entries=32, show_spinner=False)
def stats_png(rows: list[dict], theme: str) -> bytes:
    return common.png(lambda: plots.estimator_stats(rows), theme)


common.check_size(space["task"], space["length"], space["eos"], what="run the laboratory")
task_key = (space["task"], space["length"], space["eos"])
target_key = (tgt_s["kind"], tgt_s["beta"], tgt_s["epsilon"], tgt_s["moments"])
with common.explained(what="This target cannot be built"):
    target, target_warnings = common.get_target(*task_key, *target_key)
common.show_warnings(target_warnings)

missing = [name for name, v in (("a divergence", divs), ("a baseline", baselines), ("a Z option", zs),
                                ("a sample size n", ns)) if not v]
if missing:
    st.info("Pick " + ", ".join(missing) + " in the sidebar.")
    st.stop()
ns = sorted(ns)
work = sum(ns) * trials * len(divs)
jobs = [(d, n) for d in divs for n in ns]
key = (task_key, target_key, tuple(divs), tuple(ns), trials, tuple(baselines), tuple(zs), k, seed)
auto = (work <= AUTO_SAMPLES and target.size <= AUTO_N) or st.session_state.get(f"{P}_done") == key
prompt = st.empty()
if not auto:
    prompt.info(f"These settings draw {work:,} samples ({len(jobs)} points × {trials} trials) on N = "
                f"{target.size:,} sequences: press **Run** (it may take several seconds).")
    if not st.button("Run the laboratory", type="primary", key=f"{P}_run",
                     help="Draw the samples and compare every estimate with the exact gradient"):
        st.stop()
prompt.empty()
rows = []
bar = st.progress(0.0, text="Sampling…")
with common.explained(what="The estimators cannot be evaluated here"):
    for j, (d, n) in enumerate(jobs):
        rows += lab_rows(task_key, target_key, d, n, trials, tuple(baselines), tuple(zs), k, divs[0], seed)
        bar.progress((j + 1) / len(jobs), text=f"Sampling… {j + 1}/{len(jobs)} points")
bar.empty()
st.session_state[f"{P}_done"] = key

norms = {r["divergence"]: r["grad_norm"] for r in rows}
m = st.columns(max(3, len(norms) + 2))
for col, (d, g) in zip(m, norms.items()):
    col.metric(f"‖∇θ D_f‖ exact, {d}", f"{g:.4g}", help=f"Exact gradient norm for {d}")
m[len(norms)].metric("Sequences N", f"{target.size:,}", help="The exact gradient sums over all of them")
m[len(norms) + 1].metric("Estimates drawn", f"{len(rows) * trials:,}", help="Points × options × trials")
common.show_png(stats_png(rows, common.theme()))
for r in rows:
    r["verdict"] = claims.bias_verdict(r["bias"], r["bias_se"])[0]
biased = sorted({(r["divergence"], r["z"], r["baseline"]) for r in rows if r["verdict"] == "biased"})
st.markdown(f"**Read it.** A bias counts only above {claims.BIAS_Z:g} noise floors √(tr Cov ĝ / trials) (for an "
            "unbiased estimator the measured ‖E ĝ − g‖ sits near one floor). "
            + (("Biased here: " + "; ".join(f"{d} with Z = {z}, baseline {b}" for d, z, b in biased) + ".")
               if biased else "No combination is detectably biased at these trials.")
            + " The batch-mean baseline shrinks the gradient by (1 − 1/n); leave-one-out does not.")
same = [d for d in dict.fromkeys(r["divergence"] for r in rows)
        if float(divergences.get(d).f_prime(np.array([1.0]))[0]) == 0.0]
if same and "dpg" in baselines and "none" in baselines:
    st.caption(f"For {', '.join(same)} f′(1) = 0, so the dpg baseline −f′(1) is 0 and its rows equal “none”.")
common.table(common.frame(rows, {"divergence": "divergence", "n": "n", "baseline": "baseline", "z": "Z",
                                 "bias": "bias", "bias_se": "noise floor", "verdict": "verdict",
                                 "relative_bias": "relative bias", "variance": "variance", "cosine": "cosine",
                                 "log_z_bias": "E log Ẑ − log Z"}),
             key=f"{P}_rows", sci=("bias", "noise floor", "relative bias", "variance"))
