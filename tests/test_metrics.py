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
