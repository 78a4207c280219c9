"""Shared widgets, caches and display helpers of the app pages.

No mathematics here: every number and figure comes from :mod:`toyfdiv`.  This module only
chooses widgets, caches library calls (exact computations in ``st.cache_data`` /
``st.cache_resource``), turns library figures into PNG bytes, and turns the library's
ValueErrors into readable ``st.error`` messages.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Iterator

import streamlit as st

from toyfdiv import divergences, experiments, tasks
from toyfdiv.space import SequenceSpace

# ---------------------------------------------------------------------------- papers
PAPERS = {
    "fdpg": "Go, Korbak, Kruszewski, Rozen, Ryu, Dymetman, *Aligning Language Models with Preferences "
            "through f-divergence Minimization*, ICML 2023",
    "gdc": "Khalifa, Elsahar, Dymetman, *A Distributional Approach to Controlled Text Generation*, ICLR 2021",
    "korbak": "Korbak, Perez, Buckley, *RL with KL penalties is better viewed as Bayesian inference*, "
              "Findings of EMNLP 2022",
    "dpg_baseline": "Korbak, Elsahar, Kruszewski, Dymetman, *On Reinforcement Learning and Distribution "
                    "Matching for Fine-Tuning Language Models with no Catastrophic Forgetting*, NeurIPS 2022",
    "dpo": "Rafailov, Sharma, Mitchell, Ermon, Manning, Finn, *Direct Preference Optimization*, NeurIPS 2023",
    "fdpo": "Wang, Jiang, Yang, Liu, Chen, *Beyond Reverse KL: Generalizing Direct Preference Optimization "
            "with Diverse Divergence Constraints*, 2023",
    "bt": "Bradley & Terry 1952; Christiano et al., *Deep RL from Human Preferences*, NeurIPS 2017",
    "gao": "Gao, Schulman, Hilton, *Scaling Laws for Reward Model Overoptimization*, 2022",
    "amari": "Amari, *Differential-Geometrical Methods in Statistics*, 1985 (α-divergences)",
}

#: Spaces the app trains on interactively: larger ones are refused with an explanation.
APP_MAX_N = 100_000
#: Resolution of the PNGs the pages show (readable on a projector, quick to draw).
DPI = 80


#: Page-wide CSS: a display formula wider than its column scrolls instead of being cut off (narrow
#: projector screens, browser zoom); metric values wrap instead of ending in "…".
CSS = """<style>
.katex-display { overflow-x: auto; overflow-y: hidden; padding-bottom: 2px; }
[data-testid="stMetricValue"] > div { white-space: normal; overflow-wrap: anywhere; }
</style>"""


def style() -> None:
    """Inject :data:`CSS` (called once per run by app.py)."""
    st.html(CSS)


def formula(latex: str, *papers: str, note: str | None = None) -> None:
    """One display formula, with a one-line note and the paper(s) it comes from."""
    st.latex(latex)
    src = "; ".join(PAPERS[p] for p in papers)
    st.caption(f"{note + ' — ' if note else ''}{src}")


# ---------------------------------------------------------------------------- state helpers
def init(key: str, value) -> None:
    """Give a widget's session-state key its default once (widgets are then created by key only)."""
    if key not in st.session_state:
        st.session_state[key] = value


def forget(*keys: str) -> None:
    for k in keys:
        st.session_state.pop(k, None)


