"""Tabular and autoregressive policies: normalisation, exact gradients, sampling, immutability."""

import numpy as np
import pytest
from scipy import stats

from toyfdiv import AutoregressivePolicy, SequenceSpace, TabularPolicy
from conftest import fd_gradient

POLICIES = [TabularPolicy, AutoregressivePolicy]


def naive_ar_log_probs(pol):
    """Π_t softmax(θ_{x<t})[x_t], walking each sequence token by token (slow oracle)."""
    space = pol.space
    V = space.n_vocab
    logits = pol.logits()
    out = np.empty(space.size)
    for i, row in enumerate(space.tokens):
        total, node = 0.0, 0
        for t, v in enumerate(row):
            if v < 0:
                break
            z = logits[t]
            if z is not None:
                lz = z[node] - np.log(np.exp(z[node]).sum())
                total += lz[v if v < V else -1]
            node = node * V + v if v < V else node
        out[i] = total
    return out


@pytest.mark.parametrize("cls", POLICIES, ids=lambda c: c.__name__)
def test_log_probs_normalised_and_immutable(cls, small_space):
    pol = cls(small_space, seed=3, init_scale=1.0)
    lp = pol.log_probs()
    assert lp.shape == (small_space.size,)
    assert abs(np.exp(lp).sum() - 1) < 1e-12
    theta = pol.params
    theta[:] = 0.0  # a copy: the policy is unchanged
    np.testing.assert_array_equal(pol.log_probs(), lp)
    with pytest.raises(ValueError):
        pol.log_probs()[0] = 1.0
    other = pol.with_params(np.zeros(pol.n_params))
    assert other is not pol and np.allclose(pol.log_probs(), lp)


def test_autoregressive_equals_product_of_conditionals(small_space):
    pol = AutoregressivePolicy(small_space, seed=1, init_scale=1.0)
    np.testing.assert_allclose(pol.log_probs(), naive_ar_log_probs(pol), atol=1e-13)


@pytest.mark.parametrize("cls", POLICIES, ids=lambda c: c.__name__)
def test_from_log_probs_round_trip(cls, small_space):
    rng = np.random.default_rng(2)
    z = rng.standard_normal(small_space.size) * 2
    log_pi = z - np.log(np.exp(z).sum())
    pol = cls.from_log_probs(small_space, log_pi)
    np.testing.assert_allclose(pol.log_probs(), log_pi, atol=1e-13)


@pytest.mark.parametrize("cls", POLICIES, ids=lambda c: c.__name__)
def test_weighted_gradient_matches_finite_differences(cls, small_space):
    rng = np.random.default_rng(4)
    pol = cls(small_space, seed=5, init_scale=0.7)
    w = rng.standard_normal(small_space.size)
    g = pol.grad_log_prob_weighted(w)
    fd = fd_gradient(lambda th: w @ pol.with_params(th).log_probs(), pol.params, h=1e-3)
    np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-9)
    # on samples: Σ_i w_i ∇ log π(x_i) agrees with the same weights binned over the space
    idx = pol.sample(50, rng)
    wi = rng.standard_normal(50)
    binned = np.bincount(idx, weights=wi, minlength=small_space.size)
    np.testing.assert_allclose(pol.grad_log_prob_at(idx, wi), pol.grad_log_prob_weighted(binned), atol=1e-12)


@pytest.mark.parametrize("cls", POLICIES, ids=lambda c: c.__name__)
def test_sample_frequencies_match_probabilities(cls):
    space = SequenceSpace(["a", "b"], 3, "</s>")
    pol = cls(space, seed=0, init_scale=1.0)
    n = 200_000
    idx = pol.sample(n, np.random.default_rng(123))
    observed = np.bincount(idx, minlength=space.size)
    expected = n * pol.probs()
    chi2, pvalue = stats.chisquare(observed, expected)
    assert pvalue > 1e-3, (chi2, pvalue)
    # reproducible from the seed
    np.testing.assert_array_equal(idx[:100], pol.sample(n, np.random.default_rng(123))[:100])


@pytest.mark.parametrize("cls", POLICIES, ids=lambda c: c.__name__)
def test_too_many_samples_are_refused_before_allocating(cls):
    space = SequenceSpace(["a", "b"], 3, "</s>", max_bytes=2**20)
    pol = cls(space)
    assert len(pol.sample(40_000, np.random.default_rng(0))) == 40_000  # 24 bytes each: under 1 MiB
    with pytest.raises(ValueError, match=r"n=50,000 samples need .* over the space's limit"):
        pol.sample(50_000, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"n=1,000,000,000,000 samples need"):  # the default limit
        cls(SequenceSpace(["a", "b"], 3, "</s>")).sample(10**12, np.random.default_rng(0))


@pytest.mark.parametrize("cls", POLICIES, ids=lambda c: c.__name__)
def test_bad_input(cls):
    space = SequenceSpace(["a", "b"], 2)
    pol = cls(space)
    with pytest.raises(ValueError, match=r"params has shape \(3,\)"):
        pol.with_params(np.zeros(3))
    bad = pol.params
    bad[1] = np.nan
    with pytest.raises(ValueError, match=r"params\[1\] = nan is not finite"):
        pol.with_params(bad)
    with pytest.raises(ValueError, match="n=0"):
        pol.sample(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="numpy Generator"):
        pol.sample(3, 42)
    with pytest.raises(ValueError, match=r"w has shape \(3,\)"):
        pol.grad_log_prob_weighted(np.ones(3))
    with pytest.raises(ValueError, match="seed=-1"):
        cls(space, seed=-1)
    with pytest.raises(ValueError, match="zero-probability"):
        cls.from_log_probs(space, np.array([np.log(0.5), np.log(0.5), -np.inf, -np.inf]))
    with pytest.raises(ValueError, match="not normalised"):
        cls.from_log_probs(space, np.log([0.5, 0.5, 0.5, 0.5]))


_SP = SequenceSpace(["a", "b"], 3)


@pytest.mark.parametrize("call, match", [
    (lambda: TabularPolicy(None), r"space=None"),
    (lambda: AutoregressivePolicy("abc"), r"space='abc'"),
    (lambda: TabularPolicy.from_log_probs(None, np.zeros(1)), r"space=None"),
    (lambda: AutoregressivePolicy(_SP).with_params(None), r"theta=None"),  # was a fresh random policy
    (lambda: TabularPolicy(_SP).with_params(None), r"theta=None"),
    (lambda: TabularPolicy(_SP, params="abc"), r"params='abc'"),
    (lambda: AutoregressivePolicy(_SP).grad_log_prob_weighted("abcdefgh"), r"w='abcdefgh'"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_bad_input_audit(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_loglinear_offset_needs_a_finite_entry():
    from toyfdiv.policies import LogLinearPolicy

    with pytest.raises(ValueError, match="offset must lie in"):  # was NaN log-probabilities
        LogLinearPolicy(_SP, np.ones((8, 1)), offset=np.full(8, -np.inf))
    with pytest.raises(ValueError, match="space=None"):
        LogLinearPolicy(None, np.ones((8, 1)))
