"""Every f-divergence against independent oracles: textbook formulas, sympy, limits."""

import numpy as np
import pytest
import sympy as sp
from scipy.special import rel_entr

from toyfdiv import divergences

DIVS = list(divergences.registered()) + [
    divergences.alpha(a) for a in (-1.0, 0.0, 0.3, 1.0, 2.0)] + [divergences.gjsd(0.1)]
IDS = [d.name for d in DIVS]

T = sp.symbols("t", positive=True)


def sympy_f(div):
    """f(t) written from the design's table, independently of the library's code."""
    name = div.name
    if name == "forward_kl":
        return -sp.log(T)
    if name == "reverse_kl":
        return T * sp.log(T)
    if name == "tv":
        return sp.Rational(1, 2) * sp.Abs(T - 1)
    if name == "js":
        return sp.Rational(1, 2) * (T * sp.log(T) - (1 + T) * sp.log((1 + T) / 2))
    if name == "hellinger":
        return (sp.sqrt(T) - 1) ** 2
    if name == "pearson":
        return (T - 1) ** 2
    if name == "neyman":
        return (T - 1) ** 2 / T
    if name.startswith("alpha"):
        a = sp.nsimplify(float(name[6:-1]))
        if a == 0:
            return -sp.log(T) + T - 1
        if a == 1:
            return T * sp.log(T) - T + 1
        return (T**a - a * T - (1 - a)) / (a * (a - 1))
    if name.startswith("gjsd"):
        b = sp.nsimplify(float(name[5:-1]))
        m = b + (1 - b) * T
        return -b * sp.log(m) + (1 - b) * T * sp.log(T / m)
    raise AssertionError(name)


def textbook_value(div, pi, p):
    """D_f(π‖p) from textbook formulas in probability space (full-support inputs)."""
    name = div.name
    if name == "forward_kl":
        return rel_entr(p, pi).sum()
    if name == "reverse_kl":
        return rel_entr(pi, p).sum()
    if name == "tv":
        return 0.5 * np.abs(pi - p).sum()
    if name == "js":
        m = (pi + p) / 2
        return 0.5 * rel_entr(pi, m).sum() + 0.5 * rel_entr(p, m).sum()
    if name == "hellinger":
        return ((np.sqrt(pi) - np.sqrt(p)) ** 2).sum()
    if name == "pearson":
        return ((pi - p) ** 2 / p).sum()
    if name == "neyman":
        return ((pi - p) ** 2 / pi).sum()
    if name.startswith("alpha"):
        a = float(name[6:-1])
        if a == 0:
            return rel_entr(p, pi).sum()
        if a == 1:
            return rel_entr(pi, p).sum()
        return ((pi**a * p ** (1 - a)).sum() - 1) / (a * (a - 1))
    if name.startswith("gjsd"):
        b = float(name[5:-1])
        m = b * p + (1 - b) * pi
        return b * rel_entr(p, m).sum() + (1 - b) * rel_entr(pi, m).sum()
    raise AssertionError(name)


def rand_pair(rng, n=12):
    return rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))


@pytest.mark.parametrize("div", DIVS, ids=IDS)
def test_value_against_textbook_and_sympy(div):
    rng = np.random.default_rng(0)
    f = sp.lambdify(T, sympy_f(div), "numpy")
    for _ in range(5):
        pi, p = rand_pair(rng)
        v = div.value(np.log(pi), np.log(p))
        assert v == pytest.approx(textbook_value(div, pi, p), rel=1e-10, abs=1e-14)
        assert v == pytest.approx(float(np.sum(p * f(pi / p))), rel=1e-9, abs=1e-14)
        assert v >= 0
        assert div.value_terms(np.log(pi), np.log(p)).sum() == pytest.approx(v, rel=1e-13)
    assert div.value(np.log(p), np.log(p)) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("div", DIVS, ids=IDS)
