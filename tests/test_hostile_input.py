"""Faults and hostile input (issue 14, items 3, 4, 7, 8, 9): guards before allocation, normalised
results at the extremes, edge cases of the divergences, errors of the right kind naming the
argument the user passed.  Oracles: closed forms, sympy limits, mpmath at 50 digits, tracemalloc."""

import math
import tracemalloc

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy.special import logsumexp

from toyfdiv import SequenceSpace, divergences, metrics, targets
from toyfdiv._util import check_choice, check_int, check_log_probs, check_real, check_vector
from toyfdiv.config import Config
from toyfdiv.feedback import dpo, fdpo, raters
from toyfdiv.policies import AutoregressivePolicy, NgramPolicy, TabularPolicy, TinyLM
from toyfdiv.policies.tinylm import TinyLMConfig
from toyfdiv.space import MAX_LENGTH

LOG4 = np.log(np.full(4, 0.25))


def _peak_bytes(fn) -> int:
    """Peak memory Python allocated while ``fn`` ran (it is expected to raise ValueError)."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            fn()
        return tracemalloc.get_traced_memory()[1], str(info.value)
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------- item 3: guards before allocation
@pytest.mark.parametrize("make, says", [
    (lambda: SequenceSpace(["a"], 10**8), f"allowed: 1 … {MAX_LENGTH}"),
    (lambda: SequenceSpace.size_of(2, 2**40), f"allowed: 1 … {MAX_LENGTH}"),
    (lambda: SequenceSpace.size_of(10**300, 1000), "allowed: V^T below 10^100000"),
    (lambda: SequenceSpace(["a", "b", "c"], 40), "max_bytes"),
], ids=["space-length-1e8", "size_of-2^40", "size_of-digits", "space-memory"])
def test_guards_refuse_before_allocating(make, says):
    """Refused in O(1): under 1 MiB allocated in all (the old code built 10⁸ levels / a 2^(2^40) integer)."""
    peak, message = _peak_bytes(make)
    assert peak < 2**20 and says in message


def test_longest_space_is_accepted():
    space = SequenceSpace(["a"], MAX_LENGTH, eos="</s>")
    assert space.size == MAX_LENGTH and SequenceSpace.size_of(1, MAX_LENGTH, eos=True) == MAX_LENGTH


def _rater(n):
    return raters.Rater(np.linspace(0.0, 1.0, n))


def test_collect_preferences_refuses_before_drawing_and_says_what_fits():
    """A source with 1e-6 of its mass off the mode: 1000 pairs need ~5e8 draws (4.5 GiB before the guard)."""
    log_pi = np.log(np.array([1 - 1e-6, 1e-6 / 3, 1e-6 / 3, 1e-6 / 3]))
    p_distinct = -np.expm1(logsumexp(2 * log_pi))  # 1 − Σπ²
    fits = int(raters.MAX_PAIR_DRAWS * p_distinct)
    peak, message = _peak_bytes(lambda: raters.collect_preferences(_rater(4), log_pi, 1000, np.random.default_rng(0)))
    assert peak < 2**20 and f"n ≤ {fits:,}" in message and "n=1,000" in message
    data = raters.collect_preferences(_rater(4), log_pi, fits // 10, np.random.default_rng(0))  # fits: works
    assert len(data.winners) == fits // 10 and (data.winners != data.losers).all()


def test_collect_preferences_in_bounded_batches(monkeypatch):
    """Batches of at most _PAIR_BATCH draws give n valid pairs (x ≠ y) all the same."""
    monkeypatch.setattr(raters, "_PAIR_BATCH", 64)
    data = raters.collect_preferences(_rater(4), LOG4, 500, np.random.default_rng(1))
    assert len(data.winners) == 500 and (data.winners != data.losers).all()


# ---------------------------------------------------------------------------- item 4: normalised at the extremes
def _normalised(log_p):
    assert not np.isnan(log_p).any() and not np.isposinf(log_p).any()
    assert abs(np.exp(log_p).sum() - 1.0) <= 1e-12


def test_rlhf_extremes_are_normalised():
    tgt = targets.rlhf(LOG4, np.array([1e6, -1e6, 1e6, -1e6]), beta=1e-6)
    _normalised(tgt.log_probs)
    np.testing.assert_allclose(np.exp(tgt.log_probs), [0.5, 0, 0.5, 0], atol=1e-12)  # closed form
    equal = targets.rlhf(np.log(np.full(3, 1 / 3)), np.full(3, 1e17), beta=1.0)  # p = a exactly
    np.testing.assert_allclose(equal.log_probs, np.log(np.full(3, 1 / 3)), rtol=1e-15)
    assert targets.from_log_probs(LOG4, tgt.log_probs).log_probs.shape == (4,)  # the library accepts its own p


@pytest.mark.parametrize("optimum", ["dpo", "fdpo-reverse_kl", "fdpo-js", "fdpo-forward_kl"])
def test_preference_optima_at_huge_rewards_are_normalised_or_name_the_input(optimum):
    reward = np.array([1e300, 0.0, -1e300, 5.0])
    try:
        out = (dpo.dpo_optimum(LOG4, reward, beta=1.0) if optimum == "dpo"
               else fdpo.fdpo_optimum(LOG4, reward, beta=1.0, divergence=optimum.split("-")[1]))
    except ValueError as err:
        assert "beta=" in str(err) or "reward" in str(err)
    else:
        _normalised(out)
        assert np.exp(out[0]) == pytest.approx(1.0, abs=1e-12)  # all mass on the best sequence


def test_fdpo_at_tiny_beta_is_normalised_or_names_beta():
    r = np.array([1.0, 0.0, -1.0, 5.0])
    lam = fdpo.fdpo_lambda(LOG4, r, beta=1e-6, divergence="js")  # was "bracket [9.1981, 9.19811] gives …"
    assert np.isfinite(lam)
    for name in ("js", "reverse_kl", "forward_kl", "hellinger"):
        try:
            _normalised(fdpo.fdpo_optimum(LOG4, r, beta=1e-6, divergence=name))
        except ValueError as err:
            assert str(err).startswith("beta=1e-06 is too small")


@pytest.mark.parametrize("family", [AutoregressivePolicy, NgramPolicy, TabularPolicy])
@pytest.mark.parametrize("scale", [1e16, 1e300])
def test_softmax_policies_with_huge_params_are_normalised(family, scale):
    space = SequenceSpace(["a", "b"], 3, eos="</s>")
    pol = family(space, seed=0)
    rng = np.random.default_rng(0)
    for theta in (np.full(pol.n_params, scale), scale * rng.standard_normal(pol.n_params)):
        lp = pol.with_params(theta).log_probs()
        _normalised(lp)


def test_tinylm_out_of_range_inputs_are_named():
    space = SequenceSpace(["a", "b"], 3)
    with pytest.raises(ValueError, match=r"TinyLMConfig.init_scale=1e\+300 is out of range"):
        TinyLMConfig(init_scale=1e300)
    pol = TinyLM(space, seed=0)
    with pytest.raises(ValueError, match=r"theta has \|θ\| up to 1e\+308; allowed: \|θ\| ≤ 1e\+150"):
        pol.with_params(np.full(pol.n_params, 1e308))  # refused before any forward pass
    with pytest.raises(ValueError, match=r"params has \|θ\| up to 2e\+150"):
        TinyLM(space, params=np.r_[2e150, np.zeros(pol.n_params - 1)])
    _normalised(pol.with_params(np.full(pol.n_params, 1e150)).log_probs())  # at the bound the forward pass is finite
    _normalised(TinyLM(space, TinyLMConfig(init_scale=1e100)).log_probs())  # the largest allowed scale works
    with pytest.raises(ValueError, match=r"init_scale=1\.5e\+308 is out of range"):
        AutoregressivePolicy(space, init_scale=1e308 * 1.5)


# ---------------------------------------------------------------------------- item 8: divergence edges
def _mp_f(name, t):
    """f(t) at 50 digits (mpmath) for the rows whose f(1e308) was NaN."""
    t = mpmath.mpf(t)
    if name == "js":
        return (t * mpmath.log(t) - (1 + t) * mpmath.log((1 + t) / 2)) / 2
    b = mpmath.mpf(name[5:-1])
    m = b + (1 - b) * t
    return -b * mpmath.log(m) + (1 - b) * t * mpmath.log(t / m)


@pytest.mark.parametrize("name", ["js", "gjsd(0.3)", "gjsd(0.25)", "gjsd(1e-17)"])
@pytest.mark.parametrize("t", [1e308, 1e200, 1e20, 3.0, 0.5, 1e-300])
def test_f_at_extreme_ratios_matches_mpmath(name, t):
    with mpmath.workdps(50):
        want = float(_mp_f(name, t))
    got = float(divergences.get(name).f(t))
    assert got == pytest.approx(want, rel=1e-10, abs=1e-300)


def _sympy_f(name):
    t = sp.symbols("t", positive=True)
    half = sp.Rational(1, 2)
    rows = {"forward_kl": -sp.log(t), "reverse_kl": t * sp.log(t), "js": half * (t * sp.log(t) - (1 + t) * sp.log((1 + t) / 2)),
            "hellinger": (sp.sqrt(t) - 1) ** 2, "pearson": (t - 1) ** 2, "neyman": (t - 1) ** 2 / t}
    if name in rows:
        return t, rows[name]
    a = sp.Rational(name[6:-1]) if name.startswith("alpha") else None
    if a is not None:
        return t, (t**a - a * t - (1 - a)) / (a * (a - 1)) if a not in (0, 1) else (t * sp.log(t) if a == 1 else -sp.log(t))
    b = sp.Rational(name[5:-1])
    return t, -b * sp.log(b + (1 - b) * t) + (1 - b) * t * sp.log(t / (b + (1 - b) * t))


@pytest.mark.parametrize("name", ["forward_kl", "reverse_kl", "js", "hellinger", "pearson", "neyman", "alpha(1/2)",
                                  "alpha(1)", "alpha(2)", "alpha(3)", "alpha(-1)", "gjsd(1/4)"])
def test_f_double_prime_at_zero_is_the_limit(name):
    """f''(0+) = lim_{t→0+} f''(t) by sympy; tv (f'' = 0 away from 1) separately."""
    t, f = _sympy_f(name)
    want = sp.limit(sp.diff(f, t, 2), t, 0, "+")
    div = divergences.get(name.replace("1/2", "0.5").replace("1/4", "0.25"))
    got = float(div.f_double_prime(0.0))
    assert (got == math.inf) if want == sp.oo else got == pytest.approx(float(want), rel=1e-9, abs=0)
    assert float(divergences.get("tv").f_double_prime(0.0)) == 0.0


def test_gjsd_tiny_beta_value_matches_mpmath():
    """β = 1e-17, where 1 − β rounds to 1: the mixture M = βp + (1−β)π must keep β (was NaN)."""
    log_pi, log_p = np.array([0.0, -800.0]), np.array([-800.0, 0.0])
    with mpmath.workdps(60):
        b = mpmath.mpf("1e-17")
        pi = [mpmath.mpf(1), mpmath.exp(-800)]
        p = [mpmath.exp(-800), mpmath.mpf(1)]
        want = sum(b * pk * mpmath.log(pk / (b * pk + (1 - b) * qk)) + (1 - b) * qk * mpmath.log(qk / (b * pk + (1 - b) * qk))
                   for pk, qk in zip(p, pi))
    assert divergences.gjsd(1e-17).value(log_pi, log_p) == pytest.approx(float(want), rel=1e-9)


@pytest.mark.parametrize("name", ["forward_kl", "reverse_kl", "js", "hellinger", "pearson", "neyman", "alpha(1/2)",
                                  "alpha(2)", "alpha(-1)", "gjsd(1/4)", "gjsd(1e-17)", "tv"])
def test_weights_follow_the_zero_support_rules(name):
    """w = π f'(π/p): 0 where π = p = 0; π f'(∞) where p = 0 < π; p · lim_{t→0+} t f'(t) (sympy) where π = 0 < p."""
    div = divergences.get(name.replace("1/2", "0.5").replace("1/4", "0.25"))
    w = div.weights(np.array([-np.inf, 0.0, -np.inf]), np.array([-np.inf, -np.inf, 0.0]))
    assert not np.isnan(w).any()
    assert w[0] == 0.0 and w[1] == div.slope_at_infinity
    if name == "tv":
        want = 0.0  # t · ½ sign(t − 1) → 0
    else:
        t, f = _sympy_f(name)
        want = float(sp.limit(t * sp.diff(f, t), t, 0, "+").evalf())
    assert w[2] == pytest.approx(want, rel=1e-9, abs=0) if math.isfinite(want) else w[2] == want
    with pytest.raises(ValueError, match="log_p contains NaN"):
        div.weights([0.0, -1.0], [np.nan, 0.0])


