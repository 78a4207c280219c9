"""The KL estimators k1, k2, k3 (Schulman 2020), their placement and their level, exactly.

With the log-ratio δ = log π − log a (a = the reference policy, r = a/π = e^{−δ}):

    k1 = δ = −log r              E_π[k1] = KL(π‖a)    unbiased, can be negative
    k2 = ½ δ²                    E_π[k2] ≈ KL(π‖a)    biased, low variance
    k3 = (r − 1) − log r = e^{−δ} − 1 + δ   E_π[k3] = KL(π‖a)   unbiased, ≥ 0

(J. Schulman, "Approximating KL divergence", 2020.)  Where the estimate goes decides the
update it makes (Tang & Munos 2025; Shah et al. 2025, "A comedy of estimators"):

- placement "reward": the penalty −β k(y) joins the reward, so the update (of the quantity
  minimised, per unit β) is E_π[k(y) ∇θ log π(y)].  For k1 it is ∇θ KL(π‖a): the RLHF
  gradient (Ziegler et al. 2019; Stiennon et al. 2020).
- placement "loss": β k(y) is added to the loss and differentiated with the sample held
  fixed, E_π[∇θ k(y)] = E_π[k'(δ) ∇θ log π(y)]:  k1 → E_π[∇ log π] = 0 (no
  regularisation at all); k2 → E_π[δ ∇ log π] = ∇θ KL(π‖a); k3 → E_π[(1 − a/π) ∇ log π] =
  −Σ a ∇ log π = ∇θ KL(a‖π) (the forward KL).
- level "sequence" uses δ(y) of the whole response; level "token" sums the estimator over
  the tokens, Σ_t k(δ_t) with δ_t = log π(y_t|y_<t) − log a(y_t|y_<t) (what GRPO and
  PPO implementations do).  k1 sums to the sequence value; k2 and k3 do not, and as a loss
  they give Σ_t k'(δ_t) ∇ log π(y_t|y_<t), a partial gradient of neither KL.  As a reward the
  token sum is the return Σ_t k(δ_t) (REINFORCE with γ = 1: by causality the same as
  return-to-go).
"""

from __future__ import annotations

import numpy as np

from .._util import as_float_array, check_instance, check_log_probs
from ..policies.autoregressive import AutoregressivePolicy
from ..policies.base import Policy
from .advantages import choice

__all__ = ["ESTIMATORS", "PLACEMENTS", "LEVELS", "estimate", "derivative", "token_log_ratios", "kl_values",
           "kl_loss_gradient", "expected_kl_gradient"]

ESTIMATORS = ("k1", "k2", "k3")
PLACEMENTS = ("reward", "loss")
LEVELS = ("sequence", "token")


def estimate(log_ratio, estimator: str) -> np.ndarray:
    """k(δ) for δ = log π − log a: k1 = δ, k2 = ½δ², k3 = e^{−δ} − 1 + δ (expm1, no cancellation)."""
    choice(estimator, "estimator", ESTIMATORS)
    d = as_float_array(log_ratio, "log_ratio")
    if estimator == "k1":
        return d.copy()
    if estimator == "k2":
        return 0.5 * d * d
    return np.expm1(-d) + d


def derivative(log_ratio, estimator: str) -> np.ndarray:
    """dk/dδ: k1' = 1, k2' = δ, k3' = 1 − e^{−δ} (= 1 − a/π)."""
    choice(estimator, "estimator", ESTIMATORS)
    d = as_float_array(log_ratio, "log_ratio")
    if estimator == "k1":
        return np.ones_like(d)
    if estimator == "k2":
        return d.copy()
    return -np.expm1(-d)


def weighted_derivative(mass: np.ndarray, log_ratio: np.ndarray, estimator: str) -> np.ndarray:
    """m · k'(δ), elementwise; for k3, m − exp(log m − δ), so that m · a/π stays finite where a/π
    overflows (a sequence π has all but abandoned, m ∝ π) and m = 0 gives 0, not 0 · inf."""
    if estimator != "k3":
        return mass * derivative(log_ratio, estimator)
    near = log_ratio >= -30  # e^{−δ} ≤ 1e13: the expm1 form, exact near δ = 0
    with np.errstate(divide="ignore", over="ignore"):
        far = mass - np.sign(mass) * np.exp(np.log(np.abs(mass)) - log_ratio)  # |m| e^{−δ} ≫ |m|: no cancellation
        return np.where(near, mass * -np.expm1(-np.where(near, log_ratio, 0.0)), np.where(mass == 0, 0.0, far))


