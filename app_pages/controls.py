"""The shared widgets (task, length, target, divergences) and the cached library calls behind them.

Each widget takes its range and default from :data:`app_pages.state.FIELDS`, so the widgets,
the URL, the upload check and the Config mapping can never disagree.
"""

from __future__ import annotations

import warnings

import streamlit as st

from toyfdiv import divergences, experiments, tasks
from toyfdiv.space import SequenceSpace

from app_pages import state as S

APP_MAX_N = S.APP_MAX_N


# ---------------------------------------------------------------------------- widgets from the table
def _field(key: str) -> S.Field:
    S.init(key)
    return S.FIELDS[key]


def slider(label: str, key: str, help: str, *, hi=None, fmt: str | None = None):
    """A slider whose range and default come from the field table (``hi`` narrows the top)."""
    f = _field(key)
    lo, top = f.lo, f.hi if hi is None else hi
    cast = float if f.kind in ("float", "range") else int
    if isinstance(st.session_state[key], (int, float)) and st.session_state[key] > top:
        st.session_state[key] = cast(top)  # e.g. EOS switched off: the longest length that fits
    kw = dict(step=cast(f.step)) if f.step is not None else {}
    if fmt:
        kw["format"] = fmt
    return st.slider(label, cast(lo), cast(top), key=key, help=help, **kw)


def choice(label: str, key: str, help: str, *, widget=st.selectbox, format_func=str, **kw):
    f = _field(key)
    return widget(label, list(f.options), key=key, help=help, format_func=format_func, **kw)


def number_input(label: str, key: str, help: str, **kw):
    f = _field(key)
    return st.number_input(label, f.lo, f.hi, key=key, help=help, **kw)


# ---------------------------------------------------------------------------- tasks and targets
@st.cache_resource(max_entries=24, show_spinner=False)
def get_task(name: str, length: int | None = None, eos: bool | None = None) -> tasks.Task:
    """The catalogue task (immutable, shared between sessions)."""
    return tasks.get(name, length=length, eos=eos)


def task_defaults(name: str) -> dict:
    """The task's own length, EOS, moments and β (from the catalogue)."""
    t = get_task(name)
    return dict(length=t.space.length, eos=t.space.eos is not None, moments=[float(m) for m in t.moments],
                beta=float(t.beta), epsilon=float(t.epsilon), description=t.description,
                vocab=list(t.space.vocab))


def space_size(name: str, length: int, eos: bool) -> int:
    """N for the task's vocabulary at this length, without building the space."""
    return SequenceSpace.size_of(len(task_defaults(name)["vocab"]), length, eos)


def check_size(name: str, length: int, eos: bool, limit: int = APP_MAX_N, what: str = "train interactively") -> int:
    """N, or an ``st.error`` explaining what to change (and stop) if the space is too large for the page."""
    n = space_size(name, length, eos)
    if n > limit:
        fits = [t for t in range(1, length) if space_size(name, t, eos) <= limit]
        fix = (f"Set **Length T to {fits[-1]} or less** (N = {space_size(name, fits[-1], eos):,} at T = {fits[-1]})."
               if fits else "Use a task with a smaller vocabulary.")
        st.error(f"**The space is too large to {what}.** {name!r} with length {length}"
                 f"{' and EOS' if eos else ''} has N = {n:,} sequences; this page enumerates them and allows "
                 f"N ≤ {limit:,}. {fix}")
        st.stop()
    return n


@st.cache_resource(max_entries=48, show_spinner=False)
def get_target(name: str, length: int, eos: bool, kind: str, beta: float | None, epsilon: float | None,
               moments: tuple | None):
    """(target, warnings) for the task's target of this kind (exact; λ* solved here for moments)."""
    task = get_task(name, length, eos)
    opts = dict(beta=beta, epsilon=epsilon, moments=None if moments is None else list(moments))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tgt = experiments.make_target(task, kind, {k: v for k, v in opts.items() if v is not None})
    return tgt, tuple(str(w.message) for w in caught)


# ---------------------------------------------------------------------------- shared controls
KIND_HELP = {
    "rlhf": "RLHF: p = a·exp(r/β)/Z, the optimum of KL-regularised reward maximisation",
    "pointwise": "GDC pointwise constraint: p = a·b/Z, the base model restricted to sequences with b(x) = 1",
    "distributional": "GDC distributional constraints: p = a·exp(λ·φ)/Z with E_p[φ] = μ̄ (λ* solved exactly)",
    "hybrid": "GDC hybrid: p ∝ a·b·exp(λ·φ), a pointwise constraint and moments together",
}
KIND_LABEL = {"rlhf": "RLHF reward (β)", "pointwise": "GDC pointwise constraint",
              "distributional": "GDC distributional (moments)", "hybrid": "GDC hybrid"}


def task_story(task: tasks.Task) -> str:
    """What the task's reward r, constraint b and features φ are (names from the catalogue)."""
    b = task.constraint.name
    out = (f"**The task.** r(x) = {task.reward.name}(x), the reward (RLHF's target tilts a towards high r); "
           f"b(x) = 1 if {b} holds, else 0 (GDC's pointwise constraint); φ(x) = "
           f"({', '.join(task.feature_names)}), the features whose means GDC's distributional constraint sets.")
    if b.startswith("contains(") and b.endswith(")"):
        w = b[len("contains("):-1]
        out += (f" b only checks that the token “{w}” appears, not what the sentence means: a negated "
                f"“not {w}” satisfies it too, so it can rank high under a pointwise target.")
    return out


