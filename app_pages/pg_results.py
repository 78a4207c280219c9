"""The Playground's results: target metrics, per-run outcomes (and what cannot be trained, and why),
sentences generated from the numbers (:mod:`toyfdiv.claims`), the training movie, the whole space,
and the sequence inspector.  Everything shown comes from one stored run (stale means stale)."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from app_pages import charts, common
from toyfdiv import claims, experiments, metrics, plots, sequences
from toyfdiv import config as _config

P = "pg"
#: How long the movie shows each of its frames (the browser draws a frame in well under this).
PLAY_FRAME_SECONDS = 0.25
ALIGN_LABEL = {"reward": "E_p[r] (reward)", "constraint": "P_p[b = 1]"}


def _align_label(key: str, where: str = "p") -> str:
    if key == "reward":
        return f"E_{where}[r], reward"
    if key == "constraint":
        return f"P_{where}(b = 1)"
    if key.startswith("moment/"):
        return f"E_{where}[{key.split('/', 1)[1]}]"
    return f"E_{where}[{key}]"


def target_metrics(task, target) -> None:
    """N, log Z, KL(p‖a), H(p), and every alignment of the target (each moment, the reward, b)."""
    m = metrics.evaluate(target.log_probs, target, divergences=())
    align = {k.split("/", 1)[1]: v for k, v in m.items() if k.startswith("alignment/")}
    row1 = st.columns(4)
    row1[0].metric("Sequences N", f"{task.space.size:,}", help="Every sequence of the space, enumerated")
    row1[1].metric("log Z", f"{target.log_z:.4f}", help="Log partition function of the target")
    row1[2].metric("KL(p‖a), nats", f"{m['kl_from_base']:.4f}", help="How far the target is from the base model")
    row1[3].metric("H(p), nats", f"{m['entropy']:.4f}", help="Entropy of the target: its diversity")
    if align:
        row2 = st.columns(max(4, len(align)))
        for col, (k, v) in zip(row2, align.items()):
            col.metric(_align_label(k), f"{v:.4f}", help=f"What the target asks for, under p ({k})")
    if target.lambdas is not None:
        st.caption("λ* = [" + ", ".join(f"{v:.4f}" for v in target.lambdas) + "] (solved exactly: E_p[φ] = μ̄)")


def _failure(name: str, why: str, result: dict, on_smooth, epsilon: float) -> None:
    target, task = result["target"], result["task"]
    if why != "infinite":
        st.error(f"**{plots.divergence_label(name)} ({name}) stopped.** {why}")
        return
    zero = ~np.isfinite(target.log_probs)  # (N,) where p(x) = 0
    a_mass = metrics.expectation(task.log_a, zero.astype(float))
    st.error(f"**{plots.divergence_label(name)} ({name}) cannot start: D_f(a‖p) = ∞.** The target is 0 on "
             f"{int(zero.sum()):,} of {zero.size:,} sequences, which carry {a_mass:.3f} of the base model's mass. "
             f"{name} charges π(x)·lim f(t)/t = ∞ wherever π(x) > 0 = p(x) — and every policy that starts at a "
             "puts mass there. This is the lesson, not a bug: RLHF's reverse KL cannot reach a target with zeros "
             "from a full-support model; GDC's forward KL only looks where p > 0.",
             icon=":material/block:")
    kind = result["configs"][0].kind
    if kind in ("pointwise", "hybrid"):
        st.button(f"Smooth b (ε = {epsilon:g}) and train again", key=f"{P}_smooth_{name}", on_click=on_smooth,
                  help="b(x) = ε instead of 0 where the constraint fails: every divergence becomes finite")


@st.cache_resource(max_entries=32, show_spinner=False)
def trained(config_json: str, _progress=None):
    """``config.run`` of one Config, kept for the server's lifetime and shared by every session.

    Every run is a function of its Config alone (exact runs are deterministic; a sampled run or a
    TinyLM fit is seeded by ``seed``), so Train on settings already trained answers at once: a
    lecturer going back and forth between scenarios, or the default settings, which the server
    trains while it warms up (:mod:`app_pages.warmup`).  ``_progress(k, steps)`` is called while a
    run is computed, not when it is found here.  Treat the History as read-only (it is shared)."""
    return _config.run(_config.Config.from_json(config_json), callback=_progress)


@st.cache_resource(max_entries=64, show_spinner=False)
def _policy_at(config_json: str, step: int) -> np.ndarray:
    """log π after ``step`` updates of the run (the same run cut short: exact with a constant schedule)."""
    c = _config.Config.from_json(config_json)
    return _config.run(c.replace(steps=step, record_every=max(1, step))).policy.log_probs()


#: The results, one view at a time (like the explorer's sections): only the chosen view is computed and
#: drawn, so Train shows its summary at once (and a view is a screen or two, not one long page).
VIEWS = {"summary": "Summary tables", "movie": "Training curves and movie", "space": "The whole space, one sequence"}


def show(result: dict, *, on_smooth, epsilon: float) -> None:
    """Every failure (and its fix), then the chosen view of the stored run."""
    histories, failures = result["histories"], result["failures"]
    for name, why in failures.items():
        _failure(name, why, result, on_smooth, epsilon)
    if not histories:
        return
    view = common.choice("Show", f"{P}_view", "One view of the results at a time; only the chosen one is drawn",
                         widget=st.segmented_control, format_func=VIEWS.get, required=True)
    {"summary": _summary, "movie": _movie, "space": _whole_space}[view](result, common.theme())


def _summary(result: dict, theme: str) -> None:
    """Where each run lands: sentences from the numbers, the summary table and the cross table."""
    histories, target, task = result["histories"], result["target"], result["task"]
    st.subheader("Summary: where each run lands")
    rows = experiments.summary_table(histories)
    ref = experiments.target_row(target)
    st.markdown("**Read it:** " + claims.entropy_extremes(
        {plots.divergence_label(r["divergence"]): r["entropy"] for r in rows}, ref["entropy"])[1]
        if len(rows) > 1 else "")
    for r in rows:
        log_pi = histories[r["divergence"]].policy.log_probs()
        top = int(np.argmax(log_pi))
        verdict, sentence = claims.concentration(
            {"pi": float(np.exp(log_pi[top])), "p": float(np.exp(target.log_probs[top]))},
            sequences.rank(target.log_probs, top), plots.divergence_label(r["divergence"]), task.space.decode(top))
        if verdict == "collapsed":
            st.markdown(sentence)
    key = rows[0]["alignment_key"]
    table_rows = [dict(r, run=plots.divergence_label(r["divergence"])) for r in rows]
    table_rows.append(dict(run="target p", alignment=ref["alignment"], kl_from_base=ref["kl_from_base"],
                           entropy=ref["entropy"], distinct_100=ref["distinct_100"], final_divergence=0.0))
    common.table(common.frame(table_rows, {"run": "run", "final_divergence": "own D_f(π‖p)",
                                           "alignment": _align_label(key, "π"), "kl_from_base": "KL(π‖a)",
                                           "entropy": "H(π)", "distinct_100": "distinct in 100",
                                           "seconds": "s"}),
                 key=f"{P}_summary", sci=("own D_f(π‖p)",))
    st.caption("Divergences and entropies in nats; “distinct in 100”: the expected number of different sequences "
               "in 100 samples; s: seconds of training.")
    cross = {h.divergence: {k.split("/", 1)[1]: v for k, v in h.final().items() if k.startswith("divergence/")}
             for h in histories.values()}
    verdicts, sentence = claims.column_winners(cross)
    st.markdown("**Every run measured against every divergence** (nats; the smallest of each column highlighted). "
                + sentence)
    cross_df = common.frame([dict(run=name, **row) for name, row in cross.items()])
    common.table(cross_df, key=f"{P}_cross", sci=tuple(c for c in cross_df.columns if c != "run"),
                 highlight_min=tuple(c for c in cross_df.columns if c != "run"))


def _distributions(result: dict, step: int | None = None) -> dict[str, np.ndarray]:
    """{"target": log p, "base": log a, f: log π_f}, each run's policy after ``step`` updates (None: at its
    end) — the target first, as the bars rank the sequences by the first distribution."""
    histories = result["histories"]
    out = experiments.final_policies(result["task"], result["target"], histories)
    if step is not None and step != int(result["configs"][0].steps):  # the same run cut short
        out.update({c.divergence: _policy_at(c.to_json(), step) for c in result["configs"]
                    if c.divergence in histories})
    return {"target": out.pop("target"), "base": out.pop("base"), **out}


def _movie(result: dict, theme: str) -> None:
    """The four training curves with a cursor, and the top-k bars at the cursor's step (▶ plays them)."""
    histories, target, task = result["histories"], result["target"], result["task"]
    ref = experiments.target_row(target)
    steps = int(result["configs"][0].steps)
    st.subheader("Training as a movie")
    constant = result["configs"][0].schedule == "constant"
    common.init(f"{P}_frame", steps)
    if not 0 <= st.session_state[f"{P}_frame"] <= steps:
        st.session_state[f"{P}_frame"] = steps
    frame = int(st.slider("Step", 0, steps, key=f"{P}_frame", step=max(1, steps // 20),
                          help="Move through training: the bars and the cursor on the curves follow"
                          if constant else "Only the final step is exact for a decaying schedule",
                          disabled=not constant))
    if st.button("▶ Play", key=f"{P}_play", disabled=not constant, help="Run through the recorded steps"):
        st.session_state[f"{P}_playing"] = True
    targets_ = {"alignment": ref["alignment"], "entropy": ref["entropy"], "kl_from_base": ref["kl_from_base"]}
    charts.show_panels(charts.training_panels(histories, target_values=targets_, cursor=frame, theme=theme))
    topk = common.slider("Sequences shown", f"{P}_topk", "How many of the most likely sequences to show")
    playing = st.session_state.pop(f"{P}_playing", False)
    holder = st.empty()
    frames = sorted({int(round(x)) for x in np.linspace(0, steps, 11)}) if playing else [frame]
    for fr in frames:
        with holder.container():
            charts.show(charts.bars(task.space, _distributions(result, fr), k=topk, theme=theme,
                                    title=f"Top {topk} sequences of p, after step {fr} of {steps}"))
        if playing:
            time.sleep(PLAY_FRAME_SECONDS)


def _whole_space(result: dict, theme: str) -> None:
    """Sorted probabilities of a, p and each π over all N sequences, and the sequence inspector."""
    target, task = result["target"], result["task"]
    st.subheader("The whole space, and one sequence")
    finals = _distributions(result)
    charts.show(charts.whole_space(finals, theme=theme))
    best = task.space.decode(int(np.argmax(target.log_probs)))
    if task.space.size <= 5000:
        texts = task.space.decode_all()
        if st.session_state.get(f"{P}_inspect") not in texts:
            st.session_state[f"{P}_inspect"] = best
        pick = st.selectbox("Sequence inspector: pick or type a sentence", texts, key=f"{P}_inspect",
                            help="Its reward, constraint, probability under a, p and each trained π, and its path "
                                 "down the prefix tree")
    else:
        common.init(f"{P}_inspect", best)
        pick = st.text_input("Sequence inspector: type a sentence (tokens separated by spaces)", key=f"{P}_inspect")
    try:
        i = task.space.index(pick)
    except ValueError as err:
        st.error(f"**Not a sequence of this space.** {err}")
        return
    st.markdown(f"**r(x)** = {task.reward.values[i]:g} · **b(x)** = {int(task.constraint.values[i])} · rank under "
                f"p: {sequences.rank(target.log_probs, i):,} of {task.space.size:,}")
    rows = []
    for name, log_p in finals.items():
        path = sequences.token_path(task.space, log_p, i)
        rows.append(dict(model=plots.divergence_label(name), **{"prob": float(np.exp(log_p[i]))},
                         **{f"{t + 1}. {tok}": c for t, (tok, c) in enumerate(path)}))
    st.caption("prob: the model's probability of the whole sequence; then each token's conditional probability "
               "given the tokens before it (their product is prob).")
    common.table(common.frame(rows), key=f"{P}_inspect_table")
