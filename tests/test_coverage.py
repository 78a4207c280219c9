"""DPO under partial coverage: every member of the minimiser set attains the population minimum
(the gradient vanishes there), the set is larger than the RLHF target, and training picks a member
by its parametrisation: tabular logits of unseen outputs never move, shared parameters leak mass."""

import numpy as np
import pytest
from scipy.special import expit, log_softmax

from toyfdiv import optim, tasks, targets
from toyfdiv.feedback import Rater, collect_preferences, dpo_gradient, population_dpo_gradient, population_dpo_loss
from toyfdiv.feedback.coverage import dpo_minimiser_set, seen_outputs, unseen_mass
from toyfdiv.policies import NgramPolicy, TabularPolicy, TinyLM

BETA = 0.5


@pytest.fixture(scope="module")
def setup():
    task = tasks.get("abc", length=3)
    n = task.space.size
    r = np.random.default_rng(0).normal(0.0, 1.0, n)
    seen = np.zeros(n, dtype=bool)
    seen[np.random.default_rng(1).choice(n, n // 2, replace=False)] = True
    log_mu = np.where(seen, task.log_a, -np.inf)
    log_mu = log_mu - np.log(np.exp(log_mu).sum())
    return task, r, seen, log_mu


def _min_loss(r, log_mu):
    """The noise entropy Σ_{x≠y} q(x, y) H(σ(r(x) − r(y))), H the binary entropy: the population minimum."""
    mu = np.exp(log_mu)
    q = np.outer(mu, mu)
    np.fill_diagonal(q, 0.0)
    q /= q.sum()
    p = expit(r[:, None] - r[None, :])
    return float(np.sum(q * -(p * np.log(p) + (1 - p) * np.log1p(-p))))


def test_every_member_attains_the_minimum(setup):
    task, r, seen, log_mu = setup
    mset = dpo_minimiser_set(task.log_a, r, BETA, seen)
    floor = _min_loss(r, log_mu)
    rng = np.random.default_rng(2)
    for s in (0.05, 0.5, 0.999):
        nu = np.where(seen, -np.inf, rng.normal(0, 2, seen.size))
        nu = nu - np.log(np.exp(nu).sum())
        lp = mset.member(s, nu)
        assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-12) and mset.contains(lp)
        assert unseen_mass(lp, seen) == pytest.approx(1 - s, rel=1e-9)
        assert population_dpo_loss(lp, task.log_a, r, BETA, log_mu) == pytest.approx(floor, rel=1e-9)
        g = population_dpo_gradient(TabularPolicy.from_log_probs(task.space, lp), task.log_a, r, BETA, log_mu)
        assert np.abs(g).max() < 1e-10
    # the RLHF target is one member; moving mass within S leaves the set and raises the loss
    p = np.asarray(targets.rlhf(task.log_a, r, BETA).log_probs)
    assert mset.contains(p)
    off = p + np.where(seen, 0.3 * np.random.default_rng(3).normal(size=seen.size), 0.0)
    off -= np.log(np.exp(off).sum())
    assert not mset.contains(off) and population_dpo_loss(off, task.log_a, r, BETA, log_mu) > floor + 1e-6


def _dpo(policy, ref, data, steps=150, lr=0.05):
    opt = optim.get("adam", lr)
    theta, state = policy.params, opt.init(policy.params)
    for _ in range(steps):
        theta, state = opt.step(theta, dpo_gradient(policy.with_params(theta), ref, data, BETA), state)
    return policy.with_params(theta)


def test_tabular_logits_of_unseen_outputs_stay_put_while_shared_parameters_leak(setup):
    task, r, _, _ = setup
    data = collect_preferences(Rater(r), task.base, 15, np.random.default_rng(4))
    S = seen_outputs(data)
    assert 0 < S.sum() < S.size
    tab = TabularPolicy.from_log_probs(task.space, task.log_a)
    out = _dpo(tab, task.log_a, data)
    # θ_U: zero gradient in exact arithmetic (Σ of the pair weights is 0); Adam turns the 1e-17 rounding
    # of that sum into steps of at most ~lr·1e-17/ε, far below this tolerance
    np.testing.assert_allclose(out.params[~S], tab.params[~S], atol=1e-6)
    assert np.abs(out.params[S] - tab.params[S]).max() > 0.5
    ratio = np.log(np.exp(out.log_probs() - task.log_a)[~S])
    assert np.ptp(ratio) < 1e-5  # π(u)/π_ref(u): one common factor on U
    moved = {}
    for name, pol in (("bigram", NgramPolicy(task.space, 2, seed=0, init_scale=0.5)),
                      ("tinylm", TinyLM(task.space, seed=0))):
        ref = pol.log_probs()
        after = _dpo(pol, ref, data).log_probs()
        ratio = np.exp(after - ref)[~S]
        moved[name] = (unseen_mass(ref, S), unseen_mass(after, S), np.ptp(np.log(ratio)))
        assert np.ptp(np.log(ratio)) > 0.1, (name, moved[name])  # the shape of π on U changed too
    assert any(after > before + 0.05 for before, after, _ in moved.values()), moved  # mass leaks into U


def test_bad_input_is_refused(setup):
    task, r, seen, _ = setup
    with pytest.raises(ValueError, match="seen"):
        dpo_minimiser_set(task.log_a, r, BETA, np.zeros(seen.size, dtype=bool))
    mset = dpo_minimiser_set(task.log_a, r, BETA, seen)
    with pytest.raises(ValueError, match="mass_seen"):
        mset.member(0.0)
    with pytest.raises(ValueError, match="log_nu"):
        mset.member(0.5, task.log_a)
