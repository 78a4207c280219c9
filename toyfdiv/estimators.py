"""Sampled f-DPG: Monte-Carlo estimates of ∇θ D_f(πθ ‖ p) from samples, as disco and TRL do.

    ĝ = −(1/n) Σ_i ρ(x_i) [R(x_i) − B_i] ∇θ log πθ(x_i),   x_i ∼ q,
    ρ = πθ/q,   R = −f'(πθ/p̂),   p̂ = P/Ẑ                       (Go et al. 2023, eq. 4, Alg. 1)

q is πθ itself (on-policy, ρ = 1) or a proposal (off-policy); P = Z p is the unnormalised
target and Ẑ its importance-sampling estimate; B is a baseline.  The estimator's memory
(running Ẑ, moving-average baseline, the adaptive proposal) is an explicit, immutable
:class:`EstimatorState`, returned with every estimate and passed back in by the caller.

The same per-sample coefficients c_i = −ρ_i (R_i − B_i)/n drive :func:`sampled_estimate`
(one batch) and :mod:`toyfdiv.estimator_lab` (thousands of batches at once), so the
laboratory measures exactly the estimator that training uses.

References:
  Go, Korbak, Kruszewski, Rozen, Ryu, Dymetman, "Aligning Language Models with
  Preferences through f-divergence Minimization", ICML 2023 (f-DPG, eq. 4; Algorithm 1).
  Khalifa, Elsahar, Dymetman, "A Distributional Approach to Controlled Text Generation",
  ICLR 2021 (GDC; Algorithm 1, KL-adaptive DPG).
  Korbak, Elsahar, Kruszewski, Dymetman, "On Reinforcement Learning and Distribution
  Matching for Fine-Tuning Language Models with no Catastrophic Forgetting", NeurIPS 2022
  (the DPG baseline B = Z π/q, eq. 9).
  Schulman, "Approximating KL divergence", 2020 (the k1 and k3 per-sample estimators).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from ._util import (as_float_array, check_choice, check_instance, check_int, check_log_probs, check_positive_float,
                    check_rng, sample_index)
from .divergences import as_divergence, kl
from .exact import check_pair
from .policies.base import Policy

__all__ = [
    "Estimate", "EstimatorState", "sampled_estimate", "sampled_gradient", "rlhf_reinforce_gradient",
    "Z_OPTIONS", "BASELINES", "KL_ESTIMATORS",
]

Z_OPTIONS = ("exact", "batch", "running")
BASELINES = ("none", "mean", "loo", "ema", "dpg")
KL_ESTIMATORS = ("k1", "k3")
ADAPTIVE_KL = ("exact", "estimated")


class EstimatorState(NamedTuple):
    """What a sampled estimator carries from one step to the next (immutable).

    step: number of estimates made so far.
    log_z_sum, z_count: log Σ_j P(x_j)/q(x_j) over every sample seen, and their number:
      the running Ẑ = exp(log_z_sum)/z_count ("running" Z).
    ema: the moving-average baseline (None before the first batch).
    proposal: the current proposal q of the KL-adaptive rule (a Policy or a read-only
      log-probability vector), None when not adaptive.
    swaps: how many times the adaptive rule replaced q by πθ.
    """

    step: int = 0
    log_z_sum: float = -np.inf
    z_count: int = 0
    ema: float | None = None
    proposal: Policy | np.ndarray | None = None
    swaps: int = 0


class Estimate(NamedTuple):
    """One sampled estimate: ĝ (P,), the next state, and float diagnostics.

    diagnostics: "log_z_hat" (log Ẑ used), "log_z_error" (log Ẑ − log Z), "ess" (effective
    sample size of ρ = π/q, (Σρ)²/Σρ²), "ess_target" (the same for P/q: how well the batch
    covers p), "reward_mean" and "reward_std" (ρ-weighted pseudo-reward), "baseline" (mean
    B), and "swapped" (0/1) when the proposal is KL-adaptive.
    """

    gradient: np.ndarray
    state: EstimatorState
    diagnostics: dict[str, float]


# ---------------------------------------------------------------------------- checks
def check_proposal(policy: Policy, proposal) -> Policy | np.ndarray | None:
    """Validate q: None (on-policy), a Policy on the same space, or log q (N,), normalised.

    q must cover πθ: q(x) = 0 where πθ(x) > 0 makes ρ = π/q infinite (ValueError).
    """
    if proposal is None or proposal is policy:
        return proposal
    if isinstance(proposal, Policy):
        if proposal.space != policy.space:
            raise ValueError(f"proposal lives on {proposal.space!r} but the policy on {policy.space!r}")
        log_q = proposal.log_probs()
    else:
        log_q = check_log_probs(proposal, policy.space.size, "proposal")
    uncovered = np.isneginf(log_q) & np.isfinite(policy.log_probs())
    if uncovered.any():
        first = policy.space.decode(int(np.flatnonzero(uncovered)[0]))
        raise ValueError(
            f"proposal gives probability 0 to {int(uncovered.sum())} sequences where π > 0 "
            f"(e.g. {first!r}); importance weights π/q would be infinite — use a proposal "
            "with full support"
        )
    if isinstance(proposal, Policy):
        return proposal
    log_q = np.array(log_q, dtype=float)
    log_q.setflags(write=False)
    return log_q


def draw(policy: Policy, proposal, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x ∼ q: indices (n,), log πθ(x) (n,), log q(x) (n,); q = πθ when proposal is None."""
    if proposal is None:
        idx = policy.sample(n, rng)
        log_pi = policy.log_prob_at(idx)
        return idx, log_pi, log_pi
    if isinstance(proposal, Policy):
        idx = proposal.sample(n, rng)
        return idx, policy.log_prob_at(idx), proposal.log_prob_at(idx)
    idx = sample_index(np.exp(proposal), n, rng)
    return idx, policy.log_prob_at(idx), proposal[idx]


