"""Charts the browser draws: the Playground's live views as Vega-Lite specs.

The Playground redraws its bars on every move of a slider (β, the movie's step) and draws three
views after each Train.  As matplotlib PNGs these cost 0.7–1 s of server time each on the 2-core
development machine (benchmarks/results_app.md); as Vega-Lite specs they cost milliseconds, and the browser draws them (with tooltips,
in the page's light or dark theme).  The data are the library's own figure data
(:func:`toyfdiv.plots.top_sequences`, :func:`~toyfdiv.plots.sorted_probabilities`,
:func:`~toyfdiv.plots.metric_curve`), with its colours and labels, so a chart here and the
lessons' matplotlib figure show the same numbers.  No mathematics here.

Each builder returns plain dicts (Vega-Lite specs with their data inline); :func:`show` draws one.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import streamlit as st

from toyfdiv import plots

#: Text sizes in CSS pixels (≥ 14 px: readable from the back of a lecture hall at 1280 px).
CONFIG = {
    "axis": {"labelFontSize": 14, "titleFontSize": 15, "labelLimit": 360, "titleFontWeight": "normal"},
    "legend": {"labelFontSize": 14, "titleFontSize": 14, "symbolSize": 220, "labelLimit": 420, "orient": "top",
               "columns": 4},
    "title": {"fontSize": 17, "anchor": "start", "subtitleFontSize": 14},
    "header": {"labelFontSize": 15},
    "view": {"stroke": None},
}
#: Projector mode: chart text this many times larger (the page's text grows from 16 to 20 px and more).
PROJECTOR_SCALE = 1.3
#: The dark theme's replacements for colours that vanish on a dark background (the target's black).
_DARK = {"#222222": "#e8e8e8", "#000000": "#e8e8e8"}
#: Points per line at most: a sorted curve over N = 10⁵ sequences or a 5 000-step run is thinned to
#: this many (log-spaced ranks, evenly spaced steps), always keeping the first and the last.
MAX_POINTS = 400
#: A log axis labelled at powers of ten only (its other ticks stay, unlabelled).
DECADES = {"format": ".0e", "labelExpr": "abs(log(datum.value) / LN10 - round(log(datum.value) / LN10)) < 1e-6 "
                                          "? datum.label : ''"}
#: Line styles by position, like the matplotlib figures (solid, dashed, dotted, dash-dot).
_DASHES = [[1, 0], [8, 4], [2, 3], [8, 3, 2, 3]]


def colours(labels, theme: str = "light") -> list[str]:
    """The library's colour for each label (:func:`toyfdiv.plots.label_colors`), lightened on dark."""
    out = plots.label_colors(list(labels))
    return [_DARK.get(c.lower(), c) for c in out] if theme == "dark" else out


def _legend(names: list[str], theme: str, labels: list[str] | None = None) -> dict:
    """The colour channel: each name's label (default its divergence label) in the library's colour."""
    labels = labels or [plots.divergence_label(n) for n in names]
    return {"field": "model", "type": "nominal", "sort": labels, "title": None,
            "scale": {"domain": labels, "range": colours(names, theme)}}


def bars(space, dists: Mapping[str, np.ndarray], k: int = 10, title: str | None = None,
         theme: str = "light") -> dict:
    """Grouped horizontal bars of the k most probable sequences of the first distribution, each
    distribution's probability on a log axis (the data of :func:`toyfdiv.plots.distributions`)."""
    top, probs = plots.top_sequences(space, dists, k)
    texts = [space.decode(int(i)) for i in top]
    names = list(probs)
    rows = [{"sequence": texts[r], "rank": r + 1, "model": plots.divergence_label(name), "probability": float(p[r])}
            for name, p in probs.items() for r in range(top.size) if p[r] > 0]
    return {
        "title": title or f"Top {top.size} sequences: probability under each model",
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "sequence", "type": "nominal", "sort": {"field": "rank"}, "title": None},
            "yOffset": {"field": "model", "type": "nominal", "sort": [plots.divergence_label(n) for n in names]},
            "x": {"field": "probability", "type": "quantitative", "title": "probability (log scale)", "stack": None,
                  "scale": {"type": "log", "domainMin": _decade_below(r["probability"] for r in rows), "domainMax": 1},
                  "axis": DECADES},
            "color": _legend(names, theme),
            "tooltip": [{"field": "sequence"}, {"field": "model"}, {"field": "rank"},
                        {"field": "probability", "format": ".4g"}],
        },
        "height": {"step": 16 if len(names) <= 2 else 11},  # per bar: a sequence's group is len(names) bars
        "config": CONFIG,
    }


def _decade_below(values) -> float:
    """The power of ten strictly below the smallest positive value: a log axis' left end, from which
    every bar grows (so the smallest bar has a length).  The spec changes only when this does, so
    the browser mostly updates a chart's data in place instead of drawing it anew."""
    low = min((v for v in values if v > 0), default=0.1)
    return 10.0 ** (math.ceil(math.log10(low)) - 1)


def _thin(n: int, log: bool = False) -> np.ndarray:
    """At most MAX_POINTS indices of 0 … n − 1, first and last kept (log-spaced when ``log``)."""
    if n <= MAX_POINTS:
        return np.arange(n)
    pts = np.geomspace(1, n, MAX_POINTS) if log else np.linspace(1, n, MAX_POINTS)
    return np.unique(np.rint(pts).astype(int) - 1)


