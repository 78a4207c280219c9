"""toyfdiv.rl.batched: S one-token policies at once, each row held against the Policy path (sampling,
masses, PPO's clipped gradient), and the clip-entropy study against a run of Policy objects."""

import numpy as np
import pytest
from scipy.special import log_softmax

from conftest import fd_gradient
from toyfdiv import rl
from toyfdiv.policies import AutoregressivePolicy
from toyfdiv.rl import batched, ppo
from toyfdiv.space import SequenceSpace

SPACE = SequenceSpace(["0", "1", "2", "3"], 1)  # one token: π = softmax(θ), θ (4,)
RNG = np.random.default_rng(5)
Z = RNG.standard_normal((6, 4))  # six runs' logits
LOG_OLD = log_softmax(Z, axis=1)
LOG_NEW = log_softmax(Z + 0.4 * RNG.standard_normal(Z.shape), axis=1)


def _policy(log_pi):
    return AutoregressivePolicy.from_log_probs(SPACE, log_pi)


def test_sample_rows_are_successive_policy_samples():
    got = batched.sample_rows(LOG_OLD, 9, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    want = np.stack([_policy(lp).sample(9, rng) for lp in LOG_OLD])
    np.testing.assert_array_equal(got, want)


def test_response_masses_are_per_row_bincounts():
    idx = batched.sample_rows(LOG_OLD, 7, np.random.default_rng(2))
    w = np.random.default_rng(3).standard_normal(idx.shape)
    got = batched.response_masses(idx, w, 4)
    np.testing.assert_array_equal(got, np.stack([np.bincount(i, weights=v, minlength=4) for i, v in zip(idx, w)]))


@pytest.mark.parametrize("lo,hi", [(0.2, 0.28), (None, 0.1), (0.1, None), (None, None)])
def test_clipped_logit_gradient_rows_equal_the_policy_path_and_finite_differences(lo, hi):
    idx = batched.sample_rows(LOG_OLD, 8, np.random.default_rng(4))
    sA = np.random.default_rng(6).standard_normal(idx.shape) / 8
    m_pos, m_neg = batched.response_masses(idx, np.maximum(sA, 0), 4), batched.response_masses(idx, np.minimum(sA, 0), 4)
    g = batched.clipped_logit_gradient(LOG_NEW, LOG_OLD, m_pos, m_neg, lo, hi)
    for s in range(len(Z)):
        new, old = _policy(LOG_NEW[s]), _policy(LOG_OLD[s])
        np.testing.assert_allclose(g[s], rl.clipped_gradient(new, old, m_pos[s], m_neg[s], lo, hi), atol=1e-12)
        fd = fd_gradient(lambda th: ppo.clipped_surrogate(new.with_params(th), old, idx[s], sA[s], lo, hi),
                         new.params, h=1e-6)
        np.testing.assert_allclose(g[s], fd, atol=1e-7)


def _study_on_policies(log_pi0, G, epochs, steps, lr, seeds, lo, hi, seed=0):
    """The clip study run by Policy objects, one run at a time: Policy.sample, group_advantages,
    clipped_gradient, with_params (the oracle for the batched study)."""
    out = {}
    for name, (l, h) in {"none": (None, None), "clip_low": (lo, None), "clip_high": (None, hi), "both": (lo, hi)}.items():
        rng = np.random.default_rng(seed)
        pols = [_policy(log_pi0)] * seeds
        for _ in range(steps):
            olds = list(pols)
            ys = [p.sample(G, rng) for p in olds]
            sA = rl.group_advantages((rng.random((seeds, G)) < 0.5).astype(float), "grpo") / G
            for _ in range(epochs):
                pols = [p.with_params(p.params - lr * rl.clipped_gradient(
                    p, o, np.bincount(y, np.maximum(a, 0), 4), np.bincount(y, np.minimum(a, 0), 4), l, h))
                    for p, o, y, a in zip(pols, olds, ys, sA)]
        out[name] = np.array([-(p.probs() @ p.log_probs()) for p in pols])
    return out


def test_clip_entropy_study_equals_runs_of_policy_objects():
    log_pi0 = np.log([0.7, 0.1, 0.1, 0.1])
    study = rl.clip_entropy_study(log_pi0, G=4, epochs=3, steps=4, lr=1.0, seeds=5, eps_low=0.2, eps_high=0.2)
    oracle = _study_on_policies(log_pi0, 4, 3, 4, 1.0, 5, 0.2, 0.2)
    for name, H in oracle.items():
        np.testing.assert_allclose(study.entropy[name], H, atol=1e-12)
    assert np.ptp([study.entropy[k].mean() for k in oracle]) > 1e-3  # the clipping acted


@pytest.mark.parametrize("call,match", [
    (lambda: batched.sample_rows(LOG_OLD + 1.0, 3, np.random.default_rng(0)), "log_pi"),
    (lambda: batched.sample_rows(LOG_OLD[0], 3, np.random.default_rng(0)), "log_pi has shape"),
    (lambda: batched.sample_rows(LOG_OLD, 0, np.random.default_rng(0)), "n=0"),
    (lambda: batched.response_masses(np.array([[0, 4]]), np.ones((1, 2)), 4), "idx"),
    (lambda: batched.response_masses(np.array([[0, 1]]), np.ones((1, 3)), 4), "weights"),
    (lambda: batched.clipped_logit_gradient(LOG_NEW, LOG_OLD, -np.ones((6, 4)), np.zeros((6, 4)), 0.2, 0.2),
     "m_pos"),
    (lambda: batched.clipped_logit_gradient(LOG_NEW, LOG_OLD, np.zeros((6, 4)), np.zeros((6, 4)), 1.5, 0.2),
     "clip_low"),
    (lambda: batched.clipped_logit_gradient(LOG_NEW, LOG_OLD[:2], np.zeros((6, 4)), np.zeros((6, 4)), 0.2, 0.2),
     "log_pi_old"),
    (lambda: rl.clip_entropy_study(np.log([0.5, 0.5]), p_reward=1.5), "p_reward"),
    (lambda: rl.clip_entropy_study(np.log([0.5, 0.5]), G=1), "G=1"),
])
def test_batched_helpers_refuse_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
