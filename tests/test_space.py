"""SequenceSpace: enumeration, canonical order, the prefix tree, and the size guard."""

import itertools
import tracemalloc

import numpy as np
import pytest

from toyfdiv import SequenceSpace


def brute_force(vocab, length, eos=None, unterminated=False):
    """Every sequence, listed by itertools in the documented canonical order."""
    if eos is None:
        return [list(s) for s in itertools.product(vocab, repeat=length)]
    out = [list(s) + [eos] for L in range(length) for s in itertools.product(vocab, repeat=L)]
    if unterminated:
        out += [list(s) for s in itertools.product(vocab, repeat=length)]
    return out


@pytest.mark.parametrize(
    "kw",
    [dict(vocab=["a", "b", "c"], length=3), dict(vocab=["x"], length=1),
     dict(vocab=["a", "b"], length=4, eos="<e>"), dict(vocab=["a", "b", "c"], length=1, eos="<e>"),
     dict(vocab=["a", "b"], length=3, eos="<e>", unterminated=True)],
    ids=["fixed", "single", "eos", "eos-T1", "unterminated"],
)
def test_enumeration_matches_brute_force(kw):
    space = SequenceSpace(**kw)
    expected = brute_force(kw["vocab"], kw["length"], kw.get("eos"), kw.get("unterminated", False))
    assert space.size == len(expected) == SequenceSpace.size_of(
        len(kw["vocab"]), kw["length"], "eos" in kw, kw.get("unterminated", False))
    assert [space.decode(i).split() for i in range(space.size)] == expected
    assert [space.index(" ".join(s)) for s in expected] == list(range(space.size))
    assert [space.index(s) for s in expected] == list(range(space.size))
    toks = space.tokens
    assert toks.shape == (space.size, space.length) and np.unique(toks, axis=0).shape[0] == space.size
    assert not toks.flags.writeable
    # padding: −1 only after EOS
    if space.eos is not None:
        for row in toks:
            seen_eos = False
            for v in row:
                assert (v == -1) == seen_eos
                seen_eos |= v == space.eos_id
    assert np.array_equal(space.lengths, [len(s) for s in expected])


def naive_log_probs(space, cond):
    """log π(x) by walking each sequence through a dict of conditionals (the slow oracle)."""
    out = np.empty(space.size)
    for i in range(space.size):
        row = [v for v in space.tokens[i] if v >= 0]
        total, prefix = 0.0, ()
        for v in row:
            total += cond[prefix][v]
            prefix += (v,)
        out[i] = total
    return out


def random_conditionals(space, rng):
    """Random log conditionals per level and the same as a {prefix: {token: log-prob}} dict."""
    V = space.n_vocab
    per_level, as_dict = [], {}
    for lv in space.levels:
        z = rng.standard_normal((lv.nodes, lv.choices))
        lc = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        per_level.append(lc)
        for u, pre in enumerate(space.prefix_tokens(lv.depth)):
            ids = list(range(V)) + [V] if lv.choices == V + 1 else ([V] if lv.choices == 1 else list(range(V)))
            as_dict[tuple(int(x) for x in pre)] = dict(zip(ids, lc[u]))
    return per_level, as_dict


def test_sequence_log_probs_and_child_mass_match_naive_sums(small_space):
    rng = np.random.default_rng(0)
    cond, cond_dict = random_conditionals(small_space, rng)
    lp = small_space.sequence_log_probs(cond)
    np.testing.assert_allclose(lp, naive_log_probs(small_space, cond_dict), rtol=0, atol=1e-13)
    assert abs(np.exp(lp).sum() - 1) < 1e-12
    w = rng.standard_normal(small_space.size)
    masses = small_space.child_mass(w)
    V = small_space.n_vocab
    for lv, c in zip(small_space.levels, masses):
        for u, pre in enumerate(small_space.prefix_tokens(lv.depth)):
            for j in range(lv.choices):
                v = V if (lv.choices == 1 or j == V) else j
                below = [i for i in range(small_space.size)
                         if list(small_space.tokens[i, : lv.depth]) == list(pre) and small_space.tokens[i, lv.depth] == v]
                assert c[u, j] == pytest.approx(w[below].sum(), abs=1e-12)


