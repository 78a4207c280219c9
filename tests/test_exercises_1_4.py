"""The exercise checkers of lessons 1–4 accept the solutions and explain typical mistakes.

Each solution script (lessons/solutions/0N_*.py) defines answer_1, answer_2, answer_3; every
checker must accept them, and reject a typical wrong answer with a message that names the
mistake.
"""

from __future__ import annotations

import math
import runpy
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from toyfdiv import tasks, targets
from toyfdiv.exercises import Verdict, lesson1, lesson2, lesson3, lesson4

SOLUTIONS = Path(__file__).resolve().parents[1] / "lessons" / "solutions"


@lru_cache(maxsize=None)
def solution(lesson: int) -> dict:
    (path,) = SOLUTIONS.glob(f"{lesson:02d}_*.py")
    return runpy.run_path(str(path), run_name="solution")


CHECKERS = {
    (1, 1): lesson1.check_generator,
    (1, 2): lesson1.check_js_slope,
    (1, 3): lesson1.check_mode_seeking,
    (2, 1): lesson2.check_optimal_value,
    (2, 2): lesson2.check_beta_zero_limit,
    (2, 3): lesson2.check_kl_budget,
    (3, 1): lesson3.check_pointwise_z,
    (3, 2): lesson3.check_kl_from_base,
    (3, 3): lesson3.check_gdc_name,
    (4, 1): lambda answer: lesson4.check_pseudo_reward("hellinger", answer),
    (4, 2): lesson4.check_rlhf_constant,
    (4, 3): lesson4.check_dpg_weights,
}


@pytest.mark.parametrize("key", list(CHECKERS), ids=[f"{a}.{b}" for a, b in CHECKERS])
def test_checker_accepts_the_solution(key):
    lesson, k = key
    verdict = CHECKERS[key](solution(lesson)[f"answer_{k}"])
    assert isinstance(verdict, Verdict)
    assert verdict.ok, verdict.message
    assert str(verdict).startswith("✅")


@lru_cache(maxsize=1)
def _task():
    return tasks.default()


@lru_cache(maxsize=1)
def _wrong_answers():
    """(exercise, wrong answer, words the message must contain)."""
    task = _task()
    log_a, r = task.log_a, task.reward.values
    p2 = targets.rlhf(log_a, r, lesson2.BETA)
    best = r == r.max()
    z = math.exp(task.target("pointwise").log_z)
    p3 = lesson3.problem_target()
    p_point = task.target("pointwise")
    with np.errstate(divide="ignore"):
        uniform_on_best = np.log(best / best.sum())  # −inf off the best sequences
    return [
        ((1, 1), lambda t: (t - 1) ** 2, "Pearson"),
        ((1, 1), lambda t: (t - 1) ** 2 / t + 1.0, "f(1) = 1"),
        ((1, 1), lambda t: 2 * (t - 1) ** 2 / t, "2 × the generator"),
        ((1, 1), lambda t: math.log(t), "numpy"),
        ((1, 2), math.log(2), "disco"),
        ((1, 2), None, "number"),
        ((1, 3), ["reverse_kl"], "you missed pearson"),
        ((1, 3), ["reverse_kl", "pearson", "js"], "mode covering"),
        ((2, 1), p2.log_z, "factor β"),
        ((2, 1), float(np.exp(p2.log_probs) @ r), "subtracts β KL"),
        ((2, 2), log_a, "β → ∞"),
        ((2, 2), uniform_on_best, "a's proportions"),
        ((2, 2), np.exp(targets.pointwise(log_a, best).log_probs), "log-probabilities"),
        ((2, 3), 0.5, "increase β"),
        ((2, 3), 3.0, "decrease β"),
        ((3, 1), math.log(z), "log Z"),
        ((3, 1), float(task.constraint.values.mean()), "fraction of sequences"),
        ((3, 2), float(p3.lambdas @ np.asarray(lesson3.MOMENTS) + p3.log_z), "sign of log Z"),
        ((3, 2), -p3.log_z, "pointwise"),
        ((3, 3), "Gradient Compression", "misreading"),
        ((3, 3), "consistency distillation", "misreading"),
        ((3, 3), "Generative Diffusion Control", "three words"),
        ((4, 1), lambda t: 1 - 1 / np.sqrt(t), "sign"),
        ((4, 1), lambda t: 1 / np.sqrt(t), "off by a constant"),
        ((4, 1), lambda t: np.sqrt(t) - 1, "upside down"),
        ((4, 2), lesson4.BETA * p2.log_z, "dropped the 1"),
        ((4, 2), 1.0 + p2.log_z, "factor β"),
        ((4, 3), np.exp(p_point.log_probs), "sign"),
        ((4, 3), -np.exp(log_a), "sample from p"),
    ]


@pytest.mark.parametrize("case", range(len(_wrong_answers())), ids=lambda i: f"{_wrong_answers()[i][0]}-{i}")
def test_checker_rejects_a_typical_mistake_and_says_why(case):
    key, answer, words = _wrong_answers()[case]
    verdict = CHECKERS[key](answer)
    assert isinstance(verdict, Verdict)
    assert not verdict.ok, f"exercise {key} accepted the wrong answer {answer!r}"
    assert str(verdict).startswith("❌")
    assert words in verdict.message, f"exercise {key}: message {verdict.message!r} does not mention {words!r}"


def test_equivalent_generator_is_accepted_with_an_explanation():
    verdict = lesson1.check_generator(lambda t: (t - 1) ** 2 / t + 3.0 * (t - 1))
    assert verdict.ok and "c(t − 1)" in verdict.message


def test_checkers_never_crash_on_garbage():
    for key, check in CHECKERS.items():
        for junk in (None, "text", np.zeros(3), [1, 2]):
            verdict = check(junk)
            assert isinstance(verdict, Verdict), key
            if key != (3, 3) or not isinstance(junk, str):
                assert not verdict.ok, (key, junk)


def test_number_answers_reject_nan_and_say_so():
    for check in (lesson1.check_js_slope, lesson4.check_rlhf_constant):
        verdict = check(float("nan"))
        assert not verdict.ok and "NaN" in verdict.message
        verdict = check(None)
        assert not verdict.ok and verdict.message.startswith("no answer yet")


def test_gdc_name_with_a_comment_on_the_misreading_is_accepted():
    assert lesson3.check_gdc_name("Generation with Distributional Control (not gradient compression)")
    assert lesson3.check_gdc_name("generation-with-distributional-control")
    assert not lesson3.check_gdc_name("gradient distributional control generation")
