"""Human feedback: simulated raters → reward model → RLHF, GDC, DPO and f-DPO side by side."""

import numpy as np
import streamlit as st

from app_pages import common
from app_pages.links import lesson_line
from toyfdiv import claims, divergences, experiments, feedback, metrics, plots, targets, train

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
lesson_line("app_pages/feedback.py")
st.markdown("A hidden **true utility** u (sentiment) is judged by simulated raters who are noisy (τ) and biased "
            "(they like long answers: b per token). A **reward model** r̂ is fitted to their pairwise choices. "
            "RLHF (reverse KL) and forward KL both chase p_β = a·exp(r̂/β)/Z; DPO and f-DPO skip r̂ and learn "
            "from the pairs directly. Forward KL to p_β is GDC-style: p_β is the GDC target of the moment "
            "constraint E_p[r̂] = E_{p_β}[r̂], not a constraint anyone wrote down.")
c1, c2 = st.columns(2)
with c1:
    common.formula(r"\begin{gathered}P(x \succ y) = \sigma\!\left(\frac{\tilde u(x)-\tilde u(y)}{\tau}\right),\\ "
                   r"\tilde u = u + b\,|x|\end{gathered}",
                   "bt", note="simulated raters: noise τ, bias b")
    common.formula(r"\begin{gathered}\mathcal L_{\mathrm{DPO}} = -\log\sigma\big(\beta\log t_w - \beta\log t_l\big),"
                   r"\\ t = \pi/\pi_{\mathrm{ref}}\end{gathered}", "dpo", note="DPO: the reward model folded into the policy")
with c2:
    common.formula(r"p_\beta(x) = \frac{a(x)\,e^{\hat r(x)/\beta}}{Z}", "korbak",
                   note="RLHF (reverse KL) and forward KL both target p_β; read as the I-projection with "
                        "E_p[r̂] fixed, p_β is a GDC distributional target (Khalifa et al. 2021)")
    common.formula(r"\mathcal L_{f} = -\log\sigma\big(\beta f'(t_w) - \beta f'(t_l)\big)", "fdpo",
                   note="f-DPO: any f with f′(0⁺) = −∞ (reverse KL gives DPO back)")

with st.sidebar:
    st.header("Space")
    space = common.space_controls(P)
    st.header("Raters")
    tau = float(common.slider("Noise τ", f"{P}_tau",
                              "Rater temperature: small τ is a careful rater, large τ a coin flip"))
    bias = float(common.slider("Length bias b (per token)", f"{P}_bias",
                               "Raters add b per token to what they perceive: a misspecified reward"))
    pairs = int(common.slider("Pairwise comparisons", f"{P}_pairs",
                              "Judgements collected on pairs sampled from the base model (20% held out)"))
    st.header("Reward model")
    rm_kind = common.choice("Reward model", f"{P}_rm", "tabular: one value per sequence; linear: a weight per "
                            "token and per bigram", widget=st.radio, horizontal=True)
    l2 = float(common.choice("L2 strength", f"{P}_l2", "Prior precision of the Bradley–Terry fit: larger is "
                             "smoother", widget=st.select_slider))
    st.header("Alignment")
    beta = float(common.slider("β (KL coefficient)", f"{P}_beta",
                               "KL coefficient shared by every method (p_β, DPO and f-DPO)"))
    fdiv = common.divergence_options(P, "fdiv", label="f-DPO divergence", multi=False, allowed=FDPO_CHOICES,
                                     help="f-DPO needs f′(t) → −∞ at 0: TV and Pearson χ² are not allowed")[0]
    policy = common.choice("Policy family", f"{P}_policy", "Every method starts from the base model a in this "
                           "family")
    steps = int(common.slider("Steps", f"{P}_steps", "Updates per method"))
    lr = float(common.choice("Learning rate", f"{P}_lr", "Adam step size, the same for every method",
                             widget=st.select_slider))
    seed = int(common.number_input("Seed", f"{P}_seed", "Seeds which pairs are sampled and how the raters' coins "
                                   "fall", step=1))

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
    rm = feedback.fit_reward_model(train_set, features, l2=l2, centre_log_probs=task.log_a)
    curve = feedback.overoptimisation_curve(task.log_a, rm.values, rater.utility)
    return dict(rater=rater, train=train_set, held_out=held_out, rm=rm, eval=feedback.evaluate(rm, held_out),
                bayes=feedback.bayes_accuracy(rater, task.base), curve=curve)


@st.cache_data(max_entries=32, show_spinner=False)
def curve_png(task_key, tau, bias, pairs, rm_kind, l2, seed, theme) -> bytes:
    curve = fit(task_key, tau, bias, pairs, rm_kind, l2, seed)["curve"]
    return common.png(lambda: plots.overoptimisation(curve), theme)


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
            help="The raters' own consistency: the expected accuracy of the true preference model on base-model "
                 "pairs")
m[3].metric("Log-loss, nats", f"{fitted['eval'].log_loss:.3f}",
            help="Bradley–Terry negative log-likelihood of r̂ on the held-out pairs")
st.markdown(claims.accuracy_vs_bayes(fitted["eval"].accuracy, fitted["bayes"], len(fitted["held_out"]))[1])

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
common.show_png(curve_png(task_key, tau, bias, pairs, rm_kind, l2, seed, common.theme()))

