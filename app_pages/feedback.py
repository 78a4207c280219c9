"""Human feedback: simulated raters → reward model → RLHF, GDC, DPO and f-DPO side by side."""

import numpy as np
import streamlit as st

from app_pages import common
from toyfdiv import divergences, experiments, feedback, metrics, plots, targets, train

P = "hf"
FDPO_CHOICES = []
for _name in divergences.names():
    try:
        feedback.check_divergence(_name)
        FDPO_CHOICES.append(_name)
    except ValueError:
        pass
FEEDBACK_MAX_N = 5_000  # the exact pair sums of the feedback library (its own limit is N² ≤ 25M)

st.title("Human feedback: from raters to aligned policies")
st.markdown("A hidden **true utility** u (sentiment) is judged by simulated raters who are noisy (τ) and biased "
            "(they like long answers: b per token). A **reward model** r̂ is fitted to their pairwise choices. "
            "RLHF and GDC then chase p_β = a·exp(r̂/β)/Z; DPO and f-DPO skip r̂ and learn from the pairs directly.")
c1, c2 = st.columns(2)
with c1:
    common.formula(r"P(x \succ y) = \sigma\!\left(\frac{\tilde u(x)-\tilde u(y)}{\tau}\right),\quad \tilde u = u + b\,|x|",
                   "bt", note="simulated raters: noise τ, bias b")
    common.formula(r"\mathcal L_{\mathrm{DPO}} = -\log\sigma\big(\beta\log t_w - \beta\log t_l\big),\quad "
                   r"t = \pi/\pi_{\mathrm{ref}}", "dpo", note="DPO: the reward model folded into the policy")
with c2:
    common.formula(r"p_\beta(x) = \frac{a(x)\,e^{\hat r(x)/\beta}}{Z}", "korbak", "gdc",
                   note="RLHF (reverse KL) and GDC (forward KL) both target p_β")
    common.formula(r"\mathcal L_{f} = -\log\sigma\big(\beta f'(t_w) - \beta f'(t_l)\big)", "fdpo",
                   note="f-DPO: any f with f′(0⁺) = −∞ (reverse KL gives DPO back)")

with st.sidebar:
    st.header("Space")
    space = common.space_controls(P)
    st.header("Raters")
    common.init(f"{P}_tau", 2.0)
    common.init(f"{P}_bias", 2.0)
    common.init(f"{P}_pairs", 100)
    tau = float(st.slider("Noise τ", 0.1, 5.0, step=0.1, key=f"{P}_tau",
                          help="Rater temperature: small τ is a careful rater, large τ a coin flip"))
    bias = float(st.slider("Length bias b (per token)", -2.0, 2.0, step=0.1, key=f"{P}_bias",
                           help="Raters add b per token to what they perceive: a misspecified reward"))
    pairs = int(st.slider("Pairwise comparisons", 20, 5000, step=20, key=f"{P}_pairs",
                          help="Judgements collected on pairs sampled from the base model (20% held out)"))
    st.header("Reward model")
    common.init(f"{P}_rm", "linear")
    common.init(f"{P}_l2", 1.0)
    rm_kind = st.radio("Reward model", ["tabular", "linear"], key=f"{P}_rm", horizontal=True,
                       help="tabular: one value per sequence; linear: a weight per token and per bigram")
    l2 = float(st.select_slider("L2 strength", [0.01, 0.1, 1.0, 10.0, 100.0], key=f"{P}_l2",
                                help="Prior precision of the Bradley–Terry fit: larger is smoother"))
    st.header("Alignment")
    common.init(f"{P}_beta", 0.3)
    beta = float(st.slider("β", 0.05, 5.0, step=0.05, key=f"{P}_beta",
                           help="KL coefficient shared by every method (p_β, DPO and f-DPO)"))
    fdiv = common.divergence_options(P, "fdiv", ["js"], label="f-DPO divergence", multi=False,
                                     allowed=FDPO_CHOICES,
                                     help="f-DPO needs f′(t) → −∞ at 0: TV and Pearson χ² are not allowed")[0]
    common.init(f"{P}_policy", "autoregressive")
    policy = st.selectbox("Policy family", ["autoregressive", "tabular", "ngram"], key=f"{P}_policy",
                          help="Every method starts from the base model a in this family")
    common.init(f"{P}_steps", 200)
    common.init(f"{P}_lr", 0.05)
    common.init(f"{P}_seed", 0)
    steps = int(st.slider("Steps", 1, 1000, key=f"{P}_steps", help="Updates per method"))
    lr = float(st.select_slider("Learning rate", [0.01, 0.02, 0.05, 0.1, 0.2, 0.5], key=f"{P}_lr",
                                help="Adam step size, the same for every method"))
    seed = int(st.number_input("Seed", 0, 10_000, key=f"{P}_seed", step=1,
                               help="Seeds which pairs are sampled and how the raters' coins fall"))