def test_child_mass_refuses_non_finite_weights():
    with pytest.raises(ValueError, match=r"w\[1\] = nan is not finite"):
        SequenceSpace(["a", "b"], 2).child_mass([0.0, np.nan, 0.0, 0.0])


def test_kl_refuses_unnormalised_input():
    with pytest.raises(ValueError, match="log_q is not normalised"):
        metrics.kl(np.log([0.5, 0.5]), np.log([1.0, 1.0]))  # was −0.693 (a "negative KL")
    with pytest.raises(ValueError, match="log_p is not normalised"):
        metrics.kl(np.log([1.0, 1.0]), np.log([0.5, 0.5]))
    assert metrics.kl(np.log([0.5, 0.5]), np.log([0.25, 0.75])) == pytest.approx(
        0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-15)


# ---------------------------------------------------------------------------- items 7 and 9: the right error, the user's name
@pytest.mark.parametrize("call, match", [
    (lambda: targets.rlhf(LOG4, np.zeros(4), beta=10**400), r"beta=1000.*must be a finite real number"),
    (lambda: targets.pointwise(LOG4, np.array([1, 0, 1, 0], bool), epsilon=2**70), r"epsilon=1180591620717411303424 is out of range; allowed: \[0, 1\)"),
    (lambda: raters.Rater(np.zeros(4), threshold=10**400), r"threshold=.* must be a finite real number"),
    (lambda: Config.from_json(b'{"task": "\xff"}'), "not UTF-8"),
    (lambda: AutoregressivePolicy.from_log_probs(SequenceSpace(["a", "b"], 1), np.array([0.0, -np.inf])), "full support"),
    (lambda: SequenceSpace(["a", "b"], 2).index(np.array(2.0)), "text=array"),
    (lambda: raters.bayes_accuracy(_rater(4), "abc"), "source='abc' must be real numbers"),
    (lambda: raters.collect_thumbs(_rater(4), ["x"] * 4, 3, np.random.default_rng(0)), "source has dtype <U1; expected real numbers"),
    (lambda: raters.Rater(["1", "2"]), "utility has dtype <U1; expected real numbers"),
    (lambda: metrics.rlhf_objective(LOG4, np.zeros(3), LOG4, 1.0), "reward has shape"),
    (lambda: metrics.rlhf_objective(LOG4, np.zeros(4), LOG4[:3], 1.0), "log_a has shape"),
    (lambda: dpo.dpo_optimum(LOG4[:3], np.zeros(4), beta=1.0), "ref_log_probs is not normalised"),
    (lambda: dpo.dpo_optimum(LOG4, np.zeros(3), beta=1.0), "reward has shape"),
    (lambda: fdpo.fdpo_optimum(LOG4, np.zeros(4), beta=1.0, divergence="abc"), "divergence='abc' is unknown"),
    (lambda: metrics.evaluate(LOG4, targets.rlhf(LOG4, np.zeros(4), 1.0), ["abc"]), r"divergences\[\]='abc'"),
    (lambda: Config(divergence="abc"), "^divergence='abc' is unknown"),
], ids=["beta-10^400", "epsilon-2^70", "threshold-10^400", "json-utf8", "ar-zero", "index-0d", "bayes-text",
        "thumbs-text", "utility-numeric-text", "objective-reward", "objective-log_a", "dpo-ref", "dpo-reward",
        "fdpo-divergence", "evaluate-divergences", "config-divergence"])
