"""The app's settings: one table of fields, one session state shared by every page, the URL.

Every setting widget of every page is a row of :data:`FIELDS` (session key, kind, range or
options, default, the :class:`toyfdiv.Config` field it maps to).  From that one table:

- the pages create their widgets (:mod:`app_pages.controls` reads range and default here);
- :func:`keep` makes the values survive page switches (Streamlit drops the state of widgets
  that are not drawn on the current page unless the value is re-assigned on every run);
- :func:`from_url` / :func:`to_url` put the settings into ``st.query_params`` (a bookmark or
  a link sent to students opens the same settings);
- :func:`parse_settings` maps a Config JSON (upload or paste) onto the Playground's widgets,
  after checking every value against the widget's own range, so nothing invalid ever reaches
  a widget (a rejected file leaves the page working).

No mathematics here.  A new page adds its rows to :data:`FIELDS` with its own key prefix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import streamlit as st

from toyfdiv import divergences, feedback, optim, tasks
from toyfdiv.estimator_lab import LAB_BASELINES, LAB_Z
from toyfdiv.estimators import BASELINES, Z_OPTIONS
from toyfdiv.experiments import POLICIES
from toyfdiv.space import SequenceSpace
from toyfdiv.training import SCHEDULES

#: Spaces the app trains on interactively (N ≤ this); the length sliders stop at the largest T that fits.
APP_MAX_N = 100_000
MAX_UPLOAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Field:
    """One setting: its session key, its kind and its allowed values.

    kind: "float" | "int" (lo … hi), "choice" (one of options), "multi" (a list of options),
    "bool", "range" (a (lo, hi) pair inside lo … hi).  ``default`` may be a function of the
    page's task name.  ``config``: the :class:`toyfdiv.Config` field it maps to (Playground).
    """

    key: str
    kind: str
    default: object
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    options: tuple = ()
    config: str | None = None

    def default_for(self, task: str | None):
        return self.default(task) if callable(self.default) else self.default


def _task_default(attr: str) -> Callable[[str | None], object]:
    def get(task):
        t = tasks.get(task or tasks.names()[0])
        return {"length": t.space.length, "eos": t.space.eos is not None, "beta": float(t.beta),
                "epsilon": float(t.epsilon)}[attr]
    return get


def max_length(task: str, eos: bool, limit: int = APP_MAX_N) -> int:
    """The largest length T whose space has N ≤ ``limit`` for this task and EOS choice."""
    v = len(tasks.get(task).space.vocab)
    t = 1
    while t < 64 and SequenceSpace.size_of(v, t + 1, eos) <= limit:
        t += 1
    return t


_DIVS = tuple(divergences.names())


def _fdpo_ok(name: str) -> bool:
    try:
        feedback.check_divergence(name)
        return True
    except ValueError:
        return False


_FDPO = tuple(d for d in _DIVS if _fdpo_ok(d))  # f′(0⁺) = −∞: the divergences f-DPO accepts
_TASKS = tuple(tasks.names())
_N = (8, 16, 32, 64, 128, 256, 512, 1024, 4096)


def _space(prefix: str) -> list[Field]:
    return [Field(f"{prefix}_task", "choice", _TASKS[0], options=_TASKS, config="task"),
            Field(f"{prefix}_length", "int", _task_default("length"), 1, 12, config="length"),
            Field(f"{prefix}_eos", "bool", _task_default("eos"), config="eos")]


def _target(prefix: str, beta=_task_default("beta")) -> list[Field]:
    return [Field(f"{prefix}_kind", "choice", tasks.TARGET_KINDS[0], options=tuple(tasks.TARGET_KINDS), config="kind"),
            Field(f"{prefix}_beta", "float", beta, 0.05, 5.0, 0.05, config="beta"),
            Field(f"{prefix}_epsilon", "float", _task_default("epsilon"), 0.0, 0.5, 0.01, config="epsilon")]


def _div_params(prefix: str) -> list[Field]:
    return [Field(f"{prefix}_alpha", "float", 0.5, -1.0, 2.0, 0.05),
            Field(f"{prefix}_gjsd", "float", 0.25, 0.05, 0.95, 0.05)]


FIELDS: dict[str, Field] = {f.key: f for f in [
    # Playground
    *_space("pg"), *_target("pg", beta=0.3), *_div_params("pg"),
    Field("pg_policy", "choice", "ngram", options=tuple(POLICIES), config="policy"),
    Field("pg_order", "int", 2, 1, 4, config="policy_options.order"),
    Field("pg_n_embd", "int", 4, 1, 16, config="policy_options.n_embd"),
    Field("pg_n_hidden", "int", 8, 1, 32, config="policy_options.n_hidden"),
    Field("pg_fit_steps", "int", 400, 10, 1000, config="policy_options.fit_steps"),
    Field("pg_divs", "multi", ["reverse_kl", "forward_kl", "js"], options=_DIVS, config="divergence"),
    Field("pg_estimator", "choice", "exact", options=("exact", "sampled"), config="estimator"),
    Field("pg_n", "choice", 64, options=_N, config="estimator_options.n"),
    Field("pg_baseline", "choice", "mean", options=tuple(BASELINES), config="estimator_options.baseline"),
    Field("pg_z", "choice", "running", options=tuple(Z_OPTIONS), config="estimator_options.z"),
    Field("pg_optimizer", "choice", "adam", options=tuple(optim.names()), config="optimizer"),
    Field("pg_schedule", "choice", "constant", options=tuple(SCHEDULES), config="schedule"),
    Field("pg_steps", "int", 200, 1, 1000, config="steps"),
    Field("pg_lr", "float", 0.1, 1e-4, 10.0, config="lr"),
    Field("pg_seed", "int", 0, 0, 10_000, config="seed"),
    Field("pg_record_every", "choice", 5, options=(1, 2, 5, 10, 20, 50), config="record_every"),
    Field("pg_topk", "int", 10, 3, 30),
    Field("pg_frame", "int", -1, -1, 1000),
    Field("pg_more", "bool", False),  # the sidebar's lazy sections: open or not
    Field("pg_share", "bool", False),
    Field("pg_view", "choice", "summary", options=("summary", "movie", "space")),
    # Divergence explorer
    Field("ex_section", "choice", "zoo", options=("zoo", "alpha", "simplex", "restricted")),
    Field("ex_zoo", "multi", ["forward_kl", "reverse_kl", "js", "tv", "hellinger"], options=_DIVS),
    *_div_params("ex"),
    Field("ex_arange", "range", (-1.0, 2.0), -1.0, 2.0, 0.25),
    Field("ex_t", "choice", 2.0, options=(0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0)),
    Field("ex_alpha_m", "float", 0.5, 0.0, 1.0, 0.05),
    *[Field(f"ex_{k}{i}", "int", d, 1, 100) for k, dd in (("mp", (62, 33, 5)), ("ms", (10, 10, 80)),
                                                          ("p", (62, 33, 5)), ("s", (10, 10, 80)))
      for i, d in enumerate(dd)],
    Field("ex_simplex", "multi", ["forward_kl", "reverse_kl", "js", "tv"], options=_DIVS),
    Field("ex_steps", "int", 300, 10, 1000, 10),
    Field("ex_lr", "choice", 0.5, options=(0.05, 0.1, 0.2, 0.5, 1.0, 2.0)),
    # Estimator lab
    *_space("el"), *_target("el"), *_div_params("el"),
    Field("el_divs", "multi", ["forward_kl", "reverse_kl"], options=_DIVS),
    Field("el_baselines", "multi", ["none", "loo", "dpg"], options=tuple(LAB_BASELINES)),
    Field("el_zs", "multi", ["exact", "batch"], options=tuple(LAB_Z)),
    Field("el_ns", "multi", [4, 16, 64, 256], options=(2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)),
    Field("el_trials", "int", 400, 10, 1000, 10),
    Field("el_k", "int", 0, 0, 100),
    Field("el_seed", "int", 0, 0, 10_000),
    # Human feedback
    *_space("hf"), *_div_params("hf"),
    Field("hf_tau", "float", 2.0, 0.1, 5.0, 0.1),
    Field("hf_bias", "float", 2.0, -2.0, 2.0, 0.1),
    Field("hf_pairs", "int", 100, 20, 5000, 20),
    Field("hf_rm", "choice", "linear", options=("tabular", "linear")),
    Field("hf_l2", "choice", 1.0, options=(0.01, 0.1, 1.0, 10.0, 100.0)),
    Field("hf_beta", "float", 0.3, 0.05, 5.0, 0.05),
    Field("hf_fdiv", "choice", "js", options=_FDPO),
    Field("hf_policy", "choice", "autoregressive", options=("autoregressive", "tabular", "ngram")),
    Field("hf_steps", "int", 200, 1, 1000),
    Field("hf_lr", "choice", 0.05, options=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5)),
    Field("hf_seed", "int", 0, 0, 10_000),
    # Scenarios
    Field("sc_pick", "choice", "rlhf_vs_gdc", options=("rlhf_vs_gdc", "collapse", "pointwise", "moments", "goodhart",
                                                      "sampled", "restricted")),
    Field("sc_step", "int", 0, 0, 9),
    # app-wide
    Field("app_projector", "bool", False),
]}

_MOMENT = re.compile(r"^([a-z]+)_moment(\d)$")


def default(key: str, state):
    """The default of a setting, given the page's task (moments: the task's own μ̄)."""
    m = _MOMENT.match(key)
    if m:
        moments = tasks.get(_task_of(key, state)).moments
        k = int(m.group(2))
        return float(moments[k]) if k < len(moments) else None
    return FIELDS[key].default_for(_task_of(key, state))


def register(*fields: Field) -> None:
    """Add a page's own fields (a page module calls this at import; keys carry the page's prefix)."""
    for f in fields:
        FIELDS[f.key] = f


def is_setting(key: str) -> bool:
    return key in FIELDS or bool(_MOMENT.match(key))


def _task_of(key: str, state) -> str:
    return state.get(key.split("_", 1)[0] + "_task", _TASKS[0])


def moment_range(task: str, k: int) -> tuple[float, float]:
    """The slider range of moment k: the values the feature takes over the task's space."""
    phi = tasks.get(task).feature_matrix
    return float(phi[:, k].min()), float(phi[:, k].max())


