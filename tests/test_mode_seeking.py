"""The log-linear policy and mode seeking vs mode covering on the 3-outcome simplex."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from toyfdiv import SequenceSpace, divergences, fdpg, plots, simplex, targets
from toyfdiv.policies import LogLinearPolicy
from conftest import fd_gradient


def test_loglinear_gradient_matches_finite_differences(small_space):
    rng = np.random.default_rng(0)
    psi = rng.standard_normal((small_space.size, 3))
    pol = LogLinearPolicy(small_space, psi, offset=rng.standard_normal(small_space.size), params=[0.3, -0.2, 0.5])
    assert abs(np.exp(pol.log_probs()).sum() - 1) < 1e-12
    w = rng.standard_normal(small_space.size)
    fd = fd_gradient(lambda th: w @ pol.with_params(th).log_probs(), pol.params, h=1e-3)
    np.testing.assert_allclose(pol.grad_log_prob_weighted(w), fd, rtol=1e-8, atol=1e-10)
    tgt = targets.from_log_probs(pol.with_params([0, 0, 0]).log_probs(), pol.log_probs())
    for div in divergences.registered():
        g = fdpg.exact_gradient(pol, tgt, div)
        fd = fd_gradient(lambda th: div.value(pol.with_params(th).log_probs(), tgt.log_probs), pol.params, h=1e-3)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_loglinear_bad_input():
    space = SequenceSpace(["a", "b"], 2)
    with pytest.raises(ValueError, match=r"features has shape \(3, 1\); expected \(4, K\)"):
        LogLinearPolicy(space, np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"params has shape \(2,\)"):
        LogLinearPolicy(space, np.ones((4, 1)), params=[1.0, 2.0])


def test_location_family_is_the_discretised_gaussian():
    pol = simplex.location_family(mu=0.7, width=0.5)
    k = np.arange(3.0)
    expected = np.exp(-(k - 0.7) ** 2 / (2 * 0.25))
    np.testing.assert_allclose(pol.probs(), expected / expected.sum(), rtol=1e-12)


def test_reverse_kl_seeks_a_mode_and_forward_kl_covers_the_valley():
    """Two modes at x₁ and x₃: the unimodal family cannot hold both."""
    p = np.exp(simplex.BIMODAL_TARGET)
    rev = simplex.restricted_flow(simplex.BIMODAL_TARGET, "reverse_kl", mu0=1.2, steps=300)[-1]
    fwd = simplex.restricted_flow(simplex.BIMODAL_TARGET, "forward_kl", mu0=1.2, steps=300)[-1]
    assert rev[2] > 0.7 and rev[0] < 0.05           # one mode, the other dropped
    assert np.argmax(fwd) == 1 and fwd[0] > 0.05     # mass on the valley, both modes kept
    # each end is a stationary point: the exact gradient vanishes there
    for name, end in (("reverse_kl", rev), ("forward_kl", fwd)):
        mu = 0.25 * (np.log(end[1] / end[0]) + 2.0)  # log(π₁/π₀) = θ − 1/2s², μ = θ s², s = ½
        pol = simplex.location_family(mu, 0.5)
        np.testing.assert_allclose(pol.probs(), end, atol=1e-6)
        tgt = targets.from_log_probs(np.log(p), np.log(p))
        assert abs(fdpg.exact_gradient(pol, tgt, name)[0]) < 1e-6
    # and forward KL's end is the family's moment match E_π[k] = E_p[k] (its stationarity condition)
    assert fwd @ np.arange(3) == pytest.approx(p @ np.arange(3), abs=1e-6)


def test_mode_seeking_figure():
    fig = plots.mode_seeking(divergences=["forward_kl", "reverse_kl", "js"])
    assert isinstance(fig, Figure)
    ax, bx = fig.axes[:2]
    assert len(bx.patches) == 3 * 4  # three outcomes × (target + three divergences)
    colours = {plots.divergence_color(n) for n in ("forward_kl", "reverse_kl", "js")}
    from matplotlib.colors import to_hex
    assert colours <= {to_hex(line.get_color()) for line in ax.lines}


def test_simplex_bad_input_audit():
    for call, match in [(lambda: simplex.simplex_grid(simplex.DEFAULT_TARGET, "js", 10**6), r"resolution=1000000"),
                        (lambda: simplex.location_family("a"), r"mu='a'"),
                        (lambda: simplex.location_family(1.0, 1e-200), r"width=1e-200 is too small"),
                        (lambda: simplex.family_curve(0.5, []), r"mus has shape \(0,\)"),
                        (lambda: simplex.family_curve(0.5, [[1.0]]), r"mus has shape \(1, 1\)"),
                        (lambda: simplex.contour_levels(np.arange(10.0), 0), r"n=0"),
                        (lambda: simplex.contour_levels("abc"), r"D='abc'"),
                        (lambda: simplex.gradient_flow(simplex.DEFAULT_TARGET, "js", "abc"), r"start='abc'"),
                        (lambda: simplex.to_xy([1, 2]), r"pi has shape \(2,\)")]:
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.warns(RuntimeWarning, match="max_dtheta=1e-300"):  # was a silently frozen path
        path = simplex.gradient_flow(simplex.DEFAULT_TARGET, "js", simplex.DEFAULT_START, 3, 0.5, max_dtheta=1e-300)
    assert path.shape == (4, 3)
