"""Every f-divergence against independent oracles: textbook formulas (scipy.special), sympy
generators, derivatives and limits, and high-precision mpmath sums for extreme ratios."""

import functools
import pickle
import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy.special import kl_div, rel_entr

from toyfdiv import divergences

T = sp.symbols("t", positive=True)
A = sp.symbols("alpha", real=True)
F_ALPHA = (T**A - A * T - (1 - A)) / (A * (A - 1))  # Amari, generic α

# (kind, parameter): the 9 registered rows first, then the extra family members.
REGISTERED = [("forward_kl", None), ("reverse_kl", None), ("tv", None), ("js", None), ("hellinger", None),
              ("pearson", None), ("neyman", None), ("alpha", 0.5), ("gjsd", 0.25)]
SPECS = REGISTERED + [("alpha", a) for a in (-1.0, 0.0, 0.3, 1.0, 2.0)] + [("gjsd", 0.1)]


def spec_id(spec):
    kind, x = spec
    return kind if x is None else f"{kind}({x:g})"


def make(spec):
    kind, x = spec
    return {"alpha": divergences.alpha, "gjsd": divergences.gjsd}[kind](x) if x is not None else divergences.get(kind)


ALL = pytest.mark.parametrize("spec", SPECS, ids=[spec_id(s) for s in SPECS])


@functools.lru_cache(maxsize=None)
def sympy_f(spec):
    """f(t) written from the divergence table (README, docs/conventions.md), independently of the library's code."""
    kind, x = spec
    if kind == "alpha":
        a = sp.nsimplify(x)
        return sp.limit(F_ALPHA, A, a) if a in (0, 1) else F_ALPHA.subs(A, a)
    if kind == "gjsd":
        b = sp.nsimplify(x)
        m = b + (1 - b) * T
        return -b * sp.log(m) + (1 - b) * T * sp.log(T / m)
    half = sp.Rational(1, 2)
    return {
        "forward_kl": -sp.log(T),
        "reverse_kl": T * sp.log(T),
        "tv": half * sp.Abs(T - 1),
        "js": half * (T * sp.log(T) - (1 + T) * sp.log((1 + T) / 2)),
        "hellinger": (sp.sqrt(T) - 1) ** 2,
        "pearson": (T - 1) ** 2,
        "neyman": (T - 1) ** 2 / T,
    }[kind]


@functools.lru_cache(maxsize=None)
def sympy_fp(spec):
    return sp.diff(sympy_f(spec), T)


def textbook_value(spec, pi, p):
    """D_f(π‖p) from probability-space textbook formulas with the usual 0-conventions."""
    kind, x = spec
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "forward_kl" or (kind == "alpha" and x == 0):
            return kl_div(p, pi).sum()  # Σ p log(p/π) − p + π
        if kind == "reverse_kl" or (kind == "alpha" and x == 1):
            return kl_div(pi, p).sum()
        if kind == "tv":
            return 0.5 * np.abs(pi - p).sum()
        if kind == "js":
            m = (pi + p) / 2
            return 0.5 * rel_entr(pi, m).sum() + 0.5 * rel_entr(p, m).sum()
        if kind == "gjsd":
            m = x * p + (1 - x) * pi
            return x * rel_entr(p, m).sum() + (1 - x) * rel_entr(pi, m).sum()
        keep = (pi > 0) | (p > 0)  # 0·f(0/0) = 0
        pi, p = pi[keep], p[keep]
        if kind == "hellinger":
            return ((np.sqrt(pi) - np.sqrt(p)) ** 2).sum()
        if kind == "pearson":
            return ((pi - p) ** 2 / p).sum()
        if kind == "neyman":
            return ((pi - p) ** 2 / pi).sum()
        return ((pi**x * p ** (1 - x) - x * pi - (1 - x) * p) / (x * (x - 1))).sum()  # α ∉ {0, 1}


def rand_pair(rng, n=12):
    return rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))


def logs(*arrays):
    with np.errstate(divide="ignore"):
        return tuple(np.log(a) for a in arrays)


def f_mp(spec):
    return sp.lambdify(T, sympy_f(spec), "mpmath")