def whole_space(dists: Mapping[str, np.ndarray], title: str | None = None, theme: str = "light") -> dict:
    """Every distribution's probabilities sorted from largest to smallest against their rank (log–log;
    the data of :func:`toyfdiv.plots.whole_space`), each line thinned to MAX_POINTS log-spaced ranks."""
    ranked = plots.sorted_probabilities(dists)
    size = np.asarray(next(iter(dists.values()))).shape[0]
    names = list(ranked)
    labels = [plots.divergence_label(n) for n in names]
    rows = [{"model": label, "rank": int(i) + 1, "probability": float(q[i])}
            for label, q in zip(labels, ranked.values()) for i in _thin(q.size, log=True)]
    return {
        "title": title or f"The whole space: all N = {size:,} sequences, sorted by probability",
        "data": {"values": rows},
        "mark": {"type": "line", "strokeWidth": 2.5, "tooltip": True},
        "encoding": {
            "x": {"field": "rank", "type": "quantitative", "scale": {"type": "log"},
                  "title": "rank of the sequence (1 = most likely), log scale"},
            "y": {"field": "probability", "type": "quantitative", "scale": {"type": "log"},
                  "title": "probability (log scale)", "axis": {"format": ".0e"}},
            "color": _legend(names, theme),
            "strokeDash": {"field": "model", "type": "nominal", "sort": labels, "title": None,  # one legend with colour
                           "scale": {"domain": labels, "range": [_DASHES[i % 4] for i in range(len(labels))]}},
            "tooltip": [{"field": "model"}, {"field": "rank"}, {"field": "probability", "format": ".4g"}],
        },
        "height": 430,
        "config": CONFIG,
    }


def training_panels(histories: Mapping, keys=("divergence", "alignment", "kl_from_base", "entropy"), *,
                    target_values: Mapping[str, float] | None = None, cursor: int | None = None,
                    theme: str = "light") -> list[dict]:
    """One chart per metric over the updates, one line per run in its divergence's colour (the data of
    :func:`toyfdiv.plots.training_curves`); the target's value as a dashed rule; ``cursor``: a grey
    vertical rule at that step (the movie).  A divergence panel is on a log axis when it has a
    positive value; each line is thinned to MAX_POINTS evenly spaced records."""
    names = [h.divergence for h in histories.values()]
    labels = list(plots.run_labels(histories).values())
    target_colour = colours(["target"], theme)[0]
    panels = []
    for key in keys:
        rows, ylabel, title = [], "", ""
        for hist, label in zip(histories.values(), labels):
            y, ylabel, title = plots.metric_curve(hist, key)
            steps = np.asarray(hist.step)
            rows += [{"model": label, "step": int(steps[i]), "value": float(y[i])}
                     for i in _thin(len(steps)) if math.isfinite(float(y[i]))]
        log = key.startswith("divergence") and any(r["value"] > 0 for r in rows)
        if log:
            rows = [r for r in rows if r["value"] > 0]
        layers = [{
            "mark": {"type": "line", "strokeWidth": 2.5, "point": len(rows) <= 2 * len(labels), "tooltip": True},
            "encoding": {
                "x": {"field": "step", "type": "quantitative", "title": "update step"},
                "y": {"field": "value", "type": "quantitative", "title": ylabel,
                      "scale": {"type": "log"} if log else {"zero": False}},
                "color": _legend(names, theme, labels),
                "tooltip": [{"field": "model"}, {"field": "step"}, {"field": "value", "format": ".4g"}],
            }}]
        ref = (target_values or {}).get(key)
        if ref is not None and math.isfinite(ref) and (ref > 0 or not log):
            layers.append({"data": {"values": [{"value": float(ref), "what": "target p"}]},
                           "mark": {"type": "rule", "strokeDash": [6, 4], "strokeWidth": 2, "color": target_colour},
                           "encoding": {"y": {"field": "value", "type": "quantitative"},
                                        "tooltip": [{"field": "what"}, {"field": "value", "format": ".4g"}]}})
        if cursor is not None:
            layers.append({"data": {"values": [{"step": int(cursor)}]},
                           "mark": {"type": "rule", "strokeWidth": 2, "color": "#888888"},
                           "encoding": {"x": {"field": "step", "type": "quantitative"}}})
        # a panel is half a column (about 215 px at 150 % zoom on 1280): its legend one name per row
        legend = {**CONFIG["legend"], "columns": 1 if len(labels) <= 4 else 2}
        panels.append({"title": title, "data": {"values": rows}, "layer": layers, "height": 330,
                       "config": {**CONFIG, "legend": legend}})
    return panels


def projected(spec: dict, scale: float = PROJECTOR_SCALE) -> dict:
    """A copy of ``spec`` whose text (every ``*FontSize``/``fontSize`` of its config) is ``scale`` times larger."""
    def grow(node):
        if isinstance(node, dict):
            return {k: (v * scale if k.lower().endswith("fontsize") and isinstance(v, (int, float)) else grow(v))
                    for k, v in node.items()}
        return node
    return {**spec, "config": grow(spec.get("config", {}))}


def show(spec: dict, key: str | None = None) -> None:
    """Draw a spec in the page, as wide as its column, in the page's light or dark theme (larger text in
    projector mode)."""
    if st.session_state.get("app_projector"):
        spec = projected(spec)
    st.vega_lite_chart(spec=spec, width="stretch", theme="streamlit", key=key)


def show_panels(specs: list[dict], columns: int = 2) -> None:
    """Charts side by side, ``columns`` to a row (Streamlit stacks them on a narrow screen)."""
    for start in range(0, len(specs), columns):
        for col, spec in zip(st.columns(columns), specs[start:start + columns]):
            with col:
                show(spec)