def test_errors_are_value_errors_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_one_sequence_space_policy():
    """AutoregressivePolicy.from_log_probs on a space of one sequence: no logits, π = 1."""
    pol = AutoregressivePolicy.from_log_probs(SequenceSpace(["a"], 1), np.array([0.0]))
    assert pol.n_params == 0 and pol.log_probs().tolist() == [0.0]


# ---------------------------------------------------------------------------- the shared checks
def test_shared_checks_name_the_argument_and_the_allowed_range():
    assert check_real(10**20, "beta", 0.0, open_low=True) == 1e20
    for bad in (math.nan, math.inf, 10**400, True, "1", None):
        with pytest.raises(ValueError, match=r"^beta="):
            check_real(bad, "beta", 0.0, open_low=True)
    with pytest.raises(ValueError, match=r"allowed: \[0, 1\)"):
        check_real(1.0, "eps", 0.0, 1.0, open_high=True)
    assert check_real(None, "x", optional=True) is None and check_int(None, "n", optional=True) is None
    with pytest.raises(ValueError, match=r"n=2\.0 must be an integer ≥ 1"):
        check_int(2.0, "n")
    with pytest.raises(ValueError, match=r"allowed: \['a', 'b'\]"):
        check_choice("c", "kind", ("a", "b"))
    np.testing.assert_array_equal(check_vector([1, 2], "r", 2), [1.0, 2.0])
    with pytest.raises(ValueError, match=r"r contains NaN or inf at \[1\]"):
        check_vector([1, np.inf], "r")
    with pytest.raises(ValueError, match=r"log_a is not normalised: logsumexp\(log_a\)"):
        check_log_probs([0.0, 0.0], None, "log_a")


