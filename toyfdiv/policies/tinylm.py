"""TinyLM: a numpy GRU language model with manual backpropagation, exact over the prefix tree.

    πθ(x) = Π_t softmax(W_o h_t + b_o)[x_t],   h_{t+1} = GRU(h_t, e(x_t)),   h_0 learned.

Two evaluation paths share one GRU cell and its hand-written backward:

- over the prefix tree (:meth:`TinyLM.log_probs`, :meth:`TinyLM.grad_log_prob_weighted`):
  each prefix u is evaluated once, its children u·v are one GRU step from u's state, so an
  exact pass over all N sequences costs one cell per tree node;
- over given sequences (:meth:`TinyLM.sample`, :meth:`TinyLM.log_prob_at`,
  :meth:`TinyLM.grad_log_prob_at`): one cell per position, vectorised over the n sequences,
  O(n·T) and independent of N — what makes sampled training scale without enumeration.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from .._util import (sample_index, check_instance, check_int, check_log_probs, check_positive_float, check_rng, check_sample_size,
                     check_space, log_softmax_rows, softmax_rows)
from ..space import SequenceSpace
from ..loop import optimise
from .base import Policy

__all__ = ["TinyLMConfig", "TinyLM", "FIT_STEPS", "FIT_LR"]

#: The defaults of TinyLM pretraining (:meth:`TinyLM.fit`), used everywhere a TinyLM is fitted.
FIT_STEPS = 400
FIT_LR = 0.03


#: Initial weights of scale s give pre-activations ~ s², so s ≤ 1e100 keeps every product finite.
MAX_INIT_SCALE = 1e100
#: Any parameter: |θ| ≤ 1e150 keeps the products of two weights (E W_x, the logits) below 1e300.
MAX_PARAM = 1e150


@dataclass(frozen=True)
class TinyLMConfig:
    """Sizes and initialisation of a :class:`TinyLM`; every field is validated."""

    n_embd: int = 4  # D: size of the token embedding e(v) fed to the GRU
    n_hidden: int = 8  # H: size of the GRU state h_t, the capacity knob (the context is the whole prefix)
    init_scale: float = 1.0  # weights ∼ N(0, init_scale²/fan_in), embeddings ∼ N(0, init_scale²); biases, h_0 = 0
    seed: int = 0  # seeds the initial weights

    def __post_init__(self):
        check_int(self.n_embd, "TinyLMConfig.n_embd")
        check_int(self.n_hidden, "TinyLMConfig.n_hidden")
        if check_positive_float(self.init_scale, "TinyLMConfig.init_scale") > MAX_INIT_SCALE:
            raise ValueError(f"TinyLMConfig.init_scale={self.init_scale!r} is out of range; allowed: 0 < init_scale "
                             f"≤ {MAX_INIT_SCALE:g} (larger weights overflow float64 inside the GRU)")
        check_int(self.seed, "TinyLMConfig.seed", low=0)


def _layout(space: SequenceSpace, config: TinyLMConfig) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Names and shapes of the parameter blocks, in the order they sit in θ."""
    V, D, H = space.n_vocab, config.n_embd, config.n_hidden
    K = V + (space.eos is not None)  # head outputs: vocabulary, then EOS
    return (("E", (V, D)), ("Wx", (D, 3 * H)), ("bx", (3 * H,)), ("Wh", (H, 3 * H)),
            ("bhn", (H,)), ("h0", (H,)), ("Wo", (H, K)), ("bo", (K,)))


def _unpack(theta: np.ndarray, layout) -> dict[str, np.ndarray]:
    """Views of θ, one per block (writing into a view writes into θ)."""
    out, start = {}, 0
    for name, shape in layout:
        size = int(np.prod(shape))
        out[name] = theta[start : start + size].reshape(shape)
        start += size
    return out


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """σ(a) = 1 / (1 + e^{−a}), in place on the fresh array ``a`` (relative error ~1 ulp for every a)."""
    np.negative(a, out=a)
    with np.errstate(over="ignore"):  # e^{−a} = inf for a < −709 gives σ = 0, the right limit
        np.exp(a, out=a)
    a += 1.0
    return np.reciprocal(a, out=a)