@contextlib.contextmanager
def explained(stop: bool = True, what: str = "This setting cannot be computed") -> Iterator[None]:
    """Show the library's ValueError (it says what to change) as ``st.error``, never a traceback.

    Warnings raised inside (e.g. a solver that did not converge) are shown as ``st.warning``.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except ValueError as err:
            st.error(f"**{what}.** {err}")
            if stop:
                st.stop()
    show_warnings(str(w.message) for w in caught)


def show_warnings(messages) -> None:
    for m in dict.fromkeys(messages):  # once each
        st.warning(m)


# ---------------------------------------------------------------------------- figures
def png(fig) -> bytes:
    """The PNG bytes of a library figure (the figure is dropped afterwards)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def show_png(data: bytes, caption: str | None = None) -> None:
    st.image(data, caption=caption, width="stretch")


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
    """N, or an ``st.error`` explaining what to change (and stop) if the space is too large for the app."""
    n = space_size(name, length, eos)
    if n > limit:
        fits = [t for t in range(1, length) if space_size(name, t, eos) <= limit]
        fix = (f"Set **Length T to {fits[-1]} or less** (N = {space_size(name, fits[-1], eos):,} at T = {fits[-1]})."
               if fits else "Use a task with a smaller vocabulary.")
        st.error(f"**The space is too large to {what}.** {name!r} with length {length}"
                 f"{' and EOS' if eos else ''} has N = {n:,} sequences; this page enumerates them at every "
                 f"step and allows N ≤ {limit:,}. {fix}")
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
        tgt = experiments.make_target(task, kind, opts)
    return tgt, tuple(str(w.message) for w in caught)


@st.cache_data(max_entries=64, show_spinner=False)
def cached_distributions(name: str, length: int, eos: bool, kind: str, beta, epsilon, moments, k: int) -> bytes:
    """PNG: the target p and the base model a on the top-k sequences of p."""
    from toyfdiv import plots

    task = get_task(name, length, eos)
    tgt, _ = get_target(name, length, eos, kind, beta, epsilon, moments)
    return png(plots.distributions(task.space, {"target": tgt.log_probs, "base": task.log_a}, k=k,
                                   title=f"Top {k} sequences of the target p, and their probability under a"))


# ---------------------------------------------------------------------------- shared controls
KIND_HELP = {
    "rlhf": "RLHF: p = a·exp(r/β)/Z, the optimum of KL-regularised reward maximisation",
    "pointwise": "GDC pointwise constraint: p = a·b/Z, the base model restricted to sequences with b(x) = 1",
    "distributional": "GDC distributional constraints: p = a·exp(λ·φ)/Z with E_p[φ] = μ̄ (λ* solved exactly)",
    "hybrid": "GDC hybrid: p ∝ a·b·exp(λ·φ), a pointwise constraint and moments together",
}
KIND_LABEL = {"rlhf": "RLHF reward (β)", "pointwise": "GDC pointwise constraint",
              "distributional": "GDC distributional (moments)", "hybrid": "GDC hybrid"}


def _reset_space(prefix: str) -> None:
    """Task changed: its own length, EOS and moments become the defaults again."""
    for k in list(st.session_state):
        if k.startswith(f"{prefix}_length") or k.startswith(f"{prefix}_eos") or k.startswith(f"{prefix}_moment"):
            del st.session_state[k]


def space_controls(prefix: str, *, default_task: str | None = None) -> dict:
    """Task, length and EOS widgets; returns {"task", "length", "eos", "n"}."""
    names = tasks.names()
    init(f"{prefix}_task", default_task or names[0])
    task = st.selectbox("Task", names, key=f"{prefix}_task", on_change=_reset_space, args=(prefix,),
                        help="The task catalogue: its vocabulary, corpus, base model a and reward/constraints")
    d = task_defaults(task)
    init(f"{prefix}_length", d["length"])
    init(f"{prefix}_eos", d["eos"])
    length = st.slider("Length T", 1, 12, key=f"{prefix}_length",
                       help="Positions per sequence (EOS counts); N grows like V^T — too large is explained, not run")
    eos = st.checkbox("End-of-sequence token", key=f"{prefix}_eos",
                      help="With EOS sequences have lengths 1…T (ending in </s>); without, all have exactly T tokens")
    n = space_size(task, length, eos)
    st.caption(f"{d['description']} Vocabulary {', '.join(d['vocab'])} — N = {n:,} sequences")
    return dict(task=task, length=int(length), eos=bool(eos), n=n)