# ---------------------------------------------------------------------------- the estimator
def log_mean_exp(log_w: np.ndarray) -> np.ndarray:
    """log((1/n) Σ_i exp(log w_i)) along the last axis; −inf rows stay −inf."""
    return logsumexp(log_w, axis=-1) - np.log(log_w.shape[-1])


def ess(log_w: np.ndarray) -> np.ndarray:
    """(Σ w)² / Σ w², the effective sample size of weights w, from log w along the last axis."""
    return np.exp(2 * logsumexp(log_w, axis=-1) - logsumexp(2 * log_w, axis=-1))


def pseudo_rewards(div, log_pi_x: np.ndarray, log_scores_x: np.ndarray, log_z_hat) -> np.ndarray:
    """R(x) = −f'(πθ(x)/p̂(x)), p̂ = P/Ẑ, computed from log t = log π − log P + log Ẑ.

    Where P(x) = 0 < π(x), R = −f'(∞) = −lim f(t)/t (ValueError if infinite: D_f = ∞);
    where π(x) = 0 (an off-policy sample) R is irrelevant (ρ = 0) and set to 0.
    ``log_z_hat`` broadcasts against the leading axes (one Ẑ per batch).
    """
    log_z_hat = np.broadcast_to(np.asarray(log_z_hat, dtype=float)[..., None], log_pi_x.shape)
    out = np.zeros(log_pi_x.shape)
    pi_pos = np.isfinite(log_pi_x)
    inside = pi_pos & np.isfinite(log_scores_x)
    outside = pi_pos & ~np.isfinite(log_scores_x)
    out[inside] = div.pseudo_reward(log_pi_x[inside] - log_scores_x[inside] + log_z_hat[inside])
    if outside.any():
        if not np.isfinite(div.slope_at_infinity):
            raise ValueError(
                f"divergence {div.name!r} is infinite here: a sample has target probability 0 "
                "where π > 0, and f'(∞) = ∞ for this f; use a smoothed target (pointwise "
                "epsilon > 0) or a divergence with finite f'(∞)"
            )
        out[outside] = -div.slope_at_infinity
    return out


