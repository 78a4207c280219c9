"""toyfdiv.collapse: RL fixed points per prompt and with a shared adapter, and where pass@k is lost.

Oracles: central finite differences of the RLHF objective (the shared adapter's chain rule), an
independent minimiser (scipy L-BFGS on Σ_c ρ KL(π_θ(·|c) ‖ p_c)) for the shared fixed point, the
closed-form RLHF target per prompt, Monte Carlo with a fixed seed against the exact pass@k, and the
pass@k theorem of toyfdiv.diversity.
"""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import rel_entr

from toyfdiv import claims, collapse, rl, rl_tasks, targets
from toyfdiv.diversity import regularised_target

BETA = 0.3


@pytest.fixture(scope="module")
def task():
    return rl_tasks.prompted(success=(0.05, 0.6), vocab=2, length=3)  # hard prompt "0", easy prompt "1"


def _objective(adapter, task, beta):
    """Σ_c ρ(c) (E_π[r] − β KL(π_c ‖ a_c)), by enumeration."""
    lp = adapter.log_probs()
    pi = np.exp(lp)
    per = (pi * task.reward).sum(1) - beta * rel_entr(pi, np.exp(task.log_a)).sum(1)
    return float(np.exp(task.log_rho) @ per)


def test_shared_adapter_gradient_is_the_finite_difference(task):
    alg = rl.preset("reinforce", beta=BETA)  # k1 in the reward: the exact RLHF gradient
    theta = np.random.default_rng(0).normal(size=task.space.n_logits)
    ad = collapse.SharedAdapter.at_base(task).with_params(theta)
    g = ad.pull_back(rl.expected_update(alg, ad, task, 4, mode="exact").gradient)
    h, fd = 1e-4, np.zeros_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        f = [_objective(ad.with_params(theta + s * e), task, BETA) for s in (2, 1, -1, -2)]
        fd[i] = -(-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h)  # minus: the gradient of what is minimised
    np.testing.assert_allclose(g, fd, atol=1e-9)


def test_per_prompt_fixed_point_is_the_rlhf_target(task):
    fp = collapse.rl_fixed_point(rl.preset("reinforce", beta=BETA), task, 4, shared=False, steps=100)
    assert fp.converged and fp.grad_norm < 1e-9 and not fp.shared
    want = np.stack([regularised_target(la, r, BETA) for la, r in zip(task.log_a, task.reward)])
    np.testing.assert_allclose(np.exp(fp.log_probs), np.exp(want), atol=1e-8)


def test_shared_fixed_point_is_the_independent_minimiser(task):
    fp = collapse.rl_fixed_point(rl.preset("reinforce", beta=BETA), task, 4, shared=True, steps=100)
    assert fp.converged and fp.shared
    start = collapse.SharedAdapter.at_base(task)
    res = minimize(lambda th: -_objective(start.with_params(th), task, BETA), np.zeros(task.space.n_logits),
                   method="L-BFGS-B", options=dict(ftol=1e-15, gtol=1e-11, maxiter=2000))  # finite-difference gradient
    np.testing.assert_allclose(np.exp(fp.log_probs), np.exp(start.with_params(res.x).log_probs()), atol=2e-5)


def test_polish_finds_the_rlhf_target_where_the_loop_alone_stops_short(task):
    """rl.fixed_point(polish=True): 20 Adam steps leave the update far from zero (a FixedPointWarning, both a
    ConvergenceWarning and a RuntimeWarning); the root finder then lands on the closed-form a·e^{r/β}/Z."""
    alg, opts = rl.preset("reinforce", beta=BETA), dict(steps=20, lr=0.1, optimizer="adam", check_every=20)
    with pytest.warns(targets.ConvergenceWarning, match="did not converge in 20 steps") as caught:
        short = rl.fixed_point(alg, task, 4, **opts)
    assert all(issubclass(w.category, RuntimeWarning) for w in caught) and short.grad_norm > 1e-4
    fp = rl.fixed_point(alg, task, 4, polish=True, **opts)
    want = np.stack([regularised_target(la, r, BETA) for la, r in zip(task.log_a, task.reward)])
    assert fp.converged and fp.grad_norm < 1e-10 and fp.steps == 20
    np.testing.assert_allclose(np.exp(fp.log_probs), np.exp(want), atol=1e-8)
    with pytest.raises(ValueError, match="polish=True with mode='mc'"):
        rl.fixed_point(alg, task, 4, polish=True, mode="mc")


def test_rl_fixed_point_is_the_documented_composition(task):
    """collapse.rl_fixed_point(shared=True) = rl.fixed_point(start=SharedAdapter, Adam, check_every=steps, polish)."""
    alg = rl.preset("grpo", beta=0.05)
    fp = collapse.rl_fixed_point(alg, task, 4, shared=True, steps=30)
    same = rl.fixed_point(alg, task, 4, start=rl.SharedAdapter.at_base(task), steps=30, lr=0.1, tol=1e-9,
                          optimizer="adam", check_every=30, polish=True)
    np.testing.assert_array_equal(fp.log_probs, same.log_probs)
    assert fp.grad_norm == same.grad_norm and fp.converged == same.converged and collapse.SharedAdapter is rl.SharedAdapter


