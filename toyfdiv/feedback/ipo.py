"""Identity Preference Optimisation (IPO), exact: the loss, its gradient and its optimum.

    L_IPO(πθ; π_ref) = E_{(w,l)}[ (h(w) − h(l) − 1/(2τ))² ],   h = log πθ − log π_ref

IPO is ΨPO with Ψ = identity (Azar et al. 2023, eq. 17): a squared loss whose target margin
1/(2τ) is finite, so deterministic preferences cannot push a margin to infinity the way
DPO's −log σ(β Δh) does (its infimum 0 is only reached at Δh = +∞).

On the population, pairs y, y' ∼ μ i.i.d. and labels from P(y ≻ y'), the loss equals (up to
a constant, :func:`population_ipo_loss`)

    Σ_{y,y'} μ(y) μ(y') (h(y) − h(y') − (P(y ≻ y') − ½)/τ)²                (Azar et al., eq. 15)

whose minimisers on supp μ are h(y) = P(y ≻ μ)/τ + const:
π*(y) ∝ π_ref(y) exp(P(y ≻ μ)/τ), the optimum of max_π E_{y∼π}[P(y ≻ μ)] − τ KL(π‖π_ref).

Reference: Azar, Rowland, Piot, Guo, Calandriello, Valko, Munos (2023), "A General
Theoretical Paradigm to Understand Learning from Human Preferences", §4.2 (DPO and
deterministic preferences), §5 (IPO), eq. 15–17.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import lsqr
from scipy.special import expit

from .._util import log_normalise, as_float_array, check_log_probs, check_positive_float
from ..policies.base import Policy
from .dpo import check_common, check_dataset, as_log_pi, check_policy
from .pairs import Squared, pair_loss, population_pair_loss
from .raters import PreferenceDataset, check_vector

__all__ = ["check_tau", "ipo_loss", "ipo_gradient", "bt_preferences", "win_rates", "population_ipo_loss",
           "population_ipo_gradient", "ipo_optimum", "ipo_dataset_optimum", "ipo_update"]


def check_tau(tau) -> float:
    """τ > 0, IPO's regularisation strength (target margin 1/(2τ))."""
    try:
        return check_positive_float(tau, "tau")
    except ValueError as err:
        raise ValueError(f"{err}: τ is IPO's KL coefficient; the target log-ratio margin is 1/(2τ)") from None


def _pair_sq_loss(h: np.ndarray, winners, losers, tau: float) -> tuple[float, np.ndarray]:
    """L = (1/n) Σ_i (h(w_i) − h(l_i) − 1/(2τ))² and ∂L/∂h (N,): the shared kernel with a squared margin loss."""
    return pair_loss(Squared(0.5 / tau), h, winners, losers)


def ipo_loss(policy, ref_log_probs, dataset: PreferenceDataset, tau: float) -> float:
    """L_IPO = (1/n) Σ_i ((log π(w_i) − log π_ref(w_i)) − (log π(l_i) − log π_ref(l_i)) − 1/(2τ))².

    Shapes: ``policy`` a Policy or log π (N,); ref_log_probs (N,); n pairs.
    Reference: Azar et al. (2023), eq. 17.
    """
    tau = check_tau(tau)
    dataset = check_dataset(dataset)
    log_pi = as_log_pi(policy)
    h = log_pi - check_common(log_pi, ref_log_probs, dataset)
    return _pair_sq_loss(h, dataset.winners, dataset.losers, tau)[0]


def ipo_gradient(policy: Policy, ref_log_probs, dataset: PreferenceDataset, tau: float) -> np.ndarray:
    """∇θ L_IPO = (2/n) Σ_i e_i [∇θ log π(w_i) − ∇θ log π(l_i)],  e_i = Δh_i − 1/(2τ); (P,)."""
    tau = check_tau(tau)
    dataset = check_dataset(dataset)
    log_pi = check_policy(policy).log_probs()
    h = log_pi - check_common(log_pi, ref_log_probs, dataset)
    return policy.grad_log_prob_weighted(_pair_sq_loss(h, dataset.winners, dataset.losers, tau)[1])


def ipo_update(ref_log_probs, dataset: PreferenceDataset, tau: float):
    """update(policy, rng) → (∇θ L_IPO, {"loss": L_IPO}) for ``toyfdiv.training.optimise``."""
    tau = check_tau(tau)
    dataset = check_dataset(dataset)

    def update(policy, rng):
        log_pi = check_policy(policy).log_probs()
        h = log_pi - check_common(log_pi, ref_log_probs, dataset)
        loss, g = _pair_sq_loss(h, dataset.winners, dataset.losers, tau)
        return policy.grad_log_prob_weighted(g), {"loss": loss}

    return update


# ---------------------------------------------------------------------------- population
def bt_preferences(reward) -> np.ndarray:
    """P(y ≻ y') = σ(r(y) − r(y')), the Bradley–Terry preference matrix (N, N)."""
    r = check_vector(reward, "reward")
    return expit(r[:, None] - r[None, :])


def _check_preference(preference, n: int | None = None) -> np.ndarray:
    P = as_float_array(preference, "preference")
    if P.ndim != 2 or P.shape[0] != P.shape[1] or (n is not None and P.shape[0] != n):
        want = f"({n}, {n})" if n is not None else "(N, N)"
        raise ValueError(f"preference has shape {P.shape}; expected {want}, P[y, y'] = P(y ≻ y')")
    if not np.all((P >= 0) & (P <= 1)):
        raise ValueError("preference must hold probabilities in [0, 1] (no NaN)")
    if not np.allclose(P + P.T, 1.0, atol=1e-9):
        raise ValueError("preference must satisfy P(y ≻ y') + P(y' ≻ y) = 1 (and ½ on the diagonal)")
    return P


