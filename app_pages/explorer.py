"""Divergence explorer: the zoo of f, f' and pseudo-rewards; α from forward to reverse KL; the simplex."""

import numpy as np
import streamlit as st

from app_pages import common
from toyfdiv import divergences, plots, simplex

P = "ex"
SECTIONS = ["Zoo: f, f′ and the pseudo-reward", "α: forward KL ↔ reverse KL", "Simplex: contours and gradient flows"]
T_VALUES = [0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0]

st.title("Divergence explorer")
c1, c2 = st.columns(2)
with c1:
    common.formula(r"D_f(\pi\,\|\,p) = \sum_x p(x)\, f\!\left(\frac{\pi(x)}{p(x)}\right),\quad f(1)=0", "fdpg",
                   note="f convex; the policy π first, the target p second")
with c2:
    common.formula(r"R(x) = -f'\!\left(\frac{\pi_\theta(x)}{p(x)}\right)", "fdpg",
                   note="the pseudo-reward: minimising D_f is REINFORCE with reward R")

common.init(f"{P}_section", SECTIONS[0])
section = st.segmented_control("Show", SECTIONS, key=f"{P}_section", required=True,
                               help="One picture at a time, large enough for the back of the room")


@st.cache_data(max_entries=32, show_spinner=False)
def zoo_png(names: tuple, alpha_lo: float, alpha_hi: float) -> bytes:
    return common.png(plots.divergence_zoo(list(names), alphas=np.linspace(alpha_lo, alpha_hi, 13)))


@st.cache_data(max_entries=64, show_spinner=False)
def simplex_png(log_p: tuple, names: tuple, start: tuple, steps: int, lr: float) -> bytes:
    return common.png(plots.simplex(np.array(log_p), list(names), start=np.array(start), steps=steps, lr=lr,
                                    resolution=90, ncols=3))  # larger triangles for the back of the room


@st.cache_data(max_entries=64, show_spinner=False)
def flow_rows(log_p: tuple, names: tuple, start: tuple, steps: int, lr: float) -> list[dict]:
    """Where each flow ends, and D_f at the start and at the end (library values)."""
    rows = []
    lp, s = np.array(log_p), np.array(start)
    for name in names:
        div = divergences.get(name)
        path = simplex.gradient_flow(lp, div, s, steps=steps, lr=lr)
        rows.append(dict(divergence=name, **{f"π{i + 1} (end)": float(v) for i, v in enumerate(path[-1])},
                         D_start=div.value(np.log(s), lp), D_end=div.value(np.log(path[-1]), lp)))
    return rows


def generator(name: str) -> None:
    """One generator f of the registry: its label and its formula (the library's LaTeX)."""
    div = divergences.get(name)
    st.caption(div.label.replace("  ", " — "))
    st.latex(f"f(t) = {div.formula}")


def value_rows(names, t: float) -> list[dict]:
    tt = np.array([t])
    return [dict(divergence=n, f=float(divergences.get(n).f(tt)[0]), f_prime=float(divergences.get(n).f_prime(tt)[0]),
                 pseudo_reward=float(divergences.get(n).pseudo_reward(np.log(tt))[0])) for n in names]


def three_sliders(label: str, key: str, default) -> tuple:
    """Three weights → a distribution on the simplex (normalised for display)."""
    cols = st.columns(3)
    w = []
    for i, col in enumerate(cols):
        common.init(f"{P}_{key}{i}", default[i])
        w.append(col.slider(f"{label} x{i + 1}", 1, 100, key=f"{P}_{key}{i}",
                            help=f"Relative weight of outcome x{i + 1} (the three are normalised to sum to 1)"))
    w = np.asarray(w, dtype=float)
    return tuple(w / w.sum())


if section == SECTIONS[0]:
    with st.sidebar:
        st.header("Zoo")
        names = common.divergence_options(P, "zoo", divergences.names(), label="Divergences (top row)")
        common.init(f"{P}_arange", (-1.0, 2.0))
        lo, hi = st.slider("α range (bottom row)", -1.0, 2.0, step=0.25, key=f"{P}_arange",
                           help="The α-divergences drawn as a continuum: α = 0 is forward KL, α = 1 reverse KL")
        common.init(f"{P}_t", 2.0)
        t = st.select_slider("Ratio t = π/p for the table", T_VALUES, key=f"{P}_t",
                             help="t < 1: π puts too little mass on x; t > 1: too much")
    if not names:
        st.info("Pick at least one divergence in the sidebar.")
    else:
        common.show_png(zoo_png(tuple(names), float(lo), float(hi)))
        st.markdown(f"**At t = π/p = {t:g}** (from the library's f, f′ and pseudo-reward):")
        common.table(common.frame(value_rows(names, t), {"divergence": "divergence", "f": "f(t)",
                                                         "f_prime": "f′(t)", "pseudo_reward": "R = −f′(t)"}),
                     key=f"{P}_values")
        st.markdown("**The generators** (each row's origin and its factor against disco, TRL and TFP: "
                    "docs/conventions.md):")
        # two per row; the parametrised generators (long formulas) get a row each, so none is cut off
        short = [n for n in names if "(" not in n]
        long = [n for n in names if "(" in n]  # alpha(α), gjsd(β): formulas with their parameter
        for i in range(0, len(short), 2):
            for col, name in zip(st.columns(2), short[i:i + 2]):
                with col:
                    generator(name)
        for name in long:
            generator(name)