def baseline_values(name: str, div, rho: np.ndarray, R: np.ndarray, ema: float | None) -> np.ndarray:
    """B_i for the pseudo-rewards R (…, n) with importance weights ρ (…, n); same shape.

    "none": 0.  "mean": the ρ-weighted batch mean Σρ_j R_j / Σρ_j (on-policy: mean R).
    "loo": the same mean without sample i — on-policy, "mean" = (1 − 1/n) × "loo" exactly, so
    the batch mean shrinks the estimate by 1/n (a bias of ‖g‖/n) and "loo" is unbiased.  "ema": the
    moving average of past batch means (``ema``), independent of this batch from the second
    step on; on the first step it is the batch mean, so that step's estimate is "mean"'s,
    (1 − 1/n) g in expectation.  "dpg": −f'(1), the pseudo-reward at
    π = p — for forward KL B = 1, i.e. Korbak et al.'s Ẑπ/q in the P/q scale, which makes
    the on-policy advantage p̂/π − 1 (and E_π[p/π] = 1 exactly for every π).
    """
    if name == "none":
        return np.zeros_like(R)
    if name == "dpg":
        return np.full_like(R, float(div.pseudo_reward(np.zeros(1))[0]))
    s_r, s = (rho * R).sum(axis=-1, keepdims=True), rho.sum(axis=-1, keepdims=True)
    mean = np.divide(s_r, s, out=np.zeros_like(s_r), where=s > 0)
    if name == "mean" or (name == "ema" and ema is None):
        return np.broadcast_to(mean, R.shape).copy()
    if name == "ema":
        return np.full_like(R, ema)
    others = s - rho  # "loo"
    return np.divide(s_r - rho * R, others, out=np.zeros_like(R), where=others > 0)


def coefficients(div, log_pi_x, log_q_x, log_scores_x, log_z_hat, baseline: str, ema=None):
    """c_i = −ρ_i (R_i − B_i)/n, so that ĝ = Σ_i c_i ∇θ log πθ(x_i); arrays (…, n).

    Returns (c, rho, R, B).  Unbiasedness: with exact Z, a baseline B_i that does not depend
    on x_i ("none", "loo", "dpg", and "ema" once it holds a past batch) keeps
    E_q[ĝ] = ∇θ D_f exactly, because E_q[ρ B ∇ log π] = B Σ_x ∇π(x) = 0; the batch "mean"
    (and "ema" on its first step, where it is the batch mean) uses x_i itself: on-policy
    R_i − mean(R) = (1 − 1/n)(R_i − mean_{j≠i} R), so E[ĝ] = (1 − 1/n) ∇θ D_f.  An
    estimated Ẑ adds an O(1/n) bias.  For forward KL, R = p̂/π = (Z/Ẑ) p/π, so with "none",
    "mean" or "loo" (which scale with R) each ĝ is the exact-Z estimate times Z/Ẑ; with
    "dpg" (B = 1) or a carried "ema" it is not a rescaling.
    """
    log_rho = log_pi_x - log_q_x
    rho = np.exp(np.where(np.isfinite(log_pi_x), log_rho, -np.inf))  # (…, n)
    R = pseudo_rewards(div, log_pi_x, log_scores_x, log_z_hat)
    B = baseline_values(baseline, div, rho, R, ema)
    return -rho * (R - B) / log_pi_x.shape[-1], rho, R, B


def _log_q_of(proposal) -> np.ndarray:
    return proposal.log_probs() if isinstance(proposal, Policy) else proposal


def _weighted_std(deviations: np.ndarray, rho: np.ndarray) -> float:
    """√(Σ ρ d² / Σ ρ); beyond |d| = 1e150 as s·√(Σ ρ (d/s)² / Σ ρ), s = max |d|, so d² cannot overflow."""
    s = float(np.abs(deviations).max()) if deviations.size else 0.0
    if s <= 1e150:  # the direct form (bit for bit the earlier diagnostics)
        return float(np.sqrt(rho @ deviations**2 / rho.sum()))
    if not np.isfinite(s):
        return s
    return s * float(np.sqrt(rho @ (deviations / s) ** 2 / rho.sum()))


