"""Figure builders: each returns a Figure with the expected artists, fixed colours, ≥ 12 pt text, and saves to PNG."""

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Text

from toyfdiv import SequenceSpace, divergences, experiments, plots, simplex, tasks

DIVS = ["forward_kl", "reverse_kl", "js"]


@pytest.fixture(scope="module")
def task():
    return tasks.default()


@pytest.fixture(scope="module")
def target(task):
    return experiments.make_target(task)


@pytest.fixture(scope="module")
def histories(task):
    return experiments.compare(task, steps=15)  # every registered divergence


@pytest.fixture(scope="module")
def frontier_rows(task):
    return experiments.frontier(task, DIVS[:2], betas=(0.5, 2.0), steps=10, policy="ngram")


def _labelled(ax):
    return [h for h, lab in zip(*ax.get_legend_handles_labels())]


def _color_of(ax, label):
    lines = [ln for ln in ax.lines if ln.get_label() == label]
    assert lines, f"no line labelled {label!r}"
    return to_rgba(lines[0].get_color())


def _check_png(fig, path):
    assert isinstance(fig, Figure)
    fig.savefig(path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def _check_fonts(fig):
    fig.canvas.draw()  # lay out, so every text exists
    small = [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text() and t.get_fontsize() < 12]
    assert not small, f"texts under 12 pt: {small[:5]}"


def test_divergence_color_is_fixed_and_distinct():
    keys = divergences.names()
    colours = [plots.divergence_color(k) for k in keys]
    assert len(set(colours)) == len(keys)
    for k in keys:  # the canonical instance ("alpha(0.5)") shares its key's colour
        assert plots.divergence_color(divergences.get(k).name) == plots.divergence_color(k)
        assert plots.divergence_color(divergences.get(k)) == plots.divergence_color(k)
    assert plots.divergence_color("alpha(0.3)") not in colours
    assert plots.divergence_color("alpha(0.3)") != plots.divergence_color("alpha(1.5)")
    assert plots.divergence_color("something else") == plots.divergence_color("something else")


def test_distributions(task, target, histories, tmp_path):
    dists = experiments.final_policies(task, target, histories)
    chosen = {k: dists[k] for k in ["target", "base", "reverse_kl", "forward_kl"]}
    fig = plots.distributions(task.space, chosen, k=7)
    ax = fig.axes[0]
    assert len(ax.patches) == 7 * 4
    top = np.argsort(-np.exp(target.log_probs), kind="stable")[:7]
    assert [t.get_text() for t in ax.get_yticklabels()] == [task.space.decode(int(i)) for i in top]
    assert ax.get_xlabel() == "probability"
    bars = {c.get_label(): c for c in ax.containers}
    assert list(bars) == [plots.divergence_label(k) for k in chosen]
    red = bars[plots.divergence_label("reverse_kl")].patches
    assert len(red) == 7 and to_rgba(red[0].get_facecolor()) == to_rgba(plots.divergence_color("reverse_kl"))
    # probabilities are accepted too, and the bars are the same
    fig2 = plots.distributions(task.space, {k: np.exp(v) for k, v in chosen.items()}, k=7)
    assert [p.get_width() for p in fig2.axes[0].patches] == pytest.approx([p.get_width() for p in ax.patches])
    _check_fonts(fig)
    _check_png(fig, tmp_path / "distributions.png")
    with pytest.raises(ValueError, match="neither"):
        plots.distributions(task.space, {"bad": np.full(task.space.size, 0.5)})


def test_training_curves(histories, target, tmp_path):
    ref = experiments.target_row(target)
    fig = plots.training_curves(histories, target_values={"entropy": ref["entropy"]})
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4
    n = len(histories)
    assert [len(ax.lines) for ax in axes] == [n, n, n, n + 1]
    assert axes[0].get_yscale() == "log"
    for ax in axes:
        assert ax.get_xlabel() == "update step" and ax.get_ylabel() and ax.get_title()
        assert _color_of(ax, plots.divergence_label("alpha(0.5)")) == to_rgba(plots.divergence_color("alpha"))
    # the lines are the History's numbers
    h = histories["js"]
    line = next(ln for ln in axes[2].lines if ln.get_label() == plots.divergence_label("js"))
    np.testing.assert_array_equal(line.get_ydata(), h.metrics["kl_from_base"])
    _check_fonts(fig)
    _check_png(fig, tmp_path / "curves.png")


def test_divergence_zoo(tmp_path):
    fig = plots.divergence_zoo(alphas=np.linspace(-1, 2, 7))
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"][:6]
    n = len(divergences.names())
    for ax in axes[:3]:
        assert len(_labelled(ax)) == n
        assert ax.get_xscale() == "log"
    for ax in axes[3:]:
        assert len(ax.lines) == 7 + 2  # the α continuum, plus the t = 1 and 0 reference lines
    assert _color_of(axes[1], plots.divergence_label("reverse_kl")) == to_rgba(plots.divergence_color("reverse_kl"))
    assert any("α" in ax.get_ylabel() for ax in fig.axes)  # the colorbar explains the continuum
    _check_fonts(fig)
    _check_png(fig, tmp_path / "zoo.png")


def test_label_colors_keep_divergences_and_separate_other_labels(tmp_path):
    assert plots.divergence_color("SimPO") == plots.divergence_color("IPO")  # their hashed spares collide …
    labels = ["target", "js", "SimPO", "IPO", "DPO"]
    colors = plots.label_colors(labels)
    assert colors[:2] == [plots.divergence_color("target"), plots.divergence_color("js")]
    assert len(set(colors)) == len(labels)  # … but one figure gives them different colours
    assert colors[2] == plots.divergence_color("SimPO")  # the first keeps its own
    space = SequenceSpace(["x", "y"], 2)
    flat = np.full(space.size, -np.log(space.size))
    fig = plots.distributions(space, {name: flat for name in labels}, k=3)
    drawn = {bars.get_label(): to_rgba(bars.patches[0].get_facecolor()) for bars in fig.axes[0].containers}
    assert [drawn[plots.divergence_label(n)] for n in labels] == [to_rgba(c) for c in colors]
    _check_png(fig, tmp_path / "labels.png")


def test_simplex_figure(tmp_path):
    fig = plots.simplex(simplex.DEFAULT_TARGET, DIVS, steps=40, resolution=40)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == len(DIVS) + 1
    overlay = axes[len(DIVS)]
    labels = overlay.get_legend_handles_labels()[1]
    assert labels == [plots.divergence_label(d) for d in DIVS] + ["target p", "start π₀"]
    for ax, d in zip(axes, DIVS):
        assert _color_of(ax, plots.divergence_label(d)) == to_rgba(plots.divergence_color(d))
        assert ax.collections  # the contours
    _check_fonts(fig)
    _check_png(fig, tmp_path / "simplex.png")


def test_simplex_columns():
    fig = plots.simplex(simplex.DEFAULT_TARGET, ["forward_kl", "reverse_kl", "js", "tv"], steps=5, resolution=20,
                        ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6 and len(visible) == 5  # 2 rows of 3: four panels, the overlay, one hidden
    assert len({round(ax.get_position().y0, 3) for ax in visible}) == 2
    with pytest.raises(ValueError, match="ncols=0"):
        plots.simplex(simplex.DEFAULT_TARGET, ["js"], ncols=0)


def test_frontier(frontier_rows, tmp_path):
    fig = plots.frontier(frontier_rows)
    for ax in fig.axes:
        labels = ax.get_legend_handles_labels()[1]
        assert labels == ["target p_β", plots.divergence_label("forward_kl"), plots.divergence_label("reverse_kl")]
        assert all(len(ln.get_xdata()) == 2 for ln in ax.lines)  # one point per β
    assert fig.axes[0].get_xlabel().startswith("entropy") and "nats" in fig.axes[1].get_xlabel()
    assert _color_of(fig.axes[0], plots.divergence_label("reverse_kl")) == to_rgba(plots.divergence_color("reverse_kl"))
    _check_fonts(fig)
    _check_png(fig, tmp_path / "frontier.png")


def _stats_rows(task, target):
    try:
        from toyfdiv.estimator_lab import estimator_stats
    except ImportError:  # the sampled side is not there: rows of the same shape, built here
        return [dict(divergence="js", n=n, baseline=b, z=z, bias=1 / n, variance=1 / n, cosine=1 - 1 / n)
                for b in ("none", "mean") for z in ("exact", "batch") for n in (8, 32, 128)]
    pol = experiments.make_policy(task)
    return [r for n in (8, 32, 128)
            for r in estimator_stats(pol, target, "js", n=n, trials=20, rng=np.random.default_rng(0))]


def test_estimator_stats(task, target, tmp_path):
    rows = _stats_rows(task, target)
    fig = plots.estimator_stats(rows)
    groups = {(r["baseline"], r["z"]) for r in rows}
    assert len(fig.axes) == 3
    floors = len(groups) if "bias_se" in rows[0] else 0  # the bias panel's dotted noise floors
    for ax, extra in zip(fig.axes, (floors, 0, 0)):
        assert len(ax.lines) == len(groups) + extra
        assert ax.get_xscale() == "log"
    assert fig.axes[0].get_yscale() == "log"
    _check_fonts(fig)
    _check_png(fig, tmp_path / "estimators.png")


def test_estimator_stats_with_zero_gradient(tmp_path):
    """A target the policy already equals: every estimate, bias and noise floor is exactly 0."""
    rows = [dict(divergence="js", n=n, baseline="none", z="exact", bias=0.0, bias_se=0.0, variance=0.0, cosine=0.0)
            for n in (8, 32)]
    fig = plots.estimator_stats(rows)
    assert [ax.get_yscale() for ax in fig.axes] == ["linear", "linear", "linear"]  # nothing > 0 to log-scale
    _check_png(fig, tmp_path / "zero.png")


def test_overoptimisation(task, tmp_path):
    proxy = task.reward.values + 3.0 * tasks.count(task.space, "very").values  # rewards emphasis, not sentiment
    try:
        from toyfdiv.feedback.reward_models import overoptimisation_curve
        curve = overoptimisation_curve(task.log_a, proxy, task.reward.values)
    except ImportError:
        betas = np.geomspace(10, 0.05, 20)
        curve = [dict(beta=b, true=np.sin(1 / b), proxy=np.log(1 / b)) for b in betas]
    fig = plots.overoptimisation(curve)
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # proxy, true, the turning point
    assert "nats" in ax.get_xlabel() or "1/β" in ax.get_xlabel()
    _check_fonts(fig)
    _check_png(fig, tmp_path / "overopt.png")
    rows = [dict(beta=b, true=t, proxy=p) for b, t, p in zip([4.0, 1.0, 0.25], [0.1, 0.5, 0.2], [0.1, 0.6, 1.5])]
    assert len(plots.overoptimisation(rows).axes[0].lines) == 3
    with pytest.raises(ValueError, match="beta, true and proxy"):
        plots.overoptimisation({"beta": [1, 2, 3]})


def test_simplex_library():
    X, Y, D = simplex.simplex_grid(simplex.DEFAULT_TARGET, "reverse_kl", resolution=30)
    assert X.shape == Y.shape == D.shape == (30, 30)
    i = np.nanargmin(D)
    pi = simplex.from_xy(X.ravel()[i], Y.ravel()[i])
    np.testing.assert_allclose(pi, np.exp(simplex.DEFAULT_TARGET), atol=0.05)
    assert np.isnan(D[-1, 0])  # the top-left corner of the box lies outside the triangle
    path = simplex.gradient_flow(simplex.DEFAULT_TARGET, "forward_kl", simplex.DEFAULT_START, steps=200)
    assert path.shape == (201, 3)
    np.testing.assert_allclose(path.sum(axis=1), 1.0)
    np.testing.assert_allclose(path[-1], np.exp(simplex.DEFAULT_TARGET), atol=1e-4)
    with pytest.raises(ValueError, match="start"):
        simplex.gradient_flow(simplex.DEFAULT_TARGET, "js", [0.5, 0.5, 0.0])


def test_training_curves_tell_apart_runs_with_the_same_divergence():
    from toyfdiv import tasks, train
    from toyfdiv import plots as P
    task = tasks.default()
    runs = {"GDC pointwise": train(task.base, task.target("pointwise"), "forward_kl", steps=3),
            "GDC moments": train(task.base, task.target("distributional"), "forward_kl", steps=3)}
    fig = P.training_curves(runs, keys=("divergence",))
    lines = fig.axes[0].get_lines()
    assert [ln.get_label().split(" — ")[0] for ln in lines] == list(runs)
    assert lines[0].get_color() == lines[1].get_color() and lines[0].get_linestyle() != lines[1].get_linestyle()


def test_simplex_figures_only_draw_the_numbers_computed_in_simplex():
    """plots.simplex / mode_seeking draw toyfdiv.simplex's panels and ends; given them, they compute nothing."""
    from toyfdiv import simplex

    panels = simplex.panels(simplex.DEFAULT_TARGET, ["js"], steps=5, lr=0.5, resolution=20)
    np.testing.assert_allclose(panels[0].path[0], simplex.DEFAULT_START)  # the flow starts at π₀
    assert panels[0].path.shape == (6, 3) and panels[0].D.shape == (20, 20)
    fig = plots.simplex(simplex.DEFAULT_TARGET, panels=panels)  # log_p is only drawn (its star)
    drawn = next(ln for ln in fig.axes[0].lines if ln.get_label() == plots.divergence_label("js")).get_xydata()
    np.testing.assert_allclose(drawn, simplex.to_xy(panels[0].path))
    ends = {"reverse_kl": np.array([0.9, 0.05, 0.05])}
    fig = plots.mode_seeking(ends=ends)
    heights = [b.get_height() for b in fig.axes[1].patches[3:6]]  # bars after the target's three
    np.testing.assert_allclose(heights, ends["reverse_kl"])


def test_divergence_curves_fall_back_to_a_linear_axis_when_nothing_is_positive():
    """A run that starts at its target has D = 0 throughout: a log axis would show nothing (and warn)."""
    import warnings

    from toyfdiv import targets, train
    from toyfdiv.policies import TabularPolicy

    space = SequenceSpace(["a", "b"], 2)
    pol = TabularPolicy(space, seed=0)
    at_target = train(pol, targets.from_log_probs(pol.log_probs(), pol.log_probs()), "js", steps=3)
    assert not np.any(at_target.metrics["divergence/js"] > 0)
    moving = train(pol, targets.rlhf(pol.log_probs(), np.arange(4.0), 1.0), "js", steps=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "no positive values … cannot be log-scaled" fails the test
        flat = plots.training_curves({"at p": at_target}, keys=("divergence",))
        both = plots.training_curves({"at p": at_target, "moving": moving}, keys=("divergence",))
    assert flat.axes[0].get_yscale() == "linear" and both.axes[0].get_yscale() == "log"
