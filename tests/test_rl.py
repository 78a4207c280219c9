"""toyfdiv.rl, the exact core: KL estimators × placement × level, advantages, per-token gradients, bad input.

Oracles: the f-DPG gradients of fdpg (reverse and forward KL), fdpg.rlhf_gradient, 4th-order
finite differences, closed forms of the advantages.
"""

import numpy as np
import pytest

from conftest import fd_gradient
from toyfdiv import SequenceSpace, fdpg, rl, rl_tasks, targets
from toyfdiv.policies import AutoregressivePolicy, TabularPolicy, TinyLM, TinyLMConfig

SPACE = SequenceSpace(["a", "b"], 3, "</s>")


def _pair(space=SPACE):
    pol = AutoregressivePolicy(space, seed=1, init_scale=1.0)
    log_a = AutoregressivePolicy(space, seed=2, init_scale=1.0).log_probs()
    return pol, log_a


def _kl_grads(pol, log_a):
    base = targets.rlhf(log_a, np.zeros(log_a.size), 1.0)  # p = a
    return fdpg.exact_gradient(pol, base, "reverse_kl"), fdpg.exact_gradient(pol, base, "forward_kl")


def _cos(x, y):
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


@pytest.mark.parametrize("level", rl.LEVELS)
def test_k1_as_loss_has_zero_expected_gradient(level):
    pol, log_a = _pair()
    g = rl.expected_kl_gradient(pol, log_a, "k1", "loss", level)
    assert np.linalg.norm(g) < 1e-10


def test_k2_as_sequence_loss_is_the_reverse_kl_gradient():
    pol, log_a = _pair()
    rev, _ = _kl_grads(pol, log_a)
    np.testing.assert_allclose(rl.expected_kl_gradient(pol, log_a, "k2", "loss"), rev, atol=1e-10)


def test_k3_as_sequence_loss_is_the_forward_kl_gradient():
    pol, log_a = _pair()
    _, fwd = _kl_grads(pol, log_a)
    np.testing.assert_allclose(rl.expected_kl_gradient(pol, log_a, "k3", "loss"), fwd, atol=1e-10)
    assert _cos(fwd, _kl_grads(pol, log_a)[0]) < 0.999  # and that is not the reverse KL's


@pytest.mark.parametrize("level", rl.LEVELS)
def test_k1_in_the_reward_is_the_exact_rlhf_gradient(level):
    """E_π[(−r + β k1) ∇ log π] = fdpg.rlhf_gradient = β × the reverse-KL f-DPG gradient to a e^{r/β}/Z."""
    pol, log_a = _pair()
    r, beta = np.linspace(-1, 1, SPACE.size), 0.3
    pg = pol.grad_log_prob_weighted(-pol.probs() * r) + beta * rl.expected_kl_gradient(pol, log_a, "k1", "reward",
                                                                                        level)
    np.testing.assert_allclose(pg, fdpg.rlhf_gradient(pol, r, log_a, beta), atol=1e-10)
    np.testing.assert_allclose(pg, beta * fdpg.exact_gradient(pol, targets.rlhf(log_a, r, beta), "reverse_kl"),
                               atol=1e-10)


@pytest.mark.parametrize("est", ["k1", "k3"])
def test_unbiased_estimators_reward_plus_loss_is_the_kl_gradient(est):
    """E_π[k] = KL(π‖a) for k1 and k3, so its full gradient (score part + pathwise part) is ∇KL(π‖a)."""
    pol, log_a = _pair()
    full = rl.expected_kl_gradient(pol, log_a, est, "reward") + rl.expected_kl_gradient(pol, log_a, est, "loss")
    np.testing.assert_allclose(full, _kl_grads(pol, log_a)[0], atol=1e-10)


@pytest.mark.parametrize("est", ["k2", "k3"])
def test_token_level_losses_are_a_partial_gradient(est):
    """Token-level k2/k3 as a loss: cosine to the exact KL gradient below 1 (reported), and equal to the
    finite-difference gradient of Σ_y π(y) Σ_t k(δ_t(y; θ)) with π(y) held fixed."""
    pol, log_a = _pair()
    rev, fwd = _kl_grads(pol, log_a)
    g = rl.expected_kl_gradient(pol, log_a, est, "loss", "token")
    exact = rev if est == "k2" else fwd
    cos = _cos(g, exact)
    print(f"token-level {est} loss: cosine to the exact {'reverse' if est == 'k2' else 'forward'} KL gradient "
          f"{cos:.4f}")
    assert 0.9 < cos < 1 - 1e-6
    pi = pol.probs()

    def surrogate(theta):
        return pi @ rl.kl_values(pol.with_params(theta), log_a, est, "token")
    np.testing.assert_allclose(g, fd_gradient(surrogate, pol.params), atol=1e-8)


def test_token_k1_sums_to_the_sequence_k1():
    pol, log_a = _pair()
    np.testing.assert_allclose(rl.kl_values(pol, log_a, "k1", "token"), pol.log_probs() - log_a, atol=1e-12)


def test_estimators_values_and_means():
    """k1 = δ, k2 = ½δ², k3 = e^{−δ} − 1 + δ ≥ 0; E_π[k1] = E_π[k3] = KL(π‖a) (scipy rel_entr)."""
    from scipy.special import rel_entr

    pol, log_a = _pair()
    pi, d = pol.probs(), pol.log_probs() - log_a
    kl = rel_entr(pi, np.exp(log_a)).sum()
    assert abs(pi @ rl.estimate(d, "k1") - kl) < 1e-12 and abs(pi @ rl.estimate(d, "k3") - kl) < 1e-12
    np.testing.assert_allclose(rl.estimate(d, "k2"), d**2 / 2)
    assert (rl.estimate(np.array([-30.0, -1e-9, 0.0, 1e-9, 30.0]), "k3") >= 0).all()