def _gru_forward(h, gx, gh, bhn):
    """h' = (1 − z) ⊙ n + z ⊙ h,  r, z = σ(gx_{r,z} + gh_{r,z}),  n = tanh(gx_n + r ⊙ (gh_n + b_hn)).

    gx = e W_x + b_x and gh = h W_h are (…, 3H) pre-activations in gate order (r, z, n);
    h, gx, gh broadcast (tree: parents (nodes, 1, ·) against tokens (1, V, ·)).  Each line
    allocates its result once and works in place after that.
    """
    H = h.shape[-1]
    r = _sigmoid(gx[..., :H] + gh[..., :H])  # (…, H) reset gate
    z = _sigmoid(gx[..., H : 2 * H] + gh[..., H : 2 * H])  # (…, H) update gate
    hn = gh[..., 2 * H :] + bhn  # (…, H) W_hn h + b_hn
    n = r * hn
    n += gx[..., 2 * H :]
    np.tanh(n, out=n)  # (…, H) candidate state tanh(gx_n + r ⊙ hn)
    h_new = h - n
    h_new *= z
    h_new += n  # (…, H) = (1 − z) n + z h
    return h_new, (h, r, z, hn, n)


def _gru_backward(dh_new, cache):
    """The backward of :func:`_gru_forward`: dL/dh' → (dL/dgx, dL/dgh, dL/dh), at broadcast shape.

    Read bottom-up against the forward: each block differentiates the forward line quoted above it.
    """
    h, r, z, hn, n = cache
    # h_new = n + z ⊙ (h − n)
    dn = dh_new * (1 - z)
    dz = dh_new * (h - n)
    dh = dh_new * z
    # n = tanh(gx_n + r ⊙ hn)
    da_n = dn * (1 - n * n)
    dr = da_n * hn
    # hn = gh_n + b_hn
    dhn = da_n * r
    # z = σ(gx_z + gh_z)
    da_z = dz * z * (1 - z)
    # r = σ(gx_r + gh_r)
    da_r = dr * r * (1 - r)
    dgx = np.concatenate([da_r, da_z, da_n], axis=-1)  # (…, 3H)
    dgh = np.concatenate([da_r, da_z, dhn], axis=-1)  # (…, 3H); its n-part is also dL/db_hn
    return dgx, dgh, dh


def _gru_backward_tree(dh_new, cache):
    """:func:`_gru_backward` over the tree, summed as it goes: dL/dh' (nodes, V, H) of the children →

    dX (V, 3H) = Σ_parents dL/dgx,  dgh (nodes, 3H) = Σ_children dL/dgh,  dh (nodes, H) = Σ_children dL/dh.

    The same lines as :func:`_gru_backward`, but no (nodes, V, 3H) array is formed: each gate's
    gradient is reduced over parents (for X) and over children (for the parent) with einsum,
    and the child-sized work is done in two scratch buffers.
    """
    h, r, z, hn, n = cache  # h, hn: (nodes, 1, H); r, z, n: (nodes, V, H)
    H = h.shape[-1]
    dX = np.empty((dh_new.shape[1], 3 * H))
    dgh = np.empty((dh_new.shape[0], 3 * H))
    # h_new = n + z ⊙ (h − n)
    dh = np.einsum("pvh,pvh->ph", dh_new, z)  # Σ_v dh_new ⊙ z
    a = dh_new * z
    np.subtract(dh_new, a, out=a)  # dn = dh_new ⊙ (1 − z)
    b = np.subtract(h, n)
    b *= dh_new  # dz = dh_new ⊙ (h − n)
    # z = σ(gx_z + gh_z)
    dh_new = z * z
    np.subtract(z, dh_new, out=dh_new)
    b *= dh_new  # da_z = dz ⊙ z (1 − z)
    np.einsum("pvh->vh", b, out=dX[:, H : 2 * H])
    np.einsum("pvh->ph", b, out=dgh[:, H : 2 * H])
    # n = tanh(gx_n + r ⊙ hn)
    np.multiply(n, n, out=b)
    np.subtract(1.0, b, out=b)
    a *= b  # da_n = dn ⊙ (1 − n²)
    np.einsum("pvh->vh", a, out=dX[:, 2 * H :])
    # hn = gh_n + b_hn
    np.einsum("pvh,pvh->ph", a, r, out=dgh[:, 2 * H :])  # Σ_v da_n ⊙ r
    a *= hn  # dr = da_n ⊙ hn
    # r = σ(gx_r + gh_r)
    np.multiply(r, r, out=b)
    np.subtract(r, b, out=b)
    a *= b  # da_r = dr ⊙ r (1 − r)
    np.einsum("pvh->vh", a, out=dX[:, :H])
    np.einsum("pvh->ph", a, out=dgh[:, :H])
    return dX, dgh, dh