# ---------------------------------------------------------------------------- long-profile fuzz findings
# Each test replays one example the long fuzz profile (TOYFDIV_FUZZ=long) found on the previous main.
from toyfdiv import diversity, fdpg, rl  # noqa: E402
from toyfdiv._util import log_normalise  # noqa: E402
from toyfdiv.feedback import chipo  # noqa: E402
from toyfdiv.runs import UPDATE_METRIC_PREFIX  # noqa: E402


def test_log_normalise_keeps_tied_maxima_at_huge_magnitudes():
    s = np.array([-3e299, -3e299, -5e299])
    assert np.exp(s - logsumexp(s)).sum() == 2.0  # the textbook form loses the log 2 of the tie
    got = np.exp(log_normalise(s))
    np.testing.assert_array_equal(got, [0.5, 0.5, 0.0])
    rows = np.array([[-1e300, -1e300], [0.0, np.log(3.0)]])  # the tie survives per row too
    np.testing.assert_allclose(np.exp(log_normalise(rows, axis=1)), [[0.5, 0.5], [0.25, 0.75]], rtol=1e-15)


def test_bayes_accuracy_stays_a_probability_when_log_mu_is_huge():
    rater = raters.Rater(np.array([-1e308, -1.7e16, -9e15, -2.9e280, 1.0]), 1000.0, threshold=0.0)
    source = np.array([-1.3e300, -6.0e299, -1.1e300, 0.0, -3.0e299])  # pairs (3, 4), (4, 3) carry all the mass
    q = np.exp(raters.pair_log_probs(source))
    assert q.sum() == pytest.approx(1.0, abs=1e-15) and q[3, 4] == q[4, 3] == 0.5
    r = rater.reward  # the rater's reward for the one pair: accuracy σ(|Δr|)
    assert raters.bayes_accuracy(rater, source) == pytest.approx(1 / (1 + np.exp(-abs(r[3] - r[4]))), rel=1e-15)


