"""TinyLM: exact log-probabilities over the tree, manual backprop, sequence paths, sampling, pretraining."""

import numpy as np
import pytest
from scipy import stats

from toyfdiv import SequenceSpace, tasks
from toyfdiv.policies import TinyLM, TinyLMConfig
from toyfdiv.pretraining import pretrain_tinylm
from toyfdiv.policies.tinylm import index_of, tokens_of  # deprecated aliases, checked below
from conftest import fd_gradient

SMALL = TinyLMConfig(n_embd=3, n_hidden=4, init_scale=1.5)


def naive_log_probs(pol):
    """Π_t softmax(W_o h_t + b_o)[x_t], a plain GRU walked token by token per sequence (slow oracle)."""
    space, cfg = pol.space, pol.config
    V, D, H = space.n_vocab, cfg.n_embd, cfg.n_hidden
    K = V + (space.eos is not None)
    theta, blocks, start = pol.params, {}, 0
    for name, shape in [("E", (V, D)), ("Wx", (D, 3 * H)), ("bx", (3 * H,)), ("Wh", (H, 3 * H)),
                        ("bhn", (H,)), ("h0", (H,)), ("Wo", (H, K)), ("bo", (K,))]:
        size = int(np.prod(shape))
        blocks[name] = theta[start : start + size].reshape(shape)
        start += size
    assert start == theta.size
    E, Wx, bx, Wh, bhn, h0, Wo, bo = (blocks[k] for k in ("E", "Wx", "bx", "Wh", "bhn", "h0", "Wo", "bo"))
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    out = np.empty(space.size)
    for i, row in enumerate(space.tokens):
        h, total = h0.copy(), 0.0
        for t, v in enumerate(row):
            if v < 0:
                break
            if space.levels[t].choices > 1:
                z = h @ Wo + bo
                total += z[v] - np.log(np.exp(z).sum())
            if v == V:
                break
            gx, gh = E[v] @ Wx + bx, h @ Wh
            r = sig(gx[:H] + gh[:H])
            u = sig(gx[H : 2 * H] + gh[H : 2 * H])
            n = np.tanh(gx[2 * H :] + r * (gh[2 * H :] + bhn))
            h = (1 - u) * n + u * h
        out[i] = total
    return out


def test_log_probs_normalised_and_product_of_conditionals(small_space):
    pol = TinyLM(small_space, SMALL, seed=1)
    lp = pol.log_probs()
    assert lp.shape == (small_space.size,)
    assert abs(np.exp(lp).sum() - 1) < 1e-12
    np.testing.assert_allclose(lp, naive_log_probs(pol), atol=1e-12)
    # the per-depth conditionals are normalised, with EOS only where the space allows it
    for lv, lc in zip(small_space.levels, pol.log_conditionals()):
        assert lc.shape == (lv.nodes, lv.choices)
        np.testing.assert_allclose(np.exp(lc).sum(axis=1), 1.0, atol=1e-12)


def test_weighted_gradient_matches_finite_differences(small_space):
    rng = np.random.default_rng(4)
    pol = TinyLM(small_space, SMALL, seed=5)
    w = rng.standard_normal(small_space.size)
    g = pol.grad_log_prob_weighted(w)
    fd = fd_gradient(lambda th: w @ pol.with_params(th).log_probs(), pol.params, h=1e-3)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_sequence_paths_match_the_tree(small_space):
    rng = np.random.default_rng(6)
    pol = TinyLM(small_space, SMALL, seed=7)
    idx = rng.integers(0, small_space.size, size=60)
    wi = rng.standard_normal(60)
    np.testing.assert_allclose(pol.log_prob_at(idx), pol.log_probs()[idx], atol=1e-12)
    binned = np.bincount(idx, weights=wi, minlength=small_space.size)
    np.testing.assert_allclose(pol.grad_log_prob_at(idx, wi), pol.grad_log_prob_weighted(binned), atol=1e-11)
    # index ↔ tokens arithmetic agrees with the enumerated space
    all_idx = np.arange(small_space.size)
    np.testing.assert_array_equal(small_space.tokens_of(all_idx), small_space.tokens)
    np.testing.assert_array_equal(small_space.index_of(small_space.tokens), all_idx)
    with pytest.warns(DeprecationWarning, match="space.tokens_of"):
        np.testing.assert_array_equal(tokens_of(small_space, all_idx), small_space.tokens)
    with pytest.warns(DeprecationWarning, match="space.index_of"):
        np.testing.assert_array_equal(index_of(small_space, small_space.tokens), all_idx)


@pytest.mark.parametrize("kw", [dict(vocab=["a", "b", "c"], length=3), dict(vocab=["a", "b"], length=3, eos="</s>"),
                                dict(vocab=["a", "b"], length=2, eos="</s>", unterminated=True)],
                         ids=["fixed", "eos", "eos-unterminated"])
def test_sample_frequencies_match_probabilities(kw):
    space = SequenceSpace(**kw)
    pol = TinyLM(space, SMALL, seed=0)
    n = 100_000
    idx = pol.sample(n, np.random.default_rng(123))
    assert idx.dtype.kind == "i" and idx.min() >= 0 and idx.max() < space.size
    chi2, pvalue = stats.chisquare(np.bincount(idx, minlength=space.size), n * pol.probs())
    assert pvalue > 1e-3, (chi2, pvalue)
    np.testing.assert_array_equal(idx[:50], pol.sample(n, np.random.default_rng(123))[:50])


