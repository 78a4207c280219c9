"""Prompted tasks with verifiable rewards, for the RLHF algorithms of :mod:`toyfdiv.rl`.

Each prompt c asks for one answer token ans(c); the response y is a short sequence over
the vocabulary (fixed length, or ending with EOS so that lengths vary).  The reward reads
only the first token — whether the answer is right — never the length:

    binary:  r(c, y) = 1[y_1 = ans(c)]
    graded:  r(c, y) = 1 − |y_1 − ans(c)| / (V − 1)   (tokens read as numbers; an empty answer scores 0)
    prefix:  r(c, y) = (number of leading tokens of y equal to ans(c)) / (T − 1)   (a multi-step answer:
             the reward reads later tokens too, so token-level and sequence-level KL terms differ)

The base model a(y|c) is autoregressive: the first token is right with probability
p_c (the prompt's difficulty, from ≈ 0.02 to 0.8), the rest of the first-token mass is
spread over the wrong tokens (and EOS), and every later conditional is a seeded random
softmax — so lengths vary with the content but the reward does not see them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import check_int, check_positive_float, as_float_array
from .policies.autoregressive import AutoregressivePolicy
from .space import SequenceSpace

__all__ = ["PromptedTask", "prompted", "DEFAULT_SUCCESS", "REWARDS"]

DEFAULT_SUCCESS = (0.02, 0.1, 0.3, 0.6, 0.8)
REWARDS = ("binary", "graded", "prefix")


@dataclass(frozen=True)
class PromptedTask:
    """Prompts, ρ(c), the response space, the base model a(y|c) and the verifiable reward r(c, y).

    Attributes:
      prompts: (C,) names.  log_rho: (C,) log ρ(c).  space: the responses.
      log_a: (C, N) log a(y|c), also the KL reference.  reward: (C, N) r(c, y).
      answers: (C,) the right first token of each prompt.  base_success: (C,) P_a(right).
    """

    name: str
    prompts: tuple[str, ...]
    log_rho: np.ndarray
    space: SequenceSpace
    log_a: np.ndarray
    reward: np.ndarray
    answers: np.ndarray
    base_success: np.ndarray

    def base_policies(self) -> tuple[AutoregressivePolicy, ...]:
        """a(·|c) as one exact autoregressive policy per prompt (the usual starting point)."""
        return tuple(AutoregressivePolicy.from_log_probs(self.space, la) for la in self.log_a)

    def success(self, log_pi) -> np.ndarray:
        """(C,) P_π(y_1 = ans(c)) for log π (C, N)."""
        first = self.first_tokens
        return np.array([np.exp(lp)[first == a].sum() for lp, a in zip(np.asarray(log_pi), self.answers)])

    @property
    def first_tokens(self) -> np.ndarray:
        """(N,) the first token of each response (EOS id V for the empty response)."""
        return self.space.tokens[:, 0]

    def single(self, c: int) -> "PromptedTask":
        """The task restricted to prompt c (ρ = 1)."""
        c = check_int(c, "c", low=0, high=len(self.prompts) - 1)
        return PromptedTask(f"{self.name}[{self.prompts[c]}]", (self.prompts[c],), np.zeros(1), self.space,
                            self.log_a[c : c + 1], self.reward[c : c + 1], self.answers[c : c + 1],
                            self.base_success[c : c + 1])


def prompted(success=DEFAULT_SUCCESS, *, reward: str = "binary", vocab: int = 3, length: int = 4,
             eos: bool = True, temperature: float = 1.0, seed: int = 0) -> PromptedTask:
    """The prompted verifiable-reward task (module docstring); the default: 5 prompts, V = 3, up to 3 tokens + EOS.

    Args:
      success: the base model's success probability per prompt, each in (0, 1).
      reward: "binary", "graded" or "prefix".
      vocab, length, eos: the response space (V tokens "0" … "V−1", T positions, EOS or fixed length).
      temperature: of the random later conditionals (larger: flatter, lengths more varied).
      seed: seeds the later conditionals.
    """
    if reward not in REWARDS:
        raise ValueError(f"reward={reward!r} is unknown; allowed: {list(REWARDS)}")
    p = as_float_array(success, "success").reshape(-1)
    if p.size == 0 or not np.all((p > 0) & (p < 1)):
        raise ValueError(f"success={success!r} must be probabilities in (0, 1), one per prompt")
    V = check_int(vocab, "vocab", low=2)
    T = check_int(length, "length", low=2 if eos else 1)
    temperature = check_positive_float(temperature, "temperature")
    space = SequenceSpace([str(v) for v in range(V)], T, "</s>" if eos else None)
    rng = np.random.default_rng(check_int(seed, "seed", low=0))
    C = p.size
    answers = np.arange(C) % V
    deeper = rng.standard_normal(space.n_logits) * temperature  # shared by all prompts: one "language"
    first = space.tokens[:, 0]
    log_a, R = [], []
    for c in range(C):
        theta = deeper.copy()
        K = space.levels[0].choices
        wrong = np.full(K, np.log((1 - p[c]) / (K - 1)))
        wrong[answers[c]] = np.log(p[c])
        theta[:K] = wrong  # the root: P(right first token) = p_c
        log_a.append(AutoregressivePolicy(space, params=theta).log_probs())
        if reward == "binary":
            R.append((first == answers[c]).astype(float))
        elif reward == "graded":
            R.append(np.where(first < V, 1 - np.abs(first - answers[c]) / (V - 1), 0.0))
        else:
            run = np.cumprod(space.tokens == answers[c], axis=1).sum(axis=1)  # leading matches
            R.append(run / max(T - 1, 1))
    return PromptedTask(f"prompted-{reward}", tuple(f"q{c}" for c in range(C)), np.full(C, -np.log(C)), space,
                        np.array(log_a), np.array(R), answers, p.copy())
