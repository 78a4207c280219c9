"""Direct Preference Optimisation, exact: the loss on a dataset, on the population, its optimum.

    L_DPO(πθ; π_ref) = −E_{(w,l)}[ log σ(β[(log πθ(w) − log π_ref(w)) − (log πθ(l) − log π_ref(l))]) ]

DPO reparametrises the reward by the policy, r = β log(π/π_ref) + β log Z, and fits it to
Bradley–Terry preferences.  Its optimum is the RLHF target: if P(x ≻ y) = σ(r(x) − r(y))
and the pairs cover the space, the population loss is minimised exactly by
π* = π_ref·exp(r/β)/Z (Rafailov et al. 2023, eq. 4 and 7; Azar et al. 2023 §4).  With a
finite dataset the loss has no such anchor: it keeps pushing observed margins apart.

References: Rafailov, Sharma, Mitchell, Ermon, Manning, Finn (2023), "Direct Preference
Optimization: Your Language Model is Secretly a Reward Model", eq. 7 (the loss), eq. 4
(the closed form).
"""

from __future__ import annotations

import numpy as np

from .. import metrics, targets as _targets
from .._util import as_float_array, check_instance, check_log_probs, check_positive_float, check_vector
from ..policies.base import Policy
from ..training import History, optimise
from .pairs import Logistic, bt_pair_mass, pair_loss, population_pair_loss
from .raters import PreferenceDataset, pair_log_probs

__all__ = ["DPOResult", "dpo_loss", "dpo_gradient", "dpo_optimum", "train_dpo",
           "population_dpo_loss", "population_dpo_gradient", "check_beta"]


def check_beta(beta) -> float:
    """β > 0, the KL coefficient (the inverse temperature of the implicit reward)."""
    try:
        return check_positive_float(beta, "beta")
    except ValueError as err:
        raise ValueError(f"{err}: β is the KL-regularisation strength, β → 0 removes the anchor to π_ref") from None


def check_policy(policy) -> Policy:
    return check_instance(policy, Policy, "policy", "the gradient is with respect to its θ")


def check_dataset(dataset) -> PreferenceDataset:
    return check_instance(dataset, PreferenceDataset, "dataset")


def as_log_pi(policy_or_log_pi, n: int | None = None, name: str = "policy") -> np.ndarray:
    """log π from a Policy or a normalised log-probability vector; errors name ``name``."""
    if isinstance(policy_or_log_pi, Policy):
        return policy_or_log_pi.log_probs()
    arr = as_float_array(policy_or_log_pi, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} has shape {arr.shape}; expected a Policy or log π of shape (N,)")
    return check_log_probs(arr, arr.size if n is None else n, "log_pi")


def check_common(log_pi, ref_log_probs, dataset) -> np.ndarray:
    log_ref = check_log_probs(ref_log_probs, log_pi.size, "ref_log_probs")
    for name, arr in (("ref_log_probs", log_ref), ("the policy's log-probabilities (log_pi)", log_pi)):
        if np.isneginf(arr).any():
            raise ValueError(f"{name} is -inf at {np.flatnonzero(np.isneginf(arr))[:5].tolist()}: preference "
                             "optimisation needs full support (a ratio π/π_ref with a zero is undefined)")
    if dataset is not None:
        check_dataset(dataset)
        if dataset.space_size != log_pi.size:
            raise ValueError(f"the dataset indexes a space of {dataset.space_size} sequences, the policy has {log_pi.size}")
    return log_ref


# ---------------------------------------------------------------------------- pair sampling
def sampling_log_q(sampling_log_probs, n: int) -> np.ndarray:
    log_mu = np.full(n, -np.log(n)) if sampling_log_probs is None else check_log_probs(
        sampling_log_probs, n, "sampling_log_probs")
    return pair_log_probs(log_mu)


