"""Playground: one target, several f-divergences, trained side by side from the base model."""

import time

import streamlit as st

from app_pages import charts, common, pg_results
from app_pages import state as S
from app_pages.links import lesson_line
from toyfdiv import divergences, optim, plots
from toyfdiv.estimators import BASELINES, Z_OPTIONS
from toyfdiv.training import SCHEDULES

P = "pg"
POLICY_HELP = {
    "autoregressive": "one softmax per prefix: can represent any distribution (starts exactly at a)",
    "tabular": "one logit per sequence: a softmax over the whole space (starts exactly at a)",
    "ngram": "one softmax per context of k−1 tokens: limited capacity, the minimisers of different f differ",
    "tinylm": "a tiny numpy GRU fitted to a first: limited capacity, like a real language model",
}
SMOOTH_EPSILON = 0.01  # the one-click fix for a target with zeros
PROGRESS_SECONDS = 0.1  # the progress bar moves at most this often

st.title("Playground: RLHF and GDC are one method")
st.markdown(
    "Pick a target **p**, then minimise a few f-divergences **D_f(π‖p)** from the same base model **a**. "
    "Reverse KL is RLHF, forward KL is GDC/DPG, Jensen–Shannon sits in between. Press **Train** and compare "
    "their entropy, their reward and how many distinct sequences they keep.")
lesson_line("app_pages/playground.py")
c1, c2, c3 = st.columns(3)
with c1:
    common.formula(r"p(x) = \frac{a(x)\,e^{r(x)/\beta}}{Z}", "korbak",
                   note="RLHF's optimum: maximise E[r] − β KL(π‖a) ⇔ minimise KL(π‖p)")
with c2:
    common.formula(r"p(x) = \frac{a(x)\,b(x)\,e^{\lambda\cdot\phi(x)}}{Z}", "gdc",
                   note="GDC: constraints as an energy-based model, reached with forward KL")
with c3:
    common.formula(r"\nabla_\theta D_f = \mathbb{E}_{\pi_\theta}\!\left[f'\!\left(\tfrac{\pi_\theta}{p}\right)"
                   r"\nabla_\theta \log \pi_\theta\right]", "fdpg", note="f-DPG: one gradient for every f")

# ---------------------------------------------------------------------------- settings (sidebar)
with st.sidebar:
    st.header("Space and target")
    space = common.space_controls(P)
    tgt_s = common.target_controls(P, space["task"])
    st.header("Policy")
    policy = common.choice("Policy family", f"{P}_policy", "The model πθ that is trained; every family starts "
                           "from the base model a")
    st.caption(POLICY_HELP[policy])
    if policy == "ngram":
        common.slider("n-gram order k", f"{P}_order", "Context of k−1 tokens; k = 1 is a unigram model")
    if policy == "tinylm":
        common.slider("TinyLM embedding size", f"{P}_n_embd", "Size of each token's embedding")
        common.slider("TinyLM hidden size", f"{P}_n_hidden", "Size of the GRU state: the capacity knob")
        common.slider("TinyLM pre-fit steps", f"{P}_fit_steps", "Adam steps fitting the GRU to a first")
    st.header("Divergences")
    divs = common.divergence_options(P, "divs")
    st.header("Training")
    estimator = common.choice("Gradient", f"{P}_estimator", "exact: the f-DPG gradient summed over all N "
                              "sequences; sampled: Monte-Carlo, as disco/TRL do at scale", widget=st.radio,
                              horizontal=True)
    if estimator == "sampled":
        common.choice("Samples per step n", f"{P}_n", "Batch size of the sampled gradient", widget=st.select_slider)
        common.choice("Baseline", f"{P}_baseline", "Subtracted from the pseudo-reward to cut variance (dpg: "
                      f"−f′(1), Korbak et al.); one of {', '.join(BASELINES)}")
        common.choice("Partition function Z", f"{P}_z", "exact Z, or estimated by importance sampling from this "
                      f"batch / a running average ({', '.join(Z_OPTIONS)})")
    common.slider("Steps", f"{P}_steps", "Number of gradient updates per divergence")
    common.number_input("Learning rate", f"{P}_lr", "Step size η of the optimiser", step=0.01, format="%.4g")
    with common.lazy_section("Optimiser, schedule, recording, seed", f"{P}_more") as shown:
        if shown:
            common.choice("Optimiser", f"{P}_optimizer", f"One of {', '.join(optim.names())} on θ")
            common.choice("Learning-rate schedule", f"{P}_schedule", f"{', '.join(SCHEDULES)}: constant, cosine "
                          "decay to 0, or exponential decay to lr/1000")
            common.choice("Record metrics every k steps", f"{P}_record_every", "Every divergence, the entropy and "
                          "the reward are measured every k updates (and at the end); a smaller k draws finer curves "
                          "and trains more slowly", widget=st.select_slider)
            common.number_input("Seed", f"{P}_seed", "Seeds the sampler and random initialisations (exact runs are "
                                "deterministic)", step=1)

with common.explained(what="These settings cannot be run"):
    configs = common.configs(st.session_state) if divs else []
key = common.configs_json(configs) if configs else ""

