"""The Playground's settings ⇄ :class:`toyfdiv.Config`, driven by the ``config`` column of
:data:`app_pages.state.FIELDS`.

``configs(state)`` builds one Config per selected divergence (what the Playground runs and
what Download writes); ``parse_settings(text)`` maps a Config JSON back onto the widgets,
checking each value against the widget's own range first (:func:`app_pages.state.check`).
"""

from __future__ import annotations

from toyfdiv import divergences, tasks
from toyfdiv.config import Config, configs_from_json, configs_to_json

from app_pages import state as S

P = "pg"
PARAMETRISED = ("alpha", "gjsd")  # registry keys with a parameter slider (one member at a time)
#: Which policy options the Playground shows for each policy family.
POLICY_OPTIONS = {"autoregressive": (), "tabular": (), "ngram": ("order",),
                  "tinylm": ("n_embd", "n_hidden", "fit_steps")}

_MAPPED = [f for f in S.FIELDS.values() if f.key.startswith(P + "_") and f.config]


def divergence_names(picked, state, prefix: str = P) -> list[str]:
    """Canonical divergence names of a picker's keys ("alpha" → "alpha(0.5)" with the page's α)."""
    out = []
    for name in picked:
        if name == "alpha":
            out.append(divergences.alpha(float(state.get(f"{prefix}_alpha", 0.5))).name)
        elif name == "gjsd":
            out.append(divergences.gjsd(float(state.get(f"{prefix}_gjsd", 0.25))).name)
        else:
            out.append(divergences.get(name).name)
    return out


def configs(state) -> list[Config]:
    """One Config per selected divergence, from the Playground's settings in ``state``."""
    get = lambda k: state.get(k, S.default(k, state))  # noqa: E731
    kind = get("pg_kind")
    task = tasks.get(get("pg_task"))
    fields: dict = dict(policy_options={}, estimator_options={})
    for f in _MAPPED:
        if f.config == "divergence":
            continue
        value = get(f.key)
        if "." in f.config:
            group, name = f.config.split(".")
            if group == "policy_options" and name not in POLICY_OPTIONS[get("pg_policy")]:
                continue
            if group == "estimator_options" and get("pg_estimator") != "sampled":
                continue
            fields[group][name] = value
        else:
            fields[f.config] = value
    fields["beta"] = fields["beta"] if kind == "rlhf" else None
    fields["epsilon"] = fields["epsilon"] if kind in ("pointwise", "hybrid") else None
    fields["moments"] = (tuple(float(get(f"pg_moment{k}")) for k in range(len(task.feature_names)))
                         if kind in ("distributional", "hybrid") else None)
    return [Config(divergence=d, **fields) for d in divergence_names(get("pg_divs"), state)]


def configs_json(configs_: list) -> str:
    """The CLI's Config JSON (``python -m toyfdiv run FILE``): one object for one run, an array for several."""
    return configs_to_json(configs_)


def _decode_text(text) -> str:
    if isinstance(text, bytes):
        if len(text) > S.MAX_UPLOAD_BYTES:
            raise ValueError(f"the file has {len(text):,} bytes; a settings file is under {S.MAX_UPLOAD_BYTES:,}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("the file is not UTF-8 text; upload the JSON the app or the CLI wrote") from None
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the settings are empty; upload the JSON the app or the CLI wrote")
    if len(text) > S.MAX_UPLOAD_BYTES:
        raise ValueError(f"the settings have {len(text):,} characters; a settings file is under "
                         f"{S.MAX_UPLOAD_BYTES:,}")
    return text


def parse_settings(text) -> tuple[dict, list[str]]:
    """Widget state {session key: value} for Config JSON text (an object, or an array of objects
    differing only in the divergence), and notes on ignored fields.

    Validated by :meth:`toyfdiv.config.Config.from_dict`, then every value against its widget's
    range (:func:`app_pages.state.check`); nothing in the text is executed.  Raises ValueError.
    """
    items = configs_from_json(_decode_text(text), max_configs=len(divergences.names()))
    first = items[0].to_dict()
    for c in items[1:]:
        diff = sorted(k for k, v in c.to_dict().items() if k != "divergence" and first[k] != v)
        if diff:
            raise ValueError(f"the configs of an array may differ only in the divergence; they differ in {diff}")
    c = items[0]
    task = tasks.get(c.task)
    new: dict = {"pg_task": c.task}
    put = lambda key, value: new.__setitem__(key, S.check(key, value, new))  # noqa: E731
    put("pg_eos", task.space.eos is not None if c.eos is None else c.eos)
    put("pg_length", task.space.length if c.length is None else c.length)
    for f in _MAPPED:
        if f.key in new or f.config == "divergence" or "." in f.config:
            continue
        value = getattr(c, f.config)
        if value is not None:
            put(f.key, value)
    if c.moments is not None:
        if len(c.moments) != len(task.feature_names):
            raise ValueError(f"moments has {len(c.moments)} values; the task {c.task!r} has "
                             f"{len(task.feature_names)} features {list(task.feature_names)}")
        for k, m in enumerate(c.moments):
            put(f"pg_moment{k}", float(m))
    for group in ("policy_options", "estimator_options"):
        allowed = POLICY_OPTIONS[c.policy] if group == "policy_options" else ("n", "baseline", "z")
        for name, value in dict(getattr(c, group)).items():
            if name not in allowed:
                raise ValueError(f"{group[:-8]} option {name!r} is not adjustable in the app"
                                 f"{' for policy ' + repr(c.policy) if group == 'policy_options' else ''}; "
                                 f"allowed: {list(allowed)}")
            put(f"pg_{name}", value)
    picked = []
    for cfg in items:
        name = cfg.divergence
        key = next((k for k in PARAMETRISED if name.startswith(k + "(")), None)
        if key is None:
            picked.append(name)
            continue
        if key in picked:
            raise ValueError(f"the app runs one {key} divergence at a time; got several in "
                             f"{[i.divergence for i in items]}")
        put(f"pg_{key}", float(name[len(key) + 1:-1]))
        picked.append(key)
    if len(set(picked)) != len(picked):
        raise ValueError(f"a divergence appears twice in {[i.divergence for i in items]}")
    put("pg_divs", picked)
    notes = []
    if c.lr_final is not None:
        notes.append(f"lr_final={c.lr_final:g} is not adjustable in the app: the schedule's default is used")
    return new, notes
