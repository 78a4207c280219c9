"""Targets p over the enumerated space: RLHF, GDC pointwise, distributional and hybrid.

Every target is an unnormalised log-score log P(x) and its log-partition log Z, with
p = P / Z.  The base model a is a normalised log-probability vector (N,); −inf marks
zeros, and p inherits a's zeros (p ≪ a).

>>> import numpy as np
>>> log_a = np.log(np.full(4, 0.25))
>>> tgt = rlhf(log_a, np.array([0.0, 1.0, 2.0, 3.0]), beta=1.0)
>>> np.exp(tgt.log_probs).round(3)  # p ∝ a·exp(r/β)
array([0.032, 0.087, 0.237, 0.644])
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import linprog, minimize
from scipy.special import logsumexp

from ._util import as_float_array, check_log_probs, check_real, check_vector
from .divergences import kl

__all__ = [
    "Target", "ConvergenceWarning", "KINDS",
    "rlhf", "pointwise", "distributional", "hybrid", "from_log_probs",
]

KINDS = ("rlhf", "pointwise", "distributional", "hybrid", "custom")
LP_MAX_SIZE = 50_000  # joint feasibility is checked with an LP up to this support size
_DIVERGED = 30.0  # |λ| on standardised features beyond which (N > LP_MAX_SIZE) λ is diverging
_BOUNDARY = 1e-7  # N·(max-min probability) below this: μ̄ is (numerically) on the hull's boundary


class ConvergenceWarning(UserWarning):
    """The λ* solver stopped before the moments were met to ``tol``."""


def _readonly(x, dtype=float) -> np.ndarray:
    arr = np.array(x, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Target:
    """A target p(x) = P(x) / Z over the space, kept in log space.

    ``log_scores`` = log P (N,), −inf where P = 0; ``log_z`` = log Σ_x P(x); ``log_a`` the
    base model (N,).  The signal the target was built from is kept for metrics and display:
    ``reward`` r (rlhf), ``constraint`` b (pointwise, hybrid), ``features`` φ (N, K),
    ``moments`` μ̄ (K,) and ``lambdas`` λ* (K,) (distributional, hybrid).
    """

    kind: str
    log_scores: np.ndarray  # (N,)
    log_z: float
    log_a: np.ndarray  # (N,)
    params: Mapping[str, object] = field(default_factory=dict)
    reward: np.ndarray | None = None  # (N,)
    constraint: np.ndarray | None = None  # (N,) bool
    features: np.ndarray | None = None  # (N, K)
    moments: np.ndarray | None = None  # (K,)
    lambdas: np.ndarray | None = None  # (K,)
    name: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} is not a target kind; allowed: {', '.join(KINDS)}")
        scores = _readonly(self.log_scores)
        if scores.ndim != 1 or scores.size == 0:
            raise ValueError(f"log_scores has shape {scores.shape}; expected (N,) with N ≥ 1")
        if np.isnan(scores).any() or np.isposinf(scores).any() or np.isneginf(scores).all():
            raise ValueError("log_scores must lie in [-inf, inf) with at least one finite entry")
        n = scores.size
        if isinstance(self.log_z, (bool, np.bool_)) or not isinstance(self.log_z, numbers.Real):
            raise ValueError(f"log_z={self.log_z!r} must be a real number, logsumexp(log_scores)")
        if not isinstance(self.params, Mapping):
            raise ValueError(f"params={self.params!r} must be a mapping (dict) of the builder's arguments")
        log_z = float(self.log_z)
        if not np.isfinite(log_z) or abs(log_z - logsumexp(scores)) > 1e-9 * max(1.0, abs(log_z)):
            raise ValueError(f"log_z={self.log_z!r} is not logsumexp(log_scores) = {logsumexp(scores):.6g}")
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        set_("log_scores", scores)
        set_("log_z", log_z)
        set_("log_a", _readonly(check_log_probs(self.log_a, None, "log_a")))
        if self.log_a.shape != (n,):
            raise ValueError(f"log_a has shape {self.log_a.shape}; expected ({n},) like log_scores")
        set_("params", MappingProxyType(dict(self.params)))
        k = None if self.features is None else np.shape(self.features)[-1]
        for name, shape, dtype in [("reward", (n,), float), ("constraint", (n,), bool),
                                   ("features", (n, k), float), ("moments", (k,), float),
                                   ("lambdas", (k,), float)]:
            value = getattr(self, name)
            if value is not None:
                arr = _readonly(value, dtype)
                if arr.shape != shape:
                    raise ValueError(f"{name} has shape {arr.shape}; expected {shape}")
                set_(name, arr)

    @cached_property
    def log_probs(self) -> np.ndarray:
        """(N,) log p(x) = log P(x) − log Z, normalised to 1e-12; −inf where p = 0.

        Where the scores dwarf their differences (r/β ~ 10¹², or a reward of 10¹⁷ next to log a),
        log P − log Z keeps only the differences float64 can hold; it is then normalised once
        more, so Σ p = 1 still holds to 1e-12 (e.g. equal rewards of 10¹⁷ give the uniform p).
        """
        lp = self.log_scores - self.log_z
        total = logsumexp(lp)
        if abs(total) > 1e-13:  # rounding in log P − log Z: renormalise (exact data pass unchanged)
            lp = lp - total
        return _readonly(lp)

    @property
    def size(self) -> int:
        """N, the number of sequences."""
        return int(self.log_scores.size)

    @property
    def kl_from_base(self) -> float:
        """KL(p ‖ a) = Σ_{p>0} p (log p − log a) in nats; finite since p ≪ a."""
        return kl(self.log_probs, self.log_a)

    def describe(self) -> str:
        """One line for display: name, support, log Z, KL(p‖a) and λ* if any."""
        support = int(np.isfinite(self.log_scores).sum())
        text = (f"{self.name or self.kind}: support {support}/{self.size}, "
                f"log Z = {self.log_z:.4g}, KL(p‖a) = {self.kl_from_base:.4g} nats")
        if self.lambdas is not None:
            text += ", λ* = [" + ", ".join(f"{v:.4g}" for v in self.lambdas) + "]"
        return text


# ---------------------------------------------------------------------------- validation
def _check_constraint(constraint, n: int) -> np.ndarray:
    arr = np.asarray(constraint)
    if arr.shape != (n,):
        raise ValueError(f"constraint has shape {arr.shape}; expected ({n},), one entry per sequence")
    if arr.dtype == bool:
        return arr.copy()
    if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
        bad = np.unique(arr[~np.isin(arr, (0, 1))])[:5] if np.issubdtype(arr.dtype, np.number) else arr.dtype
        raise ValueError(f"constraint must be boolean-like (bool, or numbers 0/1); got {bad}")
    return arr == 1


def _log_b(log_a: np.ndarray, b: np.ndarray, epsilon: float) -> np.ndarray:
    """log b_ε(x): 0 where b(x), log ε elsewhere (−inf for ε = 0); checks a·b ≠ 0."""
    if not np.isfinite(log_a[b]).any():
        raise ValueError("constraint: no sequence with a(x) > 0 satisfies it, so p = a·b/Z has Z = 0")
    return np.where(b, 0.0, np.log(epsilon) if epsilon > 0 else -np.inf)


def _check_features(features, moments, n: int, feature_names):
    phi = np.asarray(features)
    if phi.ndim != 2 or phi.shape[0] != n or phi.shape[1] == 0:
        raise ValueError(f"features has shape {phi.shape}; expected ({n}, K) with K ≥ 1, "
                         "one row per sequence")
    numeric = np.issubdtype(phi.dtype, np.number) or phi.dtype == bool
    if not numeric or not np.isfinite(phi.astype(float)).all():
        raise ValueError("features must be finite real numbers")
    k = phi.shape[1]
    mu = as_float_array(moments, "moments")
    if mu.shape != (k,):
        raise ValueError(f"moments has shape {mu.shape}; expected ({k},), one per feature column")
    if not np.isfinite(mu).all():
        raise ValueError(f"moments={mu.tolist()} must be finite")
    if feature_names is not None:
        if isinstance(feature_names, str) or not isinstance(feature_names, Sequence):
            raise ValueError(f"feature_names={feature_names!r} must be a list of {k} names, one per feature")
        feature_names = tuple(str(s) for s in feature_names)
        if len(feature_names) != k:
            raise ValueError(f"feature_names has {len(feature_names)} names; expected {k}, one per feature")
    return phi.astype(float), mu, feature_names


# ---------------------------------------------------------------------------- builders
def rlhf(log_a, reward, beta) -> Target:
    """p(x) = a(x) exp(r(x)/β) / Z,  Z = Σ_x a(x) exp(r(x)/β).

    The maximiser of the KL-regularised reward J(π) = E_π[r] − β KL(π‖a) = β log Z −
    β KL(π‖p): RLHF minimises the reverse KL(π‖p).  Computed in log space:
    log P = log a + r/β, log Z = logsumexp(log P), so any β > 0 and |r| are safe.

    Shapes: log_a (N,) normalised, reward (N,) finite, beta > 0.
    Reference: Korbak, Perez, Buckley (2022), "RL with KL penalties is better viewed as
    Bayesian inference" (the KL-regularised objective, its optimum a·exp(r/β)/Z as a
    Bayesian posterior, and KL-regularised RL as variational inference).
    """
    log_a = check_log_probs(log_a, None, "log_a")
    r = check_vector(reward, "reward", log_a.size)
    beta = check_real(beta, "beta", 0.0, open_low=True)
    with np.errstate(over="ignore", invalid="ignore"):
        log_scores = np.where(np.isneginf(log_a), -np.inf, log_a + r / beta)  # (N,) a(x) = 0 stays 0, any r
    if np.isposinf(log_scores).any() or np.isneginf(log_scores[np.isfinite(log_a)]).all():
        raise ValueError(f"beta={beta!r} is too small for this reward: r/β overflows (max |r| = "
                         f"{np.abs(r).max():.3g}); allowed: beta > max |r| / 1e308")
    return Target("rlhf", log_scores, logsumexp(log_scores), log_a, {"beta": beta},
                  reward=r, name=f"RLHF, β = {beta:g}")


def pointwise(log_a, constraint, epsilon: float = 0.0) -> Target:
    """p(x) = a(x) b(x) / Z,  b(x) = 1 if the constraint holds, ε otherwise.

    ε = 0 is GDC's pointwise constraint (p is a conditioned on b, the I-projection of a onto
    {q : E_q[b] = 1}); ε ∈ (0, 1) smooths it to a full-support target (as a's), which keeps
    the reverse KL(π‖p) finite.  log P = log a + log b, log b = −inf where b = 0 and ε = 0.

    Shapes: log_a (N,) normalised, constraint (N,) bool or 0/1, 0 ≤ epsilon < 1.
    Reference: Khalifa, Elsahar, Dymetman (ICLR 2021), "A distributional approach to
    controlled text generation", §2 (pointwise constraints: P(x) = a(x) b(x)).
    """
    log_a = check_log_probs(log_a, None, "log_a")
    b = _check_constraint(constraint, log_a.size)
    epsilon = check_real(epsilon, "epsilon", 0.0, 1.0, open_high=True)
    log_scores = log_a + _log_b(log_a, b, epsilon)
    name = "GDC pointwise" + (f", ε = {epsilon:g}" if epsilon > 0 else "")
    return Target("pointwise", log_scores, logsumexp(log_scores), log_a, {"epsilon": epsilon},
                  constraint=b, name=name)


def distributional(log_a, features, moments, *, tol: float = 1e-8, max_iter: int = 200,
                   feature_names: Sequence[str] | None = None) -> Target:
    """p_λ(x) = a(x) exp(λ·φ(x)) / Z(λ),  λ* = argmin_λ log Z(λ) − λ·μ̄.

    The information (I-)projection of a onto {q : E_q[φ] = μ̄}: of all distributions meeting
    the moments, the closest to a in KL(q‖a), with KL(p‖a) = λ*·μ̄ − log Z(λ*).  The dual
    is convex with gradient E_{p_λ}[φ] − μ̄ and Hessian Cov_{p_λ}[φ]; scipy's trust-exact
    minimises it on standardised features, and λ is mapped back.  μ̄ must lie in the
    relative interior of the convex hull of {φ(x) : a(x) > 0}: otherwise λ* would diverge
    and a ValueError names the constraint (checked exactly by an LP for support ≤
    LP_MAX_SIZE, by λ diverging beyond).  Features must be affinely independent on the
    support (else λ* is not unique).  Moments are met to ``tol`` (max abs), or a
    :class:`ConvergenceWarning` states the residual.

    Shapes: log_a (N,) normalised, features φ (N, K), moments μ̄ (K,); lambdas (K,).
    References: Khalifa, Elsahar, Dymetman (ICLR 2021), "A distributional approach to
    controlled text generation", §2 (the EBM P(x) = a(x) exp Σ_i λ_i φ_i(x)); Csiszár (1975),
    "I-divergence geometry of probability distributions and minimization problems",
    Ann. Probab. 3 (the I-projection and its exponential-family form).
    """
    log_a = check_log_probs(log_a, None, "log_a")
    return _tilted("distributional", log_a, log_a, features, moments, tol, max_iter, feature_names, {})


def hybrid(log_a, constraint, features, moments, *, epsilon: float = 0.0, tol: float = 1e-8,
           max_iter: int = 200, feature_names: Sequence[str] | None = None) -> Target:
    """p(x) = a(x) b(x) exp(λ·φ(x)) / Z(λ),  λ* = argmin_λ log Z(λ) − λ·μ̄.

    GDC's hybrid target: the pointwise constraint b (b = 1 where it holds, ε elsewhere) and
    the moments E_p[φ] = μ̄ together.  λ* is solved as in :func:`distributional` with the
    base a·b, i.e. on the support of b when ε = 0: μ̄ must lie in the relative interior of
    the hull of {φ(x) : a(x) b(x) > 0}.

    Shapes: log_a (N,), constraint (N,) bool, features (N, K), moments (K,); lambdas (K,).
    Reference: Khalifa, Elsahar, Dymetman (ICLR 2021), §2 (P(x) = a(x) b(x) exp Σ_i λ_i φ_i(x)).
    """
    log_a = check_log_probs(log_a, None, "log_a")
    b = _check_constraint(constraint, log_a.size)
    epsilon = check_real(epsilon, "epsilon", 0.0, 1.0, open_high=True)
    log_ab = log_a + _log_b(log_a, b, epsilon)  # (N,) unnormalised base a·b
    return _tilted("hybrid", log_a, log_ab, features, moments, tol, max_iter, feature_names,
                   {"epsilon": epsilon}, constraint=b)


def _tilted(kind, log_a, log_base, features, moments, tol, max_iter, feature_names, params, **fields):
    """log P = log_base + φ·λ* with λ* solved on the support of log_base."""
    tol = check_real(tol, "tol", 0.0, open_low=True)
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter={max_iter!r} must be an integer ≥ 1")
    phi, mu, names = _check_features(features, moments, log_a.size, feature_names)
    try:
        lam, residual = _solve_lambdas(log_base, phi, mu, tol, int(max_iter), names)
    except ValueError as err:  # infeasible μ̄: say which argument it is about
        raise ValueError(f"moments={mu.tolist()}: {err}") from None
    log_scores = log_base + phi @ lam  # (N,)
    label = ", ".join(f"E[{f'φ_{k}' if names is None else names[k]}] = {m:g}" for k, m in enumerate(mu))
    params = {**params, "moments": tuple(mu.tolist()), "feature_names": names, "residual": residual}
    return Target(kind, log_scores, logsumexp(log_scores), log_a, params, features=phi, moments=mu,
                  lambdas=lam, name=f"GDC {kind}, {label}", **fields)


def from_log_probs(log_p, log_a, name: str = "custom") -> Target:
    """p = exp(log_p), given directly: kind "custom", log Z = 0.  For tests and ad-hoc targets.

    Shapes: log_p (N,) normalised (−inf allowed), log_a (N,) normalised.
    """
    log_p = check_log_probs(log_p, None, "log_p")
    if not isinstance(name, str):
        raise ValueError(f"name={name!r} must be a string")
    log_a = check_log_probs(log_a, None, "log_a")
    if log_a.shape == log_p.shape and (np.isfinite(log_p) & np.isneginf(log_a)).any():
        raise ValueError("log_p puts mass where log_a is -inf; a target must be absolutely continuous "
                         "with respect to the base model (p ≪ a), else KL(p‖a) is infinite")
    return Target("custom", log_p, logsumexp(log_p), log_a, {}, name=name)


# ---------------------------------------------------------------------------- the dual
def _which(k: int, names) -> str:
    return f"constraint {k}" + ("" if names is None else f" ({names[k]!r})")


def _solve_lambdas(log_base, phi, mu, tol, max_iter, names) -> tuple[np.ndarray, float]:
    """λ* = argmin_λ logsumexp(log_base + φλ) − λ·μ̄ on the support of log_base; (λ*, residual)."""
    support = np.isfinite(log_base)
    ls, ph = log_base[support], phi[support]  # (n,), (n, K)
    _check_feasible(ph, mu, names)
    centre, scale = ph.mean(axis=0), ph.std(axis=0)  # > 0 after the checks
    z = (ph - centre) / scale  # (n, K) standardised φ
    z_bar = (mu - centre) / scale

    def dual(lam_z):
        s = ls + z @ lam_z  # (n,)
        log_zl = logsumexp(s)
        p = np.exp(s - log_zl)
        m = z.T @ p  # (K,) E_p[z]
        hess = (z * p[:, None]).T @ z - np.outer(m, m)  # (K, K) Cov_p[z]
        return log_zl - lam_z @ z_bar, m - z_bar, hess

    res = minimize(lambda l: dual(l)[:2], np.zeros(len(mu)), jac=True, hess=lambda l: dual(l)[2],
                   method="trust-exact", options={"gtol": 0.1 * tol / scale.max(), "maxiter": max_iter})
    lam_z = res.x
    for _ in range(min(5, max_iter - res.nit)):  # Newton polish: needs no dual value, so
        _, g, h = dual(lam_z)                    # no round-off trouble near the optimum
        if np.max(np.abs(g * scale)) <= 0.1 * tol or np.linalg.cond(h) > 1e12:
            break
        lam_z = lam_z - np.linalg.solve(h, g)
    residual = float(np.max(np.abs(dual(lam_z)[1] * scale)))  # max_k |E_p[φ_k] − μ̄_k|
    if not np.isfinite(residual) or residual > tol:
        worst = int(np.argmax(np.abs(dual(lam_z)[1] * scale))) if np.isfinite(residual) else 0
        if ph.shape[0] > LP_MAX_SIZE and np.max(np.abs(lam_z)) > _DIVERGED:
            raise ValueError(f"{_which(worst, names)} cannot be met: λ diverges (|λ| = "
                             f"{np.max(np.abs(lam_z / scale)):.3g}); μ̄ seems outside or on the boundary "
                             "of the convex hull of φ over the support")
        warnings.warn(f"λ* solver stopped after {res.nit} iterations with moment residual "
                      f"{residual:.3g} > tol={tol:g} (worst: {_which(worst, names)})",
                      ConvergenceWarning, stacklevel=3)
    return lam_z / scale, residual


def _check_feasible(ph: np.ndarray, mu: np.ndarray, names) -> None:
    """ValueError unless μ̄ is in the relative interior of the convex hull of the rows of ph (n, K)."""
    lo, hi = ph.min(axis=0), ph.max(axis=0)
    for k in range(len(mu)):
        which = f"{_which(k, names)}: E[φ_{k}] = {mu[k]:g}"
        if lo[k] == hi[k]:
            raise ValueError(f"{which} is on a constant feature, features[:, {k}] (φ_{k} = {lo[k]:g} on the support): "
                             f"it cannot be controlled and λ_{k} is not identifiable; drop the feature")
        if mu[k] < lo[k] or mu[k] > hi[k]:
            raise ValueError(f"{which} cannot be met: it is outside the convex hull of φ, the range "
                             f"[{lo[k]:g}, {hi[k]:g}] of φ_{k} over the support")
        if min(mu[k] - lo[k], hi[k] - mu[k]) <= 1e-12 * (hi[k] - lo[k]):
            raise ValueError(f"{which} cannot be met with finite λ: it is on the boundary of the "
                             f"convex hull of φ, the range [{lo[k]:g}, {hi[k]:g}] of φ_{k}, "
                             f"so λ_{k} would diverge")
    z = (ph - ph.mean(axis=0)) / ph.std(axis=0)  # (n, K) standardised φ
    z_bar = (mu - ph.mean(axis=0)) / ph.std(axis=0)
    _, sv, vt = np.linalg.svd(z, full_matrices=False)
    rank = int(np.sum(sv > 1e-10 * sv[0]))
    if rank < len(mu):  # w·z(x) = 0 for every x, w in the null space
        drop = next(k for k in reversed(range(len(mu)))  # the last feature the others explain
                    if np.linalg.matrix_rank(np.delete(z, k, axis=1)) == rank)
        if np.max(np.abs(vt[rank:] @ z_bar)) > 1e-9 * (1 + np.max(np.abs(z_bar))):
            raise ValueError(f"moments μ̄ = {mu.tolist()} are jointly infeasible, outside the convex hull "
                             "of φ: the features are affinely dependent on the support and μ̄ breaks "
                             f"that dependency; {_which(drop, names)} cannot be met together with the "
                             "other constraints")
        raise ValueError(f"features are affinely dependent on the support (rank {rank} < K = "
                         f"{len(mu)}), so λ* is not unique: drop a redundant one, such as "
                         f"{_which(drop, names)}")
    if ph.shape[0] > LP_MAX_SIZE or len(mu) == 1:  # K = 1: the range checks are exact
        return
    margin = _margin(z, z_bar)
    if margin is not None and margin >= _BOUNDARY:
        return
    where = ("outside the convex hull of φ over the support" if margin is None else
             "on the boundary of the convex hull of φ over the support, so λ would diverge")
    others_ok = []  # constraints without which the rest are feasible
    for k in range(len(mu)):
        m = _margin(np.delete(z, k, axis=1), np.delete(z_bar, k))
        if m is not None and m >= _BOUNDARY:
            others_ok.append(k)
    which = ", ".join(_which(k, names) for k in (others_ok or range(len(mu))))
    raise ValueError(f"moments μ̄ = {mu.tolist()} are jointly infeasible, {where}: "
                     f"{which} cannot be met together with the other constraints")


def _margin(z: np.ndarray, z_bar: np.ndarray) -> float | None:
    """max_q N·min_x q(x) s.t. Σ q = 1, Σ q z = z̄ (q ≥ 0); None if infeasible.

    Writes N q = t + s with s ≥ 0: maximise t subject to mean(t + s) = 1, mean((t + s) z) = z̄.
    t > 0 iff z̄ is in the relative interior of the hull; t is a lower bound on the relative
    distance to its boundary.
    """
    n = z.shape[0]
    a_eq = np.vstack([np.ones(n), z.T]) / n  # (K+1, n)
    a_eq = np.hstack([a_eq, a_eq.sum(axis=1, keepdims=True)])  # last column: t
    cost = np.zeros(n + 1)
    cost[-1] = -1.0
    res = linprog(cost, A_eq=a_eq, b_eq=np.concatenate([[1.0], z_bar]), bounds=(0, None),
                  method="highs", options={"primal_feasibility_tolerance": 1e-10,
                                           "dual_feasibility_tolerance": 1e-10})
    return float(res.x[-1]) if res.status == 0 else None