def index_of(space: SequenceSpace, tokens: np.ndarray) -> np.ndarray:
    """Deprecated: :meth:`SequenceSpace.index_of`."""
    warnings.warn("toyfdiv.policies.tinylm.index_of is deprecated; use space.index_of(tokens)",
                  DeprecationWarning, stacklevel=2)
    return space.index_of(tokens)


def tokens_of(space: SequenceSpace, idx: np.ndarray) -> np.ndarray:
    """Deprecated: :meth:`SequenceSpace.tokens_of`."""
    warnings.warn("toyfdiv.policies.tinylm.tokens_of is deprecated; use space.tokens_of(idx)",
                  DeprecationWarning, stacklevel=2)
    return space.tokens_of(idx)


def _check_scale(theta: np.ndarray, name: str) -> None:
    """Refuse |θ| > MAX_PARAM (products of two weights, E W_x, must stay finite), naming ``name``."""
    if theta.dtype.kind not in "fiu" or theta.size == 0:
        return  # the shape and type checks of Policy speak
    a = np.abs(theta.astype(float))
    big = float(np.max(np.where(np.isfinite(a), a, 0.0)))  # NaN and inf: Policy names them
    if big > MAX_PARAM:
        raise ValueError(f"{name} has |θ| up to {big:.3g}; allowed: |θ| ≤ {MAX_PARAM:g} for TinyLM (larger weights "
                         "overflow float64 inside the GRU) — lower the learning rate or the init_scale")


