"""Training IPO, χ²PO and KTO (and GKD students) through the one loop, :func:`toyfdiv.training.optimise`.

    θ_{k+1} = opt(θ_k, ∇θ L(πθ_k)),   L ∈ {L_IPO, L_χPO, L_KTO}

Each method contributes only its ``update`` (:func:`~toyfdiv.feedback.ipo.ipo_update`,
:func:`~toyfdiv.feedback.chipo.chipo_update`, :func:`~toyfdiv.feedback.kto.kto_update`); the
loop, its schedules, records and divergence guards are shared with every other trainer.
Recorded: "loss" (the method's loss, watched for divergence), "kl_from_ref" = KL(πθ ‖ π_ref)
and, when ``target_log_probs`` is given, "tv_to_target" = ½ Σ|πθ − p|.
"""

from __future__ import annotations

import numpy as np

from ..loop import History, optimise
from ..policies.base import Policy
from .chipo import chipo_loss, chipo_update
from .dpo import check_common, check_policy
from .ipo import ipo_loss, ipo_update
from .kto import kto_loss, kto_update

__all__ = ["METHODS", "train_po"]

METHODS = ("ipo", "chipo", "kto")


def train_po(policy: Policy, method: str, ref_log_probs, dataset, strength: float, *, steps: int = 300,
             lr: float = 0.05, optimizer: str = "adam", record_every: int = 10, target_log_probs=None,
             seed: int = 0, **options) -> History:
    """Minimise ``method``'s loss on ``dataset`` from ``policy`` with :func:`toyfdiv.training.optimise`.

    Args:
      policy: the start (usually π_ref itself).
      method: "ipo" (strength = τ), "chipo" (strength = β; option ``clip``) or "kto"
        (strength = β, a ThumbsDataset; options ``lambda_d``, ``lambda_u``).
      ref_log_probs: log π_ref (N,); dataset: the pairs (or thumbs for KTO).
      steps, lr, optimizer, record_every, seed: the loop's settings.
      target_log_probs: optional log p (N,) to record "tv_to_target" against (e.g. the exact optimum).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; allowed: {list(METHODS)}")
    log_pi0 = check_policy(policy).log_probs()
    log_ref = check_common(log_pi0, ref_log_probs, None)
    allowed = {"ipo": (), "chipo": ("clip",), "kto": ("lambda_d", "lambda_u")}[method]
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ValueError(f"options {bad} do not apply to {method}; allowed: {list(allowed)}")
    update = {"ipo": ipo_update, "chipo": chipo_update, "kto": kto_update}[method](log_ref, dataset, strength, **options)
    loss = {"ipo": ipo_loss, "chipo": chipo_loss, "kto": kto_loss}[method]
    target = None if target_log_probs is None else np.exp(np.asarray(target_log_probs, dtype=float))
    if target is not None and target.shape != log_ref.shape:
        raise ValueError(f"target_log_probs has shape {target.shape}; expected {log_ref.shape}")

    def record(pol):
        lp = pol.log_probs()
        pi = np.exp(lp)
        row = {"loss": loss(pol, log_ref, dataset, strength, **options), "kl_from_ref": float(pi @ (lp - log_ref))}
        if target is not None:
            row["tv_to_target"] = float(0.5 * np.abs(pi - target).sum())
        return row

    config = dict(method=method, strength=strength, steps=steps, lr=lr, optimizer=optimizer, **options)
    return optimise(policy, update, steps=steps, lr=lr, optimizer=optimizer, record=record,
                    record_every=record_every, seed=seed, label=method, config=config)
