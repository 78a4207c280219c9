"""The prompted TinyLM: one network for every prompt (h_0 per prompt), its pull-back against finite
differences, the exact RLHF gradient through make_update against finite differences of the objective,
and RL presets trained on it through the one loop."""

import numpy as np
import pytest

from conftest import fd_gradient
from toyfdiv import rl, rl_tasks
from toyfdiv.policies import TinyLMConfig
from toyfdiv.training import optimise

TASK = rl_tasks.prompted((0.2, 0.6), vocab=2, length=3)  # N = 7, two prompts
CONFIG = TinyLMConfig(n_embd=2, n_hidden=3, seed=1)


def _model():
    start = rl.PromptedTinyLM(TASK.space, 2, CONFIG)
    theta = start.params + 0.3 * np.random.default_rng(0).standard_normal(start.n_params)  # h_0 rows differ
    return start.with_params(theta)


def test_pull_back_is_the_gradient_with_respect_to_the_shared_parameters():
    model = _model()
    w = np.random.default_rng(1).standard_normal((2, TASK.space.size))
    g = model.pull_back(np.concatenate([p.grad_log_prob_weighted(wc) for p, wc in zip(model.policies, w)]))
    fd = fd_gradient(lambda th: float(np.sum(w * model.with_params(th).log_probs())), model.params, h=1e-5)
    np.testing.assert_allclose(g, fd, atol=1e-8)
    lp = model.log_probs()
    assert np.abs(lp[0] - lp[1]).max() > 1e-3  # the prompts differ only through h_0


def test_reinforce_with_k1_in_the_reward_is_the_exact_rlhf_gradient_on_the_shared_network():
    """make_update pulls the per-prompt expected updates back onto θ: = ∇θ −Σ_c ρ(c)(E_π[r] − β KL(π_c‖a_c))."""
    beta = 0.3
    model = _model()
    g, _ = rl.make_update(rl.preset("reinforce", beta=beta), TASK, 4)(model, np.random.default_rng(0))

    def objective(th):
        lp = model.with_params(th).log_probs()
        pi = np.exp(lp)
        return -float(np.exp(TASK.log_rho) @ ((pi * (TASK.reward - beta * (lp - TASK.log_a))).sum(axis=1)))

    np.testing.assert_allclose(g, fd_gradient(objective, model.params, h=1e-5), atol=1e-8)


def test_rl_presets_train_the_shared_network_through_the_one_loop():
    base = rl.PromptedTinyLM.fit(TASK, CONFIG, steps=150, lr=0.05)
    fit_kl = max(float(np.sum(np.exp(TASK.log_a[c]) * (TASK.log_a[c] - base.log_probs()[c]))) for c in range(2))
    before = rl.summary(base, TASK)["reward"]
    grpo = optimise(base, rl.make_update(rl.preset("grpo"), TASK, 4), steps=30, lr=0.1, optimizer="adam",
                    label="grpo on a prompted TinyLM").policy
    ppo = optimise(base, rl.make_update(rl.preset("ppo"), TASK, 4, estimator="sampled"), steps=40, lr=0.05,
                   optimizer="adam", seed=0, label="ppo on a prompted TinyLM").policy
    after = {name: rl.summary(m, TASK)["reward"] for name, m in (("grpo", grpo), ("ppo", ppo))}
    print(f"\nprompted TinyLM: fit KL(a‖π) ≤ {fit_kl:.3f}; E[r] {before:.3f} → GRPO (expected, 30 steps) "
          f"{after['grpo']:.3f}, PPO (sampled, 40 steps) {after['ppo']:.3f}")
    assert fit_kl < 0.1
    assert after["grpo"] > before + 0.05 and after["ppo"] > before + 0.02


@pytest.mark.parametrize("call,match", [
    (lambda: rl.PromptedTinyLM(TASK.space, 0), "n_prompts"),
    (lambda: rl.PromptedTinyLM(TASK.space, 2, CONFIG, params=np.zeros(3)), "params"),
    (lambda: _model().pull_back(np.zeros(5)), "per_prompt_gradient"),
    (lambda: rl.PromptedTinyLM(TASK.space, 2, config="small"), "config"),
])
def test_prompted_tinylm_refuses_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_fixed_point_trains_a_shared_network_as_itself():
    """fixed_point(start=PromptedTinyLM) follows the pulled-back exact expected update: 40 SGD steps of it are
    40 steps of the one loop on make_update (same parameters to 1e-12), and the network keeps its sharing."""
    base = _model()
    alg = rl.Algorithm("rloo-k3", "rloo", "seq_sum", "k3", "loss", "sequence", 0.5)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        fp = rl.fixed_point(alg, TASK, 4, start=base, steps=40, lr=0.5, check_every=20)
    direct = optimise(base, rl.make_update(alg, TASK, 4), steps=40, lr=0.5, optimizer="sgd").policy
    np.testing.assert_allclose(np.concatenate([p.params for p in fp.policies]),
                               np.concatenate([p.params for p in direct.policies]), atol=1e-12)
    first = rl.make_update(alg, TASK, 4)(base, None)[0]
    assert fp.grad_norm < 0.5 * np.linalg.norm(first)  # the update shrinks along the way


def test_h0_slice_is_the_initial_state():
    """The first token's conditional is softmax(W_o h_0 + b_o), with W_o, b_o right after h_0 in θ: read at
    h0_slice it matches the TinyLM's own root conditional, and only those blocks move it."""
    from scipy.special import log_softmax

    from toyfdiv.policies import TinyLM

    lm = TinyLM(TASK.space, CONFIG, seed=2)
    theta = lm.params + np.random.default_rng(3).standard_normal(lm.n_params)
    lm = lm.with_params(theta)
    sl, P = rl.shared.h0_slice(TASK.space, CONFIG)
    H, K = CONFIG.n_hidden, TASK.space.n_vocab + 1
    h0, Wo, bo = theta[sl], theta[sl.stop:sl.stop + H * K].reshape(H, K), theta[sl.stop + H * K:]
    np.testing.assert_allclose(lm.log_conditionals()[0][0], log_softmax(h0 @ Wo + bo), atol=1e-12)
    before = theta[: sl.start] + 1.0
    moved = lm.with_params(np.concatenate([before, theta[sl.start:]])).log_conditionals()[0][0]
    np.testing.assert_allclose(moved, lm.log_conditionals()[0][0], atol=1e-14)  # E, W_x, b_x, W_h, b_hn: not the root
