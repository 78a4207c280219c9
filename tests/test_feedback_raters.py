"""Simulated raters, feedback datasets, reward models and the over-optimisation curve."""

import numpy as np
import pytest
from scipy.special import expit

from toyfdiv import tasks
from toyfdiv.feedback import (PreferenceDataset, Rater, ThumbsDataset, bayes_accuracy, centre,
                              collect_preferences, collect_thumbs, evaluate, fit_reward_model, load,
                              n_tokens, ngram_features, overoptimisation_curve, pair_log_probs, save)
from toyfdiv.feedback import raters as raters_mod


@pytest.fixture(scope="module")
def task():
    return tasks.default()


@pytest.fixture(scope="module")
def rater(task):
    return Rater.for_task(task, temperature=1.0)


def _rmse(r_hat, r, log_c):
    """sqrt(E_c[(r̂ − r)²]) after centring both under c: the error up to BT's free constant."""
    c = np.exp(log_c)
    return float(np.sqrt(c @ (centre(r_hat, log_c)[0] - centre(r, log_c)[0]) ** 2))


# ---------------------------------------------------------------------------- rater
def test_rater_probabilities_are_bradley_terry_and_logistic(task):
    r = Rater.for_task(task, temperature=2.0, length_bias=0.5)
    u, L = task.reward.values, n_tokens(task.space)
    x, y = np.array([3, 10, 200]), np.array([40, 11, 7])
    assert np.allclose(r.perceived, u + 0.5 * L)
    assert np.allclose(r.prob_prefers(x, y), expit((u[x] + 0.5 * L[x] - u[y] - 0.5 * L[y]) / 2.0))
    assert np.allclose(r.prob_prefers(x, y) + r.prob_prefers(y, x), 1.0)
    assert np.allclose(r.prob_thumbs_up(x), expit((u[x] + 0.5 * L[x]) / 2.0))
    assert n_tokens(task.space)[task.space.index("very good film </s>")] == 3


def test_pair_distribution_is_normalised_without_diagonal(task):
    log_q = pair_log_probs(task.log_a)
    assert np.isneginf(np.diag(log_q)).all()
    assert np.exp(log_q).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("gap", [10.0, 30.0, 35.0, 60.0, 300.0])
def test_pair_distribution_stays_normalised_when_one_sequence_has_almost_all_mass(gap):
    """1 − Σμ² by cancellation lost everything past gap ≈ 30 (the fuzz test found q summing
    to 0.999 and a Bayes accuracy below ½); summed as Σ_{x≠y} μ(x)μ(y) it stays exact."""
    from scipy.special import log_softmax, logsumexp
    log_mu = log_softmax(np.array([0.0, -gap, -gap - 1.0]))
    log_q = pair_log_probs(log_mu)
    assert abs(logsumexp(log_q)) < 1e-12
    # the two off-mode sequences pair with the mode in proportion to their own mass
    assert np.isclose(log_q[0, 1] - log_q[0, 2], 1.0, atol=1e-12)
    rater = Rater(np.array([1.0, 0.0, -1.0]))
    acc = bayes_accuracy(rater, log_mu)
    assert 0.5 <= acc <= 1.0
    # the pairs are (mode, 1) and (mode, 2) up to e^{-gap}: max(σ(Δ), 1 − σ(Δ)) for Δ = 1 and 2
    w1, w2 = 1.0, np.exp(-1.0)
    want = (w1 * expit(1.0) + w2 * expit(2.0)) / (w1 + w2)
    assert np.isclose(acc, want, rtol=1e-6)


