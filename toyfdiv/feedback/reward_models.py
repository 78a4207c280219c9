"""Reward models fitted to feedback, and the over-optimisation curve of RLHF on them.

    pairs (Bradley–Terry):  θ̂ = argmin_θ −Σ_i log σ(r_θ(w_i) − r_θ(l_i)) + (l2/2)‖θ‖²
    thumbs (logistic):      θ̂ = argmin_θ −Σ_i log σ(±r_θ(x_i))        + (l2/2)‖θ‖²

with r_θ(x) = θ_x (tabular: one value per sequence) or r_θ(x) = φ(x)·θ (linear in
features; thumbs add an unpenalised intercept).  A Gaussian prior θ ∼ N(0, 1/l2) makes
this a MAP fit; the data term is a sum, so the prior washes out as data grow.

Identifiability: Bradley–Terry likelihoods depend on reward *differences* only, so r̂ is
identified up to an additive constant (and RLHF targets a·exp(r̂/β)/Z ignore it too).  We
fix it explicitly: every fitted r̂ is centred, E_c[r̂] = 0, under a stated distribution c
(uniform unless ``centre_log_probs`` is given, e.g. the base model a).

References: Bradley & Terry (1952); Christiano et al. (2017), eq. 1; Gao, Schulman, Hilton
(2022), "Scaling laws for reward model overoptimization" (the over-optimisation curve).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_expit

from .. import targets as _targets
from .._util import as_float_array, check_instance, check_int, check_log_probs, check_positive_float, check_space
from ..space import SequenceSpace
from ..targets import ConvergenceWarning
from .raters import PreferenceDataset, ThumbsDataset, check_vector

__all__ = ["RewardModel", "Evaluation", "OveroptimisationCurve", "fit_reward_model", "evaluate",
           "ngram_features", "centre", "overoptimisation_curve"]


@dataclass(frozen=True, eq=False)
class RewardModel:
    """r̂(x) = r_θ̂(x) − offset, centred so that E_c[r̂] = 0.

    Attributes:
      values: r̂ (N,), centred.
      offset: the constant removed, E_c[r_θ̂]; for thumbs, logit P(👍 | x) = r̂(x) + offset.
      params: θ̂ (P,) (linear thumbs models: the intercept last).
      kind: "tabular" or "linear".
      likelihood: "bradley_terry" (pairs) or "logistic" (thumbs).
      l2: the L2 strength; n_train: judgements fitted; converged: L-BFGS's verdict.
    """

    values: np.ndarray
    offset: float
    params: np.ndarray
    kind: str
    likelihood: str
    l2: float
    n_train: int
    converged: bool

    @property
    def logits(self) -> np.ndarray:
        """r_θ̂ = r̂ + offset (N,): the uncentred scores the likelihood saw."""
        return self.values + self.offset


@dataclass(frozen=True)
class Evaluation:
    """Held-out accuracy (ties count ½) and log-loss (mean negative log-likelihood, nats)."""

    accuracy: float
    log_loss: float
    n: int


def _renamed(centre_log_probs, center_log_probs):
    """The deprecated spelling ``center_log_probs`` still works for one release, with a warning."""
    if center_log_probs is None:
        return centre_log_probs
    warnings.warn("center_log_probs= is deprecated; the argument is spelled centre_log_probs (as centre)",
                  DeprecationWarning, stacklevel=3)
    if centre_log_probs is not None:
        raise ValueError("give centre_log_probs only (center_log_probs is its deprecated spelling)")
    return center_log_probs


def centre(values, centre_log_probs=None, *, center_log_probs=None) -> tuple[np.ndarray, float]:
    """r̂ = r − E_c[r], c uniform or exp(centre_log_probs); returns (r̂ (N,), E_c[r])."""
    centre_log_probs = _renamed(centre_log_probs, center_log_probs)
    r = as_float_array(values, "values")
    if r.ndim != 1 or r.size == 0 or not np.isfinite(r).all():
        raise ValueError(f"values must be a finite (N,) vector, N ≥ 1; got shape {r.shape}"
                         + (" with NaN or inf" if r.size and not np.isfinite(r).all() else ""))
    if centre_log_probs is None:
        off = float(r.mean())
    else:
        lc = check_log_probs(centre_log_probs, r.size, "centre_log_probs")
        off = float(np.exp(lc) @ r)
    return r - off, off


def ngram_features(space: SequenceSpace, order: int = 2) -> tuple[np.ndarray, tuple[str, ...]]:
    """φ(x) = (#v in x for each token v; #(u v) in x for each bigram, if order = 2), (N, K).

    Vocabulary tokens only (EOS and padding ignored); K = V (+ V²).  The default task's
    sentiment and any per-token length bias are linear in these.
    """
    check_space(space)
    order = check_int(order, "order", low=1, high=2)
    V, toks = space.n_vocab, space.tokens
    voc = (toks >= 0) & (toks < V)  # (N, T) real vocabulary tokens
    cols = [((toks == v) & voc).sum(axis=1) for v in range(V)]
    names = list(space.vocab)
    if order == 2:
        prev, cur = toks[:, :-1], toks[:, 1:]
        both = voc[:, :-1] & voc[:, 1:]
        for u in range(V):
            for v in range(V):
                cols.append(((prev == u) & (cur == v) & both).sum(axis=1))
                names.append(f"{space.vocab[u]} {space.vocab[v]}")
    return np.stack(cols, axis=1).astype(float), tuple(names)


def _nll_and_grad_r(r: np.ndarray, dataset) -> tuple[float, np.ndarray]:
    """−Σ_i log-likelihood of ``dataset`` under scores r (N,), and its gradient wrt r (N,)."""
    n = dataset.space_size
    if isinstance(dataset, PreferenceDataset):
        d = r[dataset.winners] - r[dataset.losers]  # (n,) margins
        s = expit(-d)  # −∂/∂d log σ(d)
        g = np.bincount(dataset.losers, s, n) - np.bincount(dataset.winners, s, n)
        return float(-log_expit(d).sum()), g
    sign = np.where(dataset.labels, 1.0, -1.0)  # (n,)
    z = sign * r[dataset.items]
    return float(-log_expit(z).sum()), np.bincount(dataset.items, -sign * expit(-z), n)


def fit_reward_model(dataset, features=None, *, l2: float = 1.0, centre_log_probs=None,
                     max_iter: int = 2000, tol: float = 1e-10, center_log_probs=None) -> RewardModel:
    """θ̂ = argmin_θ −Σ_i log-lik_i(r_θ) + (l2/2)‖θ‖², then r̂ = r_θ̂ − E_c[r_θ̂].

    Args:
      dataset: a PreferenceDataset (Bradley–Terry) or ThumbsDataset (logistic).
      features: None (tabular, P = N) or φ (N, K) (linear, P = K; + intercept for thumbs).
      l2: L2 strength > 0 (the prior precision).
      centre_log_probs: c (N,) fixing the constant, E_c[r̂] = 0; None = uniform
        (``center_log_probs`` is its deprecated spelling).
      max_iter, tol: L-BFGS-B limits (warns with ConvergenceWarning if not converged).
    Returns:
      a :class:`RewardModel`.  With pairs, r̂ estimates ũ/τ − const (see :class:`Rater`).

    Solved with scipy's L-BFGS-B on the analytic gradient ∂/∂θ = Jᵀ ∂/∂r + l2·θ.
    """
    check_instance(dataset, (PreferenceDataset, ThumbsDataset), "dataset")
    l2 = check_positive_float(l2, "l2")
    tol = check_positive_float(tol, "tol")
    max_iter = check_int(max_iter, "max_iter")
    n = dataset.space_size
    pairs = isinstance(dataset, PreferenceDataset)
    if features is None:
        kind, phi = "tabular", None
        n_params, penalised = n, np.ones(n)
    else:
        kind = "linear"
        phi = as_float_array(features, "features")
        if phi.ndim != 2 or phi.shape[0] != n or not np.isfinite(phi).all():
            raise ValueError(f"features has shape {phi.shape}; expected finite ({n}, K), one row per sequence")
        if not pairs:  # the thumbs threshold: an unpenalised intercept
            phi = np.hstack([phi, np.ones((n, 1))])
        n_params = phi.shape[1]
        penalised = np.ones(n_params)
        if not pairs:
            penalised[-1] = 0.0

    def objective(theta):
        r = theta if phi is None else phi @ theta  # (N,)
        nll, g_r = _nll_and_grad_r(r, dataset)
        g = g_r if phi is None else phi.T @ g_r  # (P,)
        return nll + 0.5 * l2 * float(penalised @ theta**2), g + l2 * penalised * theta

    res = minimize(objective, np.zeros(n_params), jac=True, method="L-BFGS-B",
                   options=dict(maxiter=check_int(max_iter, "max_iter"), ftol=tol, gtol=tol * 1e-2))
    if not res.success:
        warnings.warn(f"reward model fit did not converge in {res.nit} iterations: {res.message}",
                      ConvergenceWarning, stacklevel=2)
    raw = res.x if phi is None else phi @ res.x
    values, off = centre(raw, _renamed(centre_log_probs, center_log_probs))
    values.setflags(write=False)
    return RewardModel(values, off, res.x, kind, "bradley_terry" if pairs else "logistic", l2,
                       len(dataset), bool(res.success))


def evaluate(model, dataset) -> Evaluation:
    """Accuracy = mean 1[r̂(w) > r̂(l)] (+½ on ties), log-loss = −mean log σ(r̂(w) − r̂(l)).

    Thumbs: accuracy of 1[logit > 0] against the label, log-loss of σ(±logit).
    ``model`` is a :class:`RewardModel` or raw scores (N,) (for thumbs read as logits).
    """
    check_instance(dataset, (PreferenceDataset, ThumbsDataset), "dataset")
    r = model.logits if isinstance(model, RewardModel) else check_vector(model, "model")
    if r.shape != (dataset.space_size,):
        raise ValueError(f"the model scores {r.size} sequences but the dataset's space has {dataset.space_size}")
    if isinstance(dataset, PreferenceDataset):
        z = r[dataset.winners] - r[dataset.losers]
    else:  # ThumbsDataset, checked above
        z = np.where(dataset.labels, 1.0, -1.0) * r[dataset.items]
    acc = float(np.mean((z > 0) + 0.5 * (z == 0)))
    return Evaluation(acc, float(-log_expit(z).mean()), int(z.size))


# ---------------------------------------------------------------------------- over-optimisation
@dataclass(frozen=True, eq=False)
class OveroptimisationCurve:
    """E_{p_β}[u] (true) and E_{p_β}[r̂] (proxy) along p_β = a·exp(r̂/β)/Z, β decreasing.

    Attributes:
      betas: (G,) decreasing, so 1/β and KL(p_β‖a) increase along the curve.
      true, proxy, kl: (G,) E_{p_β}[u], E_{p_β}[r̂], KL(p_β ‖ a) in nats.
      turning_beta: β* = argmax_β E_{p_β}[u], refined between grid points.
      turning_true, turning_kl: E_{p_β*}[u] and KL(p_β* ‖ a).
    """

    betas: np.ndarray
    true: np.ndarray
    proxy: np.ndarray
    kl: np.ndarray
    turning_beta: float
    turning_true: float
    turning_kl: float

    @property
    def turning_index(self) -> int:
        """The grid point with the largest true utility."""
        return int(np.argmax(self.true))

    @property
    def is_overoptimised(self) -> bool:
        """True if the true utility peaks strictly inside the grid and falls after it (beyond rounding)."""
        i = self.turning_index
        drop = self.true[i] - self.true[-1]
        return 0 < i < self.true.size - 1 and drop > 1e-9 * (1.0 + abs(self.true[i]))


def _rlhf_stats(log_a, proxy, true_utility, beta) -> tuple[float, float, float]:
    tgt = _targets.rlhf(log_a, proxy, beta)
    p = np.exp(tgt.log_probs)
    return float(p @ true_utility), float(p @ proxy), tgt.kl_from_base


def overoptimisation_curve(log_a, proxy, true_utility, betas=None) -> OveroptimisationCurve:
    """(E_{p_β}[u], E_{p_β}[r̂]) for p_β = a·exp(r̂/β)/Z over a grid of β: exact, no sampling.

    Args:
      log_a: base model (N,).
      proxy: r̂ (N,), e.g. ``fit_reward_model(...).values`` (or a RewardModel).
      true_utility: u (N,), e.g. ``rater.utility`` or ``task.reward``.
      betas: grid of β > 0 (sorted decreasing here); default 60 points from 30 to 0.01.
    Returns:
      an :class:`OveroptimisationCurve`; its turning point β* is the argmax of the true
      utility on the grid, refined by a bounded 1-D search in log β between its neighbours.

    As β → ∞, p_β → a; as β → 0, p_β → the proxy's argmax.  The exact proxy r̂ = u/τ makes
    E_{p_β}[u] rise all the way (dE_{p_β}[u]/d(1/β) = Var_{p_β}[u]/τ ≥ 0); any error can make
    it peak at β* and then fall while the proxy keeps rising (Goodhart; Gao et al. 2022,
    Fig. 1).  A systematic error does it (a rater's bias b, lesson 7), and so does
    statistical error alone: a fair rater (τ = 1, no bias) on 300 pairs from the reviews
    base model, seeds 100–109, gives a fitted linear (unigram+bigram) r̂ that turns in 1 of
    10 seeds (seed 102: β* ≈ 0.106, E[u] then falls by 0.48) and a tabular r̂ that turns in
    3 of 10 (tests/test_audit_corrections.py checks seed 102).
    """
    if hasattr(proxy, "values") and not isinstance(proxy, np.ndarray):
        proxy = proxy.values
    log_a = np.asarray(log_a, dtype=float)
    proxy = check_vector(proxy, "proxy", log_a.size)
    u = check_vector(true_utility, "true_utility", log_a.size)
    grid = np.geomspace(30.0, 0.01, 60) if betas is None else np.asarray(betas, dtype=float)
    if grid.ndim != 1 or grid.size < 3 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(f"betas must be ≥ 3 finite values > 0 (β > 0 is the KL coefficient); got {grid}")
    grid = np.sort(grid)[::-1]
    stats = np.array([_rlhf_stats(log_a, proxy, u, b) for b in grid])  # (G, 3)
    i = int(np.argmax(stats[:, 0]))
    lo, hi = np.log(grid[min(i + 1, grid.size - 1)]), np.log(grid[max(i - 1, 0)])
    best = minimize_scalar(lambda s: -_rlhf_stats(log_a, proxy, u, np.exp(s))[0], bounds=(lo, hi),
                           method="bounded", options=dict(xatol=1e-8))
    b_star = float(np.exp(best.x)) if -best.fun >= stats[i, 0] else float(grid[i])
    t_star, _, kl_star = _rlhf_stats(log_a, proxy, u, b_star)
    ro = [np.asarray(a).copy() for a in (grid, stats[:, 0], stats[:, 1], stats[:, 2])]
    for a in ro:
        a.setflags(write=False)
    return OveroptimisationCurve(*ro, b_star, t_star, kl_star)