# ---------------------------------------------------------------------------- share settings
with st.sidebar:
    st.header("Share settings")
    st.caption("The address bar holds every setting: bookmark it or send it.")

    def _load(source_key: str) -> None:
        value = st.session_state.get(source_key)
        if value is None or value == "":
            return
        data = value.getvalue() if hasattr(value, "getvalue") else value
        try:
            new, notes = common.parse_settings(data)
        except ValueError as err:
            st.session_state[f"{P}_upload_error"] = str(err)
            return
        common.forget(*[k for k in list(st.session_state) if k.startswith(f"{P}_moment")])
        st.session_state.update(new)
        st.session_state[f"{P}_upload_notes"] = notes + ["Settings loaded: press Train to run them."]

    with common.lazy_section("Download or upload a Config JSON", f"{P}_share") as shown:
        if shown:
            if configs:
                st.download_button("Download settings (Config JSON)", key, file_name="toyfdiv_config.json",
                                   mime="application/json", key=f"{P}_download",
                                   help="The CLI's Config JSON (an array, one Config per divergence, if several); "
                                        "run it with `python -m toyfdiv run toyfdiv_config.json`")
            st.file_uploader("Upload settings (a Config JSON under 64 KB)", type=["json"], key=f"{P}_upload",
                             on_change=_load, args=(f"{P}_upload",),
                             help="A Config JSON written by this page or the CLI, at most 64 KB; it is validated "
                                  "against the widgets' ranges, nothing in it is run")
            with st.expander("…or paste Config JSON"):
                st.text_area("Config JSON", key=f"{P}_paste", height=120, max_chars=S.MAX_UPLOAD_BYTES,
                             help="Paste the text of a Config JSON and press Load")
                st.button("Load", key=f"{P}_load", on_click=_load, args=(f"{P}_paste",),
                          help="Validate the pasted settings and fill in the controls")
    if f"{P}_upload_error" in st.session_state:
        st.error(f"**Settings rejected, nothing changed.** {st.session_state.pop(f'{P}_upload_error')}")
    for note in st.session_state.pop(f"{P}_upload_notes", []):
        st.info(note)

# ---------------------------------------------------------------------------- the target
n = common.check_size(space["task"], space["length"], space["eos"])
with common.explained(what="This target cannot be built"):
    task = common.get_task(space["task"], space["length"], space["eos"])
    target, target_warnings = common.get_target(space["task"], space["length"], space["eos"], tgt_s["kind"],
                                                tgt_s["beta"], tgt_s["epsilon"], tgt_s["moments"])
common.show_warnings(target_warnings)
st.subheader("The target p")
st.markdown(common.task_story(task))
pg_results.target_metrics(task, target)

# ---------------------------------------------------------------------------- training
label = ", ".join(plots.divergence_label(d) for d in divs) or "nothing selected"
clicked = st.button(f"Train: {label}", type="primary", key=f"{P}_train", disabled=not configs,
                    help="Train one policy per selected divergence from the base model, with a progress bar")
if not divs:
    st.info("Pick at least one divergence in the sidebar.")


def _smooth() -> None:
    """The one-click fix: smooth b (ε > 0) and train again."""
    st.session_state[f"{P}_epsilon"] = SMOOTH_EPSILON
    st.session_state[f"{P}_autotrain"] = True


clicked = clicked or st.session_state.pop(f"{P}_autotrain", False)


if clicked and configs:
    bar = st.empty()  # a progress bar while a run is computed (a run trained before is found at once)
    histories, failures = {}, {}
    trainable = []
    for c in configs:
        start = divergences.get(c.divergence).value(task.log_a, target.log_probs)
        if start == float("inf"):
            failures[c.divergence] = "infinite"
        else:
            trainable.append(c)
    moved = [0.0]  # when the bar last moved: a few updates a second, not one message per step
    for j, c in enumerate(trainable):
        def progress(done: int, total: int, j: int = j) -> None:
            if done == total or time.perf_counter() - moved[0] >= PROGRESS_SECONDS:
                moved[0] = time.perf_counter()
                k = len(trainable)
                bar.progress(min(1.0, (j + done / max(total, 1)) / k),
                             text=f"Training {c.divergence}… {done}/{total} updates ({j + 1} of {k} runs)")
        try:
            histories[c.divergence] = pg_results.trained(c.to_json(), progress)
        except ValueError as err:
            failures[c.divergence] = str(err)
    bar.empty()
    st.session_state[f"{P}_result"] = dict(key=key, configs=configs, histories=histories, failures=failures,
                                           target=target, task=task)

result = st.session_state.get(f"{P}_result")
if result is None:
    st.info("Press **Train** to fit one policy per divergence (settings trained before, the defaults included, "
            "appear at once). Below: the base model a and the target p on their most likely sequences (log scale).")
    topk = common.slider("Sequences shown", f"{P}_topk", "How many of the most likely sequences to show")
    charts.show(charts.bars(task.space, {"target": target.log_probs, "base": task.log_a}, k=topk,
                            title=f"Top {topk} sequences of the target p, and their probability under a",
                            theme=common.theme()))
else:
    stale = result["key"] != key
    if stale:
        st.warning("**Stale: the settings changed since this run.** Everything below — table, sentences and "
                   "figures — belongs to the previous settings (its target p included). Press **Train** to update.",
                   icon=":material/history:")
    pg_results.show(result, on_smooth=_smooth, epsilon=SMOOTH_EPSILON)
