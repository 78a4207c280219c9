"""The optimised exact paths give what the straightforward ones give (1e-12 relative).

The library sums over the prefix tree, one softmax over all prefixes at once, in
cache-sized blocks, without forming the normalised tables; here every result is held
against a plain implementation written from the definition: log πθ(x) gathered over the
(N, T) tokens of every sequence, and the gradient scattered back the same way.  No timing
here (that lives in ``benchmarks/``); the size guard is checked to refuse before allocating.
"""

import tracemalloc

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from toyfdiv import SequenceSpace, divergences, fdpg, targets
from toyfdiv._util import BLOCK, log_softmax_rows, softmax_rows
from toyfdiv.policies import AutoregressivePolicy, TinyLM

RTOL = 1e-12

SPACES = {
    "fixed": dict(vocab=["a", "b", "c"], length=4),
    "eos": dict(vocab=["a", "b", "c"], length=4, eos="</s>"),
    "unterminated": dict(vocab=["a", "b"], length=4, eos="</s>", unterminated=True),
    "single-token": dict(vocab=["x"], length=3),
    # more rows than one block (BLOCK entries): every blocked loop runs several times
    "blocks-fixed": dict(vocab=["a", "b", "c", "d"], length=9),
    "blocks-eos": dict(vocab=["a", "b", "c", "d"], length=9, eos="</s>"),
}


@pytest.fixture(params=list(SPACES), ids=list(SPACES))
def space(request):
    return SequenceSpace(**SPACES[request.param])


