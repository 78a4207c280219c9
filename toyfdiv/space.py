"""Sequence spaces small enough to enumerate, and their prefix trees.

A :class:`SequenceSpace` holds every sequence over a tiny vocabulary once, in one
canonical order, so that distributions over the space are plain vectors of shape (N,).
Autoregressive models factorise along the prefix tree: a node at depth t is a prefix of t
vocabulary tokens, and it chooses the next token (or EOS) with one softmax. The tree is
stored level by level, so that every sum over all sequences is a handful of reshapes —
never a Python loop per sequence or per prefix.

Canonical order
---------------
- Fixed length (``eos=None``): all V**T sequences in lexicographic order of token ids, so
  that sequence i has prefix ``i // V**(T - t)`` at depth t.
- With EOS: sequences are grouped by length, shortest first; within a length, in
  lexicographic order.  A sequence of length L is L − 1 vocabulary tokens followed by EOS,
  so group L is in one-to-one correspondence with the depth-(L − 1) prefixes.  With
  ``unterminated=True``, the V**T sequences of T vocabulary tokens without EOS follow last.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple, Sequence

import numpy as np


__all__ = ["SequenceSpace", "Level", "DEFAULT_MAX_BYTES", "MAX_LENGTH"]

#: Default memory budget for one space and the arrays that live on it (6 GiB: a quarter of a
#: 24 GiB machine, leaving room for a policy, a target, gradients and the app).
DEFAULT_MAX_BYTES = 6 * 2**30

#: The longest space: the prefix tree keeps one level per position, and every exact pass over the
#: policy loops over the levels, so a space of V = 1 and length 10⁸ (one sequence!) would
#: allocate 10⁸ levels.  Refused before anything is built.
MAX_LENGTH = 1024

# Bytes one sequence costs across the arrays a typical run keeps over the space: log π, log p,
# log a, weights, per-level buffers, metrics (~24 float64 vectors); tokens are extra.
_BYTES_PER_SEQUENCE = 24 * 8


def _check_length(length, *, limit: bool = True) -> int:
    if isinstance(length, (bool, np.bool_)) or not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"length={reprlib.repr(length)} must be an integer ≥ 1")
    if limit and length > MAX_LENGTH:
        raise ValueError(f"length={length!r} is out of range; allowed: 1 … {MAX_LENGTH} (MAX_LENGTH: the prefix "
                         f"tree keeps one level per position)")
    return int(length)


class Level(NamedTuple):
    """One depth of the prefix tree: ``nodes`` prefixes, each choosing among ``choices``.

    ``choices`` is V (fixed length), V + 1 (vocabulary then EOS, in that column order),
    or 1 (only EOS: the last depth of an EOS space without unterminated sequences).
    """

    depth: int
    nodes: int
    choices: int


@dataclass(frozen=True, eq=False)
class SequenceSpace:
    """Every sequence over ``vocab`` up to ``length`` tokens (``length`` counts the EOS).

    Args:
      vocab: the vocabulary tokens (strings, distinct, non-empty, no spaces).
      length: T ≥ 1, the number of positions; with EOS, the longest sequence is T − 1
        vocabulary tokens and EOS.
      eos: the end-of-sequence token, outside ``vocab``; None for fixed-length sequences.
      unterminated: with EOS, also include the V**T sequences of T tokens without EOS.
      max_bytes: refuse spaces whose estimated memory exceeds this (checked before anything
        is allocated).

    Attributes:
      size: N, the number of sequences.
      tokens: (N, T) int32 token ids; EOS has id V; −1 pads after EOS.
      levels: the prefix tree, one :class:`Level` per depth.
    """

    vocab: tuple[str, ...]
    length: int
    eos: str | None = None
    unterminated: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES
    _offsets: tuple[int, ...] = field(init=False, repr=False)

    def __init__(
        self,
        vocab: Sequence[str],
        length: int,
        eos: str | None = None,
        *,
        unterminated: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ):
        if isinstance(vocab, str):
            raise ValueError(
                f"vocab={vocab!r} is a string; pass a list of tokens, e.g. {list(vocab.split() or vocab)!r}"
            )
        try:
            vocab = tuple(vocab)
        except TypeError:
            raise ValueError(f"vocab={vocab!r} must be a list of token strings") from None
        if len(vocab) == 0:
            raise ValueError("vocab=() is empty; give at least one token")
        for tok in vocab:
            if not isinstance(tok, str) or tok == "" or any(c.isspace() for c in tok):
                raise ValueError(f"vocab token {tok!r} must be a non-empty string without spaces")
        vocab = tuple(str(t) for t in vocab)  # plain str, also for numpy string arrays
        if len(set(vocab)) != len(vocab):
            dup = sorted({t for t in vocab if vocab.count(t) > 1})
            raise ValueError(f"vocab has duplicate tokens {dup}; tokens must be distinct")
        length = _check_length(length, limit=False)  # the size check below speaks first for V ≥ 2
        if eos is not None:
            if not isinstance(eos, str) or eos == "" or any(c.isspace() for c in eos):
                raise ValueError(f"eos={eos!r} must be a non-empty string without spaces, or None")
            if eos in vocab:
                raise ValueError(f"eos={eos!r} is also a vocabulary token; EOS must lie outside vocab")
        if not isinstance(unterminated, (bool, np.bool_)):
            raise ValueError(f"unterminated={unterminated!r} must be True or False")
        if unterminated and eos is None:
            raise ValueError("unterminated=True needs an eos token (fixed-length spaces have no EOS)")
        if isinstance(max_bytes, (bool, np.bool_)) or not isinstance(max_bytes, (int, np.integer)) or max_bytes <= 0:
            raise ValueError(f"max_bytes={max_bytes!r} must be a positive integer")
        object.__setattr__(self, "vocab", vocab)
        object.__setattr__(self, "length", int(length))
        object.__setattr__(self, "eos", eos)
        object.__setattr__(self, "unterminated", bool(unterminated))
        object.__setattr__(self, "max_bytes", int(max_bytes))
        V, T = len(vocab), int(length)
        shape = f"V = {V}, T = {reprlib.repr(T)}{', EOS' if eos else ''}{', unterminated' if unterminated else ''}"
        if V >= 2 and T > 30 / math.log10(V):  # N > 10³⁰: far beyond memory, refused before forming N (int vs
            size = f"10^{T * math.log10(V):.0f}" if T < 10**15 else f"{V}^{reprlib.repr(T)}"  # float: exact)
            raise ValueError(
                f"the space has N ≈ {size} sequences ({shape}), over the limit "
                f"max_bytes = {max_bytes / 2**30:.1f} GiB; shrink the vocabulary or the length"
            )
        _check_length(T)  # V = 1: N = T is small, but the prefix tree would have T levels
        n = self.size_of(V, T, eos is not None, bool(unterminated))  # closed form: nothing allocated yet
        need = n * (_BYTES_PER_SEQUENCE + 4 * T)
        if need > max_bytes:
            raise ValueError(
                f"the space has N = {n:,} sequences ({shape}), about "
                f"{need / 2**30:.1f} GiB, over the limit max_bytes = {max_bytes / 2**30:.1f} GiB; "
                f"shrink the vocabulary or the length, or raise max_bytes if the memory is there"
            )
        # group sizes in canonical order (pure integers)
        groups = [V**T] if eos is None else [V**t for t in range(T)] + ([V**T] if unterminated else [])
        object.__setattr__(self, "_offsets", tuple(np.cumsum([0, *groups]).tolist()))

    # ------------------------------------------------------------------ basic facts
    @property
    def size(self) -> int:
        """N, the number of sequences."""
        return self._offsets[-1]

    def __len__(self) -> int:
        return self.size

    @property
    def n_vocab(self) -> int:
        """V, the number of vocabulary tokens (EOS excluded)."""
        return len(self.vocab)

    @property
    def eos_id(self) -> int | None:
        """The token id of EOS (= V), or None."""
        return None if self.eos is None else self.n_vocab

    @property
    def tokens_all(self) -> tuple[str, ...]:
        """Vocabulary followed by EOS (if any): the token of each id."""
        return self.vocab + (() if self.eos is None else (self.eos,))

    def __repr__(self) -> str:
        extra = "" if self.eos is None else f", eos={self.eos!r}"
        extra += ", unterminated=True" if self.unterminated else ""
        return f"SequenceSpace(vocab={list(self.vocab)!r}, length={self.length}{extra})  # N = {self.size:,}"

    def __eq__(self, other) -> bool:
        return isinstance(other, SequenceSpace) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self):
        return (self.vocab, self.length, self.eos, self.unterminated)

    def __getstate__(self):
        return {"vocab": self.vocab, "length": self.length, "eos": self.eos,
                "unterminated": self.unterminated, "max_bytes": self.max_bytes}

    def __setstate__(self, state):
        self.__init__(state["vocab"], state["length"], state["eos"],
                      unterminated=state["unterminated"], max_bytes=state["max_bytes"])

    # ------------------------------------------------------------------ prefix tree
    @cached_property
    def levels(self) -> tuple[Level, ...]:
        """The prefix tree, depth 0 … T − 1: depth t has V**t nodes (prefixes of t tokens)."""
        V, T = self.n_vocab, self.length
        if self.eos is None:
            return tuple(Level(t, V**t, V) for t in range(T))
        last = V + 1 if self.unterminated else 1
        return tuple(Level(t, V**t, V + 1 if t < T - 1 else last) for t in range(T))

    @property
    def n_logits(self) -> int:
        """Σ_t nodes_t · choices_t: one logit per (prefix, next token) pair with a choice."""
        return sum(lv.nodes * lv.choices for lv in self.levels if lv.choices > 1)

    def ends_at(self, depth: int) -> slice:
        """Slice of the canonical order holding the sequences that stop at ``depth``.

        With EOS, depth t < T holds the sequences of t tokens then EOS; depth T holds the
        fixed-length (or unterminated) leaves.
        """
        if isinstance(depth, (bool, np.bool_)) or not isinstance(depth, (int, np.integer)):
            raise ValueError(f"depth={depth!r} must be an integer in 0 … {self.length}")
        if self.eos is None:
            if depth != self.length:
                raise ValueError(f"depth={depth}: fixed-length sequences all end at depth {self.length}")
            return slice(0, self.size)
        if not 0 <= depth <= self.length or (depth == self.length and not self.unterminated):
            raise ValueError(f"depth={depth}: no sequence of this space stops there")
        return slice(self._offsets[depth], self._offsets[depth + 1])

    def sequence_log_probs(self, log_cond: Sequence[np.ndarray], log_norm: Sequence[np.ndarray] | None = None
                           ) -> np.ndarray:
        """log π(x) = Σ_t log π(x_t | x_<t), summed down the prefix tree.

        Args:
          log_cond: one array per level, (nodes_t, choices_t), the normalised log
            conditionals of each prefix (columns: vocabulary, then EOS).
          log_norm: optional, one (nodes_t,) array per level (None where only EOS is
            allowed): then log_cond holds unnormalised logits z and
            log π(v | u) = z[u, v] − log_norm[u] (log_norm = log Σ_v exp z[u, v]), so that
            the normalised (nodes_t, choices_t) tables never need to be formed.
        Returns:
          (N,) log-probabilities in canonical order.

        One pass per level, written straight into the output: with EOS, the group of
        sequences that stop at depth t is in one-to-one correspondence with the depth-t
        prefixes, so ``out[ends_at(t)]`` first holds log π(u) of each prefix u (read by the
        next level) and then receives log π(EOS | u).  A level whose only choice is EOS adds
        log 1 = 0 and is skipped.
        """
        V, T = self.n_vocab, self.length
        for name, arrays in (("log_cond", log_cond), ("log_norm", log_norm)):
            if arrays is not None and len(arrays) != T:
                raise ValueError(f"{name} has {len(arrays)} levels; expected {T}, one per depth of the prefix tree")
        norms = [None] * T if log_norm is None else log_norm
        out = np.empty(self.size)  # (N,)
        if self.eos is None:
            path = np.zeros(1)  # (nodes_t,) log-prob of reaching each depth-t prefix
            for lv, lc, norm in zip(self.levels, log_cond, norms):
                if norm is not None:
                    path = path - norm
                lc = 0.0 if lv.choices == 1 else lc  # V = 1: the only choice, log 1 = 0
                if lv.depth == T - 1:  # the last level: straight into the output
                    np.add(path[:, None], lc, out=out.reshape(-1, V))
                else:
                    path = (path[:, None] + lc).reshape(-1)  # (nodes_{t+1},)
            return out
        out[0] = 0.0  # the empty prefix
        for lv, lc, norm in zip(self.levels, log_cond, norms):
            if lv.choices == 1:
                continue
            path = out[self.ends_at(lv.depth)]  # (nodes_t,) log π(u), a view
            if norm is not None:
                path -= norm
            if lv.depth < T - 1 or self.unterminated:
                nxt = out[self.ends_at(lv.depth + 1)].reshape(lv.nodes, V)  # (nodes_t, V) view
                np.add(path[:, None], lc[:, :V], out=nxt)
            path += lc[:, V]  # then EOS
        return out

    def edge_masses(self, w: np.ndarray) -> list[tuple[np.ndarray | None, np.ndarray | None, np.ndarray]]:
        """The child masses of :meth:`child_mass` without assembling them, one level at a time.

        Returns per depth t a triple ``(to_vocab, to_eos, total)``: to_vocab (nodes_t, V) =
        C_t[u, v] for the vocabulary choices (None where only EOS is allowed), to_eos (nodes_t,)
        = C_t[u, EOS] (None without EOS), and total (nodes_t,) = C_t(u) = Σ_v C_t[u, v], the
        weight through u.  to_vocab and to_eos are read-only views of ``w`` or of the level
        below (no copies); each level costs one short-row sum, done as a matrix-vector product.
        """
        w = np.asarray(w, dtype=float)
        if w.shape != (self.size,):
            raise ValueError(f"w has shape {w.shape}; expected ({self.size},), one weight per sequence")
        w = w.view()
        w.flags.writeable = False  # the views handed out below must not write into the caller's w
        V, T, eos = self.n_vocab, self.length, self.eos is not None
        ones = np.ones(V)
        below = w if not eos else (w[self.ends_at(T)] if self.unterminated else None)
        out = [None] * T
        for lv in reversed(self.levels):
            to_vocab = None if below is None else below.reshape(lv.nodes, V)  # (nodes_t, V) view
            to_eos = w[self.ends_at(lv.depth)] if eos else None  # (nodes_t,) view
            if to_vocab is None:
                total = to_eos
            else:
                total = to_vocab @ ones  # (nodes_t,)
                if to_eos is not None:
                    total += to_eos
                total.flags.writeable = False
            out[lv.depth] = (to_vocab, to_eos, total)
            below = total
        return out

    def child_mass(self, w: np.ndarray) -> list[np.ndarray]:
        """C_t[u, v] = Σ_{x passes through u then v} w(x): the weight below each tree edge.

        The backward pass of :meth:`sequence_log_probs`: for any weights w (N,), the
        gradient of Σ_x w(x) log π(x) with respect to the log-conditional of choice v at
        prefix u is C_t[u, v]. Returns one (nodes_t, choices_t) array per level (fresh
        arrays; :meth:`edge_masses` gives the same without copies).
        """
        try:
            w = np.asarray(w, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"w={reprlib.repr(w)} must be real numbers, one weight per sequence") from None
        if w.shape == (self.size,) and not np.isfinite(w).all():
            bad = int(np.flatnonzero(~np.isfinite(w))[0])
            raise ValueError(f"w[{bad}] = {w[bad]} is not finite; allowed: finite weights, one per sequence")
        V = self.n_vocab
        masses = []
        for lv, (to_vocab, to_eos, _) in zip(self.levels, self.edge_masses(w)):
            c = np.empty((lv.nodes, lv.choices))
            if to_vocab is not None:
                c[:, :V] = to_vocab
            if to_eos is not None:
                c[:, -1] = to_eos
            masses.append(c)
        return masses

    def prefix_tokens(self, depth: int) -> np.ndarray:
        """(V**depth, depth) int32: the vocabulary tokens of each depth-``depth`` prefix."""
        if isinstance(depth, (bool, np.bool_)) or not isinstance(depth, (int, np.integer)) \
                or not 0 <= depth <= self.length:
            raise ValueError(f"depth={depth!r} is out of range; allowed: 0 … {self.length}")
        V = self.n_vocab
        n = V**depth
        idx = np.arange(n, dtype=np.int64)
        out = np.empty((n, depth), dtype=np.int32)
        for j in range(depth):  # a loop over positions, not sequences
            out[:, j] = (idx // V ** (depth - 1 - j)) % V
        return out

    # ------------------------------------------------------------------ sequences
    @cached_property
    def tokens(self) -> np.ndarray:
        """(N, T) int32 token ids in canonical order; EOS = V; −1 pads after EOS."""
        T = self.length
        if self.eos is None:
            out = self.prefix_tokens(T)
        else:
            out = np.full((self.size, T), -1, dtype=np.int32)
            for t in range(T + (1 if self.unterminated else 0)):
                s = self.ends_at(t)
                out[s, :t] = self.prefix_tokens(t)
                if t < T:
                    out[s, t] = self.eos_id
        out.setflags(write=False)
        return out

    @cached_property
    def lengths(self) -> np.ndarray:
        """(N,) number of tokens of each sequence, EOS included."""
        out = np.full(self.size, self.length, dtype=np.int32)
        if self.eos is not None:
            for t in range(self.length):
                out[self.ends_at(t)] = t + 1
        out.setflags(write=False)
        return out

    def decode(self, i: int) -> str:
        """The text of sequence ``i``: its tokens joined by spaces (EOS included)."""
        i = self._check_index(i)
        row = self.tokens[i]
        words = self.tokens_all
        return " ".join(words[k] for k in row if k >= 0)

    def decode_all(self) -> list[str]:
        """Texts of all N sequences, in canonical order."""
        return [self.decode(i) for i in range(self.size)]

    def index(self, text: str | Sequence[str]) -> int:
        """The canonical index of a sequence given as text ("a b </s>") or a token list."""
        if isinstance(text, str):
            toks = text.split()
        elif isinstance(text, (list, tuple, np.ndarray)) and np.ndim(text) == 1 and all(isinstance(t, str) for t in text):
            toks = [str(t) for t in text]
        else:
            raise ValueError(f"text={text!r} must be a string like 'a b c' or a list of token strings")
        ids = {t: k for k, t in enumerate(self.tokens_all)}
        unknown = [t for t in toks if t not in ids]
        if unknown:
            raise ValueError(f"text={text!r} has tokens {unknown} outside this space's vocabulary {list(self.tokens_all)}")
        seq = [ids[t] for t in toks]
        V = self.n_vocab
        body, ended = (seq[:-1], True) if (self.eos is not None and seq and seq[-1] == V) else (seq, False)
        if V in body or (self.eos is None and len(seq) != self.length):
            raise ValueError(f"text={text!r} is not a sequence of this space ({self._shape_text()})")
        if self.eos is not None and not ended and not (self.unterminated and len(seq) == self.length):
            raise ValueError(f"text={text!r} does not end with {self.eos!r} ({self._shape_text()})")
        if len(body) > self.length - (1 if ended else 0):
            raise ValueError(f"text={text!r} is longer than this space allows ({self._shape_text()})")
        rank = 0
        for k in body:
            rank = rank * V + k
        start = 0 if self.eos is None else self._offsets[len(body)]
        return start + rank

    def index_of(self, tokens: np.ndarray) -> np.ndarray:
        """(n,) canonical indices of token rows (n, T) (EOS = V, −1 after it), arithmetically:
        start(L) + the base-V rank of the L vocabulary tokens — without building ``tokens``."""
        V = self.n_vocab
        is_tok = (tokens >= 0) & (tokens < V)  # (n, T) vocabulary positions
        rank = np.zeros(tokens.shape[0], dtype=np.int64)
        for t in range(self.length):
            rank = np.where(is_tok[:, t], rank * V + tokens[:, t], rank)
        if self.eos is None:
            return rank
        return self._starts()[is_tok.sum(axis=1)] + rank

    def tokens_of(self, idx: np.ndarray) -> np.ndarray:
        """(n, T) token rows of canonical indices (n,) — EOS = V, −1 after it — the inverse of
        :meth:`index_of`, without building ``tokens``."""
        V, T = self.n_vocab, self.length
        idx = np.asarray(idx, dtype=np.int64)
        starts = self._starts()
        L = np.full(idx.shape, T) if self.eos is None else np.searchsorted(starts, idx, side="right") - 1
        rank = idx - (0 if self.eos is None else starts[L])  # (n,) rank among sequences of L tokens
        out = np.empty((idx.size, T), dtype=np.int64)
        for j in range(T):  # a loop over positions, vectorised over sequences
            digit = (rank // np.power(V, np.maximum(L - 1 - j, 0))) % V
            out[:, j] = np.where(j < L, digit, np.where(j == L, V, -1))
        return out

    def _starts(self) -> np.ndarray:
        """Canonical index of the first sequence with L vocabulary tokens, for each allowed L."""
        if self.eos is None:
            return np.zeros(1, dtype=np.int64)
        last = self.length + (1 if self.unterminated else 0)
        return np.array([self.ends_at(d).start for d in range(last)], dtype=np.int64)

    def _shape_text(self) -> str:
        if self.eos is None:
            return f"exactly {self.length} tokens"
        tail = f", or {self.length} tokens without it" if self.unterminated else ""
        return f"up to {self.length - 1} tokens then {self.eos!r}{tail}"

    def _check_index(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.size:
            raise ValueError(f"i={i!r}: index {i!r} is outside the space; allowed 0 … {self.size - 1}")
        return int(i)

    @staticmethod
    def size_of(n_vocab: int, length: int, eos: bool = False, unterminated: bool = False) -> int:
        """N for a space of this shape, without building it (for forms and guards).

        With EOS, Σ_{t<T} V^t = (V^T − 1)/(V − 1) in closed form (T for V = 1).
        """
        if isinstance(n_vocab, (bool, np.bool_)) or not isinstance(n_vocab, (int, np.integer)) or n_vocab < 1:
            raise ValueError(f"n_vocab={reprlib.repr(n_vocab)} must be an integer ≥ 1")
        V, T = int(n_vocab), _check_length(length)
        if T * math.log10(V) > 100_000:  # checked before forming V**T: a 10⁵-digit integer is the limit
            raise ValueError(f"n_vocab={reprlib.repr(n_vocab)} and length={length!r} give N ≈ 10^{T * math.log10(V):.3g} "
                             "sequences, too many to count; allowed: V^T below 10^100000")
        if not eos:
            return V**T
        return ((V**T - 1) // (V - 1) if V > 1 else T) + (V**T if unterminated else 0)

