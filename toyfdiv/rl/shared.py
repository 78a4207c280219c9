"""Parameters shared across prompts: a prompted TinyLM, and one fine-tuning adapter added to every prompt's logits.

:class:`PromptedTinyLM`, one network for every prompt, conditioned on the prompt through its initial state:

    π_θ(y | c) = TinyLM_{φ, h_0 = h_0(c)}(y),   θ = (φ, h_0(1) … h_0(C)),

φ the GRU, the token embeddings and the head, shared by all prompts; h_0(c) (H,) the state the
GRU starts from for prompt c (the TinyLM's learned h_0, one per prompt: a prompt token read
before the response).  Each prompt's policy is an ordinary :class:`~toyfdiv.policies.TinyLM`
(``policies[c]``), so every exact and sampled quantity of :mod:`toyfdiv.rl` applies to it
unchanged; the gradient with respect to θ is the pull-back of the per-prompt gradients
(chain rule: φ is in every prompt, h_0(c) only in prompt c),

    ∂/∂φ = Σ_c g_c[φ],   ∂/∂h_0(c) = g_c[h_0],

which :func:`toyfdiv.rl.make_update` applies whenever the policy has a ``pull_back`` (this
class, :class:`SharedAdapter`).  Unlike a table per prompt, an update for
one prompt moves the others: the setting in which RL's updates interact across prompts.
"""

from __future__ import annotations

import reprlib

import numpy as np

from .._util import as_float_array, check_instance, check_int, check_positive_float, check_space
from ..loop import optimise
from ..policies.autoregressive import AutoregressivePolicy
from ..policies.base import FlatParameters
from ..policies.tinylm import TinyLM, TinyLMConfig
from ..rl_tasks import PromptedTask
from ..space import SequenceSpace

__all__ = ["PromptedTinyLM", "SharedAdapter", "h0_slice"]


def h0_slice(space, config: TinyLMConfig) -> tuple[slice, int]:
    """Where h_0 sits in a TinyLM's θ, from its documented order E (V, D), W_x (D, 3H), b_x (3H), W_h (H, 3H),
    b_hn (H), h_0 (H), W_o (H, K), b_o (K); and P, checked against ``TinyLM.n_params_for``."""
    V, D, H = space.n_vocab, config.n_embd, config.n_hidden
    K = V + (space.eos is not None)
    start = V * D + D * 3 * H + 3 * H + H * 3 * H + H
    P = start + H + H * K + K
    if P != TinyLM.n_params_for(space, config):  # the documented layout changed: refuse rather than misplace h_0
        raise ValueError(f"TinyLM has {TinyLM.n_params_for(space, config)} parameters, not the {P} of the layout "
                         "PromptedTinyLM reads; update h0_slice to TinyLM's layout")
    return slice(start, start + H), P