# ---------------------------------------------------------------------------- values
@ALL
def test_value_against_textbook_and_sympy(spec):
    div, rng = make(spec), np.random.default_rng(0)
    f = sp.lambdify(T, sympy_f(spec), "numpy")
    for _ in range(5):
        pi, p = rand_pair(rng)
        lpi, lp = np.log(pi), np.log(p)
        v = div.value(lpi, lp)
        assert isinstance(v, float) and v >= 0
        assert v == pytest.approx(textbook_value(spec, pi, p), rel=1e-10, abs=1e-14)
        assert v == pytest.approx(float(np.sum(p * f(pi / p))), rel=1e-9, abs=1e-14)
        terms = div.value_terms(lpi, lp)
        assert terms.shape == (12,) and terms.sum() == pytest.approx(v, rel=1e-12, abs=1e-15)
        assert div.value(lp, lp) == 0.0 and div.value(lpi, lpi) == 0.0


@ALL
def test_invariance_to_adding_c_times_t_minus_one(spec):
    pi, p = rand_pair(np.random.default_rng(3))
    v = make(spec).value(*logs(pi, p))
    for c in (sp.Rational(7, 3), -5):
        g = sp.lambdify(T, sympy_f(spec) + c * (T - 1), "numpy")
        assert float(np.sum(p * g(pi / p))) == pytest.approx(v, rel=1e-9, abs=1e-13)


@ALL
def test_zero_support_rules(spec):
    div = make(spec)
    pi, p = rand_pair(np.random.default_rng(1), 8)
    pi[:2] = 0.0           # π = 0 < p: p·f(0+)
    p[2:4] = 0.0           # p = 0 < π: π·f'(∞)
    pi[4] = p[4] = 0.0     # both zero: 0
    lpi, lp = logs(pi, p)
    terms = div.value_terms(lpi, lp)
    assert terms[4] == 0.0
    np.testing.assert_allclose(terms[:2], p[:2] * div.f_at_zero, rtol=1e-15)
    np.testing.assert_allclose(terms[2:4], pi[2:4] * div.slope_at_infinity, rtol=1e-15)
    f = sp.lambdify(T, sympy_f(spec), "numpy")
    np.testing.assert_allclose(terms[5:], p[5:] * f(pi[5:] / p[5:]), rtol=1e-9, atol=1e-15)
    v = div.value(lpi, lp)
    assert v == pytest.approx(textbook_value(spec, pi, p), rel=1e-10)
    assert v == np.inf if np.isinf(div.f_at_zero) or np.isinf(div.slope_at_infinity) else np.isfinite(v)
    # p = 0 < π alone: infinite exactly where f'(∞) is
    pi2, p2 = rand_pair(np.random.default_rng(2), 6)
    p2[0] = 0.0
    p2 /= p2.sum()
    v2 = div.value(*logs(pi2, p2))
    assert np.isinf(v2) == np.isinf(div.slope_at_infinity)
    assert v2 == pytest.approx(textbook_value(spec, pi2, p2), rel=1e-10)


@ALL
def test_extreme_values_match_high_precision(spec):
    """π/p up to e^{±800} and unnormalised inputs: the mpmath sum Σ p f(π/p), no NaN, no warning."""
    div, f = make(spec), f_mp(spec)
    lpi = np.array([-1e-3, -700.0, -1e-9, -30.0, -2.5, -800.0, -40.0])
    lp = np.array([-800.0, -1e-12, -650.0, -30.5, -2.5, -1e-3, -40.0 + 1e-7])
    with mpmath.workdps(60), warnings.catch_warnings():
        warnings.simplefilter("error")
        terms = [mpmath.exp(b) * f(mpmath.exp(a - b)) for a, b in zip(lpi, lp)]
        exact = float(mpmath.fsum(terms))
        got = div.value_terms(lpi, lp)
        v = div.value(lpi, lp)
        for g, e, scale in zip(got, terms, np.exp(np.maximum(lpi, lp))):  # scale = max(π, p)
            assert g == pytest.approx(float(e), rel=1e-9, abs=1e-13 * scale) or g == float(e) == np.inf
        assert v == pytest.approx(exact, rel=1e-9) or v == exact == np.inf
        for shift in (-5.0, 5.0):  # D_f is 1-homogeneous in (π, p)
            assert div.value(lpi + shift, lp + shift) == pytest.approx(np.exp(shift) * v, rel=1e-12)
        huge = div.value(lpi + 1000.0, lp + 1000.0)  # e^1000 · D: beyond float, but never NaN
        assert huge == np.inf or huge == 0.0


