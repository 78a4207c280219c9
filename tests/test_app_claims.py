"""toyfdiv.claims: every sentence that states a result follows from its numbers, with a stated threshold.

The cases are the ones issue 13 found contradicted by the numbers on screen."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toyfdiv import claims


def test_column_winners_reports_a_run_that_loses_its_own_column():
    # autoregressive policy: JS ends below forward KL on forward KL's own column (1.242e-3 vs 4.897e-3)
    table = {"reverse_kl": {"reverse_kl": 2.0e-3, "forward_kl": 6.0e-3, "js": 9.0e-4},
             "forward_kl": {"reverse_kl": 3.1e-3, "forward_kl": 4.897e-3, "js": 8.0e-4},
             "js": {"reverse_kl": 2.5e-3, "forward_kl": 1.242e-3, "js": 3.0e-4}}
    verdicts, sentence = claims.column_winners(table)
    assert verdicts == {"reverse_kl": "own", "forward_kl": "lost", "js": "own"}
    assert "on forward_kl's column js is smaller (0.00124 vs 0.0049)" in sentence
    assert "each f wins" not in sentence and "Not every run wins" in sentence


def test_column_winners_small_beta_case_and_ties():
    # β = 0.05: the reverse_kl column's minimum is JS's 0.359 against reverse KL's own 2.455
    table = {"reverse_kl": {"reverse_kl": 2.455, "js": 0.6}, "js": {"reverse_kl": 0.359, "js": 0.1}}
    verdicts, _ = claims.column_winners(table)
    assert verdicts["reverse_kl"] == "lost"
    # within the 5 % relative threshold: a tie counts as a win, the sentence says each f wins
    tied = {"a": {"a": 1.00, "b": 2.0}, "b": {"a": 0.96, "b": 1.0}}
    verdicts, sentence = claims.column_winners(tied)
    assert verdicts == {"a": "own", "b": "own"} and "5%" in sentence
    just_out = {"a": {"a": 1.00, "b": 2.0}, "b": {"a": 0.94, "b": 1.0}}
    assert claims.column_winners(just_out)[0]["a"] == "lost"
    # an infinite own value never ties with a finite one
    assert claims.column_winners({"a": {"a": math.inf}, "b": {"a": 1.0}})[0]["a"] == "lost"


@pytest.mark.parametrize("gap, verdict", [(0.02, "tie"), (0.03, "tie"), (0.05, "tie"), (0.051, "ordered"),
                                          (1.0, "ordered")])
def test_entropy_extremes_threshold(gap, verdict):
    got, sentence = claims.entropy_extremes({"reverse KL": 2.0, "forward KL": 2.0 + gap, "JS": 2.0 + gap / 2}, 2.5)
    assert got == verdict
    if verdict == "tie":
        assert "most mode-seeking" not in sentence and "tie" in sentence
    else:
        assert "reverse KL (the most mode-seeking)" in sentence and "forward KL (the most mass-covering)" in sentence
    assert "2.500 nats" in sentence


def test_bias_verdict_does_not_call_noise_a_bias():
    # the unbiased estimator that broke "unbiased if bias < bias_se": 7.2e-3 against a floor of 6.7e-3
    assert claims.bias_verdict(7.2e-3, 6.7e-3)[0] == "no bias detected"
    assert claims.bias_verdict(3.1 * 6.7e-3, 6.7e-3)[0] == "biased"
    assert claims.bias_verdict(3.0 * 6.7e-3, 6.7e-3)[0] == "no bias detected"  # the threshold itself: not above
    with pytest.raises(ValueError, match="bias"):
        claims.bias_verdict(-1.0, 1.0)


def test_bias_threshold_holds_for_a_truly_unbiased_mean():
    """Independent oracle: sample means of zero-mean vectors; ‖mean‖ exceeds 3 floors rarely (≤ 1 %)."""
    rng = np.random.default_rng(0)
    exceed = 0
    for _ in range(400):
        x = rng.normal(size=(100, 5)) * np.array([1, 2, 3, 0.5, 0.1])  # (trials, P), E x = 0
        mean = x.mean(axis=0)
        floor = math.sqrt(np.trace(np.cov(x.T)) / 100)
        exceed += claims.bias_verdict(float(np.linalg.norm(mean)), floor)[0] == "biased"
    assert exceed <= 4


def test_accuracy_vs_bayes_within_noise_is_a_tie():
    # 5000 pairs, 20 % held out: 0.682 "beats" 0.673 only by 0.6 standard errors
    verdict, sentence = claims.accuracy_vs_bayes(0.682, 0.673, 1000)
    assert verdict == "tie" and "equal within the noise" in sentence
    se = math.sqrt(0.682 * 0.318 / 1000)
    assert f"{se:.3f}" in sentence
    assert claims.accuracy_vs_bayes(0.60, 0.673, 1000)[0] == "below"
    assert claims.accuracy_vs_bayes(0.75, 0.673, 1000)[0] == "above"


def test_concentration_names_p_s_rank():
    verdict, sentence = claims.concentration({"pi": 0.93, "p": 0.21}, 2, "reverse KL", "good film </s>")
    assert verdict == "collapsed"
    assert "0.93" in sentence and "second most likely" in sentence and "good film </s>" in sentence
    assert claims.concentration({"pi": 0.4, "p": 0.3}, 1, "JS", "x")[0] == "spread"
    with pytest.raises(ValueError, match="rank_in_target"):
        claims.concentration({"pi": 0.9, "p": 0.3}, 0, "JS", "x")


def test_token_path_multiplies_to_the_sequence_probability():
    from toyfdiv import sequences, tasks

    task = tasks.get("reviews")
    rng = np.random.default_rng(1)
    log_p = np.log(rng.dirichlet(np.ones(task.space.size)))
    for i in (0, 16, task.space.size - 1):
        path = sequences.token_path(task.space, log_p, i)
        assert [tok for tok, _ in path] == task.space.decode(i).split()
        assert math.prod(c for _, c in path) == pytest.approx(math.exp(log_p[i]), rel=1e-10)
    # the first conditional is the marginal of the first token: an independent sum over the space
    first = task.space.tokens[:, 0] == task.space.tokens[16, 0]
    assert sequences.token_path(task.space, log_p, 16)[0][1] == pytest.approx(np.exp(log_p[first]).sum())
    assert sequences.rank(log_p, int(np.argmax(log_p))) == 1
    assert sequences.rank(log_p, int(np.argmin(log_p))) == task.space.size
    with pytest.raises(ValueError, match="index"):
        sequences.token_path(task.space, log_p, task.space.size)
