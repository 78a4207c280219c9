"""GKD: the skew divergence against the registry's gJSD, the gradient (finite differences, ν held
fixed), the exact fixed point over λ × β (stationarity, and at λ = 0, β = 0 the sequence-level
forward-KL optimum found by f-DPG), and how on-policy reverse KL differs from sequence reverse KL."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_softmax, rel_entr, softmax

from conftest import fd_gradient
from toyfdiv import SequenceSpace, divergences, fdpg, targets, tasks
from toyfdiv.distill import (gkd_fixed_point, gkd_gradient, gkd_grid, gkd_loss, gkd_update, prefix_mass,
                             skew_divergence)
from toyfdiv.policies import AutoregressivePolicy, NgramPolicy


@pytest.fixture(scope="module")
def teacher():
    """A bigram teacher on a small EOS space (V = 3, T = 4)."""
    space = SequenceSpace(["a", "b", "c"], length=4, eos="</s>")
    return tasks.pretrain(space, ["a b c", "b c a", "c a b", "a a", "b b c", "c"], order=2, smoothing=0.3)


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_skew_divergence_is_the_registry_gjsd_with_the_student_first(beta):
    rng = np.random.default_rng(0)
    p, q = softmax(rng.normal(size=6)), softmax(rng.normal(size=6))
    assert skew_divergence(p, q, beta) == pytest.approx(divergences.gjsd(beta).value(np.log(q), np.log(p)), rel=1e-12)
    assert skew_divergence(p, q, 0.0) == pytest.approx(rel_entr(p, q).sum())
    assert skew_divergence(p, q, 1.0) == pytest.approx(rel_entr(q, p).sum())


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("order", [1, 2])
def test_gradient_matches_finite_differences_with_nu_fixed(teacher, beta, order):
    student = NgramPolicy(teacher.space, order, seed=1, init_scale=0.5)
    nu = [0.5 * a + 0.5 * b for a, b in zip(prefix_mass(teacher.space, teacher.log_probs()),
                                            prefix_mass(teacher.space, student.log_probs()))]
    fd = fd_gradient(lambda th: gkd_loss(student.with_params(th), teacher, beta, nu=nu), student.params)
    np.testing.assert_allclose(gkd_gradient(student, teacher, beta, nu=nu), fd, atol=1e-8, rtol=1e-6)
    g, diag = gkd_update(teacher, beta, 0.5)(student, None)
    np.testing.assert_allclose(g, fd, atol=1e-8, rtol=1e-6)


def test_token_level_forward_kl_on_teacher_samples_is_sequence_forward_kl(teacher):
    """Chain rule: Σ_u p_T(u) KL(p_T(·|u) ‖ q(·|u)) = KL(p_T ‖ q) for any autoregressive q."""
    student = NgramPolicy(teacher.space, 1, seed=3, init_scale=0.7)
    p, q = teacher.probs(), student.probs()
    assert gkd_loss(student, teacher, 0.0, 0.0) == pytest.approx(rel_entr(p, q).sum(), rel=1e-10)
    assert gkd_loss(student, teacher, 1.0, 1.0) == pytest.approx(rel_entr(q, p).sum(), rel=1e-10)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_fixed_point_is_stationary_for_its_own_mixture(teacher, lam, beta):
    fp = gkd_fixed_point(teacher, beta, lam, order=1)
    assert fp.converged
    g = gkd_gradient(fp.student, teacher, beta, lam)  # ν from the fixed point itself
    assert np.abs(g).max() < 1e-7, np.abs(g).max()


def test_supervised_forward_kl_fixed_point_is_the_sequence_forward_kl_optimum(teacher):
    """λ = 0, β = 0: the unigram that minimises KL(p_T ‖ q) over the whole sequence (f-DPG gradient = 0)."""
    fp = gkd_fixed_point(teacher, 0.0, 0.0, order=1)
    tgt = targets.from_log_probs(teacher.log_probs(), teacher.log_probs())
    g = fdpg.exact_gradient(fp.student, tgt, "forward_kl")
    assert np.abs(g).max() < 1e-10


def test_beta_interior_rows_match_an_independent_optimiser(teacher):
    """λ = 0, β = 0.5: the row-wise L-BFGS solution equals BFGS on the whole loss over the logits."""
    fp = gkd_fixed_point(teacher, 0.5, 0.0, order=1)
    s0 = NgramPolicy(teacher.space, 1, init_scale=0.0)
    res = minimize(lambda th: gkd_loss(s0.with_params(th), teacher, 0.5, 0.0), s0.params, method="BFGS",
                   options=dict(gtol=1e-10))
    np.testing.assert_allclose(softmax(res.x), np.exp(log_softmax(fp.student.table()[0])), atol=1e-5)
    assert fp.loss <= res.fun + 1e-10


def test_on_policy_reverse_kl_fixed_point_is_not_the_sequence_reverse_kl_optimum(teacher):
    """GKD drops the gradient through the sampler: at λ = 1, β = 1 the fixed point leaves KL(q‖p_T) with a
    non-zero f-DPG gradient, and the sequence optimum (found by exact f-DPG) has lower KL(q‖p_T)."""
    from toyfdiv import train

    fp = gkd_fixed_point(teacher, 1.0, 1.0, order=1)
    tgt = targets.from_log_probs(teacher.log_probs(), teacher.log_probs())
    assert np.linalg.norm(fdpg.exact_gradient(fp.student, tgt, "reverse_kl")) > 1e-3
    best = train(fp.student, tgt, "reverse_kl", steps=400, lr=0.05).policy
    p = teacher.probs()
    assert rel_entr(best.probs(), p).sum() < rel_entr(fp.student.probs(), p).sum() - 1e-4


def test_grid_reports_every_cell(teacher):
    rows = gkd_grid(teacher, betas=(0.0, 1.0), lams=(0.0, 1.0))
    assert [(r["lam"], r["beta"]) for r in rows] == [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]
    assert all(r["converged"] and abs(r["log_z"]) < 1e-12 for r in rows)


def test_bad_input_is_refused(teacher):
    student = NgramPolicy(teacher.space, 1)
    with pytest.raises(ValueError, match="beta"):
        gkd_loss(student, teacher, 1.5)
    with pytest.raises(ValueError, match="lam"):
        gkd_fixed_point(teacher, 0.5, -0.1)
    other = AutoregressivePolicy(SequenceSpace(["a", "b"], length=2), seed=0)
    with pytest.raises(ValueError, match="share"):
        gkd_loss(NgramPolicy(other.space, 1), teacher, 0.5)
    with pytest.raises(ValueError, match="teacher"):
        gkd_update("teacher", 0.5)


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_training_through_the_one_loop_reaches_the_fixed_point(teacher, lam):
    """toyfdiv.training.optimise with gkd_update (ν re-computed and detached every step) ends at the exact fixed point."""
    from toyfdiv.training import optimise

    fp = gkd_fixed_point(teacher, 0.5, lam, order=1)
    start = NgramPolicy(teacher.space, 1, init_scale=0.0)
    hist = optimise(start, gkd_update(teacher, 0.5, lam), steps=800, lr=0.5, optimizer="sgd", label="gkd",
                    record=lambda s: {"loss": gkd_loss(s, teacher, 0.5, lam)}, record_every=100)
    np.testing.assert_allclose(hist.policy.probs(), fp.student.probs(), atol=1e-9)
    assert hist.loss[-1] == pytest.approx(fp.loss, rel=1e-9)  # (for λ > 0 the loss need not fall: ν moves too)
