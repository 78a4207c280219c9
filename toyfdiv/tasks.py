"""A tiny task catalogue: corpora, pretrained base models, rewards, constraints, features.

Every reward, constraint and feature is a plain array over the space with a human name
(:class:`Signal`).  A :class:`Task` bundles a space, a corpus, the base model a pretrained
on it, and the signals that the targets of :mod:`toyfdiv.targets` are built from.

>>> task = get("reviews")
>>> task.space.size, task.reward.name
(781, 'sentiment')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import targets as _targets
from ._util import check_finite_float, check_int, check_space
from .policies.autoregressive import AutoregressivePolicy
from .pretraining import ngram_counts, pretrain
from .space import SequenceSpace

__all__ = [
    "Signal", "Task", "get", "names", "default", "pretrain", "ngram_counts",
    "sentiment", "count", "contains", "no_repeat", "max_length", "mean_length",
]


@dataclass(frozen=True)
class Signal:
    """A named array over the space: a reward r (float), a constraint b (bool), a feature φ."""

    name: str
    values: np.ndarray  # (N,)

    def __post_init__(self):
        v = np.array(self.values)
        if v.ndim != 1:
            raise ValueError(f"Signal {self.name!r} values have shape {v.shape}; expected (N,)")
        if not (np.issubdtype(v.dtype, np.number) or v.dtype == bool) or np.iscomplexobj(v) \
                or not np.isfinite(v.astype(float)).all():
            raise ValueError(f"Signal {self.name!r} values must be finite real numbers or booleans; got dtype "
                             f"{v.dtype}" + ("" if v.dtype.kind in "USO" else " with NaN or inf"))
        v.setflags(write=False)
        object.__setattr__(self, "values", v)


# ---------------------------------------------------------------------------- corpora
_CORPORA: dict[str, dict] = {
    "reviews": dict(
        vocab=["good", "bad", "not", "very", "film"],
        eos="</s>",
        length=5,
        description="Film reviews in five words: sentiment, negation and emphasis.",
        corpus=[
            "film good", "film bad", "good film", "bad film", "very good film",
            "very bad film", "film very good", "film very bad", "film not good",
            "film not bad", "not good", "not bad", "not very good", "very bad",
            "bad", "bad bad film", "film bad", "not good film", "film very very bad",
            "good", "film not very good", "very very bad", "bad film not good",
        ],
    ),
    "abc": dict(
        vocab=["a", "b", "c"],
        eos=None,
        length=4,
        description="Three letters, four positions: the smallest space with structure.",
        corpus=["a b c a", "b c a b", "c a b c", "a a b b", "b b c c", "c c a a", "a b a b"],
    ),
}


# ---------------------------------------------------------------------------- signals
def _token_id(space: SequenceSpace, token: str) -> int:
    check_space(space)
    if token not in space.tokens_all:
        raise ValueError(f"token={token!r} is not in the space's tokens {list(space.tokens_all)}")
    return space.tokens_all.index(token)


def sentiment(space: SequenceSpace, lexicon: dict[str, float] | None = None) -> Signal:
    """r(x) = Σ_t s(x_t)·m(x_{t−1}): lexicon score, flipped after "not", doubled after "very"."""
    check_space(space)
    lexicon = {"good": 1.0, "bad": -1.0} if lexicon is None else lexicon
    if not isinstance(lexicon, dict):
        raise ValueError(f"lexicon={lexicon!r} must be a dict {{token: score}}")
    for word, s in lexicon.items():
        check_finite_float(s, f"lexicon[{word!r}]")
    table = np.zeros(space.n_vocab + 2)  # ids 0..V (EOS) and −1 (padding) → 0
    for word, s in lexicon.items():
        table[_token_id(space, word)] = s
    mult = np.ones(space.n_vocab + 2)
    if "not" in space.vocab:
        mult[space.vocab.index("not")] = -1.0
    if "very" in space.vocab:
        mult[space.vocab.index("very")] = 2.0
    toks = space.tokens
    score = table[toks[:, 0]].astype(float)
    for t in range(1, space.length):  # a loop over positions, vectorised over sequences
        score += table[toks[:, t]] * mult[toks[:, t - 1]]
    return Signal("sentiment", score)


def count(space: SequenceSpace, token: str) -> Signal:
    """r(x) = #{t : x_t = token}."""
    k = _token_id(space, token)
    return Signal(f"count({token})", (space.tokens == k).sum(axis=1).astype(float))


def contains(space: SequenceSpace, token: str) -> Signal:
    """b(x) = 1 if ``token`` occurs in x."""
    k = _token_id(space, token)
    return Signal(f"contains({token})", (space.tokens == k).any(axis=1))


def no_repeat(space: SequenceSpace) -> Signal:
    """b(x) = 1 if no vocabulary token occurs twice in x."""
    toks = check_space(space).tokens
    ok = np.ones(space.size, dtype=bool)
    for v in range(space.n_vocab):
        ok &= (toks == v).sum(axis=1) <= 1
    return Signal("no_repeat", ok)


