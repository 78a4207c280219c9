"""On-policy distillation with the generalised JSD (GKD), exact over the prefix tree.

    L(θ; ν) = Σ_t Σ_{u: |u| = t} ν(u) · D_β( p_T(· | u) ‖ q_θ(· | u) ),    ν = (1 − λ) p_T + λ q_θ (held fixed)
    D_β(P ‖ Q) = β KL(P ‖ M) + (1 − β) KL(Q ‖ M),   M = β P + (1 − β) Q;   D_0 := KL(P‖Q), D_1 := KL(Q‖P)

p_T is the teacher, q_θ the student, ν(u) the probability that a sequence from the mixture
passes through prefix u (sum over positions, no per-sequence length normalisation).  λ is the
on-policy fraction: λ = 0 is supervised KD on teacher samples, λ = 1 pure on-policy.  No
gradient flows through ν (GKD does not differentiate the sampler), so for λ > 0 the solution
is a *fixed point*: θ* minimises L(·; ν(θ*)).  β skews the divergence from forward KL (β → 0:
mode covering) to reverse KL (β → 1: mode seeking); D_β is ``divergences.gjsd(β)`` with the
student as π and the teacher as p.

For an n-gram student (:class:`~toyfdiv.policies.NgramPolicy`, e.g. order 1, a unigram) the
prefixes sharing a context c share one softmax q_c, and the minimiser for fixed ν is per row:
forward KL: q_c ∝ Σ_{u∈c} ν(u) p_T(·|u) (the ν-average); reverse KL: q_c ∝ exp(Σ_{u∈c} ν(u)
log p_T(·|u) / Σ ν) (the geometric mean); 0 < β < 1: a K-dimensional convex problem, solved
with L-BFGS on the analytic gradient ∂D_β/∂q_v = (1 − β) log(q_v/M_v).

Reference: Agarwal, Vieillard, Zhou, Stanczyk, Ramos, Geist, Bachem (2024), "On-Policy
Distillation of Language Models: Learning from Self-Generated Mistakes", ICLR, §3 (eq. 1
the generalised JSD, Alg. 1 GKD with on-policy fraction λ).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, logsumexp, rel_entr, softmax

from ._util import check_instance, check_int, check_positive_float
from .loop import optimise
from .policies.base import Policy
from .policies.ngram import NgramPolicy
from .policies.tinylm import TinyLM, TinyLMConfig
from .targets import ConvergenceWarning

__all__ = ["skew_divergence", "prefix_mass", "gkd_loss", "gkd_gradient", "gkd_update", "GKDFixedPoint",
           "gkd_fixed_point", "gkd_grid", "gkd_train", "gkd_tinylm_grid"]


def _beta(beta) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)) or not 0 <= beta <= 1:
        raise ValueError(f"beta={beta!r} must be in [0, 1]: 0 is forward KL(teacher ‖ student), 1 reverse KL")
    return float(beta)


def _lam(lam) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.integer, np.floating)) or not 0 <= lam <= 1:
        raise ValueError(f"lam={lam!r} must be in [0, 1]: the on-policy fraction (0 = teacher samples only)")
    return float(lam)


def skew_divergence(p, q, beta: float) -> np.ndarray:
    """D_β(P ‖ Q) over the last axis: β KL(P‖M) + (1 − β) KL(Q‖M), M = βP + (1 − β)Q; KL(P‖Q) at β = 0, KL(Q‖P) at 1."""
    beta = _beta(beta)
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if beta == 0:
        return rel_entr(p, q).sum(axis=-1)
    if beta == 1:
        return rel_entr(q, p).sum(axis=-1)
    m = beta * p + (1 - beta) * q
    return beta * rel_entr(p, m).sum(axis=-1) + (1 - beta) * rel_entr(q, m).sum(axis=-1)


def _skew_grad_q(p, q, beta: float) -> np.ndarray:
    """∂D_β(P‖Q)/∂Q_v (same shape): −P/Q (β = 0), log(Q/P) + 1 (β = 1), (1 − β) log(Q/M) otherwise."""
    if beta == 0:
        return -p / q
    if beta == 1:
        return np.log(q) - np.log(p) + 1.0
    return (1 - beta) * (np.log(q) - np.log(beta * p + (1 - beta) * q))


def _autoregressive(policy, name: str) -> Policy:
    check_instance(policy, Policy, name)
    if not hasattr(policy, "log_conditionals"):
        raise ValueError(f"{name} must expose log_conditionals() (an autoregressive, n-gram or table policy)")
    return policy


def prefix_mass(space, log_pi) -> list[np.ndarray]:
    """ν_t(u) = Σ_{x through u} π(x), one (nodes_t,) array per depth: the chance of reaching prefix u."""
    return [total for _, _, total in space.edge_masses(np.exp(log_pi))]


def _mixture(teacher: Policy, student: Policy, lam: float) -> list[np.ndarray]:
    nu_t = prefix_mass(teacher.space, teacher.log_probs())
    if lam == 0:
        return nu_t
    nu_s = prefix_mass(student.space, student.log_probs())
    return [(1 - lam) * a + lam * b for a, b in zip(nu_t, nu_s)]


def _pair(student, teacher):
    student = _autoregressive(student, "student")
    teacher = _autoregressive(teacher, "teacher")
    if student.space != teacher.space:
        raise ValueError("student and teacher must share one SequenceSpace")
    return student, teacher


def _levels(student, teacher, nu):
    """Per depth with a choice: (ν (nodes,), p_T (nodes, K), q (nodes, K), level index)."""
    for t, (lv, lp_t, lq) in enumerate(zip(student.space.levels, teacher.log_conditionals(), student.log_conditionals())):
        if lv.choices > 1:
            yield nu[t], np.exp(lp_t), np.exp(lq), t


def gkd_loss(student: Policy, teacher: Policy, beta: float, lam: float = 0.0, nu=None) -> float:
    """L(θ; ν) = Σ_t Σ_u ν(u) D_β(p_T(·|u) ‖ q_θ(·|u)); ν from (teacher, student, λ) unless given (per-depth list)."""
    beta, lam = _beta(beta), _lam(lam)
    student, teacher = _pair(student, teacher)
    nu = _mixture(teacher, student, lam) if nu is None else nu
    return float(sum(w @ skew_divergence(p, q, beta) for w, p, q, _ in _levels(student, teacher, nu)))


def gkd_gradient(student: Policy, teacher: Policy, beta: float, lam: float = 0.0, nu=None) -> np.ndarray:
    """∇θ L(θ; ν) with ν held fixed (no gradient through the sampler), (P,).

    Per prefix u the chain rule through q = softmax: ∂L/∂log q_v = ν(u) q_v ∂D/∂q_v; these are
    written as weights on the student's log-conditionals and pushed to θ by a per-level
    weighted gradient (for an n-gram: summed into the shared context rows; for an
    autoregressive policy or a TinyLM: ``grad_log_cond_weighted``, backprop through the network).
    """
    beta, lam = _beta(beta), _lam(lam)
    student, teacher = _pair(student, teacher)
    nu = _mixture(teacher, student, lam) if nu is None else nu
    if not isinstance(student, NgramPolicy):
        if not hasattr(student, "grad_log_cond_weighted"):
            raise ValueError(f"student={type(student).__name__} has no per-token gradient; allowed: NgramPolicy, "
                             "AutoregressivePolicy, TinyLM")
        W = [np.zeros((lv.nodes, lv.choices)) for lv in student.space.levels]  # ∂L/∂log q(v|u) per depth
        for w, p, q, t in _levels(student, teacher, nu):
            W[t] = w[:, None] * q * _skew_grad_q(p, q, beta)
        return student.grad_log_cond_weighted(W)
    table = student.table()
    grad = np.zeros_like(table)  # (rows, K)
    rows = student.context_rows()
    for w, p, q, t in _levels(student, teacher, nu):
        d_logq = w[:, None] * q * _skew_grad_q(p, q, beta)  # (nodes, K) ∂L/∂log q(v|u)
        g_z = d_logq - q * d_logq.sum(axis=1, keepdims=True)  # softmax chain: ∂L/∂z
        np.add.at(grad, rows[t], g_z)
    return grad.reshape(-1)


def gkd_update(teacher: Policy, beta: float, lam: float = 0.0):
    """update(student, rng) → (∇θ L(θ; ν(θ)), {"loss"}) for ``toyfdiv.training.optimise`` (ν recomputed, detached)."""
    beta, lam = _beta(beta), _lam(lam)
    teacher = _autoregressive(teacher, "teacher")

    def update(student, rng):
        nu = _mixture(teacher, student, lam)
        return gkd_gradient(student, teacher, beta, lam, nu), {"loss": gkd_loss(student, teacher, beta, lam, nu)}

    return update


# ---------------------------------------------------------------------------- exact optimum
def _row_optimum(weights, p, beta, z0):
    """argmin_q Σ_u w_u D_β(p_u ‖ q) over one softmax row: closed form at β ∈ {0, 1}, else L-BFGS."""
    W = weights.sum()
    if W <= 0:
        return z0
    if beta == 0:
        return np.log(weights @ p / W)
    if beta == 1:
        return log_softmax(weights @ np.log(p) / W)

    def fun(z):
        q = softmax(z)
        g_q = weights @ _skew_grad_q(p, q[None, :], beta)  # (K,)
        return float(weights @ skew_divergence(p, q[None, :], beta)) / W, q * (g_q - q @ g_q) / W

    res = minimize(fun, z0, jac=True, method="L-BFGS-B", options=dict(ftol=1e-15, gtol=1e-12, maxiter=1000))
    return log_softmax(res.x)


def _argmin(student: NgramPolicy, teacher: Policy, beta: float, nu) -> NgramPolicy:
    """θ = argmin L(θ; ν) for an n-gram student, row by row."""
    table = log_softmax(student.table(), axis=1)
    rows = student.context_rows()
    lcs = teacher.log_conditionals()
    new = table.copy()
    for r in range(table.shape[0]):
        ws, ps = [], []
        for t, lv in enumerate(student.space.levels):
            if lv.choices == 1:
                continue
            m = rows[t] == r
            if m.any():
                ws.append(nu[t][m])
                ps.append(np.exp(lcs[t][m]))
        if ws:
            new[r] = _row_optimum(np.concatenate(ws), np.concatenate(ps), beta, table[r])
    return student.with_params(new.reshape(-1))


@dataclass(frozen=True, eq=False)
class GKDFixedPoint:
    """θ* with θ* = argmin L(·; ν(θ*)): the student, its loss, iterations and convergence."""

    student: NgramPolicy
    loss: float
    iterations: int
    converged: bool


def gkd_fixed_point(teacher: Policy, beta: float, lam: float, order: int = 1, *, tol: float = 1e-10,
                    max_iter: int = 500) -> GKDFixedPoint:
    """The exact GKD solution for an n-gram student of ``order``: θ_{k+1} = argmin L(·; ν(θ_k)) to a fixed point.

    λ = 0 needs one step (ν = the teacher's prefix masses); λ > 0 iterates the exact row-wise
    minimisers until the student's log-conditionals move less than ``tol`` (warns with
    ConvergenceWarning otherwise).
    """
    beta, lam = _beta(beta), _lam(lam)
    teacher = _autoregressive(teacher, "teacher")
    order = check_int(order, "order")
    max_iter = check_int(max_iter, "max_iter")
    student = NgramPolicy(teacher.space, order, init_scale=0.0)
    student = _argmin(student, teacher, beta, _mixture(teacher, student, 0.0))  # start from the λ = 0 solution
    k, converged = 0, lam == 0
    while not converged and k < max_iter:
        k += 1
        nxt = _argmin(student, teacher, beta, _mixture(teacher, student, lam))
        delta = np.abs(log_softmax(nxt.table(), axis=1) - log_softmax(student.table(), axis=1)).max()
        student, converged = nxt, delta < tol
    if not converged:
        warnings.warn(f"GKD fixed point (β = {beta:g}, λ = {lam:g}) not reached in {max_iter} iterations",
                      ConvergenceWarning, stacklevel=2)
    return GKDFixedPoint(student, gkd_loss(student, teacher, beta, lam), k, bool(converged))


def gkd_grid(teacher: Policy, betas=(0.0, 0.1, 0.5, 0.9, 1.0), lams=(0.0, 0.5, 1.0), order: int = 1) -> list[dict]:
    """One row per (λ, β): the fixed point's entropy H(q), forward KL(p_T‖q), reverse KL(q‖p_T) (sequence level)."""
    log_t = teacher.log_probs()
    rows = []
    for lam in lams:
        for beta in betas:
            fp = gkd_fixed_point(teacher, beta, lam, order)
            lq = fp.student.log_probs()
            q, p = np.exp(lq), np.exp(log_t)
            rows.append(dict(lam=float(lam), beta=float(beta), entropy=float(-q @ lq),
                             forward_kl=float(rel_entr(p, q).sum()), reverse_kl=float(rel_entr(q, p).sum()),
                             teacher_log_lik=float(q @ log_t), iterations=fp.iterations, converged=fp.converged,
                             log_z=float(logsumexp(lq))))
    return rows


