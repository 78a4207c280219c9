"""The n-gram policy: one softmax per context of the last k − 1 tokens, πθ(x) = Π_t softmax(θ_{ctx_t})[x_t]."""

from __future__ import annotations


import numpy as np

from .._util import check_space, check_int, check_log_probs, log_softmax_rows
from ..space import SequenceSpace
from .base import Policy, gaussian_init

__all__ = ["NgramPolicy"]


def _context_rows(space: SequenceSpace, order: int) -> tuple[list[np.ndarray | None], int]:
    """Table row of every prefix, per depth, and the number of rows.

    The context of a depth-t prefix u is its last j = min(t, k − 1) tokens, left-padded
    with the start symbol up to k − 1; contexts with j real tokens fill rows
    offset_j … offset_j + V**j − 1, at offset_j + (u mod V**j), for the j that occur at a
    depth with a choice.  Depths without a choice (only EOS) get None.
    """
    V, k = space.n_vocab, order
    used = sorted({min(lv.depth, k - 1) for lv in space.levels if lv.choices > 1})
    offset, start = {}, 0
    for j in used:
        offset[j] = start
        start += V**j
    rows = []
    for lv in space.levels:
        if lv.choices == 1:
            rows.append(None)
            continue
        j = min(lv.depth, k - 1)
        rows.append(offset[j] + np.arange(lv.nodes, dtype=np.int64) % V**j)  # (nodes_t,)
    return rows, start


class NgramPolicy(Policy):
    """πθ(x) = Π_t softmax(θ_{c(x<t)})[x_t], c(x<t) = the last k − 1 tokens (start-padded).

    An interpretable, exactly computable capacity limit: prefixes that end alike share one
    softmax.  ``order=1`` is a unigram model (i.i.d. tokens, geometric lengths with EOS),
    ``order=2`` a bigram; ``order ≥ T`` gives every prefix its own context, i.e. the full
    :class:`~toyfdiv.policies.AutoregressivePolicy` family.  Every depth with a choice has
    the same columns (vocabulary, then EOS if the space has one); the last depth of an EOS
    space without ``unterminated`` allows only EOS and uses no row, so one table
    θ (rows, K) serves all depths.  Rows: contexts with j real tokens, j = 0, 1, …, each
    block in lexicographic order of the tokens (see :meth:`context_rows`).

    Args:
      space: the sequence space.
      order: k ≥ 1, the n of the n-gram.
      seed: seeds the initial logits θ ∼ N(0, init_scale²).
      init_scale: standard deviation of the initial logits (0 gives uniform conditionals).
      params: explicit θ (rows·K,), overriding seed and init_scale.
    """

    def __init__(self, space: SequenceSpace, order: int = 2, seed: int = 0, *, init_scale: float = 0.1,
                 params=None):
        check_space(space)
        self._order = check_int(order, "order", low=1)
        P = self.n_params_for(space, self._order)
        if params is None:
            params = gaussian_init(P, seed, init_scale)
        super().__init__(space, params, P)
        self._rows, self._n_rows = _context_rows(space, self._order)

    @classmethod
    def n_params_for(cls, space: SequenceSpace, order: int = 2) -> int:
        return _context_rows(space, order)[1] * cls._n_choices(space)

    @staticmethod
    def _n_choices(space: SequenceSpace) -> int:
        """K: columns of the table (vocabulary, then EOS); 1-column depths use no row."""
        return space.n_vocab + (space.eos is not None)

    @property
    def order(self) -> int:
        return self._order

    def context_rows(self) -> list[np.ndarray | None]:
        """Per depth, the (nodes_t,) table row of each prefix (None where only EOS is allowed)."""
        return self._rows

    def with_params(self, theta: np.ndarray) -> "NgramPolicy":
        return NgramPolicy(self.space, self._order, params=self._required(theta))

    def table(self) -> np.ndarray:
        """θ as the (rows, K) logit table."""
        return self._theta.reshape(self._n_rows, self._n_choices(self.space))

    @classmethod
    def from_log_probs(cls, space: SequenceSpace, log_p: np.ndarray, order: int = 2) -> "NgramPolicy":
        """argmin_π KL(p ‖ π) over k-gram policies: π(v | c) = C(c, v) / C(c), in closed form.

        C(c, v) = Σ_{prefixes u with context c} C(u, v) pools p's edge masses
        (:meth:`SequenceSpace.child_mass`) per context — the maximum-likelihood n-gram of p;
        the weighted gradient vanishes there.  Needs every context and choice to have mass.
        """
        log_p = check_log_probs(log_p, check_space(space).size, "log_p")
        pol = cls(space, order, init_scale=0.0)
        counts = np.zeros((pol._n_rows, cls._n_choices(space)))
        for rows, c in zip(pol._rows, space.child_mass(np.exp(log_p))):
            if rows is not None:
                counts += pol._pool(rows, c)
        if not np.all(counts > 0):
            raise ValueError("log_p leaves a context or a next token with zero mass; the n-gram fit would need −inf logits")
        return cls(space, order, params=np.log(counts) - np.log(counts.sum(axis=1, keepdims=True)))

    def _pool(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Σ over prefixes sharing a row: (nodes_t, K) → (rows, K), a scatter-add without a loop."""
        out = np.zeros((self._n_rows, values.shape[1]))
        lo, n_ctx = int(rows[0]), min(rows.size, self.space.n_vocab ** (self._order - 1))  # offset_j, V**j
        # prefixes u = a·V**j + b share row offset_j + b: a reshape-sum does np.add.at's work in one pass
        out[lo : lo + n_ctx] = values.reshape(-1, n_ctx, values.shape[1]).sum(axis=0)
        return out

    def log_conditionals(self) -> list[np.ndarray]:
        """log πθ(v | u) per depth: (nodes_t, choices_t), each row normalised."""
        if "log_cond" not in self._cache:
            lt = log_softmax_rows(self.table())  # (rows, K), once per context
            self._cache["log_cond"] = [
                np.zeros((lv.nodes, 1)) if r is None else lt[r] for lv, r in zip(self.space.levels, self._rows)
            ]
        return self._cache["log_cond"]

    def _log_probs(self) -> np.ndarray:
        return self.space.sequence_log_probs(self.log_conditionals())

    def grad_log_prob_weighted(self, w: np.ndarray) -> np.ndarray:
        """Σ_x w(x) ∇θ log πθ(x); row c: ∂/∂θ_{c,v} = Σ_{u: ctx(u) = c} [C(u, v) − C(u) πθ(v | c)].

        The per-prefix softmax gradients of :class:`AutoregressivePolicy`, scattered into the
        shared context rows; O(N).
        """
        w = self._check_w(w)
        pi = np.exp(log_softmax_rows(self.table()))  # (rows, K)
        edge = np.zeros_like(pi)  # Σ_u C(u, v) per row
        node = np.zeros(self._n_rows)  # Σ_u C(u) per row
        for rows, c in zip(self._rows, self.space.child_mass(w)):
            if rows is not None:
                edge += self._pool(rows, c)
                node += self._pool(rows, c.sum(axis=1, keepdims=True))[:, 0]
        return (edge - node[:, None] * pi).reshape(-1)

    def __repr__(self) -> str:
        return f"NgramPolicy(space={self.space!r}, order={self._order}, P={self.n_params})"