elif section == SECTIONS[1]:
    common.formula(r"f_\alpha(t) = \frac{t^\alpha - \alpha t - (1-\alpha)}{\alpha(\alpha-1)}"
                   r"\;\xrightarrow[\alpha\to 0]{}\; -\log t \;(\mathrm{KL}(p\|\pi)),"
                   r"\quad \xrightarrow[\alpha\to 1]{}\; t\log t \;(\mathrm{KL}(\pi\|p))", "amari", "fdpg",
                   note="one dial from GDC's forward KL to RLHF's reverse KL")
    with st.sidebar:
        st.header("α")
        common.init(f"{P}_alpha_m", 0.5)
        a = st.slider("α", -1.0, 2.0, step=0.05, key=f"{P}_alpha_m",
                      help="0: forward KL (mass-covering, GDC); 1: reverse KL (mode-seeking, RLHF)")
        st.header("Three outcomes")
        log_p_probs = three_sliders("target p:", "mp", (62, 33, 5))
        start = three_sliders("start π₀:", "ms", (10, 10, 80))
    div_a = divergences.alpha(float(a))
    names = ("forward_kl", div_a.name, "reverse_kl")
    log_p = tuple(np.log(log_p_probs))
    with common.explained(what="This flow cannot be computed"):
        rows = flow_rows(log_p, names, start, 300, 0.5)
        img = simplex_png(log_p, names, start, 300, 0.5)
    cols = st.columns(3)
    for col, row in zip(cols, rows):
        col.metric(f"{plots.divergence_label(row['divergence'])}: D(π₀‖p), nats", f"{row['D_start']:.4f}",
                   help="The divergence of the start π₀ from p (library value)")
    st.markdown(f"α = {a:g}: the middle panel morphs from the left one (α = 0, forward KL) to the right one "
                "(α = 1, reverse KL) as you move the slider — the contours and the path π₀ → p with them. A tabular "
                "policy can represent p, so every path ends at p: the divergences differ in *how* they get there "
                "(and, with limited capacity, *where* they stop — see the Playground's bigram policy).")
    common.show_png(img)
    common.table(common.frame(rows), key=f"{P}_alpha_rows")

else:
    common.formula(r"\theta_{k+1} = \theta_k - \eta\,\nabla_\theta D_f(\pi_{\theta_k}\|p),\quad"
                   r"\pi_\theta = \mathrm{softmax}(\theta)", "fdpg",
                   note="the exact f-DPG gradient flow of a tabular policy on three outcomes")
    with st.sidebar:
        st.header("Simplex")
        names = common.divergence_options(P, "simplex", ["forward_kl", "reverse_kl", "js", "tv"],
                                          label="Divergences")
        st.subheader("Target p")
        p_probs = three_sliders("p:", "p", (62, 33, 5))
        st.subheader("Start π₀ (pick the start point)")
        start = three_sliders("π₀:", "s", (10, 10, 80))
        common.init(f"{P}_steps", 300)
        common.init(f"{P}_lr", 0.5)
        steps = st.slider("Gradient steps", 10, 1000, step=10, key=f"{P}_steps",
                          help="Length of each path (plain gradient descent)")
        lr = st.select_slider("Step size η", [0.05, 0.1, 0.2, 0.5, 1.0, 2.0], key=f"{P}_lr",
                              help="Larger steps travel further along the flow")
    if not names:
        st.info("Pick at least one divergence in the sidebar.")
    else:
        log_p = tuple(np.log(p_probs))
        with common.explained(what="This flow cannot be computed"):
            rows = flow_rows(log_p, tuple(names), start, int(steps), float(lr))
            img = simplex_png(log_p, tuple(names), start, int(steps), float(lr))
        common.show_png(img)
        st.caption("Where each path ends, and D_f(π‖p) at the start and at the end (nats):")
        common.table(common.frame(rows), key=f"{P}_flow_rows")
