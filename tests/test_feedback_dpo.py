"""DPO and f-DPO: gradients, closed forms, the population optimum, and excluded divergences."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from conftest import fd_gradient
from toyfdiv import SequenceSpace, divergences, targets, tasks
from toyfdiv.feedback import (Rater, check_divergence, collect_preferences, dpo_gradient, dpo_loss,
                              dpo_optimum, fdpo_gradient, fdpo_lambda, fdpo_loss, fdpo_optimum,
                              implicit_reward, pair_log_probs, population_dpo_gradient,
                              population_dpo_loss, population_fdpo_loss, train_dpo, train_fdpo)
from toyfdiv.policies import AutoregressivePolicy, TabularPolicy

FDPO_DIVERGENCES = ["reverse_kl", "forward_kl", "js", "alpha(0.5)"]
BETA = 0.7


def _div(name):
    return divergences.alpha(0.5) if name == "alpha(0.5)" else divergences.get(name)


@pytest.fixture(scope="module")
def small():
    """abc task (N = 81): base a, a reward r in BT units, and 400 preference pairs from a."""
    task = tasks.get("abc")
    rng = np.random.default_rng(0)
    r = rng.normal(0.0, 1.0, task.space.size)
    rater = Rater(r, temperature=1.0)
    data = collect_preferences(rater, task.base, 400, np.random.default_rng(1))
    return task.space, task.log_a, r, data


def _entropy_bound(r, log_mu):
    """min over π of the population loss: Σ_{x≠y} q(x,y) H(σ(r(x) − r(y))), the noise entropy."""
    q = np.exp(pair_log_probs(log_mu))
    p = expit(r[:, None] - r[None, :])
    return float(np.sum(q * -(p * np.log(p) + (1 - p) * np.log1p(-p))))


# ---------------------------------------------------------------------------- DPO
@pytest.mark.parametrize("policy_cls", [TabularPolicy, AutoregressivePolicy], ids=["tabular", "autoregressive"])
def test_dpo_gradient_matches_finite_differences(small, policy_cls):
    space, log_a, _, data = small
    pol = policy_cls(space, seed=3, init_scale=0.5)
    g = dpo_gradient(pol, log_a, data, BETA)
    fd = fd_gradient(lambda th: dpo_loss(pol.with_params(th), log_a, data, BETA), pol.params)
    assert np.allclose(g, fd, atol=1e-8, rtol=1e-6)


def test_dpo_loss_at_reference_is_log2(small):
    space, log_a, _, data = small
    assert dpo_loss(log_a, log_a, data, BETA) == pytest.approx(np.log(2), abs=1e-12)


def test_population_dpo_optimum_is_the_rlhf_target(small):
    """argmin_π L_pop(π) = π_ref·exp(r/β)/Z to 1e-6, by L-BFGS on a tabular policy."""
    space, log_a, r, _ = small
    log_mu = np.full(space.size, -np.log(space.size))  # pairs drawn uniformly (well conditioned)
    pol = TabularPolicy.from_log_probs(space, log_a)

    def fun(theta):
        p = pol.with_params(theta)
        return (population_dpo_loss(p, log_a, r, BETA, log_mu),
                population_dpo_gradient(p, log_a, r, BETA, log_mu))

    res = minimize(fun, pol.params, jac=True, method="L-BFGS-B",
                   options=dict(maxiter=10_000, ftol=0.0, gtol=1e-13, maxcor=30))
    log_pi = pol.with_params(res.x).log_probs()
    log_p = targets.rlhf(log_a, r, BETA).log_probs
    assert np.abs(log_pi - log_p).max() < 1e-6
    assert np.allclose(dpo_optimum(log_a, r, BETA), log_p, atol=1e-12)
    # optimality oracles: zero gradient at the closed form, and the loss equals the noise entropy
    star = TabularPolicy.from_log_probs(space, log_p)
    for mu in (log_mu, log_a):  # any full-support pair distribution, e.g. the base model's samples
        assert np.abs(population_dpo_gradient(star, log_a, r, BETA, mu)).max() < 1e-12
        assert population_dpo_loss(star, log_a, r, BETA, mu) == pytest.approx(_entropy_bound(r, mu), rel=1e-12)


def test_train_dpo_lowers_the_loss_and_records_the_gap(small):
    space, log_a, r, data = small
    log_p = targets.rlhf(log_a, r, BETA).log_probs
    res = train_dpo(AutoregressivePolicy.from_log_probs(space, log_a), log_a, data, BETA, steps=60, lr=0.05,
                    record_every=20, target_log_probs=log_p)
    assert res.step.tolist() == [0, 20, 40, 60]
    assert res.loss[0] == pytest.approx(np.log(2)) and np.all(np.diff(res.loss) < 0)
    # 400 pairs for 81 sequences: the finite-data loss keeps pulling observed margins apart,
    # so the distance to the RLHF target is recorded, not promised to shrink
    assert res.metrics["kl_to_target"].shape == (4,) and np.all(res.metrics["tv_to_target"] <= 1)


# ---------------------------------------------------------------------------- f-DPO
@pytest.mark.parametrize("name", FDPO_DIVERGENCES)
def test_fdpo_closed_form_is_stationary_and_normalised(small, name):
    _, log_a, r, _ = small
    div = _div(name)
    lam = fdpo_lambda(log_a, r, BETA, div)
    log_pi = fdpo_optimum(log_a, r, BETA, div)
    assert np.exp(log_pi).sum() == pytest.approx(1.0, abs=1e-10)
    # r(x) − β f'(π*(x)/π_ref(x)) − λ = 0 for every x
    stationarity = r - BETA * div.f_prime(np.exp(log_pi - log_a)) - lam
    assert np.abs(stationarity).max() < 1e-8
    # the implicit reward recovers r up to the constant λ
    assert np.allclose(implicit_reward(log_pi, log_a, BETA, div) + lam, r, atol=1e-8)
    # it is the population f-DPO minimiser: the loss reaches the noise entropy, and moving off it costs
    bound = _entropy_bound(r, log_a)
    assert population_fdpo_loss(log_pi, log_a, r, BETA, div, log_a) == pytest.approx(bound, rel=1e-9)
    off = log_pi + 0.05 * np.random.default_rng(2).standard_normal(log_pi.size)
    off -= np.log(np.exp(off).sum())
    assert population_fdpo_loss(off, log_a, r, BETA, div, log_a) > bound + 1e-6


def test_fdpo_reverse_kl_optimum_is_the_rlhf_target(small):
    _, log_a, r, _ = small
    assert np.allclose(fdpo_optimum(log_a, r, BETA, "reverse_kl"), targets.rlhf(log_a, r, BETA).log_probs, atol=1e-10)
    # λ = β log Z − β: Σ π_ref exp((r − λ)/β − 1) = 1
    assert fdpo_lambda(log_a, r, BETA, "reverse_kl") == pytest.approx(
        BETA * targets.rlhf(log_a, r, BETA).log_z - BETA, abs=1e-9)


def test_fdpo_with_reverse_kl_is_dpo(small):
    space, log_a, _, data = small
    for seed in range(3):
        pol = AutoregressivePolicy(space, seed=seed, init_scale=0.7)
        assert fdpo_loss(pol, log_a, data, BETA, "reverse_kl") == pytest.approx(dpo_loss(pol, log_a, data, BETA), rel=1e-13)
        assert np.allclose(fdpo_gradient(pol, log_a, data, BETA, "reverse_kl"), dpo_gradient(pol, log_a, data, BETA),
                           atol=1e-12)


@pytest.mark.parametrize("name", FDPO_DIVERGENCES)
def test_fdpo_gradient_matches_finite_differences(small, name):
    space, log_a, _, data = small
    pol = TabularPolicy(space, seed=4, init_scale=0.5)
    div = _div(name)
    g = fdpo_gradient(pol, log_a, data, BETA, div)
    fd = fd_gradient(lambda th: fdpo_loss(pol.with_params(th), log_a, data, BETA, div), pol.params)
    assert np.allclose(g, fd, atol=1e-8, rtol=1e-6)


def test_train_fdpo_runs(small):
    space, log_a, r, data = small
    res = train_fdpo(TabularPolicy.from_log_probs(space, log_a), log_a, data, BETA, "js", steps=30, lr=0.05,
                     record_every=10)
    assert res.loss[-1] < res.loss[0]


@pytest.mark.parametrize("name", ["tv", "pearson"])
def test_fdpo_refuses_divergences_with_bounded_f_prime(small, name):
    _, log_a, r, data = small
    with pytest.raises(ValueError, match=r"bounded as t → 0.*not interior.*not invertible"):
        check_divergence(name)
    with pytest.raises(ValueError, match="not allowed in f-DPO"):
        fdpo_optimum(log_a, r, BETA, name)
    with pytest.raises(ValueError, match="not allowed in f-DPO"):
        fdpo_loss(log_a, log_a, data, BETA, name)


def test_fdpo_suggests_exactly_the_divergences_it_accepts():
    import ast
    import re

    from toyfdiv import divergences

    with pytest.raises(ValueError) as err:
        check_divergence("tv")
    suggested = ast.literal_eval(re.search(r"use one of (\[.*?\])", str(err.value)).group(1))
    for name in suggested:  # every suggestion is accepted, and f'(0⁺) = −∞ for it (sympy-free: evaluate f')
        assert check_divergence(name).f_prime(1e-300) < -100
    unsuggested = {d.name for d in divergences.registered() if "(" not in d.name} - set(suggested)
    assert unsuggested == {"tv", "pearson"}


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan")], ids=["zero", "negative", "nan"])
def test_beta_must_be_positive(small, beta):
    space, log_a, r, data = small
    for call in (lambda: dpo_loss(log_a, log_a, data, beta),
                 lambda: dpo_optimum(log_a, r, beta),
                 lambda: fdpo_optimum(log_a, r, beta, "js"),
                 lambda: population_dpo_loss(log_a, log_a, r, beta)):
        with pytest.raises(ValueError, match="beta"):
            call()


def test_dataset_from_another_space_is_refused(small):
    _, log_a, _, data = small
    other = SequenceSpace(["a", "b"], 3)
    with pytest.raises(ValueError, match="space of 81 sequences"):
        dpo_loss(np.full(other.size, -np.log(other.size)), np.full(other.size, -np.log(other.size)), data, BETA)


def test_bad_input_audit():
    task = tasks.get("abc")
    la, pol = task.log_a, task.base
    data = collect_preferences(Rater(task.reward.values, 1.0), pol, 20, np.random.default_rng(0))
    for call, match in [(lambda: dpo_loss(pol, la, None, 1.0), r"dataset=None must be a PreferenceDataset"),
                        (lambda: dpo_loss(None, la, data, 1.0), r"policy=None"),
                        (lambda: fdpo_loss(pol, la, None, 1.0, "js"), r"dataset=None must be a PreferenceDataset"),
                        (lambda: fdpo_gradient(la, la, data, 1.0), r"policy=array"),
                        (lambda: population_dpo_gradient(None, la, task.reward.values, 1.0), r"policy=None"),
                        (lambda: train_dpo(None, la, data, 1.0, 2), r"policy=None"),
                        (lambda: train_dpo(pol, la, data, 1.0, 2, loss=5), r"loss=5")]:
        with pytest.raises(ValueError, match=match):
            call()