def test_grpo_small_beta_keeps_pass_at_k_per_prompt_and_loses_it_shared(task):
    alg = rl.preset("grpo", beta=0.02)
    per = collapse.rl_fixed_point(alg, task, 4, shared=False, steps=60)
    sh = collapse.rl_fixed_point(alg, task, 4, shared=True, steps=60)
    assert per.converged and sh.converged
    correct = task.reward >= 1
    pc = lambda lp: (np.exp(lp) * correct).sum(1)  # noqa: E731
    assert np.all(pc(per.log_probs) >= task.base_success)  # per prompt: never below a (module docstring)
    assert pc(sh.log_probs)[0] < 0.1 * task.base_success[0]  # shared: the hard prompt is traded away
    ks = 2 ** np.arange(11)
    base = collapse.average_pass_at_k(task.log_a, task, ks)
    v_per, s_per = claims.pass_at_k_crossing(ks, base, collapse.average_pass_at_k(per.log_probs, task, ks))
    v_sh, s_sh = claims.pass_at_k_crossing(ks, base, collapse.average_pass_at_k(sh.log_probs, task, ks), "shared")
    assert v_per == "never below" and v_sh == "crosses", (s_per, s_sh)
    assert "from k = 4" in s_sh  # base: ½(1 − 0.95⁴) + ½(1 − 0.4⁴) = 0.58 > shared ≈ 0.50


@pytest.mark.parametrize("name", ["reinforce", "rloo", "remax", "ppo", "grpo"])
def test_per_prompt_fixed_points_never_lose_p_correct(task, name):
    """The module docstring's claim, for every preset with a KL term (its first-epoch expected update)."""
    fp = collapse.rl_fixed_point(rl.preset(name, beta=0.05), task, 4, shared=False, steps=60)
    assert fp.converged
    p = (np.exp(fp.log_probs) * (task.reward >= 1)).sum(1)
    assert np.all(p >= task.base_success - 1e-12), p


def test_average_pass_at_k_and_distinct_against_monte_carlo(task):
    rng = np.random.default_rng(7)
    k, trials = 4, 20_000
    rho = np.exp(task.log_rho)
    prompts = rng.choice(len(rho), size=trials, p=rho)
    solved, distinct = np.zeros(trials), np.zeros(trials)
    for c in range(len(rho)):
        sel = prompts == c
        draws = rng.choice(task.space.size, size=(sel.sum(), k), p=np.exp(task.log_a[c]))
        ok = task.reward[c][draws] >= 1
        solved[sel] = ok.any(1)
        distinct[sel] = [len(set(d[o])) for d, o in zip(draws, ok)]
    for exact, mc in ((collapse.average_pass_at_k(task.log_a, task, [k])[0], solved),
                      (collapse.average_distinct_correct(task.log_a, task, [k])[0], distinct)):
        assert abs(mc.mean() - exact) < 4 * mc.std() / np.sqrt(trials)


@pytest.mark.parametrize("base, trained, verdict", [
    ([0.3, 0.6, 0.9], [0.5, 0.55, 0.6], "crosses"),
    ([0.3, 0.6, 0.9], [0.2, 0.5, 0.8], "below"),
    ([0.3, 0.6, 0.9], [0.5, 0.597, 0.896], "never below"),  # within PASS_TIE: ties, not a loss
], ids=["crosses", "below", "tie"])
def test_crossing_claim(base, trained, verdict):
    v, s = claims.pass_at_k_crossing([1, 4, 16], base, trained)
    assert v == verdict, s
    assert str(claims.PASS_TIE) in s


def test_bad_input(task):
    with pytest.raises(ValueError, match="ks="):
        collapse.average_pass_at_k(task.log_a, task, [0, 2])
    with pytest.raises(ValueError, match="log_pi has shape"):
        collapse.average_pass_at_k(task.log_a[0], task, [1])
    with pytest.raises(ValueError, match="shared="):
        collapse.rl_fixed_point(rl.preset("grpo"), task, shared="yes")
    with pytest.raises(ValueError, match="alg="):
        collapse.rl_fixed_point("grpo", task)
    with pytest.raises(ValueError, match="theta has shape"):
        collapse.SharedAdapter.at_base(task).with_params(np.zeros(2))
    with pytest.raises(ValueError, match="theta has shape"):
        collapse.SharedAdapter.at_base(task).with_params(np.full(task.space.n_logits, np.nan))
    with pytest.raises(ValueError, match="space="):
        collapse.SharedAdapter("space", np.zeros((1, 3)))
    with pytest.raises(ValueError, match="task="):
        collapse.SharedAdapter.at_base("task")
    with pytest.raises(ValueError, match="ks="):
        claims.pass_at_k_crossing([4, 1], [0.1, 0.2], [0.1, 0.2])
    with pytest.raises(ValueError, match="beta"):
        collapse.collapse_study(task, rl.preset("grpo"), -1.0)
