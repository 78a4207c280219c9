"""RLHF as practised: toggle an algorithm's parts and see its expected update against the exact
gradient, and where training on it ends (toyfdiv.rl)."""

import numpy as np
import streamlit as st

from app_pages import common
from app_pages.links import lesson_line
from toyfdiv import plots_rl, rl, rl_tasks
from toyfdiv.metrics import kl

P = "rl"
KL_OPTIONS = ["none", *rl.ESTIMATORS]
FP_STEPS, FP_TOL = 1500, 1e-8  # the fixed-point search: Adam steps, and ‖E[update]‖ at which it stops
ENDS_AT = 1e-6  # KL below which the fixed point "ends at" a closed form

st.title("RLHF as practised: PPO, GRPO and friends against the exact gradient")
lesson_line("app_pages/rl.py")
st.markdown("An RLHF algorithm is a choice of parts: the advantage, how token losses are averaged, where a "
            "per-sample KL estimate goes, and PPO's ratio and clipping. Each choice changes the **expected "
            "update**. Here it is computed exactly (or by Monte Carlo with its noise floor) and held against the "
            "exact gradient of E[r] − β KL(π‖a), and training on it is run to its fixed point.")
c1, c2 = st.columns(2)
with c1:
    st.latex(r"\begin{aligned}L = \sum_i s_i \sum_t \Big[&-\min\big(\rho_{it}A_i,\\ &\qquad\mathrm{clip}(\rho_{it},"
             r"1-\varepsilon_{low},1+\varepsilon_{high})A_i\big)\\ &+ \beta\,k(\delta_{it})\Big]\end{aligned}")
    st.caption("the batch loss (Schulman et al. 2017; Shao et al. 2024; Yu et al. 2025)")
with c2:
    st.latex(r"\begin{gathered}k_1=\delta,\quad k_2=\tfrac12\delta^2,\quad k_3=e^{-\delta}-1+\delta,\\"
             r"\delta=\log\pi-\log a\end{gathered}")
    st.caption("the KL estimators (Schulman 2020)")


def _load_preset() -> None:
    a = rl.preset(st.session_state[f"{P}_preset"])
    st.session_state.update({f"{P}_adv": a.advantage, f"{P}_agg": a.aggregation, f"{P}_kl": a.kl or "none",
                             f"{P}_place": a.kl_placement, f"{P}_level": a.kl_level,
                             f"{P}_beta": a.beta if a.beta > 0 else 0.1,
                             f"{P}_lo": a.clip_low or 0.2, f"{P}_hi": a.clip_high or 0.2,
                             f"{P}_clip": a.clip_low is not None, f"{P}_dapo": a.dynamic_sampling,
                             f"{P}_gspo": a.ratio_level == "sequence"})


with st.sidebar:
    st.header("Algorithm")
    common.init(f"{P}_preset", "grpo")
    st.selectbox("Start from a preset", rl.names(), key=f"{P}_preset", on_change=_load_preset,
                 help="Loads the parts of a published recipe; then change any part below")
    if f"{P}_adv" not in st.session_state:
        _load_preset()
    adv = st.selectbox("Advantage", list(rl.ADVANTAGES), key=f"{P}_adv",
                       help="none: REINFORCE; rloo: leave-one-out; dr_grpo: group mean; grpo: mean and std; "
                            "reinforce_pp: batch mean and std; remax: greedy response's reward")
    agg = st.selectbox("Loss aggregation", list(rl.AGGREGATIONS), key=f"{P}_agg",
                       help="seq_sum 1/G; token_mean 1/(G|y|) (GRPO); batch_token_mean 1/Σ|y| (DAPO); constant (Dr. GRPO)")
    est = st.selectbox("KL estimator", KL_OPTIONS, key=f"{P}_kl")
    place = st.selectbox("KL placement", list(rl.PLACEMENTS), key=f"{P}_place", disabled=est == "none")
    level = st.selectbox("KL level", list(rl.LEVELS), key=f"{P}_level", disabled=est == "none")
    beta = float(st.slider("β", 0.05, 2.0, key=f"{P}_beta", step=0.01, disabled=est == "none"))
    clip = st.checkbox("PPO clipping (later epochs only; the first epoch is on-policy)", key=f"{P}_clip")
    lo = float(st.slider("ε_low", 0.05, 0.95, key=f"{P}_lo", step=0.01, disabled=not clip))
    hi = float(st.slider("ε_high", 0.05, 0.95, key=f"{P}_hi", step=0.01, disabled=not clip))
    gspo = st.checkbox("GSPO: one ratio (π/π_old)^(1/|y|) per response", key=f"{P}_gspo",
                       help="Zheng et al. 2025: the sequence-level ratio, clipped per response; its gradient carries 1/|y|")
    dapo = st.checkbox("DAPO: dynamic sampling and the overlong penalty", key=f"{P}_dapo",
                       help="Yu et al. 2025: all-equal groups are drawn again; −½ at 3 tokens, −1 at 4 added to the reward")
    st.header("Batch and task")
    common.init(f"{P}_G", 8)
    G = int(st.select_slider("G, responses per prompt", [2, 4, 8, 16, 32, 64], key=f"{P}_G"))
    common.init(f"{P}_reward", "binary")
    reward = st.selectbox("Reward", list(rl_tasks.REWARDS), key=f"{P}_reward",
                          help="binary: right first token; graded: partial credit; prefix: leading tokens right")
    common.init(f"{P}_trials", 2000)
    trials = int(st.select_slider("Monte-Carlo batches (where exact does not fit)", [1000, 2000, 4000, 10000],
                                  key=f"{P}_trials"))

