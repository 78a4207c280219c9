"""Figure builders: library objects in, a matplotlib Figure out (OO API, no pyplot, no show()).

Axes carry units (nats, probability), titles say what is shown, and each divergence has one
fixed colour in every figure (:func:`divergence_color`).  Nothing is computed here beyond
drawing: values come from :mod:`toyfdiv.simplex`, :mod:`toyfdiv.experiments` and the library.
"""

from __future__ import annotations

import zlib
from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from . import divergences as _divergences
from . import simplex as _simplex
from ._util import check_int

__all__ = ["STYLE", "divergence_color", "divergence_label", "label_colors", "top_sequences", "sorted_probabilities",
           "metric_curve", "run_labels", "distributions", "training_curves",
           "divergence_zoo", "simplex", "whole_space", "mode_seeking", "frontier", "estimator_stats", "overoptimisation"]

#: Font sizes readable on a lecture projector (all ≥ 12 pt).
STYLE = {"font.size": 13, "axes.titlesize": 15, "axes.labelsize": 14, "xtick.labelsize": 12,
         "ytick.labelsize": 12, "legend.fontsize": 12, "figure.titlesize": 17, "lines.linewidth": 2.2,
         "axes.grid": True, "grid.alpha": 0.3, "savefig.dpi": 110, "savefig.bbox": "tight"}

_PALETTE = {  # one fixed colour per registry key; Okabe–Ito, then Paul Tol's colour-blind-safe set
    "forward_kl": "#0072b2", "reverse_kl": "#d55e00", "tv": "#e69f00", "js": "#009e73", "hellinger": "#cc79a7",
    "pearson": "#56b4e9", "neyman": "#882255", "alpha": "#999933", "gjsd": "#332288"}
#: Fixed labels: the base model, the target, and the methods of the feedback pages (RLHF is reverse KL's
#: colour and GDC forward KL's on every page and figure).
_FIXED = {"base": "#a0a0a0", "target": "#222222", "p": "#222222", "a": "#a0a0a0",
          "RLHF": "#d55e00", "GDC": "#0072b2", "GDC-style": "#0072b2", "DPO": "#aa4499", "f-DPO": "#44aa99"}