def _check(policy: Policy, log_ref) -> np.ndarray:
    check_instance(policy, Policy, "policy")
    log_ref = check_log_probs(log_ref, policy.space.size, "log_ref")
    if np.isneginf(log_ref).any():
        raise ValueError("log_ref has zero-probability sequences; the KL estimators need a reference with full support")
    return log_ref


def _token_capable(policy: Policy) -> None:
    if not (hasattr(policy, "log_conditionals") and hasattr(policy, "grad_log_cond_weighted")):
        raise ValueError(f"level='token' needs per-token log-probabilities: {type(policy).__name__} has none; "
                         "allowed: AutoregressivePolicy, TinyLM")


def token_log_ratios(policy: Policy, log_ref) -> list[np.ndarray]:
    """δ_t[u, v] = log π(v|u) − log a(v|u) per depth, (nodes_t, choices_t); a's conditionals
    are read off log_ref (N,) on the prefix tree (:meth:`AutoregressivePolicy.from_log_probs`)."""
    log_ref = _check(policy, log_ref)
    _token_capable(policy)
    return [lp - lr for lp, lr in zip(policy.log_conditionals(), _ref_conditionals(policy.space, log_ref))]


_REF_CACHE: dict = {}


def _ref_conditionals(space, log_ref: np.ndarray) -> list[np.ndarray]:
    """a's conditionals on the prefix tree, remembered for the last few references (training reuses one)."""
    key = (space, log_ref.tobytes())
    if key not in _REF_CACHE:
        if len(_REF_CACHE) >= 8:
            _REF_CACHE.pop(next(iter(_REF_CACHE)))
        _REF_CACHE[key] = AutoregressivePolicy.from_log_probs(space, log_ref).log_conditionals()
    return _REF_CACHE[key]


def kl_values(policy: Policy, log_ref, estimator: str, level: str = "sequence") -> np.ndarray:
    """(N,) the estimate on each response: k(δ(y)) (sequence) or Σ_t k(δ_t(y)) (token)."""
    log_ref = _check(policy, log_ref)
    choice(level, "level", LEVELS)
    if level == "sequence":
        return estimate(policy.log_probs() - log_ref, estimator)
    per_edge = [estimate(d, estimator) for d in token_log_ratios(policy, log_ref)]
    return policy.space.sequence_log_probs(per_edge)  # a path sum down the tree


def kl_loss_gradient(policy: Policy, log_ref, estimator: str, level: str, mass) -> np.ndarray:
    """Σ_y m(y) ∇θ k(y), the sample held fixed; m (N,) → (P,).

    sequence: Σ_y m(y) k'(δ(y)) ∇ log π(y);  token: Σ_{t,u,v} M_t[u,v] k'(δ_t[u,v]) ∇ log π(v|u)
    with M = child_mass(m), the mass through each edge of the prefix tree.
    """
    log_ref = _check(policy, log_ref)
    choice(level, "level", LEVELS)
    m = as_float_array(mass, "mass")
    if level == "sequence":
        return policy.grad_log_prob_weighted(weighted_derivative(m, policy.log_probs() - log_ref, estimator))
    deltas = token_log_ratios(policy, log_ref)
    W = [weighted_derivative(M, d, estimator) for M, d in zip(policy.space.child_mass(m), deltas)]
    return policy.grad_log_cond_weighted(W)


def expected_kl_gradient(policy: Policy, log_ref, estimator: str, placement: str, level: str = "sequence"
                         ) -> np.ndarray:
    """E_{y∼π}[update of the KL term], as the gradient of the quantity minimised; (P,).

    placement "loss": E_π[∇θ k(y)] (sample held fixed); "reward": E_π[k(y) ∇θ log π(y)].
    Exact, by enumeration of the space.  See the module docstring for what each gives.
    """
    log_ref = _check(policy, log_ref)
    choice(estimator, "estimator", ESTIMATORS)
    choice(placement, "placement", PLACEMENTS)
    choice(level, "level", LEVELS)
    pi = policy.probs()
    if placement == "reward":
        with np.errstate(over="ignore", invalid="ignore"):
            k = kl_values(policy, log_ref, estimator, level)
        if not np.all(np.isfinite(k[pi > 0])):
            raise ValueError(f"policy and log_ref give {estimator} estimates that overflow float64 (|log π − log a| "
                             f"up to {np.max(np.abs(policy.log_probs() - log_ref)):.3g}); allowed: a reference "
                             "within ~1e150 nats of the policy")
        return policy.grad_log_prob_weighted(np.where(pi > 0, pi * np.where(np.isfinite(k), k, 0.0), 0.0))
    return kl_loss_gradient(policy, log_ref, estimator, level, pi)
