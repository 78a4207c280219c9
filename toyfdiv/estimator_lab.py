"""The estimator laboratory: many independent sampled f-DPG estimates held against the truth.

    bias = ‖E[ĝ] − ∇θ D_f‖,   variance = tr Cov[ĝ],   cosine = E[⟨ĝ, ∇θ D_f⟩ / ‖ĝ‖ ‖∇θ D_f‖]

over ``trials`` independent batches of n samples, for each baseline and Ẑ option, with the
exact gradient (:func:`toyfdiv.fdpg.exact_gradient`) as the reference.

Vectorised over trials: all trials·n samples are drawn at once and the per-sample
coefficients c (trials, n) of :func:`toyfdiv.estimators.coefficients` — the very ones
:func:`~toyfdiv.estimators.sampled_estimate` uses — are computed as one array.  Because
ĝ = Σ_i c_i ∇θ log πθ(x_i) is linear in c, the coefficients are binned per trial into a
(trials, U) matrix over the U distinct sampled sequences and multiplied by the (U, P)
Jacobian of log πθ, built once with U calls of ``grad_log_prob_weighted`` (U ≤ N; for the
default task U ≤ 781 calls, a few tens of milliseconds).  When U exceeds the number of trials
(or the Jacobian would not fit in memory), each trial's binned row is mapped by one
``grad_log_prob_weighted`` call instead — whichever needs fewer calls.  All combinations of
baseline and Ẑ option share the same samples (common random numbers), so their differences
are not sampling noise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._util import check_choice, check_int, check_rng
from .estimators import (BASELINES, Z_OPTIONS, check_proposal, coefficients, draw, ess,
                         log_mean_exp)
from .divergences import as_divergence
from .exact import check_pair, exact_gradient
from .policies.base import Policy

__all__ = ["Trials", "sample_estimates", "estimator_stats", "format_stats", "LAB_Z", "LAB_BASELINES"]

LAB_Z = tuple(z for z in Z_OPTIONS if z != "running")  # independent batches: no history
LAB_BASELINES = tuple(b for b in BASELINES if b != "ema")
_CHUNK_SAMPLES = 1 << 21  # samples drawn per chunk of trials (bounds memory, ~16 MB per array)
_MAX_JACOBIAN = 5 * 10**7  # entries of the (U, P) Jacobian before falling back to per-trial calls


class Trials(NamedTuple):
    """Independent estimates: gradients (trials, P), log Ẑ (trials,), ESS of P/q (trials,)."""

    gradients: np.ndarray
    log_z_hat: np.ndarray
    ess_target: np.ndarray


def _names(value, name: str, allowed: tuple[str, ...]) -> tuple:
    """One option name or a list of them, as a tuple."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name}={value!r} must be a name or a list of names from {list(allowed)}")
    return tuple(value)


def _check_options(z_options, baselines) -> tuple[tuple[str, ...], tuple[str, ...]]:
    z_options = _names(z_options, "z_options", LAB_Z)
    baselines = _names(baselines, "baselines", LAB_BASELINES)
    for z in z_options:
        if z == "running":
            raise ValueError(f"z={z!r} needs a history of steps; the laboratory compares independent "
                             f"batches; allowed: {list(LAB_Z)}")
        check_choice(z, "z", LAB_Z)
    for b in baselines:
        if b == "ema":
            raise ValueError(f"baseline={b!r} needs a history of steps; the laboratory compares "
                             f"independent batches; allowed: {list(LAB_BASELINES)}")
        check_choice(b, "baseline", LAB_BASELINES)
    if not z_options or not baselines:
        raise ValueError("give at least one z option and one baseline")
    return z_options, baselines


