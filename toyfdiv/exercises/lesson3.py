"""Lesson 3 exercises: GDC's pointwise and distributional targets.

1. :func:`check_pointwise_z` — Z of the pointwise target p = a·b/Z of the default task.
2. :func:`check_kl_from_base` — KL(p‖a) of the distributional target with moments
   :data:`MOMENTS`, from λ*, μ̄ and log Z.
3. :func:`check_gdc_name` — what the letters G, D, C stand for.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .. import targets
from . import Verdict, as_number, default_task, right, wrong

__all__ = ["MOMENTS", "check_pointwise_z", "check_kl_from_base", "check_gdc_name", "problem_target"]

#: Exercise 2: E_p[contains(film)] = 0.6 and E_p[positive] = 0.7 on the default task.
MOMENTS = (0.6, 0.7)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


# ---------------------------------------------------------------------------- exercise 1
def check_pointwise_z(value: float) -> Verdict:
    """Is ``value`` = Z = Σ_x a(x) b(x) for the default task's constraint b?"""
    v = as_number(value, "Z")
    if isinstance(v, Verdict):
        return v
    task = default_task()
    b = task.constraint.values
    z = math.exp(task.target("pointwise", epsilon=0.0).log_z)
    if _close(v, z):
        return right(f"Z = Σ_x a(x) b(x) = a(b) = {z:.6g}: the probability that the base model already "
                     f"satisfies '{task.constraint.name}'. And KL(p‖a) = −log Z = {-math.log(z):.4g} nats.")
    if _close(v, math.log(z)):
        return wrong(f"{v:.6g} is log Z (the library stores log Z); Z itself is exp of it.")
    if _close(v, float(b.mean())):
        return wrong(f"{v:.6g} is the fraction of sequences that satisfy b (each counted once); Z weights each "
                     "by its base probability a(x).")
    if _close(v, 1.0 - z):
        return wrong("that is the base probability of violating the constraint, 1 − Z.")
    if _close(v, -math.log(z)):
        return wrong(f"{v:.6g} is −log Z = KL(p‖a); Z is the probability a(b).")
    if not 0 < v <= 1:
        return wrong(f"Z = Σ_x a(x) b(x) is a probability, in (0, 1]; {v:.6g} is not.")
    return wrong(f"{v:.6g} is not Σ_x a(x) b(x): sum exp(log a) over the sequences where b holds.")


# ---------------------------------------------------------------------------- exercise 2
def problem_target() -> targets.Target:
    """The distributional target of exercise 2: p = a·exp(λ·φ)/Z with E_p[φ] = MOMENTS."""
    task = default_task()
    return task.target("distributional", moments=MOMENTS)


def check_kl_from_base(value: float) -> Verdict:
    """Is ``value`` = KL(p‖a) = λ*·μ̄ − log Z(λ*) for :func:`problem_target`?"""
    v = as_number(value, "KL(p‖a)")
    if isinstance(v, Verdict):
        return v
    p = problem_target()
    lam, mu = np.asarray(p.lambdas), np.asarray(MOMENTS)
    truth = float(lam @ mu) - p.log_z
    if _close(v, truth):
        return right(f"KL(p‖a) = λ*·μ̄ − log Z = {truth:.6g} nats: E_p[log(p/a)] = E_p[λ*·φ] − log Z, and "
                     "E_p[φ] = μ̄ because the moments are met.")
    if _close(v, float(lam @ mu) + p.log_z):
        return wrong("sign of log Z: log(p/a) = λ·φ − log Z, so KL(p‖a) = λ*·μ̄ − log Z.")
    if _close(v, -p.log_z):
        return wrong("−log Z is the pointwise answer (there λ·φ = 0 on the support); here add λ*·μ̄.")
    if _close(v, float(lam @ mu)):
        return wrong("you left out log Z: log(p/a) = λ·φ − log Z.")
    if _close(v, float(lam.sum()) - p.log_z):
        return wrong("use λ*·μ̄ (a dot product with the moments), not Σ λ*.")
    if _close(v, p.kl_from_base) or math.isclose(v, truth, rel_tol=1e-4):
        return right(f"{v:.6g} nats (the identity gives {truth:.6g}).")
    return wrong(f"{v:.6g} is not KL(p‖a). Take log(p/a) = λ*·φ − log Z and average it under p.")


# ---------------------------------------------------------------------------- exercise 3
_WRONG_WORDS = ("gradient", "compression", "distillation", "consistency")
_RIGHT = ("GDC = Generation with Distributional Control (Khalifa, Elsahar, Dymetman, ICLR 2021); the f-DPG "
          "paper (Go et al. 2023) writes 'Generative Distributional Control'.")


def check_gdc_name(text: str) -> Verdict:
    """Does ``text`` expand GDC as Generation with Distributional Control?

    Khalifa et al. (2021) write "Generation with Distributional Control"; the f-DPG abstract
    (Go et al. 2023) writes "Generative Distributional Control": both are accepted.
    """
    if not isinstance(text, str):
        return wrong(f"give the expansion as a string, got {type(text).__name__}")
    words = re.sub(r"[^a-z ]", " ", text.lower()).split()
    if re.search(r"\bgenerati(on|ve) (with )?distributional control\b", " ".join(words)):
        return right(_RIGHT)
    bad = [w for w in _WRONG_WORDS if w in words]
    if bad:
        return wrong(f"'{' '.join(bad)}' is a misreading found in some secondary write-ups. GDC is the method of "
                     "Khalifa, Elsahar and Dymetman (ICLR 2021): an explicit energy-based target, approached "
                     "with DPG by minimising the forward KL. Nothing is compressed or distilled.")
    if {"distributional", "control"} <= set(words) and {"generation", "generative"} & set(words):
        return right(_RIGHT)
    return wrong("not quite: G, D and C stand for three words from the title of Khalifa, Elsahar and Dymetman "
                 "(ICLR 2021), 'A distributional approach to controlled text generation'.")
