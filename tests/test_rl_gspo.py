"""GSPO's sequence-level importance ratio (Zheng et al. 2025) as an option of the clipped surrogate:
finite differences, the first epoch = the on-policy gradient exactly, later epochs against the exact
clipped-surrogate gradient (brute force over batches; cosine of sampled epochs reported)."""

import numpy as np
import pytest

from conftest import fd_gradient
from test_rl_algorithms import POL, TASK, _brute_force
from toyfdiv import rl
from toyfdiv.policies import TabularPolicy
from toyfdiv.rl import ppo

GSPO = rl.Algorithm("gspo", "grpo", "seq_sum", clip_low=0.2, clip_high=0.28, epochs=3, ratio_level="sequence")


def _masses(rng, n=16):
    idx = POL.sample(n, rng)
    sA = rng.standard_normal(n)
    N = TASK.space.size
    return idx, sA, np.bincount(idx, np.maximum(sA, 0), N), np.bincount(idx, np.minimum(sA, 0), N)


@pytest.mark.parametrize("family", ["autoregressive", "tabular"])
def test_sequence_clipped_gradient_matches_finite_differences(family):
    rng = np.random.default_rng(2)
    old = POL if family == "autoregressive" else TabularPolicy.from_log_probs(TASK.space, POL.log_probs())
    new = old.with_params(old.params + 0.4 * rng.standard_normal(old.n_params))
    idx, sA, m_pos, m_neg = _masses(rng)
    clipped_any = False
    for lo, hi in ((0.2, 0.28), (None, 0.1), (0.1, None), (None, None)):
        g = rl.sequence_clipped_gradient(new, old, m_pos, m_neg, lo, hi)
        fd = fd_gradient(lambda th: ppo.sequence_clipped_surrogate(new.with_params(th), old, idx, sA, lo, hi),
                         new.params, h=1e-6)
        np.testing.assert_allclose(g, fd, atol=1e-7)
        clipped_any |= np.abs(g - rl.sequence_clipped_gradient(new, old, m_pos, m_neg, None, None)).max() > 1e-3
    assert clipped_any  # the clip range bites at this distance


def test_gspo_first_epoch_is_the_on_policy_gradient_exactly():
    """At θ = θ_old every ρ̄ = 1: the clipped path gives −Σ_y (m_A(y)/|y|) ∇ log π(y), and the first PPO step
    moves θ by −lr times it."""
    batch = rl.sample_batch(GSPO, POL, TASK, 8, np.random.default_rng(0))
    m = ppo.batch_masses(batch, TASK.space.size)[0]
    pg = POL.grad_log_prob_weighted(-m.A / TASK.space.lengths)
    same = POL.with_params(POL.params)  # a distinct object: the ratio path with ρ̄ = 1
    np.testing.assert_allclose(rl.sequence_clipped_gradient(POL, same, m.A_pos, m.A_neg, 0.2, 0.28), pg, atol=1e-12)
    steps = rl.ppo_epochs(GSPO, POL, TASK, batch, lr=0.5)
    np.testing.assert_allclose(steps[1][0].params - POL.params, -0.5 * pg, atol=1e-12)
    # and in expectation: the exact expected first epoch is the sum over all batches
    np.testing.assert_allclose(rl.expected_update(GSPO, POL, TASK, 3, mode="exact").gradient,
                               _brute_force(GSPO, POL, TASK, 3), atol=1e-10)


def test_gspo_later_epochs_exact_surrogate_gradient_and_sampled_cosines():
    new = POL.with_params(POL.params + 0.3 * np.random.default_rng(4).standard_normal(POL.n_params))
    exact = rl.expected_update(GSPO, new, TASK, 3, mode="exact", old_policy=POL).gradient
    np.testing.assert_allclose(exact, _brute_force(GSPO, new, TASK, 3, old=POL), atol=1e-10)
    token = rl.expected_update(GSPO.with_(ratio_level="token"), new, TASK, 3, old_policy=POL).gradient
    assert np.linalg.norm(exact - token) > 1e-3  # the sequence ratio is another surrogate
    mean, se = rl.epoch_agreement(GSPO, TASK.base_policies(), TASK, 8, lr=2.0, batches=30,
                                  rng=np.random.default_rng(0))
    print(f"\nGSPO epochs 1…3: cos(sampled update, exact clipped-surrogate gradient) {np.round(mean, 3)} ± "
          f"{np.round(se, 3)}")
    assert mean[0] > 3 * se[0] and mean[-1] > 3 * se[-1]


def test_sequence_ratio_refuses_bad_input():
    with pytest.raises(ValueError, match="ratio_level"):
        rl.preset("grpo", ratio_level="tokens")
    with pytest.raises(ValueError, match="clip_high"):
        rl.sequence_clipped_gradient(POL, POL, np.zeros(7), np.zeros(7), 0.2, 1.5)