# ---------------------------------------------------------------------------- generator
@ALL
def test_f_and_f_prime_against_sympy(spec):
    div = make(spec)
    t = np.concatenate([np.geomspace(1e-4, 1e4, 81), [0.5, 1.0, 2.0, 3.7]])
    f_num = sp.lambdify(T, sympy_f(spec), "numpy")
    fp_num = sp.lambdify(T, sympy_fp(spec), "numpy")
    np.testing.assert_allclose(div.f(t), f_num(t), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(div.f_prime(t), fp_num(t), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(div.pseudo_reward(np.log(t)), -fp_num(t), rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(div.pseudo_reward(np.log(t)), -div.f_prime(t)) if spec[0] == "tv" else None
    assert float(div.f(1.0)) == 0.0 and div.f(np.ones((2, 3))).shape == (2, 3)
    grid = np.linspace(0.01, 10, 2000)  # convex: second differences are ≥ 0
    assert np.all(np.diff(div.f(grid), 2) >= -1e-12)
    t2 = np.geomspace(1e-3, 1e3, 25)  # t f''(t) from the closed form
    fpp = sp.lambdify(T, sp.diff(sympy_f(spec), T, 2).subs(sp.DiracDelta(T - 1), 0), "numpy")
    np.testing.assert_allclose(div.curvature(np.log(t2)), t2 * fpp(t2), rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(div.f_double_prime(t2), fpp(t2) * np.ones_like(t2), rtol=1e-9, atol=1e-13)


@ALL
def test_limits_at_zero_and_infinity_against_sympy(spec):
    div, f = make(spec), sympy_f(spec)
    f0, slope = sp.limit(f, T, 0, "+"), sp.limit(f / T, T, sp.oo)
    fp0 = sp.limit(sympy_fp(spec), T, 0, "+")
    for got, want in ((div.f_at_zero, f0), (div.slope_at_infinity, slope), (float(div.f_prime(0.0)), fp0)):
        assert got == (np.inf if want == sp.oo else -np.inf if want == -sp.oo else pytest.approx(float(want), rel=1e-12))
    assert float(div.f(0.0)) == div.f_at_zero
    assert float(div.f_prime(np.inf)) == div.slope_at_infinity
    assert div.f_prime_to_minus_inf_at_zero == (fp0 == -sp.oo)
    assert float(div.f(np.inf)) == float(sp.limit(f, T, sp.oo))


@ALL
def test_pseudo_reward_is_stable_at_extreme_log_ratios(spec):
    """R(u) = −f'(e^u) at u = ±1e4, ±800 and ±inf, against sympy at 40 digits; no warnings."""
    div, fp = make(spec), sympy_fp(spec)
    u = np.array([-np.inf, -1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4, np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = div.pseudo_reward(u)
    want = [float(-sp.limit(fp, T, 0, "+")), *[float(-fp.subs(T, sp.exp(sp.Integer(int(x)))).evalf(40))
                                                 for x in u[1:-1]], float(-sp.limit(fp, T, sp.oo))]
    for got, w in zip(r, want):
        assert got == w if np.isinf(w) else got == pytest.approx(w, rel=1e-12, abs=1e-15)
    assert div.pseudo_reward(0.0).shape == () and div.pseudo_reward(np.zeros((2, 2))).shape == (2, 2)


@pytest.mark.parametrize("spec", [s for s in SPECS if s[0] != "tv"], ids=[spec_id(s) for s in SPECS if s[0] != "tv"])
def test_f_prime_inverse_round_trips(spec):
    div = make(spec)
    t = np.geomspace(1e-6, 1e6, 49)
    y = div.f_prime(t)
    # relative condition number of t ↦ f'(t) inverted: |f'(t)| / (t f''(t)), where f' saturates it is large
    cond = np.maximum(np.abs(y), 1.0) / div.curvature(np.log(t))
    np.testing.assert_array_less(np.abs(div.f_prime_inverse(y) / t - 1), 1e-10 + 100 * np.finfo(float).eps * cond)
    lo, hi = float(div.f_prime(0.0)), div.slope_at_infinity
    assert div.f_prime_inverse(lo) == 0.0 and div.f_prime_inverse(hi) == np.inf
    for outside in (lo - 1.0, hi + 1.0):
        if np.isfinite(outside):
            with pytest.raises(ValueError, match=r"y=.* is out of range .* allowed: \["):
                div.f_prime_inverse(outside)


# ---------------------------------------------------------------------------- the α family
@pytest.mark.parametrize("eps", [1e-7, -1e-7, 1e-13, -1e-13])
def test_alpha_is_continuous_at_zero_and_one(eps):
    pi, p = rand_pair(np.random.default_rng(4))
    lpi, lp = np.log(pi), np.log(p)
    fwd, rev = divergences.get("forward_kl"), divergences.get("reverse_kl")
    rel = max(1e-10, 10 * abs(eps))
    assert divergences.alpha(eps).value(lpi, lp) == pytest.approx(fwd.value(lpi, lp), rel=rel)
    assert divergences.alpha(1 + eps).value(lpi, lp) == pytest.approx(rev.value(lpi, lp), rel=rel)
    t = np.geomspace(1e-3, 1e3, 13)
    np.testing.assert_allclose(divergences.alpha(eps).f(t), fwd.f(t) + t - 1, rtol=rel, atol=1e-12)
    np.testing.assert_allclose(divergences.alpha(1 + eps).f(t), rev.f(t) - t + 1, rtol=rel, atol=1e-12)
    u = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(divergences.alpha(eps).pseudo_reward(u), fwd.pseudo_reward(u) - 1, rtol=rel)
    np.testing.assert_allclose(divergences.alpha(1 + eps).pseudo_reward(u), rev.pseudo_reward(u) + 1, atol=rel)


def test_family_identities():
    half = sp.Rational(1, 2)
    assert sp.simplify(F_ALPHA.subs(A, half) - 2 * sympy_f(("hellinger", None))) == 0
    assert sp.simplify(F_ALPHA.subs(A, 2) - half * sympy_f(("pearson", None))) == 0
    assert sp.simplify(F_ALPHA.subs(A, -1) - half * sympy_f(("neyman", None))) == 0
    assert sp.simplify(sympy_f(("gjsd", 0.5)) - sympy_f(("js", None))) == 0
    pi, p = rand_pair(np.random.default_rng(5))
    lpi, lp = np.log(pi), np.log(p)
    val = lambda d: divergences.get(d).value(lpi, lp)  # noqa: E731
    assert val("alpha(0.5)") == pytest.approx(2 * val("hellinger"), rel=1e-12)
    assert val("alpha(2)") == pytest.approx(0.5 * val("pearson"), rel=1e-12)
    assert val("alpha(-1)") == pytest.approx(0.5 * val("neyman"), rel=1e-12)
    assert val("gjsd(0.5)") == pytest.approx(val("js"), rel=1e-12)


# ---------------------------------------------------------------------------- registry
def test_registry():
    assert divergences.names() == [k for k, _ in REGISTERED[:7]] + ["alpha", "gjsd"]
    assert [d.name for d in divergences.registered()] == [spec_id(s) for s in REGISTERED]
    assert divergences.get("alpha") == divergences.alpha(0.5) and divergences.get("gjsd") == divergences.gjsd(0.25)
    assert divergences.get(" gjsd(0.25) ") == divergences.gjsd(0.25)
    assert divergences.get("alpha(0.3)").name == "alpha(0.3)"
    assert divergences.get("js") != divergences.get("gjsd(0.5)")  # equal values, different rows
    for d in [make(s) for s in SPECS] + [divergences.alpha(1 + 1e-7), divergences.alpha(0.123456789)]:
        assert divergences.get(d.name) == d and pickle.loads(pickle.dumps(d)) == d
        assert d.name in repr(d) and len(repr(d)) < 130 and d.label in str(d)
    assert divergences.alpha(1 + 1e-7).name == "alpha(1.0000001)"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: divergences.get("kl"), r"name='kl' is unknown; allowed: \['forward_kl', 'reverse_kl'"),
        (lambda: divergences.get(3), r"name=3 must be a string"),
        (lambda: divergences.get("alpha(x)"), r"name='alpha\(x\)': 'x' is not a number"),
        (lambda: divergences.gjsd(0.0), r"beta=0.0 is out of range; allowed: 0 < beta < 1"),
        (lambda: divergences.gjsd(1.0), r"beta=1.0 is out of range; allowed: 0 < beta < 1"),
        (lambda: divergences.get("gjsd(1.5)"), r"beta=1.5 is out of range"),
        (lambda: divergences.alpha(float("nan")), r"a=nan must be a finite real number"),
        (lambda: divergences.alpha(float("inf")), r"a=inf must be a finite real number"),
        (lambda: divergences.get("js").value(np.zeros(3), np.zeros(4)), r"log_pi has shape \(3,\) and log_p \(4,\)"),
        (lambda: divergences.get("js").value(np.zeros((2, 2)), np.zeros((2, 2))), r"expected the same \(N,\)"),
        (lambda: divergences.get("js").value(np.array([np.nan, 0.0]), np.zeros(2)), r"log_pi contains NaN .* at \[0\]"),
        (lambda: divergences.get("tv").value(np.zeros(2), np.array([0.0, np.inf])), r"log_p contains NaN or \+inf at \[1\]"),
        (lambda: divergences.get("js").pseudo_reward(np.array([np.nan])), r"log_t contains NaN"),
        (lambda: divergences.get("tv").f_prime_inverse(0.1), r"tv: f' is a step function"),
        (lambda: divergences.get("js").f(np.array([-1.0])), r"t=\[-1.\] is out of range; allowed: t ≥ 0"),
    ],
    ids=["unknown", "not-string", "not-a-number", "gjsd0", "gjsd1", "gjsd-by-name", "alpha-nan", "alpha-inf",
         "shape", "2d", "nan", "posinf", "nan-log-t", "tv-inverse", "negative-t"],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: divergences.get("js").value(["a", "b"], ["a", "b"]), r"log_pi='?\[?'a'"),
    (lambda: divergences.get("js").f("a"), r"t='a'"),
    (lambda: divergences.get("js").weights(np.zeros(3), np.zeros(2)), r"log_pi has shape \(3,\) and log_p \(2,\)"),
    (lambda: divergences.FDivergence("x", "x", "", "", "x", 0.0, 0.0, None, None, None, None), r"_f=None"),
])
def test_bad_input_audit(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_value_of_a_vanishing_sum_is_zero_not_an_overflow():
    # unnormalised inputs with log π up to 800: the scaled sum underflows to 0, e^800 must not be formed
    assert divergences.get("forward_kl").value(np.array([800.0, 0.0]), np.array([0.0, 0.0])) == 0.0


def test_rows_are_structured_and_the_label_is_built_from_them():
    """title, notation and role are separate fields; label joins them; parameter() parses names."""
    fwd = divergences.get("forward_kl")
    assert (fwd.title, fwd.notation, fwd.role) == ("forward KL", "KL(p‖π)", "GDC / DPG")
    assert fwd.label == "forward KL  KL(p‖π) — GDC / DPG"
    assert divergences.get("tv").label == "total variation  ½Σ|π−p|"  # no role
    assert divergences.alpha(0.3).label == divergences.alpha(0.3).title == "α-divergence, α = 0.3"
    assert divergences.parameter("alpha(0.3)") == ("alpha", 0.3)
    assert divergences.parameter("gjsd(0.25)") == ("gjsd", 0.25)
    assert divergences.parameter("js") is None and divergences.parameter("alpha(x)") is None