# ---------------------------------------------------------------------------- DPO on a dataset
def dpo_loss(policy, ref_log_probs, dataset: PreferenceDataset, beta: float) -> float:
    """L_DPO = −(1/n) Σ_i log σ(β[(log π(w_i) − log π_ref(w_i)) − (log π(l_i) − log π_ref(l_i))]).

    Shapes: ``policy`` a Policy or log π (N,); ref_log_probs (N,); dataset of n pairs.
    Reference: Rafailov et al. (2023), eq. 7.
    """
    beta = check_beta(beta)
    dataset = check_dataset(dataset)
    log_pi = as_log_pi(policy)
    h = log_pi - check_common(log_pi, ref_log_probs, dataset)
    return pair_loss(Logistic(beta), h, dataset.winners, dataset.losers)[0]


def dpo_gradient(policy: Policy, ref_log_probs, dataset: PreferenceDataset, beta: float) -> np.ndarray:
    """∇θ L_DPO = −(β/n) Σ_i σ(−β Δh_i)[∇θ log π(w_i) − ∇θ log π(l_i)] = Σ_x g(x) ∇θ log π(x), (P,).

    Δh_i = h(w_i) − h(l_i), h = log π − log π_ref; the per-pair weights are binned into one
    g (N,) and passed to ``policy.grad_log_prob_weighted``.
    Reference: Rafailov et al. (2023), §5 (the gradient and its weighting σ(r̂_l − r̂_w)).
    """
    beta = check_beta(beta)
    dataset = check_dataset(dataset)
    log_pi = check_policy(policy).log_probs()
    h = log_pi - check_common(log_pi, ref_log_probs, dataset)
    return policy.grad_log_prob_weighted(pair_loss(Logistic(beta), h, dataset.winners, dataset.losers)[1])


def dpo_optimum(ref_log_probs, reward, beta: float) -> np.ndarray:
    """log π*(x) = log π_ref(x) + r(x)/β − log Z: DPO's (and RLHF's) closed form, (N,).

    The maximiser of E_π[r] − β KL(π‖π_ref) (Rafailov et al. 2023, eq. 4), computed in log
    space by :func:`toyfdiv.targets.rlhf`.
    """
    log_ref = check_log_probs(ref_log_probs, None, "ref_log_probs")
    r = check_vector(reward, "reward", log_ref.size)
    return np.array(_targets.rlhf(log_ref, r, check_beta(beta)).log_probs)


# ---------------------------------------------------------------------------- population DPO
def population_dpo_loss(policy, ref_log_probs, reward, beta: float, sampling_log_probs=None) -> float:
    """L(π) = Σ_{x≠y} [q(x,y) + q(y,x)] σ(r(x) − r(y)) · −log σ(β[h(x) − h(y)]),  h = log π − log π_ref.

    The expected per-pair DPO loss on infinitely many Bradley–Terry pairs from reward r (in
    BT units, e.g. ``rater.reward``), drawn as x, y ∼ μ i.i.d. with x ≠ y (q =
    :func:`pair_log_probs`) and labelled x ≻ y with probability σ(r(x) − r(y)): the limit
    of :func:`dpo_loss` on a dataset of n such pairs as n → ∞, on the same axis.  Summed
    exactly over all N² ordered pairs (for symmetric q, 2 Σ q σ(Δr)·(−log σ)).  Its minimum,
    the noise entropy Σ_{x≠y} q(x,y) H(σ(r(x) − r(y))) (H the binary entropy), is reached at
    π* = π_ref·exp(r/β)/Z when μ has full support (:func:`dpo_optimum`).

    Shapes: policy or log π (N,); ref_log_probs (N,); reward (N,); sampling_log_probs μ
    (N,) or None (uniform).  Reference: Rafailov et al. (2023), eq. 2 and 7.
    """
    beta = check_beta(beta)
    log_pi = as_log_pi(policy)
    h = log_pi - check_common(log_pi, ref_log_probs, None)
    r = check_vector(reward, "reward", log_pi.size)
    return population_pair_loss(Logistic(beta), h, bt_pair_mass(r, sampling_log_q(sampling_log_probs, log_pi.size)))[0]


