"""One sequence under several distributions: its probability and its path down the prefix tree.

    π(x) = Π_t π(x_t | x_<t),   π(x_t | x_<t) = π(x_≤t) / π(x_<t),   π(u) = Σ_{x : x starts with u} π(x)

For any distribution over an enumerated space (a policy, a target, the base model), the
conditional probability of each token along x follows from prefix masses, so the app's
sequence inspector and a lesson can show where a policy's probability of x is won or lost.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ._util import check_int, check_log_probs, check_space

__all__ = ["token_path", "rank"]


def token_path(space, log_p, index) -> list[tuple[str, float]]:
    """[(token, p(x_t | x_<t)) for each token of sequence ``index``], EOS included, from log_p (N,).

    The product of the conditionals is p(x); a conditional of a zero-mass prefix is NaN-free:
    it is reported as 0.0 (the prefix itself has probability 0).
    """
    space = check_space(space)
    log_p = check_log_probs(log_p, space.size, "log_p")
    i = check_int(index, "index", 0, space.size - 1)
    tokens = space.tokens  # (N, T), −1 after EOS
    x = tokens[i]
    names = space.tokens_all
    out = []
    match = np.ones(space.size, dtype=bool)  # sequences sharing the prefix x_<t
    log_prefix = 0.0
    for t, tok in enumerate(x):
        if tok < 0:
            break
        match &= tokens[:, t] == tok  # (N,)
        log_next = float(logsumexp(log_p[match])) if match.any() else -np.inf
        cond = 0.0 if not np.isfinite(log_prefix) or not np.isfinite(log_next) else float(np.exp(log_next - log_prefix))
        out.append((names[tok], min(cond, 1.0)))
        log_prefix = log_next
    return out


def rank(log_p, index) -> int:
    """1 + the number of sequences strictly more probable than ``index`` under log_p (1 = a mode)."""
    log_p = np.asarray(log_p, dtype=float)
    if log_p.ndim != 1 or not 0 <= int(index) < log_p.size:
        raise ValueError(f"index={index!r} must be in 0 … {log_p.size - 1} for log_p of shape {log_p.shape}")
    return int(np.sum(log_p > log_p[int(index)])) + 1
