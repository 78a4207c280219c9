"""IPO: loss and gradient (finite differences), the population optimum, and the 3-output example
where DPO's regularisation vanishes while IPO settles at softmax(1/(4τ), −1/(4τ), 0)."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_softmax, softmax

from conftest import fd_gradient
from toyfdiv import SequenceSpace, optim, tasks
from toyfdiv.feedback import (PreferenceDataset, Rater, collect_preferences, dpo_gradient, dpo_loss)
from toyfdiv.feedback.ipo import (bt_preferences, ipo_dataset_optimum, ipo_gradient, ipo_loss, ipo_optimum,
                                  ipo_update, population_ipo_gradient, population_ipo_loss, win_rates)
from toyfdiv.policies import AutoregressivePolicy, TabularPolicy

TAU = 0.5


@pytest.fixture(scope="module")
def small():
    task = tasks.get("abc", length=3)
    rng = np.random.default_rng(0)
    r = rng.normal(0.0, 1.0, task.space.size)
    data = collect_preferences(Rater(r), task.base, 300, np.random.default_rng(1))
    return task.space, task.log_a, r, data


def _three():
    space = SequenceSpace(["a", "b", "c"], length=1)
    data = PreferenceDataset(np.array([0]), np.array([1]), 3)
    return space, np.log(np.full(3, 1 / 3)), data


def _run(policy, grad_fn, steps, lr, optimizer="sgd", keep=()):
    """Plain full-batch descent θ ← opt(θ, ∇θ L), the update rule of the one training loop;
    returns the final policy, or the policies after each step count in ``keep``."""
    opt = optim.get(optimizer, lr)
    theta, state = policy.params, opt.init(policy.params)
    kept = []
    for k in range(1, steps + 1):
        theta, state = opt.step(theta, grad_fn(policy.with_params(theta)), state)
        if k in keep:
            kept.append(policy.with_params(theta))
    return kept if keep else policy.with_params(theta)


def test_ipo_loss_matches_the_textbook_sum(small):
    space, log_a, _, data = small
    pol = AutoregressivePolicy(space, seed=3, init_scale=0.5)
    h = pol.log_probs() - log_a
    want = np.mean((h[data.winners] - h[data.losers] - 1 / (2 * TAU)) ** 2)
    assert ipo_loss(pol, log_a, data, TAU) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("cls", [TabularPolicy, AutoregressivePolicy], ids=["tabular", "autoregressive"])
def test_ipo_gradient_matches_finite_differences(small, cls):
    space, log_a, _, data = small
    pol = cls(space, seed=2, init_scale=0.3)
    fd = fd_gradient(lambda th: ipo_loss(pol.with_params(th), log_a, data, TAU), pol.params)
    np.testing.assert_allclose(ipo_gradient(pol, log_a, data, TAU), fd, atol=1e-7, rtol=1e-6)
    grad, diag = ipo_update(log_a, data, TAU)(pol, np.random.default_rng(0))
    np.testing.assert_array_equal(grad, ipo_gradient(pol, log_a, data, TAU))
    assert diag["loss"] == ipo_loss(pol, log_a, data, TAU)


def test_population_loss_is_the_labelled_expectation_minus_a_constant(small):
    """Σ q [P (Δ − c)² + (1 − P)(Δ + c)²] − (c²) Σ q (1 − (2P − 1)²) = the centred form, c = 1/(2τ)."""
    space, log_a, r, _ = small
    P = bt_preferences(r)
    mu = softmax(np.random.default_rng(5).normal(size=space.size))
    q = np.outer(mu, mu)
    c = 1 / (2 * TAU)
    for seed in range(3):
        lp = log_softmax(np.random.default_rng(seed).normal(size=space.size))
        d = (lp - log_a)[:, None] - (lp - log_a)[None, :]
        labelled = np.sum(q * (P * (d - c) ** 2 + (1 - P) * (d + c) ** 2))
        const = c**2 * np.sum(q * (1 - (2 * P - 1) ** 2))
        got = population_ipo_loss(lp, log_a, P, TAU, np.log(mu))
        assert got == pytest.approx(labelled - const, rel=1e-10)


def test_population_gradient_matches_finite_differences_and_vanishes_at_the_optimum(small):
    space, log_a, r, _ = small
    P = bt_preferences(r)
    log_mu = log_softmax(np.random.default_rng(7).normal(size=space.size))
    pol = TabularPolicy(space, seed=1, init_scale=0.5)
    fd = fd_gradient(lambda th: population_ipo_loss(pol.with_params(th), log_a, P, TAU, log_mu), pol.params)
    np.testing.assert_allclose(population_ipo_gradient(pol, log_a, P, TAU, log_mu), fd, atol=1e-7, rtol=1e-6)
    star = ipo_optimum(log_a, win_rates(P, log_mu), TAU)
    g = population_ipo_gradient(TabularPolicy.from_log_probs(space, star), log_a, P, TAU, log_mu)
    assert np.abs(g).max() < 1e-10
    # an independent optimiser over θ finds the same minimum value
    res = minimize(lambda th: (population_ipo_loss(log_softmax(th), log_a, P, TAU, log_mu),
                               population_ipo_gradient(TabularPolicy(space, params=th), log_a, P, TAU, log_mu)),
                   log_a, jac=True, method="L-BFGS-B", options=dict(ftol=1e-15, gtol=1e-12, maxiter=5000))
    assert population_ipo_loss(star, log_a, P, TAU, log_mu) <= res.fun + 1e-9
    np.testing.assert_allclose(np.exp(log_softmax(res.x)), np.exp(star), atol=1e-5)


def test_three_outputs_ipo_settles_where_dpo_runs_away():
    """One pair a ≻ b, uniform reference: IPO → softmax(1/(4τ), −1/(4τ), 0); DPO → π_a = 1 at every β."""
    space, log_ref, data = _three()
    want = softmax([1 / (4 * TAU), -1 / (4 * TAU), 0.0])
    np.testing.assert_allclose(want, [0.506, 0.186, 0.307], atol=5e-4)  # the numbers at τ = 0.5
    np.testing.assert_allclose(np.exp(ipo_dataset_optimum(log_ref, data, TAU)), want, atol=1e-12)
    # the same point as the population optimum with μ = the data's items and p(c ≻ ·) = ½ (no information)
    P = np.array([[0.5, 1.0, 0.5], [0.0, 0.5, 0.5], [0.5, 0.5, 0.5]])
    w = P @ np.array([0.5, 0.5, 0.0])
    np.testing.assert_allclose(np.exp(ipo_optimum(log_ref, w, TAU)), want, atol=1e-12)
    pol = _run(TabularPolicy.from_log_probs(space, log_ref), lambda p: ipo_gradient(p, log_ref, data, TAU), 400, 0.1)
    np.testing.assert_allclose(pol.probs(), want, atol=1e-9)
    assert ipo_loss(pol, log_ref, data, TAU) < 1e-18
    for beta in (0.1, 0.3, 1.0):  # (at large β the push β σ(−β Δ) is real but tiny: Δ grows like log(t)/β)
        runs = _run(TabularPolicy.from_log_probs(space, log_ref), lambda p: dpo_gradient(p, log_ref, data, beta),
                    2000, 0.5, "adam", keep=(100, 1000, 2000))
        margin = [p.log_probs()[0] - p.log_probs()[1] for p in runs]  # log π_a/π_b keeps growing
        assert margin[0] < margin[1] < margin[2], (beta, margin)
        assert runs[-1].probs()[0] > 0.99 and runs[-1].probs()[2] < 0.01
    for beta in (0.1, 1.0, 10.0):
        # no stationary point: along the ray θ = (s, −s, 0) the loss −log σ(2βs) > 0 keeps falling, to π → (1, 0, 0)
        for s in (0.5, 2.0, 4.0):
            pt = TabularPolicy(space, params=np.array([s, -s, 0.0]))
            assert dpo_loss(pt, log_ref, data, beta) == pytest.approx(-np.log(expit(2 * beta * s)), rel=1e-12)
            assert dpo_gradient(pt, log_ref, data, beta) @ np.array([1.0, -1.0, 0.0]) < 0


def test_dataset_optimum_is_the_min_norm_least_squares_solution(small):
    space, log_a, _, data = small
    B = np.zeros((len(data), space.size))
    B[np.arange(len(data)), data.winners] += 1
    B[np.arange(len(data)), data.losers] -= 1
    delta = np.linalg.pinv(B) @ np.full(len(data), 1 / (2 * TAU))
    np.testing.assert_allclose(np.exp(ipo_dataset_optimum(log_a, data, TAU)), softmax(log_a + delta), atol=1e-9)
    pol = _run(TabularPolicy.from_log_probs(space, log_a), lambda p: ipo_gradient(p, log_a, data, TAU), 3000, 2.0)
    np.testing.assert_allclose(pol.probs(), softmax(log_a + delta), atol=1e-6)


def test_bad_input_is_refused(small):
    space, log_a, r, data = small
    with pytest.raises(ValueError, match="tau"):
        ipo_loss(log_a, log_a, data, 0.0)
    with pytest.raises(ValueError, match="preference"):
        population_ipo_loss(log_a, log_a, np.ones((space.size, space.size)), TAU)
    with pytest.raises(ValueError, match="win_rate"):
        ipo_optimum(log_a, np.full(space.size, 2.0), TAU)
    with pytest.raises(ValueError, match="tau"):
        ipo_update(log_a, data, -1)


def test_training_through_the_one_loop_reaches_the_closed_form():
    """train_po (toyfdiv.training.optimise with ipo_update) from π_ref ends at softmax(1/(4τ), −1/(4τ), 0)."""
    from toyfdiv.feedback import train_po

    space, log_ref, data = _three()
    want = softmax([1 / (4 * TAU), -1 / (4 * TAU), 0.0])
    hist = train_po(TabularPolicy.from_log_probs(space, log_ref), "ipo", log_ref, data, TAU, steps=400, lr=0.1,
                    optimizer="sgd", target_log_probs=np.log(want))
    np.testing.assert_allclose(hist.policy.probs(), want, atol=1e-9)
    assert hist.metrics["tv_to_target"][-1] < 1e-9 < hist.metrics["tv_to_target"][0]
    assert hist.loss[-1] < 1e-18 and hist.divergence == "ipo"
    with pytest.raises(ValueError, match="method"):
        train_po(TabularPolicy.from_log_probs(space, log_ref), "ppo", log_ref, data, TAU)
    with pytest.raises(ValueError, match="clip"):
        train_po(TabularPolicy.from_log_probs(space, log_ref), "ipo", log_ref, data, TAU, clip=1.0)
