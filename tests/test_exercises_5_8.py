"""Exercise checkers of lessons 5–8: each accepts its solution and rejects typical wrong
answers with a message that says why."""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import numpy as np
import pytest

from toyfdiv.exercises import Verdict

SOLUTIONS = Path(__file__).resolve().parent.parent / "lessons" / "solutions"


def rejects(verdict: Verdict, *fragments: str) -> None:
    """The verdict is negative and its message contains every fragment (case-insensitive)."""
    assert isinstance(verdict, Verdict)
    assert not verdict, verdict.message
    for frag in fragments:
        assert frag.lower() in verdict.message.lower(), (frag, verdict.message)
    assert str(verdict).startswith("❌")


@pytest.mark.parametrize("name", [f"{k:02d}" for k in (5, 6, 7, 8)])
def test_solution_script_passes(name):
    scripts = sorted(SOLUTIONS.glob(f"{name}_*.py"))
    if not scripts:
        pytest.skip(f"no solutions for lesson {name} yet")
    assert len(scripts) == 1
    runpy.run_path(str(scripts[0]), run_name="__main__")  # asserts inside


# ---------------------------------------------------------------------------- lesson 5
def test_lesson5_js_floor():
    from toyfdiv.exercises import lesson5

    assert lesson5.check_js_floor(-0.5 * math.log(2))
    rejects(lesson5.check_js_floor(0.5 * math.log(2)), "flip the sign")
    rejects(lesson5.check_js_floor(-math.log(2)), "2×JS")
    rejects(lesson5.check_js_floor(-math.inf), "reverse-KL")
    rejects(lesson5.check_js_floor(None), "no answer yet")
    rejects(lesson5.check_js_floor("a lot"), "number")


def test_lesson5_finite_against_zeros():
    from toyfdiv.exercises import lesson5

    assert lesson5.check_finite_against_zeros({"forward_kl", "tv", "js", "hellinger", "neyman"})
    rejects(lesson5.check_finite_against_zeros({"forward_kl", "tv", "js", "hellinger", "neyman", "reverse_kl"}),
            "reverse_kl has f'(t) → ∞")
    rejects(lesson5.check_finite_against_zeros({"js", "tv", "hellinger", "neyman"}), "forward_kl is missing")
    rejects(lesson5.check_finite_against_zeros({"kl"}), "not among")
    rejects(lesson5.check_finite_against_zeros(set()), "no answer yet")


def test_lesson5_diversity_ranking():
    from toyfdiv.exercises import lesson5

    assert lesson5.check_diversity_ranking(["forward_kl", "js", "reverse_kl"])
    rejects(lesson5.check_diversity_ranking(["reverse_kl", "js", "forward_kl"]), "least to most diverse")
    rejects(lesson5.check_diversity_ranking(["js", "forward_kl", "reverse_kl"]), "entropies")
    rejects(lesson5.check_diversity_ranking(["js", "tv", "reverse_kl"]), "exactly these three")


# ---------------------------------------------------------------------------- lesson 6
def test_lesson6_z_variance():
    from toyfdiv import tasks
    from toyfdiv.exercises import lesson6

    z = float(np.exp(tasks.get("reviews").target("pointwise", epsilon=0.0).log_z))
    n = lesson6.Z_VARIANCE_N
    assert lesson6.check_z_variance(z * (1 - z) / n)
    rejects(lesson6.check_z_variance(z * (1 - z)), "divide by n")
    rejects(lesson6.check_z_variance(np.sqrt(z * (1 - z) / n)), "standard deviation")
    rejects(lesson6.check_z_variance(z / n), "subtract Z²")
    rejects(lesson6.check_z_variance(0.0), "random variable")
    rejects(lesson6.check_z_variance(None), "no answer yet")


def test_lesson6_unbiased_baselines():
    from toyfdiv.exercises import lesson6

    assert lesson6.check_unbiased_baselines({"none", "loo", "dpg"})
    rejects(lesson6.check_unbiased_baselines({"none", "mean", "loo", "dpg"}), "(1 − 1/n)")
    rejects(lesson6.check_unbiased_baselines({"none", "loo", "ema", "dpg"}), "first step")
    rejects(lesson6.check_unbiased_baselines({"none", "loo"}), "'dpg' is missing")
    rejects(lesson6.check_unbiased_baselines({"median"}), "not baselines")
    rejects(lesson6.check_unbiased_baselines(set()), "no answer yet")


def test_lesson6_z_shift():
    from toyfdiv.exercises import lesson6

    assert lesson6.check_z_shift("reverse_kl")
    rejects(lesson6.check_z_shift("forward_kl"), "rescales")
    rejects(lesson6.check_z_shift("js"), "non-linear")
    rejects(lesson6.check_z_shift(None), "no answer yet")


