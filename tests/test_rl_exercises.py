"""Lesson 9's exercise checkers: each accepts its solution and rejects typical wrong answers."""

import runpy
from pathlib import Path

import pytest

from toyfdiv import rl
from toyfdiv.exercises import Verdict, lesson9

SOLUTION = Path(__file__).resolve().parent.parent / "lessons" / "solutions" / "09_rlhf_as_practised.py"


def rejects(verdict: Verdict, *fragments: str) -> None:
    assert isinstance(verdict, Verdict) and not verdict, verdict.message
    for frag in fragments:
        assert frag.lower() in verdict.message.lower(), (frag, verdict.message)


def test_k3_loss_kl():
    assert lesson9.check_k3_loss_kl("forward") and lesson9.check_k3_loss_kl("KL(a‖π)")
    rejects(lesson9.check_k3_loss_kl("reverse"), "held fixed")
    rejects(lesson9.check_k3_loss_kl("none"), "k1 in the loss")
    rejects(lesson9.check_k3_loss_kl(None), "no answer yet")
    rejects(lesson9.check_k3_loss_kl(3), "string")


def test_grpo_weight():
    truth = float(rl.effective_weight(lesson9.GRPO_P, lesson9.GRPO_G))
    assert lesson9.check_grpo_weight(truth) and lesson9.check_grpo_weight(round(truth, 4))
    rejects(lesson9.check_grpo_weight(1.0), "RLOO")
    rejects(lesson9.check_grpo_weight(7 / 8), "Dr. GRPO")
    rejects(lesson9.check_grpo_weight(1 / (0.1 * 0.9) ** 0.5), "limit")
    rejects(lesson9.check_grpo_weight("big"), "number")


def test_rloo_factor():
    assert lesson9.check_rloo_factor(8 / 7)
    rejects(lesson9.check_rloo_factor(7 / 8), "inverted")
    rejects(lesson9.check_rloo_factor(1.0), "excludes")
    rejects(lesson9.check_rloo_factor(None), "no answer yet")


def test_solution_script_passes():
    runpy.run_path(str(SOLUTION), run_name="__main__")