def test_log_probabilities_above_zero_are_refused_before_logsumexp_overflows():
    with pytest.raises(ValueError, match=r"log_p has a log-probability 1e\+308 > 0"):
        metrics.kl(np.array([-1.0, 1e308, -6e-8, -1e308]), np.log(np.full(4, 0.25)))


def test_fdpo_js_optimum_where_rounding_puts_y_past_the_sup_of_f_prime():
    # y(x*) = (r − λ_lo)/β equals f'(1/π_ref(x*)) ≈ ½ log 2 up to the rounding of r/β ≈ 2e9
    ref = np.array([-5.541922496203568e-167, -382.8193690684689])
    r = np.array([631707.1082430643, 870144.8475755365])
    with pytest.raises(ValueError, match=r"beta=0\.0001.* is too small for this reward with js"):
        fdpo.fdpo_optimum(ref, r, 0.00010255432976732008, "js")  # clear, not "y is out of range"
    with pytest.raises(ValueError, match=r"ref_log_probs has min -3\.41445e\+299.*underflows"):
        fdpo.fdpo_optimum(np.array([0.0, -3.41445251e299]), r, 1e-3, "js")
    with pytest.raises(ValueError, match=r"log_a has min -3\.41445e\+299.*underflows"):
        diversity.regularised_target(np.array([0.0, -3.41445251e299]), r, 1e-3, "js")


