"""Conditional (prompted) targets: per-prompt normalisation, exact and sampled gradients."""

import numpy as np
import pytest
from scipy.special import logsumexp

from toyfdiv import conditional, divergences
from toyfdiv.policies import AutoregressivePolicy
from conftest import fd_gradient


@pytest.fixture(scope="module")
def task():
    return conditional.reviews_task()


def joint(log_rho, log_cond):
    """log ρ(c) + log π(y|c), flattened: the joint distribution over (c, y)."""
    return (log_rho[:, None] + log_cond).ravel()


def test_reviews_task_and_per_prompt_normalisation(task):
    assert task.space.size == 156 and task.log_a.shape == (3, 156)
    np.testing.assert_allclose(logsumexp(task.log_a, axis=1), 0.0, atol=1e-12)
    s = task.space
    # the reward scores the whole text: "not" flips the sentiment of what follows
    assert task.reward[1, s.index("good </s>")] == -1 and task.reward[0, s.index("good </s>")] == 1
    tgt = task.target("rlhf", beta=1.0)
    np.testing.assert_allclose(logsumexp(tgt.log_probs, axis=1), 0.0, atol=1e-12)
    expected = logsumexp(task.log_a + task.reward, axis=1)  # log Z(c) = log Σ_y a(y|c) e^{r(c,y)}
    np.testing.assert_allclose(tgt.log_z, expected, rtol=1e-12)
    assert np.ptp(tgt.log_z) > 0.1  # one partition function per prompt, and they differ


@pytest.mark.parametrize("name", ["forward_kl", "reverse_kl", "js", "tv"])
def test_value_is_the_divergence_of_the_joints_and_gradient_matches_fd(task, name):
    div = divergences.get(name)
    tgt = task.target("rlhf", beta=0.7)
    pol = conditional.ConditionalPolicy([AutoregressivePolicy(task.space, seed=s, init_scale=0.5) for s in range(3)])
    v = conditional.value(pol, tgt, div)
    assert v == pytest.approx(div.value(joint(tgt.log_rho, pol.log_probs()), joint(tgt.log_rho, tgt.log_probs)),
                              rel=1e-12)
    small = conditional.ConditionalPolicy([AutoregressivePolicy(task.space, seed=s, init_scale=0.5) for s in range(3)])
    g = conditional.exact_gradient(small, tgt, div)
    idx = np.random.default_rng(0).choice(small.n_params, 25, replace=False)  # FD on a random subset

    def f(sub):
        theta = small.params
        theta[idx] = sub
        return conditional.value(small.with_params(theta), tgt, div)

    np.testing.assert_allclose(g[idx], fd_gradient(f, small.params[idx], h=1e-3), rtol=1e-6, atol=1e-9)


def test_sampled_gradient_with_exact_z_is_unbiased(task):
    tgt = task.target("rlhf", beta=1.0)
    pol = task.base_policy()
    exact = conditional.exact_gradient(pol, tgt, "js")
    rng = np.random.default_rng(7)
    draws = np.stack([conditional.sampled_gradient(pol, tgt, "js", n=64, rng=rng, z="exact", baseline="none")
                      for _ in range(1500)])
    # E‖mean − g‖² = tr Cov / T for an unbiased estimator: compare the error with that scale
    err = np.linalg.norm(draws.mean(0) - exact)
    scale = np.sqrt(draws.var(0, ddof=1).sum() / len(draws))
    assert err < 2.0 * scale, (err, scale)
    # per-prompt Ẑ(c) from the batch is biased for a non-linear f; the bias shrinks with n
    def bias(n, trials):
        d = np.stack([conditional.sampled_gradient(pol, tgt, "js", n=n, rng=rng, z="batch", baseline="none")
                      for _ in range(trials)])
        return np.linalg.norm(d.mean(0) - exact)
    assert bias(8, 1500) > bias(256, 300)


def test_training_reaches_every_prompt_target(task):
    tgt = task.target("pointwise", epsilon=0.01)
    hist = conditional.train(task.base_policy(), tgt, "js", steps=300, lr=0.1, record_every=50)
    d = hist.metrics["divergence/js"]
    assert d[-1] < 1e-3 * d[0]
    assert hist.metrics["alignment/constraint"][-1] > hist.metrics["alignment/constraint"][0]
    assert all(np.isfinite(v).all() for v in hist.metrics.values())


def test_bad_input(task):
    with pytest.raises(ValueError, match="one target per prompt"):
        conditional.ConditionalTarget(("a",), np.log([0.5, 0.5]), ())
    with pytest.raises(ValueError, match="log_rho is not normalised"):
        conditional.rlhf(task.prompts, np.zeros(3), task.log_a, task.reward, 1.0)
    with pytest.raises(ValueError, match=r"expected the same \(C, N\)"):
        conditional.rlhf(task.prompts, task.log_rho, task.log_a, task.reward[:, :5], 1.0)
    with pytest.raises(ValueError, match="prompts"):
        conditional.reviews_task(("zzz",))
    with pytest.raises(ValueError, match="n=0"):
        conditional.sampled_gradient(task.base_policy(), task.target(), "js", n=0, rng=np.random.default_rng(0))


def test_bad_input_audit(task):
    pol, tgt = task.base_policy(), task.target("rlhf")
    la = np.log(np.full((1, 4), 0.25))
    for call, match in [(lambda: conditional.reviews_task(None), r"prompts=None"),
                        (lambda: conditional.rlhf("xy", [0.0], la, np.zeros((1, 4)), 1.0), r"prompts='xy'"),
                        (lambda: conditional.rlhf([1], [0.0], la, np.zeros((1, 4)), 1.0), r"prompts=\(1,\)"),
                        (lambda: conditional.ConditionalPolicy(None), r"policies=None"),
                        (lambda: conditional.ConditionalTarget(("a",), [0.0], (None,)), r"targets must be"),
                        (lambda: conditional.train(pol, tgt, "js", steps=1, n=0), r"n=0"),  # was ignored
                        (lambda: conditional.train(pol, tgt, "js", steps=1, z="zz"), r"z='zz'")]:
        with pytest.raises(ValueError, match=match):
            call()


def test_exact_gradient_conditional_is_a_deprecated_name():
    ct = conditional.reviews_task(("film",))
    pol, tgt = ct.base_policy(), ct.target("rlhf", beta=1.0)
    with pytest.warns(DeprecationWarning, match="conditional.exact_gradient"):
        old = conditional.exact_gradient_conditional(pol, tgt, "js")
    np.testing.assert_array_equal(old, conditional.exact_gradient(pol, tgt, "js"))