def test_size_guard_refuses_before_allocating():
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"N = 10,000,000,000.*shrink the vocabulary or the length"):
        SequenceSpace([f"w{i}" for i in range(10)], 10)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000  # nothing of the space's size was allocated
    # the limit is overridable both ways
    with pytest.raises(ValueError, match="max_bytes"):
        SequenceSpace(["a", "b"], 10, max_bytes=1000)
    assert SequenceSpace(["a", "b"], 10, max_bytes=10**9).size == 1024


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(vocab=[], length=2), "vocab=.*empty"),
        (dict(vocab=["a", "a", "b"], length=2), r"duplicate tokens \['a'\]"),
        (dict(vocab=["a", "b"], length=0), "length=0 must be an integer ≥ 1"),
        (dict(vocab=["a", "b"], length=2.5), "length=2.5"),
        (dict(vocab=["a", "b"], length=2, eos="a"), "eos='a' is also a vocabulary token"),
        (dict(vocab="ab", length=2), "vocab='ab' is a string"),
        (dict(vocab=["a b"], length=2), "without spaces"),
        (dict(vocab=["a"], length=2, unterminated=True), "unterminated=True needs an eos"),
    ],
    ids=["empty", "duplicate", "length0", "length-float", "eos-in-vocab", "string-vocab", "space-in-token", "unterminated-no-eos"],
)
def test_bad_input_is_named(kw, match):
    with pytest.raises(ValueError, match=match):
        SequenceSpace(**kw)


def test_index_and_decode_errors():
    space = SequenceSpace(["a", "b"], 3, "</s>")
    with pytest.raises(ValueError, match="outside this space's vocabulary"):
        space.index("a z </s>")
    with pytest.raises(ValueError, match="does not end with '</s>'"):
        space.index("a b")
    with pytest.raises(ValueError, match="longer than this space allows"):
        space.index("a b a </s>")
    with pytest.raises(ValueError, match="index 7 is outside the space"):
        space.decode(7)
    fixed = SequenceSpace(["a", "b"], 2)
    with pytest.raises(ValueError, match="exactly 2 tokens"):
        fixed.index("a")


def test_space_is_a_value():
    a = SequenceSpace(["a", "b"], 3, "</s>")
    b = SequenceSpace(("a", "b"), 3, eos="</s>")
    assert a == b and hash(a) == hash(b) and a != SequenceSpace(["a", "b"], 3)
    import pickle
    c = pickle.loads(pickle.dumps(a))
    assert c == a and np.array_equal(c.tokens, a.tokens)
    with pytest.raises(AttributeError):
        a.length = 4


# ---------------------------------------------------------------------------- bad-input audit
_S = SequenceSpace(["a", "b"], 3)


@pytest.mark.parametrize("call, match", [
    (lambda: SequenceSpace(None, 3), r"vocab=None"),
    (lambda: SequenceSpace(["a"], 3, "e", unterminated="no"), r"unterminated='no'"),
    (lambda: SequenceSpace(["a"], 3, max_bytes=True), r"max_bytes=True"),
    (lambda: SequenceSpace([str(i) for i in range(10)], 400), r"N ≈ 10\^400"),  # was an OverflowError
    (lambda: SequenceSpace([str(i) for i in range(1000)], 10**6), r"N ≈ 10\^3000000"),  # was an int-digits error
    (lambda: SequenceSpace(["a", "b"], 10**6, "e"), r"N ≈ 10\^"),  # was a hang
    (lambda: _S.index(None), r"text=None"),
    (lambda: _S.index(123), r"text=123"),
    (lambda: _S.ends_at(1.5), r"depth=1.5"),
    (lambda: _S.prefix_tokens(50), r"depth=50"),  # was an 8 PiB allocation
    (lambda: _S.sequence_log_probs([]), r"log_cond has 0 levels"),  # was uninitialised memory
    (lambda: SequenceSpace.size_of(-1, 3), r"n_vocab=-1"),
    (lambda: SequenceSpace.size_of(2, 2.5), r"length=2.5"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_bad_input_audit(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_size_of_closed_form_and_plain_str_vocab():
    for V, T in [(1, 4), (2, 5), (5, 3)]:
        for eos, un in [(False, False), (True, False), (True, True)]:
            assert SequenceSpace.size_of(V, T, eos, un) == SequenceSpace([str(i) for i in range(V)], T,
                                                                        "e" if eos else None, unterminated=un).size
    assert all(type(t) is str for t in SequenceSpace(np.array(["a", "b"]), 2).vocab)