class PromptedTinyLM(FlatParameters):
    """π_θ(·|c) for C prompts: a TinyLM with a learned initial state h_0(c) per prompt (module docstring).

    Args:
      space: the response space.
      n_prompts: C.
      config: the :class:`TinyLMConfig` of the shared network (default D = 4, H = 8).
      params: θ = (φ, h_0 (C·H)) flat, overriding the initialisation (every prompt starts
        from the TinyLM's init, h_0 = 0).
    Immutable, like every policy; ``params``, ``with_params``, ``policies``, ``pull_back``.
    """

    def __init__(self, space, n_prompts: int, config: TinyLMConfig | None = None, *, params=None):
        check_space(space)
        C = check_int(n_prompts, "n_prompts")
        config = TinyLMConfig() if config is None else config
        check_instance(config, TinyLMConfig, "config")
        self._h0, P = h0_slice(space, config)  # h_0's place in a TinyLM's θ, and the TinyLM's P
        H = config.n_hidden
        if 8 * C * (H + space.size) > space.max_bytes:  # h_0 per prompt and one row of log-probs per prompt
            raise ValueError(f"n_prompts={reprlib.repr(C)} needs {8 * (H + space.size):,} bytes per prompt, over "
                             f"max_bytes = {space.max_bytes / 2**30:.1f} GiB in all; allowed: n_prompts ≤ "
                             f"{space.max_bytes // (8 * (H + space.size)):,}")
        self._shared = np.ones(P, dtype=bool)
        self._shared[self._h0] = False
        if params is None:
            phi = TinyLM(space, config).params[self._shared]
            params = np.concatenate([phi, np.zeros(C * H)])
        theta = np.array(as_float_array(params, "params"), dtype=float).reshape(-1)
        if theta.shape != (P - H + C * H,):
            raise ValueError(f"params has shape {theta.shape}; allowed: ({P - H + C * H},) = the shared network's "
                             f"{P - H} then h_0 for each of the {C} prompts ({H} each)")
        if not np.isfinite(theta).all():
            raise ValueError("params contains NaN or inf; parameters must be finite")
        self.space, self.config, self.n_prompts = space, config, C
        self._theta = theta
        phi, h0 = theta[: P - H], theta[P - H:].reshape(C, H)
        full = np.empty((C, P))
        full[:, self._shared] = phi
        full[:, self._h0] = h0
        self.policies = tuple(TinyLM(space, config, params=row) for row in full)

    def with_params(self, theta) -> "PromptedTinyLM":
        return PromptedTinyLM(self.space, self.n_prompts, self.config, params=theta)

    def pull_back(self, per_prompt_gradient) -> np.ndarray:
        """(Σ_c g_c[φ], g_1[h_0], …, g_C[h_0]) from the prompts' TinyLM gradients concatenated (C·P,)."""
        P = self.policies[0].n_params
        g = as_float_array(per_prompt_gradient, "per_prompt_gradient")
        if g.shape != (self.n_prompts * P,):
            raise ValueError(f"per_prompt_gradient has shape {g.shape}; allowed: ({self.n_prompts * P},), one "
                             f"TinyLM gradient ({P},) per prompt, concatenated")
        g = g.reshape(self.n_prompts, P)
        return np.concatenate([g[:, self._shared].sum(axis=0), g[:, self._h0].reshape(-1)])

    def log_probs(self) -> np.ndarray:
        """(C, N) log π_θ(y|c)."""
        return np.stack([p.log_probs() for p in self.policies])

    @classmethod
    def fit(cls, task, config: TinyLMConfig | None = None, *, steps: int = 400, lr: float = 0.03,
            seed: int = 0) -> "PromptedTinyLM":
        """θ ≈ argmin Σ_c ρ(c) H(a(·|c), π_θ(·|c)): maximum likelihood of the task's base model, by Adam
        through the one loop (the pretrained start of RL on a shared network)."""
        steps = check_int(steps, "steps")
        lr = check_positive_float(lr, "lr")
        rho, a = np.exp(task.log_rho), np.exp(task.log_a)  # (C,), (C, N)

        def update(pol, rng):  # ∇ Σ_c ρ(c) H(a_c, π_c)
            return pol.pull_back(np.concatenate([-r * p.grad_log_prob_weighted(a_c)
                                                 for r, p, a_c in zip(rho, pol.policies, a)])), {}

        start = cls(task.space, len(task.prompts), config)
        return optimise(start, update, steps=steps, lr=lr, optimizer="adam", seed=seed,
                        label="PromptedTinyLM pretraining (cross-entropy to a(·|c))").policy


class SharedAdapter(FlatParameters):
    """π_θ(·|c): an autoregressive policy per prompt with logits(c) = logits_a(c) + θ, one θ (P,) for all prompts.

    ``base`` (C, P) are the prompts' own logits (a's conditionals); θ = 0 is the base model.
    Immutable like every policy; ``policies`` are the per-prompt policies (what
    :func:`toyfdiv.rl.expected_update` reads), and the gradient with respect to θ is the sum
    of the per-prompt gradients with respect to their logits (the chain rule, ∂logits(c)/∂θ = I).
    """

    def __init__(self, space, base, theta=None):
        check_instance(space, SequenceSpace, "space")
        self._base = as_float_array(base, "base")
        if self._base.ndim != 2 or self._base.shape[1] != space.n_logits or not np.all(np.isfinite(self._base)):
            raise ValueError(f"base has shape {self._base.shape}; expected finite (C, {space.n_logits}): one row "
                             "of logits per prompt")
        self.space = space
        theta = np.zeros(space.n_logits) if theta is None else as_float_array(theta, "theta")
        if theta.shape != (space.n_logits,) or not np.all(np.isfinite(theta)):
            raise ValueError(f"theta has shape {theta.shape}; expected finite values of shape ({space.n_logits},)")
        self._theta = theta.copy()
        self.policies = tuple(AutoregressivePolicy(space, params=b + theta) for b in self._base)

    @classmethod
    def at_base(cls, task: PromptedTask) -> "SharedAdapter":
        """θ = 0: every prompt's policy is a(·|c)."""
        check_instance(task, PromptedTask, "task")
        base = np.stack([p.params for p in task.base_policies()])
        return cls(task.space, base)

    def with_params(self, theta) -> "SharedAdapter":
        return SharedAdapter(self.space, self._base, theta)

    def pull_back(self, per_prompt_gradient) -> np.ndarray:
        """Σ_c g_c: the gradient with respect to θ from the concatenated per-prompt gradients (C·P,)."""
        g = as_float_array(per_prompt_gradient, "per_prompt_gradient")
        if g.shape != (self._base.size,):
            raise ValueError(f"per_prompt_gradient has shape {g.shape}; expected ({self._base.size},)")
        return g.reshape(self._base.shape).sum(axis=0)

    def log_probs(self) -> np.ndarray:
        """(C, N) log π_θ(y|c)."""
        return np.stack([p.log_probs() for p in self.policies])
