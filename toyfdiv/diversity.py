"""Diversity, exact: pass@k, distinct correct answers, f-regularised targets, and MARA.

    pass@k(c)            = 1 − (1 − P_π(correct | c))^k              (k i.i.d. answers)
    E[#distinct correct] = Σ_{y correct} 1 − (1 − π(y | c))^k
    π*_f = argmax_π E_π[r] − β D_f(π ‖ a)  = a · (f')⁻¹((r − λ)/β)   (clipped at f'(0⁺); TV: a linear programme)

**Theorem (an exact regularised target never loses pass@k).**  If f is convex and the reward
is increasing in correctness — every correct answer scores at least as much as every
incorrect one — then P_{π*_f}(correct | c) ≥ P_a(correct | c) for every β > 0.

*Proof.*  π*_f = a·g(r) with g = (f')⁻¹((· − λ)/β) non-decreasing (f' is non-decreasing, f
convex) and E_a[g(r)] = Σ π*_f = 1.  The indicator 1_C of correctness and g(r) are both
non-decreasing functions of r (on the reward's order, where correct answers come last), so
by Chebyshev's sum inequality (comonotone functions are positively correlated)
E_a[1_C g(r)] ≥ E_a[1_C] E_a[g(r)] = P_a(C).  The left side is P_{π*_f}(C).  pass@k is
increasing in P(C), so it does not drop either.  ∎

Within the correct answers, equal rewards give equal g: π*_f(y₁)/π*_f(y₂) = a(y₁)/a(y₂)
for every f and β.  Two correct answers at a = 0.1 and 0.001 stay 100 : 1 — regularisation
toward a keeps a's preference among equally good answers (GX-Chen et al. 2025).  MARA
(mode-anchored reward augmentation) raises the reward of each good answer y by
β log(a(z)/a(y)), z the good answer a likes best, so that the reverse-KL target is flat on
the good set.

References: Chen et al. (2021), "Evaluating Large Language Models Trained on Code" (pass@k
and its unbiased estimator, eq. 1); GX-Chen, Prakash, Guo, Fergus, Ranganath (2025),
"KL-Regularized Reinforcement Learning is Designed to Mode Collapse" (MARA, Alg. 1).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize
from scipy.special import gammaln, logsumexp

from ._util import log_normalise, check_reward_scale, as_float_array, check_finite_float, check_int, check_log_probs, check_positive_float
from .divergences import as_divergence
from .feedback.fdpo import check_beta, fdpo_optimum

__all__ = ["shared_head_objective", "shared_head_optimum", "p_correct", "pass_at_k", "pass_at_k_policy", "pass_at_k_estimate", "expected_distinct_correct",
           "regularised_target", "tv_target", "mara_reward", "mara_target", "diversity_rows"]


# ---------------------------------------------------------------------------- checks
def _rows(log_pi, name: str = "log_pi") -> np.ndarray:
    """log π as (C, N), each row normalised; a single (N,) vector becomes one prompt."""
    arr = as_float_array(log_pi, name)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} has shape {arr.shape}; expected (N,) or (C, N), one row per prompt")
    for c in range(arr.shape[0]):
        check_log_probs(arr[c], arr.shape[1], f"{name}[{c}]")
    return np.minimum(arr, 0.0)  # a log-probability accepted within the rounding tolerance above 0 is 0


def _correct(correct, shape) -> np.ndarray:
    b = np.asarray(correct)
    if b.ndim == 1 and len(shape) == 2:
        b = b[None, :]
    if b.shape != shape:
        raise ValueError(f"correct has shape {b.shape}; expected {shape[-1:]} or {shape}, one flag per answer")
    if b.dtype != bool:
        if not np.issubdtype(b.dtype, np.number) or not np.isin(b, (0, 1)).all():
            raise ValueError("correct must be booleans or 0/1 (1 = a correct answer)")
        b = b == 1
    return b


def _k(k) -> np.ndarray:
    arr = np.asarray(k)
    if arr.size == 0 or not np.issubdtype(arr.dtype, np.integer) or np.any(arr < 1):
        raise ValueError(f"k={k!r} must be an integer ≥ 1 (or an array of them): the number of samples")
    return arr


def _squeeze(x: np.ndarray, one: bool):
    return x[0] if one else x


# ---------------------------------------------------------------------------- pass@k
def p_correct(log_pi, correct) -> np.ndarray | float:
    """P_π(correct | c) = Σ_{y correct} π(y | c), (C,) (a float for one prompt); log-sum-exp."""
    one = np.ndim(log_pi) == 1
    lp = _rows(log_pi)
    b = _correct(correct, lp.shape)
    with np.errstate(divide="ignore"):
        out = np.exp(logsumexp(np.where(b, lp, -np.inf), axis=1))
    out = np.where(b.any(axis=1), np.minimum(out, 1.0), 0.0)  # ≤ 1 also after rounding
    return float(out[0]) if one else out


def pass_at_k(p, k) -> np.ndarray:
    """1 − (1 − p)^k for P(correct) = p ∈ [0, 1] and k ≥ 1, as −expm1(k log1p(−p)); broadcasts."""
    p = as_float_array(p, "p")
    if np.any(~((p >= 0) & (p <= 1))):
        raise ValueError("p must hold probabilities in [0, 1]: P(correct | c)")
    k = _k(k)
    with np.errstate(divide="ignore"):
        return -np.expm1(k * np.log1p(-p))


def pass_at_k_policy(log_pi, correct, k) -> np.ndarray | float:
    """pass@k(c) = 1 − (1 − P_π(correct | c))^k per prompt: (C,), or a float for one prompt."""
    out = pass_at_k(np.atleast_1d(p_correct(log_pi, correct)), k)
    return float(out[0]) if np.ndim(log_pi) == 1 and np.ndim(k) == 0 else out


def pass_at_k_estimate(n_correct, n, k) -> np.ndarray:
    """1 − C(n − c, k)/C(n, k): the unbiased pass@k estimate from n samples with c correct.

    Chen et al. (2021), eq. 1; computed with log-gamma; 1 when n − c < k.  Broadcasts.
    """
    c = np.asarray(n_correct)
    n = check_int(n, "n")
    k = check_int(k, "k", high=n)
    if not np.issubdtype(c.dtype, np.integer) or np.any((c < 0) | (c > n)):
        raise ValueError(f"n_correct must be integers in 0 … n = {n}")
    m = n - c
    with np.errstate(invalid="ignore"):
        log_ratio = gammaln(m + 1) - gammaln(m - k + 1) - gammaln(n + 1) + gammaln(n - k + 1)
    return np.where(m < k, 1.0, -np.expm1(np.where(m < k, 0.0, log_ratio))) + 0.0  # + 0.0: no −0


def expected_distinct_correct(log_pi, correct, k) -> np.ndarray | float:
    """E[#distinct correct answers among k i.i.d. samples] = Σ_{y correct} 1 − (1 − π(y | c))^k, (C,)."""
    one = np.ndim(log_pi) == 1
    lp = _rows(log_pi)
    b = _correct(correct, lp.shape)
    k = check_int(k, "k", high=2**53)  # k·log1p(−π) in float64: exact integers up to 2⁵³
    with np.errstate(divide="ignore"):
        seen = -np.expm1(k * np.log1p(-np.exp(lp)))  # (C, N)
    out = np.where(b, seen, 0.0).sum(axis=1)
    return float(out[0]) if one else out


# ---------------------------------------------------------------------------- f-regularised targets
def _lambda_clipped(div, ref: np.ndarray, r: np.ndarray, beta: float) -> float:
    """λ with Σ_x a(x) t(x) = 1, t = (f')⁻¹(max((r − λ)/β, f'(0⁺))), when f'(0⁺) is finite."""
    fp0 = float(div.f_prime(0.0))
    fp1 = float(div.f_prime(1.0))

    def total(lam):
        y = np.maximum((r - lam) / beta, fp0)
        return float(ref @ div.f_prime_inverse(y)) - 1.0

    lo, hi = r.min() - beta * fp1, r.max() - beta * fp1  # every t ≥ 1, every t ≤ 1
    if lo >= hi or abs(total(lo)) < 1e-14:
        return lo
    return float(brentq(total, lo, hi, xtol=1e-14 * max(1.0, abs(hi)), rtol=4 * np.finfo(float).eps, maxiter=500))


def _reference_and_reward(log_a, reward, beta) -> tuple[np.ndarray, np.ndarray, float]:
    """(log a, r, β) validated for a regularised target: a normalised with full support, r finite of a's shape."""
    beta = check_beta(beta)
    log_a = check_log_probs(log_a, None, "log_a")
    if np.isneginf(log_a).any():
        raise ValueError(f"log_a is -inf at {np.flatnonzero(np.isneginf(log_a))[:5].tolist()}: a regularised "
                         "target needs a reference with full support")
    r = as_float_array(reward, "reward")
    if r.shape != log_a.shape or not np.all(np.isfinite(r)) or r.size == 0:
        raise ValueError(f"reward has shape {r.shape}; expected finite values of shape {log_a.shape}")
    return log_a, r, beta


def regularised_target(log_a, reward, beta: float, divergence="reverse_kl") -> np.ndarray:
    """log π*_f = log argmax_π E_π[r] − β D_f(π ‖ a) = log a + log (f')⁻¹((r − λ)/β), (N,).

    Where f'(0⁺) = −∞ (reverse and forward KL, JS, Hellinger, Neyman, α < 1, gJSD) the optimum
    is interior (:func:`toyfdiv.feedback.fdpo_optimum`); where f'(0⁺) is finite (Pearson χ²,
    α > 1) the KKT conditions clip t at 0 for rewards below λ + β f'(0⁺) (−inf log-probs).
    TV (f' a step): the linear programme of :func:`tv_target`.
    Reverse KL: a·exp(r/β)/Z; forward KL: β a/(λ − r), λ > max r.
    """
    div = as_divergence(divergence)
    log_a, r, beta = _reference_and_reward(log_a, reward, beta)
    check_reward_scale(r, beta)
    if div.name == "tv":
        return tv_target(log_a, r, beta)
    if div.name == "reverse_kl":  # a·exp(r/β)/Z in closed form
        s = log_a + r / beta
        return log_normalise(s)
    if log_a.min() < np.log(np.finfo(float).tiny):  # below, a(x) is 0 in float64 and a·(f')⁻¹ is 0·inf
        raise ValueError(f"log_a has min {log_a.min():.6g}: a(x) underflows float64 there; allowed: every "
                         f"a(x) ≥ {np.finfo(float).tiny:.3g} for {div.name}")
    if div.f_prime_to_minus_inf_at_zero:
        return fdpo_optimum(log_a, r, beta, div)
    ref = np.exp(log_a)
    lam = _lambda_clipped(div, ref, r, beta)
    t = div.f_prime_inverse(np.maximum((r - lam) / beta, float(div.f_prime(0.0))))
    with np.errstate(divide="ignore"):
        out = log_a + np.log(t)
    return log_normalise(out)  # removes the root-finder's last ~1e-15


def tv_target(log_a, reward, beta: float) -> np.ndarray:
    """log π* for max_π E_π[r] − β TV(π, a), TV = ½ Σ |π − a|: a linear programme, solved in closed form; (N,).

    Moving mass δ from y to x changes the objective by δ (r(x) − r(y) − β) (½δ of TV on each
    side), so the optimum moves every output with r(y) < r_max − β to zero and puts its mass
    on the maximisers, keeps π = a elsewhere, and is π = a when max r − min r ≤ β.  KKT with
    ∂f(1) = [−½, ½]: λ = r_max − β/2, t = 0 below λ − β/2, t = 1 in between, t > 1 only at
    r_max.  The optimum is not unique where the objective is flat, and this picks
    (tie-break, documented): among tied maximisers the moved mass is split in proportion to
    a; an output with r(y) = r_max − β exactly (moving it gains 0) keeps π = a.
    Requires a with full support (as :func:`regularised_target` checks).
    """
    log_a, r, beta = _reference_and_reward(log_a, reward, beta)
    top = r == r.max()
    drop = r < r.max() - beta
    out = log_a.copy()
    if drop.any():
        log_top = logsumexp(log_a[top])
        out[top] = log_a[top] + np.logaddexp(log_top, logsumexp(log_a[drop])) - log_top  # a (A_top + moved)/A_top
        out[drop] = -np.inf
    return out - logsumexp(out)


# ---------------------------------------------------------------------------- MARA
def mara_reward(log_a, reward, beta: float, threshold: float) -> np.ndarray:
    """r̄(y) = r(z) + β (log a(z) − log a(y)) if r(y) ≥ threshold, else r(y); (N,).

    z = argmax_{y: r(y) ≥ threshold} a(y), the good answer the reference likes best (the
    anchor).  Then a·exp(r̄/β) = a(z) exp(r(z)/β) on every good answer: the reverse-KL
    target is uniform over the good set.  Reference: GX-Chen et al. (2025), Alg. 1 (MARA),
    here with the anchor taken over the whole space instead of a batch.
    """
    beta = check_positive_float(beta, "beta")
    log_a = check_log_probs(log_a, np.size(log_a), "log_a")
    r = as_float_array(reward, "reward")
    if r.shape != log_a.shape or not np.all(np.isfinite(r)):
        raise ValueError(f"reward has shape {r.shape}; expected finite values of shape {log_a.shape}")
    thr = check_finite_float(threshold, "threshold")
    good = (r >= thr) & np.isfinite(log_a)
    if not good.any():
        raise ValueError(f"threshold={threshold!r}: no answer with a(y) > 0 reaches it (max reward {r.max():.4g})")
    z = int(np.flatnonzero(good)[np.argmax(log_a[good])])
    out = r.copy()
    out[good] = r[z] + beta * (log_a[z] - log_a[good])
    return out


def mara_target(log_a, reward, beta: float, threshold: float, divergence="reverse_kl") -> np.ndarray:
    """log π*_f for the MARA reward r̄ (:func:`mara_reward`): :func:`regularised_target` of r̄, (N,)."""
    return regularised_target(log_a, mara_reward(log_a, reward, beta, threshold), beta, divergence)


def diversity_rows(log_a, reward, correct, betas, divergences, k: int = 8) -> list[dict]:
    """One row per (f, β): P(correct), pass@k, E[#distinct correct in k] of π*_f, beside a's own.

    Keys: divergence, beta, p_correct, pass_at_k, distinct_correct, and the base's
    base_p_correct, base_pass_at_k, base_distinct_correct.
    """
    k = check_int(k, "k")
    base = dict(base_p_correct=p_correct(log_a, correct), base_pass_at_k=pass_at_k_policy(log_a, correct, k),
                base_distinct_correct=expected_distinct_correct(log_a, correct, k))
    rows = []
    for d in divergences:
        div = as_divergence(d)
        for b in betas:
            lp = regularised_target(log_a, reward, b, div)
            rows.append(dict(divergence=div.name, beta=float(b), p_correct=p_correct(lp, correct),
                             pass_at_k=pass_at_k_policy(lp, correct, k),
                             distinct_correct=expected_distinct_correct(lp, correct, k), **base))
    return rows


# ---------------------------------------------------------------------------- where training loses it
def _shared_head_setup(log_a, features, log_rho):
    la = _rows(log_a, "log_a")
    phi = as_float_array(features, "features")
    if phi.ndim != 2 or phi.shape[0] != la.shape[1] or not np.all(np.isfinite(phi)):
        raise ValueError(f"features has shape {phi.shape}; expected finite ({la.shape[1]}, K), one row per answer")
    rho = np.full(la.shape[0], 1.0 / la.shape[0]) if log_rho is None else np.exp(
        check_log_probs(log_rho, la.shape[0], "log_rho"))
    return la, phi, rho


def shared_head_objective(theta, log_a, log_p, features, divergence, log_rho=None) -> tuple[float, np.ndarray]:
    """(Σ_c ρ(c) D_f(π_θ(·|c) ‖ p(·|c)), its gradient (K,)),  π_θ(y|c) ∝ a(y|c) exp(θ·φ(y)).

    One parameter vector θ (K,) shared by every prompt: a fine-tuning head on features of the
    answer.  The gradient is the exact f-DPG one, Σ_c ρ(c) Σ_y w_c(y) (φ(y) − E_{π_c}[φ]),
    w = π f'(π/p).  Shapes: log_a, log_p (C, N); features (N, K); log_rho (C,) or None (uniform).
    """
    div = as_divergence(divergence)
    la, phi, rho = _shared_head_setup(log_a, features, log_rho)
    lp = _rows(log_p, "log_p")
    theta = as_float_array(theta, "theta")
    s = la + phi @ theta  # (C, N)
    lpi = log_normalise(s, axis=1)
    value, grad = 0.0, np.zeros(phi.shape[1])
    for c in range(la.shape[0]):
        value += rho[c] * div.value(lpi[c], lp[c])
        w = np.asarray(div.weights(lpi[c], lp[c]), dtype=float)  # (N,) π f'(π/p)
        grad += rho[c] * (w @ phi - w.sum() * (np.exp(lpi[c]) @ phi))
    return float(value), grad


def shared_head_optimum(log_a, log_p, features, divergence="reverse_kl", log_rho=None) -> np.ndarray:
    """log π_θ* (C, N) for θ* = argmin :func:`shared_head_objective` (L-BFGS on the exact gradient), from θ = 0 (π = a)."""
    la, phi, _ = _shared_head_setup(log_a, features, log_rho)
    res = minimize(lambda th: shared_head_objective(th, la, log_p, phi, divergence, log_rho), np.zeros(phi.shape[1]),
                   jac=True, method="L-BFGS-B", options=dict(ftol=1e-15, gtol=1e-10, maxiter=5000))
    s = la + phi @ res.x
    return log_normalise(s, axis=1)