def _sampling(sampling_log_probs, n: int) -> np.ndarray:
    if sampling_log_probs is None:
        return np.full(n, 1.0 / n)
    return np.exp(check_log_probs(sampling_log_probs, n, "sampling_log_probs"))


def win_rates(preference, sampling_log_probs=None) -> np.ndarray:
    """P(y ≻ μ) = Σ_{y'} μ(y') P(y ≻ y'), (N,); μ uniform unless sampling_log_probs is given."""
    P = _check_preference(preference)
    return P @ _sampling(sampling_log_probs, P.shape[0])


def population_ipo_loss(policy, ref_log_probs, preference, tau: float, sampling_log_probs=None) -> float:
    """L(π) = Σ_{y,y'} μ(y) μ(y') (h(y) − h(y') − (P(y ≻ y') − ½)/τ)²,  h = log π − log π_ref.

    The expected IPO loss on labelled pairs y, y' ∼ μ i.i.d. (winner drawn with P(y ≻ y')) is
    this plus the constant (1/(4τ²)) Σ μ(y)μ(y') (1 − (2P(y ≻ y') − 1)²).  Minimum 0 iff
    h(y) − h(y') = (P(y ≻ y') − ½)/τ on supp μ, which needs P additive; in general the
    minimiser is :func:`ipo_optimum`.  Shapes: preference (N, N); sampling μ (N,) or None.
    Reference: Azar et al. (2023), eq. 15.
    """
    tau = check_tau(tau)
    log_pi = as_log_pi(policy)
    h = log_pi - check_common(log_pi, ref_log_probs, None)
    P = _check_preference(preference, h.size)
    mu = _sampling(sampling_log_probs, h.size)
    return population_pair_loss(Squared((P - 0.5) / tau), h, np.outer(mu, mu))[0]


def population_ipo_gradient(policy: Policy, ref_log_probs, preference, tau: float, sampling_log_probs=None) -> np.ndarray:
    """∇θ L = Σ_y g(y) ∇θ log π(y),  g(y) = 4 μ(y) (h(y) − E_μ[h] − (P(y ≻ μ) − ½)/τ); (P,).

    Computed by the shared kernel (:func:`toyfdiv.feedback.pairs.population_pair_loss`, m = μμᵀ); the
    closed form above is its value when P(y ≻ y') + P(y' ≻ y) = 1.
    """
    tau = check_tau(tau)
    log_pi = check_policy(policy).log_probs()
    h = log_pi - check_common(log_pi, ref_log_probs, None)
    P = _check_preference(preference, h.size)
    mu = _sampling(sampling_log_probs, h.size)
    return policy.grad_log_prob_weighted(population_pair_loss(Squared((P - 0.5) / tau), h, np.outer(mu, mu))[1])


def ipo_optimum(ref_log_probs, win_rate, tau: float) -> np.ndarray:
    """log π*(y) = log π_ref(y) + P(y ≻ μ)/τ − log Z: IPO's population optimum, (N,).

    ``win_rate`` is P(y ≻ μ) (N,) from :func:`win_rates`; where μ has full support this is
    the unique minimiser of :func:`population_ipo_loss` (Azar et al. 2023, Prop. 3 / eq. 9
    with Ψ = identity).  O(N).
    """
    tau = check_tau(tau)
    log_ref = check_log_probs(ref_log_probs, np.size(ref_log_probs), "ref_log_probs")
    w = check_vector(win_rate, "win_rate", log_ref.size)
    if np.any((w < 0) | (w > 1)):
        raise ValueError("win_rate must hold probabilities P(y ≻ μ) in [0, 1]")
    s = log_ref + w / tau
    return log_normalise(s)


def ipo_dataset_optimum(ref_log_probs, dataset: PreferenceDataset, tau: float) -> np.ndarray:
    """log π∞ = log π_ref + δ − log Z, δ = argmin{‖δ‖ : δ minimises Σ_i (δ(w_i) − δ(l_i) − 1/(2τ))²}; (N,).

    The empirical IPO loss depends on θ only through differences δ(w) − δ(l), δ = θ − θ_ref, of a
    tabular policy πθ = softmax(θ).  Its gradient in θ lies in the row space of the pair
    incidence matrix, so gradient descent from θ_ref = log π_ref stays there and converges to
    the minimum-norm least-squares solution (Laplacian pseudo-inverse): unseen outputs keep
    δ = 0 and each connected component of the comparison graph keeps Σ δ = 0.  For one pair
    a ≻ b among {a, b, c}: δ = (1/(4τ), −1/(4τ), 0).  Solved with scipy's LSQR (sparse).
    """
    tau = check_tau(tau)
    dataset = check_dataset(dataset)
    log_ref = check_log_probs(ref_log_probs, dataset.space_size, "ref_log_probs")
    if np.isneginf(log_ref).any():
        raise ValueError("ref_log_probs must have full support (finite log π_ref)")
    n, N = len(dataset), dataset.space_size
    rows = np.repeat(np.arange(n), 2)
    cols = np.stack([dataset.winners, dataset.losers], axis=1).reshape(-1)
    B = csr_matrix((np.tile([1.0, -1.0], n), (rows, cols)), shape=(n, N))  # (n, N) incidence
    delta = lsqr(B, np.full(n, 0.5 / tau), atol=1e-14, btol=1e-14, iter_lim=100 * N)[0]
    s = log_ref + delta
    return log_normalise(s)
