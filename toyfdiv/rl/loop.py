"""An algorithm as an update for the one training loop, ``toyfdiv.training.optimise``.

    update(policy, rng) -> (∇θ L, diagnostics)

with ``policy`` a ConditionalPolicy (or anything with ``.policies``) over the task's prompts.  A
policy with shared parameters (a ``pull_back`` method: :class:`toyfdiv.rl.shared.PromptedTinyLM`,
:class:`toyfdiv.rl.shared.SharedAdapter`) gets its per-prompt gradients pulled back onto θ.
``estimator="expected"``: the exact expected update (or Monte Carlo where exact does not
fit); ``"sampled"``: one batch per ``alg.epochs`` calls — the first call samples a batch
from the current policy (π_old) and takes the on-policy step, the next epochs − 1 calls
reuse it with PPO's clipped per-token ratios against π_old, as PPO does.
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

from .._util import check_int
from .advantages import choice
from .algorithms import Algorithm
from .expected import expected_update, policies_of
from .ppo import sample_batch, sampled_update

__all__ = ["ESTIMATORS", "make_update", "summary"]

ESTIMATORS = ("expected", "sampled")


def summary(policy, task) -> dict[str, float]:
    """ρ-averaged exact E_π[r], KL(π‖a), entropy and E_π[|y|]: the metrics an RL run records."""
    pols = policies_of(policy)
    rho = np.exp(task.log_rho)
    rows = []
    for c, p in enumerate(pols):
        pi, lp = p.probs(), p.log_probs()
        rows.append((pi @ task.reward[c], rel_entr(pi, np.exp(task.log_a[c])).sum(), -(pi @ lp),
                     pi @ task.space.lengths))
    r, kl, h, n = (rho @ np.array(rows)).tolist()
    return {"reward": r, "kl_from_base": kl, "entropy": h, "length": n}


def make_update(alg: Algorithm, task, G: int = 8, *, estimator: str = "expected", mode: str = "auto",
                trials: int = 2000):
    """update(policy, rng) → (gradient (P,), diagnostics) for ``alg`` on ``task`` (module docstring)."""
    choice(estimator, "estimator", ESTIMATORS)
    G = check_int(G, "G")
    state = {"batch": None, "old": None, "epoch": 0}

    def update(policy, rng):
        pull = getattr(policy, "pull_back", None)  # shared parameters: Σ over the prompts (chain rule)
        g, diag = one(policy, rng)
        return (g if pull is None else pull(g)), diag

    def one(policy, rng):
        if estimator == "expected":
            u = expected_update(alg, policy, task, G, mode=mode, trials=trials, rng=rng)
            return u.gradient, {"noise_floor": u.noise_floor}
        if state["epoch"] % alg.epochs == 0:
            state["old"] = policies_of(policy)
            state["batch"] = sample_batch(alg, state["old"], task, G, rng)
        first = state["epoch"] % alg.epochs == 0
        state["epoch"] += 1
        g = sampled_update(alg, policy, task, state["batch"], None if first else state["old"])
        return g, {"batch_reward": float(state["batch"].R.mean())}

    return update
