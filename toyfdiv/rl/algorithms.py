"""An RLHF algorithm as a composition of named parts, and the presets with their sources.

    L(θ) = Σ_i s_i Σ_t [ −min(ρ_it A_i, clip(ρ_it, 1 − ε_low, 1 + ε_high) A_i) + β k_loss(δ_it) ],
    A = advantage(R),  R_i = r(y_i) − β k_reward(y_i)  (KL in the reward)  or  r(y_i),

with ρ_it = π(y_it|y_<t)/π_old(y_it|y_<t) the per-token importance ratio against the
frozen policy that sampled the batch, reused for ``epochs`` passes (PPO; Schulman et al.
2017, eq. 7).  On the first pass ρ = 1 and nothing is clipped, so the gradient is
−Σ_i s_i A_i ∇ log π(y_i): the on-policy policy gradient.  GSPO (``ratio_level="sequence"``;
Zheng et al. 2025) replaces Σ_t of the per-token term by one per response,
−min(ρ̄_i A_i, clip(ρ̄_i) A_i), ρ̄_i = (π(y_i)/π_old(y_i))^{1/|y_i|}: its first pass is
−Σ_i s_i A_i ∇ log π(y_i)/|y_i|.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._util import check_int, check_positive_float
from .advantages import ADVANTAGES, choice
from .aggregation import AGGREGATIONS
from .kl import ESTIMATORS, LEVELS, PLACEMENTS

#: PPO's per-token importance ratio, or GSPO's one per sequence
RATIO_LEVELS = ("token", "sequence")

__all__ = ["RATIO_LEVELS", "Algorithm", "PRESETS", "preset", "names", "check_epsilon", "check_overlong"]


def check_epsilon(value, name: str) -> float | None:
    """ε in (0, 1), or None (no clipping on that side)."""
    if value is None:
        return None
    v = check_positive_float(value, name)
    if not 0 < v < 1:
        raise ValueError(f"{name}={value!r} is outside (0, 1); a clip range needs 0 < ε < 1 (or None: no clipping)")
    return v


def check_overlong(value) -> tuple[int, int]:
    """(L_max, L_cache) as integers with 1 ≤ L_cache < L_max (DAPO's overlong penalty), else a ValueError."""
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in value)
    if not ok or not 1 <= value[1] < value[0] <= 10**9:
        raise ValueError(f"overlong={value!r} must be a pair (L_max, L_cache) of integers with 1 ≤ L_cache < L_max "
                         "≤ 10⁹, or None")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class Algorithm:
    """One RLHF algorithm: advantage × aggregation × KL (estimator, placement, level, β) × PPO.

    Attributes:
      name: a label.
      advantage: one of :data:`toyfdiv.rl.advantages.ADVANTAGES`.
      aggregation: one of :data:`toyfdiv.rl.aggregation.AGGREGATIONS`.
      kl: "k1", "k2", "k3", or None (no KL term).
      kl_placement: "reward" or "loss".
      kl_level: "sequence" or "token".
      beta: β ≥ 0, the KL coefficient.
      epochs: passes over each batch (PPO's K); 1 = on-policy.
      clip_low, clip_high: ε_low, ε_high in (0, 1), or None for no clipping on that side.
      dynamic_sampling: DAPO's dynamic sampling — a group whose rewards are all equal is dropped
        and drawn again (:mod:`toyfdiv.rl.dapo`).
      overlong: DAPO's soft overlong penalty (L_max, L_cache), added to the reward, or None.
      ratio_level: "token" (PPO's per-token ratio) or "sequence" (GSPO, Zheng et al. 2025: one ratio
        (π(y)/π_old(y))^{1/|y|} per response, clipped per response; its gradient carries 1/|y|).
      source: where the recipe comes from.
    """

    name: str
    advantage: str = "none"
    aggregation: str = "seq_sum"
    kl: str | None = None
    kl_placement: str = "reward"
    kl_level: str = "sequence"
    beta: float = 0.0
    epochs: int = 1
    clip_low: float | None = None
    clip_high: float | None = None
    dynamic_sampling: bool = False
    overlong: tuple[int, int] | None = None
    ratio_level: str = "token"
    source: str = ""

    def __post_init__(self):
        choice(self.advantage, "advantage", ADVANTAGES)
        choice(self.aggregation, "aggregation", AGGREGATIONS)
        if self.kl is not None:
            choice(self.kl, "kl", ESTIMATORS)
        choice(self.kl_placement, "kl_placement", PLACEMENTS)
        choice(self.kl_level, "kl_level", LEVELS)
        object.__setattr__(self, "beta", check_positive_float(self.beta, "beta", allow_zero=True))
        check_int(self.epochs, "epochs")
        object.__setattr__(self, "clip_low", check_epsilon(self.clip_low, "clip_low"))
        object.__setattr__(self, "clip_high", check_epsilon(self.clip_high, "clip_high"))
        if not isinstance(self.dynamic_sampling, (bool, np.bool_)):
            raise ValueError(f"dynamic_sampling={self.dynamic_sampling!r} must be True or False")
        choice(self.ratio_level, "ratio_level", RATIO_LEVELS)
        if self.overlong is not None:
            object.__setattr__(self, "overlong", check_overlong(self.overlong))

    @property
    def kl_in_reward(self) -> bool:
        return self.kl is not None and self.beta > 0 and self.kl_placement == "reward"

    @property
    def kl_in_loss(self) -> bool:
        return self.kl is not None and self.beta > 0 and self.kl_placement == "loss"

    def with_(self, **changes) -> "Algorithm":
        """A copy with some parts changed (validated again)."""
        return replace(self, **changes)

    def describe(self) -> str:
        kl = "no KL" if self.kl is None or self.beta == 0 else \
            f"β·{self.kl} in the {self.kl_placement} ({self.kl_level}), β = {self.beta:g}"
        clip = "" if self.clip_low is None and self.clip_high is None else \
            f", clip [1 − {self.clip_low}, 1 + {self.clip_high}]"
        dapo = (", sequence-level ratio (GSPO)" if self.ratio_level == "sequence" else "") + \
            (", dynamic sampling" if self.dynamic_sampling else "") + \
            ("" if self.overlong is None else f", overlong penalty (L_max {self.overlong[0]}, L_cache {self.overlong[1]})")
        return f"{self.name}: {self.advantage} advantage, {self.aggregation}, {kl}, {self.epochs} epoch(s){clip}{dapo}"