def _chunks(policy: Policy, proposal, n: int, trials: int, rng: np.random.Generator):
    """Yield (idx, log π(x), log q(x)), each (t, n), for chunks of t trials summing to ``trials``."""
    per = max(1, _CHUNK_SAMPLES // n)
    for start in range(0, trials, per):
        t = min(per, trials - start)
        idx, log_pi_x, log_q_x = draw(policy, proposal, t * n, rng)
        yield idx.reshape(t, n), log_pi_x.reshape(t, n), log_q_x.reshape(t, n)


def batched_gradients(policy: Policy, idx: np.ndarray, c: np.ndarray) -> np.ndarray:
    """G[t] = Σ_i c[t, i] ∇θ log πθ(idx[t, i]) for (T, n) samples and coefficients; (T, P).

    Linear in c: binned per trial and mapped by the Jacobian of log πθ over the distinct
    sampled sequences (built once), or row by row when that needs fewer policy calls.
    """
    T, N = idx.shape[0], policy.space.size
    support, col = np.unique(idx, return_inverse=True)
    col = col.reshape(idx.shape)
    U = support.size
    if U <= T and U * policy.n_params <= _MAX_JACOBIAN:
        rows = np.arange(T)[:, None] * U + col  # (T, n) flat positions in the (T, U) matrix
        W = np.bincount(rows.ravel(), weights=c.ravel(), minlength=T * U).reshape(T, U)
        J = np.empty((U, policy.n_params))  # (U, P) ∇θ log πθ(x) for each sampled x
        e = np.zeros(N)
        for k, x in enumerate(support):
            e[x] = 1.0
            J[k] = policy.grad_log_prob_weighted(e)
            e[x] = 0.0
        return W @ J
    G = np.empty((T, policy.n_params))
    for t in range(T):
        G[t] = policy.grad_log_prob_weighted(np.bincount(idx[t], weights=c[t], minlength=N))
    return G


def _estimates(div, policy, target, idx, log_pi_x, log_q_x, z_options, baselines):
    """{(z, baseline): (G (t, P), log Ẑ (t,))} for one chunk of samples."""
    log_scores_x = target.log_scores[idx]  # (t, n)
    log_z = {"exact": np.full(idx.shape[0], target.log_z), "batch": log_mean_exp(log_scores_x - log_q_x)}
    out = {}
    for z in z_options:
        for b in baselines:
            c = coefficients(div, log_pi_x, log_q_x, log_scores_x, log_z[z], b)[0]
            out[z, b] = batched_gradients(policy, idx, c), log_z[z]
    return out


def sample_estimates(policy: Policy, target, divergence, *, n: int, trials: int, rng: np.random.Generator,
                     z: str = "exact", baseline: str = "none", proposal=None) -> Trials:
    """ĝ_t = −(1/n) Σ_i ρ(x_ti) [R(x_ti) − B_ti] ∇θ log πθ(x_ti), t = 1 … trials; x_ti ∼ q i.i.d.

    ``trials`` independent one-batch estimates of :func:`toyfdiv.estimators.sampled_estimate`
    (z "exact" or "batch"; baseline "none", "mean", "loo" or "dpg"; proposal q as there),
    computed vectorised.  Returns :class:`Trials`.
    """
    check_pair(policy, target)
    div = as_divergence(divergence)
    n, trials, rng = check_int(n, "n"), check_int(trials, "trials"), check_rng(rng)
    for name, value, allowed in (("z", z, LAB_Z), ("baseline", baseline, LAB_BASELINES)):
        if not isinstance(value, str):
            raise ValueError(f"{name}={value!r} must be one name from {list(allowed)} "
                             "(estimator_stats compares several)")
    (z,), (baseline,) = _check_options(z, baseline)
    proposal = check_proposal(policy, proposal)
    grads, log_zs, esss = [], [], []
    for idx, log_pi_x, log_q_x in _chunks(policy, proposal, n, trials, rng):
        G, log_z = _estimates(div, policy, target, idx, log_pi_x, log_q_x, (z,), (baseline,))[z, baseline]
        grads.append(G)
        log_zs.append(log_z)
        esss.append(ess(target.log_scores[idx] - log_q_x))
    return Trials(np.concatenate(grads), np.concatenate(log_zs), np.concatenate(esss))


def estimator_stats(policy: Policy, target, divergence, *, n: int, trials: int, rng: np.random.Generator,
                    baselines=("none", "mean"), z_options=("exact", "batch"), proposal=None) -> list[dict]:
    """Per (z, baseline): bias ‖E ĝ − g‖, variance tr Cov ĝ, E cos(ĝ, g), relative bias ‖E ĝ − g‖/‖g‖.

    g = ∇θ D_f(πθ ‖ p) exactly; E over ``trials`` independent batches of n samples, all
    options on the same samples.  Vectorised over trials (see the module docstring).

    Returns:
      a list of dict rows, one per (z, baseline), with keys "divergence", "n", "trials",
      "z", "baseline", "bias", "bias_se" (√(variance/trials): the noise floor of the
      measured bias), "relative_bias", "variance", "mse" (E‖ĝ − g‖²), "cosine",
      "grad_norm" (‖g‖) and "log_z_bias" (E log Ẑ − log Z; 0 for exact Z).
    """
    check_pair(policy, target)
    div = as_divergence(divergence)
    n, rng = check_int(n, "n"), check_rng(rng)
    trials = check_int(trials, "trials", low=2)
    z_options, baselines = _check_options(z_options, baselines)
    proposal = check_proposal(policy, proposal)
    g = exact_gradient(policy, target, div)  # (P,)
    g_norm = float(np.linalg.norm(g))
    acc: dict[tuple[str, str], np.ndarray] = {}  # Σ(ĝ − g) (P,), then Σ‖ĝ − g‖², Σ cos, Σ log Ẑ
    for idx, log_pi_x, log_q_x in _chunks(policy, proposal, n, trials, rng):
        for key, (G, log_z) in _estimates(div, policy, target, idx, log_pi_x, log_q_x, z_options, baselines).items():
            D = G - g  # (t, P)
            norms = np.linalg.norm(G, axis=1)
            cos = np.divide(G @ g, norms * g_norm, out=np.zeros(len(G)), where=norms * g_norm > 0)
            s = np.concatenate([D.sum(axis=0), [(D * D).sum(), cos.sum(), log_z.sum()]])
            acc[key] = acc.get(key, 0) + s
    rows = []
    for (z, b), s in acc.items():
        mean_d, sq, cos, log_z = s[:-3] / trials, s[-3], s[-2] / trials, s[-1] / trials
        bias = float(np.linalg.norm(mean_d))
        variance = float(max(sq - trials * bias**2, 0.0) / (trials - 1))
        rows.append(dict(divergence=div.name, n=n, trials=trials, z=z, baseline=b, bias=bias,
                         bias_se=float(np.sqrt(variance / trials)),
                         relative_bias=bias / g_norm if g_norm > 0 else float("inf"),
                         variance=variance, mse=float(sq / trials), cosine=float(cos), grad_norm=g_norm,
                         log_z_bias=float(log_z - target.log_z)))
    return rows


def format_stats(rows: list[dict], keys=("divergence", "n", "z", "baseline", "bias", "bias_se",
                                         "relative_bias", "variance", "cosine")) -> str:
    """A plain-text table of :func:`estimator_stats` rows (for the terminal and lessons)."""
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"rows={rows!r} must be a list of dict rows from estimator_stats")
    missing = sorted({k for r in rows for k in keys if k not in r})
    if missing:
        raise ValueError(f"rows lack the keys {missing}; expected rows from estimator_stats")

    def cell(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    table = [list(keys)] + [[cell(r[k]) for k in keys] for r in rows]
    widths = [max(len(line[j]) for line in table) for j in range(len(keys))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in table)
