"""S independent one-token policies at once: sampling, masses and PPO's clipped gradient, row by row.

A one-token policy π(y) = softmax(z)_y over N responses is the AutoregressivePolicy of a
length-1 space (its parameters θ = z, one row of logits) and the TabularPolicy of that space.
Stacking S of them as logits z (S, N) lets a study run S seeds in one array pass; every row
equals what the Policy path gives on its own (tests hold each against it):

    sample_rows:            y_{s,i} = min{k : Σ_{j≤k} π_s(j) > u_{s,i} Σ_j π_s(j)}   (Policy.sample, row s)
    response_masses:        m[s, y] = Σ_i w[s, i] 1[y_{s,i} = y]                     (the batch masses)
    clipped_logit_gradient: g[s] = W_s − (Σ_y W_s(y)) π_s,  W = clip_weights(π/π_old, m⁺, m⁻)
                                                               (clip.clipped_gradient on row s)

(the softmax gradient ∂ log π(y)/∂z_v = 1[y = v] − π(v), as in
:meth:`AutoregressivePolicy.grad_log_cond_weighted`).
"""

from __future__ import annotations

import numpy as np

from .._util import as_float_array, check_int, check_rng
from .clip import clip_weights

__all__ = ["sample_rows", "response_masses", "clipped_logit_gradient"]


def _log_probs_rows(log_pi, name: str) -> np.ndarray:
    """log π (S, N), each row normalised (to 1e-8) with no NaN or +inf; else a ValueError naming ``name``."""
    lp = as_float_array(log_pi, name)
    if lp.ndim != 2 or lp.shape[1] < 1 or lp.shape[0] < 1:
        raise ValueError(f"{name} has shape {lp.shape}; allowed: (S, N) log-probabilities, one policy per row")
    if np.isnan(lp).any() or np.isposinf(lp).any():
        raise ValueError(f"{name} contains NaN or +inf; allowed: log-probabilities (finite or −inf)")
    with np.errstate(over="ignore"):
        gap = np.abs(np.exp(lp).sum(axis=1) - 1)  # a check only: the maths stays in log space
    if not gap.max() <= 1e-8:
        bad = int(np.nan_to_num(gap, nan=np.inf).argmax())
        raise ValueError(f"{name}[{bad}] sums to {np.exp(lp[bad]).sum():.6g} ≠ 1; allowed: rows of normalised "
                         "log-probabilities")
    return lp


#: largest S·n·N of :func:`sample_rows` (its (S, n, N) boolean comparison: 100 MB)
MAX_CELLS = 10**8


def sample_rows(log_pi, n: int, rng: np.random.Generator) -> np.ndarray:
    """y (S, n) with y_{s,i} ∼ π_s i.i.d. by inverse CDF: y = min{k : Σ_{j≤k} π_s(j) > u Σ_j π_s(j)}, u ∼ U[0, 1).

    Row s uses the uniforms s·n … s·n + n − 1 of ``rng``: the same indices as S successive
    calls of ``Policy.sample(n, rng)`` on the rows' policies (toyfdiv._util.sample_index).
    """
    lp = _log_probs_rows(log_pi, "log_pi")
    n = check_int(n, "n")
    S, N = lp.shape
    if S * n * N > MAX_CELLS:  # the (S, n, N) comparison below, refused before allocating
        raise ValueError(f"n={n} draws for {S} rows over {N} responses need S·n·N = {S * n * N:,} cells; allowed: "
                         f"≤ {MAX_CELLS:,} (n ≤ {MAX_CELLS // (S * N):,} here)")
    rng = check_rng(rng)
    cdf = np.cumsum(np.exp(lp), axis=1)  # (S, N)
    u = rng.random((lp.shape[0], n)) * cdf[:, -1:]  # (S, n)
    y = (cdf[:, None, :] <= u[:, :, None]).sum(axis=2)  # (S, n) = searchsorted(cdf_s, u, side="right")
    return np.minimum(y, lp.shape[1] - 1)


def response_masses(idx, weights, N: int) -> np.ndarray:
    """m[s, y] = Σ_i w[s, i] 1[idx[s, i] = y]: per-run masses of sampled responses; idx, w (S, n) → (S, N)."""
    N = check_int(N, "N", high=10**8)
    idx = np.asarray(idx)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"idx has dtype {idx.dtype} and shape {idx.shape}; allowed: a 2-d integer array (S, n)")
    if idx.size and (idx.min() < 0 or idx.max() >= N):
        raise ValueError(f"idx has entries in {idx.min()} … {idx.max()}; allowed: 0 … N − 1 = {N - 1}")
    w = as_float_array(weights, "weights")
    if w.shape != idx.shape:
        raise ValueError(f"weights has shape {w.shape}; allowed: idx's shape {idx.shape}, one weight per sample")
    if not np.isfinite(w).all():
        raise ValueError("weights contains NaN or inf; allowed: finite weights")
    S = idx.shape[0]
    if S * N > 10**8:
        raise ValueError(f"idx has {S} rows and N={N}: an (S, N) = {S * N:,}-entry result; allowed: S·N ≤ 10⁸")
    flat = (idx + N * np.arange(S)[:, None]).ravel()
    return np.bincount(flat, weights=w.ravel(), minlength=S * N).reshape(S, N)


def clipped_logit_gradient(log_pi, log_pi_old, m_pos, m_neg, clip_low, clip_high) -> np.ndarray:
    """g_s = W_s − (Σ_y W_s(y)) π_s, W = −ρ (m⁺ 1[ρ ≤ 1 + ε_high] + m⁻ 1[ρ ≥ 1 − ε_low]), ρ = π/π_old; (S, N).

    The gradient of PPO's clipped loss with respect to the logits of S one-token policies,
    one per row: row s equals :func:`toyfdiv.rl.clip.clipped_gradient` on the one-token
    AutoregressivePolicy with logits log π_s against log π_old,s (m⁺ ≥ 0, m⁻ ≤ 0 the
    positive and negative parts of the masses s·A of each response).
    """
    lp, lp_old = _log_probs_rows(log_pi, "log_pi"), _log_probs_rows(log_pi_old, "log_pi_old")
    if lp.shape != lp_old.shape:
        raise ValueError(f"log_pi_old has shape {lp_old.shape}; allowed: log_pi's shape {lp.shape}")
    m_pos, m_neg = as_float_array(m_pos, "m_pos"), as_float_array(m_neg, "m_neg")
    for name, m, ok in (("m_pos", m_pos, m_pos >= 0), ("m_neg", m_neg, m_neg <= 0)):
        if m.shape != lp.shape:
            raise ValueError(f"{name} has shape {m.shape}; allowed: log_pi's shape {lp.shape}")
        if not (np.isfinite(m).all() and ok.all()):
            raise ValueError(f"{name} has entries that are not finite or of the wrong sign; allowed: finite, "
                             f"{'≥ 0' if name == 'm_pos' else '≤ 0'}")
    with np.errstate(over="ignore", invalid="ignore"):
        rho = np.exp(lp - lp_old)  # (S, N); a response π_old never samples has zero mass
    rho = np.where((m_pos != 0) | (m_neg != 0), rho, 0.0)
    if not np.isfinite(rho).all():
        raise ValueError("log_pi − log_pi_old overflows exp for a sampled response; allowed: π_old > 0 wherever "
                         "a mass is non-zero")
    W = clip_weights(rho, m_pos, m_neg, clip_low, clip_high)  # (S, N)
    return W - W.sum(axis=1, keepdims=True) * np.exp(lp)