def sampled_estimate(
    policy: Policy,
    target,
    divergence,
    *,
    n: int = 256,
    rng: np.random.Generator,
    state: EstimatorState | None = None,
    proposal=None,
    z: str = "running",
    baseline: str = "mean",
    ema_decay: float = 0.9,
    adaptive_every: int | None = None,
    adaptive_kl: str = "estimated",
) -> Estimate:
    """ĝ = −(1/n) Σ_i (πθ/q)(x_i) [−f'(πθ(x_i)/p̂(x_i)) − B_i] ∇θ log πθ(x_i), x_i ∼ q.

    An estimate of ∇θ D_f(πθ ‖ p) (:func:`toyfdiv.fdpg.exact_gradient`) from n samples
    (Go et al. 2023, eq. 4 with importance weights; Algorithm 1).

    Args:
      policy, target, divergence: πθ, p = P/Z, and f (an FDivergence or its name).
      n: samples per estimate, ≥ 1.
      rng: a ``np.random.Generator`` (the only randomness).
      state: the :class:`EstimatorState` returned by the previous call (None: a fresh one).
      proposal: q — None (on-policy, q = πθ), a Policy, or log q (N,).  It must cover πθ.
        With ``adaptive_every`` it only initialises q (default: πθ at the first call).
      z: Ẑ in p̂ = P/Ẑ — "exact" (log Z of the target, for ablations), "batch"
        (Ẑ = (1/n) Σ_i P(x_i)/q(x_i), unbiased for Z) or "running" (the same average over
        every sample seen so far, kept in the state; disco's moving estimate).
      baseline: "none", "mean", "loo", "ema" (decay ``ema_decay``) or "dpg"
        (:func:`baseline_values`); subtracted from R inside ρ(R − B).
      adaptive_every: k — the KL-adaptive proposal of GDC (Khalifa et al. 2021, Alg. 1):
        after every k-th estimate, q ← πθ if KL(p‖πθ) < KL(p‖q).  ``adaptive_kl`` compares
        "exact"ly over the space or "estimated" from this batch by self-normalised
        importance sampling, KL(p‖π) − KL(p‖q) ≈ Σ w_i log(q/π)(x_i) / Σ w_i, w = P/q.
    Returns:
      an :class:`Estimate` (gradient (P,), state, diagnostics).
    Unbiasedness: with z="exact" and a baseline independent of x_i ("none", "loo", "dpg",
    and "ema" from its second step on) E[ĝ] = ∇θ D_f for any covering q.  The batch "mean"
    — and "ema" on its first step, which is the batch mean — gives (1 − 1/n) ∇θ D_f
    on-policy.  An estimated Ẑ (correlated with the batch) adds an O(1/n) bias: forward KL
    takes it multiplicatively (R = p̂/π, so with "none", "mean" or "loo" each ĝ is the
    exact-Z estimate of the same batch times Z/Ẑ > 0: the same direction batch by batch, a
    self-normalised estimate whose mean is biased O(1/n) in length; not so with "dpg" or
    "ema", whose B does not scale with Ẑ); reverse KL additively (R = log(p̂/π) − 1 shifts
    by −log Ẑ, which "loo" removes exactly); every other f is distorted.
    """
    check_pair(policy, target)
    div = as_divergence(divergence)
    n = check_int(n, "n")
    rng = check_rng(rng)
    z = check_choice(z, "z", Z_OPTIONS)
    baseline = check_choice(baseline, "baseline", BASELINES)
    ema_decay = check_positive_float(ema_decay, "ema_decay", allow_zero=True)
    if ema_decay >= 1:
        raise ValueError(f"ema_decay={ema_decay!r} is out of range; allowed: [0, 1)")
    adaptive_kl = check_choice(adaptive_kl, "adaptive_kl", ADAPTIVE_KL)
    if adaptive_every is not None:
        adaptive_every = check_int(adaptive_every, "adaptive_every")
    if state is None:
        state = EstimatorState()
    elif not isinstance(state, EstimatorState):
        raise ValueError(f"state={state!r} must be an EstimatorState or None")

    proposal = check_proposal(policy, proposal)
    if adaptive_every is not None:
        q = policy if state.proposal is None and proposal is None else (
            proposal if state.proposal is None else check_proposal(policy, state.proposal))
    else:
        q = proposal
    idx, log_pi_x, log_q_x = draw(policy, None if q is policy else q, n, rng)
    log_scores_x = target.log_scores[idx]
    log_ratio = log_scores_x - log_q_x  # (n,) log P/q
    batch_log_sum = float(logsumexp(log_ratio))
    log_z_sum, z_count = float(np.logaddexp(state.log_z_sum, batch_log_sum)), state.z_count + n
    log_z_hat = {"exact": target.log_z, "batch": batch_log_sum - np.log(n),
                 "running": log_z_sum - np.log(z_count)}[z]

    with np.errstate(over="ignore", invalid="ignore"):  # inf − inf with a baseline: refused just below
        c, rho, R, B = coefficients(div, log_pi_x, log_q_x, log_scores_x, log_z_hat, baseline, state.ema)
    if not np.all(np.isfinite(c)):  # e.g. Pearson's f'(π/p) at p ≈ e^{−1e300}: the estimate itself is infinite
        raise ValueError(f"policy and target give {div.name} pseudo-rewards that overflow float64 on the sampled "
                         f"sequences (largest log π/p = {np.max(log_pi_x - log_scores_x + log_z_hat):.3g}); allowed: a "
                         "target that covers the policy, or a divergence whose f' stays finite (JS, TV, Hellinger)")
    gradient = policy.grad_log_prob_at(idx, c)
    r_mean = float(rho @ R / rho.sum())
    ema = r_mean if state.ema is None else ema_decay * state.ema + (1 - ema_decay) * r_mean

    diagnostics = {
        "log_z_hat": float(log_z_hat),
        "log_z_error": float(log_z_hat - target.log_z),
        "ess": float(ess(np.where(np.isfinite(log_pi_x), log_pi_x - log_q_x, -np.inf))),
        "ess_target": float(ess(log_ratio)) if np.isfinite(batch_log_sum) else 0.0,
        "reward_mean": r_mean,
        "reward_std": _weighted_std(R - r_mean, rho),
        "baseline": float(B.mean()),
    }
    proposal_next, swaps = (None, state.swaps)
    if adaptive_every is not None:
        swap = False
        if (state.step + 1) % adaptive_every == 0 and q is not policy:
            if adaptive_kl == "exact":
                swap = kl(target.log_probs, policy.log_probs()) < kl(target.log_probs, _log_q_of(q))
            elif np.isfinite(batch_log_sum):
                w = np.exp(log_ratio - batch_log_sum)  # (n,) self-normalised P/q
                swap = float(w @ (log_q_x - log_pi_x)) < 0
        proposal_next, swaps = (policy if swap else q), state.swaps + int(swap)
        diagnostics["swapped"] = float(swap)
    new_state = EstimatorState(state.step + 1, log_z_sum, z_count, float(ema), proposal_next, swaps)
    return Estimate(gradient, new_state, diagnostics)


