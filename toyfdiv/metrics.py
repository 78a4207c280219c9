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


def entropy(log_pi: np.ndarray) -> float:
    """H(π) = −Σ_x π(x) log π(x) in nats (0·log 0 = 0)."""
    return _entropy(check_log_probs(log_pi, None, "log_pi"))


def _entropy(log_pi: np.ndarray) -> float:
    pi = np.exp(log_pi)
    return float(-xlogy(pi, pi).sum())


def expected_distinct(log_pi: np.ndarray, k: int = 100) -> float:
    """E[#distinct sequences among k i.i.d. samples x_i ∼ π] = Σ_x 1 − (1 − π(x))^k.

    Diversity as a class sees it: sample k texts, count the different ones.  Between 1 (a
    point mass) and min(k, |supp π|); computed as −expm1(k · log1p(−π(x))), exact for
    π(x) far below 1/k and at π(x) = 1.
    """
    pi = np.minimum(np.exp(check_log_probs(log_pi, None, "log_pi")), 1.0)  # ≤ 1 within check_log_probs' tolerance
    k = check_int(k, "k", high=2**53)  # k·log1p(−π) in float64: exact integers up to 2⁵³
    with np.errstate(divide="ignore"):  # log1p(−1) = −inf: a certain sequence is always seen
        return float(-np.expm1(k * np.log1p(-pi)).sum())


def expectation(log_pi: np.ndarray, values: np.ndarray) -> float:
    """E_π[v] = Σ_x π(x) v(x) for any array v over the space (N,) (a reward, a feature)."""
    return _expectation(check_log_probs(log_pi, None, "log_pi"), values, "values")


def _expectation(log_pi: np.ndarray, values, name: str) -> float:
    values = as_float_array(values, name)
    if values.shape != log_pi.shape:
        raise ValueError(f"{name} has shape {values.shape}; expected {log_pi.shape}, one per sequence")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or inf at {np.flatnonzero(~np.isfinite(values))[:5].tolist()}")
    with np.errstate(over="ignore"):
        out = float(np.exp(log_pi) @ values)
    if not np.isfinite(out):
        raise ValueError(f"{name} is too large: E_π[{name}] overflows float64 (largest |value| "
                         f"{np.abs(values).max():.3g}); allowed: values whose expectation is finite")
    return out


def rlhf_objective(log_pi: np.ndarray, reward: np.ndarray, log_a: np.ndarray, beta: float) -> float:
    """J(π) = E_π[r] − β KL(π‖a): the KL-regularised RL objective (Ziegler et al. 2019).

    Its maximiser is p = a exp(r/β)/Z, and J(π) = β log Z − β KL(π‖p)
    (Korbak, Perez, Buckley 2022).
    """
    beta = check_positive_float(beta, "beta")
    log_pi = check_log_probs(log_pi, None, "log_pi")
    log_a = check_log_probs(log_a, log_pi.size, "log_a")
    return _expectation(log_pi, reward, "reward") - beta * _divergences.get("reverse_kl").value(log_pi, log_a)


def alignment(log_pi: np.ndarray, target: Target) -> dict[str, float]:
    """What the target asks for, measured under π.

    rlhf: {"reward": E_π[r]}; pointwise: {"constraint": E_π[b]}; distributional:
    {"moment/<feature>": E_π[φ_k]} per feature; hybrid: the constraint and the moments.
    """
    return _alignment(check_log_probs(log_pi, check_instance(target, Target, "target").size, "log_pi"), target)


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
    log_pi = check_log_probs(log_pi, check_instance(target, Target, "target").size, "log_pi")
    if divergences is None:
        divs = _divergences.registered()
    elif isinstance(divergences, (str, _divergences.FDivergence)):
        divs = (_divergences.get(divergences, argument="divergences"),)
    else:
        try:
            divs = tuple(_divergences.get(d, argument="divergences[]") for d in divergences)
        except TypeError:
            raise ValueError(f"divergences={divergences!r} must be a list of FDivergences or names") from None
    out = {f"divergence/{d.name}": d.value(log_pi, target.log_probs) for d in divs}
    out["kl_from_base"] = _divergences.get("reverse_kl").value(log_pi, target.log_a)  # both already validated
    out.update({f"alignment/{k}": v for k, v in _alignment(log_pi, target).items()})
    h = _entropy(log_pi)
    out["entropy"] = h
    out["effective_sequences"] = float(np.exp(h))
    return out
