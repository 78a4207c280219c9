"""Figures for preference optimisation beyond DPO and for the diversity question.

Library objects in, a matplotlib Figure out (OO API, no pyplot), in the style of
:mod:`toyfdiv.plots` (whose colours and fonts it reuses).  Nothing is computed here beyond
drawing: the numbers come from :mod:`toyfdiv.feedback` (gold curves, KTO), :mod:`toyfdiv.diversity`
and :mod:`toyfdiv.distill`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .plots import style, divergence_color, label_colors

__all__ = ["gold_curves", "pass_at_k", "distinct_correct", "gkd_grid", "three_outputs", "collapse_curves"]


def _nonempty(x, name: str):
    if not x:
        raise ValueError(f"{name} is empty; compute it with the library first")
    return x


#: a gold-utility decline below this (reward units, the legend's 2 decimals) is reported as none
DECLINE_TIE = 0.005


def gold_curves(curves: Mapping) -> Figure:
    """Gold utility E_π[u] of each method's exact optimum against 1/β (log axis), peaks marked.

    ``curves``: {method: GoldCurve} from :func:`toyfdiv.feedback.gold_utility_curves`.
    """
    curves = _nonempty(dict(curves), "curves")
    with style():
        fig = Figure(figsize=(10, 6.2), layout="constrained")
        ax = fig.add_subplot()
        for (name, c), color in zip(curves.items(), label_colors(list(curves))):
            x = 1.0 / np.asarray(c.betas)
            after = f"then −{c.decline:.2f}" if c.decline >= DECLINE_TIE else f"no decline past it (< {DECLINE_TIE:g})"
            ax.plot(x, c.gold, color=color, marker="o", ms=4,
                    label=f"{name}: peak {c.peak:.2f} at β = {c.peak_beta:.3g}, {after}")
            ax.plot([1.0 / c.peak_beta], [c.peak], marker="*", ms=16, color=color, mec="k")
        ax.set(xscale="log", xlabel="optimisation pressure 1/β", ylabel="gold utility E_π[u] (reward units)")
        ax.set_title("Over-optimisation of each method's exact optimum on the same preference pairs")
        ax.legend(loc="best")
    return fig


def pass_at_k(curves: Mapping[str, np.ndarray], ks: Sequence[int]) -> Figure:
    """pass@k against k, one line per policy: ``curves`` = {label: (K,) pass@k values at ``ks``}."""
    curves = _nonempty(dict(curves), "curves")
    ks = np.asarray(ks)
    with style():
        fig = Figure(figsize=(9, 5.8), layout="constrained")
        ax = fig.add_subplot()
        for (name, y), color, ls in zip(curves.items(), label_colors(list(curves)), ["-", "--", ":", "-."] * 5):
            y = np.asarray(y, dtype=float)
            if y.shape != ks.shape:
                raise ValueError(f"curves[{name!r}] has shape {y.shape}; expected {ks.shape}, one value per k")
            ax.plot(ks, y, color=color, ls=ls, marker="o", ms=4, label=name)
        ax.set(xscale="log", xlabel="k (independent samples)", ylabel="pass@k = 1 − (1 − P(correct))^k", ylim=(0, 1.02))
        ax.set_title("pass@k: exact, per policy")
        ax.legend(loc="lower right")
    return fig


def collapse_curves(study) -> Figure:
    """pass@k and E[#distinct correct] against k (log axis) for each policy of a
    :class:`toyfdiv.collapse.CollapseStudy` (the base a first, grey dashed)."""
    keys = list(_nonempty(dict(study.pass_at_k), "study.pass_at_k"))
    ks = np.asarray(study.ks)
    with style():
        fig = Figure(figsize=(14, 6), layout="constrained")
        for j, (data, ylabel) in enumerate(((study.pass_at_k, "pass@k, averaged over prompts"),
                                            (study.distinct_correct, "E[# distinct correct answers], averaged"))):
            ax = fig.add_subplot(1, 2, j + 1)
            for name, color, ls in zip(keys, label_colors(keys), ["--", "-", "-.", "-", ":"] * 3):
                y = np.asarray(data[name], dtype=float)
                if y.shape != ks.shape:
                    raise ValueError(f"study[{name!r}] has shape {y.shape}; expected {ks.shape}, one value per k")
                ax.plot(ks, y, color=divergence_color("base") if name == keys[0] else color, ls=ls, marker="o", ms=4,
                        label=name)
            ax.set(xscale="log", xlabel="k (independent samples per prompt)", ylabel=ylabel)
            if j == 0:
                ax.legend(loc="lower right")
        fig.suptitle("Where training loses pass@k: the same RL fixed point with per-prompt and shared parameters")
    return fig


def distinct_correct(rows: Sequence[Mapping], key: str = "distinct_correct") -> Figure:
    """E[#distinct correct answers in k] (or another ``key`` of the rows) against β, one line per f.

    ``rows``: :func:`toyfdiv.diversity.diversity_rows`; the base model's value is the grey line.
    """
    rows = _nonempty(list(rows), "rows")
    names = list(dict.fromkeys(r["divergence"] for r in rows))
    with style():
        fig = Figure(figsize=(10, 6), layout="constrained")
        ax = fig.add_subplot()
        for name in names:
            sel = sorted((r for r in rows if r["divergence"] == name), key=lambda r: r["beta"])
            ax.plot([r["beta"] for r in sel], [r[key] for r in sel], color=divergence_color(name), marker="o", ms=4,
                    label=name)
        base = rows[0].get("base_" + key)
        if base is not None:
            ax.axhline(base, color=divergence_color("base"), ls="--", label="base model a")
        ax.set(xscale="log", xlabel="β (regularisation strength)",
               ylabel={"distinct_correct": "E[# distinct correct answers]", "pass_at_k": "pass@k",
                       "p_correct": "P(correct)"}.get(key, key))
        ax.set_title("Exact f-regularised targets argmax E_π[r] − β D_f(π‖a)")
        ax.legend(loc="best", ncols=2)
    return fig


def gkd_grid(rows: Sequence[Mapping], keys=("entropy", "reverse_kl")) -> Figure:
    """Heat maps over on-policy fraction λ × skew β of the GKD fixed points (:func:`toyfdiv.distill.gkd_grid`)."""
    rows = _nonempty(list(rows), "rows")
    lams = sorted({r["lam"] for r in rows})
    betas = sorted({r["beta"] for r in rows})
    labels = {"entropy": "student entropy H(q) (nats)", "reverse_kl": "KL(q ‖ teacher) (nats)",
              "forward_kl": "KL(teacher ‖ q) (nats)", "teacher_log_lik": "E_q[log p_T] (nats)"}
    with style():
        fig = Figure(figsize=(6.2 * len(keys), 5.2), layout="constrained")
        for j, key in enumerate(keys):
            ax = fig.add_subplot(1, len(keys), j + 1)
            grid = np.full((len(lams), len(betas)), np.nan)
            for r in rows:
                grid[lams.index(r["lam"]), betas.index(r["beta"])] = r[key]
            im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
            for i in range(len(lams)):
                for k in range(len(betas)):
                    ax.text(k, i, f"{grid[i, k]:.3f}", ha="center", va="center", color="w", fontsize=12)
            ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
            ax.set_yticks(range(len(lams)), [f"{x:g}" for x in lams])
            ax.set(xlabel="skew β (0 = forward KL, 1 = reverse KL)", ylabel="on-policy fraction λ", title=labels.get(key, key))
            ax.grid(False)
            fig.colorbar(im, ax=ax, shrink=0.8)
        fig.suptitle("GKD fixed points of a unigram student distilled from a bigram teacher")
    return fig


def three_outputs(dists: Mapping[str, np.ndarray], labels=("a", "b", "c")) -> Figure:
    """Bars of a few distributions over three outputs (the IPO vs DPO example): {label: (3,) probabilities}."""
    dists = _nonempty(dict(dists), "dists")
    with style():
        fig = Figure(figsize=(9, 5), layout="constrained")
        ax = fig.add_subplot()
        width = 0.8 / len(dists)
        for j, ((name, p), color) in enumerate(zip(dists.items(), label_colors(list(dists)))):
            p = np.asarray(p, dtype=float)
            if p.shape != (len(labels),):
                raise ValueError(f"dists[{name!r}] has shape {p.shape}; expected ({len(labels)},)")
            x = np.arange(len(labels)) + (j - (len(dists) - 1) / 2) * width
            ax.bar(x, p, width, color=color, label=name)
            for xi, pi in zip(x, p):
                ax.text(xi, pi + 0.01, f"{pi:.3f}", ha="center", fontsize=12)
        ax.set_xticks(range(len(labels)), labels)
        ax.set(ylabel="probability", ylim=(0, 1.1))
        ax.set_title("One pair a ≻ b, uniform reference")
        ax.legend(loc="upper right")
    return fig
