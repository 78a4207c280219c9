"""Lesson 10's checkers: the right answer (computed by the library, independently of the checker) passes;
each typical mistake gets its own explanation; non-numbers are refused with a message."""

import numpy as np
from scipy.special import softmax

from toyfdiv import diversity
from toyfdiv import feedback as fb
from toyfdiv.exercises import lesson10


def rejects(verdict, fragment):
    assert not verdict and fragment in verdict.message, verdict.message


def test_ipo_pi_a():
    tau = lesson10.IPO_TAU
    lib = np.exp(fb.ipo_dataset_optimum(np.log(np.full(3, 1 / 3)),
                                        fb.PreferenceDataset(np.array([0]), np.array([1]), 3), tau))
    assert lesson10.check_ipo_pi_a(lib[0])
    rejects(lesson10.check_ipo_pi_a(1.0), "DPO's limit")
    rejects(lesson10.check_ipo_pi_a(softmax([1 / (2 * tau), -1 / (2 * tau), 0])[0]), "whole margin")
    rejects(lesson10.check_ipo_pi_a(lib[0] / (lib[0] + lib[1])), "c, which keeps logit 0")
    rejects(lesson10.check_ipo_pi_a(None), "no answer yet")
    rejects(lesson10.check_ipo_pi_a("a lot"), "should be a number")


def test_ratio():
    a = np.log([*lesson10.RATIO_A, 0.5, 1 - sum(lesson10.RATIO_A) - 0.5])
    p = np.exp(diversity.regularised_target(a, np.array([1.0, 1.0, 0.0, 0.0]), lesson10.RATIO_BETA, "forward_kl"))
    assert lesson10.check_ratio(p[0] / p[1])
    rejects(lesson10.check_ratio(1.0), "equal rewards do not give equal probabilities")
    rejects(lesson10.check_ratio(7.0), "forward-KL optimum")


def test_pass_at_k():
    p, k = lesson10.PASS_P, lesson10.PASS_K
    assert lesson10.check_pass_at_k(float(diversity.pass_at_k(p, k)))
    rejects(lesson10.check_pass_at_k(k * p), "expected correct answers")
    rejects(lesson10.check_pass_at_k(p**k), "all* k answers are correct")
    rejects(lesson10.check_pass_at_k((1 - p) ** k), "complement")
    rejects(lesson10.check_pass_at_k(float("nan")), "NaN")
