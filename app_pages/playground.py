"""Playground: one target, several f-divergences, trained side by side from the base model."""

import math

import streamlit as st

from app_pages import common
from toyfdiv import experiments, optim, plots
from toyfdiv.estimators import BASELINES, Z_OPTIONS
from toyfdiv.training import SCHEDULES

P = "pg"
DEFAULT_DIVS = ["reverse_kl", "forward_kl", "js"]
DEFAULT_BETA = 0.3  # a sharp target: a bigram policy cannot fit it, so the divergences' minimisers differ
DEFAULT_POLICY = "ngram"  # limited capacity, like a real language model
POLICY_HELP = {
    "autoregressive": "one softmax per prefix: can represent any distribution (starts exactly at a)",
    "tabular": "one logit per sequence: a softmax over the whole space (starts exactly at a)",
    "ngram": "one softmax per context of k−1 tokens: limited capacity, the minimisers of different f differ",
    "tinylm": "a tiny numpy GRU fitted to a first: limited capacity, like a real language model",
}

st.title("Playground: RLHF and GDC are one method")
st.markdown(
    "Pick a target **p**, then minimise a few f-divergences **D_f(π‖p)** from the same base model **a**. "
    "Reverse KL is RLHF, forward KL is GDC/DPG, Jensen–Shannon sits in between. Press **Train** and compare: "
    "with the default bigram policy (too small to fit p exactly) reverse KL is *mode-seeking* (low entropy, "
    "high reward) and forward KL *mass-covering* (high entropy). Switch the policy to *autoregressive* (it can "
    "represent any p) and all three reach the same p.")
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
    tgt_s = common.target_controls(P, space["task"], beta=DEFAULT_BETA)
    st.header("Policy")
    common.init(f"{P}_policy", DEFAULT_POLICY)
    policy = st.selectbox("Policy family", list(experiments.POLICIES), key=f"{P}_policy",
                          help="The model πθ that is trained; every family starts from the base model a")
    st.caption(POLICY_HELP[policy])
    policy_options = {}
    if policy == "ngram":
        common.init(f"{P}_order", 2)
        policy_options["order"] = int(st.slider("n-gram order k", *common.PG["order"], key=f"{P}_order",
                                                help="Context of k−1 tokens; k = 1 is a unigram model"))
    if policy == "tinylm":
        for key, label, hlp in (("n_embd", "TinyLM embedding size", "Size of each token's embedding"),
                                ("n_hidden", "TinyLM hidden size", "Size of the GRU state: the capacity knob"),
                                ("fit_steps", "TinyLM pre-fit steps", "Adam steps fitting the GRU to a first")):
            common.init(f"{P}_{key}", common._POLICY_DEFAULTS[key])
            policy_options[key] = int(st.slider(label, *common.PG[key], key=f"{P}_{key}", help=hlp))
    st.header("Divergences")
    divs = common.divergence_options(P, "divs", DEFAULT_DIVS)
    st.header("Estimator and optimiser")
    common.init(f"{P}_estimator", "exact")
    estimator = st.radio("Gradient", ["exact", "sampled"], key=f"{P}_estimator", horizontal=True,
                         help="exact: the f-DPG gradient summed over all N sequences; sampled: Monte-Carlo, "
                              "as disco/TRL do at scale")
    estimator_options = {}
    if estimator == "sampled":
        common.init(f"{P}_n", 64)
        common.init(f"{P}_baseline", "mean")
        common.init(f"{P}_z", "running")
        estimator_options = dict(
            n=int(st.select_slider("Samples per step n", common.PG["n"], key=f"{P}_n",
                                   help="Batch size of the sampled gradient")),
            baseline=st.selectbox("Baseline", list(BASELINES), key=f"{P}_baseline",
                                  help="Subtracted from the pseudo-reward to cut variance (dpg: Korbak et al.'s "
                                       "B = Ẑπ/q)"),
            z=st.selectbox("Partition function Z", list(Z_OPTIONS), key=f"{P}_z",
                           help="exact Z, or estimated by importance sampling from this batch / a running "
                                "average"))
    common.init(f"{P}_optimizer", "adam")
    common.init(f"{P}_schedule", "constant")
    common.init(f"{P}_steps", 200)
    common.init(f"{P}_lr", 0.1)
    common.init(f"{P}_seed", 0)
    optimizer = st.selectbox("Optimiser", optim.names(), key=f"{P}_optimizer",
                             help="Adam or plain SGD on θ")
    schedule = st.selectbox("Learning-rate schedule", list(SCHEDULES), key=f"{P}_schedule",
                            help="constant, cosine decay to 0, or exponential decay to lr/1000")
    steps = int(st.slider("Steps", *common.PG["steps"], key=f"{P}_steps",
                          help="Number of gradient updates per divergence"))
    lr = float(st.number_input("Learning rate", *common.PG["lr"], key=f"{P}_lr", step=0.01, format="%.4g",
                               help="Step size η of the optimiser"))
    seed = int(st.number_input("Seed", *common.PG["seed"], key=f"{P}_seed", step=1,
                               help="Seeds the sampler and random initialisations (exact runs are deterministic)"))