@pytest.mark.parametrize("model", ["autoregressive", "tinylm"])
def test_grad_log_cond_weighted_matches_finite_differences(model, small_space):
    pol = (AutoregressivePolicy(small_space, seed=0, init_scale=1.0) if model == "autoregressive"
           else TinyLM(small_space, TinyLMConfig(n_embd=3, n_hidden=4, seed=0)))
    rng = np.random.default_rng(0)
    W = [rng.standard_normal((lv.nodes, lv.choices)) for lv in small_space.levels]

    def f(theta):
        return sum((w * lc).sum() for w, lc in zip(W, pol.with_params(theta).log_conditionals()))
    np.testing.assert_allclose(pol.grad_log_cond_weighted(W), fd_gradient(f, pol.params), atol=1e-8)
    w = rng.standard_normal(small_space.size)  # and with the child masses it is the sequence-level gradient
    np.testing.assert_allclose(pol.grad_log_cond_weighted(small_space.child_mass(w)), pol.grad_log_prob_weighted(w),
                               atol=1e-12)


# ---------------------------------------------------------------- advantages
def test_advantages_closed_forms():
    R = np.array([[1.0, 0.0, 0.0, 1.0, 0.5], [2.0, 2.0, 2.0, 2.0, 2.0]])
    G = R.shape[1]
    loo = np.array([[R[g, i] - np.delete(R[g], i).mean() for i in range(G)] for g in range(2)])
    np.testing.assert_allclose(rl.group_advantages(R, "rloo"), loo, atol=1e-15)
    np.testing.assert_allclose(rl.group_advantages(R, "dr_grpo"), R - R.mean(axis=1, keepdims=True), atol=1e-15)
    grpo = rl.group_advantages(R, "grpo")
    np.testing.assert_allclose(grpo[0], (R[0] - R[0].mean()) / (R[0].std(ddof=1) + rl.GRPO_EPS))
    assert (grpo[1] == 0).all()  # equal rewards: no signal, no NaN
    pp = rl.group_advantages(R, "reinforce_pp")
    np.testing.assert_allclose(pp, (R - R.mean()) / (R.std() + rl.GRPO_EPS))
    np.testing.assert_allclose(rl.group_advantages(R, "remax", baseline=[0.5, 1.0]), R - [[0.5], [1.0]])
    np.testing.assert_array_equal(rl.group_advantages(R, "none"), R)


@pytest.mark.parametrize("G", [2, 3, 8, 64])
def test_rloo_is_G_over_G_minus_1_times_dr_grpo(G):
    R = np.random.default_rng(G).standard_normal((5, G))
    np.testing.assert_allclose(rl.group_advantages(R, "rloo"), G / (G - 1) * rl.group_advantages(R, "dr_grpo"),
                               atol=1e-12)


def test_greedy_index_is_the_argmax_path():
    pol = AutoregressivePolicy(SPACE, seed=5, init_scale=2.0)
    i = rl.greedy_index(pol)
    lc = pol.log_conditionals()
    toks = SPACE.tokens[i]
    node = 0
    for t, v in enumerate(toks[toks >= 0]):
        col = v if v < SPACE.n_vocab else lc[t].shape[1] - 1
        assert col == np.argmax(lc[t][node])
        node = node * SPACE.n_vocab + (v if v < SPACE.n_vocab else 0)


# ---------------------------------------------------------------- bad input
def test_bad_input_is_refused_with_the_allowed_values():
    R = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"method='ppo'.*allowed: \['none', 'rloo'"):
        rl.group_advantages(R, "ppo")
    for method in ("rloo", "grpo", "dr_grpo", "reinforce_pp"):
        with pytest.raises(ValueError, match=r"G=1.*G ≥ 2"):
            rl.group_advantages(np.zeros((3, 1)), method)
    pol, log_a = _pair()
    with pytest.raises(ValueError, match=r"estimator='k4'.*\['k1', 'k2', 'k3'\]"):
        rl.expected_kl_gradient(pol, log_a, "k4", "loss")
    with pytest.raises(ValueError, match=r"placement='advantage'.*\['reward', 'loss'\]"):
        rl.expected_kl_gradient(pol, log_a, "k1", "advantage")
    with pytest.raises(ValueError, match=r"level='word'.*\['sequence', 'token'\]"):
        rl.expected_kl_gradient(pol, log_a, "k1", "loss", "word")
    with pytest.raises(ValueError, match="token-level|per-token"):
        rl.expected_kl_gradient(TabularPolicy(SPACE, seed=0), log_a, "k2", "loss", "token")
    for eps in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"clip_high|must be finite"):
            rl.Algorithm("x", clip_high=eps)
    with pytest.raises(ValueError, match=r"name='trpo'.*allowed: \['reinforce'"):
        rl.preset("trpo")
    with pytest.raises(ValueError, match=r"aggregation='mean'.*allowed"):
        rl.Algorithm("x", aggregation="mean")
    task = rl_tasks.prompted((0.3,), vocab=2, length=3)
    with pytest.raises(ValueError, match=r"G=1.*G ≥ 2"):
        rl.expected_update(rl.preset("grpo"), task.base_policies(), task, 1)
    with pytest.raises(ValueError, match=r"mode='fast'.*allowed"):
        rl.expected_update(rl.preset("grpo"), task.base_policies(), task, 4, mode="fast")
    with pytest.raises(ValueError, match=r"reward='length'.*allowed"):
        rl_tasks.prompted(reward="length")
    with pytest.raises(ValueError, match=r"success="):
        rl_tasks.prompted((0.0, 0.5))