def target_controls(prefix: str, task_name: str, kinds=tasks.TARGET_KINDS, *, beta: float | None = None) -> dict:
    """Target kind and its parameters; returns {"kind", "beta", "epsilon", "moments"}.

    ``beta``: the page's default β (else the task's own)."""
    d = task_defaults(task_name)
    if beta is not None:
        d["beta"] = beta
    init(f"{prefix}_kind", kinds[0])
    kind = st.selectbox("Target p", list(kinds), key=f"{prefix}_kind",
                        help="What the policy should become: an RLHF target (rlhf) or a GDC energy-based model "
                             "(pointwise, distributional, hybrid)")
    st.caption(f"**{KIND_LABEL[kind]}.** {KIND_HELP[kind]}")
    out = dict(kind=kind, beta=None, epsilon=None, moments=None)
    if kind == "rlhf":
        init(f"{prefix}_beta", d["beta"])
        out["beta"] = float(st.slider("β (KL coefficient)", 0.05, 5.0, step=0.05, key=f"{prefix}_beta",
                                      help="Small β: p concentrates on high reward; large β: p stays close to a"))
    if kind == "pointwise":
        init(f"{prefix}_epsilon", d["epsilon"])
        out["epsilon"] = float(st.slider("ε (smoothing of b)", 0.0, 0.5, step=0.01, key=f"{prefix}_epsilon",
                                         help="b(x) = ε instead of 0 for failing sequences: ε > 0 keeps reverse "
                                              "KL finite"))
    if kind in ("distributional", "hybrid"):
        task = get_task(task_name)
        phi = task.feature_matrix
        lo, hi = phi.min(axis=0), phi.max(axis=0)
        moments = []
        for k, fname in enumerate(task.feature_names):
            init(f"{prefix}_moment{k}", d["moments"][k])
            moments.append(float(st.slider(f"μ̄ for {fname}", float(lo[k]), float(hi[k]), step=0.05,
                                           key=f"{prefix}_moment{k}",
                                           help=f"Target mean E_p[{fname}]; it must lie strictly inside the range "
                                                "the feature takes (else there is no solution)")))
        out["moments"] = tuple(moments)
    return out


def divergence_options(prefix: str, key: str, default: list[str], label: str = "Divergences", *,
                       multi: bool = True, allowed: list[str] | None = None,
                       help: str = "Which f-divergences D_f(π‖p) to minimise, one run each, side by side") -> list[str]:
    """A divergence picker; "alpha" and "gjsd" get a parameter slider. Returns canonical names."""
    names = allowed or divergences.names()
    init(f"{prefix}_{key}", default if multi else default[0])
    if multi:
        picked = st.multiselect(label, names, key=f"{prefix}_{key}", help=help)
    else:
        picked = [st.selectbox(label, names, key=f"{prefix}_{key}", help=help)]
    if picked and picked[0] is not None:
        st.caption(" · ".join(short_label(n) for n in picked))
    out = []
    for name in picked:
        if name == "alpha":
            init(f"{prefix}_alpha", 0.5)
            a = st.slider("α of the α-divergence", -1.0, 2.0, step=0.05, key=f"{prefix}_alpha",
                          help="α → 0: forward KL (GDC); α → 1: reverse KL (RLHF)")
            out.append(divergences.alpha(float(a)).name)
        elif name == "gjsd":
            init(f"{prefix}_gjsd", 0.25)
            b = st.slider("β of the generalised JS", 0.05, 0.95, step=0.05, key=f"{prefix}_gjsd",
                          help="Weight of p in the mixture M = βp + (1−β)π")
            out.append(divergences.gjsd(float(b)).name)
        else:
            out.append(divergences.get(name).name)
    return out


def short_label(name: str) -> str:
    """A registry key with its role, for pickers: "reverse_kl — KL(π‖p) — RLHF"."""
    try:
        return f"{name}: {divergences.get(name).label.replace('  ', ' ')}"
    except ValueError:
        return name