def sampled_gradient(policy: Policy, target, divergence, n: int = 256, *, rng: np.random.Generator,
                     baseline: str = "mean", **options) -> np.ndarray:
    """ĝ ≈ ∇θ D_f(πθ ‖ p), (P,): :func:`sampled_estimate` (…).gradient, one fresh batch.

    Options as for :func:`sampled_estimate` (proposal, z, …); without a state, "running" Z
    is the batch estimate.
    """
    return sampled_estimate(policy, target, divergence, n=n, rng=rng, baseline=baseline, **options).gradient


# ---------------------------------------------------------------------------- RLHF as practised
def kl_per_sample(log_pi_x: np.ndarray, log_a_x: np.ndarray, kl_estimator: str) -> np.ndarray:
    """k(x) with E_π[k] = KL(π ‖ a): k1 = log(π/a), k3 = (a/π − 1) − log(a/π) (Schulman 2020).

    k3 ≥ 0 always, and when a/π stays near 1 it often has lower variance than k1 as an
    estimate of the KL *value* — not in general: for π = (.99, .01), a = (.01, .99),
    Var_π k1 ≈ 0.84 but Var_π k3 ≈ 80 (a/π = 99 on the rare sample).
    """
    log_ratio = log_a_x - log_pi_x  # log(a/π)
    if kl_estimator == "k1":
        return -log_ratio
    return np.expm1(log_ratio) - log_ratio


