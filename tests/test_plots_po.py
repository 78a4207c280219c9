"""Figures of the beyond-DPO / diversity module: the right artists from the library's numbers, ≥ 12 pt text, PNG."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from scipy.special import log_softmax

from toyfdiv import SequenceSpace, diversity, plots_po, tasks
from toyfdiv.distill import gkd_grid
from toyfdiv.feedback import Rater, collect_preferences, gold_utility_curves


def _check(fig, path):
    assert isinstance(fig, Figure)
    fig.canvas.draw()
    small = [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text() and t.get_fontsize() < 12]
    assert not small, small[:5]
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gold_curves(tmp_path):
    task = tasks.get("abc", length=3)
    r = np.random.default_rng(0).normal(size=task.space.size)
    data = collect_preferences(Rater(r), task.base, 200, np.random.default_rng(1))
    curves = gold_utility_curves(task.log_a, data, r, [3.0, 1.0, 0.3], rlhf_reward=r)
    fig = plots_po.gold_curves(curves)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 * len(curves)  # a curve and its peak star per method
    np.testing.assert_allclose(ax.lines[0].get_ydata(), curves["RLHF"].gold)
    _check(fig, tmp_path / "gold.png")


def test_pass_at_k_and_distinct(tmp_path):
    la = log_softmax(np.random.default_rng(0).normal(size=8))
    correct = np.arange(8) < 3
    ks = [1, 2, 4, 8]
    fig = plots_po.pass_at_k({"base": diversity.pass_at_k_policy(la, correct, np.array(ks))}, ks)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), 1 - (1 - np.exp(la)[correct].sum()) ** np.array(ks))
    _check(fig, tmp_path / "pass.png")
    rows = diversity.diversity_rows(la, correct.astype(float), correct, [0.1, 1.0], ["reverse_kl", "forward_kl"], k=4)
    fig = plots_po.distinct_correct(rows)
    assert len(fig.axes[0].lines) == 3  # two f and the base line
    _check(fig, tmp_path / "distinct.png")
    with pytest.raises(ValueError, match="shape"):
        plots_po.pass_at_k({"x": [0.1]}, ks)


def test_gkd_grid_and_three_outputs(tmp_path):
    space = SequenceSpace(["a", "b"], length=3, eos="</s>")
    teacher = tasks.pretrain(space, ["a b", "b a", "a a b"], order=2, smoothing=0.3)
    rows = gkd_grid(teacher, betas=(0.0, 1.0), lams=(0.0, 1.0))
    fig = plots_po.gkd_grid(rows)
    assert len(fig.axes) == 4  # two maps and their colour bars
    _check(fig, tmp_path / "gkd.png")
    fig = plots_po.three_outputs({"IPO": [0.506, 0.186, 0.307], "DPO": [1.0, 0.0, 0.0]})
    assert len(fig.axes[0].patches) == 6
    _check(fig, tmp_path / "three.png")
    with pytest.raises(ValueError, match="empty"):
        plots_po.gold_curves({})


def test_collapse_curves(tmp_path):
    from toyfdiv.collapse import CollapseStudy

    ks = np.array([1, 4, 16])
    study = CollapseStudy(ks, {"base a": np.array([0.3, 0.6, 0.9]), "shared": np.array([0.5, 0.52, 0.6])},
                          {"base a": np.array([0.3, 1.0, 2.0]), "shared": np.array([0.5, 0.9, 1.1])}, {}, {})
    fig = plots_po.collapse_curves(study)
    assert len(fig.axes) == 2 and all(len(ax.lines) == 2 for ax in fig.axes)
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), study.pass_at_k["shared"])
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), study.distinct_correct["base a"])
    _check(fig, tmp_path / "collapse.png")
    bad = CollapseStudy(ks, {"base a": np.array([0.3])}, {"base a": np.array([0.3])}, {}, {})
    with pytest.raises(ValueError, match="shape"):
        plots_po.collapse_curves(bad)


def test_gold_curve_legend_says_no_decline_instead_of_minus_zero():
    from toyfdiv.feedback.gold import GoldCurve

    betas = np.array([1.0, 0.3, 0.1])
    rising = GoldCurve("DPO", betas, np.array([0.5, 1.0, 1.5]), np.zeros(3))  # peak at the smallest β: no decline
    falling = GoldCurve("RLHF", betas, np.array([0.5, 1.4, 1.0]), np.zeros(3))
    labels = [t.get_text() for t in plots_po.gold_curves({"DPO": rising, "RLHF": falling}).axes[0].get_legend().get_texts()]
    assert "no decline past it (< 0.005)" in labels[0] and "−0.00" not in labels[0]
    assert labels[1].endswith("then −0.40")
