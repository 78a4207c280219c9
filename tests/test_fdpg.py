"""Exact f-DPG gradients against finite differences, and the two classical gradients."""

import re

import numpy as np
import pytest

from toyfdiv import AutoregressivePolicy, SequenceSpace, TabularPolicy, divergences, fdpg, targets
from conftest import fd_gradient

DIVS = list(divergences.registered()) + [divergences.alpha(-1.0), divergences.alpha(2.0)]
DIV_IDS = [d.name for d in DIVS]
POLICIES = [TabularPolicy, AutoregressivePolicy]


def random_target(space, rng, zeros=0):
    z = rng.standard_normal(space.size)
    log_a = z - np.log(np.exp(z).sum())
    if zeros:
        constraint = np.ones(space.size, bool)
        constraint[rng.choice(space.size, zeros, replace=False)] = False
        return targets.pointwise(log_a, constraint)
    return targets.rlhf(log_a, rng.standard_normal(space.size), beta=0.7)


@pytest.mark.parametrize("div", DIVS, ids=DIV_IDS)
@pytest.mark.parametrize("cls", POLICIES, ids=lambda c: c.__name__)
def test_exact_gradient_matches_finite_differences(cls, div, small_space):
    rng = np.random.default_rng(7)
    tgt = random_target(small_space, rng)
    pol = cls(small_space, seed=2, init_scale=0.8)
    g = fdpg.exact_gradient(pol, tgt, div)
    fd = fd_gradient(lambda th: div.value(pol.with_params(th).log_probs(), tgt.log_probs), pol.params, h=1e-3)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("div", [d for d in DIVS if np.isfinite(d.slope_at_infinity)],
                         ids=[d.name for d in DIVS if np.isfinite(d.slope_at_infinity)])
def test_exact_gradient_with_zero_support_target(div):
    """Where p = 0 < π the term is π·f'(∞); its gradient is still the f-DPG formula."""
    space = SequenceSpace(["a", "b"], 3, "</s>")
    rng = np.random.default_rng(3)
    tgt = random_target(space, rng, zeros=3)
    pol = AutoregressivePolicy(space, seed=1, init_scale=0.5)
    g = fdpg.exact_gradient(pol, tgt, div)
    fd = fd_gradient(lambda th: div.value(pol.with_params(th).log_probs(), tgt.log_probs), pol.params, h=1e-3)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("div", [d for d in DIVS if not np.isfinite(d.slope_at_infinity)],
                         ids=[d.name for d in DIVS if not np.isfinite(d.slope_at_infinity)])
def test_infinite_divergence_has_no_gradient(div):
    space = SequenceSpace(["a", "b"], 3, "</s>")
    tgt = random_target(space, np.random.default_rng(3), zeros=2)
    pol = AutoregressivePolicy(space)
    assert div.value(pol.log_probs(), tgt.log_probs) == np.inf
    with pytest.raises(ValueError, match=re.escape(f"divergence '{div.name}' is infinite here")):
        fdpg.exact_gradient(pol, tgt, div)


@pytest.mark.parametrize("cls", POLICIES, ids=lambda c: c.__name__)
def test_reverse_kl_is_rlhf_and_forward_kl_is_dpg(cls, small_space):
    rng = np.random.default_rng(11)
    z = rng.standard_normal(small_space.size)
    log_a = z - np.log(np.exp(z).sum())
    r = 3 * rng.standard_normal(small_space.size)
    for beta in (0.1, 1.0, 10.0):
        tgt = targets.rlhf(log_a, r, beta)
        pol = cls(small_space, seed=4, init_scale=1.0)
        np.testing.assert_allclose(
            fdpg.exact_gradient(pol, tgt, "reverse_kl"), fdpg.rlhf_gradient(pol, r, log_a, beta) / beta,
            rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            fdpg.exact_gradient(pol, tgt, "forward_kl"), fdpg.dpg_gradient(pol, tgt), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("div", [d for d in DIVS if d.name != "tv"], ids=[d.name for d in DIVS if d.name != "tv"])
def test_gradient_vanishes_at_the_target(div, small_space):
    """π = p is the minimiser; TV is left out: its f' jumps at t = 1 (a subgradient there)."""
    tgt = random_target(small_space, np.random.default_rng(5))
    pol = AutoregressivePolicy.from_log_probs(small_space, tgt.log_probs)
    assert np.abs(fdpg.exact_gradient(pol, tgt, div)).max() < 1e-12


def test_bad_input():
    space = SequenceSpace(["a", "b"], 2)
    other = SequenceSpace(["a", "b"], 3)
    tgt = random_target(space, np.random.default_rng(0))
    with pytest.raises(ValueError, match="target has 4 sequences but the policy's space has 8"):
        fdpg.exact_gradient(AutoregressivePolicy(other), tgt, "js")
    with pytest.raises(ValueError, match="unknown|not a"):
        fdpg.exact_gradient(AutoregressivePolicy(space), tgt, "nope")
    with pytest.raises(ValueError, match="must be an FDivergence"):
        fdpg.exact_gradient(AutoregressivePolicy(space), tgt, 3)
    with pytest.raises(ValueError, match="beta"):
        fdpg.rlhf_gradient(AutoregressivePolicy(space), np.zeros(4), tgt.log_a, 0.0)


def test_bad_input_audit():
    space = SequenceSpace(["a", "b"], 3)
    pol = AutoregressivePolicy(space)
    la = pol.log_probs()
    nan_first = np.r_[np.nan, la[1:]]
    for log_pi, log_p, match in [(nan_first, la, r"log_pi contains NaN"),  # were silent zero weights
                                 (la, nan_first, r"log_p contains NaN"),
                                 (la[None], la[None], r"expected the same \(N,\)"),
                                 (la[:3], la, r"log_pi has shape \(3,\)"),
                                 (np.array([]), np.array([]), r"N ≥ 1")]:
        with pytest.raises(ValueError, match=match):
            fdpg.gradient_weights(log_pi, log_p, "js")
    r = np.arange(8.0)
    for args, match in [((None, r, la, 1.0), "policy=None"),
                        ((pol, r, la, "1"), r"beta='1'"),
                        ((pol, r, la, np.inf), r"beta=inf"),
                        ((pol, np.full(8, np.nan), la, 1.0), r"reward contains NaN"),
                        ((pol, r, np.zeros(8), 1.0), r"log_a is not normalised"),
                        ((pol, r, np.r_[-np.inf, np.full(7, -np.log(7))], 1.0), r"log_a is -inf where π > 0")]:
        with pytest.raises(ValueError, match=match):
            fdpg.rlhf_gradient(*args)
