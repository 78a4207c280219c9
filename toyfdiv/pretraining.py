"""Pretraining: base models fitted to a corpus, below the task catalogue that uses them.

    a(v | u) = (n(ctx(u), v) + s) / Σ_v' (n(ctx(u), v') + s)      (:func:`pretrain`, a smoothed n-gram)
    θ ≈ argmin_θ −Σ_x p(x) log πθ(x)                               (:func:`pretrain_tinylm`)

:func:`pretrain` writes the n-gram fit of a corpus as an :class:`AutoregressivePolicy`;
:func:`pretrain_tinylm` fits a :class:`TinyLM` to it (or to the corpus's empirical
distribution) by :meth:`TinyLM.fit`, i.e. by the one optimisation loop.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from ._util import check_int, check_positive_float, check_space
from .policies.autoregressive import AutoregressivePolicy
from .policies.tinylm import FIT_LR, FIT_STEPS, TinyLM, TinyLMConfig
from .space import SequenceSpace

__all__ = ["check_corpus", "ngram_counts", "pretrain", "pretrain_tinylm"]


def check_corpus(corpus) -> list[str]:
    """The corpus as a list of text lines; a bare string or non-text lines are refused."""
    if isinstance(corpus, str) or not isinstance(corpus, (list, tuple, np.ndarray)):
        raise ValueError(f"corpus={corpus!r} must be a list of text lines, e.g. ['a b c', 'b c a']")
    bad = [line for line in corpus if not isinstance(line, str)]
    if bad:
        raise ValueError(f"corpus lines must be strings; got {bad[:3]!r}")
    return [str(line) for line in corpus]


def ngram_counts(space: SequenceSpace, corpus: Sequence[str], order: int) -> dict[tuple, np.ndarray]:
    """Counts n(context, v) of next token v after each (order − 1)-token context in ``corpus``.

    Contexts are padded on the left with −1 (beginning of sequence); with EOS, every corpus
    line ends with EOS.  Returns {context tuple: (choices,) counts}.
    """
    check_space(space)
    order = check_int(order, "order", low=1)
    corpus = check_corpus(corpus)
    ids = {t: k for k, t in enumerate(space.tokens_all)}
    k = order - 1
    counts: dict[tuple, np.ndarray] = {}
    n_choices = space.n_vocab + (1 if space.eos is not None else 0)
    for line in corpus:
        words = line.split()
        unknown = [w for w in words if w not in space.vocab]
        if unknown:
            raise ValueError(f"corpus line {line!r} has tokens {unknown} outside vocab {list(space.vocab)}")
        seq = [ids[w] for w in words] + ([space.eos_id] if space.eos is not None else [])
        padded = [-1] * k + seq
        for t, v in enumerate(seq):
            ctx = tuple(padded[t : t + k])
            counts.setdefault(ctx, np.zeros(n_choices))[v] += 1
    return counts


def pretrain(
    space: SequenceSpace, corpus: Sequence[str], *, order: int = 2, smoothing: float = 0.5
) -> AutoregressivePolicy:
    """a(v | u) = (n(ctx(u), v) + s) / Σ_v' (n(ctx(u), v') + s): a smoothed n-gram fit.

    The maximum-likelihood n-gram model of the corpus with additive (Lidstone) smoothing s,
    written out as an :class:`AutoregressivePolicy` over ``space`` (its context ctx(u) is the
    last order − 1 tokens of the prefix u).  s > 0 gives a(x) > 0 for every sequence; s = 0
    is the unsmoothed maximum-likelihood fit, and a context never seen in the corpus then
    falls back to uniform.  The EOS choice only exists where the space allows it.
    """
    check_space(space)
    order = check_int(order, "order", low=1)
    smoothing = check_positive_float(smoothing, "smoothing", allow_zero=True)
    corpus = check_corpus(corpus)
    if len(corpus) == 0:
        raise ValueError("corpus is empty; give at least one line of text")
    counts = ngram_counts(space, corpus, order)
    k, V = order - 1, space.n_vocab
    blocks = []
    for lv in space.levels:
        if lv.choices == 1:
            continue
        prefix = space.prefix_tokens(lv.depth)  # (nodes, depth)
        padded = np.hstack([np.full((lv.nodes, k), -1, dtype=np.int32), prefix])
        ctx = padded[:, padded.shape[1] - k :]  # (nodes, k) the last k tokens, −1 = start
        table = np.zeros((lv.nodes, lv.choices))
        uniq, inverse = np.unique(ctx, axis=0, return_inverse=True)  # few distinct contexts
        for j, c in enumerate(uniq):
            n = counts.get(tuple(int(x) for x in c))
            if n is not None:
                row = n[:V] if lv.choices == V else n[: lv.choices]
                table[inverse.reshape(-1) == j] = row
        table += smoothing
        empty = table.sum(axis=1) == 0
        table[empty] = 1.0  # unseen context without smoothing: uniform
        with np.errstate(divide="ignore"):
            logc = np.log(table) - np.log(table.sum(axis=1, keepdims=True))
        if np.isneginf(logc).any():
            raise ValueError(
                "smoothing=0 leaves next tokens with probability 0, which a softmax policy cannot "
                "hold; use smoothing > 0 (e.g. 1e-3) for a near-unsmoothed fit"
            )
        blocks.append(logc.reshape(-1))
    return AutoregressivePolicy(space, params=np.concatenate(blocks) if blocks else np.zeros(0))


def pretrain_tinylm(space: SequenceSpace, corpus, config: TinyLMConfig | None = None, *,
                    source: str = "ngram", order: int = 2, smoothing: float = 0.5, steps: int = FIT_STEPS,
                    lr: float = FIT_LR, method: str = "exact", n: int = 64, seed: int = 0,
                    target: str | None = None) -> TinyLM:
    """θ ≈ argmin_θ −Σ_x p(x) log πθ(x) for p built from ``corpus``: a TinyLM base model.

    ``source="ngram"``: p = the smoothed n-gram fit of the corpus (:func:`pretrain`
    with ``order`` and ``smoothing``, full support); ``"empirical"``: p(x) = #{lines = x}/#lines
    (EOS appended in EOS spaces).  Optimisation by :meth:`TinyLM.fit` (``method``, ``steps``,
    ``lr``, ``n``, ``seed``).  ``target=`` is the deprecated name of ``source``.
    """
    if target is not None:
        warnings.warn("pretrain_tinylm(target=...) is deprecated: the argument is called source "
                      "(a Target is something else in toyfdiv)", DeprecationWarning, stacklevel=2)
        source = target
    if source == "ngram":
        log_p = pretrain(space, corpus, order=order, smoothing=smoothing).log_probs()
    elif source == "empirical":
        corpus = check_corpus(corpus)
        if len(corpus) == 0:
            raise ValueError("corpus is empty; give at least one line of text")
        tail = "" if space.eos is None else " " + space.eos
        counts = np.bincount([space.index(line + tail) for line in corpus], minlength=space.size)
        with np.errstate(divide="ignore"):
            log_p = np.log(counts) - np.log(counts.sum())
    else:
        raise ValueError(f"source={source!r} is unknown; allowed: 'ngram', 'empirical'")
    return TinyLM.fit(space, log_p, config, steps=steps, lr=lr, method=method, n=n, seed=seed)