def _reset_space(prefix: str) -> None:
    """Task changed: its own length, EOS and moments become the defaults again."""
    for k in list(st.session_state):
        if k.startswith((f"{prefix}_length", f"{prefix}_eos", f"{prefix}_moment")):
            del st.session_state[k]


def space_controls(prefix: str) -> dict:
    """Task, length and EOS widgets; returns {"task", "length", "eos", "n"}."""
    task = choice("Task", f"{prefix}_task", "The task catalogue: its vocabulary, corpus, base model a and "
                  "reward/constraints", on_change=_reset_space, args=(prefix,))
    d = task_defaults(task)
    S.init(f"{prefix}_eos")
    eos = bool(st.session_state[f"{prefix}_eos"])
    top = S.max_length(task, eos)
    length = slider("Length T", f"{prefix}_length", f"Positions per sequence (EOS counts); N grows like V^T, so "
                    f"the slider stops at T = {top}, the longest space with N ≤ {APP_MAX_N:,}", hi=top)
    eos = st.checkbox("End-of-sequence token", key=f"{prefix}_eos",
                      help="With EOS sequences have lengths 1…T (ending in </s>); without, all have exactly T tokens")
    n = space_size(task, length, eos)
    own = "" if length == d["length"] else (f" (The catalogue's task has T = {d['length']}; here T = {length}: "
                                             f"sequences of {'up to ' if eos else ''}{length} tokens.)")
    st.caption(f"{d['description']}{own} Vocabulary {', '.join(d['vocab'])} — N = {n:,} sequences")
    return dict(task=task, length=int(length), eos=bool(eos), n=n)


def target_controls(prefix: str, task_name: str, kinds=tasks.TARGET_KINDS) -> dict:
    """Target kind and its parameters; returns {"kind", "beta", "epsilon", "moments"}."""
    kind = choice("Target p", f"{prefix}_kind", "What the policy should become: an RLHF target (rlhf) or a GDC "
                  "energy-based model (pointwise, distributional, hybrid)")
    st.caption(f"**{KIND_LABEL[kind]}.** {KIND_HELP[kind]}")
    out = dict(kind=kind, beta=None, epsilon=None, moments=None)
    if kind == "rlhf":
        out["beta"] = float(slider("β (KL coefficient)", f"{prefix}_beta",
                                   "Small β: p concentrates on high reward; large β: p stays close to a"))
    if kind in ("pointwise", "hybrid"):
        out["epsilon"] = float(slider("ε (smoothing of b)", f"{prefix}_epsilon",
                                      "b(x) = ε instead of 0 for sequences that fail the constraint: ε > 0 keeps "
                                      "reverse KL finite"))
    if kind in ("distributional", "hybrid"):
        task = get_task(task_name)
        moments = []
        for k, fname in enumerate(task.feature_names):
            key = f"{prefix}_moment{k}"
            S.init(key)
            lo, hi = S.moment_range(task_name, k)
            moments.append(float(st.slider(f"μ̄ for {fname}", lo, hi, step=0.05, key=key,
                                           help=f"Target mean E_p[{fname}]; it must lie strictly inside the range "
                                                "the feature takes (else there is no solution)")))
        out["moments"] = tuple(moments)
    return out


def divergence_options(prefix: str, key: str, label: str = "Divergences", *, multi: bool = True,
                       allowed: list[str] | None = None,
                       help: str = "Which f-divergences D_f(π‖p) to minimise, one run each, side by side") -> list[str]:
    """A divergence picker; "alpha" and "gjsd" get a parameter slider. Returns canonical names."""
    f = _field(f"{prefix}_{key}")
    names = list(allowed or f.options)
    if multi:
        picked = st.multiselect(label, names, key=f.key, help=help)
    else:
        picked = [st.selectbox(label, names, key=f.key, help=help)]
    if picked and picked[0] is not None:
        st.caption(" · ".join(short_label(n) for n in picked))
    for name in picked:
        if name == "alpha":
            slider("α of the α-divergence", f"{prefix}_alpha", "α → 0: forward KL (GDC); α → 1: reverse KL (RLHF)")
        elif name == "gjsd":
            slider("p's weight w in the generalised JS", f"{prefix}_gjsd",
                   "Weight of p in the mixture M = w·p + (1−w)·π (called β in the skew-JS literature; not the "
                   "KL coefficient β)")
    from app_pages.config_io import divergence_names
    return divergence_names([p for p in picked if p is not None], st.session_state, prefix)


def short_name(name: str) -> str:
    """A registry key as a short chip: "reverse_kl" → "reverse KL"."""
    return str(name).replace("_kl", " KL").replace("_", " ")


def short_label(name: str) -> str:
    """A registry key with its role, for pickers: "reverse_kl: KL(π‖p) RLHF"."""
    try:
        return f"{name}: {divergences.get(name).label.replace('  ', ' ')}"
    except ValueError:
        return name