common.check_size(space["task"], space["length"], space["eos"], limit=common.APP_MAX_N)
task_key = (space["task"], space["length"], space["eos"])


@st.cache_resource(max_entries=32, show_spinner=False)
def fit(task_key: tuple, tau: float, bias: float, pairs: int, rm_kind: str, l2: float, seed: int) -> dict:
    """Raters → dataset (train / held out) → reward model r̂ → evaluation and over-optimisation curve."""
    task = common.get_task(*task_key)
    rater = feedback.Rater.for_task(task, temperature=tau, length_bias=bias)
    rng = np.random.default_rng(seed)
    data = feedback.collect_preferences(rater, task.base, pairs, rng)
    train_set, held_out = data.split(0.2, rng)
    features = None if rm_kind == "tabular" else feedback.ngram_features(task.space)[0]
    rm = feedback.fit_reward_model(train_set, features, l2=l2, center_log_probs=task.log_a)
    curve = feedback.overoptimisation_curve(task.log_a, rm.values, rater.utility)
    return dict(rater=rater, train=train_set, held_out=held_out, rm=rm, eval=feedback.evaluate(rm, held_out),
                bayes=feedback.bayes_accuracy(rater, task.base), curve=curve,
                curve_png=common.png(plots.overoptimisation(curve)))


def judge(log_pi, proxy_target, true_target) -> dict:
    """Library metrics of one distribution: true utility, proxy reward, KL from a, KL to p_β, entropy."""
    m = metrics.evaluate(log_pi, proxy_target, divergences=[divergences.get("reverse_kl")])
    return dict(true_utility=metrics.alignment(log_pi, true_target)["reward"], proxy_reward=m["alignment/reward"],
                kl_from_base=m["kl_from_base"], kl_to_p_beta=m["divergence/reverse_kl"], entropy=m["entropy"])


if space["n"] > FEEDBACK_MAX_N:
    st.warning(f"N = {space['n']:,} sequences: the exact feedback sums run over all N² pairs; the library "
               "may refuse this space (it says so below).")
with common.explained(what="Feedback cannot be simulated on this space"):
    task = common.get_task(*task_key)
    fitted = fit(task_key, tau, bias, pairs, rm_kind, l2, seed)
    proxy_target = targets.rlhf(task.log_a, fitted["rm"].values, beta)
    true_target = targets.rlhf(task.log_a, fitted["rater"].utility, beta)
curve = fitted["curve"]

st.subheader("1 · Raters and reward model")
m = st.columns(4)
m[0].metric("Pairs for training", f"{len(fitted['train']):,}", help="The rest is held out")
m[1].metric("r̂ accuracy, held out", f"{fitted['eval'].accuracy:.3f}",
            help="How often r̂ agrees with the raters on held-out pairs")
m[2].metric("Bayes accuracy", f"{fitted['bayes']:.3f}",
            help="The raters' own consistency (Bayes accuracy on base-model pairs): noise caps any model")
m[3].metric("Log-loss, nats", f"{fitted['eval'].log_loss:.3f}",
            help="Bradley–Terry negative log-likelihood of r̂ on the held-out pairs")

st.subheader("2 · Over-optimisation: the proxy rises, the truth peaks")
common.formula(r"\beta^\star = \arg\max_\beta\ \mathbb E_{p_\beta}[u],\qquad p_\beta \propto a\,e^{\hat r/\beta}", "gao",
               note="exact expectations over the space, no sampling")