# ---------------------------------------------------------------------------- a network student
def _row(student: Policy, teacher: Policy, lam: float, beta: float, extra: dict) -> dict:
    lq, log_t = student.log_probs(), teacher.log_probs()
    q, p = np.exp(lq), np.exp(log_t)
    return dict(lam=float(lam), beta=float(beta), entropy=float(-q @ lq), forward_kl=float(rel_entr(p, q).sum()),
                reverse_kl=float(rel_entr(q, p).sum()), teacher_log_lik=float(q @ log_t), **extra)


def gkd_train(student: Policy, teacher: Policy, beta: float, lam: float, *, steps: int = 600, lr: float = 0.05,
              seed: int = 0):
    """θ ← Adam(θ, ∇θ L(θ; ν(θ))) for ``steps`` through the one loop (:func:`toyfdiv.loop.optimise`); (student, ‖∇‖∞).

    ν is recomputed from the current student each step and held fixed in the gradient (GKD's
    on-policy sampler, exact), so where it stops, θ minimises L(·; ν(θ)): the fixed point.
    The returned gradient is at the end, for its own mixture — 0 at a fixed point.
    """
    beta, lam = _beta(beta), _lam(lam)
    student, teacher = _pair(student, teacher)
    steps = check_int(steps, "steps")
    lr = check_positive_float(lr, "lr")
    update = gkd_update(teacher, beta, lam)
    hist = optimise(student, update, steps=steps, lr=lr, optimizer="adam", record_every=steps, seed=seed,
                    label=f"gkd(beta={beta:g}, lam={lam:g})")
    return hist.policy, float(np.abs(update(hist.policy, None)[0]).max())