def population_dpo_gradient(policy: Policy, ref_log_probs, reward, beta: float, sampling_log_probs=None) -> np.ndarray:
    """∇θ L(π) = Σ_x g(x) ∇θ log π(x), g = ∂L/∂h of :func:`population_dpo_loss`, (P,)."""
    beta = check_beta(beta)
    log_pi = check_policy(policy).log_probs()
    h = log_pi - check_common(log_pi, ref_log_probs, None)
    r = check_vector(reward, "reward", log_pi.size)
    g = population_pair_loss(Logistic(beta), h, bt_pair_mass(r, sampling_log_q(sampling_log_probs, log_pi.size)))[1]
    return policy.grad_log_prob_weighted(g)


# ---------------------------------------------------------------------------- training
#: Deprecated: DPO training returns a :class:`toyfdiv.training.History` (``.loss`` is
#: ``metrics["loss"]``); the old result type's name is kept as an alias for one release.
DPOResult = History


def train_dpo(policy: Policy, ref_log_probs, dataset: PreferenceDataset, beta: float, steps: int = 300,
              lr: float = 0.05, optimizer: str = "adam", *, record_every: int = 10,
              target_log_probs=None, loss=None, schedule: str = "constant", lr_final: float | None = None,
              callback=None, label: str = "dpo") -> History:
    """θ_{k+1} = opt(θ_k, ∇θ L_DPO(πθ_k)): full-batch DPO with an exact gradient, by
    :func:`toyfdiv.training.optimise`.

    Args:
      policy: the starting policy (usually π_ref itself, any Policy subclass).
      ref_log_probs: log π_ref (N,).
      dataset: the preference pairs; beta: β > 0.
      steps, lr, optimizer, schedule, lr_final: ``toyfdiv.optim`` settings ("adam" or "sgd").
      record_every: record the loss every k updates (and at the end).
      target_log_probs: optional log p (N,); records "kl_to_target" = KL(πθ ‖ p) and
        "tv_to_target" = ½ Σ|πθ − p| (e.g. p the RLHF target for the true reward).
      loss: (loss, gradient) functions of the policy to use instead of DPO's (f-DPO passes
        its own); default :func:`dpo_loss`, :func:`dpo_gradient`.
      callback: called as callback(k, steps) after each update; label: the History's name.
    Returns:
      a :class:`toyfdiv.training.History` with metrics "loss" (also ``.loss``), "lr" and,
      given a target, "kl_to_target" and "tv_to_target".
    """
    beta = check_beta(beta)
    check_common(check_policy(policy).log_probs(), ref_log_probs, check_dataset(dataset))
    if loss is not None and not (isinstance(loss, (tuple, list)) and len(loss) == 2 and all(map(callable, loss))):
        raise ValueError(f"loss={loss!r} must be a pair (loss function, gradient function), or None")
    log_p = None if target_log_probs is None else check_log_probs(target_log_probs, policy.space.size, "target_log_probs")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback={callback!r} must be a function callback(k, steps), or None")
    f_loss, f_grad = (dpo_loss, dpo_gradient) if loss is None else loss

    def record(pol):
        row = {"loss": f_loss(pol, ref_log_probs, dataset, beta)}
        if log_p is not None:
            lp = pol.log_probs()
            row["kl_to_target"] = metrics.kl(lp, log_p)
            row["tv_to_target"] = float(0.5 * np.abs(np.exp(lp) - np.exp(log_p)).sum())
        return row

    def update(pol, rng):
        return f_grad(pol, ref_log_probs, dataset, beta), {}

    config = dict(beta=beta, steps=steps, lr=lr, optimizer=optimizer, n_pairs=len(dataset))
    return optimise(policy, update, steps=steps, lr=lr, optimizer=optimizer, schedule=schedule, lr_final=lr_final,
                    record=record, record_every=record_every, callbacks=() if callback is None else (callback,),
                    label=label, config=config)
