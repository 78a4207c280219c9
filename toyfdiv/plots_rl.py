"""Figures for :mod:`toyfdiv.rl`: library numbers in, a matplotlib Figure out (OO API, no pyplot).

- :func:`update_table`: each algorithm's expected update against the exact gradient (cosine, scale);
- :func:`grpo_weight`: GRPO's per-prompt weight w(p) for several G, with its large-G limit;
- :func:`length_drift`: the first-order change of the expected length of right and wrong answers;
- :func:`atlas`: where training ends, each fixed point against the RLHF target and the k3 form;
- :func:`clip_region`: PPO's clipped objective min(ρA, clip(ρ)A) and where its gradient is zero;
- :func:`clip_entropy`: the entropy change of clip-low / clip-high against the unclipped control.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .plots import STYLE, style
from .rl.ppo import clipped_objective

__all__ = ["update_table", "grpo_weight", "length_drift", "atlas", "atlas_yscale", "ATLAS_LOG_DECADES",
           "ATLAS_FLOOR_DECADES", "clip_region", "clip_entropy", "STYLE"]

#: the atlas's y-axis turns logarithmic when its positive values span more than this many decades: on a
#: linear axis a bar 10^-1.5 ≈ 3 % of the tallest is a sliver that cannot be read from the back of a room
ATLAS_LOG_DECADES = 1.5
#: a log axis shows at most this many decades below the tallest value (smaller masses sit on the axis)
ATLAS_FLOOR_DECADES = 6


def update_table(rows: Sequence[Mapping]) -> Figure:
    """Bars of cos(u, g) (± the relative noise floor) and scale ⟨u, g⟩/‖g‖² per algorithm (rl.update_table rows)."""
    names = [r["algorithm"] for r in rows]
    x = np.arange(len(rows))
    with style():
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        a1, a2 = fig.subplots(1, 2)
        a1.bar(x, [r["cosine"] for r in rows], yerr=[r["noise"] for r in rows], color="#1f77b4", capsize=4)
        a1.axhline(1.0, color="#222222", lw=1)
        a1.set_ylim(min(0.0, min(r["cosine"] for r in rows) - 0.05), 1.05)
        a1.set_ylabel("cos(E[update], exact gradient)")
        a2.bar(x, [r["scale"] for r in rows], color="#ff7f0e")
        a2.axhline(1.0, color="#222222", lw=1)
        a2.set_ylabel("scale ⟨u, g⟩ / ‖g‖²")
        for ax in (a1, a2):
            ax.set_xticks(x, names, rotation=35, ha="right")
        fig.suptitle("Expected update of each algorithm against the exact RLHF gradient")
    return fig


def grpo_weight(p: np.ndarray, weights: Mapping[int, np.ndarray], limit: np.ndarray | None = None) -> Figure:
    """w(p) against the success probability p, one line per G (rl.effective_weight), and the G → ∞ limit."""
    with style():
        fig = Figure(figsize=(7, 4.5), layout="constrained")
        ax = fig.subplots()
        for k, (G, w) in enumerate(weights.items()):
            ax.plot(p, w, label=f"G = {G}", color=f"C{k}")
        if limit is not None:
            ax.plot(p, limit, "--", color="#222222", label="1/√(p(1 − p)), G → ∞")
        ax.axhline(1.0, color="#b8b8b8", lw=1, label="unbiased (RLOO)")
        ax.set_yscale("log")
        ax.set_xlabel("success probability p of the prompt")
        ax.set_ylabel("w(p) = E[GRPO update] / ∇p")
        ax.set_title("GRPO reweights prompts by difficulty (binary rewards)")
        ax.legend()
    return fig


def length_drift(drifts: Mapping[str, Mapping[float, float]]) -> Figure:
    """Grouped bars: for each algorithm, d/dη E[|y| | reward r] along its expected update, per reward value."""
    names = list(drifts)
    values = sorted({r for d in drifts.values() for r in d})
    width = 0.8 / max(len(values), 1)
    with style():
        fig = Figure(figsize=(7.5, 4.3), layout="constrained")
        ax = fig.subplots()
        for k, r in enumerate(values):
            ax.bar(np.arange(len(names)) + (k - (len(values) - 1) / 2) * width,
                   [drifts[n].get(r, np.nan) for n in names], width, label=f"answers with reward {r:g}",
                   color=f"C{k}")
        ax.axhline(0.0, color="#222222", lw=1)
        ax.set_xticks(np.arange(len(names)), names)
        ax.set_ylabel("d E[|y| | answer] / d step (tokens)")
        ax.set_title("Length drift with a length-blind reward")
        ax.legend()
    return fig


def atlas_yscale(dists: Mapping[str, np.ndarray]) -> tuple[str, float | None]:
    """("log", bottom) if log₁₀(max π / min π) > ATLAS_LOG_DECADES over the positive π = exp(log π) of ``dists``,
    else ("linear", None); bottom = max(min π / 10, 10^-ATLAS_FLOOR_DECADES · max π).

    The bottom sits a decade under the smallest mass, so that its bar is a decade tall (a
    quarter of an axis spanning three decades or more).  Exact zeros (log π = −inf) are left
    out of the span: they are zero on either axis.
    """
    pi = np.exp(np.concatenate([np.asarray(v, dtype=float).reshape(-1) for v in dists.values()]))
    pi = pi[np.isfinite(pi) & (pi > 0)]
    if pi.size == 0:
        raise ValueError("dists has no positive probability; expected log π vectors with some finite entries")
    top, low = pi.max(), pi.min()
    if np.log10(top / low) <= ATLAS_LOG_DECADES:
        return "linear", None
    return "log", float(max(low / 10.0, top * 10.0 ** -ATLAS_FLOOR_DECADES))


def atlas(space, dists: Mapping[str, np.ndarray], divergences: Mapping[str, Mapping[str, float]] | None = None
          ) -> Figure:
    """π(y) for every response y of a small space: targets as outlines, fixed points as bars (rl.atlas).

    The y-axis is logarithmic when the masses span more than ATLAS_LOG_DECADES decades
    (:func:`atlas_yscale`), so that a bar of 0.02 next to one of 0.9 stays readable.
    """
    scale, bottom = atlas_yscale(dists)
    labels = space.decode_all()
    x = np.arange(len(labels))
    targets = [k for k in dists if "target" in k or "form" in k]
    points = [k for k in dists if k not in targets]
    width = 0.8 / max(len(points), 1)
    with style():
        fig = Figure(figsize=(max(8, 0.6 * len(labels)), 4.8), layout="constrained")
        ax = fig.subplots()
        for k, name in enumerate(points):
            label = name if not divergences else (
                name + " (" + ", ".join(f"KL to {t.split()[0]} {v:.1e}" for t, v in divergences[name].items()) + ")")
            ax.bar(x + (k - (len(points) - 1) / 2) * width, np.exp(dists[name]), width, label=label, color=f"C{k}")
        for k, name in enumerate(targets):
            ax.step(np.r_[x - 0.5, x[-1] + 0.5], np.r_[np.exp(dists[name]), np.exp(dists[name])[-1]], where="post",
                    color="#222222", ls=["-", "--", ":"][k % 3], label=name)
        ax.set_xticks(x, labels, rotation=60, ha="right")
        if scale == "log":
            ax.set_yscale("log")
            ax.set_ylim(bottom, 1.5)
            ax.set_ylabel("π(y), log scale")
        else:
            ax.set_ylabel("π(y)")
        ax.set_title("Fixed-point atlas: where each algorithm ends")
        ax.legend(fontsize=10)
    return fig


def clip_region(clip_low: float = 0.2, clip_high: float = 0.2) -> Figure:
    """min(ρA, clip(ρ)A) against ρ for A = +1 and A = −1; the shaded ρ have zero gradient."""
    rho = np.linspace(0.0, 2.0, 401)
    with style():
        fig = Figure(figsize=(10, 4), layout="constrained")
        for ax, A in zip(fig.subplots(1, 2), (1.0, -1.0)):
            ax.plot(rho, clipped_objective(rho, A, clip_low, clip_high), color="#1f77b4", label="clipped")
            ax.plot(rho, rho * A, ":", color="#b8b8b8", label="ρA, unclipped")
            if A > 0:
                ax.axvspan(1 + clip_high, 2.0, color="#d62728", alpha=0.15, label="gradient 0")
            else:
                ax.axvspan(0.0, 1 - clip_low, color="#d62728", alpha=0.15, label="gradient 0")
            ax.set_xlabel("ratio ρ = π/π_old")
            ax.set_ylabel("objective")
            ax.set_title(f"A {'>' if A > 0 else '<'} 0  (ε_low = {clip_low:g}, ε_high = {clip_high:g})")
            ax.legend()
    return fig


def clip_entropy(studies: Mapping[str, object]) -> Figure:
    """ΔH = H(variant) − H(unclipped control) ± s.e., per start policy (rl.clip_entropy_study results)."""
    starts = list(studies)
    variants = list(next(iter(studies.values())).delta)
    width = 0.8 / len(variants)
    with style():
        fig = Figure(figsize=(8, 4.3), layout="constrained")
        ax = fig.subplots()
        for k, v in enumerate(variants):
            ax.bar(np.arange(len(starts)) + (k - (len(variants) - 1) / 2) * width,
                   [studies[s].delta[v] for s in starts], width, yerr=[studies[s].stderr[v] for s in starts],
                   capsize=4, label=v, color=f"C{k}")
        ax.axhline(0.0, color="#222222", lw=1)
        ax.set_xticks(np.arange(len(starts)), starts)
        ax.set_ylabel("ΔH vs unclipped control (nats)")
        ax.set_title("Clipping under random rewards moves the entropy")
        ax.legend()
    return fig
