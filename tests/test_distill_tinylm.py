"""GKD with a network student (a narrow TinyLM, and the per-prefix autoregressive policy).

Oracles: fourth-order finite differences of the GKD loss with ν held fixed; the f-DPG exact
gradient of the sequence-level forward KL (λ = 0, β = 0: the chain rule); and, trained through the
one loop, the entropy order forward KL > teacher > reverse KL stated by claims.entropy_extremes.
"""

import numpy as np
import pytest

from conftest import fd_gradient
from toyfdiv import SequenceSpace, claims, divergences, fdpg, targets, tasks
from toyfdiv.distill import gkd_gradient, gkd_loss, gkd_tinylm_grid, gkd_train, prefix_mass
from toyfdiv.policies import AutoregressivePolicy, TinyLM, TinyLMConfig


@pytest.fixture(scope="module")
def teacher():
    """A bigram teacher on a small EOS space (V = 3, T = 4), as in test_distill."""
    space = SequenceSpace(["a", "b", "c"], length=4, eos="</s>")
    return tasks.pretrain(space, ["a b c", "b c a", "c a b", "a a", "b b c", "c"], order=2, smoothing=0.3)


@pytest.mark.parametrize("beta", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("family", ["tinylm", "autoregressive"])
def test_network_student_gradient_matches_finite_differences(teacher, beta, family):
    space = teacher.space
    student = (TinyLM(space, TinyLMConfig(n_embd=2, n_hidden=2), seed=1) if family == "tinylm"
               else AutoregressivePolicy(space, seed=1, init_scale=0.5))
    nu = [0.5 * a + 0.5 * b for a, b in zip(prefix_mass(space, teacher.log_probs()),
                                            prefix_mass(space, student.log_probs()))]
    fd = fd_gradient(lambda th: gkd_loss(student.with_params(th), teacher, beta, nu=nu), student.params)
    np.testing.assert_allclose(gkd_gradient(student, teacher, beta, nu=nu), fd, atol=1e-8, rtol=1e-6)


def test_supervised_forward_kl_gradient_is_the_sequence_forward_kl_gradient(teacher):
    student = TinyLM(teacher.space, TinyLMConfig(n_embd=2, n_hidden=3), seed=4)
    p = targets.pointwise(teacher.log_probs(), np.ones(teacher.space.size, dtype=bool))  # p = the teacher
    want = fdpg.exact_gradient(student, p, divergences.get("forward_kl"))  # ∇θ KL(p_T ‖ q_θ)
    np.testing.assert_allclose(gkd_gradient(student, teacher, 0.0, 0.0), want, atol=1e-12)


def test_narrow_tinylm_forward_kl_covers_reverse_kl_locks_on(teacher):
    lt = teacher.log_probs()
    h_teacher = float(-np.exp(lt) @ lt)
    rows = gkd_tinylm_grid(teacher, n_hidden=1, betas=(0.0, 1.0), lams=(1.0,), steps=400, lr=0.05)
    fwd, rev = rows
    assert fwd["beta"] == 0.0 and rev["beta"] == 1.0 and fwd["n_params"] == rev["n_params"]
    assert max(fwd["grad_max"], rev["grad_max"]) < 5e-3  # at (near) the fixed point
    assert fwd["entropy"] > h_teacher > rev["entropy"]  # covers / locks on
    assert fwd["forward_kl"] < rev["forward_kl"] and rev["reverse_kl"] < fwd["reverse_kl"]  # each wins its own
    verdict, sentence = claims.entropy_extremes({"forward KL": fwd["entropy"], "reverse KL": rev["entropy"]}, h_teacher)
    assert verdict == "ordered" and sentence.index("reverse KL") < sentence.index("forward KL")


def test_bad_input(teacher):
    with pytest.raises(ValueError, match="n_hidden"):
        gkd_tinylm_grid(teacher, n_hidden=0)
    with pytest.raises(ValueError, match="lr"):
        gkd_train(AutoregressivePolicy(teacher.space, seed=0), teacher, 0.5, 0.5, lr=-1.0)
    with pytest.raises(ValueError, match="beta"):
        gkd_train(AutoregressivePolicy(teacher.space, seed=0), teacher, 1.5, 0.5)