def max_length(space: SequenceSpace, k: int) -> Signal:
    """b(x) = 1 if x has at most k tokens (EOS counted): "ends early"."""
    k = check_int(k, "k", low=1, high=check_space(space).length)
    return Signal(f"length≤{k}", space.lengths <= k)


def mean_length(space: SequenceSpace) -> Signal:
    """φ(x) = |x| / T, the length as a fraction of the longest sequence."""
    check_space(space)
    return Signal("length/T", space.lengths / space.length)


# ---------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class Task:
    """A space, a corpus, its pretrained base model a, and the signals targets are built from."""

    name: str
    description: str
    space: SequenceSpace
    corpus: tuple[str, ...]
    base: AutoregressivePolicy
    reward: Signal
    constraint: Signal
    features: tuple[Signal, ...]
    moments: np.ndarray  # (K,) default target moments μ̄
    beta: float  # default KL coefficient β
    epsilon: float = 0.0  # default pointwise smoothing

    @property
    def log_a(self) -> np.ndarray:
        """(N,) log a(x), the pretrained base model."""
        return self.base.log_probs()

    @property
    def feature_matrix(self) -> np.ndarray:
        """(N, K) φ(x), one column per feature."""
        return np.stack([f.values.astype(float) for f in self.features], axis=1)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def target(self, kind: str = "rlhf", **overrides) -> _targets.Target:
        """The task's target of one kind: "rlhf", "pointwise", "distributional" or "hybrid".

        Overrides: ``beta`` (rlhf), ``epsilon`` (pointwise, hybrid), ``moments`` (distributional,
        hybrid).
        """
        beta = overrides.pop("beta", self.beta)
        epsilon = overrides.pop("epsilon", self.epsilon)
        moments = np.asarray(overrides.pop("moments", self.moments), dtype=float)
        if overrides:
            raise ValueError(f"unknown overrides {sorted(overrides)}; allowed: beta, epsilon, moments")
        if kind == "rlhf":
            return _targets.rlhf(self.log_a, self.reward.values, beta)
        if kind == "pointwise":
            return _targets.pointwise(self.log_a, self.constraint.values, epsilon=epsilon)
        if kind == "distributional":
            return _targets.distributional(self.log_a, self.feature_matrix, moments, feature_names=self.feature_names)
        if kind == "hybrid":
            return _targets.hybrid(self.log_a, self.constraint.values, self.feature_matrix, moments,
                                   epsilon=epsilon, feature_names=self.feature_names)
        raise ValueError(f"kind={kind!r} is not a target kind; allowed: rlhf, pointwise, distributional, hybrid")


TARGET_KINDS = tuple(k for k in _targets.KINDS if k != "custom")  # the kinds a task builds from its signals


def names() -> list[str]:
    """The catalogue's task names; the first is the default."""
    return list(_CORPORA)


def get(name: str = "reviews", *, length: int | None = None, eos: bool | None = None,
        order: int = 2, smoothing: float = 0.5) -> Task:
    """Build a catalogue task; ``length`` and ``eos`` reshape its space (same vocabulary).

    The base model is the smoothed n-gram fit of the corpus (:func:`pretrain`).
    """
    if not isinstance(name, str) or name not in _CORPORA:
        raise ValueError(f"task {name!r} is not in the catalogue; allowed: {names()}")
    if eos is not None and not isinstance(eos, (bool, np.bool_)):
        raise ValueError(f"eos={eos!r} must be True, False or None (the task's default)")
    spec = _CORPORA[name]
    length = spec["length"] if length is None else check_int(length, "length", low=1)
    eos_token = spec["eos"] if eos is None else ("</s>" if eos else None)
    space = SequenceSpace(spec["vocab"], length, eos_token)
    base = pretrain(space, spec["corpus"], order=order, smoothing=smoothing)
    reward, constraint, features, moments, beta = _SIGNALS[name](space)
    return Task(name, spec["description"], space, tuple(spec["corpus"]), base, reward,
                constraint, features, moments, beta)


def _reviews_signals(space: SequenceSpace):
    """reviews: r = sentiment, b = contains "good", φ = (contains "film", r > 0), μ̄ = (½, ½), β = 1."""
    reward = sentiment(space)
    features = (contains(space, "film"), Signal("positive", reward.values > 0))
    return reward, contains(space, "good"), features, np.array([0.5, 0.5]), 1.0


def _abc_signals(space: SequenceSpace):
    """abc: r = #a, b = no repeated letter (contains "a" when the space is longer than the
    vocabulary), φ = (#a, #b), μ̄ = (1.5, 1), β = 1."""
    constraint = no_repeat(space) if space.length <= space.n_vocab else contains(space, "a")
    return count(space, "a"), constraint, (count(space, "a"), count(space, "b")), np.array([1.5, 1.0]), 1.0


#: each catalogue task's signals, as data beside its corpus: space → (r, b, φ, μ̄, β)
_SIGNALS = {"reviews": _reviews_signals, "abc": _abc_signals}


def default() -> Task:
    """The default task: film reviews (V = 5, T = 5 with EOS, N = 781), RLHF on sentiment."""
    return get(names()[0])
