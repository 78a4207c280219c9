"""RLHF as practised — PPO, GRPO, Dr. GRPO, RLOO, REINFORCE++, ReMax, DAPO — held against the exact gradient.

An algorithm is a composition of named parts (:class:`Algorithm`): the advantage
(:func:`group_advantages`), the loss aggregation, the KL estimator k1/k2/k3 × placement ×
level (:func:`expected_kl_gradient`), and PPO's ratio, clipping and epochs.  Its expected
update is computed exactly where the batch space is small (else by Monte Carlo with its
noise floor), and its fixed point is compared with the RLHF target and the closed forms.
DAPO's dynamic sampling and overlong penalty (:mod:`~toyfdiv.rl.dapo`), GSPO's sequence-level
ratio (``Algorithm.ratio_level``), REINFORCE++'s exact batch normalisation
(:mod:`~toyfdiv.rl.batchnorm`), S one-token runs at once (:mod:`~toyfdiv.rl.batched`) and a
TinyLM shared by all prompts (:class:`PromptedTinyLM`) and one adapter shared by all prompts
(:class:`SharedAdapter`) complete it.

>>> from toyfdiv import rl
>>> rl.group_advantages([[1.0, 0.0, 0.0, 0.0]], "rloo")
array([[ 1.        , -0.33333333, -0.33333333, -0.33333333]])
"""

from .advantages import ADVANTAGES, GROUP_ADVANTAGES, GRPO_EPS, effective_weight, group_advantages
from .aggregation import AGGREGATIONS, scales
from .algorithms import PRESETS, RATIO_LEVELS, Algorithm, names, preset
from .expected import MODES, Update, expected_update, greedy_index, reference_gradient
from .fixed_points import FixedPoint, FixedPointWarning, atlas, fixed_point, grpo_success_recursion, k3_target, reinforce_pp_success, rlhf_target
from .kl import ESTIMATORS, LEVELS, PLACEMENTS, estimate, expected_kl_gradient, kl_loss_gradient, kl_values
from .ppo import clip_entropy_study, clipped_gradient, clipped_objective, epoch_agreement, ppo_epochs, sample_batch, sampled_update
from .drift import length_drift
from . import batched, batchnorm, dapo
from .batchnorm import batch_weights
from .dapo import dynamic_sampling_weight, kept_probability, overlong_penalty
from .batched import clipped_logit_gradient, response_masses, sample_rows
from .clip import clip_weights, sequence_clipped_gradient, sequence_ratios
from .loop import make_update, summary
from .shared import PromptedTinyLM, SharedAdapter
from .table import FOLLOWS_THRESHOLD, evaluation_policy, update_table

__all__ = [
    "ADVANTAGES", "GROUP_ADVANTAGES", "GRPO_EPS", "group_advantages", "effective_weight", "AGGREGATIONS", "scales",
    "Algorithm", "RATIO_LEVELS", "PRESETS", "preset", "names", "MODES", "Update", "expected_update", "reference_gradient",
    "greedy_index", "FixedPoint", "FixedPointWarning", "fixed_point", "atlas", "grpo_success_recursion", "reinforce_pp_success", "rlhf_target", "k3_target", "ESTIMATORS", "PLACEMENTS", "LEVELS",
    "estimate", "expected_kl_gradient", "kl_loss_gradient", "kl_values", "clip_entropy_study", "clipped_gradient", "clipped_objective", "epoch_agreement",
    "ppo_epochs", "sample_batch", "sampled_update", "length_drift", "batched", "sample_rows", "response_masses", "clipped_logit_gradient",
    "clip_weights", "sequence_ratios", "sequence_clipped_gradient", "dapo", "batchnorm", "batch_weights", "overlong_penalty", "dynamic_sampling_weight", "kept_probability", "make_update", "summary", "PromptedTinyLM", "SharedAdapter", "evaluation_policy", "update_table", "FOLLOWS_THRESHOLD",
]
