"""The autoregressive policy: one softmax per prefix, πθ(x) = Π_t πθ(x_t | x_<t)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .._util import check_space, BLOCK, check_log_probs, softmax_rows
from ..space import SequenceSpace
from .base import Policy, gaussian_init

__all__ = ["AutoregressivePolicy"]


class AutoregressivePolicy(Policy):
    """πθ(x) = Π_t softmax(θ_{x<t})[x_t]: a free softmax at every prefix of the tree.

    The family holds every distribution over the space (any π factorises into its
    conditionals), so training it against a target is well-specified.  θ concatenates, per
    depth t with a real choice, the (nodes_t, choices_t) logits in row-major order; the
    last depth of an EOS space (only EOS allowed) has no parameters.

    Args:
      space: the sequence space.
      seed: seeds the initial logits θ ∼ N(0, init_scale²).
      init_scale: standard deviation of the initial logits (0 gives uniform conditionals).
      params: explicit θ (P,), overriding seed and init_scale.
    """

    def __init__(self, space: SequenceSpace, seed: int = 0, *, init_scale: float = 0.1, params=None):
        check_space(space)
        if params is None:
            params = gaussian_init(space.n_logits, seed, init_scale)
        super().__init__(space, params, self.n_params_for(space))

    @classmethod
    def n_params_for(cls, space: SequenceSpace) -> int:
        return space.n_logits

    @classmethod
    def from_log_probs(cls, space: SequenceSpace, log_pi: np.ndarray) -> "AutoregressivePolicy":
        """The autoregressive policy with πθ = π exactly: θ_u = log π(· | u), the conditionals.

        log π(v | u) = log M(u v) − log M(u), with M(u) the mass of the sequences below
        prefix u, summed up the tree in log space.  π must have full support.
        """
        log_pi = check_log_probs(log_pi, check_space(space).size, "log_pi")
        if np.isneginf(log_pi).any():
            raise ValueError("log_pi has zero-probability sequences; a softmax policy needs full support")
        V = space.n_vocab
        below = log_pi if space.eos is None else (log_pi[space.ends_at(space.length)] if space.unterminated else None)
        blocks = []
        for lv in reversed(space.levels):
            c = np.empty((lv.nodes, lv.choices))  # log-mass below each edge
            if lv.choices > 1:
                c[:, :V] = below.reshape(lv.nodes, V)
            if space.eos is not None:
                c[:, -1] = log_pi[space.ends_at(lv.depth)]
            below = logsumexp(c, axis=1)
            if lv.choices > 1:
                blocks.append((c - below[:, None]).reshape(-1))
        return cls(space, params=np.concatenate(blocks[::-1]) if blocks else np.zeros(0))  # 1 sequence: no logits

    def with_params(self, theta: np.ndarray) -> "AutoregressivePolicy":
        return AutoregressivePolicy(self.space, params=self._required(theta))

    def logits(self) -> list[np.ndarray]:
        """θ split per depth: one (nodes_t, choices_t) array (None where only EOS is allowed)."""
        out, start = [], 0
        for lv in self.space.levels:
            if lv.choices == 1:
                out.append(None)
                continue
            size = lv.nodes * lv.choices
            out.append(self._theta[start : start + size].reshape(lv.nodes, lv.choices))
            start += size
        return out

    def _softmax(self) -> tuple[np.ndarray, np.ndarray]:
        """(log_z, πθ(v | u)) for every prefix at once: (R,) and (R, K), rows in θ order.

        Every depth with a real choice has the same K choices (V, or V + 1 with EOS), so θ is
        one (R, K) matrix, R = Σ_t nodes_t, and one row-wise softmax serves the whole tree:
        log_z[u] = log Σ_v exp θ_{u,v}, so log πθ(v | u) = θ_{u,v} − log_z[u].  Cached: the
        policy is immutable.
        """
        if "softmax" not in self._cache:
            log_z, pi = softmax_rows(self._rows())  # (R,), (R, K)
            log_z.setflags(write=False)
            pi.setflags(write=False)
            self._cache["softmax"] = (log_z, pi)
        return self._cache["softmax"]

    def _rows(self) -> np.ndarray:
        """θ as one (R, K) matrix: the logits of every prefix with a choice, in θ order."""
        K = next((lv.choices for lv in self.space.levels if lv.choices > 1), 1)
        return self._theta.reshape(-1, K)

    def _per_level(self, rows: np.ndarray) -> list[np.ndarray | None]:
        """Split (R, K) rows in θ order into one (nodes_t, K) view per depth (None: EOS only)."""
        out, start = [], 0
        for lv in self.space.levels:
            out.append(None if lv.choices == 1 else rows[start : start + lv.nodes])
            start += 0 if lv.choices == 1 else lv.nodes
        return out

    def log_conditionals(self) -> list[np.ndarray]:
        """log πθ(v | u) per depth: (nodes_t, choices_t), each row normalised."""
        if "log_cond" not in self._cache:
            lc = self._rows() - self._softmax()[0][:, None]  # (R, K)
            lc.setflags(write=False)
            self._cache["log_cond"] = [np.zeros((lv.nodes, 1)) if z is None else z
                                       for lv, z in zip(self.space.levels, self._per_level(lc))]
        return self._cache["log_cond"]

    def _log_probs(self) -> np.ndarray:
        # log π(x) = Σ_t θ_t[x_<t, x_t] − log_z_t[x_<t]: the normalised tables are never formed
        return self.space.sequence_log_probs(self._per_level(self._rows()), self._per_level(self._softmax()[0]))

    def grad_log_prob_weighted(self, w: np.ndarray) -> np.ndarray:
        """Σ_x w(x) ∇θ log πθ(x); per prefix u: ∂/∂θ_{u,v} = C(u, v) − C(u) πθ(v | u).

        C(u, v) is the weight of the sequences below edge u → v and C(u) = Σ_v C(u, v)
        (:meth:`SequenceSpace.edge_masses`): the softmax gradient, summed down the tree, O(N).
        Written level by level into one (P,) buffer: −C(u) πθ(v | u) first, then C(u, v) added.
        """
        w = self._check_w(w)
        V = self.space.n_vocab
        g = np.empty(self.n_params)
        g_rows = g.reshape(self._rows().shape)  # (R, K) view, θ order
        pi = self._per_level(self._softmax()[1])
        for lv, (to_vocab, to_eos, total), pi_t, g_t in zip(
                self.space.levels, self.space.edge_masses(w), pi, self._per_level(g_rows)):
            if g_t is None:
                continue
            step = max(1, BLOCK // g_t.shape[1])
            for s in range(0, lv.nodes, step):  # cache-sized blocks of prefixes
                b = slice(s, s + step)
                np.multiply(pi_t[b], -total[b, None], out=g_t[b])  # (nodes, K) −C(u) π(v | u)
                g_t[b, :V] += to_vocab[b]  # … + C(u, v)
                if to_eos is not None:
                    g_t[b, V] += to_eos[b]
        return g

    def grad_log_cond_weighted(self, masses) -> np.ndarray:
        """Σ_t Σ_{u,v} W_t[u, v] ∇θ log πθ(v | u); one (nodes_t, choices_t) array W_t per depth → (P,).

        The per-token gradient: ∂/∂θ_{u,v'} = W[u, v'] − (Σ_v W[u, v]) πθ(v' | u).  With
        W = :meth:`SequenceSpace.child_mass` of w it equals :meth:`grad_log_prob_weighted` (w);
        token-level losses (per-token KL estimates, per-token ratios) give other W.
        """
        levels = self.space.levels
        if not isinstance(masses, (list, tuple)) or len(masses) != len(levels):
            raise ValueError(f"masses must be a list of {len(levels)} arrays, one (nodes_t, choices_t) per depth")
        g = np.empty(self.n_params)
        g_rows = g.reshape(self._rows().shape)  # (R, K) view, θ order
        for lv, W, pi_t, g_t in zip(levels, masses, self._per_level(self._softmax()[1]), self._per_level(g_rows)):
            W = np.asarray(W, dtype=float)
            if W.shape != (lv.nodes, lv.choices):
                raise ValueError(f"masses[{lv.depth}] has shape {W.shape}; expected {(lv.nodes, lv.choices)}")
            if g_t is None:
                continue
            np.multiply(pi_t, -W.sum(axis=1, keepdims=True), out=g_t)  # −W(u) π(v | u)
            g_t += W
        return g