def test_collected_pairs_follow_bradley_terry(task, rater):
    """The win rate of the better sequence in a frequent pair matches σ(Δ) within 4 SE."""
    data = collect_preferences(rater, task.base, 20_000, np.random.default_rng(0))
    assert len(data) == 20_000 and not np.any(data.winners == data.losers)
    x, y = task.space.index("very good </s>"), task.space.index("bad </s>")
    x_won = np.sum((data.winners == x) & (data.losers == y))
    n = x_won + np.sum((data.winners == y) & (data.losers == x))
    p = float(rater.prob_prefers(x, y))
    assert n > 30
    assert abs(x_won / n - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-12


# ---------------------------------------------------------------------------- reward models
def test_bradley_terry_fit_recovers_utility_as_data_grow(task, rater):
    """Error of r̂ against ũ/τ (both centred under a) shrinks over 300 → 3 000 → 30 000 pairs."""
    phi, _ = ngram_features(task.space)
    errors = {"tabular": [], "linear": []}
    for n in (300, 3_000, 30_000):
        data = collect_preferences(rater, task.base, n, np.random.default_rng(n))
        errors["tabular"].append(_rmse(fit_reward_model(data, l2=1.0).values, rater.reward, task.log_a))
        errors["linear"].append(_rmse(fit_reward_model(data, phi, l2=1e-2).values, rater.reward, task.log_a))
    for kind, err in errors.items():
        assert err[0] > err[1] > err[2], (kind, err)
    assert errors["linear"][-1] < 0.1  # well-specified: sentiment is linear in uni+bigram counts


def test_constant_is_fixed_explicitly(task, rater):
    data = collect_preferences(rater, task.base, 500, np.random.default_rng(1))
    m_a = fit_reward_model(data, centre_log_probs=task.log_a)
    m_u = fit_reward_model(data)
    assert np.exp(task.log_a) @ m_a.values == pytest.approx(0.0, abs=1e-10)
    assert m_u.values.mean() == pytest.approx(0.0, abs=1e-10)
    assert np.allclose(m_a.logits, m_u.logits)  # same fit, different constant
    assert np.ptp(m_a.values - m_u.values) < 1e-10


def test_perfect_model_accuracy_is_the_bayes_accuracy(task, rater):
    """Accuracy of r = ũ/τ on 20 000 pairs = E_q[max(σ(Δ), 1 − σ(Δ))] within 4 standard errors."""
    n = 20_000
    data = collect_preferences(rater, task.base, n, np.random.default_rng(2))
    r = rater.reward
    z = r[data.winners] - r[data.losers]
    per_pair = (z > 0) + 0.5 * (z == 0)
    se = per_pair.std(ddof=1) / np.sqrt(n)
    bayes = bayes_accuracy(rater, task.base)
    assert 0.6 < bayes < 0.95
    assert abs(evaluate(r, data).accuracy - bayes) < 4 * se
    # the true log-loss is the conditional entropy, and no fitted model beats it by much
    fitted = fit_reward_model(collect_preferences(rater, task.base, 3000, np.random.default_rng(3)))
    assert evaluate(fitted, data).log_loss > evaluate(r, data).log_loss - 4 * se


def test_thumbs_logistic_fit(task):
    rater = Rater.for_task(task, temperature=0.5)
    data = collect_thumbs(rater, task.base, 20_000, np.random.default_rng(4))
    train, held = data.split(0.25, np.random.default_rng(5))
    assert len(held) == 5000 and len(train) == 15_000
    phi, _ = ngram_features(task.space)
    model = fit_reward_model(train, phi, l2=1e-2, centre_log_probs=task.log_a)
    # logits estimate (ũ − u₀)/τ: the slope and the level are both identified by thumbs
    err = model.logits - rater.perceived / 0.5
    assert np.sqrt(np.exp(task.log_a) @ err**2) < 0.2
    bayes = np.mean(np.maximum(rater.prob_thumbs_up(held.items), 1 - rater.prob_thumbs_up(held.items)))
    assert abs(evaluate(model, held).accuracy - bayes) < 4 * 0.5 / np.sqrt(len(held))


def test_save_load_round_trip(tmp_path, task, rater):
    prefs = collect_preferences(rater, task.base, 50, np.random.default_rng(6))
    thumbs = collect_thumbs(rater, task.base, 50, np.random.default_rng(7))
    for ds, name in ((prefs, "p.npz"), (thumbs, "t.npz")):
        save(tmp_path / name, ds)
        back = load(tmp_path / name)
        assert type(back) is type(ds) and back.space_size == ds.space_size
        for field in ("winners", "losers") if name == "p.npz" else ("items", "labels"):
            assert np.array_equal(getattr(back, field), getattr(ds, field))
    np.savez(tmp_path / "old.npz", format_version=np.array(99), kind=np.array("thumbs"))
    with pytest.raises(ValueError, match="format_version 99"):
        load(tmp_path / "old.npz")


def test_from_texts(task):
    ds = PreferenceDataset.from_texts(task.space, [("very good film </s>", "bad </s>")])
    assert ds.winners[0] == task.space.index("very good film </s>")


# ---------------------------------------------------------------------------- over-optimisation
def test_overoptimisation_turning_point_on_default_task(task):
    """A rater who docks 1.5 per token + a reward model fit on 2 000 pairs: E_p[u] peaks, then falls.

    The proxy's argmax is the empty review (no tokens, no penalty); the true sentiment of
    p_β = a·exp(r̂/β)/Z first rises (positive reviews) and then falls to 0.
    """
    rater = Rater.for_task(task, temperature=1.0, length_bias=-1.5)
    data = collect_preferences(rater, task.base, 2000, np.random.default_rng(0))
    r_hat = fit_reward_model(data, centre_log_probs=task.log_a)
    curve = overoptimisation_curve(task.log_a, r_hat, task.reward.values)
    assert curve.is_overoptimised
    i = curve.turning_index
    assert curve.true[i] - curve.true[-1] > 0.3
    assert np.all(np.diff(curve.true[: i + 1]) > -1e-9) and np.all(np.diff(curve.true[i:]) < 1e-9)
    assert np.all(np.diff(curve.proxy) > -1e-9)  # the proxy keeps rising: d E_p[r̂]/d(1/β) = Var ≥ 0
    assert np.all(np.diff(curve.kl) > -1e-9)
    assert curve.betas[i + 1] <= curve.turning_beta <= curve.betas[i - 1]
    assert curve.turning_true >= curve.true[i] - 1e-12
    # the unbiased rater's reward model, with the same data budget, does not turn
    fair = Rater.for_task(task, temperature=1.0)
    exact = overoptimisation_curve(task.log_a, fair.reward, task.reward.values)
    assert not exact.is_overoptimised


# ---------------------------------------------------------------------------- bad input
def test_bad_input_is_a_clear_value_error(task, rater):
    n = task.space.size
    with pytest.raises(ValueError, match="outside the space"):
        PreferenceDataset(np.array([0, n]), np.array([1, 2]), n)
    with pytest.raises(ValueError, match="outside the space"):
        ThumbsDataset(np.array([-1]), np.array([True]), n)
    with pytest.raises(ValueError, match="empty"):
        PreferenceDataset(np.array([], dtype=int), np.array([], dtype=int), n)
    with pytest.raises(ValueError, match="with itself"):
        PreferenceDataset(np.array([0, 5]), np.array([1, 5]), n)
    with pytest.raises(ValueError, match="temperature"):
        Rater(task.reward.values, temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        Rater.for_task(task, temperature=-1.0)
    with pytest.raises(ValueError, match="beta"):
        overoptimisation_curve(task.log_a, rater.reward, task.reward.values, betas=[1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="rng"):
        collect_preferences(rater, task.base, 10, rng=0)
    with pytest.raises(ValueError, match="all its mass on one sequence"):
        log_point = np.full(n, -np.inf)
        log_point[0] = 0.0
        collect_preferences(rater, log_point, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="PreferenceDataset or ThumbsDataset"):
        fit_reward_model([(0, 1)])
    assert raters_mod.FORMAT_VERSION == 1


def test_bad_input_audit(tmp_path):
    task = tasks.get("abc")
    u, n = task.reward.values, task.space.size
    rater = Rater(u, 1.0)
    data = collect_preferences(rater, task.base, 20, np.random.default_rng(0))
    np.savez(tmp_path / "short.npz", format_version=np.array(1), kind=np.array("preferences"),
             space_size=np.array(5), winners=np.array([0]))
    for call, match in [(lambda: Rater(u, 1.0, None, None), r"threshold=None"),
                        (lambda: Rater(u, 1e-320), r"temperature=1e-320 is too small"),  # was inf rewards
                        (lambda: Rater.for_task(None), r"task=None"),
                        (lambda: Rater.for_task(task, "a"), r"temperature='a'"),
                        (lambda: Rater.for_task(task, 1.0, None), r"length_bias=None"),
                        (lambda: rater.prob_prefers([n + 5], [0]), r"x must hold integer sequence indices"),
                        (lambda: collect_preferences(None, task.base, 5, np.random.default_rng(0)), r"rater=None"),
                        (lambda: data.split(None, np.random.default_rng(0)), r"fraction=None"),
                        (lambda: data.subset([1000]), r"idx=\[1000\]"),
                        (lambda: PreferenceDataset.from_texts(task.space, None), r"pairs=None"),
                        (lambda: pair_log_probs(np.full(4, np.nan)), r"log_mu contains NaN"),  # was NaN
                        (lambda: pair_log_probs(np.zeros(4)), r"log_mu is not normalised"),
                        (lambda: pair_log_probs(np.r_[0.0, np.full(3, -np.inf)]), r"all its mass on one"),
                        (lambda: n_tokens(None), r"space=None"),
                        (lambda: load(tmp_path / "short.npz"), r"without the fields \['losers'\]"),
                        (lambda: fit_reward_model(data, centre_log_probs=np.full(n, np.nan)), r"centre_log_probs"),
                        (lambda: fit_reward_model(data, tol=float("nan")), r"tol=nan"),
                        (lambda: centre(np.full(4, np.nan)), r"values must be a finite"),
                        (lambda: ngram_features(None), r"space=None"),
                        (lambda: evaluate(np.zeros(n), None), r"dataset=None must be a PreferenceDataset")]:
        with pytest.raises(ValueError, match=match):
            call()


def test_center_log_probs_is_a_deprecated_spelling_of_centre_log_probs():
    r = np.array([1.0, 2.0, 4.0])
    log_c = np.log([0.5, 0.25, 0.25])
    with pytest.warns(DeprecationWarning, match="centre_log_probs"):
        old = centre(r, center_log_probs=log_c)
    new = centre(r, log_c)
    np.testing.assert_array_equal(old[0], new[0])
    assert new[1] == pytest.approx(0.5 * 1 + 0.25 * 2 + 0.25 * 4)  # E_c[r]
