"""Where each algorithm ends: the fixed point of its exact expected update, and the closed forms.

Training on the expected update until it stops moving finds θ* with E[∇L(θ*)] = 0.  The
closed forms it is compared with (per prompt, π over the responses):

- the RLHF target, p = a e^{r/β} / Z, the maximiser of E_π[r] − β KL(π‖a)
  (REINFORCE with k1 in the reward ends here);
- k3 in the loss: E_π[r] − β KL(a‖π) is maximised at π = β a / (Λ − r), Λ > max r the
  unique constant that normalises it (stationarity: r + β a/π = Λ) — the forward-KL f-DPO
  closed form (Wang et al. 2023);
- with GRPO's advantage and binary rewards the policy-gradient part is w(p) ∇p
  (:func:`effective_weight`), so GRPO with k3 in the loss ends at β a / (Λ − w(p*) r): the
  k3 form with the reward rescaled by w at the fixed point's own success rate p*.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, root
from scipy.special import expit, logsumexp

from ..loop import optimise
from ..targets import ConvergenceWarning
from .._util import log_normalise, check_real, as_float_array, check_int, check_positive_float, check_log_probs
from .advantages import effective_weight
from .batchnorm import batch_weights
from .algorithms import Algorithm
from .expected import Update, expected_update, policies_of

__all__ = ["FixedPoint", "FixedPointWarning", "fixed_point", "rlhf_target", "k3_target", "atlas",
           "grpo_success_recursion", "reinforce_pp_success", "MC_CONVERGED"]


class FixedPointWarning(ConvergenceWarning, RuntimeWarning):
    """:func:`fixed_point` stopped with the update not yet zero: a :class:`~toyfdiv.targets.ConvergenceWarning` (the
    project's class for solvers that stopped short) and a RuntimeWarning (what it has always been)."""


@dataclass(frozen=True)
class FixedPoint:
    """The end of training on the expected update: policies, log π (C, N), steps, ‖update‖, converged, and the
    update's noise floor (0 when exact)."""

    policies: tuple
    log_probs: np.ndarray
    steps: int
    grad_norm: float
    converged: bool
    noise_floor: float = 0.0


#: mode "mc": the update counts as zero when ‖u‖ < MC_CONVERGED × its noise floor
MC_CONVERGED = 3.0


def fixed_point(alg: Algorithm, task, G: int, *, start=None, steps: int = 5000, lr: float = 1.0,
                tol: float = 1e-10, optimizer: str = "sgd", check_every: int = 50, mode: str = "exact",
                trials: int = 4000, seed: int = 0, polish: bool = False) -> FixedPoint:
    """θ* with E_batch[∇θ L(θ*)] = 0: train on the expected update through the one loop
    (:func:`toyfdiv.loop.optimise`) until it vanishes, then (``polish``) find its root.

    The one way to find where an RL algorithm ends (:func:`toyfdiv.collapse.rl_fixed_point` is
    this with Adam and the polish).
    mode "exact": until ‖E[∇L]‖ < tol (checked every ``check_every`` steps) or ``steps``.
    mode "mc" (an expectation only Monte Carlo can give, e.g. REINFORCE++ with the KL in the
    reward): each step uses a fresh estimate from ``trials`` batches (seeded by ``seed``), and
    training stops at the first check where the estimate is within MC_CONVERGED (3) noise
    floors of zero — the fixed point is then located only to the noise's resolution (compare two
    seeds).  The loop runs in rounds of ``check_every`` steps; plain SGD (the default) carries
    no state, so the rounds are one continuous run (Adam's moments restart each round).
    A ``start`` with shared parameters (a ``pull_back``: :class:`toyfdiv.rl.shared.PromptedTinyLM`)
    is trained as itself, on the pulled-back update (its noise floor: per coordinate, the root of
    the pulled-back variances, the chunks' prompts being independent); one fine-tuning adapter
    added to every prompt's logits is ``start=``:meth:`SharedAdapter.at_base(task) <toyfdiv.rl.SharedAdapter.at_base>`.
    ``polish=True`` (mode "exact" only): after the loop, Powell's hybrid root finder
    (``scipy.optimize.root``, method "hybr", xtol 1e-14) on the same exact expected update, from
    where the loop stopped; its root is kept if the update is smaller there (``steps`` counts
    the loop's steps only).
    Warns (a :class:`FixedPointWarning`; converged=False) if it did not converge — e.g. without a
    KL term, where θ runs off to infinity and no fixed point exists.
    """
    steps = check_int(steps, "steps")
    check_every = check_int(check_every, "check_every")
    lr = check_positive_float(lr, "lr")
    tol = check_positive_float(tol, "tol")
    if mode not in ("exact", "mc"):
        raise ValueError(f"mode={mode!r} is unknown; allowed: ['exact', 'mc']")
    if not isinstance(polish, bool) or (polish and mode != "exact"):
        raise ValueError(f"polish={polish!r} with mode={mode!r}; allowed: False, or True with mode 'exact' (a root "
                         "finder needs the exact update, not a Monte Carlo estimate)")
    trials = check_int(trials, "trials", low=20)
    rng = np.random.default_rng(check_int(seed, "seed", low=0))
    pols = policies_of(task.base_policies() if start is None else start)
    shared = hasattr(start, "pull_back")  # one θ for all prompts (e.g. rl.PromptedTinyLM): its own parameters
    holder = start if shared else _Stacked(pols)

    def estimate(policy):
        u = expected_update(alg, policy.policies, task, G, mode=mode, trials=trials, rng=rng, chunks=20)
        if not shared:
            return u
        return Update(policy.pull_back(u.gradient), np.zeros(policy.n_params) if u.mode == "exact" else
                      np.sqrt(policy.pull_back(u.stderr**2)), u.mode, u.trials)

    def update(policy, _):
        return estimate(policy).gradient, {}

    def done_yet(u):
        return u.noise_floor and np.linalg.norm(u.gradient) < MC_CONVERGED * u.noise_floor if mode == "mc" else \
            np.linalg.norm(u.gradient) < tol

    done, u = 0, estimate(holder)
    while not done_yet(u) and done < steps:
        k = min(check_every, steps - done)
        holder = optimise(holder, update, steps=k, lr=lr, optimizer=optimizer, record_every=k,
                          label=f"fixed_point({alg.name})").policy
        done += k
        u = estimate(holder)
    if polish:
        holder, u = _polish(holder, u, estimate)
    norm, converged = float(np.linalg.norm(u.gradient)), bool(done_yet(u))
    if not converged:
        bar = f"{MC_CONVERGED:g} noise floors = {MC_CONVERGED * u.noise_floor:.2e}" if mode == "mc" else f"tol = {tol:.0e}"
        warnings.warn(f"fixed_point({alg.name}) did not converge in {steps} steps{' and the polish' * polish}: "
                      f"‖E[∇L]‖ = {norm:.2e} ≥ {bar} (without a KL term no fixed point may exist); raise steps or lr",
                      FixedPointWarning, stacklevel=2)
    return FixedPoint(holder.policies, np.stack([p.log_probs() for p in holder.policies]), done, norm, converged,
                      u.noise_floor)


def _polish(holder, u: Update, estimate):
    """(holder, u) moved to the root of θ ↦ E[∇L(θ)] found by Powell's hybrid method from holder's θ, if the
    update is smaller there; else unchanged.  ``estimate(policy)`` is the exact expected update (an Update)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the root finder's own progress warnings
        sol = root(lambda th: estimate(holder.with_params(th)).gradient, holder.params, method="hybr",
                   options=dict(xtol=1e-14))
    if not np.all(np.isfinite(sol.x)):
        return holder, u
    polished = holder.with_params(sol.x)
    u_polished = estimate(polished)
    if np.linalg.norm(u_polished.gradient) < np.linalg.norm(u.gradient):
        return polished, u_polished
    return holder, u


class _Stacked:
    """One parameter vector for the per-prompt policies (what the loop optimises)."""

    def __init__(self, policies):
        self.policies = tuple(policies)
        self._sizes = np.cumsum([0] + [p.n_params for p in self.policies])

    @property
    def params(self) -> np.ndarray:
        return np.concatenate([p.params for p in self.policies])

    def with_params(self, theta) -> "_Stacked":
        return _Stacked(p.with_params(theta[a:b]) for p, a, b in zip(self.policies, self._sizes[:-1], self._sizes[1:]))


def rlhf_target(log_a, reward, beta: float) -> np.ndarray:
    """log p = log a + r/β − log Z, normalised along the last axis; (…, N)."""
    log_a, r = as_float_array(log_a, "log_a"), as_float_array(reward, "reward")
    beta = check_positive_float(beta, "beta")
    s = log_a + r / beta
    return log_normalise(s, axis=-1)


def k3_target(log_a, reward, beta: float) -> np.ndarray:
    """log π = log β + log a − log(Λ − r), with Λ ∈ (max r, max r + β] solving Σ β a/(Λ − r) = 1; (N,).

    The maximiser of E_π[r] − β KL(a‖π) over the simplex (k3 as a loss, in expectation).
    """
    r = as_float_array(reward, "reward")
    log_a = check_log_probs(log_a, r.size, "log_a")
    beta = check_positive_float(beta, "beta")
    below = r.max() - r  # ≥ 0, exact: Λ − r = below + gap, gap = Λ − max r

    def excess(gap):  # log Σ β a / (below + gap), decreasing in gap; 0 at the root
        return logsumexp(np.log(beta) + log_a - np.log(below + gap))

    if excess(1e-300) < 0:
        raise ValueError("a gives (almost) no mass to the best responses: Λ − max r < 1e-300; cannot resolve it")
    gap = brentq(excess, 1e-300, beta, xtol=1e-300, rtol=4 * np.finfo(float).eps)
    out = np.log(beta) + log_a - np.log(below + gap)
    return log_normalise(out)


def atlas(task, algorithms, G: int = 4, beta: float = 0.5, **options) -> dict[str, np.ndarray]:
    """{label: log π (N,)} for a one-prompt task: the RLHF target, the k3 form β a/(Λ − r), and the fixed
    point of each algorithm (its KL coefficient set to β); options go to :func:`fixed_point`."""
    if len(task.prompts) != 1:
        raise ValueError(f"atlas takes a one-prompt task (task.single(c)); got {len(task.prompts)} prompts")
    out = {"RLHF target a·exp(r/β)/Z": rlhf_target(task.log_a[0], task.reward[0], beta),
           "k3 form β·a/(Λ − r)": k3_target(task.log_a[0], task.reward[0], beta)}
    for alg in algorithms:
        alg = alg.with_(beta=beta) if alg.kl is not None else alg
        out[alg.name] = fixed_point(alg, task, G, **options).log_probs[0]
    return out


def grpo_success_recursion(p_a: float, beta: float, G: int, iterations: int = 200) -> np.ndarray:
    """p_{n+1} = p_a e^{w(p_n)/β} / (p_a e^{w(p_n)/β} + 1 − p_a), p_0 = p_a; the iterates (iterations + 1,).

    GRPO with binary rewards and a reverse-KL penalty β KL(π‖a) follows w(p) ∇p − β ∇KL(π‖a),
    whose stationary policy is a·e^{w(p) r/β}/Z: the RLHF target with the reward scaled by
    GRPO's weight.  Its success probability solves p = p_a e^{w(p)/β}/(p_a e^{w(p)/β} + 1 − p_a),
    the fixed point of this recursion (Mroueh 2025, the success-amplification recursion, here
    with the exact finite-G weight w of :func:`effective_weight`).
    """
    p_a = check_real(p_a, "p_a", 0.0, 1.0, open_low=True, open_high=True)  # a probability in (0, 1)
    beta = check_positive_float(beta, "beta")
    iterations = check_int(iterations, "iterations", low=0)
    out = [float(p_a)]
    for _ in range(iterations):
        s = np.log(p_a) + float(effective_weight(out[-1], G)) / beta
        out.append(float(np.exp(s - np.logaddexp(s, np.log1p(-p_a)))))
    return np.array(out)


def reinforce_pp_success(p_a, beta: float, G: int, iterations: int = 300) -> np.ndarray:
    """p_{n+1,c} = p_a,c e^{w_c(p_n)/β} / (p_a,c e^{w_c(p_n)/β} + 1 − p_a,c), w = batch_weights(p_n, G); (iterations + 1, C).

    REINFORCE++ with binary rewards and a reverse-KL penalty β KL(π‖a) in the loss follows
    Σ_c w_c(p) ∇p_c − β ∇KL(π_c‖a_c): stationary at π_c = a_c e^{w_c(p*) r_c/β}/Z_c, where every
    prompt's weight reads every prompt's success probability (:func:`toyfdiv.rl.batchnorm.batch_weights`).
    Its fixed point p* is the limit of this recursion (the batch analogue of
    :func:`grpo_success_recursion`).
    """
    p_a = as_float_array(p_a, "p_a").reshape(-1)
    if p_a.size == 0 or not np.all((p_a > 0) & (p_a < 1)):
        raise ValueError(f"p_a={p_a!r} must be probabilities in (0, 1), one per prompt")
    beta = check_positive_float(beta, "beta")
    iterations = check_int(iterations, "iterations", low=0)
    out = [p_a.copy()]
    for _ in range(iterations):
        with np.errstate(over="ignore"):  # w/β past float64 at a tiny β: s = ±inf, and σ(±inf) is exact
            s = np.log(p_a) + batch_weights(out[-1], G) / beta
        out.append(expit(s - np.log1p(-p_a)))  # p_a e^{w/β} / (p_a e^{w/β} + 1 − p_a)
    return np.array(out)
