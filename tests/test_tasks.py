"""The task catalogue: n-gram pretraining, signals, targets of every kind."""

import numpy as np
import pytest

from toyfdiv import SequenceSpace, tasks


def test_bigram_pretraining_matches_hand_counts():
    space = SequenceSpace(["a", "b"], 3, "</s>")
    corpus = ["a b", "a a", "b"]
    # bigram counts: <s>→a 2, <s>→b 1; a→b 1, a→a 1, a→</s> 1; b→</s> 2
    pol = tasks.pretrain(space, corpus, order=2, smoothing=0.0 + 1e-12)
    pi = np.exp(pol.log_probs())
    p_start = np.array([2, 1, 0]) / 3  # a, b, </s>
    p_a = np.array([1, 1, 1]) / 3
    p_b = np.array([0, 0, 2]) / 2
    # the last depth of a T = 3 space allows only EOS: its conditional is 1
    expected = {
        "a b </s>": p_start[0] * p_a[1],
        "a a </s>": p_start[0] * p_a[0],
        "b </s>": p_start[1] * p_b[2],
        "a </s>": p_start[0] * p_a[2],
    }
    for text, p in expected.items():
        assert pi[space.index(text)] == pytest.approx(p, abs=1e-9)
    smoothed = np.exp(tasks.pretrain(space, corpus, smoothing=0.5).log_probs())
    assert smoothed.min() > 0 and abs(smoothed.sum() - 1) < 1e-12


def test_smoothing_zero_is_refused_when_it_leaves_zeros():
    space = SequenceSpace(["a", "b"], 3, "</s>")
    with pytest.raises(ValueError, match="smoothing=0"):
        tasks.pretrain(space, ["a b"], smoothing=0.0)
    with pytest.raises(ValueError, match=r"tokens \['z'\] outside vocab"):
        tasks.pretrain(space, ["a z"])
    with pytest.raises(ValueError, match="corpus is empty"):
        tasks.pretrain(space, [])


def test_signals_on_hand_examples():
    task = tasks.default()
    s = task.space
    r = task.reward.values
    for text, value in [("good </s>", 1), ("not good </s>", -1), ("very bad film </s>", -2),
                        ("not bad </s>", 1), ("film very good </s>", 2), ("</s>", 0)]:
        assert r[s.index(text)] == value, text
    assert task.constraint.values[s.index("not good </s>")]
    assert not task.constraint.values[s.index("bad </s>")]
    assert tasks.no_repeat(s).values[s.index("good bad </s>")]
    assert not tasks.no_repeat(s).values[s.index("good good </s>")]
    assert tasks.max_length(s, 2).values[s.index("good </s>")]
    assert not tasks.max_length(s, 2).values[s.index("good bad </s>")]
    assert tasks.count(s, "film").values[s.index("film film good </s>")] == 2


@pytest.mark.parametrize("name", tasks.names())
@pytest.mark.parametrize("kind", tasks.TARGET_KINDS)
def test_every_task_builds_every_target(name, kind):
    task = tasks.get(name)
    tgt = task.target(kind)
    assert abs(np.logaddexp.reduce(tgt.log_probs)) < 1e-10
    if kind in ("distributional", "hybrid"):
        np.testing.assert_allclose(np.exp(tgt.log_probs) @ task.feature_matrix, task.moments, atol=1e-8)


def test_catalogue_errors():
    with pytest.raises(ValueError, match="task 'nope' is not in the catalogue"):
        tasks.get("nope")
    with pytest.raises(ValueError, match="kind='ppo' is not a target kind"):
        tasks.default().target("ppo")
    with pytest.raises(ValueError, match=r"unknown overrides \['gamma'\]"):
        tasks.default().target("rlhf", gamma=1)
    with pytest.raises(ValueError, match="token='zzz'"):
        tasks.contains(tasks.default().space, "zzz")


_ABC = SequenceSpace(["a", "b", "c"], 4)


@pytest.mark.parametrize("call, match", [
    (lambda: tasks.get([]), r"task \[\]"),
    (lambda: tasks.get("abc", eos="yes"), r"eos='yes'"),
    (lambda: tasks.pretrain(_ABC, None), r"corpus=None"),
    (lambda: tasks.pretrain(_ABC, "a b c a"), r"corpus='a b c a'"),  # was read letter by letter
    (lambda: tasks.pretrain(_ABC, [1, 2]), r"corpus lines must be strings"),
    (lambda: tasks.pretrain(None, ["a b c a"]), r"space=None"),
    (lambda: tasks.ngram_counts(_ABC, ["a b"], 0), r"order=0"),
    (lambda: tasks.sentiment(_ABC, {"a": float("nan")}), r"lexicon\['a'\]=nan"),  # was NaN rewards
    (lambda: tasks.sentiment(_ABC, ["a"]), r"lexicon=\['a'\]"),
    (lambda: tasks.count(None, "a"), r"space=None"),
    (lambda: tasks.no_repeat(None), r"space=None"),
    (lambda: tasks.Signal("x", np.array([np.nan])), r"Signal 'x' values must be finite"),
    (lambda: tasks.Signal("x", np.array(["a"])), r"Signal 'x' values must be finite"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_bad_input_audit(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_one_sequence_space_pretrains():
    # length 1 with EOS: the only sequence is "</s>", a policy without parameters (was a concatenate error)
    assert tasks.get("reviews", length=1).log_a.tolist() == [0.0]
