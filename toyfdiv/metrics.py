"""What a run is judged by: divergence to the target, KL from the base, alignment, diversity.

All functions take normalised log-probability vectors (N,) over the space.
"""

from __future__ import annotations


import numpy as np
from scipy.special import xlogy

from . import divergences as _divergences
from .divergences import kl
from ._util import as_float_array, check_instance, check_int, check_log_probs, check_positive_float
from .targets import Target

__all__ = ["kl", "entropy", "expected_distinct", "expectation", "rlhf_objective", "alignment", "evaluate"]


def _log_pi(log_pi, size: int | None = None) -> np.ndarray:
    """A normalised (N,) log-probability vector (N = ``size`` if given)."""
    arr = as_float_array(log_pi, "log_pi")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"log_pi has shape {arr.shape}; expected (N,) with N ≥ 1, one entry per sequence")
    return check_log_probs(arr, arr.size if size is None else size, "log_pi")


def _target(target) -> Target:
    return check_instance(target, Target, "target")



def entropy(log_pi: np.ndarray) -> float:
    """H(π) = −Σ_x π(x) log π(x) in nats (0·log 0 = 0)."""
    return _entropy(_log_pi(log_pi))


def _entropy(log_pi: np.ndarray) -> float:
    pi = np.exp(log_pi)
    return float(-xlogy(pi, pi).sum())


def expected_distinct(log_pi: np.ndarray, k: int = 100) -> float:
    """E[#distinct sequences among k i.i.d. samples x_i ∼ π] = Σ_x 1 − (1 − π(x))^k.

    Diversity as a class sees it: sample k texts, count the different ones.  Between 1 (a
    point mass) and min(k, |supp π|); computed as −expm1(k · log1p(−π(x))), exact for
    π(x) far below 1/k and at π(x) = 1.
    """
    pi = np.exp(_log_pi(log_pi))
    k = check_int(k, "k")
    with np.errstate(divide="ignore"):  # log1p(−1) = −inf: a certain sequence is always seen
        return float(-np.expm1(k * np.log1p(-pi)).sum())


def expectation(log_pi: np.ndarray, values: np.ndarray) -> float:
    """E_π[v] = Σ_x π(x) v(x) for any array v over the space (N,) (a reward, a feature)."""
    log_pi = _log_pi(log_pi)
    values = as_float_array(values, "values")
    if values.shape != log_pi.shape:
        raise ValueError(f"values has shape {values.shape}; expected {log_pi.shape}, one per sequence")
    if not np.isfinite(values).all():
        raise ValueError(f"values contains NaN or inf at {np.flatnonzero(~np.isfinite(values))[:5].tolist()}")
    return float(np.exp(log_pi) @ values)


def rlhf_objective(log_pi: np.ndarray, reward: np.ndarray, log_a: np.ndarray, beta: float) -> float:
    """J(π) = E_π[r] − β KL(π‖a): the KL-regularised RL objective (Ziegler et al. 2019).

    Its maximiser is p = a exp(r/β)/Z, and J(π) = β log Z − β KL(π‖p)
    (Korbak, Perez, Buckley 2022).
    """
    beta = check_positive_float(beta, "beta")
    return expectation(log_pi, reward) - beta * kl(log_pi, log_a)


def alignment(log_pi: np.ndarray, target: Target) -> dict[str, float]:
    """What the target asks for, measured under π.

    rlhf: {"reward": E_π[r]}; pointwise: {"constraint": E_π[b]}; distributional:
    {"moment/<feature>": E_π[φ_k]} per feature; hybrid: the constraint and the moments.
    """
    return _alignment(_log_pi(log_pi, _target(target).size), target)


def _alignment(log_pi: np.ndarray, target: Target) -> dict[str, float]:
    pi = np.exp(log_pi)
    out: dict[str, float] = {}
    if target.reward is not None:
        out["reward"] = float(pi @ target.reward)
    if target.constraint is not None:
        out["constraint"] = float(pi @ target.constraint)
    if target.features is not None:
        names = target.params.get("feature_names") or [f"phi{k}" for k in range(target.features.shape[1])]
        for name, m in zip(names, pi @ target.features):
            out[f"moment/{name}"] = float(m)
    return out


def evaluate(log_pi: np.ndarray, target: Target, divergences=None) -> dict[str, float]:
    """Every metric of π against ``target``: "divergence/<name>" for each divergence
    (default: every registered one), "kl_from_base" = KL(π‖a), "alignment/<key>",
    "entropy" and "effective_sequences" = exp H(π)."""
    log_pi = _log_pi(log_pi, _target(target).size)
    if divergences is None:
        divs = _divergences.registered()
    elif isinstance(divergences, (str, _divergences.FDivergence)):
        divs = (_divergences.get(divergences),)
    else:
        try:
            divs = tuple(_divergences.get(d) for d in divergences)
        except TypeError:
            raise ValueError(f"divergences={divergences!r} must be a list of FDivergences or names") from None
    out = {f"divergence/{d.name}": d.value(log_pi, target.log_probs) for d in divs}
    out["kl_from_base"] = kl(log_pi, target.log_a)
    out.update({f"alignment/{k}": v for k, v in _alignment(log_pi, target).items()})
    h = _entropy(log_pi)
    out["entropy"] = h
    out["effective_sequences"] = float(np.exp(h))
    return out
