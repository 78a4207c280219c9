"""Simulated human raters and the feedback datasets they produce.

A rater judges by a hidden utility ũ(x) = u(x) + b(x): the true utility u plus an optional
systematic bias b (e.g. a bonus per token of length), with noise at temperature τ > 0:

    thumbs up/down:  P(👍 | x)   = σ((ũ(x) − u₀)/τ)               (logistic)
    pairwise:        P(x ≻ y)   = σ((ũ(x) − ũ(y))/τ)              (Bradley & Terry 1952)

so the data identify the reward r = ũ/τ (in "Bradley–Terry units"), up to a constant for
pairs.  Feedback is collected on samples from a policy with an explicit
``np.random.Generator``; datasets are frozen records of index arrays (+ labels), saved
and loaded with ``np.savez`` / ``np.load(allow_pickle=False)``.

References: Bradley & Terry (1952), "Rank analysis of incomplete block designs";
Christiano et al. (2017), "Deep RL from human preferences", §2.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit, logsumexp

from .._util import (log_normalise, sample_index, as_float_array, check_vector, check_finite_float, check_instance, check_int, check_log_probs,
                     check_positive_float, check_rng, check_space)
from ..policies.base import Policy
from ..space import SequenceSpace
from ..tasks import Task

__all__ = [
    "FORMAT_VERSION", "Rater", "PreferenceDataset", "ThumbsDataset", "n_tokens",
    "collect_preferences", "collect_thumbs", "bayes_accuracy", "pair_log_probs", "save", "load",
]

FORMAT_VERSION = 1  # bump when the saved fields change; load() refuses other versions
_MAX_PAIRS = 25_000_000  # N² cap for exact sums over all ordered pairs (≈ 200 MB per array)


def n_tokens(space: SequenceSpace) -> np.ndarray:
    """|x|: the number of vocabulary tokens of each sequence (EOS and padding excluded), (N,)."""
    toks = check_space(space).tokens  # (N, T); ids 0 … V−1 are vocabulary, V is EOS, −1 pads
    return ((toks >= 0) & (toks < space.n_vocab)).sum(axis=1).astype(float)


# ---------------------------------------------------------------------------- rater
@dataclass(frozen=True, eq=False)
class Rater:
    """ũ = u + b;  P(x ≻ y) = σ((ũ(x) − ũ(y))/τ);  P(👍 | x) = σ((ũ(x) − u₀)/τ).

    Attributes:
      utility: u (N,), the hidden true utility (what we actually want).
      temperature: τ > 0; τ → 0 is a noiseless rater, large τ a coin flip.
      bias: b (N,) the rater's systematic error (zeros: a well-specified rater).
      threshold: u₀, the utility at which a thumbs-up is a coin flip.
      name: for display.
    """

    utility: np.ndarray
    temperature: float = 1.0
    bias: np.ndarray | None = None
    threshold: float = 0.0
    name: str = "rater"

    def __post_init__(self):
        u = check_vector(self.utility, "utility")
        u.setflags(write=False)
        object.__setattr__(self, "utility", u)
        object.__setattr__(self, "temperature", check_positive_float(self.temperature, "temperature"))
        b = np.zeros_like(u) if self.bias is None else check_vector(self.bias, "bias", u.size)
        b.setflags(write=False)
        object.__setattr__(self, "bias", b)
        object.__setattr__(self, "threshold", check_finite_float(self.threshold, "threshold"))
        with np.errstate(over="ignore"):
            scaled = (u + b) / self.temperature
        if not np.isfinite(scaled).all():
            raise ValueError(f"temperature={self.temperature!r} is too small for this utility: ũ/τ overflows")

    @classmethod
    def for_task(cls, task, temperature: float = 1.0, length_bias: float = 0.0) -> "Rater":
        """The task's rater: u = the task's reward (sentiment on the default task), b = length_bias·|x|."""
        if not isinstance(task, Task):
            raise ValueError(f"task={task!r} must be a toyfdiv.tasks.Task")
        temperature = check_positive_float(temperature, "temperature")
        lb = check_finite_float(length_bias, "length_bias")
        name = f"{task.reward.name} rater, τ = {temperature:g}" + (f", +{lb:g}/token" if lb else "")
        return cls(task.reward.values, temperature, lb * n_tokens(task.space), name=name)

    @property
    def size(self) -> int:
        return int(self.utility.size)

    @property
    def perceived(self) -> np.ndarray:
        """ũ = u + b (N,), the utility the rater actually judges by."""
        return self.utility + self.bias

    @property
    def reward(self) -> np.ndarray:
        """r = ũ/τ (N,): the reward in Bradley–Terry units, what the feedback identifies."""
        return self.perceived / self.temperature

    def prob_prefers(self, x, y) -> np.ndarray:
        """P(x ≻ y) = σ((ũ(x) − ũ(y))/τ) for index arrays x, y of one shape."""
        r = self.reward
        return expit(r[self._idx(x, "x")] - r[self._idx(y, "y")])

    def _idx(self, x, name: str) -> np.ndarray:
        arr = np.asarray(x)
        if not np.issubdtype(arr.dtype, np.integer) or (arr.size and (arr.min() < 0 or arr.max() >= self.size)):
            raise ValueError(f"{name} must hold integer sequence indices in 0 … {self.size - 1}")
        return arr

    def prob_thumbs_up(self, x) -> np.ndarray:
        """P(👍 | x) = σ((ũ(x) − u₀)/τ) for an index array x."""
        return expit((self.perceived[self._idx(x, "x")] - self.threshold) / self.temperature)


# ---------------------------------------------------------------------------- datasets
def _check_indices(x, name: str, space_size: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} has shape {arr.shape}; expected a 1-d array of sequence indices")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: a feedback dataset needs at least one judgement")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} has dtype {arr.dtype}; expected integer sequence indices")
    bad = np.flatnonzero((arr < 0) | (arr >= space_size))
    if bad.size:
        raise ValueError(
            f"{name}[{bad[0]}] = {arr[bad[0]]} names a sequence outside the space "
            f"({bad.size} such entries); allowed indices 0 … {space_size - 1}"
        )
    out = arr.astype(np.int64)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class PreferenceDataset:
    """Pairwise judgements: winners[i] ≻ losers[i], i = 1 … n, over a space of N sequences.

    Attributes:
      winners, losers: (n,) int64 sequence indices; winners[i] ≠ losers[i].
      space_size: N.
    """

    winners: np.ndarray
    losers: np.ndarray
    space_size: int

    def __post_init__(self):
        n = check_int(self.space_size, "space_size", low=2)
        w = _check_indices(self.winners, "winners", n)
        l_ = _check_indices(self.losers, "losers", n)
        if w.shape != l_.shape:
            raise ValueError(f"winners has {w.size} entries but losers has {l_.size}; one loser per winner")
        same = np.flatnonzero(w == l_)
        if same.size:
            raise ValueError(
                f"pair {same[0]} compares sequence {w[same[0]]} with itself ({same.size} identical pairs); "
                "a preference needs two different sequences"
            )
        object.__setattr__(self, "space_size", n)
        object.__setattr__(self, "winners", w)
        object.__setattr__(self, "losers", l_)

    def __len__(self) -> int:
        return int(self.winners.size)

    @classmethod
    def from_texts(cls, space: SequenceSpace, pairs) -> "PreferenceDataset":
        """From (winner text, loser text) pairs, e.g. [("very good film </s>", "bad </s>")]."""
        check_space(space)
        if isinstance(pairs, str) or not isinstance(pairs, (list, tuple)) \
                or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
            raise ValueError(f"pairs={pairs!r} must be a list of (winner text, loser text) pairs")
        return cls(np.array([space.index(w) for w, _ in pairs], dtype=np.int64),
                   np.array([space.index(l_) for _, l_ in pairs], dtype=np.int64), space.size)

    def subset(self, idx) -> "PreferenceDataset":
        """The judgements at positions ``idx`` (a slice, or an index / bool array)."""
        return PreferenceDataset(*_take(idx, len(self), self.winners, self.losers), self.space_size)

    def split(self, fraction: float, rng: np.random.Generator) -> tuple["PreferenceDataset", "PreferenceDataset"]:
        """(train, held-out): a random ``fraction`` of the judgements is held out."""
        return tuple(self.subset(i) for i in _split_positions(len(self), fraction, rng))


@dataclass(frozen=True, eq=False)
class ThumbsDataset:
    """Thumbs up/down: labels[i] = 1 if sequence items[i] got a thumbs-up.

    Attributes:
      items: (n,) int64 sequence indices (repeats allowed).
      labels: (n,) bool.
      space_size: N.
    """

    items: np.ndarray
    labels: np.ndarray
    space_size: int

    def __post_init__(self):
        n = check_int(self.space_size, "space_size", low=1)
        x = _check_indices(self.items, "items", n)
        y = np.asarray(self.labels)
        if y.shape != x.shape:
            raise ValueError(f"labels has shape {y.shape}; expected {x.shape}, one label per item")
        if y.dtype != bool:
            if not np.issubdtype(y.dtype, np.number) or not np.isin(y, (0, 1)).all():
                raise ValueError("labels must be booleans or 0/1 (1 = thumbs up)")
            y = y == 1
        y = y.copy()
        y.setflags(write=False)
        object.__setattr__(self, "space_size", n)
        object.__setattr__(self, "items", x)
        object.__setattr__(self, "labels", y)

    def __len__(self) -> int:
        return int(self.items.size)

    def subset(self, idx) -> "ThumbsDataset":
        """The judgements at positions ``idx`` (a slice, or an index / bool array)."""
        return ThumbsDataset(*_take(idx, len(self), self.items, self.labels), self.space_size)

    def split(self, fraction: float, rng: np.random.Generator) -> tuple["ThumbsDataset", "ThumbsDataset"]:
        """(train, held-out): a random ``fraction`` of the judgements is held out."""
        return tuple(self.subset(i) for i in _split_positions(len(self), fraction, rng))


def _take(idx, n: int, *arrays) -> tuple[np.ndarray, ...]:
    """arrays[idx] for each array, with a ValueError for positions outside 0 … n − 1."""
    try:
        return tuple(a[idx] for a in arrays)
    except IndexError:
        raise ValueError(f"idx={idx!r} selects positions outside the dataset; allowed: 0 … {n - 1}") from None


def _split_positions(n: int, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    rng = check_rng(rng)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.integer, np.floating)) \
            or not 0 < float(fraction) < 1:
        raise ValueError(f"fraction={fraction!r} must be in (0, 1)")
    k = int(round(n * float(fraction)))
    if not 0 < k < n:
        raise ValueError(f"fraction={fraction} of {n} judgements leaves an empty train or held-out part")
    perm = rng.permutation(n)
    return np.sort(perm[k:]), np.sort(perm[:k])


# ---------------------------------------------------------------------------- collection
def _source_log_probs(source, n: int) -> np.ndarray:
    """log π (N,) of a Policy, or of a normalised log-probability vector."""
    if isinstance(source, Policy):
        lp = source.log_probs()
    else:
        lp = check_log_probs(source, None, "source")
    if lp.shape != (n,):
        raise ValueError(f"source covers {lp.size} sequences but the rater's utility has {n}")
    return lp


def _check_rater(rater) -> Rater:
    return check_instance(rater, Rater, "rater")


#: collect_preferences refuses a request that needs more pair draws than this (checked before drawing),
#: and draws at most _PAIR_BATCH pairs per round (a few tens of MiB); collect_thumbs at most this many items.
MAX_PAIR_DRAWS = 1e7
_PAIR_BATCH = 1 << 21


def _sample(log_pi: np.ndarray, n: int, rng) -> np.ndarray:
    return sample_index(np.exp(log_pi - log_pi.max()), n, rng)


def collect_preferences(rater: Rater, source, n: int, rng: np.random.Generator) -> PreferenceDataset:
    """x, y ∼ π i.i.d. conditioned on x ≠ y;  x ≻ y with probability σ((ũ(x) − ũ(y))/τ).

    Args:
      rater: the :class:`Rater`.
      source: the policy π whose samples are judged (a Policy or log π (N,)).
      n: number of pairs.
      rng: the randomness (pair draws, then labels).
    Returns:
      a :class:`PreferenceDataset` of n pairs.
    """
    n = check_int(n, "n")
    rng = check_rng(rng)
    log_pi = _source_log_probs(source, _check_rater(rater).size)
    with np.errstate(over="ignore"):  # 2 log π(x) below −1.8e308 is −inf: π(x)² = 0, as it should be
        p_distinct = -np.expm1(logsumexp(2 * log_pi))  # 1 − Σ π², the chance a draw is a valid pair
    if p_distinct < 1e-9:
        raise ValueError("source puts (almost) all its mass on one sequence; no pair of distinct sequences can be drawn")
    draws = n / p_distinct  # expected draws of (x, y) to get n with x ≠ y
    if draws > MAX_PAIR_DRAWS:
        raise ValueError(f"n={n:,} pairs from this source need ~{draws:.3g} draws (only a fraction "
                         f"1 − Σπ² = {p_distinct:.3g} of them have x ≠ y), over the limit of {MAX_PAIR_DRAWS:.0e}; "
                         f"allowed: n ≤ {max(1, int(MAX_PAIR_DRAWS * p_distinct)):,} from this source, or a source "
                         "with more spread")
    xs, ys, have = [], [], 0
    while have < n:
        m = min(int(1.2 * (n - have) / p_distinct) + 8, _PAIR_BATCH)  # bounded memory per round
        x, y = _sample(log_pi, m, rng), _sample(log_pi, m, rng)
        keep = x != y
        xs.append(x[keep]), ys.append(y[keep])
        have += int(keep.sum())
    x, y = np.concatenate(xs)[:n], np.concatenate(ys)[:n]
    x_wins = rng.random(n) < rater.prob_prefers(x, y)
    return PreferenceDataset(np.where(x_wins, x, y), np.where(x_wins, y, x), rater.size)


def collect_thumbs(rater: Rater, source, n: int, rng: np.random.Generator) -> ThumbsDataset:
    """x ∼ π i.i.d.;  👍 with probability σ((ũ(x) − u₀)/τ).  Returns a :class:`ThumbsDataset` of n items."""
    n = check_int(n, "n", high=int(MAX_PAIR_DRAWS))  # refused before drawing: a few bytes per item, times n
    rng = check_rng(rng)
    x = _sample(_source_log_probs(source, _check_rater(rater).size), n, rng)
    return ThumbsDataset(x, rng.random(n) < rater.prob_thumbs_up(x), rater.size)


def pair_log_probs(log_mu: np.ndarray) -> np.ndarray:
    """log q(x, y) = log μ(x) + log μ(y) − log(1 − Σ μ²) for x ≠ y, −inf on the diagonal; (N, N).

    The distribution of the ordered pairs :func:`collect_preferences` draws from μ.
    """
    log_mu = as_float_array(log_mu, "log_mu")
    if log_mu.ndim != 1 or log_mu.size < 2:
        raise ValueError(f"log_mu has shape {log_mu.shape}; expected (N,) with N ≥ 2, one entry per sequence")
    log_mu = check_log_probs(log_mu, log_mu.size, "log_mu")
    if log_mu.size**2 > _MAX_PAIRS:
        raise ValueError(f"N = {log_mu.size} sequences give N² = {log_mu.size**2:,} pairs, over the "
                         f"exact-sum limit {_MAX_PAIRS:,}; use a smaller space")
    log_q = log_mu[:, None] + log_mu[None, :]  # (N, N)
    np.fill_diagonal(log_q, -np.inf)
    # 1 − Σ μ² summed as Σ_{x≠y} μ(x)μ(y) in log space: no cancellation when one μ(x) ≈ 1
    top = log_q.max()
    if not np.isfinite(top):
        raise ValueError("log_mu puts all its mass on one sequence; no pair of distinct sequences can be drawn")
    return log_normalise(log_q)


def bayes_accuracy(rater: Rater, source) -> float:
    """E_{(x,y)∼q}[max(σ(Δ), 1 − σ(Δ))], Δ = (ũ(x) − ũ(y))/τ: the best accuracy any model can reach.

    The accuracy of the rater's own reward r = ũ/τ (ties counted as ½) on pairs drawn as in
    :func:`collect_preferences`; q is that pair distribution.  Exact sum over N² pairs.
    """
    log_mu = _source_log_probs(source, _check_rater(rater).size)
    try:
        q = np.exp(pair_log_probs(log_mu))  # (N, N)
    except ValueError as exc:
        raise ValueError(str(exc).replace("log_mu", "source")) from None
    r = rater.reward
    return float(np.sum(q * expit(np.abs(r[:, None] - r[None, :]))))


# ---------------------------------------------------------------------------- save / load
def save(path, dataset: PreferenceDataset | ThumbsDataset) -> None:
    """Write ``dataset`` to ``path`` with np.savez (no pickles), tagged with FORMAT_VERSION."""
    if isinstance(dataset, PreferenceDataset):
        arrays = dict(kind=np.array("preferences"), winners=dataset.winners, losers=dataset.losers)
    elif isinstance(dataset, ThumbsDataset):
        arrays = dict(kind=np.array("thumbs"), items=dataset.items, labels=dataset.labels)
    else:
        check_instance(dataset, (PreferenceDataset, ThumbsDataset), "dataset")
    with open(Path(path), "wb") as fh:  # an open file keeps np.savez from appending ".npz"
        np.savez(fh, format_version=np.array(FORMAT_VERSION), space_size=np.array(dataset.space_size), **arrays)


def load(path) -> PreferenceDataset | ThumbsDataset:
    """Read a dataset written by :func:`save` (np.load with allow_pickle=False), validated again."""
    with np.load(Path(path), allow_pickle=False) as z:
        keys = set(z.files)
        if "format_version" not in keys or "kind" not in keys:
            raise ValueError(f"{path} is not a toyfdiv feedback file (no format_version / kind)")
        version = z["format_version"]
        if version.shape != () or not np.issubdtype(version.dtype, np.integer) or int(version) != FORMAT_VERSION:
            raise ValueError(f"{path} has format_version {version.tolist()!r}; this toyfdiv reads version {FORMAT_VERSION}")
        kind = str(z["kind"])
        fields = {"preferences": ("winners", "losers"), "thumbs": ("items", "labels")}.get(kind, ())
        missing = [k for k in ("space_size", *fields) if k not in keys]
        if missing:
            raise ValueError(f"{path} is a {kind!r} feedback file without the fields {missing}")
        space_size = z["space_size"]
        if space_size.shape != () or not np.issubdtype(space_size.dtype, np.integer):
            raise ValueError(f"{path} has space_size {space_size.tolist()!r}; expected one integer")
        n = int(space_size)
        if kind == "preferences":
            return PreferenceDataset(z["winners"], z["losers"], n)
        if kind == "thumbs":
            return ThumbsDataset(z["items"], z["labels"], n)
    raise ValueError(f"{path} holds kind={kind!r}; expected 'preferences' or 'thumbs'")
