"""Divergence explorer: the zoo of f, f' and pseudo-rewards; α from forward to reverse KL; the simplex."""

import numpy as np
import streamlit as st

from app_pages import common, ui
from app_pages.links import lesson_line
from toyfdiv import claims, divergences, experiments, plots, simplex

P = "ex"
SECTIONS = {"zoo": "Zoo of f", "alpha": "α: forward ↔ reverse KL", "simplex": "Simplex flows",
            "restricted": "Restricted family", "frontier": "Frontier across β"}

st.title("Divergence explorer")
lesson_line("app_pages/explorer.py")
c1, c2 = st.columns(2)
with c1:
    common.formula(r"D_f(\pi\,\|\,p) = \sum_x p(x)\, f\!\left(\frac{\pi(x)}{p(x)}\right),\quad f(1)=0", "fdpg",
                   note="f convex; the policy π first, the target p second")
with c2:
    common.formula(r"R(x) = -f'\!\left(\frac{\pi_\theta(x)}{p(x)}\right)", "fdpg",
                   note="the pseudo-reward: minimising D_f is REINFORCE with reward R")

section = common.choice("Show", f"{P}_section", "One picture at a time, large enough for the back of the room",
                        widget=st.segmented_control, format_func=SECTIONS.get, required=True)


@st.cache_data(max_entries=32, show_spinner=False)
def zoo_png(names: tuple, alpha_lo: float, alpha_hi: float, theme: str) -> bytes:
    return common.png(lambda: plots.divergence_zoo(list(names), alphas=np.linspace(alpha_lo, alpha_hi, 7)), theme)


@st.cache_data(max_entries=64, show_spinner=False)
def simplex_png(log_p: tuple, names: tuple, start: tuple, steps: int, lr: float, theme: str) -> bytes:
    return common.png(lambda: ui.with_colour_scales(  # each panel's scale in nats; large triangles: 3 per row
        plots.simplex(np.array(log_p), list(names), start=np.array(start), steps=steps, lr=lr, resolution=90,
                      ncols=3)), theme, tight=True)


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


@st.cache_data(max_entries=8, show_spinner=False)
def restricted_rows(names: tuple) -> list[dict]:
    """Where each divergence's restricted flow ends (library: simplex.restricted_flow)."""
    p = np.exp(simplex.BIMODAL_TARGET)
    rows = [dict(model="target p", **{f"x{i + 1}": float(v) for i, v in enumerate(p)})]
    for n in names:
        end = simplex.restricted_flow(simplex.BIMODAL_TARGET, n, 1.2, steps=300, lr=0.5)[-1]
        rows.append(dict(model=plots.divergence_label(n), **{f"x{i + 1}": float(v) for i, v in enumerate(end)}))
    return rows


@st.cache_data(max_entries=8, show_spinner=False)
def restricted_png(names: tuple, theme: str) -> bytes:
    return common.png(lambda: plots.mode_seeking(divergences=list(names)), theme)


@st.cache_data(max_entries=4, show_spinner="Training every divergence at every β…")
def frontier_png(theme: str) -> bytes:
    rows = experiments.frontier("reviews", ["reverse_kl", "forward_kl", "js"], betas=(0.1, 0.2, 0.5, 1.0, 2.0),
                                steps=150, policy="ngram", policy_options={"order": 2}, record_every=150)
    return common.png(lambda: plots.frontier(rows), theme)


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
        with col:
            w.append(common.slider(f"{label} x{i + 1}", f"{P}_{key}{i}",
                                   f"Relative weight of outcome x{i + 1} (the three are normalised to sum to 1)"))
    w = np.asarray(w, dtype=float)
    return tuple(w / w.sum())


if section == "zoo":
    with st.sidebar:
        st.header("Zoo")
        names = common.divergence_options(P, "zoo", label="Divergences (top row)")
        lo, hi = common.slider("α range (bottom row)", f"{P}_arange",
                               "The α-divergences drawn as a continuum: α = 0 is forward KL, α = 1 reverse KL")
        t = common.choice("Ratio t = π/p for the table", f"{P}_t",
                          "t < 1: π puts too little mass on x; t > 1: too much", widget=st.select_slider)
    if not names:
        st.info("Pick at least one divergence in the sidebar.")
    else:
        if len(names) > 5:
            st.caption(f"{len(names)} curves per panel: pick five or fewer in the sidebar for a projector.")
        common.show_png(zoo_png(tuple(names), float(lo), float(hi), common.theme()))
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

