"""Human feedback, exact: simulated raters → reward models → RLHF, DPO and f-DPO.

    rater:         P(x ≻ y) = σ((ũ(x) − ũ(y))/τ),  ũ = u + bias          (Bradley & Terry 1952)
    reward model:  r̂ = argmax Bradley–Terry / logistic likelihood − (l2/2)‖θ‖², E_c[r̂] = 0
    RLHF on r̂:     p_β = a·exp(r̂/β)/Z                                      (Christiano et al. 2017)
    DPO:           −log σ(β[log π/π_ref (w) − log π/π_ref (l)]), optimum π_ref·exp(r/β)/Z
                                                                           (Rafailov et al. 2023)
    f-DPO:         −log σ(β f'(π/π_ref)(w) − β f'(π/π_ref)(l)), optimum π_ref (f')⁻¹((r − λ)/β)
                                                                           (Wang et al. 2023)

>>> import numpy as np
>>> from toyfdiv import tasks, targets
>>> from toyfdiv.feedback import Rater, collect_preferences, fit_reward_model
>>> task = tasks.default()
>>> rater = Rater.for_task(task, temperature=1.0)
>>> data = collect_preferences(rater, task.base, 2000, np.random.default_rng(0))
>>> r_hat = fit_reward_model(data, center_log_probs=task.log_a).values
>>> p = targets.rlhf(task.log_a, r_hat, beta=0.5)
"""

from .dpo import (DPOResult, dpo_gradient, dpo_loss, dpo_optimum, population_dpo_gradient,
                  population_dpo_loss, train_dpo)
from .fdpo import (check_divergence, fdpo_gradient, fdpo_lambda, fdpo_loss, fdpo_optimum,
                   implicit_reward, population_fdpo_loss, train_fdpo)
from .ipo import (bt_preferences, ipo_dataset_optimum, ipo_gradient, ipo_loss, ipo_optimum, ipo_update,
                  population_ipo_gradient, population_ipo_loss, win_rates)
from .raters import (FORMAT_VERSION, PreferenceDataset, Rater, ThumbsDataset, bayes_accuracy,
                     collect_preferences, collect_thumbs, load, n_tokens, pair_log_probs, save)
from .reward_models import (Evaluation, OveroptimisationCurve, RewardModel, centre, evaluate,
                            fit_reward_model, ngram_features, overoptimisation_curve)

__all__ = [
    "Rater", "PreferenceDataset", "ThumbsDataset", "FORMAT_VERSION", "n_tokens",
    "collect_preferences", "collect_thumbs", "bayes_accuracy", "pair_log_probs", "save", "load",
    "RewardModel", "Evaluation", "OveroptimisationCurve", "fit_reward_model", "evaluate",
    "ngram_features", "centre", "overoptimisation_curve",
    "DPOResult", "dpo_loss", "dpo_gradient", "dpo_optimum", "train_dpo",
    "population_dpo_loss", "population_dpo_gradient",
    "check_divergence", "implicit_reward", "fdpo_loss", "fdpo_gradient", "fdpo_lambda",
    "fdpo_optimum", "population_fdpo_loss", "train_fdpo",
    "ipo_loss", "ipo_gradient", "ipo_update", "bt_preferences", "win_rates", "population_ipo_loss",
    "population_ipo_gradient", "ipo_optimum", "ipo_dataset_optimum",
]