def table(df, key: str, sci: tuple = (), highlight_min: tuple = ()) -> None:
    """Show a DataFrame: floats to 4 decimals, columns in ``sci`` in scientific notation (values unchanged).

    ``highlight_min``: columns whose smallest entry is shown in bold on a green background (display
    only: the values are the library's, unchanged)."""
    def fmt(c):
        values = df[c].dropna()
        if c not in sci and len(values) and (values == values.round()).all():
            return "%d"  # whole numbers (e.g. steps) that are float only because of a missing entry
        return "%.3e" if c in sci else "%.4f"

    config = {c: st.column_config.NumberColumn(format=fmt(c)) for c in df.columns if df[c].dtype.kind == "f"}
    data = df
    if highlight_min:  # a Styler for the colours; the numbers keep the NumberColumn formats above
        data = df.style.highlight_min(subset=list(highlight_min), props="font-weight: bold; background-color: #c8e6c9")
    st.dataframe(data, hide_index=True, key=key, column_config=config)


def frame(rows, columns: dict[str, str] | None = None):
    """A pandas DataFrame of library rows, columns renamed for display."""
    import pandas as pd

    df = pd.DataFrame(list(rows))
    if columns:
        df = df[[c for c in columns if c in df.columns]].rename(columns=columns)
    return df