st.subheader(f"3 · RLHF, forward KL, DPO and f-DPO at β = {beta:g}")
exact_rows = [dict(method="target p_β (RLHF and forward-KL optimum)", **judge(proxy_target.log_probs, proxy_target,
                                                                       true_target))]
fdpo_opt = None
with common.explained(stop=False, what="The f-DPO optimum cannot be computed"):
    fdpo_opt = feedback.fdpo_optimum(task.log_a, fitted["rm"].values, beta, fdiv)
    exact_rows.append(dict(method=f"f-DPO optimum for r̂ ({fdiv})", **judge(fdpo_opt, proxy_target, true_target)))
exact_rows.append(dict(method="base model a", **judge(task.log_a, proxy_target, true_target)))
if fdpo_opt is not None:
    top = float(divergences.get(fdiv).f_prime(np.array([1e300]))[0])  # f′(∞): finite for JS, Hellinger, α < 1
    h_opt, h_p = metrics.entropy(fdpo_opt), metrics.entropy(proxy_target.log_probs)
    if np.isfinite(top) and h_p - h_opt > claims.ENTROPY_TIE:
        st.caption(f"Why the f-DPO optimum differs from p_β: for {fdiv}, f′ is bounded above (f′(∞) = {top:.3g}), so "
                   f"π* = a·(f′)⁻¹((r̂ − λ)/β) concentrates its mass where (r̂ − λ)/β comes closest to that bound — r̂'s top "
                   f"sequences: H = {h_opt:.4f} nats against p_β's {h_p:.4f} (a gap above the tie threshold of "
                   f"{claims.ENTROPY_TIE} nats).")
st.caption("Exact optima (what infinite data and capacity would give):")
columns = {"method": "method", "true_utility": "E[u] (true)", "proxy_reward": "E[r̂] (proxy)",
           "kl_from_base": "KL(π‖a)", "kl_to_p_beta": "KL(π‖p_β)", "entropy": "H(π)"}
common.table(common.frame(exact_rows, columns), key=f"{P}_exact")

run_key = (task_key, tau, bias, pairs, rm_kind, l2, seed, beta, fdiv, policy, steps, lr)
clicked = st.button("Train RLHF, forward KL, DPO and f-DPO", type="primary", key=f"{P}_train",
                    help="Four policies from the base model: RLHF and forward KL on r̂ (f-DPG), DPO and f-DPO on the pairs")
if clicked:
    bar = st.progress(0.0, text="Training…")
    with common.explained(stop=False, what="Training failed"):
        start = experiments.make_policy(task, policy)
        total = 4 * steps
        runs = {}
        for j, (label, div) in enumerate((("RLHF", "reverse_kl"), ("GDC-style", "forward_kl"))):
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
                                               proxy=proxy_target, true=true_target, beta=beta, png={},
                                               fdpo_opt=fdpo_opt,
                                               turning_true=curve.turning_true)
    bar.empty()

result = st.session_state.get(f"{P}_result")
if result is None or result["key"][0] != task_key:
    st.info("Press **Train** to fit the four methods (a second or two at the defaults).")
else:
    if result["key"] != run_key:
        st.warning(f"**Stale: the settings changed since this run.** The table, the sentences and the chart below "
                   f"all belong to the previous settings (β = {result['beta']:g}, its p_β and r̂). Press **Train** "
                   "to update them.", icon=":material/history:")
    rows = [dict(method=k, **judge(v, result["proxy"], result["true"])) for k, v in result["runs"].items()]
    st.caption(f"Trained policies (same start, same β = {result['beta']:g}, same steps): RLHF = reverse KL on r̂, "
               f"GDC-style = forward KL to p_β (both f-DPG), DPO and f-DPO ({result['key'][8]}) learn from the "
               "pairs directly.")
    common.table(common.frame(rows, columns), key=f"{P}_trained")
    notes = []
    best = result["turning_true"]
    for r in rows:
        if r["true_utility"] > best + 1e-9:
            notes.append(f"{r['method']} reaches E[u] = {r['true_utility']:.3f}, above the best p_β on the curve "
                         f"({best:.3f}): the curve ranges only over p_β for r̂; a policy outside that family can "
                         "do better on the truth.")
    opt = result.get("fdpo_opt")
    if opt is not None and "f-DPO" in result["runs"]:
        gap = metrics.kl(result["runs"]["f-DPO"], opt)
        if gap > 0.05:
            notes.append(f"Trained f-DPO is KL = {gap:.2f} nats from the exact f-DPO optimum for r̂ (threshold 0.05): "
                         "after this many steps it has not reached it — and it learns from the pairs, not from r̂, so "
                         "its optimum differs whenever r̂ does not fit the pairs exactly.")
    for n in notes:
        st.markdown(n)
    theme = common.theme()
    if theme not in result["png"]:
        dists = {"target": result["proxy"].log_probs, "base": task.log_a, **result["runs"]}
        result["png"][theme] = common.png(lambda: plots.distributions(
            task.space, dists, k=10, log=True, title="Top 10 sequences of p_β: each method's probability"), theme)
    common.show_png(result["png"][theme])