#: the presets, β = 0.1 where the recipe has a KL term
PRESETS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("reinforce", "none", "seq_sum", "k1", "reward", "sequence", 0.1,
              source="REINFORCE with k1 in the reward: the exact RLHF gradient (Ziegler et al. 2019; "
                     "Korbak, Perez, Buckley 2022)"),
    Algorithm("rloo", "rloo", "seq_sum", "k1", "reward", "sequence", 0.1,
              source="RLOO (Ahmadian et al. 2024, 'Back to basics'): leave-one-out baseline, KL in the reward"),
    Algorithm("remax", "remax", "seq_sum", "k1", "reward", "sequence", 0.1,
              source="ReMax (Li et al. 2023): the greedy response's reward as baseline"),
    Algorithm("ppo", "dr_grpo", "token_mean", "k1", "reward", "token", 0.1, epochs=4, clip_low=0.2, clip_high=0.2,
              source="PPO (Schulman et al. 2017), critic-free with a group-mean baseline; per-token k1 in "
                     "the reward as in TRL"),
    Algorithm("grpo", "grpo", "token_mean", "k3", "loss", "token", 0.1, clip_low=0.2, clip_high=0.2,
              source="GRPO (Shao et al. 2024, DeepSeekMath eq. 3-4): group mean/std, token mean, k3 in the loss"),
    Algorithm("dr_grpo", "dr_grpo", "constant", None, "loss", "token", 0.0, clip_low=0.2, clip_high=0.2,
              source="Dr. GRPO (Liu et al. 2025): no std, a constant normaliser, no KL"),
    Algorithm("reinforce_pp", "reinforce_pp", "token_mean", "k1", "reward", "token", 0.1, clip_low=0.2,
              clip_high=0.2, source="REINFORCE++ (Hu et al. 2025): batch-normalised advantage, per-token k1 in "
                                   "the reward"),
    Algorithm("dapo", "grpo", "batch_token_mean", None, "loss", "token", 0.0, clip_low=0.2, clip_high=0.28,
              dynamic_sampling=True, overlong=(4, 2),
              source="DAPO (Yu et al. 2025): clip-higher (ε_low 0.2, ε_high 0.28), dynamic sampling, token mean "
                     "over the batch of prompts, the soft overlong penalty (L_max 4, L_cache 2: −½ at 3 tokens, −1 at 4), "
                     "no KL"),
)}


def names() -> list[str]:
    return list(PRESETS)


def preset(name: str, **changes) -> Algorithm:
    """The preset ``name`` (one of :func:`names`), with optional changes, e.g. beta=0.05."""
    choice(name, "name", tuple(PRESETS))
    return PRESETS[name].with_(**changes) if changes else PRESETS[name]
