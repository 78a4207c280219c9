"""The views of toyfdiv.rl: figures draw the numbers they are given; the CLI table and its sentence."""

import numpy as np
import pytest

from toyfdiv import rl, rl_tasks, plots_rl
from toyfdiv.__main__ import main


def _bar_heights(ax):
    return [p.get_height() for p in ax.patches]


def test_update_table_figure_draws_the_rows():
    rows = [dict(algorithm="a", cosine=0.9, scale=0.5, noise=0.01), dict(algorithm="b", cosine=1.0, scale=1.0, noise=0)]
    fig = plots_rl.update_table(rows)
    cos_ax, scale_ax = fig.axes
    assert _bar_heights(cos_ax) == [0.9, 1.0] and _bar_heights(scale_ax) == [0.5, 1.0]


def test_grpo_weight_figure_one_line_per_G_and_the_limit():
    p = np.linspace(0.05, 0.95, 19)
    w = {G: rl.effective_weight(p, G) for G in (2, 8)}
    ax = plots_rl.grpo_weight(p, w, 1 / np.sqrt(p * (1 - p))).axes[0]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), w[8])
    assert len(ax.lines) == 4  # two G, the limit, the unbiased reference


def test_length_drift_atlas_clip_figures():
    fig = plots_rl.length_drift({"grpo": {0.0: 0.002, 1.0: -0.01}, "dr_grpo": {0.0: 0.0, 1.0: 0.0}})
    assert sorted(_bar_heights(fig.axes[0])) == [-0.01, 0.0, 0.0, 0.002]
    space = rl_tasks.prompted((0.3,), vocab=2, length=3).space
    lp = np.full(space.size, -np.log(space.size))
    fig = plots_rl.atlas(space, {"RLHF target": lp, "x": lp})
    np.testing.assert_allclose(_bar_heights(fig.axes[0]), np.exp(lp))
    fig = plots_rl.clip_region(0.2, 0.28)
    pos, neg = fig.axes
    np.testing.assert_allclose(pos.lines[0].get_ydata().max(), 1.28)  # capped at (1 + ε_high)·A
    study = rl.clip_entropy_study(np.log([0.8, 0.1, 0.1]), steps=2, seeds=20)
    fig = plots_rl.clip_entropy({"skewed": study})
    np.testing.assert_allclose(sorted(_bar_heights(fig.axes[0])), sorted(study.delta.values()))


def test_cli_rl_prints_the_table_and_a_sentence_from_it(capsys):
    assert main(["rl", "--G", "4", "--trials", "400", "--algorithms", "rloo,grpo,dr_grpo"]) == 0
    out = capsys.readouterr().out
    rows = rl.update_table(rl_tasks.prompted(), 4, algorithms=["rloo", "grpo", "dr_grpo"], trials=400)
    for r in rows:
        assert r["algorithm"] in out
    follow = [r["algorithm"] for r in rows if r["follows"]]
    assert f"noise floors, or < 1e-9 when exact): {', '.join(follow)};" in out
    assert "dr_grpo" in follow and "grpo" not in follow


def test_cli_rl_refuses_unknown_algorithms(capsys):
    with pytest.raises(SystemExit) as err:
        main(["rl", "--algorithms", "ppo,trpo"])
    assert err.value.code == 2
    assert "['trpo'] not allowed" in capsys.readouterr().err


def _visible_fraction(ax, height):
    """How far up the axes (0 = bottom, 1 = top) a bar of this height reaches, through the axis's own transform."""
    return float(ax.transAxes.inverted().transform(ax.transData.transform((0.0, height)))[1])


def test_atlas_small_bars_are_readable_on_a_log_axis_when_the_masses_span_decades():
    """A fixed point of 0.9 on one response and 0.02 on others (the RL page's GRPO case): on a linear axis the 0.02
    bar reaches 0.02/0.945 ≈ 2 % of the axis; the atlas turns log (span log₁₀(0.9/0.02) = 1.65 > 1.5 decades) and
    it reaches over a quarter.  Masses within 1.5 decades stay on a linear axis that starts at zero."""
    space = rl_tasks.prompted((0.3,), vocab=2, length=3).space
    n = space.size
    skewed = np.log(np.r_[0.9, 0.02, np.full(n - 2, 0.08 / (n - 2))])
    assert np.log10(np.exp(skewed.max() - skewed.min())) > plots_rl.ATLAS_LOG_DECADES
    ax = plots_rl.atlas(space, {"RLHF target a·exp(r/β)/Z": skewed, "fixed point": skewed}).axes[0]
    assert ax.get_yscale() == "log" and "log scale" in ax.get_ylabel()
    assert _visible_fraction(ax, 0.02) > 1 / 4 and _visible_fraction(ax, 0.02) > 10 * 0.02 / 0.945 and _visible_fraction(ax, np.exp(skewed).max()) < 1
    np.testing.assert_allclose(sorted(_bar_heights(ax)), np.sort(np.exp(skewed)))

    even = np.log(np.linspace(1.0, 3.0, n) / np.linspace(1.0, 3.0, n).sum())  # span log₁₀ 3 = 0.48 decades
    ax = plots_rl.atlas(space, {"RLHF target a·exp(r/β)/Z": even, "fixed point": even}).axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0.0 and ax.get_ylabel() == "π(y)"


@pytest.mark.parametrize("pi, want", [
    ([0.9, 0.003, 0.097], "log"),  # log₁₀(0.9/0.003) = 2.48 decades
    ([0.5, 0.5 / 31.5], "linear"),  # log₁₀ 31.5 = 1.498 decades: within the threshold
    ([0.5, 0.5 * 10 ** -1.6], "log"),
    ([0.5, 0.5, 0.0], "linear"),  # an exact zero is zero on either axis: left out of the span
], ids=["three-decades", "at-threshold", "past-threshold", "exact-zero"])
def test_atlas_yscale_threshold(pi, want):
    with np.errstate(divide="ignore"):
        scale, bottom = plots_rl.atlas_yscale({"x": np.log(pi)})
    positive = np.array([p for p in pi if p > 0])
    expected = "log" if np.log10(positive.max() / positive.min()) > plots_rl.ATLAS_LOG_DECADES else "linear"
    assert scale == expected == want
    assert (bottom is None) == (scale == "linear")
    if scale == "log":
        assert bottom == pytest.approx(positive.min() / 10)


def test_atlas_yscale_floor_and_bad_input():
    scale, bottom = plots_rl.atlas_yscale({"x": np.log([1.0 - 1e-12, 1e-12])})
    assert scale == "log" and bottom == pytest.approx(10.0 ** -plots_rl.ATLAS_FLOOR_DECADES)
    with pytest.raises(ValueError, match="dists has no positive probability"):
        plots_rl.atlas_yscale({"x": np.full(3, -np.inf)})