elif section == "alpha":
    common.formula(r"\begin{gathered}f_\alpha(t) = \frac{t^\alpha - \alpha t - (1-\alpha)}{\alpha(\alpha-1)}\\"
                   r"\xrightarrow[\alpha\to 0]{}\; -\log t \;(\mathrm{KL}(p\|\pi)),"
                   r"\quad \xrightarrow[\alpha\to 1]{}\; t\log t \;(\mathrm{KL}(\pi\|p))\end{gathered}", "amari", "fdpg",
                   note="one dial from GDC's forward KL to RLHF's reverse KL")
    with st.sidebar:
        st.header("α")
        a = common.slider("α (between 0 and 1)", f"{P}_alpha_m",
                          "0: forward KL (mass-covering, GDC); 1: reverse KL (mode-seeking, RLHF)")
        st.header("Three outcomes")
        log_p_probs = three_sliders("target p:", "mp", (62, 33, 5))
        start = three_sliders("start π₀:", "ms", (10, 10, 80))
    div_a = divergences.alpha(float(a))
    names = ("forward_kl", div_a.name, "reverse_kl")
    log_p = tuple(np.log(log_p_probs))
    with common.explained(what="This flow cannot be computed"):
        rows = flow_rows(log_p, names, start, 300, 0.5)
        img = simplex_png(log_p, names, start, 300, 0.5, common.theme())
    cols = st.columns(3)
    for col, row in zip(cols, rows):
        col.metric(f"{plots.divergence_label(row['divergence'])}: D(π₀‖p), nats", f"{row['D_start']:.4f}",
                   help="The divergence of the start π₀ from p (library value)")
    st.markdown(f"α = {a:g}: the middle panel lies {a:.0%} of the way from the left one (α = 0, forward KL) to "
                "the right one (α = 1, reverse KL); move the slider and the contours and the path π₀ → p morph "
                "between them. A tabular policy can represent p, so here every path ends at p: the divergences "
                "differ in *how* they get there. Where they *stop* differs only for a restricted family — see "
                "“Mode seeking in a restricted family”.")
    common.show_png(img)
    common.table(common.frame(rows), key=f"{P}_alpha_rows")

elif section == "simplex":
    common.formula(r"\theta_{k+1} = \theta_k - \eta\,\nabla_\theta D_f(\pi_{\theta_k}\|p),\quad"
                   r"\pi_\theta = \mathrm{softmax}(\theta)", "fdpg",
                   note="the exact f-DPG gradient flow of a tabular policy on three outcomes")
    with st.sidebar:
        st.header("Simplex")
        names = common.divergence_options(P, "simplex", label="Divergences")
        st.subheader("Target p")
        p_probs = three_sliders("p:", "p", (62, 33, 5))
        st.subheader("Start π₀ (pick the start point)")
        start = three_sliders("π₀:", "s", (10, 10, 80))
        steps = common.slider("Gradient steps", f"{P}_steps", "Length of each path (plain gradient descent)")
        lr = common.choice("Step size η", f"{P}_lr", "Larger steps travel further along the flow",
                           widget=st.select_slider)
    if not names:
        st.info("Pick at least one divergence in the sidebar.")
    else:
        log_p = tuple(np.log(p_probs))
        with common.explained(what="This flow cannot be computed"):
            rows = flow_rows(log_p, tuple(names), start, int(steps), float(lr))
            img = simplex_png(log_p, tuple(names), start, int(steps), float(lr), common.theme())
        common.show_png(img)
        st.caption("Contours: lines of equal D_f(π‖p); the scale beside each triangle gives its levels in nats "
                   "(darker = smaller; each divergence has its own scale). Where each path ends, and D_f(π‖p) at the "
                   "start and at the end (nats):")
        common.table(common.frame(rows), key=f"{P}_flow_rows")

elif section == "restricted":
    st.markdown("A two-mode target p on three outcomes, and a one-parameter *unimodal* family π_μ (the dashed "
                "curve): it cannot represent p, so each divergence's exact flow ends where that divergence prefers. "
                "(Lesson 1's figure.)")
    names = ("reverse_kl", "forward_kl", "js", "hellinger")
    with common.explained(what="This flow cannot be computed"):
        rows = restricted_rows(names)
        outcomes = [k for k in rows[0] if k != "model"]
        st.markdown(claims.mode_choice([rows[0][k] for k in outcomes],
                                       {r["model"]: [r[k] for k in outcomes] for r in rows[1:]}, outcomes)[1])
        common.show_png(restricted_png(names, common.theme()))
        common.table(common.frame(rows), key=f"{P}_restricted_rows")

else:
    st.markdown("RLHF targets p_β = a·exp(r/β)/Z across β; each divergence trained towards each p_β lands somewhere "
                "on the plane of alignment against diversity. (Lesson 5's figure, `python -m toyfdiv sweep`.)")
    if st.button("Compute the frontier (5 values of β × 3 divergences, about 10 s)", key=f"{P}_frontier_go",
                 type="primary") or st.session_state.get(f"{P}_frontier_done"):
        st.session_state[f"{P}_frontier_done"] = True
        with common.explained(what="The frontier cannot be computed"):
            common.show_png(frontier_png(common.theme()))