# ---------------------------------------------------------------------------- Playground settings ⇄ Config JSON
#: Playground widgets: key → allowed values (a list) or (low, high) range.  Shared by the page and the upload.
PG = dict(
    steps=(1, 1000), lr=(1e-4, 10.0), seed=(0, 10_000),
    n=[8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    order=(1, 4), n_embd=(1, 16), n_hidden=(1, 32), fit_steps=(10, 1000),
    alpha=(-1.0, 2.0), gjsd=(0.05, 0.95), beta=(0.05, 5.0), epsilon=(0.0, 0.5),
)
_POLICY_OPTIONS = {"autoregressive": (), "tabular": (), "ngram": ("order",),
                   "tinylm": ("n_embd", "n_hidden", "fit_steps")}
_POLICY_DEFAULTS = {"order": 2, "n_embd": 4, "n_hidden": 8, "fit_steps": 200}


def playground_configs(s: dict) -> list:
    """One :class:`toyfdiv.config.Config` per selected divergence, from the Playground settings ``s``."""
    from toyfdiv.config import Config

    common = dict(task=s["task"], length=s["length"], eos=s["eos"], kind=s["kind"], beta=s["beta"],
                  epsilon=s["epsilon"], moments=s["moments"], policy=s["policy"],
                  policy_options=s["policy_options"], steps=s["steps"], lr=s["lr"], optimizer=s["optimizer"],
                  schedule=s["schedule"], estimator=s["estimator"], estimator_options=s["estimator_options"],
                  seed=s["seed"])
    return [Config(divergence=d, **common) for d in s["divergences"]]


def configs_json(configs: list) -> str:
    """The CLI's Config JSON (``python -m toyfdiv run FILE``): one object for one run, an array for several."""
    from toyfdiv.config import configs_to_json

    return configs_to_json(configs)


def _in_range(name: str, value, spec) -> None:
    if isinstance(spec, list):
        if value not in spec:
            raise ValueError(f"{name}={value!r} is not offered by the app; allowed: {spec}")
    elif not spec[0] <= value <= spec[1]:
        raise ValueError(f"{name}={value!r} is outside the app's range {spec[0]:g} … {spec[1]:g}")


MAX_UPLOAD_BYTES = 64 * 1024


def parse_settings(text) -> tuple[dict, list[str]]:
    """Widget state {session key: value} for Config JSON text (an object, or an array of objects
    differing only in the divergence), and notes on ignored fields.

    Everything is validated by :meth:`toyfdiv.config.Config.from_dict` and against the app's
    widget ranges; nothing in the text is executed.  Raises ValueError with the reason.
    """
    from toyfdiv.config import configs_from_json

    if isinstance(text, bytes):
        if len(text) > MAX_UPLOAD_BYTES:
            raise ValueError(f"the file has {len(text):,} bytes; a settings file is under {MAX_UPLOAD_BYTES:,}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("the file is not UTF-8 text; upload the JSON the app or the CLI wrote") from None
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the settings are empty; upload the JSON the app or the CLI wrote")
    if len(text) > MAX_UPLOAD_BYTES:
        raise ValueError(f"the settings have {len(text):,} characters; a settings file is under {MAX_UPLOAD_BYTES:,}")

    configs = configs_from_json(text, max_configs=len(divergences.names()))
    first = configs[0].to_dict()
    for c in configs[1:]:
        other = c.to_dict()
        diff = sorted(k for k in first if k != "divergence" and first[k] != other[k])
        if diff:
            raise ValueError(f"the configs of an array may differ only in the divergence; they differ in {diff}")
    divs = [c.divergence for c in configs]
    if len(set(divs)) != len(divs):
        raise ValueError(f"the divergence {divs} appears twice")
    c = configs[0]
    d = task_defaults(c.task)
    length = d["length"] if c.length is None else c.length
    eos = d["eos"] if c.eos is None else c.eos
    _in_range("length", length, (1, 12))
    state = {"pg_task": c.task, "pg_length": length, "pg_eos": eos, "pg_kind": c.kind}
    notes = []
    if c.beta is not None:
        _in_range("beta", c.beta, PG["beta"])
        state["pg_beta"] = c.beta
    if c.epsilon is not None:
        _in_range("epsilon", c.epsilon, PG["epsilon"])
        state["pg_epsilon"] = c.epsilon
    if c.moments is not None:
        k = len(get_task(c.task).feature_names)
        if len(c.moments) != k:
            raise ValueError(f"moments has {len(c.moments)} values; the task {c.task!r} has {k} features")
        state.update({f"pg_moment{j}": float(m) for j, m in enumerate(c.moments)})
    state["pg_policy"] = c.policy
    for key, value in dict(c.policy_options).items():
        if key not in _POLICY_OPTIONS[c.policy]:
            raise ValueError(f"policy option {key!r} is not adjustable in the app for policy {c.policy!r}; "
                             f"allowed: {list(_POLICY_OPTIONS[c.policy])}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"policy option {key}={value!r} must be an integer")
        _in_range(key, value, PG[key])
        state[f"pg_{key}"] = value
    picked = []
    for name in divs:
        if name in divergences.names():
            picked.append(name)
            continue
        for key in ("alpha", "gjsd"):
            if name.startswith(key + "("):
                if key in picked:
                    raise ValueError(f"the app runs one {key} divergence at a time; got several in {divs}")
                value = float(name[len(key) + 1:-1])
                _in_range(key, value, PG[key])
                picked.append(key)
                state[f"pg_{key}"] = value
    state["pg_divs"] = picked
    _in_range("steps", c.steps, PG["steps"])
    _in_range("lr", c.lr, PG["lr"])
    _in_range("seed", c.seed, PG["seed"])
    state.update(pg_steps=c.steps, pg_lr=c.lr, pg_seed=c.seed, pg_optimizer=c.optimizer,
                 pg_schedule=c.schedule, pg_estimator=c.estimator)
    for key, value in dict(c.estimator_options).items():
        if key == "n":
            _in_range("n", value, PG["n"])
        elif key == "baseline":
            from toyfdiv.estimators import BASELINES
            _in_range("baseline", value, list(BASELINES))
        elif key == "z":
            from toyfdiv.estimators import Z_OPTIONS
            _in_range("z", value, list(Z_OPTIONS))
        else:
            raise ValueError(f"estimator option {key!r} is not adjustable in the app; allowed: n, baseline, z")
        state[f"pg_{key}"] = value
    if c.lr_final is not None:
        notes.append(f"lr_final={c.lr_final:g} is not adjustable in the app: the schedule's default is used")
    if c.record_every != 1:
        notes.append(f"record_every={c.record_every} is ignored: the app records every step")
    return state, notes
