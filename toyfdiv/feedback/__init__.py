"""Human feedback, exact: simulated raters → reward models → RLHF, DPO and f-DPO.

    rater:         P(x ≻ y) = σ((ũ(x) − ũ(y))/τ),  ũ = u + bias          (Bradley & Terry 1952)
    reward model:  r̂ = argmax Bradley–Terry / logistic likelihood − (l2/2)‖θ‖², E_c[r̂] = 0
    RLHF on r̂:     p_β = a·exp(r̂/β)/Z                                      (Christiano et al. 2017)
    DPO:           −log σ(β[log π/π_ref (w) − log π/π_ref (l)]), optimum π_ref·exp(r/β)/Z
                                                                           (Rafailov et al. 2023)
    f-DPO:         −log σ(β f'(π/π_ref)(w) − β f'(π/π_ref)(l)), optimum π_ref (f')⁻¹((r − λ)/β)
                                                                           (Wang et al. 2023)
    IPO:           (h(w) − h(l) − 1/(2τ))², optimum π_ref exp(P(y ≻ μ)/τ)/Z  (Azar et al. 2023)
    χ²PO:          DPO with the link z + log z; optimum z + log z = (r − λ)/β (Huang et al. 2024)
    KTO:           λ_y − v(x), v = λ σ(±β(h − z₀)), z₀ = KL(π‖π_ref)      (Ethayarajh et al. 2024)
    coverage:      DPO's minimiser set when pairs cover only part of the space  (Xu et al. 2024)

>>> import numpy as np
>>> from toyfdiv import tasks, targets
>>> from toyfdiv.feedback import Rater, collect_preferences, fit_reward_model
>>> task = tasks.default()
>>> rater = Rater.for_task(task, temperature=1.0)
>>> data = collect_preferences(rater, task.base, 2000, np.random.default_rng(0))
>>> r_hat = fit_reward_model(data, centre_log_probs=task.log_a).values
>>> p = targets.rlhf(task.log_a, r_hat, beta=0.5)
"""

from .dpo import (DPOResult, dpo_gradient, dpo_loss, dpo_optimum, population_dpo_gradient,
                  population_dpo_loss, train_dpo)
from .fdpo import (check_divergence, fdpo_gradient, fdpo_lambda, fdpo_loss, fdpo_optimum,
                   implicit_reward, population_fdpo_loss, train_fdpo)
from .chipo import chipo_gradient, chipo_lambda, chipo_link, chipo_loss, chipo_optimum, chipo_update
from .coverage import MinimiserSet, dpo_minimiser_set, seen_outputs, unseen_mass
from .gold import GoldCurve, gold_utility_curves, kto_gold_curve, ml_implicit_reward
from .ipo import (bt_preferences, ipo_dataset_optimum, ipo_gradient, ipo_loss, ipo_optimum, ipo_update,
                  population_ipo_gradient, population_ipo_loss, win_rates)
from .kto import (KTOFixedPoint, KTOSupport, kto_fixed_point, kto_support, kto_gradient, kto_loss, kto_reference_point,
                  kto_reference_point_estimate, kto_threshold, kto_update, kto_weights, population_kto_gradient,
                  population_kto_loss)
from .po_train import train_po
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
    "chipo_link", "chipo_loss", "chipo_gradient", "chipo_update", "chipo_lambda", "chipo_optimum",
    "kto_reference_point", "kto_reference_point_estimate", "kto_loss", "kto_gradient", "kto_update", "kto_weights",
    "kto_threshold", "population_kto_loss", "population_kto_gradient", "KTOFixedPoint", "kto_fixed_point", "KTOSupport", "kto_support",
    "seen_outputs", "unseen_mass", "MinimiserSet", "dpo_minimiser_set",
    "ml_implicit_reward", "GoldCurve", "gold_utility_curves", "kto_gold_curve", "train_po",
]