_FAMILY_MAPS = {"alpha": ("YlOrBr", -1.0, 2.0), "gjsd": ("GnBu", 0.0, 1.0)}
_SPARE = ["#393b79", "#637939", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354"]
_LINESTYLES, _MARKERS = ["-", "--", ":", "-."], ["o", "s", "^", "D", "v"]


def style():
    return matplotlib.rc_context(STYLE)


def _canonical(key: str) -> str | None:
    """The registry key whose canonical instance is named ``key`` ("alpha(0.5)" → "alpha")."""
    return next((k for k in _divergences.names() if _divergences.get(k).name == key), None)


def divergence_color(name) -> str:
    """The fixed colour (hex) of a divergence across every figure.

    Registry keys and their canonical instances ("alpha", "alpha(0.5)") share a palette colour;
    other α / generalised-JS members get a shade of their family's colormap; "base" is grey,
    "target" black; any other label a stable colour from its name.
    """
    key = str(getattr(name, "name", name)).strip()
    return _known_color(key) or _SPARE[zlib.crc32(key.encode()) % len(_SPARE)]


def _known_color(key: str) -> str | None:
    """The colour of a divergence, "base" or "target"; None for any other label."""
    m = _divergences.parameter(key)  # ("alpha", 0.3) for "alpha(0.3)"
    key = (_canonical(key) or key) if m else key
    if key in _PALETTE or key in _FIXED:
        return _PALETTE.get(key) or _FIXED[key]
    if m:
        cmap, lo, hi = _FAMILY_MAPS[m[0]]
        x = 0.35 + 0.6 * np.clip((m[1] - lo) / (hi - lo), 0.0, 1.0)
        return to_hex(colormaps[cmap](x))
    return None


def label_colors(labels) -> list[str]:
    """The colours of one figure's labels, in order: divergences keep their fixed colours;
    other labels ("DPO", "RLHF on r̂") get distinct spare colours (their own stable one when
    it is free), so two of them never share a colour while spares last."""
    keys = [str(getattr(n, "name", n)).strip() for n in labels]
    known = [_known_color(k) for k in keys]
    used = {c for c in known if c}
    chosen: dict[str, str] = {}
    for k, c in zip(keys, known):
        if c is None and k not in chosen:
            own = divergence_color(k)
            free = [x for x in _SPARE if x not in used]
            chosen[k] = own if own not in used or not free else free[0]
            used.add(chosen[k])
    return [c or chosen[k] for k, c in zip(keys, known)]


def _legend(fig, axes, **kw) -> None:
    """One figure legend with the unique labelled artists of ``axes``, outside the panels."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    fig.legend(list(seen.values()), list(seen), frameon=False, **kw)


def _nonempty(rows) -> list:
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; compute them with toyfdiv.experiments / toyfdiv.estimator_lab first")
    return rows


def _divs(divergences) -> list:
    return list(_divergences.registered()) if divergences is None else [_divergences.get(d) for d in divergences]


def divergence_label(name) -> str:
    """A short display name for a divergence: its title ("forward KL", "α-divergence, α = 0.5")."""
    try:
        return _divergences.get(str(name)).title
    except ValueError:
        return str(name)


def _probs(values, name: str, size: int) -> np.ndarray:
    """Probabilities from a vector given as log-probabilities (the library's convention) or probabilities."""
    v = np.asarray(values, dtype=float)
    if v.shape != (size,):
        raise ValueError(f"distribution {name!r} has shape {v.shape}; expected ({size},), one entry per sequence")
    if np.all(v <= 0) and v.size and abs(np.logaddexp.reduce(v)) < 1e-6:
        return np.exp(v)
    if np.all(v >= 0) and abs(v.sum() - 1.0) < 1e-6:
        return v
    raise ValueError(f"distribution {name!r} is neither normalised log-probabilities nor probabilities")


# ---------------------------------------------------------------------------- what the figures show
def top_sequences(space, dists: Mapping[str, np.ndarray], k: int = 10) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(top, probs): the indices of the k most probable sequences under the first distribution (ties in
    index order) and each distribution's probabilities on them — the data of :func:`distributions`.

    ``dists``: {label: (N,) log-probabilities or probabilities}; k is clipped to 1 … N.
    """
    if not dists:
        raise ValueError("dists is empty; give at least one distribution")
    probs = {name: _probs(v, name, space.size) for name, v in dists.items()}
    k = int(min(max(k, 1), space.size))
    top = np.argsort(-next(iter(probs.values())), kind="stable")[:k]
    return top, {name: p[top] for name, p in probs.items()}


def sorted_probabilities(dists: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{label: q}: each distribution's non-zero probabilities from largest to smallest (q[r − 1] is the
    probability of its rank-r sequence) — the data of :func:`whole_space`."""
    if not dists:
        raise ValueError("dists is empty; give at least one distribution")
    size = np.asarray(next(iter(dists.values()))).shape[0]
    out = {}
    for name, v in dists.items():
        p = _probs(v, name, size)
        out[name] = np.sort(p[p > 0])[::-1]
    return out


# ---------------------------------------------------------------------------- distributions
def distributions(space, dists: Mapping[str, np.ndarray], k: int = 10, title: str | None = None, *,
                  log: bool = False) -> Figure:
    """Grouped horizontal bars: the probability of the top-k sequences (ranked by the first
    distribution) under each distribution, labelled with their decoded text.

    ``dists``: {label: (N,) log-probabilities or probabilities}; labels that are divergence
    names take the divergence's colour, "base" grey, "target" black.  ``log``: a logarithmic
    probability axis (small bars, e.g. the base model's, stay visible next to a sharp target).
    """
    top, probs = top_sequences(space, dists, k)
    first, k, n = next(iter(probs)), top.size, len(probs)
    height = 0.8 / n
    colors = label_colors(list(probs))
    with style():
        fig = Figure(figsize=(10, min(max(3.5, 1.5 + 0.17 * k * n), 9.0)), layout="constrained")
        ax = fig.add_subplot()
        y = np.arange(k)
        for j, (name, p) in enumerate(probs.items()):
            ax.barh(y - 0.4 + (j + 0.5) * height, p, height=height, color=colors[j],
                    label=divergence_label(name), edgecolor="white", linewidth=0.5)
        ax.set_yticks(y, [space.decode(int(i)) for i in top])
        ax.set_ylim(k - 0.5, -0.5)  # the most probable sequence on top
        ax.set(xlabel="probability (log scale)" if log else "probability", ylabel="sequence")
        if log:
            ax.set_xscale("log")
        ax.grid(axis="y", visible=False)
        ax.set_title(title or f"Top {k} sequences (ranked by {divergence_label(first)}): probability under each model")
        ax.legend(loc="lower right", ncols=1 if n <= 6 else 2, framealpha=0.9)
    return fig


def whole_space(dists: Mapping[str, np.ndarray], title: str | None = None) -> Figure:
    """Every sequence at once: each distribution's probabilities sorted from largest to smallest,
    against their rank 1 … N (log–log).  A steep early drop is a concentrated (mode-seeking)
    distribution, a long flat shelf a spread-out (mass-covering) one; zeros are not drawn.

    ``dists``: {label: (N,) log-probabilities or probabilities}, colours as in :func:`distributions`.
    """
    ranked = sorted_probabilities(dists)
    size = np.asarray(next(iter(dists.values()))).shape[0]
    colors = label_colors(list(ranked))
    with style():
        fig = Figure(figsize=(10, 5.2), layout="constrained")
        ax = fig.add_subplot()
        for (name, q), color, ls in zip(ranked.items(), colors, _LINESTYLES * len(ranked)):
            ax.plot(np.arange(1, q.size + 1), q, color=color, ls=ls, label=divergence_label(name))
        ax.set(xscale="log", yscale="log", xlabel="rank of the sequence (1 = most likely), log scale",
               ylabel="probability (log scale)")
        ax.set_title(title or f"The whole space: all N = {size:,} sequences, sorted by probability")
        ax.legend(loc="lower left", framealpha=0.9)
    return fig


# ---------------------------------------------------------------------------- training curves
_CURVE_LABELS = {  # metric: (axis label with unit, panel title)
    "divergence": ("D_f(π‖p) for the run's own f (nats)", "Divergence to the target"),
    "kl_from_base": ("KL(π‖a) (nats)", "KL from the base model"), "entropy": ("H(π) (nats)", "Entropy of the policy"),
    "effective_sequences": ("exp H(π) (sequences)", "Effective number of sequences"),
    "grad_norm": ("‖∇θ D_f‖", "Exact gradient norm"), "lr": ("learning rate", "Learning rate")}


def metric_curve(hist, key: str) -> tuple[np.ndarray, str, str]:
    """(y, axis label, panel title) of one metric of a History, as :func:`training_curves` draws it
    (``key``: "divergence", "alignment" or a metric name; see there)."""
    m = hist.metrics
    if key == "divergence":
        ylabel, title = _CURVE_LABELS[key]
        return np.asarray(m[f"divergence/{hist.divergence}"]), ylabel, title
    if key == "alignment":
        key = next((k for k in m if k.startswith("alignment/")), None)
        if key is None:
            raise ValueError("the history has no alignment metric")
    if key not in m:
        raise ValueError(f"metric {key!r} is not in the history; available: {sorted(m)}")
    if key.startswith("alignment/"):
        what = key.split("/", 1)[1]
        unit = "probability" if what == "constraint" else ("feature mean" if what.startswith("moment/") else "reward units")
        return np.asarray(m[key]), f"E_π[{what}] ({unit})", f"Alignment: E_π[{what}]"
    if key.startswith("divergence/"):
        d = key.split("/", 1)[1]
        return np.asarray(m[key]), f"{divergence_label(d)} (nats)", f"{divergence_label(d)} to the target"
    ylabel, title = _CURVE_LABELS.get(key, (key, key))
    return np.asarray(m[key]), ylabel, title


def run_labels(histories: Mapping) -> dict[str, str]:
    """{key: legend label} of runs: the divergence's label, prefixed by the run's key when two runs
    share a divergence (as :func:`training_curves` labels them)."""
    counts: dict[str, int] = {}
    for hist in histories.values():
        counts[hist.divergence] = counts.get(hist.divergence, 0) + 1
    return {name: (f"{name} — " if counts[h.divergence] > 1 else "") + divergence_label(h.divergence)
            for name, h in histories.items()}


def training_curves(histories: Mapping, keys: Sequence[str] = ("divergence", "alignment", "kl_from_base", "entropy"),
                    *, target_values: Mapping[str, float] | None = None) -> Figure:
    """One panel per metric over training updates, one line per run in its divergence's colour
    (runs that share a divergence are told apart by line style and their key in ``histories``).

    ``keys``: "divergence" (each run's own D_f to the target, log scale), "alignment" (the
    first alignment metric), or any metric name of the History ("kl_from_base", "entropy",
    "alignment/reward", "divergence/js", …).  ``target_values``: {key: value} drawn as a
    dashed black "target p" reference line (e.g. :func:`toyfdiv.experiments.target_row`).
    """
    if not histories:
        raise ValueError("histories is empty")
    keys = list(keys)
    cols = min(len(keys), 2)
    rows = -(-len(keys) // cols)
    with style():
        fig = Figure(figsize=(5.2 * cols, 4.0 * rows + 0.8), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        # runs that share a divergence keep its colour and differ by line style and label
        seen: dict[str, int] = {}
        line_style = {}
        labels = run_labels(histories)
        for name, hist in histories.items():
            j = seen[hist.divergence] = seen.get(hist.divergence, -1) + 1
            line_style[name] = dict(color=divergence_color(hist.divergence), label=labels[name],
                                    ls=("-", "--", ":", "-.")[j % 4])
        for ax, key in zip(axes, keys):
            ylabel = title = ""
            positive = False  # a log axis needs a positive value to show (a run started at p has D = 0)
            for name, hist in histories.items():
                y, ylabel, title = metric_curve(hist, key)
                positive = positive or bool(np.any(y[np.isfinite(y)] > 0))
                sparse = np.isfinite(y).sum() < 2  # a value recorded at the end only: a dot
                ax.plot(hist.step, y, marker="o" if sparse else None, **line_style[name])
            ref = (target_values or {}).get(key)
            if ref is not None:
                ax.axhline(ref, color=_FIXED["target"], ls="--", lw=1.6, label="target p")
            ax.set(xlabel="update step", ylabel=ylabel, title=title,
                   yscale="log" if key.startswith("divergence") and positive else "linear")
        for ax in axes[len(keys):]:
            ax.set_visible(False)
        _legend(fig, axes[:len(keys)], loc="outside lower center", ncols=5)
        fig.suptitle("Training from the base model: one run per divergence")
    return fig


# ---------------------------------------------------------------------------- the zoo
def divergence_zoo(divergences=None, alphas: Sequence[float] | None = None, *, t_range=(0.02, 50.0),
                   ylim: float = 5.0) -> Figure:
    """f(t), f'(t) and the pseudo-reward R = −f'(t) over the ratio t = π/p (log axis).

    Top row: each divergence (default: every registered one) in its colour.  Bottom row:
    the Amari α family as a continuum (colormap over ``alphas``, default −1 … 2), from
    forward KL (α = 0) to reverse KL (α = 1).  The vertical axes show [−ylim, ylim]
    (f: [−0.3·ylim, ylim]); steeper curves leave the frame.
    """
    divs = _divs(divergences)
    alphas = np.linspace(-1.0, 2.0, 13) if alphas is None else np.asarray(alphas, dtype=float)
    t = np.geomspace(*t_range, 400)
    log_t = np.log(t)
    panels = [("f(t)", "f(t), nats per unit of p", lambda d: d.f(t)),
              ("f'(t)", "f'(t)", lambda d: d.f_prime(t)),
              ("R = −f'(t)", "pseudo-reward R", lambda d: d.pseudo_reward(log_t))]
    norm = Normalize(float(alphas.min()), float(alphas.max()) if alphas.max() > alphas.min() else alphas.min() + 1)
    cmap = colormaps["viridis"]
    with style():
        fig = Figure(figsize=(10.5, 9.0), layout="constrained")
        axes = fig.subplots(2, 3, sharex=True)
        for col, (title, ylabel, fn) in enumerate(panels):
            top, bottom = axes[0, col], axes[1, col]
            for d in divs:
                top.plot(t, fn(d), color=divergence_color(d.name), label=divergence_label(d.name))
            for a in alphas:
                bottom.plot(t, fn(_divergences.alpha(float(a))), color=cmap(norm(a)), lw=1.6, label=f"α = {a:g}")
            for ax, what in ((top, ""), (bottom, ", α family")):
                ax.set(xscale="log", ylim=(-0.3 * ylim if col == 0 else -ylim, ylim), ylabel=ylabel,
                       title=f"{title}{what}")
                ax.axvline(1.0, color="k", lw=0.8, alpha=0.5)
                ax.axhline(0.0, color="k", lw=0.8, alpha=0.5)
            bottom.set_xlabel("t = π/p (log)")
        ticks = [v for v in (0.01, 0.1, 1, 10, 100) if t_range[0] <= v <= t_range[1]]
        for ax in axes.ravel():  # plain numbers a student reads at a glance (and no mathtext to typeset)
            ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
            ax.xaxis.set_minor_locator(NullLocator())
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", frameon=False,
                   ncols=min(5, max(1, len(divs))))
        fig.colorbar(ScalarMappable(norm, cmap), ax=axes[1, :].tolist(), label="α  (0: forward KL, 1: reverse KL)",
                     shrink=0.9)
        fig.suptitle("The divergence zoo: f, its slope f' and the pseudo-reward −f'")
    return fig


# ---------------------------------------------------------------------------- simplex
def _triangle(ax, labels=("x₁", "x₂", "x₃")):
    v = _simplex.CORNERS
    ax.plot(*np.vstack([v, v[:1]]).T, color="k", lw=1.2)
    for (x, y), lab, dx, dy in zip(v, labels, (-0.04, 0.04, 0.0), (-0.02, -0.02, 0.03)):
        ax.text(x + dx, y + dy, lab, ha="center", va="top" if dy < 0 else "bottom", fontsize=13)
    ax.set(aspect="equal", xlim=(-0.1, 1.1), ylim=(-0.1, 0.97))
    ax.axis("off")


def simplex(log_p, divergences=None, start=None, steps: int = 300, lr: float = 0.5, *,
            resolution: int = 120, ncols: int | None = None, panels=None) -> Figure:
    """The 3-outcome simplex: contours of D_f(π‖p) and the exact f-DPG gradient flow of a
    tabular policy from one start, one panel per divergence, plus all paths overlaid.

    ``log_p``: (3,) target log-probabilities; ``start``: (3,) starting probabilities
    (default: :data:`toyfdiv.simplex.DEFAULT_START`); ``ncols``: panels per row (default:
    up to 5; fewer, larger triangles read better on a projector).  The numbers are
    ``panels`` (:func:`toyfdiv.simplex.panels`), computed from the other arguments when not given;
    this function only draws them.
    """
    start = _simplex.DEFAULT_START if start is None else np.asarray(start, dtype=float)
    if panels is None:
        panels = _simplex.panels(log_p, divergences, start, steps=steps, lr=lr, resolution=resolution)
    divs = list(panels)
    p_xy, s_xy = _simplex.to_xy(np.exp(np.asarray(log_p, dtype=float))), _simplex.to_xy(start)
    cols = min(len(divs) + 1, 5 if ncols is None else check_int(ncols, "ncols"))
    rows = -(-(len(divs) + 1) // cols)
    with style():
        fig = Figure(figsize=(3.5 * cols, 3.5 * rows + 0.6), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        _triangle(overlay := axes[len(divs)])
        for ax, d in zip(axes, divs):
            _triangle(ax)
            ax.contourf(d.X, d.Y, d.D, levels=d.levels, cmap="Greys_r", alpha=0.55, extend="max")
            ax.contour(d.X, d.Y, d.D, levels=d.levels, colors="k", linewidths=0.5, alpha=0.5)
            path = _simplex.to_xy(d.path)
            for a in (ax, overlay):
                a.plot(path[:, 0], path[:, 1], color=divergence_color(d.name), lw=2.6, label=divergence_label(d.name))
            ax.set_title(divergence_label(d.name), fontsize=14)
        for a in axes[: len(divs) + 1]:
            a.plot(*p_xy, marker="*", ms=18, color="gold", mec="k", ls="none", label="target p", zorder=5)
            a.plot(*s_xy, marker="o", ms=9, color="white", mec="k", ls="none", label="start π₀", zorder=5)
        overlay.set_title("all paths", fontsize=14)
        for ax in axes[len(divs) + 1:]:
            ax.set_visible(False)
        _legend(fig, [overlay], loc="outside lower center", ncols=6)
        fig.suptitle(f"Three outcomes x₁, x₂, x₃: contours of D_f(π‖p) over every π,{' ' if cols > 3 else chr(10)}"
                     f"and the exact f-DPG gradient flow from π₀ (time {steps * lr:g})")
    return fig


def mode_seeking(log_p=None, divergences=None, *, mu0: float = 1.2, width: float = 0.5,
                 steps: int = 300, lr: float = 0.5, ends=None) -> Figure:
    """Mode seeking vs mode covering, seen: a unimodal one-parameter family (the curve)
    fitted to a two-mode target p by each divergence's exact f-DPG flow from μ₀.

    Left: the simplex with the family's curve, p, and where each flow ends.  Right: the
    end point's probabilities per divergence next to p.  The numbers are ``ends``
    (:func:`toyfdiv.simplex.mode_seeking_ends`), computed from the other arguments when not
    given; this function only draws them.
    """
    log_p = _simplex.BIMODAL_TARGET if log_p is None else np.asarray(log_p, dtype=float)
    if ends is None:
        ends = _simplex.mode_seeking_ends(log_p, divergences, mu0=mu0, width=width, steps=steps, lr=lr)
    with style():
        fig = Figure(figsize=(10.5, 5.5), layout="constrained")
        ax, bx = fig.subplots(1, 2, width_ratios=(1, 1.25))
        _triangle(ax)
        curve = _simplex.to_xy(_simplex.family_curve(width))
        ax.plot(curve[:, 0], curve[:, 1], color="0.45", lw=2, ls="--", label="the family π_μ")
        ax.plot(*_simplex.to_xy(np.exp(log_p)), marker="*", ms=20, color="gold", mec="k", ls="none",
                label="target p", zorder=5)
        for name, end in ends.items():
            ax.plot(*_simplex.to_xy(end), marker="o", ms=11, color=divergence_color(name), mec="k",
                    ls="none", label=divergence_label(name), zorder=6)
        ax.set_title("best unimodal fit of a two-mode target", fontsize=14)
        width_bar = 0.8 / (len(ends) + 1)
        xs = np.arange(3)
        bx.bar(xs - 0.4 + width_bar / 2, np.exp(log_p), width_bar, color="gold", edgecolor="k", label="target p")
        for i, (name, end) in enumerate(ends.items(), start=1):
            bx.bar(xs - 0.4 + width_bar * (i + 0.5), end, width_bar, color=divergence_color(name),
                   label=divergence_label(name))
        bx.set(xticks=xs, xticklabels=["x₁", "x₂", "x₃"], ylabel="probability", ylim=(0, 1),
               title="where each divergence puts the mass")
        _legend(fig, [ax], loc="outside lower center", ncols=min(6, len(ends) + 2))
        fig.suptitle("Mode seeking (reverse KL: one mode) vs mode covering (forward KL: the valley between)")
    return fig


# ---------------------------------------------------------------------------- frontier
def frontier(rows: Sequence[Mapping]) -> Figure:
    """Alignment against entropy H(π) and against KL(π‖a) at the end of training, one
    line per divergence across β (rows of :func:`toyfdiv.experiments.frontier`); the target
    p_β itself is the dashed black reference."""
    rows = _nonempty(rows)
    names = list(dict.fromkeys(r["divergence"] for r in rows))
    what = rows[0].get("alignment_key") or "alignment"
    with style():
        fig = Figure(figsize=(10.5, 5.5), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        for ax, x, xlabel in ((axes[0], "entropy", "entropy H(π) (nats)"),
                              (axes[1], "kl_from_base", "KL(π‖a) from the base model (nats)")):
            if all(f"target_{x}" in r for r in rows):
                ref = sorted({(r["beta"], r[f"target_{x}"], r["target_alignment"]) for r in rows})
                ax.plot([c[1] for c in ref], [c[2] for c in ref], ls="--", color=_FIXED["target"], lw=1.8,
                        marker="*", ms=11, label="target p_β")
                for beta, xv, yv in ref:
                    ax.annotate(f"β = {beta:g}", (xv, yv), xytext=(8, 4), textcoords="offset points", fontsize=12)
            for name in names:
                rs = sorted((r for r in rows if r["divergence"] == name), key=lambda r: r["beta"])
                ax.plot([r[x] for r in rs], [r["alignment"] for r in rs], marker="o", ms=6,
                        color=divergence_color(name), label=divergence_label(name))
            ax.set(xlabel=xlabel, title=f"Alignment vs {'diversity' if x == 'entropy' else 'distance from the base'}")
        axes[0].set_ylabel(f"alignment E_π[{what}] ({'probability' if what == 'constraint' else 'reward units'})")
        _legend(fig, axes[:1], loc="outside right center")
        betas = sorted({r["beta"] for r in rows})
        fig.suptitle(f"The alignment–diversity frontier across β ∈ {{{', '.join(f'{b:g}' for b in betas)}}}")
    return fig


# ---------------------------------------------------------------------------- estimators
def estimator_stats(rows: Sequence[Mapping]) -> Figure:
    """Bias ‖E ĝ − g‖, variance tr Cov ĝ and mean cosine(ĝ, g) of the sampled f-DPG
    gradient against the sample size n; colour = divergence, line style = baseline,
    marker = how Z is estimated (rows of ``toyfdiv.estimator_lab.estimator_stats``).  Rows
    with ``bias_se`` add a dotted noise floor to the bias panel: a measured bias near it is
    indistinguishable from zero."""
    rows = _nonempty(rows)
    key_of = lambda r: (r.get("divergence", ""), r["baseline"], r["z"])  # noqa: E731
    groups = list(dict.fromkeys(key_of(r) for r in rows))
    divs, baselines, zs = (list(dict.fromkeys(g[i] for g in groups)) for i in range(3))
    with style():
        fig = Figure(figsize=(10.5, 5.5), layout="constrained")
        axes = fig.subplots(1, 3)
        for ax, key, ylabel, log in ((axes[0], "bias", "bias ‖E ĝ − g‖", True),
                                     (axes[1], "variance", "variance tr Cov ĝ", True),
                                     (axes[2], "cosine", "mean cos(ĝ, g)", False)):
            log = log and any(r[key] > 0 for r in rows)  # all exactly 0 (g = 0): a linear axis at 0
            shown = (lambda v: np.where(v > 0, v, np.nan)) if log else (lambda v: v)  # noqa: E731  log: no zeros
            for d, b, z in groups:
                rs = sorted((r for r in rows if key_of(r) == (d, b, z)), key=lambda r: r["n"])
                ns, ys = np.array([[r["n"], r[key]] for r in rs], dtype=float).T
                ys = shown(ys)
                label = ", ".join(s for s in (divergence_label(d) if len(divs) > 1 else "",
                                              f"baseline {b}", f"Z {z}") if s)
                ax.plot(ns, ys, color=divergence_color(d),
                        ls=_LINESTYLES[baselines.index(b) % 4], marker=_MARKERS[zs.index(z) % 5], ms=7, label=label)
                if key == "bias" and all("bias_se" in r for r in rs):  # below it, bias is sampling noise
                    floor = shown(np.array([r["bias_se"] for r in rs], dtype=float))
                    ax.plot(ns, floor, color=divergence_color(d), lw=1, ls=":", alpha=0.5)
            ax.set(xscale="log", yscale="log" if log else "linear", xlabel="samples n",
                   ylabel=ylabel)
            sizes = sorted({int(r["n"]) for r in rows})  # tick exactly the measured n
            ax.set_xticks(sizes, [str(n) for n in sizes])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_title({"bias": "Bias", "variance": "Variance", "cosine": "Alignment cos(ĝ, g)"}[key])
        if any("bias_se" in r for r in rows):
            axes[0].text(0.02, 0.02, "dotted: noise floor", transform=axes[0].transAxes, color="0.3")
        # one short legend entry per colour, per line style and per marker instead of one per line
        handles = [Line2D([], [], color=divergence_color(d), lw=3, label=divergence_label(d)) for d in divs if d]
        handles += [Line2D([], [], color="0.4", ls=_LINESTYLES[i % 4], label=f"baseline {b}")
                    for i, b in enumerate(baselines)]
        handles += [Line2D([], [], color="0.4", ls="none", marker=_MARKERS[i % 5], ms=8, label=f"Z {z}")
                    for i, z in enumerate(zs)]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), frameon=False)
        who = ", ".join(divergence_label(d) for d in divs if d)
        fig.suptitle(f"Sampled f-DPG gradient vs the exact one{': ' + who if who else ''}")
    return fig


# ---------------------------------------------------------------------------- over-optimisation
def _curve_arrays(curve) -> dict[str, np.ndarray]:
    keys = ("beta", "true", "proxy", "kl")
    if hasattr(curve, "betas"):
        curve = {"beta": curve.betas, "true": curve.true, "proxy": curve.proxy, "kl": getattr(curve, "kl", None)}
    if isinstance(curve, Mapping):
        out = {k: curve.get(k, curve.get("betas") if k == "beta" else None) for k in keys}
    else:
        rows = list(curve)
        out = {k: [r[k] for r in rows] if all(k in r for r in rows) else None for k in keys}
    if out["beta"] is None or out["true"] is None or out["proxy"] is None:
        raise ValueError("curve needs beta, true and proxy (an OveroptimisationCurve, a dict, or rows of dicts)")
    return {k: None if v is None else np.asarray(v, dtype=float) for k, v in out.items()}


def overoptimisation(curve) -> Figure:
    """True utility E_{p_β}[u] and proxy reward E_{p_β}[r̂] as the optimisation pressure grows
    (KL(p_β‖a) in nats if given, else 1/β): the proxy keeps rising while the truth peaks."""
    c = _curve_arrays(curve)
    order = np.argsort(-c["beta"])
    has_kl = c["kl"] is not None
    x = c["kl"][order] if has_kl else 1.0 / c["beta"][order]
    true, proxy = c["true"][order], c["proxy"][order]
    with style():
        fig = Figure(figsize=(10, 6.2), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(x, proxy, color="#b8860b", ls="--", label="proxy reward E[r̂] (what is optimised)")
        ax.plot(x, true, color="#222222", label="true utility E[u] (what we wanted)")
        i = int(np.argmax(true))
        best_x, best_beta = x[i], c["beta"][order][i]
        if hasattr(curve, "turning_beta"):  # the library's refined turning point
            best_beta = curve.turning_beta
            best_x = curve.turning_kl if has_kl else 1.0 / curve.turning_beta
        ax.axvline(best_x, color="k", ls=":", lw=1.5, label=f"best true utility (β* ≈ {best_beta:.3g})")
        ax.set(xscale="linear" if has_kl else "log",
               ylabel="E[u]: utility units · E[r̂]: Bradley–Terry units (ũ/τ)",
               xlabel="KL(p_β‖a) from the base model (nats)" if has_kl else "optimisation pressure 1/β")
        ax.set_title("Reward over-optimisation: RLHF targets p_β = a·exp(r̂/β)/Z on a learned proxy r̂")
        ax.legend(loc="best")
    return fig