settings = dict(space, **tgt_s, policy=policy, policy_options=policy_options, divergences=divs,
                estimator=estimator, estimator_options=estimator_options, optimizer=optimizer,
                schedule=schedule, steps=steps, lr=lr, seed=seed)

# ---------------------------------------------------------------------------- share settings
with st.sidebar:
    st.header("Share settings")
    with common.explained(stop=False, what="These settings cannot be saved"):
        if divs:
            text = common.configs_json(common.playground_configs(settings))
            st.download_button("Download settings (Config JSON)", text, file_name="toyfdiv_config.json",
                               mime="application/json", key=f"{P}_download",
                               help="The CLI's Config JSON (an array, one Config per divergence, if several); "
                                    "run it with `python -m toyfdiv run toyfdiv_config.json`")

    def _load(source_key: str) -> None:
        value = st.session_state.get(source_key)
        if value is None or value == "":
            return
        data = value.getvalue() if hasattr(value, "getvalue") else value
        try:
            state, notes = common.parse_settings(data)
        except ValueError as err:
            st.session_state[f"{P}_upload_error"] = str(err)
            return
        common.forget(*[k for k in list(st.session_state) if k.startswith(f"{P}_moment")])
        st.session_state.update(state)
        st.session_state[f"{P}_upload_notes"] = notes + ["Settings loaded: press Train to run them."]

    st.file_uploader("Upload settings", type=["json"], key=f"{P}_upload", on_change=_load, args=(f"{P}_upload",),
                     help="A Config JSON written by this page or the CLI; it is validated, nothing in it is run")
    with st.expander("…or paste Config JSON"):
        st.text_area("Config JSON", key=f"{P}_paste", height=120,
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
ref = experiments.target_row(target)
st.subheader("The target p")
m = st.columns(5)
m[0].metric("Sequences N", f"{task.space.size:,}", help="Every sequence of the space, enumerated")
m[1].metric("log Z", f"{target.log_z:.4f}", help="Log partition function of the target")
m[2].metric("KL(p‖a), nats", f"{ref['kl_from_base']:.4f}", help="How far the target is from the base model")
m[3].metric(f"E_p[{ref['alignment_key']}]", f"{ref['alignment']:.4f}", help="What the target asks for, under p")
m[4].metric("H(p), nats", f"{ref['entropy']:.4f}", help="Entropy of the target: its diversity")
if target.lambdas is not None:
    st.caption("λ* = [" + ", ".join(f"{v:.4f}" for v in target.lambdas) + "] (solved exactly: E_p[φ] = μ̄)")

# ---------------------------------------------------------------------------- training
key = common.configs_json(common.playground_configs(settings)) if divs else ""
label = ", ".join(plots.divergence_label(d) for d in divs) or "nothing selected"
clicked = st.button(f"Train: {label}", type="primary", key=f"{P}_train", disabled=not divs,
                    help="Train one policy per selected divergence from the base model, with a progress bar")
if not divs:
    st.info("Pick at least one divergence in the sidebar.")
if clicked and divs:
    bar = st.progress(0.0, text="Training…")
    last = [-1]

    def progress(done: int, total: int) -> None:
        pct = int(100 * done / max(total, 1))
        if pct != last[0]:
            last[0] = pct
            bar.progress(pct / 100, text=f"Training… {done}/{total} updates")

    with common.explained(stop=False, what="Training failed"):
        histories = experiments.compare(
            task, tgt_s["kind"], divs, policy=policy, steps=steps, lr=lr, optimizer=optimizer, schedule=schedule,
            estimator=estimator, seed=seed, callback=progress,
            target_options=dict(beta=tgt_s["beta"], epsilon=tgt_s["epsilon"],
                                moments=None if tgt_s["moments"] is None else list(tgt_s["moments"])),
            policy_options=policy_options, **estimator_options)
        st.session_state[f"{P}_result"] = dict(key=key, histories=histories, target=target, task=task, png={})
    bar.empty()

result = st.session_state.get(f"{P}_result")
if result is not None and result["task"].space != task.space:
    result = None
common.init(f"{P}_topk", 10)
if result is None:
    st.info("Press **Train** to fit one policy per divergence (about a second each at the defaults). "
            "Below: the base model a and the target p on their most likely sequences.")
    topk = st.slider("Sequences shown", 3, 30, key=f"{P}_topk", help="How many of the most likely sequences to show")
    common.show_png(common.cached_distributions(space["task"], space["length"], space["eos"], tgt_s["kind"],
                                                tgt_s["beta"], tgt_s["epsilon"], tgt_s["moments"], topk))
else:
    if result["key"] != key:
        st.warning("The settings changed since this run: the results below are for the previous settings. "
                   "Press **Train** to update them.")
    histories = result["histories"]
    st.subheader("Summary: where each divergence lands")
    rows = experiments.summary_table(histories)
    target_rowd = experiments.target_row(result["target"])
    finite = [r for r in rows if math.isfinite(r["entropy"])]
    if len(finite) > 1:
        lo = min(finite, key=lambda r: r["entropy"])
        hi = max(finite, key=lambda r: r["entropy"])
        st.markdown(f"**Read it:** lowest entropy H(π) = {lo['entropy']:.3f} nats for "
                    f"**{plots.divergence_label(lo['divergence'])}** (the most mode-seeking), highest "
                    f"{hi['entropy']:.3f} nats for **{plots.divergence_label(hi['divergence'])}** (the most "
                    f"mass-covering); the target p itself has {target_rowd['entropy']:.3f} nats. Sampled 100 "
                    f"times, they give {lo['distinct_100']:.0f} and {hi['distinct_100']:.0f} different sequences "
                    f"on average (p: {target_rowd['distinct_100']:.0f}).")
    rows.append(dict(divergence="target p (a perfect minimiser)", alignment_key=target_rowd["alignment_key"],
                     alignment=target_rowd["alignment"], kl_from_base=target_rowd["kl_from_base"],
                     entropy=target_rowd["entropy"], distinct_100=target_rowd["distinct_100"],
                     final_divergence=0.0))
    common.table(common.frame(rows, {"divergence": "run", "final_divergence": "own D_f(π‖p) (nats)",
                                     "alignment": f"E_π[{rows[0]['alignment_key']}]",
                                     "kl_from_base": "KL(π‖a) (nats)", "entropy": "H(π) (nats)",
                                     "distinct_100": "distinct in 100 samples", "steps": "steps",
                                     "seconds": "seconds"}),
                 key=f"{P}_summary", sci=("own D_f(π‖p) (nats)",))
    st.caption("Every run also measured against every divergence (nats); the smallest value of each column is "
               "highlighted: each f wins on its own column.")
    cross = [dict(run=name, **{k.split("/", 1)[1]: v for k, v in h.final().items() if k.startswith("divergence/")})
             for name, h in histories.items()]
    cross_df = common.frame(cross)
    common.table(cross_df, key=f"{P}_cross", sci=tuple(cross_df.columns),
                 highlight_min=tuple(c for c in cross_df.columns if c != "run"))
    cache = result["png"]
    if "curves" not in cache:
        cache["curves"] = common.png(plots.training_curves(
            histories, target_values={"alignment": target_rowd["alignment"], "entropy": target_rowd["entropy"],
                                      "kl_from_base": target_rowd["kl_from_base"]}))
    st.subheader("Training curves")
    common.show_png(cache["curves"])
    st.subheader("Base vs target vs each trained policy")
    topk = st.slider("Sequences shown", 3, 30, key=f"{P}_topk", help="How many of the most likely sequences to show")
    if ("dists", topk) not in cache:
        finals = experiments.final_policies(result["task"], result["target"], histories)
        ordered = {"target": finals.pop("target"), "base": finals.pop("base"), **finals}
        cache[("dists", topk)] = common.png(plots.distributions(result["task"].space, ordered, k=topk))
    common.show_png(cache[("dists", topk)])