m = st.columns(3)
m[0].metric("Best β for the truth", f"{curve.turning_beta:.4g}", help="β* maximising E_{p_β}[u]")
m[1].metric("True utility at β*", f"{curve.turning_true:.4f}", help="E_{p_β*}[u]")
m[2].metric("KL(p_β*‖a), nats", f"{curve.turning_kl:.4f}", help="How far from the base model the best target is")
if curve.is_overoptimised:
    st.markdown("**Over-optimised:** past β*, pushing harder on r̂ *lowers* the true utility.")
else:
    st.markdown("No over-optimisation on this grid: r̂ is close enough to u. Raise the length bias or cut the "
                "number of pairs to see Goodhart's law.")
common.show_png(fitted["curve_png"])

st.subheader(f"3 · RLHF, GDC, DPO and f-DPO at β = {beta:g}")
exact_rows = [dict(method="target p_β (RLHF and GDC optimum)", **judge(proxy_target.log_probs, proxy_target,
                                                                       true_target))]
with common.explained(stop=False, what="The f-DPO optimum cannot be computed"):
    fdpo_opt = feedback.fdpo_optimum(task.log_a, fitted["rm"].values, beta, fdiv)
    exact_rows.append(dict(method=f"f-DPO optimum for r̂ ({fdiv})", **judge(fdpo_opt, proxy_target, true_target)))
exact_rows.append(dict(method="base model a", **judge(task.log_a, proxy_target, true_target)))
st.caption("Exact optima (what infinite data and capacity would give):")
columns = {"method": "method", "true_utility": "E[u] (true)", "proxy_reward": "E[r̂] (proxy)",
           "kl_from_base": "KL(π‖a)", "kl_to_p_beta": "KL(π‖p_β)", "entropy": "H(π)"}
common.table(common.frame(exact_rows, columns), key=f"{P}_exact")

run_key = (task_key, tau, bias, pairs, rm_kind, l2, seed, beta, fdiv, policy, steps, lr)
clicked = st.button("Train RLHF, GDC, DPO and f-DPO", type="primary", key=f"{P}_train",
                    help="Four policies from the base model: RLHF and GDC on r̂ (f-DPG), DPO and f-DPO on the pairs")
if clicked:
    bar = st.progress(0.0, text="Training…")
    with common.explained(stop=False, what="Training failed"):
        start = experiments.make_policy(task, policy)
        total = 4 * steps
        runs = {}
        for j, (label, div) in enumerate((("RLHF", "reverse_kl"), ("GDC", "forward_kl"))):
            def progress(k: int, _n: int, j: int = j) -> None:
                if k % max(1, steps // 50) == 0:
                    bar.progress((j * steps + k) / total, text=f"Training… {j * steps + k}/{total} updates")

            runs[label] = train(start, proxy_target, div, steps=steps, lr=lr, callback=progress).policy
        bar.progress(0.5, text="Training DPO…")
        runs["DPO"] = feedback.train_dpo(start, task.log_a, fitted["train"], beta, steps=steps, lr=lr).policy
        bar.progress(0.75, text=f"Training f-DPO ({fdiv})…")
        runs["f-DPO"] = feedback.train_fdpo(start, task.log_a, fitted["train"], beta, fdiv,
                                                             steps=steps, lr=lr).policy
        st.session_state[f"{P}_result"] = dict(key=run_key, runs={k: v.log_probs() for k, v in runs.items()},
                                               png=None)
    bar.empty()

result = st.session_state.get(f"{P}_result")
if result is None or result["key"][0] != task_key:
    st.info("Press **Train** to fit the four methods (a second or two at the defaults).")
else:
    if result["key"] != run_key:
        st.warning("The settings changed since this run: the table below is for the previous settings. "
                   "Press **Train** to update it.")
    rows = [dict(method=k, **judge(v, proxy_target, true_target)) for k, v in result["runs"].items()]
    st.caption(f"Trained policies (same start, same β, same steps): RLHF = reverse KL on r̂, GDC = forward KL "
               f"on r̂ (both f-DPG towards p_β), DPO and f-DPO ({result['key'][8]}) learn from the pairs directly.")
    common.table(common.frame(rows, columns), key=f"{P}_trained")
    if result["png"] is None:
        dists = {"target": proxy_target.log_probs, "base": task.log_a, **result["runs"]}
        result["png"] = common.png(plots.distributions(task.space, dists, k=10,
                                                       title="Top 10 sequences of p_β: each method's probability"))
    common.show_png(result["png"])