def check(key: str, value, state) -> object:
    """``value`` if it is allowed for the widget ``key`` (given the other settings in ``state``);
    else ValueError naming the setting, the value and what is allowed."""
    m = _MOMENT.match(key)
    if m:
        task = _task_of(key, state)
        k = int(m.group(2))
        names = tasks.get(task).feature_names
        if k >= len(names):
            raise ValueError(f"{key}: the task {task!r} has {len(names)} features, not {k + 1}")
        lo, hi = moment_range(task, k)
        return _number(key, value, lo, hi, float)
    f = FIELDS.get(key)
    if f is None:
        raise ValueError(f"{key!r} is not a setting of the app")
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{key}={value!r} must be true or false")
        return value
    if f.kind in ("float", "int"):
        hi = f.hi
        if key.endswith("_length"):
            hi = max_length(_task_of(key, state), bool(state.get(key.replace("_length", "_eos"), True)))
        return _number(key, value, f.lo, hi, float if f.kind == "float" else int)
    if f.kind == "choice":
        if value not in f.options or isinstance(value, bool):
            raise ValueError(f"{key}={value!r} is not offered; allowed: {list(f.options)}")
        return value
    if f.kind == "multi":
        if not isinstance(value, (list, tuple)) or any(v not in f.options for v in value) \
                or len(set(value)) != len(value):
            raise ValueError(f"{key}={value!r} must be a list of distinct values from {list(f.options)}")
        return list(value)
    if f.kind == "range":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError(f"{key}={value!r} must be a pair (low, high)")
        lo, hi = (_number(key, v, f.lo, f.hi, float) for v in value)
        if lo > hi:
            raise ValueError(f"{key}={value!r}: low must not exceed high")
        return (lo, hi)
    raise ValueError(f"unknown field kind {f.kind!r}")