def rlhf_reinforce_gradient(policy: Policy, reward, log_a, beta: float, n: int, rng: np.random.Generator,
                            kl_estimator: str = "k1", baseline: str = "none") -> np.ndarray:
    """ĝ = −(1/n) Σ_i [r(x_i) − β k(x_i) − B_i] ∇θ log πθ(x_i), x_i ∼ πθ; (P,).

    REINFORCE on the KL-penalised reward as practitioners write it (Ziegler et al. 2019;
    TRL), descending −J(π) = −(E_π[r] − β KL(π‖a)).

    With k1 = log(π/a) it is an unbiased estimate of :func:`toyfdiv.fdpg.rlhf_gradient`
    (= β ∇θ KL(π‖p), Korbak et al. 2022), since ∇θ KL(π‖a) = E_π[log(π/a) ∇θ log π].
    k3 = (a/π − 1) − log(a/π) has the same expectation KL(π‖a), but as a per-sample
    *reward* it is differentiated by the score function only: k3 − k1 = a/π − 1 is not
    constant, and E_π[(a/π − 1) ∇ log π] = Σ_x a ∇ log π = −∇θ KL(a‖π).  So k3 gives
    E[ĝ] = rlhf_gradient − β ∇θ KL(a‖π): the gradient of another objective (its KL term
    is KL(π‖a) − KL(a‖π)), biased for RLHF.

    Args:
      reward, log_a: r and log a over the space (N,); beta > 0; n ≥ 1 samples; rng.
      kl_estimator: "k1" or "k3".  baseline: "none", "mean" or "loo" (batch means of the
        shaped reward; "loo" keeps the estimate unbiased).
    """
    check_instance(policy, Policy, "policy")
    n = check_int(n, "n")
    rng = check_rng(rng)
    beta = check_positive_float(beta, "beta")
    kl_estimator = check_choice(kl_estimator, "kl_estimator", KL_ESTIMATORS)
    baseline = check_choice(baseline, "baseline", ("none", "mean", "loo"))
    reward = as_float_array(reward, "reward")
    log_a = check_log_probs(log_a, policy.space.size, "log_a")
    if reward.shape != (policy.space.size,):
        raise ValueError(f"reward has shape {reward.shape}; expected ({policy.space.size},)")
    if not np.isfinite(reward).all():
        raise ValueError(f"reward contains NaN or inf at {np.flatnonzero(~np.isfinite(reward))[:5].tolist()}")
    if (np.isneginf(log_a) & np.isfinite(policy.log_probs())).any():
        raise ValueError("log_a is -inf where π > 0: KL(π‖a) and its per-sample estimate are infinite; "
                         "give a base model with full support")
    idx = policy.sample(n, rng)
    log_pi_x = policy.log_prob_at(idx)
    shaped = reward[idx] - beta * kl_per_sample(log_pi_x, log_a[idx], kl_estimator)  # (n,)
    B = baseline_values(baseline, None, np.ones(n), shaped, None)
    return policy.grad_log_prob_at(idx, -(shaped - B) / n)