def test_default_config_on_the_default_task():
    task = tasks.default()
    pol = TinyLM(task.space)
    assert pol.config == TinyLMConfig()
    # E (5, 4), W_x (4, 24), b_x, W_h (8, 24), b_hn, h_0, W_o (8, 6), b_o: fewer than the 936 free logits
    assert pol.n_params == TinyLM.n_params_for(task.space) == 402 < task.space.n_logits
    assert TinyLM.n_params_for(task.space, SMALL) == TinyLM(task.space, SMALL).n_params
    other = pol.with_params(np.zeros(pol.n_params))
    assert other.config == pol.config and np.allclose(np.exp(other.log_probs()).sum(), 1)
    assert TinyLM(task.space, seed=3).config.seed == 3


@pytest.mark.parametrize("method,tol", [("exact", 1e-3), ("sampled", 0.05)], ids=["exact", "sampled"])
def test_pretraining_reaches_the_ngram_base(method, tol):
    """Maximum likelihood: KL(a ‖ πθ) = H(a, πθ) − H(a) falls from ~1 nat to within ``tol``."""
    task = tasks.default()
    a = np.exp(task.log_a)
    cross_entropy = lambda pol: -(a @ pol.log_probs())  # noqa: E731
    entropy = -(a @ task.log_a)
    start = TinyLM(task.space)
    fit = pretrain_tinylm(task.space, task.corpus, method=method, steps=400, lr=0.03, n=64, seed=0)
    assert isinstance(fit, TinyLM) and fit.config == start.config
    assert cross_entropy(start) - entropy > 0.5
    assert 0 <= cross_entropy(fit) - entropy < tol


def test_pretraining_on_the_empirical_corpus():
    space = SequenceSpace(["a", "b", "c"], 4)
    corpus = tasks.get("abc").corpus
    fit = pretrain_tinylm(space, corpus, TinyLMConfig(n_embd=4, n_hidden=12), source="empirical", steps=300, lr=0.05)
    p = np.bincount([space.index(line) for line in corpus], minlength=space.size) / len(corpus)
    assert np.exp(fit.log_probs())[p > 0].sum() > 0.9  # the corpus lines hold most of the mass


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(n_embd=0), r"n_embd=0"), (dict(n_hidden=-2), r"n_hidden=-2"), (dict(n_hidden=2.5), r"n_hidden=2.5"),
     (dict(init_scale=0.0), r"init_scale=0.0"), (dict(init_scale=-1.0), r"init_scale=-1.0"),
     (dict(init_scale=float("nan")), r"init_scale=nan"), (dict(seed=-1), r"seed=-1")],
    ids=["embd-zero", "hidden-negative", "hidden-float", "scale-zero", "scale-negative", "scale-nan", "seed-negative"],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TinyLMConfig(**kwargs)


def test_too_many_samples_are_refused_before_allocating():
    pol = TinyLM(SequenceSpace(["a", "b"], 3, "</s>"))
    with pytest.raises(ValueError, match=r"n=1,000,000,000,000 samples need .* over the space's limit"):
        pol.sample(10**12, np.random.default_rng(0))


def test_bad_input():
    space = SequenceSpace(["a", "b"], 2)
    pol = TinyLM(space, SMALL)
    with pytest.raises(ValueError, match="TinyLMConfig"):
        TinyLM(space, config={"n_hidden": 4})
    with pytest.raises(ValueError, match=r"seed=-1"):
        TinyLM(space, seed=-1)
    with pytest.raises(ValueError, match=r"params has shape \(3,\)"):
        pol.with_params(np.zeros(3))
    with pytest.raises(ValueError, match=r"w has shape \(2,\)"):
        pol.grad_log_prob_at(np.array([0, 1, 2]), np.ones(2))
    with pytest.raises(ValueError, match="outside"):
        pol.log_prob_at(np.array([4]))
    with pytest.raises(ValueError, match="n=0"):
        pol.sample(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="method='adam'"):
        pretrain_tinylm(space, ["a b"], method="adam")
    with pytest.raises(ValueError, match="source='corpus'"):
        pretrain_tinylm(space, ["a b"], source="corpus")


def test_bad_input_audit():
    space = SequenceSpace(["a", "b"], 3)
    with pytest.raises(ValueError, match=r"n_hidden=100000.*max_bytes"):  # was a 224 GiB allocation
        TinyLM(space, TinyLMConfig(n_hidden=10**5))
    with pytest.raises(ValueError, match="theta=None"):
        TinyLM(space).with_params(None)
    with pytest.raises(ValueError, match="w contains NaN"):
        TinyLM(space).grad_log_prob_at(np.array([1]), np.array([np.nan]))
    with pytest.raises(ValueError, match="corpus=None"):
        pretrain_tinylm(space, None, source="empirical")


def test_pretrain_tinylm_target_is_a_deprecated_name_for_source():
    space = SequenceSpace(["a", "b"], 2)
    with pytest.warns(DeprecationWarning, match="source"):
        old = pretrain_tinylm(space, ["a b", "b a"], target="empirical", steps=3)
    new = pretrain_tinylm(space, ["a b", "b a"], source="empirical", steps=3)
    np.testing.assert_array_equal(old.params, new.params)