def gkd_tinylm_grid(teacher: Policy, n_hidden: int = 2, betas=(0.0, 0.5, 1.0), lams=(0.0, 1.0), *, n_embd: int = 2,
                    steps: int = 600, lr: float = 0.05, seed: int = 0) -> list[dict]:
    """One row per (λ, β): a narrow TinyLM student (GRU width ``n_hidden``) trained by GKD to its fixed point.

    Keys as :func:`gkd_grid` (entropy H(q), forward_kl KL(p_T‖q), reverse_kl KL(q‖p_T),
    teacher_log_lik E_q[log p_T]) plus grad_max, ‖∇θ L(θ; ν(θ))‖∞ at the end, and n_params.
    Every run starts from the same initialisation (``seed``).
    """
    teacher = _autoregressive(teacher, "teacher")
    config = TinyLMConfig(n_embd=check_int(n_embd, "n_embd"), n_hidden=check_int(n_hidden, "n_hidden"))
    start = TinyLM(teacher.space, config, seed=check_int(seed, "seed", low=0))
    rows = []
    for lam in lams:
        for beta in betas:
            student, g = gkd_train(start, teacher, beta, lam, steps=steps, lr=lr, seed=seed)
            rows.append(_row(student, teacher, lam, beta, dict(grad_max=g, n_params=start.n_params)))
    return rows