def test_reward_spreads_that_overflow_r_over_beta_are_refused_naming_both():
    for call in (lambda r: chipo.chipo_optimum(np.log([0.2, 0.8]), r, 0.2),
                 lambda r: diversity.regularised_target(np.log([0.2, 0.8]), r, 0.2, "reverse_kl")):
        with pytest.raises(ValueError, match=r"reward spans .* and beta=0\.2: r/β overflows"):
            call(np.array([8.4e5, -1e308]))
        with pytest.raises(ValueError, match=r"reward spans inf"):  # the spread itself overflows
            call(np.array([1e308, -1e308]))


def test_group_advantages_refuse_rewards_whose_variance_overflows():
    with pytest.raises(ValueError, match=r"rewards has \|R\| up to 1e\+308; allowed: \|R\| ≤ 1e\+150"):
        rl.group_advantages([[1e308, -1e308, 0.0]], "grpo")
    a = rl.group_advantages([[1e150, -1e150, 0.0]], "grpo", eps=0.0)  # at the bound: exact (std = 1e150)
    np.testing.assert_allclose(a, [[1.0, -1.0, 0.0]], rtol=1e-15)


def test_sample_counts_beyond_float_precision_are_refused():
    lp = np.log([0.5, 0.5])
    for fn in (lambda k: diversity.expected_distinct_correct(lp, [True, False], k),
               lambda k: metrics.expected_distinct(lp, k)):
        with pytest.raises(ValueError, match=r"k=10000.*out of range; allowed: in 1 … 9007199254740992"):
            fn(10**400)
        assert fn(2**53) == pytest.approx(1.0 if fn(1) < 1 else 2.0)


def test_sequence_space_with_a_length_beyond_float_is_refused_by_size():
    with pytest.raises(ValueError, match=r"N ≈ 2\^1000.* sequences \(V = 2, T = 1000"):
        SequenceSpace(["x", "y"], 10**400)


def test_weights_stay_infinite_where_p_underflows_but_pi_is_zero():
    # Neyman: w = π − p²/π → −inf at π = 0 < p, even when p = e^{−768} underflows to 0
    w = divergences.get("neyman").weights(np.array([0.0, -np.inf]), np.array([-768.3, 0.0]))
    assert w[1] == -np.inf and not np.isnan(w).any()
    w = divergences.get("forward_kl").weights(np.array([0.0, -np.inf]), np.array([-768.3, 0.0]))
    assert w[1] == pytest.approx(-1.0, rel=1e-15)  # a finite limit keeps the factor p: −p


