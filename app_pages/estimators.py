"""Estimator lab: the sampled f-DPG gradient held against the exact one — bias, variance, cosine vs n."""

import numpy as np
import streamlit as st

from app_pages import common
from toyfdiv import estimator_lab, experiments, plots, train

P = "el"
N_VALUES = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]
AUTO_SAMPLES = 300_000  # Σ n·trials·divergences below which the lab runs without a button (about a second)

st.title("Estimator lab: sampled vs exact gradients")
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
                   note="Z by importance sampling; enters f′ non-linearly except for forward KL")

with st.sidebar:
    st.header("Space and target")
    space = common.space_controls(P)
    tgt_s = common.target_controls(P, space["task"])
    st.header("Estimators")
    divs = common.divergence_options(P, "divs", ["js"], help="Divergences whose gradient is estimated")
    common.init(f"{P}_baselines", ["none", "mean", "dpg"])
    baselines = st.multiselect("Baselines", list(estimator_lab.LAB_BASELINES), key=f"{P}_baselines",
                               help="none: plain REINFORCE; mean: batch mean; loo: leave-one-out mean; "
                                    "dpg: −f′(1) (Korbak et al.)")
    common.init(f"{P}_zs", ["exact", "batch"])
    zs = st.multiselect("Z", list(estimator_lab.LAB_Z), key=f"{P}_zs",
                        help="exact: the true partition function; batch: estimated from the same samples")
    common.init(f"{P}_ns", [4, 16, 64, 256, 1024])
    ns = st.multiselect("Sample sizes n", N_VALUES, key=f"{P}_ns", help="Samples per gradient estimate")
    common.init(f"{P}_trials", 100)
    trials = int(st.slider("Trials per point", 10, 1000, step=10, key=f"{P}_trials",
                           help="Independent estimates averaged for bias, variance and cosine"))
    common.init(f"{P}_k", 0)
    k = int(st.slider("Policy: exact steps from a", 0, 100, key=f"{P}_k",
                      help="Where the gradient is taken: the base model a (0) or after k exact f-DPG steps "
                           "towards p with the first divergence"))
    common.init(f"{P}_seed", 0)
    seed = int(st.number_input("Seed", 0, 10_000, key=f"{P}_seed", step=1, help="Seeds the samplers"))


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
def stats_png(rows: list[dict]) -> bytes:
    return common.png(plots.estimator_stats(rows))


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
auto = work <= AUTO_SAMPLES or st.session_state.get(f"{P}_done") == key
if not auto:
    st.info(f"These settings draw {work:,} samples ({len(jobs)} points × {trials} trials): press **Run** "
            "(it may take several seconds).")
    if not st.button("Run the laboratory", type="primary", key=f"{P}_run",
                     help="Draw the samples and compare every estimate with the exact gradient"):
        st.stop()
rows = []
bar = st.progress(0.0, text="Sampling…")
with common.explained(what="The estimators cannot be evaluated here"):
    for j, (d, n) in enumerate(jobs):
        rows += lab_rows(task_key, target_key, d, n, trials, tuple(baselines), tuple(zs), k, divs[0], seed)
        bar.progress((j + 1) / len(jobs), text=f"Sampling… {j + 1}/{len(jobs)} points")
bar.empty()
st.session_state[f"{P}_done"] = key

m = st.columns(3)
m[0].metric("‖∇θ D_f‖ (exact)", f"{rows[0]['grad_norm']:.4g}", help=f"Exact gradient norm for {rows[0]['divergence']}")
m[1].metric("Sequences N", f"{target.size:,}", help="The exact gradient sums over all of them")
m[2].metric("Estimates drawn", f"{len(rows) * trials:,}", help="Points × options × trials")
common.show_png(stats_png(rows))
st.caption("Bias is measured against a noise floor bias_se = √(variance/trials): below it, the estimator is "
           "unbiased as far as these trials can tell. With Z estimated from the batch every f but forward KL "
           "is biased; the batch-mean baseline shrinks the gradient by (1 − 1/n).")
common.table(common.frame(rows, {"divergence": "divergence", "n": "n", "baseline": "baseline", "z": "Z",
                                 "bias": "bias", "bias_se": "bias_se", "relative_bias": "relative bias",
                                 "variance": "variance", "cosine": "cosine", "log_z_bias": "E log Ẑ − log Z"}),
             key=f"{P}_rows", sci=("bias", "bias_se", "relative bias", "variance"))