# ---------------------------------------------------------------------------- lesson 7
def test_lesson7_bt_reward():
    from toyfdiv.exercises import lesson7

    rater = lesson7.exercise_rater()
    assert lesson7.check_bt_reward(rater.utility / rater.temperature + 3.0)  # any constant is fine
    rejects(lesson7.check_bt_reward(rater.utility), "divide by τ")
    rejects(lesson7.check_bt_reward(rater.utility * rater.temperature), "multiplied")
    rejects(lesson7.check_bt_reward(np.ones(3)), "shape")
    rejects(lesson7.check_bt_reward(None), "no answer yet")


def test_lesson7_turning_beta():
    from toyfdiv import tasks
    from toyfdiv import feedback as fb
    from toyfdiv.exercises import lesson7

    task = tasks.get("reviews")
    curve = fb.overoptimisation_curve(task.log_a, lesson7.biased_rater().reward, task.reward.values)
    assert lesson7.check_turning_beta(curve.turning_beta)
    rejects(lesson7.check_turning_beta(0.01), "proxy")
    rejects(lesson7.check_turning_beta(30.0), "almost no optimisation")
    rejects(lesson7.check_turning_beta(None), "no answer yet")
    rejects(lesson7.check_turning_beta(float("nan")), "NaN")
    rejects(lesson7.check_turning_beta("large"), "number")


def test_lesson7_fdpo_divergences():
    from toyfdiv.exercises import lesson7

    good = {"forward_kl", "reverse_kl", "js", "hellinger", "neyman"}
    assert lesson7.check_fdpo_divergences(good)
    rejects(lesson7.check_fdpo_divergences(good | {"tv"}), "tv has a bounded f'(0⁺)")
    rejects(lesson7.check_fdpo_divergences(good - {"js"}), "js is missing")
    rejects(lesson7.check_fdpo_divergences(set()), "no answer yet")


# ---------------------------------------------------------------------------- lesson 8
def _shop_task(constraint=None, moments=(0.4, 0.5), space=None):
    from toyfdiv import SequenceSpace, tasks

    space = space or SequenceSpace(["tea", "cake", "bread", "milk"], length=4, eos="</s>")
    corpus = ["tea cake", "bread milk", "tea", "cake cake", "milk tea", "bread bread milk"]
    base = tasks.pretrain(space, corpus, order=2, smoothing=0.5)
    reward = tasks.Signal("cheap", -tasks.count(space, "cake").values)
    constraint = tasks.no_repeat(space) if constraint is None else constraint
    features = (tasks.contains(space, "tea"), tasks.mean_length(space))
    return tasks.Task("shop", "", space, tuple(corpus), base, reward, constraint, features,
                      np.asarray(moments, dtype=float), beta=1.0)


@pytest.fixture(scope="module")
def shop():
    return _shop_task()


def test_lesson8_design(shop):
    from toyfdiv import tasks
    from toyfdiv.exercises import lesson8

    assert lesson8.check_design(shop)
    always = tasks.Signal("always", np.ones(shop.space.size, dtype=bool))
    rejects(lesson8.check_design(_shop_task(constraint=always)), "every sequence")
    rejects(lesson8.check_design(_shop_task(moments=(1.5, 0.5))), "cannot be met", "convex hull")
    base_moments = np.exp(shop.log_a) @ shop.feature_matrix
    rejects(lesson8.check_design(_shop_task(moments=base_moments)), "base model's own")
    rejects(lesson8.check_design("my task"), "toyfdiv.tasks.Task")


def test_lesson8_pointwise_solution(shop):
    from toyfdiv import train
    from toyfdiv.exercises import lesson8

    gdc = train(shop.base, shop.target("pointwise"), "forward_kl", steps=300, lr=0.1)
    assert lesson8.check_pointwise_solution(shop, gdc.policy)
    rejects(lesson8.check_pointwise_solution(shop, shop.base), "base model a itself")
    rlhf = train(shop.base, shop.target("rlhf"), "reverse_kl", steps=100, lr=0.1)
    rejects(lesson8.check_pointwise_solution(shop, rlhf.policy), "pointwise")


def test_lesson8_moments_solution(shop):
    from toyfdiv import train
    from toyfdiv.exercises import lesson8

    dist = train(shop.base, shop.target("distributional"), "forward_kl", steps=300, lr=0.1)
    assert lesson8.check_moments_solution(shop, dist.policy)
    rejects(lesson8.check_moments_solution(shop, shop.base), "base model a itself")
    short = train(shop.base, shop.target("distributional"), "forward_kl", steps=3, lr=0.01)
    rejects(lesson8.check_moments_solution(shop, short.policy), "target moment is", "train longer")
