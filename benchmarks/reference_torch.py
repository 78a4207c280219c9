"""PyTorch references of the exact and sampled f-DPG steps, for the benchmark only.

torch is never a dependency of toyfdiv: this module is imported by ``benchmarks.run`` only
when torch is installed (``pip install torch``).  Everything is float64 and computed the
way a PyTorch user would write it — a forward pass, the f-DPG weights under ``no_grad``,
the surrogate loss Σ_x w(x) log πθ(x), then ``backward()``:

- ``ar_step_gather``: autoregressive policy, per-level logits → log-softmax, then log πθ(x)
  gathered over the (N, T) tokens of every sequence (the natural way to write it);
- ``ar_step_tree``: the same, but log πθ(x) summed down the prefix tree level by level
  (a broadcast add and a reshape per level — the library's algorithm, in torch);
- ``tinylm_step_tree``: the TinyLM GRU evaluated once per prefix-tree node (the library's
  algorithm), autograd in place of the hand-written backward;
- ``tinylm_sampled_step``: ancestral sampling of n sequences, log πθ of the samples over
  the (n, T) tokens, the on-policy f-DPG coefficients (batch Ẑ, mean baseline), backward.

Each builder takes the library object and returns a callable; ``grad()`` of the result
gives the gradient flattened in the library's θ order, for the equality check.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from toyfdiv.policies.tinylm import _unpack, tokens_of

DTYPE = torch.float64
_LOG2 = math.log(2.0)


def weights(log_pi: torch.Tensor, log_p: torch.Tensor, p: torch.Tensor, div: str) -> torch.Tensor:
    """w = π f'(π/p) for the two divergences benchmarked (full support)."""
    if div == "forward_kl":  # π · (−p/π)
        return -p
    if div == "js":  # π · ½ log(2π/(π + p))
        return 0.5 * log_pi.exp() * (_LOG2 + log_pi - torch.logaddexp(log_pi, log_p))
    raise ValueError(div)


# ---------------------------------------------------------------------------- autoregressive
class _ARBase:
    def __init__(self, policy, log_p: np.ndarray, div: str):
        self.space, self.div = policy.space, div
        self.log_p = torch.from_numpy(np.array(log_p))
        self.p = self.log_p.exp()
        self.levels = [lv for lv in self.space.levels]
        self.blocks = [torch.tensor(z, dtype=DTYPE, requires_grad=True) if z is not None else None
                       for z in policy.logits()]

    def grad(self) -> np.ndarray:
        return torch.cat([b.grad.reshape(-1) for b in self.blocks if b is not None]).numpy()

    def __call__(self):
        for b in self.blocks:
            if b is not None:
                b.grad = None
        log_pi = self.log_probs()
        with torch.no_grad():
            w = weights(log_pi, self.log_p, self.p, self.div)
        (w * log_pi).sum().backward()


class ARGather(_ARBase):
    """log πθ(x) = Σ_t log_softmax(θ_t)[prefix_t(x), x_t], gathered over the (N, T) tokens."""

    def __init__(self, policy, log_p, div):
        super().__init__(policy, log_p, div)
        sp, V = self.space, self.space.n_vocab
        tok = torch.from_numpy(sp.tokens.astype(np.int64))  # (N, T), −1 after EOS
        prefix = torch.zeros(sp.size, dtype=torch.int64)  # (N,) id of x_<t at depth t
        self.index = []  # per depth: (rows, flat index into the level's (nodes, choices) table)
        for lv in self.levels:
            x = tok[:, lv.depth]
            rows = torch.nonzero(x >= 0).squeeze(1) if sp.eos is not None else None
            xs, pre = (x, prefix) if rows is None else (x[rows], prefix[rows])
            col = xs if lv.choices > 1 else torch.zeros_like(xs)
            self.index.append((rows, pre * lv.choices + col))
            prefix = prefix * V + x.clamp(0, V - 1)

    def log_probs(self):
        lp = torch.zeros(self.space.size, dtype=DTYPE)
        for lv, b, (rows, flat) in zip(self.levels, self.blocks, self.index):
            if b is None:
                continue  # only EOS allowed: log 1 = 0
            logp = torch.log_softmax(b, dim=1).reshape(-1)
            lp = lp + logp[flat] if rows is None else lp.index_add(0, rows, logp[flat])
        return lp


class ARTree(_ARBase):
    """log πθ(x) summed down the prefix tree: path_{t+1} = (path_t[:, None] + log π(·|u)).reshape(-1)."""

    def log_probs(self):
        V, eos = self.space.n_vocab, self.space.eos is not None
        path = torch.zeros(1, dtype=DTYPE)
        ends = []
        for lv, b in zip(self.levels, self.blocks):
            if b is None:
                ends.append(path)
                continue
            lc = torch.log_softmax(b, dim=1)
            if eos:
                ends.append(path + lc[:, V])
            path = (path[:, None] + lc[:, :V]).reshape(-1)
        if not eos:
            return path
        if self.space.unterminated:
            ends.append(path)
        return torch.cat(ends)


# ---------------------------------------------------------------------------- TinyLM
class _TinyBase:
    def __init__(self, model):
        self.model, self.space = model, model.space
        self.p = {k: torch.tensor(v, dtype=DTYPE, requires_grad=True)
                  for k, v in _unpack(model.params, model._layout).items()}
        self.H = model.config.n_hidden
        self.last = max((lv.depth for lv in self.space.levels if lv.choices > 1), default=-1)

    def grad(self) -> np.ndarray:
        return torch.cat([self.p[k].grad.reshape(-1) for k, _ in self.model._layout]).numpy()

    def _zero(self):
        for t in self.p.values():
            t.grad = None

    def _cell(self, h, gx, gh):
        H = self.H
        r = torch.sigmoid(gx[..., :H] + gh[..., :H])
        z = torch.sigmoid(gx[..., H:2 * H] + gh[..., H:2 * H])
        n = torch.tanh(gx[..., 2 * H:] + r * (gh[..., 2 * H:] + self.p["bhn"]))
        return n + z * (h - n)


