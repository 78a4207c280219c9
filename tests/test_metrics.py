"""Metrics against textbook formulas."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import rel_entr

from toyfdiv import metrics, tasks


def test_entropy_and_kl_against_scipy():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(12)), rng.dirichlet(np.ones(12))
    assert metrics.entropy(np.log(p)) == pytest.approx(stats.entropy(p), rel=1e-12)
    assert metrics.kl(np.log(p), np.log(q)) == pytest.approx(rel_entr(p, q).sum(), rel=1e-12)
    p0 = p.copy(); p0[:3] = 0; p0 /= p0.sum()
    with np.errstate(divide="ignore"):
        assert metrics.entropy(np.log(p0)) == pytest.approx(stats.entropy(p0), rel=1e-12)
        assert metrics.kl(np.log(q), np.log(p0)) == np.inf


def test_expected_distinct_closed_forms():
    n = 50
    uniform = np.full(n, -np.log(n))
    for k in (1, 10, 100, 1000):
        assert metrics.expected_distinct(uniform, k) == pytest.approx(n * (1 - (1 - 1 / n) ** k), rel=1e-12)
    with np.errstate(divide="ignore"):
        point = np.log(np.eye(1, n, 7)[0])  # all mass on one sequence
    assert metrics.expected_distinct(point, 100) == 1.0
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.full(n, 0.3))
    assert metrics.expected_distinct(np.log(p), 1) == pytest.approx(1.0, abs=1e-12)
    tiny = np.log(np.r_[1 - 1e-12 * (n - 1), np.full(n - 1, 1e-12)])  # 1 − (1 − 1e-12)^k, no cancellation
    assert metrics.expected_distinct(tiny, 100) == pytest.approx(1 + (n - 1) * 100e-12, rel=1e-12)
    with pytest.raises(ValueError, match="k=0"):
        metrics.expected_distinct(uniform, 0)


def test_expected_distinct_against_sampling():
    """The mean count of distinct sequences in k draws, over many draws, within 4 standard errors."""
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.full(30, 0.2))
    k, trials = 40, 4000
    counts = np.array([len(np.unique(rng.choice(30, size=k, p=p))) for _ in range(trials)])
    se = counts.std(ddof=1) / np.sqrt(trials)
    assert abs(counts.mean() - metrics.expected_distinct(np.log(p), k)) < 4 * se


def test_evaluate_on_the_default_task():
    task = tasks.default()
    tgt = task.target("hybrid")
    row = metrics.evaluate(tgt.log_probs, tgt)
    assert row["divergence/js"] == pytest.approx(0.0, abs=1e-12)
    assert row["kl_from_base"] == pytest.approx(tgt.lambdas @ tgt.moments - tgt.log_z, rel=1e-8)
    assert row["alignment/constraint"] == pytest.approx(1.0)
    for name, m in zip(task.feature_names, task.moments):
        assert row[f"alignment/moment/{name}"] == pytest.approx(m, abs=1e-8)
    assert row["effective_sequences"] == pytest.approx(np.exp(row["entropy"]))


def test_rlhf_objective_identity():
    """J(π) = E_π[r] − β KL(π‖a) = β log Z − β KL(π‖p) for random π."""
    from toyfdiv import targets
    rng = np.random.default_rng(3)
    a, pi = rng.dirichlet(np.ones(20)), rng.dirichlet(np.ones(20))
    r = 3 * rng.standard_normal(20)
    for beta in (0.1, 1.0, 7.0):
        p = targets.rlhf(np.log(a), r, beta)
        J = metrics.rlhf_objective(np.log(pi), r, np.log(a), beta)
        assert J == pytest.approx(pi @ r - beta * rel_entr(pi, a).sum(), rel=1e-12)
        assert J == pytest.approx(beta * p.log_z - beta * rel_entr(pi, np.exp(p.log_probs)).sum(), rel=1e-10)
    with pytest.raises(ValueError, match="beta=0"):
        metrics.rlhf_objective(np.log(pi), r, np.log(a), 0)
    with pytest.raises(ValueError, match=r"values has shape \(3,\)"):
        metrics.expectation(np.log(pi), np.ones(3))


def test_bad_input_audit():
    task = tasks.get("abc")
    tgt = task.target("rlhf")
    la = task.log_a
    for call, match in [(lambda: metrics.entropy(np.full(la.size, np.nan)), r"log_pi contains NaN"),  # was NaN
                        (lambda: metrics.entropy(np.zeros(la.size)), r"log_pi is not normalised"),
                        (lambda: metrics.entropy(la[None]), r"log_pi has shape \(1, 81\)"),
                        (lambda: metrics.expectation(la, np.full(la.size, np.nan)), r"values contains NaN"),
                        (lambda: metrics.rlhf_objective(la, task.reward.values, la, True), r"beta=True"),
                        (lambda: metrics.alignment(la, None), r"target=None"),
                        (lambda: metrics.alignment(la[:3], tgt), r"log_pi has shape \(3,\)"),
                        (lambda: metrics.evaluate(np.zeros(la.size), tgt), r"log_pi is not normalised"),
                        (lambda: metrics.evaluate(la, tgt, 5), r"divergences=5")]:
        with pytest.raises(ValueError, match=match):
            call()
    assert set(metrics.evaluate(la, tgt, ["js"])) >= {"divergence/js", "entropy"}  # names are accepted