def test_sampled_estimate_diagnostics_do_not_overflow_at_extreme_pseudo_rewards():
    space = SequenceSpace(["x"], 3, eos="$")
    pol = TabularPolicy(space, seed=0).with_params(np.array([0.82, 0.0, 0.0]))
    tgt = targets.rlhf(np.array([0.0, -1.59e300, -1.28e300]), np.array([0.0, 4.7, 1.7]), 0.5)
    est = fdpg.sampled_estimate(pol, tgt, "reverse_kl", n=28, rng=np.random.default_rng(1))
    # a draw of x ≠ 0 has R = log(p/π) − 1 ≈ −1.6e300: the std is finite and of that size
    assert np.isfinite(est.diagnostics["reward_std"]) and est.diagnostics["reward_std"] > 1e299


def test_a_resigned_run_with_a_recorded_metric_one_short_is_refused(tmp_path):
    import io
    import json

    from toyfdiv import runs
    from toyfdiv.config import run

    config = Config(task="abc", length=2, divergence="js", steps=3, policy="tabular", estimator="sampled")
    hist = run(config)
    short = {k for k, v in hist.metrics.items() if len(v) == len(hist.step) - 1}
    assert short and all(k.startswith(UPDATE_METRIC_PREFIX) for k in short)  # only the update's diagnostics
    dest = runs.save_run(tmp_path / "r", config, hist)
    assert runs.load_run(dest).history.metrics.keys() == hist.metrics.keys()
    record = json.loads((dest / "run.json").read_text())
    with np.load(dest / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    i = record["metrics"].index("entropy")  # a recorded metric: R entries
    arrays[f"m{i}"] = arrays[f"m{i}"][:-1]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (dest / "arrays.npz").write_bytes(buf.getvalue())
    record["sha256"] = runs._checksum(record, buf.getvalue())  # a forgery with a valid checksum
    (dest / "run.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"metric 'entropy' has dtype float64 and shape \(3,\); expected .*\(4,\)"):
        runs.load_run(dest)


def test_f_double_prime_at_infinity_is_its_limit():
    # f''(t) = c(log t)/t was inf/inf = NaN at t = inf; the limit is f''(∞) = lim c(u) e^{−u}
    t = np.array([np.inf, 1e300])
    np.testing.assert_allclose(divergences.get("pearson").f_double_prime(t), [2.0, 2.0], rtol=1e-13)  # (t − 1)²
    np.testing.assert_allclose(divergences.get("alpha(2)").f_double_prime(t), [1.0, 1.0], rtol=1e-13)  # t^(α−2)
    for name in ("forward_kl", "reverse_kl", "js", "hellinger", "neyman", "gjsd(0.3)"):
        assert divergences.get(name).f_double_prime(np.inf) == 0.0


def test_kto_fixed_point_terminates_on_references_near_minus_1e300():
    from toyfdiv.feedback import kto

    p_up = np.array([0.64, 0.67, 6.1e-5])
    ref = np.array([-4.58e288, -5.05e299, 0.0])  # the κ bracket used to grow by 20 per step: a hang
    for beta in (1.0, 0.5, 1e-3):
        fp = kto.kto_fixed_point(ref, p_up, beta)
        assert np.exp(fp.log_probs).sum() == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"beta=5e-324 is too small: β·\(A − B\) underflows"):
        kto.kto_fixed_point(np.log([0.2, 0.3, 0.5]), p_up, 5e-324)


def test_batch_normalised_exact_mode_refuses_work_it_cannot_finish():
    from toyfdiv.rl import batchnorm

    with pytest.raises(ValueError, match=r"G=499 on C = 2 prompts .* use mode='mc'"):
        batchnorm.batch_weights(np.array([0.1, 0.2]), 499)  # ~6e10 convolution steps: was a hang
    w = batchnorm.batch_weights(np.array([0.1, 0.2]), 8)
    assert np.all(np.isfinite(w)) and np.all(w > 0)


def test_pair_kernel_refuses_what_it_cannot_compute():
    from toyfdiv.feedback import pairs

    h = np.array([0.17, 0.0, -1e300])
    with pytest.raises(ValueError, match=r"winners has an index -1 outside 0 … 2"):
        pairs.pair_loss(pairs.Logistic(1.0), h, [0, -1], [1, 2])
    with pytest.raises(ValueError, match=r"margins up to \|Δ\| = 1e\+300 whose loss overflows"):
        pairs.pair_loss(pairs.Squared(0.0), h, [0], [2])
    with pytest.raises(ValueError, match=r"margin_loss=Squared.* gives shape \(4,\) on 1 pairs"):
        pairs.pair_loss(pairs.Squared(np.zeros(4)), h, [0], [1])
    loss, grad = pairs.pair_loss(pairs.Logistic(1.0), h, [0], [1])  # a plain pair: −log σ(0.17)
    assert loss == pytest.approx(np.log1p(np.exp(-0.17)), rel=1e-15) and np.isfinite(grad).all()


def test_distinct_counts_stay_finite_for_log_probs_within_tolerance_above_zero():
    lp = np.array([-41.8675129, 1e-12])  # accepted as normalised (|logsumexp| ≤ 1e-8): π(1) = 1 + 1e-12
    assert diversity.expected_distinct_correct(lp, [False, True], 700) == 1.0
    assert metrics.expected_distinct(lp, 700) == pytest.approx(1.0 + 700 * np.exp(-41.8675129), rel=1e-12)


def test_last_long_profile_findings():
    from toyfdiv.rl import dapo

    with pytest.raises(ValueError, match=r"p has a probability 2\.23e-313 .* 1/P overflows"):
        dapo.dynamic_sampling_weight(np.array([2.225e-313, 0.63]), 3)
    w = dapo.dynamic_sampling_weight(np.array([1e-300, 0.5]), 3)  # near the edge: 1/(3p), and 1/(1 − 2/8)
    np.testing.assert_allclose(w, [1 / 3e-300, 4 / 3], rtol=1e-12)
    rater = raters.Rater(np.array([24.1, 700.0]), 700.0, threshold=0.0)
    with pytest.raises(ValueError, match=r"source puts \(almost\) all its mass on one sequence"):
        raters.collect_preferences(rater, np.array([-1e308, 0.0]), 10, np.random.default_rng(0))  # was a warning


def test_sampled_estimate_refuses_infinite_pseudo_rewards_by_name():
    # (b) of the last stop: a Pearson pseudo-reward f'(π/p) at p ≈ e^{−1e300} overflowed to "w contains NaN or inf"
    space = SequenceSpace(["a", "b"], 2)
    pol = TabularPolicy(space, seed=0).with_params(np.zeros(4))
    tgt = targets.rlhf(np.array([-9.7e299, -9.7e299, 0.0, -9.7e299]), np.array([0.0, -0.6, 0.0, 1.0]), 0.5)
    for baseline in ("none", "mean"):
        with pytest.raises(ValueError, match=r"policy and target give pearson pseudo-rewards that overflow"):
            fdpg.sampled_gradient(pol, tgt, "pearson", n=28, rng=np.random.default_rng(1), baseline=baseline)
    g = fdpg.sampled_gradient(pol, tgt, "js", n=28, rng=np.random.default_rng(1))  # JS's f' is bounded: finite
    assert np.isfinite(g).all()
    with pytest.raises(ValueError, match=r"policy and log_ref give k2 estimates that overflow"):
        rl.expected_kl_gradient(AutoregressivePolicy(space, seed=0), np.array([0.0, -20.3, -1e308, -1e308]), "k2",
                                "reward")
    p = rl.reinforce_pp_success(np.array([0.3, 0.05]), 1e-300, 3, iterations=2)  # w/β = inf: σ(inf) = 1, no NaN
    np.testing.assert_array_equal(p[1:], 1.0)