class TinyTree(_TinyBase):
    """TinyLM over the prefix tree: each node's state once, its V children one cell step away."""

    def __init__(self, model, log_p, div):
        super().__init__(model)
        self.div = div
        self.log_p = torch.from_numpy(np.array(log_p))
        self.pt = self.log_p.exp()

    def log_probs(self):
        p, V, H, eos = self.p, self.space.n_vocab, self.H, self.space.eos is not None
        X = p["E"] @ p["Wx"] + p["bx"]  # (V, 3H)
        h = p["h0"][None, :]
        path = torch.zeros(1, dtype=DTYPE)
        ends = []
        for lv in self.space.levels:
            if lv.choices == 1:
                ends.append(path)
                continue
            lc = torch.log_softmax(h @ p["Wo"] + p["bo"], dim=1)
            if eos:
                ends.append(path + lc[:, V])
            path = (path[:, None] + lc[:, :V]).reshape(-1)
            if lv.depth < self.last:
                gh = (h @ p["Wh"])[:, None, :]
                h = self._cell(h[:, None, :], X[None], gh).reshape(-1, H)
        if not eos:
            return path
        if self.space.unterminated:
            ends.append(path)
        return torch.cat(ends)

    def __call__(self):
        self._zero()
        log_pi = self.log_probs()
        with torch.no_grad():
            w = weights(log_pi, self.log_p, self.pt, self.div)
        (w * log_pi).sum().backward()


class TinySampled(_TinyBase):
    """One on-policy sampled f-DPG step: x_i ∼ πθ ancestrally, ĝ = Σ_i c_i ∇θ log πθ(x_i)."""

    def __init__(self, model, log_scores, div, n, seed=0):
        super().__init__(model)
        self.div, self.n = div, n
        self.log_scores = torch.from_numpy(np.array(log_scores))
        self.gen = torch.Generator().manual_seed(seed)
        V, T = self.space.n_vocab, self.space.length
        self.starts = torch.tensor([0] if self.space.eos is None else
                                   [self.space.ends_at(d).start for d in range(T + self.space.unterminated)])
        self.powers = V ** torch.arange(T - 1, -1, -1)

    def sample_tokens(self, n):
        """(n, T) tokens by ancestral sampling (EOS = V, −1 after it), without gradients."""
        p, V, T = self.p, self.space.n_vocab, self.space.length
        with torch.no_grad():
            X = p["E"] @ p["Wx"] + p["bx"]
            h = p["h0"].expand(n, self.H)
            tokens = torch.full((n, T), -1, dtype=torch.int64)
            live = torch.ones(n, dtype=torch.bool)
            for lv in self.space.levels:
                if lv.choices > 1:
                    probs = torch.softmax(h @ p["Wo"] + p["bo"], dim=1)
                    x = torch.multinomial(probs, 1, generator=self.gen).squeeze(1)
                else:
                    x = torch.full((n,), V)
                tokens[:, lv.depth] = torch.where(live, x, tokens[:, lv.depth])
                live = live & (x < V)
                if lv.depth < self.last:
                    h = self._cell(h, X[x.clamp(max=V - 1)], h @ p["Wh"])
        return tokens

    def index_of(self, tokens):
        is_tok = (tokens >= 0) & (tokens < self.space.n_vocab)
        L = is_tok.sum(1)
        T = self.space.length
        digits = torch.where(is_tok, tokens, 0)
        rank = (digits * self.powers).sum(1) // self.space.n_vocab ** (T - L)
        return self.starts[L] + rank

    def log_probs_of(self, tokens):
        """(n,) log πθ(x_i) over the (n, T) tokens, with autograd."""
        p, V = self.p, self.space.n_vocab
        n = tokens.shape[0]
        X = p["E"] @ p["Wx"] + p["bx"]
        h = p["h0"].expand(n, self.H)
        lp = torch.zeros(n, dtype=DTYPE)
        for lv in self.space.levels[: self.last + 1]:
            x = tokens[:, lv.depth]
            if lv.choices > 1:
                lc = torch.log_softmax(h @ p["Wo"] + p["bo"], dim=1)
                lp = lp + torch.where(x >= 0, lc.gather(1, x.clamp(min=0)[:, None])[:, 0], 0.0)
            if lv.depth < self.last:
                h = self._cell(h, X[x.clamp(0, V - 1)], h @ p["Wh"])
        return lp

    def backward_at(self, tokens, c):
        self._zero()
        (c * self.log_probs_of(tokens)).sum().backward()

    def __call__(self):
        self._zero()
        tokens = self.sample_tokens(self.n)
        idx = self.index_of(tokens)
        log_pi = self.log_probs_of(tokens)
        with torch.no_grad():  # on-policy: ρ = 1, batch Ẑ, mean baseline
            log_P = self.log_scores[idx]
            log_z = torch.logsumexp(log_P - log_pi, 0) - math.log(self.n)
            log_p = log_P - log_z
            R = -weights(log_pi, log_p, log_p.exp(), self.div) / log_pi.exp()  # −f'(π/p̂)
            c = -(R - R.mean()) / self.n
        (c * log_pi).sum().backward()
        return idx


def tokens_for(space, idx: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(tokens_of(space, idx))
