"""NgramPolicy: a softmax per context of the last k − 1 tokens — exact, and a visible capacity limit."""

import numpy as np
import pytest
from scipy.special import rel_entr

from toyfdiv import AutoregressivePolicy, SequenceSpace, tasks
from toyfdiv.policies import NgramPolicy
from conftest import fd_gradient

ORDERS = [1, 2, 3]


def naive_ngram_log_probs(pol):
    """Π_t softmax(θ[ctx])[x_t], ctx = last k − 1 tokens padded with a start symbol (slow oracle)."""
    space, k = pol.space, pol.order
    V = space.n_vocab
    start = V  # the start symbol, outside the vocabulary
    rows = {}  # context tuple → row, built in the documented order: j real tokens, lexicographic
    for j in range(k):
        for prefix in np.ndindex(*(V,) * j):
            ctx = (start,) * (k - 1 - j) + prefix
            if any(min(lv.depth, k - 1) == j and lv.choices > 1 for lv in space.levels):
                rows[ctx] = len(rows)
    table = pol.table()
    assert table.shape[0] == len(rows)
    out = np.empty(space.size)
    for i, seq in enumerate(space.tokens):
        padded, total = [start] * (k - 1), 0.0
        for t, v in enumerate(seq):
            if v < 0:
                break
            if space.levels[t].choices > 1:
                z = table[rows[tuple(padded[len(padded) - (k - 1) :]) if k > 1 else ()]]
                total += z[v] - np.log(np.exp(z).sum())
            padded.append(v)
        out[i] = total
    return out


@pytest.mark.parametrize("order", ORDERS, ids=lambda k: f"order{k}")
def test_log_probs_normalised_and_product_of_context_softmaxes(order, small_space):
    pol = NgramPolicy(small_space, order=order, seed=3, init_scale=1.0)
    lp = pol.log_probs()
    assert abs(np.exp(lp).sum() - 1) < 1e-12
    np.testing.assert_allclose(lp, naive_ngram_log_probs(pol), atol=1e-12)


@pytest.mark.parametrize("order", ORDERS, ids=lambda k: f"order{k}")
def test_weighted_gradient_matches_finite_differences(order, small_space):
    rng = np.random.default_rng(order)
    pol = NgramPolicy(small_space, order=order, seed=5, init_scale=0.7)
    w = rng.standard_normal(small_space.size)
    g = pol.grad_log_prob_weighted(w)
    fd = fd_gradient(lambda th: w @ pol.with_params(th).log_probs(), pol.params, h=1e-3)
    np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("extra", [0, 1], ids=["order=T", "order=T+1"])
def test_long_order_is_the_autoregressive_family(extra, small_space):
    """With k ≥ T every prefix is its own context: same θ layout, same log-probs, same gradients."""
    order = small_space.length + extra
    assert NgramPolicy.n_params_for(small_space, order=order) == small_space.n_logits
    ar = AutoregressivePolicy(small_space, seed=2, init_scale=1.0)
    ng = NgramPolicy(small_space, order=order, params=ar.params)
    np.testing.assert_allclose(ng.log_probs(), ar.log_probs(), atol=1e-13)
    w = np.random.default_rng(0).standard_normal(small_space.size)
    np.testing.assert_allclose(ng.grad_log_prob_weighted(w), ar.grad_log_prob_weighted(w), atol=1e-12)
    # and any full-support distribution is represented exactly
    z = np.random.default_rng(1).standard_normal(small_space.size)
    log_p = z - np.log(np.exp(z).sum())
    np.testing.assert_allclose(NgramPolicy.from_log_probs(small_space, log_p, order).log_probs(), log_p, atol=1e-12)


def test_bigram_cannot_represent_most_targets():
    """min_θ KL(p ‖ πθ) > 0 for a bigram on abc⁴, attained in closed form; the autoregressive policy reaches 0."""
    space = SequenceSpace(["a", "b", "c"], 4)
    z = 2 * np.random.default_rng(0).standard_normal(space.size)
    log_p = z - np.log(np.exp(z).sum())
    p = np.exp(log_p)
    kl = lambda pol: rel_entr(p, pol.probs()).sum()  # noqa: E731 KL(p ‖ π)
    best = NgramPolicy.from_log_probs(space, log_p, order=2)
    # optimality: ∇θ KL(p ‖ πθ) = −Σ p ∇ log πθ vanishes at the closed form ...
    np.testing.assert_allclose(best.grad_log_prob_weighted(p), 0.0, atol=1e-12)
    # ... and no perturbation improves on it (the objective is a sum of per-context cross-entropies)
    rng = np.random.default_rng(1)
    for _ in range(20):
        assert kl(best.with_params(best.params + 0.1 * rng.standard_normal(best.n_params))) > kl(best)
    assert kl(best) > 0.3
    assert kl(AutoregressivePolicy.from_log_probs(space, log_p)) < 1e-12


def test_bigram_base_model_is_in_the_bigram_family():
    """The task's smoothed bigram base a is a bigram policy: its KL projection recovers it exactly."""
    task = tasks.default()
    fit = NgramPolicy.from_log_probs(task.space, task.log_a, order=2)
    np.testing.assert_allclose(fit.log_probs(), task.log_a, atol=1e-12)
    assert fit.n_params == (1 + 5) * 6  # start + 5 one-token contexts, 5 tokens + EOS


def test_bad_input():
    space = SequenceSpace(["a", "b"], 3)
    with pytest.raises(ValueError, match="order=0"):
        NgramPolicy(space, order=0)
    with pytest.raises(ValueError, match="seed=-1"):
        NgramPolicy(space, seed=-1)
    with pytest.raises(ValueError, match="init_scale=-1"):
        NgramPolicy(space, init_scale=-1)
    with pytest.raises(ValueError, match=r"params has shape \(5,\)"):
        NgramPolicy(space, order=2, params=np.zeros(5))
    point_mass = np.full(space.size, -np.inf)
    point_mass[0] = 0.0
    with pytest.raises(ValueError, match="zero mass"):
        NgramPolicy.from_log_probs(space, point_mass, order=2)