class TinyLM(Policy):
    """πθ(x) = Π_t softmax(W_o h_t + b_o)[x_t], h_{t+1} = GRU(h_t, e(x_t)): a tiny neural LM.

    Why a GRU rather than an MLP over a fixed context window: the recurrence *is* the
    prefix tree — a child's state is one cell step from its parent's — so the exact pass
    over the space evaluates each prefix once and shares the parent's projection h W_h
    with all V children; and the state sees the whole prefix, so the only capacity limit
    is the hidden size H, a smooth knob, not a hard context cut (that limit is
    :class:`~toyfdiv.policies.NgramPolicy`'s).  With the default config the model has far
    fewer parameters than the autoregressive table, so it cannot represent every target:
    each divergence shows which compromise it picks.

    The head has V outputs (+1 for EOS when the space has one); where only EOS is allowed
    (last depth of an EOS space without ``unterminated``) no softmax is taken.

    θ concatenates E (V, D), W_x (D, 3H), b_x (3H), W_h (H, 3H), b_hn (H), h_0 (H),
    W_o (H, K), b_o (K), each row-major; gates in the order (r, z, n).

    Args:
      space: the sequence space.
      config: a :class:`TinyLMConfig` (default: D = 4, H = 8).
      params: explicit θ (P,), overriding the initialisation.
      seed: overrides ``config.seed``.
    """

    def __init__(self, space: SequenceSpace, config: TinyLMConfig | None = None, *, params=None,
                 seed: int | None = None):
        config = TinyLMConfig() if config is None else config
        check_instance(config, TinyLMConfig, "config")
        if seed is not None:
            config = dataclasses.replace(config, seed=seed)  # validated again
        check_space(space)
        self._config = config
        self._layout = _layout(space, config)
        H, P = config.n_hidden, sum(int(np.prod(shape)) for _, shape in self._layout)
        need = 8 * (4 * P + 8 * space.size * H)  # θ, gradient, Adam's moments; per-node GRU caches (N, H)
        if need > space.max_bytes:
            raise ValueError(
                f"config has n_embd={config.n_embd}, n_hidden={H}: P = {P:,} parameters and GRU caches of "
                f"about {need / 2**30:.1f} GiB on this space, over the limit max_bytes = "
                f"{space.max_bytes / 2**30:.1f} GiB; use a smaller n_hidden or n_embd")
        if params is None:
            params = self._init_params(space, config)
        super().__init__(space, params, self.n_params_for(space, config))
        _check_scale(self._theta, "params")
        self._p = _unpack(self._theta, self._layout)
        self._last = max((lv.depth for lv in space.levels if lv.choices > 1), default=-1)

    @classmethod
    def n_params_for(cls, space: SequenceSpace, config: TinyLMConfig | None = None) -> int:
        return sum(int(np.prod(s)) for _, s in _layout(space, config or TinyLMConfig()))

    def _init_params(self, space, config) -> np.ndarray:
        rng = np.random.default_rng(config.seed)
        theta = np.zeros(self.n_params_for(space, config))
        p = _unpack(theta, self._layout)
        for name, fan_in in (("E", 1), ("Wx", config.n_embd), ("Wh", config.n_hidden), ("Wo", config.n_hidden)):
            p[name][...] = config.init_scale / np.sqrt(fan_in) * rng.standard_normal(p[name].shape)
        return theta

    @property
    def config(self) -> TinyLMConfig:
        return self._config

    def with_params(self, theta: np.ndarray) -> "TinyLM":
        theta = self._required(theta)
        _check_scale(np.asarray(theta), "theta")  # named as the caller passed it
        return TinyLM(self.space, self._config, params=theta)

    def _inputs(self) -> np.ndarray:
        """X = E W_x + b_x: (V, 3H) input projection of each token, shared by every edge and position."""
        return self._p["E"] @ self._p["Wx"] + self._p["bx"]

    def _inputs_backward(self, d: dict, dX: np.ndarray) -> None:
        """Accumulate into the gradients ``d`` the backward of X = E W_x + b_x, given dX (V, 3H)."""
        d["Wx"] += self._p["E"].T @ dX
        d["E"] += dX @ self._p["Wx"].T
        d["bx"] += dX.sum(axis=0)

    # ------------------------------------------------------------------ over the prefix tree
    def _tree(self) -> dict:
        """Forward over the prefix tree: states (nodes_t, H), cell caches, head logits, log_z and π per depth."""
        if "tree" not in self._cache:
            p, H = self._p, self._config.n_hidden
            X = self._inputs()  # (V, 3H)
            h = p["h0"][None, :]  # (1, H) the root's state
            hs, cells, logits, log_z, pi = [], [], [], [], []
            for lv in self.space.levels:
                hs.append(h)
                if lv.choices > 1:
                    logits.append(h @ p["Wo"] + p["bo"])  # (nodes_t, K)
                    lz, pt = softmax_rows(logits[-1])  # (nodes_t,), (nodes_t, K)
                    log_z.append(lz)
                    pi.append(pt)
                else:
                    logits.append(np.zeros((lv.nodes, 1)))
                    log_z.append(None)
                    pi.append(None)
                if lv.depth < self._last:
                    gh = (h @ p["Wh"])[:, None, :]  # (nodes_t, 1, 3H) once per parent, shared by V children
                    h, cache = _gru_forward(h[:, None, :], X[None], gh, p["bhn"])  # (nodes_t, V, H)
                    h = h.reshape(-1, H)  # (nodes_{t+1}, H) child u·v at row u·V + v, canonical order
                    cells.append(cache)
            self._cache["tree"] = dict(hs=hs, cells=cells, logits=logits, log_z=log_z, pi=pi)
        return self._cache["tree"]

    def log_conditionals(self) -> list[np.ndarray]:
        """log πθ(v | u) per depth: (nodes_t, choices_t), each row normalised."""
        if "log_cond" not in self._cache:
            tree = self._tree()
            self._cache["log_cond"] = [z if lz is None else z - lz[:, None]
                                       for z, lz in zip(tree["logits"], tree["log_z"])]
        return self._cache["log_cond"]

    def _log_probs(self) -> np.ndarray:
        tree = self._tree()  # log π(v | u) = logit − log_z, summed down the tree without forming it
        return self.space.sequence_log_probs(tree["logits"], tree["log_z"])

    def grad_log_prob_weighted(self, w: np.ndarray) -> np.ndarray:
        """Σ_x w(x) ∇θ log πθ(x), exact: ∂/∂logit_{u,v} = C(u, v) − C(u) πθ(v | u), then backprop.

        C are the child masses of w (:meth:`SequenceSpace.edge_masses`); the logit gradients
        flow back through the head and the GRU, depth by depth, children's state gradients
        summed into their parent.  O(N·H²).
        """
        w = self._check_w(w)
        return self._backward_edges(self.space.edge_masses(w))

    def grad_log_cond_weighted(self, masses) -> np.ndarray:
        """Σ_t Σ_{u,v} W_t[u, v] ∇θ log πθ(v | u); one (nodes_t, choices_t) array W_t per depth → (P,).

        The per-token gradient (token-level losses); with W = child_mass(w) it equals
        :meth:`grad_log_prob_weighted` (w).
        """
        levels, V = self.space.levels, self.space.n_vocab
        if not isinstance(masses, (list, tuple)) or len(masses) != len(levels):
            raise ValueError(f"masses must be a list of {len(levels)} arrays, one (nodes_t, choices_t) per depth")
        edges = []
        for lv, W in zip(levels, masses):
            W = np.asarray(W, dtype=float)
            if W.shape != (lv.nodes, lv.choices):
                raise ValueError(f"masses[{lv.depth}] has shape {W.shape}; expected {(lv.nodes, lv.choices)}")
            eos = self.space.eos is not None
            edges.append((W[:, :V] if lv.choices > 1 else None, W[:, -1] if eos else None, W.sum(axis=1)))
        return self._backward_edges(edges)

    def _backward_edges(self, edges) -> np.ndarray:
        """Backprop of Σ C(u, v) log πθ(v | u) given per-depth (to_vocab, to_eos, total) edge weights."""
        tree, p = self._tree(), self._p
        V, H = self.space.n_vocab, self._config.n_hidden
        g = np.zeros(self.n_params)
        d = _unpack(g, self._layout)  # views into g
        dX = np.zeros((V, 3 * H))
        carry = None  # dL/dh_t from the children
        for lv, (to_vocab, to_eos, total) in reversed(list(zip(self.space.levels, edges))):
            t, h = lv.depth, tree["hs"][lv.depth]
            if t > self._last:
                continue
            # log π(· | u) = log_softmax(h_t W_o + b_o)
            dlogits = np.multiply(tree["pi"][t], -total[:, None])  # (nodes_t, K) −C(u) π(v | u)
            dlogits[:, :V] += to_vocab
            if to_eos is not None:
                dlogits[:, V] += to_eos  # … + C(u, v)
            d["Wo"] += h.T @ dlogits
            d["bo"] += np.ones(len(dlogits)) @ dlogits
            dh = dlogits @ p["Wo"].T
            if carry is not None:
                dh += carry
            if t == 0:
                # h_0 = h0
                d["h0"] += dh[0]
                break
            # h_t = GRU(h_{t−1}, X[v]), children of each parent in consecutive rows
            dX_t, dgh, dh_parent = _gru_backward_tree(dh.reshape(-1, V, H), tree["cells"][t - 1])
            dX += dX_t  # (V, 3H)
            d["bhn"] += dgh[:, 2 * H :].sum(axis=0)
            # gh = h_{t−1} W_h
            d["Wh"] += tree["hs"][t - 1].T @ dgh
            carry = dh_parent + dgh @ p["Wh"].T
        self._inputs_backward(d, dX)  # X = E W_x + b_x
        return g

    # ------------------------------------------------------------------ over given sequences
    def _forward_tokens(self, tokens: np.ndarray):
        """log πθ(x_i) for token rows (n, T), one cell per position; returns (lp (n,), cache)."""
        p, V = self._p, self.space.n_vocab
        n, X = tokens.shape[0], self._inputs()  # X: (V, 3H)
        h = np.broadcast_to(p["h0"], (n, self._config.n_hidden))
        lp = np.zeros(n)
        hs, cells, pis = [], [], []
        for lv in self.space.levels[: self._last + 1]:
            x = tokens[:, lv.depth]  # (n,) token at this position; −1 after EOS
            hs.append(h)
            pis.append(None)
            if lv.choices > 1:
                lc = log_softmax_rows(h @ p["Wo"] + p["bo"])  # (n, K)
                lp += np.where(x >= 0, np.take_along_axis(lc, np.maximum(x, 0)[:, None], 1)[:, 0], 0.0)
                pis[-1] = np.exp(lc)
            if lv.depth < self._last:
                v = np.clip(x, 0, V - 1)  # ended rows step on with token 0; their gradients are masked
                h, cache = _gru_forward(h, X[v], h @ p["Wh"], p["bhn"])  # (n, H)
                cells.append((v, cache))
        return lp, dict(hs=hs, cells=cells, pis=pis)

    def log_prob_at(self, idx: np.ndarray) -> np.ndarray:
        """(n,) log πθ(x_i), by a forward over just these n sequences (no enumeration)."""
        idx = self._check_idx(idx)
        return self._forward_tokens(self.space.tokens_of(idx))[0]

    def grad_log_prob_at(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Σ_i w_i ∇θ log πθ(x_i) → (P,), by a backward over just these n sequences, O(n·T·H²)."""
        idx = self._check_idx(idx)
        w = np.asarray(w, dtype=float)
        if w.shape != idx.shape:
            raise ValueError(f"w has shape {w.shape}; expected {idx.shape}, one weight per sample")
        if not np.all(np.isfinite(w)):
            raise ValueError("w contains NaN or inf; weights must be finite")
        tokens = self.space.tokens_of(idx)
        _, fw = self._forward_tokens(tokens)
        p, V, H = self._p, self.space.n_vocab, self._config.n_hidden
        g = np.zeros(self.n_params)
        d = _unpack(g, self._layout)
        dX = np.zeros((V, 3 * H))
        dh = np.zeros((idx.size, H))
        for t in reversed(range(self._last + 1)):
            x, h, pi = tokens[:, t], fw["hs"][t], fw["pis"][t]
            if pi is not None:
                # lp += log_softmax(h_t W_o + b_o)[x_t]
                onehot = np.arange(pi.shape[1]) == x[:, None]  # (n, K); all False after EOS
                dlogits = (w * (x >= 0))[:, None] * (onehot - pi)  # (n, K)
                d["Wo"] += h.T @ dlogits
                d["bo"] += dlogits.sum(axis=0)
                dh = dh + dlogits @ p["Wo"].T
            if t == 0:
                d["h0"] += dh.sum(axis=0)
                break
            # h_t = GRU(h_{t−1}, X[v_{t−1}])
            v, cache = fw["cells"][t - 1]
            dgx, dgh, dh_prev = _gru_backward(dh, cache)
            dX += (np.arange(V)[:, None] == v).astype(float) @ dgx  # (V, 3H) scatter by token
            d["bhn"] += dgh[:, 2 * H :].sum(axis=0)
            d["Wh"] += fw["hs"][t - 1].T @ dgh
            dh = dh_prev + dgh @ p["Wh"].T
        self._inputs_backward(d, dX)  # X = E W_x + b_x
        return g

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) indices x_i ∼ πθ by ancestral sampling, x_t ∼ πθ(· | x_<t): O(n·T) cells, no enumeration."""
        n = check_sample_size(n, self.space, 8 * (self.space.length + 6 * self._config.n_hidden
                                                    + 3 * (self.space.n_vocab + 1)))  # tokens, h, gates, cdf
        rng = check_rng(rng)
        p, space = self._p, self.space
        V, T, X = space.n_vocab, space.length, self._inputs()  # X: (V, 3H)
        h = np.broadcast_to(p["h0"], (n, self._config.n_hidden))
        tokens = np.full((n, T), -1, dtype=np.int64)
        live = np.ones(n, dtype=bool)
        for lv in space.levels:
            if lv.choices > 1:
                lc = log_softmax_rows(h @ p["Wo"] + p["bo"])  # (n, K)
                cdf = np.cumsum(np.exp(lc), axis=1)[:, :-1]  # (n, K − 1) inverse CDF, robust to rounding
                x = (rng.random(n)[:, None] >= cdf).sum(axis=1)
            else:
                x = np.full(n, V if space.eos is not None else 0)  # the only choice: EOS (or V = 1)
            tokens[live, lv.depth] = x[live]
            live &= x < V
            if lv.depth < self._last:
                h, _ = _gru_forward(h, X[np.minimum(x, V - 1)], h @ p["Wh"], p["bhn"])
        return space.index_of(tokens)

    # ------------------------------------------------------------------ pretraining
    @classmethod
    def fit(cls, space: SequenceSpace, log_p: np.ndarray, config: TinyLMConfig | None = None, *,
            steps: int = FIT_STEPS, lr: float = FIT_LR, method: str = "exact", n: int = 64, seed: int = 0,
            schedule: str = "constant", lr_final: float | None = None, callback=None) -> "TinyLM":
        """θ ≈ argmin_θ H(p, πθ) = −Σ_x p(x) log πθ(x): maximum likelihood, by Adam from the config's init.

        ``method="exact"``: ∇ = −Σ_x p(x) ∇θ log πθ(x) over the space; ``"sampled"``:
        ∇ ≈ −(1/n) Σ_i ∇θ log πθ(x_i) with a fresh minibatch x_i ∼ p each step (``seed``).
        H(p, πθ) − H(p) = KL(p ‖ πθ) is what remains; p may have zeros.  The loop is
        :func:`toyfdiv.training.optimise` (``schedule``, ``lr_final``, ``callback(k, steps)``;
        a non-finite gradient stops it naming the step and the learning rate).
        """
        log_p = check_log_probs(log_p, space.size, "log_p")
        n = check_int(n, "n")
        if method not in ("exact", "sampled"):
            raise ValueError(f"method={method!r} is unknown; allowed: 'exact', 'sampled'")
        p = np.exp(log_p)

        def update(pol, rng):  # the gradient of H(p, πθ)
            if method == "exact":
                return -pol.grad_log_prob_weighted(p), {}
            idx = sample_index(p, n, rng)
            return -pol.grad_log_prob_at(idx, np.full(n, 1.0 / n)), {}

        return optimise(cls(space, config), update, steps=check_int(steps, "steps"), lr=lr, optimizer="adam",
                        schedule=schedule, lr_final=lr_final, callbacks=() if callback is None else (callback,),
                        seed=seed, label="TinyLM pretraining (cross-entropy to p)").policy
