"""DPO under partial coverage: the set of minimisers when some outputs never appear in a pair.

With pairs drawn from μ and Bradley–Terry labels from a reward r, the population DPO loss
(:func:`~toyfdiv.feedback.population_dpo_loss`) depends on π only through the margins
β[h(y) − h(y')], h = log π/π_ref, of outputs y, y' ∈ S = supp μ.  So it is minimised by every

    π = s · p_S  on S,    π = (1 − s) · ν  on U = the outputs outside S,
    p_S ∝ π_ref e^{r/β} restricted to S,   s ∈ (0, 1],   ν any distribution on U,

— a whole family, not the RLHF target π_ref e^{r/β}/Z (which is the member with
s = Z_S/Z and ν ∝ π_ref e^{r/β} on U).  Which member training reaches is decided by the
parametrisation: a tabular softmax's gradient is zero on the logits of U, so θ_U never moves
and π(u)/π_ref(u) is one common factor over U; a shared-parameter model (TinyLM, n-grams)
moves π(U) through the parameters it shares with S — mass can leak to outputs no one ever
compared.

Reference: Xu, Fu, Gao, Ye, Liu, Mei, Wang, Yu, Wu (2024), "Is DPO Superior to PPO for LLM
Alignment? A Comprehensive Study", §4 (Theorem 4.1: DPO's solutions include policies that put
mass on out-of-distribution outputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from .._util import log_normalise, check_log_probs
from .dpo import check_common, check_beta
from .raters import PreferenceDataset, check_vector

__all__ = ["seen_outputs", "unseen_mass", "MinimiserSet", "dpo_minimiser_set"]


def seen_outputs(dataset: PreferenceDataset) -> np.ndarray:
    """(N,) bool: outputs that appear in at least one pair (as winner or loser)."""
    if not isinstance(dataset, PreferenceDataset):
        raise ValueError(f"dataset={dataset!r} must be a PreferenceDataset")
    seen = np.zeros(dataset.space_size, dtype=bool)
    seen[dataset.winners] = True
    seen[dataset.losers] = True
    return seen


def _mask(seen, n: int) -> np.ndarray:
    b = np.asarray(seen)
    if b.shape != (n,) or b.dtype != bool:
        raise ValueError(f"seen must be a bool array of shape ({n},), True where an output is covered")
    if not b.any():
        raise ValueError("seen is all False: no output is covered by the data")
    return b


def unseen_mass(log_pi, seen) -> float:
    """π(U) = Σ_{y not seen} π(y)."""
    log_pi = check_log_probs(log_pi, np.size(log_pi), "log_pi")
    b = _mask(seen, log_pi.size)
    return float(np.exp(logsumexp(log_pi[~b]))) if (~b).any() else 0.0


@dataclass(frozen=True, eq=False)
class MinimiserSet:
    """{π : π|_S = s p_S, s ∈ (0, 1], π|_U arbitrary with mass 1 − s}, the population DPO minimisers.

    Attributes:
      log_p_seen: (N,) log p_S, normalised on S, −inf on U.
      seen: (N,) bool, S.
      log_ref: (N,) log π_ref.
    """

    log_p_seen: np.ndarray
    seen: np.ndarray
    log_ref: np.ndarray

    def member(self, mass_seen: float, log_nu=None) -> np.ndarray:
        """log π of the member with π(S) = mass_seen and π|_U ∝ ν (default ν ∝ π_ref on U); (N,)."""
        s = float(mass_seen)
        if not 0 < s <= 1:
            raise ValueError(f"mass_seen={mass_seen!r} must be in (0, 1]: DPO needs π > 0 on the seen outputs")
        U = ~self.seen
        if s < 1 and not U.any():
            raise ValueError("every output is seen: the only minimiser has mass_seen = 1")
        out = self.log_p_seen + np.log(s)
        if U.any():
            if log_nu is None:
                lu = log_normalise(self.log_ref[U])
            else:
                nu = check_log_probs(log_nu, self.seen.size, "log_nu")
                if np.isfinite(nu[self.seen]).any():
                    raise ValueError("log_nu must be −inf on the seen outputs: ν is a distribution on U")
                lu = nu[U]
            out[U] = lu + (np.log1p(-s) if s < 1 else -np.inf)
        return out

    def contains(self, log_pi, atol: float = 1e-9) -> bool:
        """Whether π|_S ∝ p_S (to ``atol`` in log space) and π(S) > 0."""
        log_pi = check_log_probs(log_pi, self.seen.size, "log_pi")
        S = self.seen
        if not np.all(np.isfinite(log_pi[S])):
            return False
        d = log_pi[S] - self.log_p_seen[S]
        return bool(np.ptp(d) <= atol)


def dpo_minimiser_set(ref_log_probs, reward, beta: float, seen) -> MinimiserSet:
    """The minimisers of population DPO with pairs on S = ``seen``: p_S ∝ π_ref e^{r/β} on S (see module doc)."""
    beta = check_beta(beta)
    log_ref = np.asarray(ref_log_probs, dtype=float)
    check_common(log_ref, log_ref, None)
    r = check_vector(reward, "reward", log_ref.size)
    S = _mask(seen, log_ref.size)
    lp = np.where(S, log_ref + r / beta, -np.inf)
    return MinimiserSet(log_normalise(lp), S.copy(), log_ref.copy())
