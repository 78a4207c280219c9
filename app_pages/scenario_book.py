"""The lecture scenarios: each a few steps with a prediction asked before the numbers are shown.

A scenario is data: a title, a one-line promise, and steps.  A step has a narration, optionally
a question (options) asked *before* the reveal, and a ``reveal(data) -> Reveal`` that computes
with the library and says which option the numbers support (with the threshold it used).
The numbers of one scenario are computed once (``compute``) and cached.  Playground settings
(``playground``) let the lecturer open the same case in the Playground with one click.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from toyfdiv import Config, claims, divergences, experiments, feedback, metrics, run, simplex, tasks
from toyfdiv import estimator_lab

STEPS, LR = 150, 0.1


@dataclass(frozen=True)
class Reveal:
    answer: str  # the option the numbers support
    text: str  # the sentence, generated from the numbers
    rows: list = field(default_factory=list)  # a small table
    figure: str | None = None  # name of a figure builder in the page (optional)


@dataclass(frozen=True)
class Step:
    narration: str
    question: str | None = None
    options: tuple = ()
    reveal: Callable[[dict], Reveal] | None = None


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    promise: str
    compute: Callable[[], dict]
    steps: tuple
    playground: dict = field(default_factory=dict)


def _runs(kind: str, divs, policy: str = "ngram", **target) -> dict:
    """Train each divergence (those finite at the start) on the reviews task; rows of the summary table."""
    task = tasks.get("reviews")
    tgt = experiments.make_target(task, kind, target)
    out, skipped = {}, []
    for d in divs:
        if not np.isfinite(divergences.get(d).value(task.log_a, tgt.log_probs)):
            skipped.append(d)
            continue
        c = Config(task="reviews", kind=kind, policy=policy, divergence=d, steps=STEPS, lr=LR, record_every=STEPS,
                   policy_options={"order": 2} if policy == "ngram" else {}, **target)
        out[d] = run(c)
    rows = experiments.summary_table(out) if out else []
    return dict(rows=rows, target=experiments.target_row(tgt), skipped=skipped, task=task, tgt=tgt)


def _by(rows, name):
    return next(r for r in rows if r["divergence"] == name)


def _more_distinct(a: float, b: float, name_a: str, name_b: str) -> str:
    return "about the same" if claims.tied(a, b) else (name_a if a > b else name_b)


# ---------------------------------------------------------------------------- 1. RLHF vs GDC
def _rlhf_gdc() -> dict:
    return _runs("pointwise", ["reverse_kl", "forward_kl"], epsilon=0.01)


def _rlhf_gdc_reveal(d: dict) -> Reveal:
    r, f = _by(d["rows"], "reverse_kl"), _by(d["rows"], "forward_kl")
    ans = _more_distinct(r["distinct_100"], f["distinct_100"], "RLHF (reverse KL)", "GDC (forward KL)")
    rows = [dict(run=n, distinct_100=x["distinct_100"], entropy=x["entropy"], alignment=x["alignment"])
            for n, x in (("RLHF (reverse KL)", r), ("GDC (forward KL)", f), ("target p", d["target"]))]
    return Reveal(ans, f"In 100 samples RLHF keeps {r['distinct_100']:.1f} different reviews, GDC "
                       f"{f['distinct_100']:.1f}, the target itself {d['target']['distinct_100']:.1f} (ties within "
                       f"{claims.REL_TIE:.0%}): the answer is **{ans}**.", rows)


# ---------------------------------------------------------------------------- 2. collapse at small β
def _collapse() -> dict:
    small = _runs("rlhf", ["reverse_kl"], beta=0.05)
    large = _runs("rlhf", ["reverse_kl"], beta=1.0)
    return dict(small=small, large=large)


def _collapse_reveal(d: dict) -> Reveal:
    s, l_ = d["small"]["rows"][0], d["large"]["rows"][0]
    ans = _more_distinct(l_["distinct_100"], s["distinct_100"], "β = 1.0", "β = 0.05")
    rows = [dict(beta=b, distinct_100=x["distinct_100"], entropy=x["entropy"], reward=x["alignment"])
            for b, x in ((0.05, s), (1.0, l_))]
    return Reveal(ans, f"RLHF keeps {s['distinct_100']:.1f} distinct reviews in 100 at β = 0.05 and "
                       f"{l_['distinct_100']:.1f} at β = 1.0 (entropy {s['entropy']:.2f} vs {l_['entropy']:.2f} "
                       f"nats): more diversity at **{ans}**.", rows)


# ---------------------------------------------------------------------------- 3. pointwise GDC, reverse KL
def _pointwise() -> dict:
    task = tasks.get("reviews")
    tgt = experiments.make_target(task, "pointwise", {"epsilon": 0.0})
    return dict(values={n: divergences.get(n).value(task.log_a, tgt.log_probs) for n in divergences.names()})


def _pointwise_reveal(d: dict) -> Reveal:
    inf = [n for n, v in d["values"].items() if not np.isfinite(v)]
    ans = "reverse KL cannot start" if "reverse_kl" in inf else "every divergence can start"
    rows = [dict(divergence=n, start_value=v) for n, v in d["values"].items()]
    return Reveal(ans, f"D_f(a‖p) is infinite for {', '.join(inf) or 'none'} and finite for the rest: "
                       f"**{ans}**. ε > 0 makes them all finite.", rows)


# ---------------------------------------------------------------------------- 4. moments
def _moments() -> dict:
    task = tasks.get("reviews")
    tgt = experiments.make_target(task, "distributional", {"moments": [0.6, 0.7]})
    phi = task.feature_matrix
    return dict(names=task.feature_names, base=[metrics.expectation(task.log_a, phi[:, k]) for k in range(2)],
                target=[metrics.expectation(tgt.log_probs, phi[:, k]) for k in range(2)], asked=[0.6, 0.7],
                kl=metrics.kl(tgt.log_probs, task.log_a), lambdas=list(tgt.lambdas), log_z=tgt.log_z)


def _moments_reveal(d: dict) -> Reveal:
    hit = all(abs(t - m) < 1e-6 for t, m in zip(d["target"], d["asked"]))
    identity = float(np.dot(d["lambdas"], d["asked"]) - d["log_z"])
    ans = "exactly" if hit else "only approximately"
    rows = [dict(feature=n, E_a=b, asked=m, E_p=t) for n, b, m, t in zip(d["names"], d["base"], d["asked"],
                                                                          d["target"])]
    return Reveal(ans, f"E_p[φ] meets μ̄ **{ans}** (to 1e-6); and KL(p‖a) = {d['kl']:.4f} nats equals "
                       f"λ*·μ̄ − log Z = {identity:.4f}: p is the closest distribution to a with these moments.", rows)


# ---------------------------------------------------------------------------- 5. Goodhart
def _goodhart() -> dict:
    task = tasks.get("reviews")
    rater = feedback.Rater.for_task(task, temperature=2.0, length_bias=2.0)
    rng = np.random.default_rng(0)
    data = feedback.collect_preferences(rater, task.base, 100, rng)
    rm = feedback.fit_reward_model(data, feedback.ngram_features(task.space)[0], l2=1.0, centre_log_probs=task.log_a)
    curve = feedback.overoptimisation_curve(task.log_a, rm.values, rater.utility)
    return dict(curve=curve)


def _goodhart_reveal(d: dict) -> Reveal:
    c = d["curve"]
    ans = "it peaks, then falls" if c.is_overoptimised else "it keeps rising"
    rows = [dict(beta=float(b), true=float(t), proxy=float(p), kl=float(k))
            for b, t, p, k in list(zip(c.betas, c.true, c.proxy, c.kl))[:: max(1, len(c.betas) // 8)]]
    return Reveal(ans, f"The proxy E[r̂] keeps rising as β falls; the true utility peaks at β* = "
                       f"{c.turning_beta:.3g} (E[u] = {c.turning_true:.3f}, KL = {c.turning_kl:.2f} nats) — "
                       f"**{ans}**.", rows, figure="overoptimisation")


# ---------------------------------------------------------------------------- 6. exact vs sampled
def _sampled() -> dict:
    task = tasks.get("reviews")
    tgt = experiments.make_target(task, "rlhf", {"beta": 0.3})
    pol = experiments.make_policy(task, "autoregressive")
    rows = []
    for n in (4, 256):
        rows += estimator_lab.estimator_stats(pol, tgt, "forward_kl", n=n, trials=1000, rng=np.random.default_rng(0),
                                              baselines=("none",), z_options=("exact", "batch"))
    return dict(rows=rows)


def _sampled_reveal(d: dict) -> Reveal:
    verdicts = {(r["n"], r["z"]): claims.bias_verdict(r["bias"], r["bias_se"])[0] for r in d["rows"]}
    small_batch = verdicts[(4, "batch")]
    ans = "biased" if small_batch == "biased" else "no bias detected"
    rows = [dict(n=r["n"], Z=r["z"], bias=r["bias"], noise_floor=r["bias_se"],
                 verdict=verdicts[(r["n"], r["z"])], cosine=r["cosine"]) for r in d["rows"]]
    return Reveal(ans, f"Forward KL with Ẑ from a batch of 4: **{ans}** (threshold: {claims.BIAS_Z:g} noise floors); "
                       f"with exact Z: {verdicts[(4, 'exact')]}; at n = 256 with Ẑ: {verdicts[(256, 'batch')]}."
                       + (" Ẑ rescales each batch by Z/Ẑ, which is correlated with the batch; the bias shrinks "
                          "as n grows." if ans == "biased" else ""), rows)


# ---------------------------------------------------------------------------- 7. restricted family
def _restricted() -> dict:
    ends = {n: simplex.restricted_flow(simplex.BIMODAL_TARGET, n, 1.2, steps=300, lr=0.5)[-1]
            for n in ("reverse_kl", "forward_kl")}
    return dict(ends=ends, p=np.exp(simplex.BIMODAL_TARGET))


def _restricted_reveal(d: dict) -> Reveal:
    r, f, p = d["ends"]["reverse_kl"], d["ends"]["forward_kl"], d["p"]
    valley = 1  # x₂, between the two modes of p
    ans = "forward KL" if f[valley] > r[valley] else "reverse KL"
    rows = [dict(model=n, **{f"x{i + 1}": float(v[i]) for i in range(3)})
            for n, v in (("target p", p), ("reverse KL", r), ("forward KL", f))]
    return Reveal(ans, f"The valley x₂ has p = {p[valley]:.2f}; reverse KL puts {r[valley]:.2f} there, forward KL "
                       f"{f[valley]:.2f}: **{ans}** covers the valley — mass-covering — while the other sits on one "
                       "mode.", rows, figure="mode_seeking")


DISTINCT_Q = ("RLHF (reverse KL)", "GDC (forward KL)", "about the same")
SCENARIOS = (
    Scenario("rlhf_vs_gdc", "RLHF vs GDC on one target",
             "One GDC target (reviews that contain “good”, ε = 0.01), two methods.", _rlhf_gdc, (
                 Step("The target keeps the base model's reviews that contain “good” (others get weight ε = 0.01). "
                      "RLHF minimises reverse KL to it; GDC minimises forward KL. Both start from the same bigram "
                      "model."),
                 Step("Predict first.", "Which run will keep the most distinct reviews in 100 samples?", DISTINCT_Q,
                      _rlhf_gdc_reveal),
                 Step("Why: reverse KL pays little for missing mass (mode-seeking), forward KL pays a lot "
                      "(mass-covering). With a model too small to fit p, that difference shows.")),
             playground=dict(pg_kind="pointwise", pg_epsilon=0.01, pg_divs=["reverse_kl", "forward_kl", "js"])),
    Scenario("collapse", "Collapse at small β", "RLHF at β = 0.05 and at β = 1.0.", _collapse, (
        Step("p_β = a·exp(r/β)/Z: a small β trusts the reward and sharpens p."),
        Step("Predict first.", "At which β will RLHF keep more distinct reviews?", ("β = 0.05", "β = 1.0",
                                                                                  "about the same"),
             _collapse_reveal),
        Step("At small β the target itself is nearly one sequence: RLHF then keeps one or two reviews — the "
             "collapse practitioners see.")), playground=dict(pg_kind="rlhf", pg_beta=0.05)),
    Scenario("pointwise", "Pointwise GDC and what reverse KL cannot do",
             "A target with zeros: p = 0 wherever “good” is missing.", _pointwise, (
                 Step("With ε = 0 the target gives probability 0 to every review without “good”. The base model a "
                      "gives them mass."),
                 Step("Predict first.", "Which divergences can start from a?",
                      ("every divergence can start", "reverse KL cannot start"), _pointwise_reveal),
                 Step("Reverse KL charges π log(π/p) = ∞ where p = 0 < π. RLHF cannot reach such a target; GDC's "
                      "forward KL can, and so can JS. In the Playground the one-click fix sets ε > 0.")),
             playground=dict(pg_kind="pointwise", pg_epsilon=0.0)),
    Scenario("moments", "Moments: the I-projection", "Ask for E[contains(film)] = 0.6 and E[positive] = 0.7.",
             _moments, (
                 Step("GDC's distributional constraint: p = a·exp(λ·φ)/Z with λ* chosen so that E_p[φ] = μ̄."),
                 Step("Predict first.", "Will E_p[φ] meet μ̄ exactly or only approximately?",
                      ("exactly", "only approximately"), _moments_reveal),
                 Step("λ* solves a convex problem; KL(p‖a) = λ*·μ̄ − log Z(λ*) is the smallest KL from a of any "
                      "distribution with these moments.")),
             playground=dict(pg_kind="distributional", pg_moment0=0.6, pg_moment1=0.7)),
    Scenario("goodhart", "Goodhart: over-optimising a learned reward",
             "Raters with a length bias; a reward model r̂ fitted to 100 of their choices.", _goodhart, (
                 Step("Raters judge sentiment but like long reviews (b = 2 per token, noise τ = 2). r̂ learns from "
                      "their choices."),
                 Step("Predict first.", "As β falls (pushing harder on r̂), what does the true utility do?",
                      ("it keeps rising", "it peaks, then falls"), _goodhart_reveal),
                 Step("The proxy rises while the truth falls: the learned reward is only reliable near the base "
                      "model. The Human feedback page trains RLHF, GDC, DPO and f-DPO on it."))),
    Scenario("sampled", "Exact vs sampled", "The forward-KL gradient (β = 0.3) from 4 or 256 samples, with Z "
             "known or estimated from the batch; 1000 trials each.", _sampled, (
                 Step("At scale nobody can sum over every sequence: the gradient is sampled and Z is estimated by "
                      "Ẑ from the same batch."),
                 Step("Predict first.", "Is forward KL's sampled gradient with Ẑ from a batch of 4 biased?",
                      ("biased", "no bias detected"), _sampled_reveal),
                 Step("The exact gradient is known here, so every estimator can be checked. The Estimator lab "
                      "varies n, the baseline and Z."))),
    Scenario("restricted", "Mode seeking in a restricted family",
             "A two-mode target on three outcomes; a one-parameter unimodal family.", _restricted, (
                 Step("p has two modes, x₁ and x₃, and a valley x₂. The family can only put one bump anywhere "
                      "along the line x₁ → x₃."),
                 Step("Predict first.", "Which divergence puts more mass in the valley x₂?",
                      ("reverse KL", "forward KL"), _restricted_reveal),
                 Step("Mode seeking vs covering appears when the family cannot represent p — which is the case for "
                      "every real language model."))),
)