def test_generator_f_and_derivative_against_sympy(div):
    f_sym = sympy_f(div)
    t = np.concatenate([np.geomspace(1e-3, 1e3, 41), [0.5, 2.0, 3.7]])
    t = t[np.abs(t - 1) > 1e-9]  # TV's f' jumps at 1
    f_num = sp.lambdify(T, f_sym, "numpy")
    fp_num = sp.lambdify(T, sp.diff(f_sym, T), "numpy")
    np.testing.assert_allclose(div.f(t), f_num(t), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(div.f_prime(t), fp_num(t), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(div.pseudo_reward(np.log(t)), -fp_num(t), rtol=1e-9, atol=1e-12)
    fpp_sym = sp.diff(f_sym, T, 2).subs(sp.DiracDelta(T - 1), 0)  # TV: 0 away from t = 1
    fpp_num = sp.lambdify(T, fpp_sym, "numpy")
    np.testing.assert_allclose(div.f_double_prime(t), fpp_num(t) * np.ones_like(t), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(div.curvature(np.log(t)), t * fpp_num(t), rtol=1e-9, atol=1e-12)
    assert float(div.f(np.array(1.0))) == pytest.approx(0.0, abs=1e-15)
    # convex: second differences are non-negative
    grid = np.linspace(0.05, 5, 400)
    assert np.all(np.diff(div.f(grid), 2) >= -1e-12)
    # the zero-support constants are the limits of f
    f0 = sp.limit(f_sym, T, 0, "+")
    slope = sp.limit(f_sym / T, T, sp.oo)
    assert div.f_at_zero == (np.inf if f0 == sp.oo else pytest.approx(float(f0), rel=1e-12))
    assert div.slope_at_infinity == (np.inf if slope == sp.oo else pytest.approx(float(slope), rel=1e-12))


@pytest.mark.parametrize("div", DIVS, ids=IDS)
def test_zero_support_rules(div):
    rng = np.random.default_rng(1)
    pi, p = rand_pair(rng, 8)
    pi[:2] = 0.0           # π = 0 < p: p·f(0+)
    p[2:4] = 0.0           # p = 0 < π: π·f'(∞)
    pi[4] = p[4] = 0.0     # both zero: 0
    with np.errstate(divide="ignore"):
        lpi, lp = np.log(pi), np.log(p)
    terms = div.value_terms(lpi, lp)
    assert terms[4] == 0.0
    assert terms[0] == (np.inf if np.isinf(div.f_at_zero) else pytest.approx(p[0] * div.f_at_zero))
    assert terms[2] == (np.inf if np.isinf(div.slope_at_infinity) else pytest.approx(pi[2] * div.slope_at_infinity))
    both = (pi > 0) & (p > 0)
    f = sp.lambdify(T, sympy_f(div), "numpy")
    np.testing.assert_allclose(terms[both], p[both] * f(pi[both] / p[both]), rtol=1e-9, atol=1e-14)
    assert not np.isnan(div.value(lpi, lp))


@pytest.mark.parametrize("div", DIVS, ids=IDS)
def test_extreme_ratios_are_stable(div):
    """log t up to ±1e4 and ±inf: no warnings (they are errors here), no NaN."""
    u = np.array([-np.inf, -1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4, np.inf])
    r = div.pseudo_reward(u)
    assert not np.isnan(r).any()
    lpi = np.array([-1e-3, -700.0, -1e-9])
    lp = np.array([-800.0, -1e-12, -650.0])
    v = div.value(lpi, lp)
    assert not np.isnan(v) and v > 0
    w = div.weights(lpi, lp)
    assert not np.isnan(w).any()
    # the weights agree with −π·R where both are moderate
    lpi, lp = np.log(rand_pair(np.random.default_rng(2)))
    np.testing.assert_allclose(div.weights(lpi, lp), -np.exp(lpi) * div.pseudo_reward(lpi - lp), rtol=1e-10, atol=1e-15)


def test_invariance_to_adding_c_times_t_minus_one():
    rng = np.random.default_rng(3)
    pi, p = rand_pair(rng)
    for div in DIVS:
        g = sp.lambdify(T, sympy_f(div) + sp.Rational(7, 3) * (T - 1), "numpy")
        assert float(np.sum(p * g(pi / p))) == pytest.approx(div.value(np.log(pi), np.log(p)), rel=1e-9, abs=1e-13)


@pytest.mark.parametrize("eps", [1e-7, -1e-7])
def test_alpha_is_continuous_at_zero_and_one(eps):
    pi, p = rand_pair(np.random.default_rng(4))
    lpi, lp = np.log(pi), np.log(p)
    fwd, rev = divergences.get("forward_kl"), divergences.get("reverse_kl")
    assert divergences.alpha(eps).value(lpi, lp) == pytest.approx(fwd.value(lpi, lp), rel=1e-6)
    assert divergences.alpha(1 + eps).value(lpi, lp) == pytest.approx(rev.value(lpi, lp), rel=1e-6)
    u = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(divergences.alpha(eps).pseudo_reward(u), fwd.pseudo_reward(u) - 1, rtol=1e-5)
    np.testing.assert_allclose(divergences.alpha(1 + eps).pseudo_reward(u), rev.pseudo_reward(u) + 1, atol=1e-5)


def test_family_identities():
    pi, p = rand_pair(np.random.default_rng(5))
    lpi, lp = np.log(pi), np.log(p)
    val = lambda d: divergences.get(d).value(lpi, lp)  # noqa: E731
    assert val("alpha(0.5)") == pytest.approx(2 * val("hellinger"), rel=1e-12)
    assert val("alpha(2)") == pytest.approx(0.5 * val("pearson"), rel=1e-12)
    assert val("alpha(-1)") == pytest.approx(0.5 * val("neyman"), rel=1e-12)
    assert val("gjsd(0.5)") == pytest.approx(val("js"), rel=1e-12)


@pytest.mark.parametrize("div", [d for d in DIVS if d.name != "tv"], ids=[d.name for d in DIVS if d.name != "tv"])
def test_f_prime_inverse_round_trips(div):
    t = np.geomspace(1e-3, 50, 30)
    np.testing.assert_allclose(div.f_prime_inverse(div.f_prime(t)), t, rtol=1e-8)
    fp = sp.diff(sympy_f(div), T)
    assert div.f_prime_to_minus_inf_at_zero == (sp.limit(fp, T, 0, "+") == -sp.oo)


def test_registry():
    assert divergences.names() == ["forward_kl", "reverse_kl", "tv", "js", "hellinger",
                                   "pearson", "neyman", "alpha", "gjsd"]
    assert [d.name for d in divergences.registered()][:7] == divergences.names()[:7]
    assert divergences.get("alpha(0.3)").name == "alpha(0.3)"
    assert divergences.get(" gjsd(0.25) ").name == "gjsd(0.25)"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: divergences.get("kl"), r"divergence 'kl' is unknown; allowed: \['forward_kl'"),
        (lambda: divergences.get(3), "must be a string"),
        (lambda: divergences.gjsd(0.0), "beta=0.0 is out of range"),
        (lambda: divergences.gjsd(1.0), "beta=1.0 is out of range"),
        (lambda: divergences.alpha(float("nan")), "alpha=nan must be a finite real"),
        (lambda: divergences.get("js").value(np.zeros(3), np.zeros(4)), r"log_pi has shape \(3,\) and log_p \(4,\)"),
        (lambda: divergences.get("js").value(np.array([np.nan, 0.0]), np.zeros(2)), "log_pi contains NaN"),
        (lambda: divergences.get("js").pseudo_reward(np.array([np.nan])), "log_t contains NaN"),
        (lambda: divergences.get("tv").f_prime_inverse(0.1), "not invertible"),
        (lambda: divergences.get("js").f(np.array([-1.0])), "t must be ≥ 0"),
    ],
    ids=["unknown", "not-string", "gjsd0", "gjsd1", "alpha-nan", "shape", "nan", "nan-log-t", "tv-inverse", "negative-t"],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