with common.explained(what="This algorithm cannot be built"):
    alg = rl.Algorithm("yours", adv, agg, None if est == "none" else est, place, level,
                       beta if est != "none" else 0.0, epochs=4 if clip else 1,
                       clip_low=lo if clip else None, clip_high=hi if clip else None, dynamic_sampling=dapo,
                       overlong=rl.preset("dapo").overlong if dapo else None,
                       ratio_level="sequence" if gspo else "token")
st.info(alg.describe())


@st.cache_data(max_entries=64, show_spinner=False)
def table_row(alg: rl.Algorithm, reward: str, G: int, trials: int) -> dict:
    return rl.update_table(rl_tasks.prompted(reward=reward), G, algorithms=[alg], trials=trials)[0]


def _atlas_task():
    return rl_tasks.prompted((0.3,), vocab=2, length=3, reward="prefix")


@st.cache_data(max_entries=64, show_spinner=False)
def fixed_point(alg: rl.Algorithm, G: int) -> tuple[dict, dict]:
    dists = rl.atlas(_atlas_task(), [alg.with_(name="fixed point")], min(G, 4), beta=alg.beta if alg.beta > 0 else 0.5,
                     steps=FP_STEPS, optimizer="adam", lr=0.1, tol=FP_TOL, check_every=500)
    names = list(dists)
    kls = {"RLHF": kl(dists["fixed point"], dists[names[0]]), "k3": kl(dists["fixed point"], dists[names[1]])}
    return kls, dists


def _legend_below(fig):
    """The atlas's legend moved under the axes: inside them it covered the small bars on the right."""
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            handles, labels = leg.legend_handles, [t.get_text() for t in leg.get_texts()]
            leg.remove()
            fig.legend(handles, labels, loc="outside lower center", ncols=1)
    return fig


@st.cache_data(max_entries=64, show_spinner=False)
def ends(alg: rl.Algorithm, G: int, theme: str) -> tuple[dict, bytes]:
    kls, dists = fixed_point(alg, G)
    return kls, common.png(lambda: _legend_below(plots_rl.atlas(_atlas_task().space, dists, {"fixed point": kls})),
                           theme)


st.subheader("The expected update against the exact gradient")
with common.explained(what="The expected update cannot be computed"), st.spinner("Computing the expected update…"):
    row = table_row(alg, reward, G, trials)
m = st.columns(4)
m[0].metric("cos(E[update], exact gradient)", f"{row['cosine']:.4f}")
m[1].metric("scale ⟨u, g⟩/‖g‖²", f"{row['scale']:.4f}")
m[2].metric("residual ‖u − scale·g‖/‖g‖", f"{row['residual']:.2e}")
m[3].metric("noise floor / ‖g‖", f"{row['noise']:.2e}" if row["mode"] == "mc" else "exact")
threshold = f"{rl.FOLLOWS_THRESHOLD:g} noise floors" if row["mode"] == "mc" else "1e-9"
how = "exactly" if row["mode"] == "exact" else f"from {row['trials']:,} sampled batches"
st.markdown(f"**{'Follows' if row['follows'] else 'Does not follow'}** the exact gradient of E[r] − β KL(π‖a) up to a "
            f"step size (residual {row['residual']:.2e}, threshold {threshold}; computed "
            f"{how}).")

st.subheader("Where training ends")
st.caption(f"One prompt (base success 0.3, two tokens then EOS) whose reward reads the leading tokens; Adam on the "
           f"exact expected update until ‖E[update]‖ < {FP_TOL:.0e} (at most {FP_STEPS} steps, restarted every 500).")
if adv == "reinforce_pp" and alg.kl_in_reward:
    st.warning("With the KL in the reward, REINFORCE++'s batch normalisation sees one reward value per response, so "
               "its expected update is Monte Carlo only (rl.fixed_point(mode='mc') measures its fixed point, too slowly "
               "for this page): move the KL to the loss, or pick another advantage, to see a fixed point.")
else:
    with common.explained(stop=False, what="The fixed point cannot be computed"), st.spinner("Training to the fixed point…"):
        kls, png = ends(alg, G, common.theme())
        common.show_png(png)
        closest = min(kls, key=kls.get)
        st.markdown(f"KL(π*‖RLHF target) = {kls['RLHF']:.2e}, KL(π*‖β·a/(Λ − r)) = {kls['k3']:.2e}: "
                    + (f"it ends at the {'RLHF target' if closest == 'RLHF' else 'k3 closed form'} (below {ENDS_AT:.0e})."
                       if kls[closest] < ENDS_AT else f"it ends at neither (both above {ENDS_AT:.0e})."))