def close(got, want, rtol=RTOL):
    """max |got − want| ≤ rtol · max |want| (relative to the array's scale)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    if want.size == 0:
        return
    scale = max(float(np.max(np.abs(want))), 1e-300)
    err = float(np.max(np.abs(got - want))) / scale
    assert err <= rtol, f"relative error {err:.3g} > {rtol:g}"


# ---------------------------------------------------------------------------- naive oracles
def naive_prefix_ids(space):
    """(N, T) id of the prefix x_<t at each position (−1 once the sequence has ended)."""
    V, toks = space.n_vocab, space.tokens.astype(np.int64)
    ids = np.full(toks.shape, -1, dtype=np.int64)
    prefix = np.zeros(space.size, dtype=np.int64)
    alive = np.ones(space.size, dtype=bool)
    for t in range(space.length):
        alive &= toks[:, t] >= 0
        ids[:, t] = np.where(alive, prefix, -1)
        prefix = prefix * V + np.clip(toks[:, t], 0, V - 1)
        alive &= toks[:, t] < V
    return ids


def naive_ar(policy):
    """log πθ(x) and Σ_x w ∇θ log πθ(x) by gathers / scatters over the (N, T) tokens."""
    space = policy.space
    toks, ids = space.tokens.astype(np.int64), naive_prefix_ids(space)
    tables = [None if z is None else log_softmax(z, axis=1) for z in policy.logits()]

    def log_probs():
        lp = np.zeros(space.size)
        for t, table in enumerate(tables):
            on = ids[:, t] >= 0
            if table is not None:
                lp[on] += table[ids[on, t], toks[on, t] if table.shape[1] > 1 else 0]
        return lp

    def grad(w):
        blocks = []
        for t, table in enumerate(tables):
            if table is None:
                continue
            on = ids[:, t] >= 0
            g = np.zeros(table.shape)
            np.add.at(g, (ids[on, t], toks[on, t]), w[on])  # + w(x) at the chosen token
            np.add.at(g, ids[on, t], -w[on, None] * np.exp(table[ids[on, t]]))  # − w(x) π(· | x_<t)
            blocks.append(g.reshape(-1))
        return np.concatenate(blocks) if blocks else np.zeros(0)

    return log_probs, grad


# ---------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("scale", [0.1, 3.0, 500.0], ids=["narrow", "wide", "row-shift"])
@pytest.mark.parametrize("n", [1, 7, BLOCK // 3 + 5], ids=["one-row", "few-rows", "several-blocks"])
def test_softmax_rows_matches_scipy(scale, n):
    z = scale * np.random.default_rng(0).standard_normal((n, 5))
    log_z, pi = softmax_rows(z)
    close(z - log_z[:, None], log_softmax(z, axis=1))
    close(pi, softmax(z, axis=1))
    close(log_softmax_rows(z), log_softmax(z, axis=1))
    assert softmax_rows(z, probs=False)[1] is None


def test_softmax_rows_keeps_minus_inf_logits_out():
    z = np.array([[0.0, -np.inf, 1.0], [2.0, 2.0, -np.inf]])
    log_z, pi = softmax_rows(z)
    close(z[np.isfinite(z)] - np.repeat(log_z, 2), log_softmax(z, axis=1)[np.isfinite(z)])
    assert pi[0, 1] == 0.0 and pi[1, 2] == 0.0


def test_sequence_log_probs_with_log_norm_matches_normalised(space):
    rng = np.random.default_rng(1)
    logits = [rng.standard_normal((lv.nodes, lv.choices)) for lv in space.levels]
    norms = [None if lv.choices == 1 else np.log(np.exp(z).sum(axis=1)) for lv, z in zip(space.levels, logits)]
    normalised = [np.zeros_like(z) if lv.choices == 1 else z - n[:, None]
                  for lv, z, n in zip(space.levels, logits, norms)]
    logits = [np.zeros_like(z) if lv.choices == 1 else z for lv, z in zip(space.levels, logits)]
    close(space.sequence_log_probs(logits, norms), space.sequence_log_probs(normalised))


def test_edge_masses_match_child_mass_and_do_not_alias_w(space):
    w = np.random.default_rng(2).standard_normal(space.size)
    w0 = w.copy()
    V = space.n_vocab
    for lv, c, (to_vocab, to_eos, total) in zip(space.levels, space.child_mass(w), space.edge_masses(w)):
        if to_vocab is not None:
            close(to_vocab, c[:, :V])
            assert not to_vocab.flags.writeable
        if to_eos is not None:
            close(to_eos, c[:, -1])
        close(total, c.sum(axis=1))
        c[...] = 0.0  # child_mass hands out fresh arrays
    assert np.array_equal(w, w0)


# ---------------------------------------------------------------------------- policies
def test_autoregressive_matches_naive_gather(space):
    pol = AutoregressivePolicy(space, seed=3, init_scale=1.5)
    log_probs, grad = naive_ar(pol)
    close(pol.log_probs(), log_probs())
    w = np.random.default_rng(4).standard_normal(space.size)
    close(pol.grad_log_prob_weighted(w), grad(w))
    for lc, lc_naive in zip(pol.log_conditionals(), [np.zeros((lv.nodes, 1)) if z is None else log_softmax(z, axis=1)
                                                     for lv, z in zip(space.levels, pol.logits())]):
        close(lc, lc_naive)


def test_autoregressive_with_logits_spread_beyond_one_shift():
    space = SequenceSpace(["a", "b", "c"], 3, eos="</s>")
    theta = np.random.default_rng(5).standard_normal(space.n_logits)
    theta[::7] = 400.0  # spread > 600 inside a block: each row takes its own shift
    theta[3::11] = -400.0
    pol = AutoregressivePolicy(space, params=theta)
    log_probs, grad = naive_ar(pol)
    close(pol.log_probs(), log_probs())
    w = np.random.default_rng(6).standard_normal(space.size)
    close(pol.grad_log_prob_weighted(w), grad(w))


@pytest.mark.parametrize("kw", ["fixed", "eos", "unterminated"])
def test_tinylm_tree_matches_per_sequence_path(kw):
    """The tree pass (each prefix once) against the (N, T) pass over every sequence."""
    space = SequenceSpace(**SPACES[kw])
    model = TinyLM(space, seed=7)
    every = np.arange(space.size)
    close(model.log_probs(), model.log_prob_at(every))
    w = np.random.default_rng(8).standard_normal(space.size)
    close(model.grad_log_prob_weighted(w), model.grad_log_prob_at(every, w))


# ---------------------------------------------------------------------------- weights
def _full_support_pair(n, seed):
    rng = np.random.default_rng(seed)
    lpi, lp = rng.standard_normal(n) * 3, rng.standard_normal(n) * 3
    return lpi - np.log(np.exp(lpi).sum()), lp - np.log(np.exp(lp).sum())


@pytest.mark.parametrize("name", divergences.names())
@pytest.mark.parametrize("n", [50, 3 * BLOCK + 17], ids=["one-block", "several-blocks"])
def test_blocked_weights_match_the_formula(name, n):
    div = divergences.get(name)
    log_pi, log_p = _full_support_pair(n, 9)
    w = fdpg.gradient_weights(log_pi, log_p, div)
    with np.errstate(over="ignore"):
        want = -np.exp(log_pi) * div.pseudo_reward(log_pi - log_p)  # π f'(π/p), from R = −f'
    close(w, want, rtol=1e-11 if name in ("neyman", "pearson") else RTOL)


def test_js_weight_is_exact_far_from_the_target():
    js = divergences.get("js")
    log_pi = np.array([-700.0, -40.0, -1.0, 0.0, -1e-3, -30.0])
    log_p = np.array([-1.0, -700.0, -1.0, -50.0, -1e-3, -30.0 + 1e-9])
    u = log_pi - log_p
    want = 0.5 * np.exp(log_pi) * (np.log(2.0) - np.logaddexp(0.0, -u))  # ½ π log(2t/(1+t))
    close(js.weights(log_pi, log_p), want)


def test_full_support_fast_path_equals_masked_path():
    """A target with zeros goes through the masks; the same values with full support do not."""
    space = SequenceSpace(["a", "b"], 5, eos="</s>")
    pol = AutoregressivePolicy(space, seed=10, init_scale=1.0)
    b = np.random.default_rng(11).random(space.size) < 0.7
    log_a = pol.log_probs()
    hard = targets.pointwise(log_a, b)
    for name in ("js", "forward_kl", "tv", "hellinger"):
        w = fdpg.gradient_weights(pol.log_probs(), hard.log_probs, name)
        div = divergences.get(name)
        inside = b
        close(w[inside], div.weights(pol.log_probs()[inside], hard.log_probs[inside]))
        close(w[~inside], np.exp(pol.log_probs()[~inside]) * div.slope_at_infinity)


# ---------------------------------------------------------------------------- the size guard
@pytest.mark.parametrize("kw", [dict(vocab=[f"t{i}" for i in range(40)], length=12),
                                dict(vocab=[f"t{i}" for i in range(10)], length=6, max_bytes=10**6),
                                dict(vocab=[f"t{i}" for i in range(10)], length=9, eos="</s>",
                                     unterminated=True)],
                         ids=["astronomical", "over-max-bytes", "eos-unterminated"])
def test_size_guard_refuses_before_allocating(kw):
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="max_bytes"):
            SequenceSpace(**kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, f"the guard allocated {peak} bytes before refusing"


def test_size_guard_budget_covers_a_step():
    """What the guard budgets per sequence covers what one exact step actually allocates."""
    space = SequenceSpace([f"t{i}" for i in range(4)], 8, eos="</s>")  # N = 21 845
    pol = AutoregressivePolicy(space, seed=0)
    tgt = targets.rlhf(AutoregressivePolicy(space, seed=1).log_probs(), np.zeros(space.size), 1.0)
    tracemalloc.start()
    try:
        fdpg.exact_gradient(pol.with_params(pol.params), tgt, "js")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    from toyfdiv.space import _BYTES_PER_SEQUENCE
    assert peak <= space.size * _BYTES_PER_SEQUENCE
