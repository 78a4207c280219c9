"""Hostile input to the beyond-DPO and diversity API: each argument of each public function replaced by
bad values (None, text, NaN, ±inf, negatives, booleans, wrong shapes, empty arrays) must give a ValueError
that names the argument or the rule — never a TypeError, IndexError, a NaN result or a hang."""

import numpy as np
import pytest
from scipy.special import log_softmax

from toyfdiv import SequenceSpace, diversity, distill, tasks
from toyfdiv import feedback as fb
from toyfdiv.policies import NgramPolicy, TabularPolicy

N = 6
LOG_A = log_softmax(np.random.default_rng(0).normal(size=N))
R = np.random.default_rng(1).normal(size=N)
CORRECT = R > 0
PAIRS = fb.PreferenceDataset(np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4]), N)
THUMBS = fb.ThumbsDataset(np.array([0, 1, 2, 3, 4]), np.array([1, 0, 1, 0, 1]), N)
SPACE = SequenceSpace(["a", "b"], length=3, eos="</s>")
TEACHER = tasks.pretrain(SPACE, ["a b", "b a", "a a b"], order=2, smoothing=0.3)
POL = TabularPolicy.from_log_probs(SequenceSpace(["x"] * 1 + ["y", "z", "w", "v", "u"], length=1), LOG_A)

BAD = {
    "none": None, "text": "abc", "nan": float("nan"), "inf": float("inf"), "neg": -1.0, "zero": 0.0,
    "bool": True, "empty": np.array([]), "nan_vec": np.full(N, np.nan), "short": np.zeros(N - 1),
}

CASES = {  # name: (function, valid keyword arguments)
    "ipo_loss": (fb.ipo_loss, dict(policy=LOG_A, ref_log_probs=LOG_A, dataset=PAIRS, tau=0.5)),
    "ipo_optimum": (fb.ipo_optimum, dict(ref_log_probs=LOG_A, win_rate=np.full(N, 0.5), tau=0.5)),
    "ipo_dataset_optimum": (fb.ipo_dataset_optimum, dict(ref_log_probs=LOG_A, dataset=PAIRS, tau=0.5)),
    "chipo_loss": (fb.chipo_loss, dict(policy=LOG_A, ref_log_probs=LOG_A, dataset=PAIRS, beta=0.5)),
    "chipo_optimum": (fb.chipo_optimum, dict(ref_log_probs=LOG_A, reward=R, beta=0.5)),
    "kto_loss": (fb.kto_loss, dict(policy=LOG_A, ref_log_probs=LOG_A, dataset=THUMBS, beta=0.5)),
    "kto_reference_point": (fb.kto_reference_point, dict(log_pi=LOG_A, ref_log_probs=LOG_A)),
    "kto_fixed_point": (fb.kto_fixed_point, dict(ref_log_probs=LOG_A, p_up=np.linspace(0.1, 0.9, N), beta=0.5)),
    "kto_weights": (fb.kto_weights, dict(p_up=np.linspace(0.1, 0.9, N))),
    "dpo_minimiser_set": (fb.dpo_minimiser_set, dict(ref_log_probs=LOG_A, reward=R, beta=0.5, seen=CORRECT | True)),
    "gold_utility_curves": (fb.gold_utility_curves, dict(ref_log_probs=LOG_A, dataset=PAIRS, utility=R,
                                                         betas=[1.0, 0.1], rlhf_reward=R)),
    "train_po": (fb.train_po, dict(policy=POL, method="ipo", ref_log_probs=LOG_A, dataset=PAIRS, strength=0.5,
                                   steps=2)),
    "p_correct": (diversity.p_correct, dict(log_pi=LOG_A, correct=CORRECT)),
    "pass_at_k": (diversity.pass_at_k, dict(p=0.3, k=4)),
    "pass_at_k_policy": (diversity.pass_at_k_policy, dict(log_pi=LOG_A, correct=CORRECT, k=4)),
    "pass_at_k_estimate": (diversity.pass_at_k_estimate, dict(n_correct=np.array([2]), n=10, k=3)),
    "expected_distinct_correct": (diversity.expected_distinct_correct, dict(log_pi=LOG_A, correct=CORRECT, k=4)),
    "regularised_target": (diversity.regularised_target, dict(log_a=LOG_A, reward=R, beta=0.5, divergence="js")),
    "mara_reward": (diversity.mara_reward, dict(log_a=LOG_A, reward=R, beta=0.5, threshold=0.0)),
    "shared_head_optimum": (diversity.shared_head_optimum, dict(log_a=LOG_A, log_p=LOG_A, features=np.eye(N))),
    "gkd_loss": (distill.gkd_loss, dict(student=NgramPolicy(SPACE, 1), teacher=TEACHER, beta=0.5, lam=0.5)),
    "gkd_fixed_point": (distill.gkd_fixed_point, dict(teacher=TEACHER, beta=0.5, lam=0.5)),
    "skew_divergence": (distill.skew_divergence, dict(p=np.full(3, 1 / 3), q=np.full(3, 1 / 3), beta=0.5)),
}
SKIP_ARGS = {"p", "q", "log_p"}  # free-form arrays where NaN propagates by design (skew_divergence) or validated later


def _params():
    for name, (fn, kwargs) in CASES.items():
        for arg in kwargs:
            if arg in SKIP_ARGS:
                continue
            for bad in BAD:
                yield pytest.param(name, arg, bad, id=f"{name}-{arg}-{bad}")


def test_valid_calls_work():
    for name, (fn, kwargs) in CASES.items():
        fn(**kwargs)


@pytest.mark.parametrize("name,arg,bad", list(_params()))
def test_bad_argument_gives_a_value_error_or_a_valid_result(name, arg, bad):
    fn, kwargs = CASES[name]
    try:
        out = fn(**dict(kwargs, **{arg: BAD[bad]}))
    except ValueError:
        return
    # accepted: the result must then be a valid one (e.g. β = True is refused, a zero-length k list …)
    values = [out] if np.isscalar(out) or isinstance(out, np.ndarray) else []
    for v in values:
        assert not np.any(np.isnan(np.asarray(v, dtype=float))), f"{name}({arg}={bad!r}) returned NaN"
