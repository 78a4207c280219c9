"""Loss aggregation: the weight s_i that a response's token losses get in the batch loss.

With outcome advantages A_i and token losses ℓ_it, every method writes the loss as
L = Σ_i s_i Σ_t ℓ_it, so a response of |y_i| tokens enters as s_i A_i log π(y_i):

    seq_sum           s_i = 1/G                  sequence sum, mean over the group (REINFORCE, RLOO)
    token_mean        s_i = 1/(G |y_i|)          per-response token mean (GRPO; Shao et al. 2024, eq. 3)
    batch_token_mean  s_ci = C/Σ_{c',j} |y_c'j|   token mean over the batch of C prompts' groups (DAPO; Yu et al.
                                                 2025, eq. 8); the factor C: averaged over the prompts with ρ = 1/C
                                                 it is the paper's Σ_{c,i,t} ℓ / Σ|y|
    constant          s_i = 1/(G L)              a constant normaliser, L = the longest length (Dr. GRPO;
                                                 Liu et al. 2025, §3.1)

Only token_mean depends on a response's own length: it is the source of GRPO's length
bias (Liu et al. 2025, Fig. 1).  A batch holds one group per prompt: lengths (…, C, G), and
batch_token_mean's normaliser spans the last two axes (a (…, G) array is one prompt's batch;
a group of length 0 — dropped by dynamic sampling — counts no tokens).
"""

from __future__ import annotations

import numpy as np

from .advantages import choice

__all__ = ["AGGREGATIONS", "LENGTH_DEPENDENT", "scales"]

AGGREGATIONS = ("seq_sum", "token_mean", "batch_token_mean", "constant")
#: aggregations whose s_i reads the lengths of the responses
LENGTH_DEPENDENT = ("token_mean", "batch_token_mean")


def scales(lengths, aggregation: str, max_length: int) -> np.ndarray:
    """s (…, G) for response lengths (…, G) (EOS counted; (…, C, G) for batch_token_mean); module docstring."""
    choice(aggregation, "aggregation", AGGREGATIONS)
    n = np.asarray(lengths, dtype=float)
    G = n.shape[-1]
    if aggregation == "seq_sum":
        return np.full(n.shape, 1.0 / G)
    if aggregation == "token_mean":
        return 1.0 / (G * n)
    if aggregation == "batch_token_mean":
        C = n.shape[-2] if n.ndim >= 2 else 1
        axes = (-2, -1) if n.ndim >= 2 else (-1,)
        total = np.broadcast_to(n.sum(axis=axes, keepdims=True), n.shape)
        return np.divide(C, total, out=np.zeros(n.shape), where=total > 0)
    return np.full(n.shape, 1.0 / (G * max_length))