def _number(key: str, value, lo, hi, cast):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key}={value!r} must be a number in {lo:g} … {hi:g}")
    if cast is int and float(value) != int(value):
        raise ValueError(f"{key}={value!r} must be a whole number in {lo:g} … {hi:g}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"{key}={value!r} is outside the widget's range {lo:g} … {hi:g}")
    return cast(value)


# ---------------------------------------------------------------------------- one state for every page
def init(key: str, value=None) -> None:
    """Give a setting its default once (from :data:`FIELDS` when ``value`` is None)."""
    if key not in st.session_state:
        if value is None and is_setting(key):
            value = default(key, st.session_state)
        st.session_state[key] = value


def forget(*keys: str) -> None:
    for k in keys:
        st.session_state.pop(k, None)


def keep() -> None:
    """Re-assign every setting in the session state (called by app.py before the page runs): a value
    assigned by code is not dropped when its widget is absent, so settings survive page switches."""
    for k in list(st.session_state):
        if is_setting(k):
            st.session_state[k] = st.session_state[k]


# ---------------------------------------------------------------------------- the URL
def _encode(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(_encode(v) for v in value) if value else "-"
    return repr(value) if isinstance(value, float) else str(value)


def _decode(key: str, text: str, state):
    m = _MOMENT.match(key)
    kind = "float" if m else FIELDS[key].kind
    options = () if m else FIELDS[key].options

    def atom(s: str, opts=options):
        for o in opts:  # an option's own type (ints, floats, names)
            if _encode(o) == s:
                return o
        try:
            return int(s) if kind == "int" else float(s) if kind in ("float", "range") else s
        except ValueError:
            raise ValueError(f"{key}={s!r} is not a number") from None

    if kind == "bool":
        if text not in ("0", "1"):
            raise ValueError(f"{key}={text!r} must be 0 or 1")
        return text == "1"
    if kind in ("multi", "range"):
        parts = [] if text == "-" else text.split(",")
        return tuple(atom(p) for p in parts) if kind == "range" else [atom(p) for p in parts]
    return atom(text)


def from_url() -> list[str]:
    """Once per session: settings from ``st.query_params`` into the session state (each validated;
    task and EOS first so lengths and moments are checked against them).  Returns notes on
    parameters that were ignored."""
    if st.session_state.get("_url_read"):
        return []
    st.session_state["_url_read"] = True
    params = {k: st.query_params[k] for k in st.query_params if is_setting(k)}
    notes = []
    order = sorted(params, key=lambda k: (not k.endswith("_task"), not k.endswith("_eos"), k))
    for key in order:
        try:
            st.session_state[key] = check(key, _decode(key, params[key], st.session_state), st.session_state)
        except ValueError as err:
            notes.append(f"Ignored the link's setting: {err}")
    return notes


def to_url() -> None:
    """The settings that differ from their defaults, written to ``st.query_params`` (sorted)."""
    want = {}
    for k in sorted(st.session_state):
        if not is_setting(k) or k == "app_projector" and not st.session_state[k]:
            continue
        v = st.session_state[k]
        if v == default(k, st.session_state):
            continue
        want[k] = _encode(tuple(v) if isinstance(v, list) else v)
    have = {k: st.query_params[k] for k in st.query_params}
    if have != want:
        st.query_params.from_dict(want)
