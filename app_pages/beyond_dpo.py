"""Beyond DPO: IPO, χ²PO, KTO and the diversity question (pass@k under every f, MARA), side by side."""

import numpy as np
import streamlit as st
from scipy.special import expit, logit, softmax

from app_pages import common
from app_pages.links import lesson_line
from toyfdiv import diversity, metrics, plots_po, tasks
from toyfdiv import feedback as fb
from toyfdiv.exercises import lesson7

P = "po"
TIE = 0.01  # gold-utility differences below this are reported as ties (reward units)
REFS = {
    "ipo": "Azar et al., *A General Theoretical Paradigm to Understand Learning from Human Preferences*, 2023",
    "chipo": "Huang et al., *Correcting the Mythos of KL-Regularization: … χ²-Preference Optimization*, 2024",
    "kto": "Ethayarajh et al., *KTO: Model Alignment as Prospect Theoretic Optimization*, 2024",
    "mara": "GX-Chen et al., *KL-Regularized Reinforcement Learning is Designed to Mode Collapse*, 2025",
}


def formula(latex: str, ref: str, note: str) -> None:
    st.latex(latex)
    st.caption(f"{note} — {REFS[ref]}")


st.title("Beyond DPO: IPO, χ²PO, KTO — and does alignment narrow what a model can do?")
lesson_line("app_pages/beyond_dpo.py")
st.markdown("Every number on this page is an exact optimum over the enumerated space of the film-review task "
            "(N = 781): no sampling, no training noise.")

with st.sidebar:
    st.header("IPO example")
    common.init(f"{P}_tau", 0.5)
    tau = float(st.slider("τ (IPO)", 0.05, 5.0, step=0.05, key=f"{P}_tau", help="IPO's target margin is 1/(2τ)"))
    st.header("Preference data")
    common.init(f"{P}_pairs", 1000)
    common.init(f"{P}_seed", 0)
    pairs = int(st.slider("Pairs from the biased rater", 100, 3000, step=100, key=f"{P}_pairs",
                          help="The lesson-7 rater: likes reviews that mention 'film' (+2 per mention)"))
    seed = int(st.number_input("Seed", 0, 10_000, key=f"{P}_seed", step=1))
    st.header("KTO")
    common.init(f"{P}_kbeta", 0.5)
    common.init(f"{P}_ld", 1.0)
    common.init(f"{P}_lu", 1.0)
    common.init(f"{P}_rho", 0.0)
    kbeta = float(st.slider("β (KTO, ≤ 1)", 0.05, 1.0, step=0.05, key=f"{P}_kbeta",
                              help="KTO's fixed point is unique for β ≤ 1 only (see lesson 10, section 3)"))
    lam_d = float(st.slider("λ_D (desirable weight)", 0.1, 4.0, step=0.1, key=f"{P}_ld"))
    lam_u = float(st.slider("λ_U (undesirable weight)", 0.1, 4.0, step=0.1, key=f"{P}_lu"))
    rho = float(st.slider("Desirable fraction ρ (0 = natural)", 0.0, 0.95, step=0.05, key=f"{P}_rho"))
    st.header("Diversity")
    common.init(f"{P}_dbeta", 0.3)
    common.init(f"{P}_k", 8)
    dbeta = float(st.select_slider("β (diversity)", [0.03, 0.1, 0.3, 1.0, 3.0], key=f"{P}_dbeta"))
    k = int(st.select_slider("k samples", [1, 2, 4, 8, 16, 32, 64], key=f"{P}_k"))


@st.cache_resource(show_spinner=False)
def _task():
    return tasks.default()


@st.cache_resource(max_entries=8, show_spinner="Fitting reward models and solving every method for 25 values of β…")
def gold(pairs: int, seed: int) -> dict:
    task = _task()
    rater = lesson7.biased_rater()
    data = fb.collect_preferences(rater, task.base, pairs, np.random.default_rng(seed))
    rm = fb.fit_reward_model(data, fb.ngram_features(task.space)[0], centre_log_probs=task.log_a)
    curves = fb.gold_utility_curves(task.log_a, data, rater.utility, np.geomspace(10.0, 0.01, 13), rlhf_reward=rm)
    curves["KTO"] = fb.kto_gold_curve(task.log_a, rater.prob_thumbs_up(np.arange(task.space.size)), rater.utility,
                                      np.geomspace(0.95, 0.01, 8))  # thumbs from the same rater, β < 1
    return dict(curves=curves)


@st.cache_data(max_entries=8, show_spinner=False)
def gold_png(pairs: int, seed: int, theme: str) -> bytes:
    return common.png(lambda: plots_po.gold_curves(gold(pairs, seed)["curves"]), theme)


@st.cache_resource(show_spinner="Solving GKD's fixed points over λ × β…")
def gkd_rows() -> list:
    from toyfdiv.distill import gkd_grid

    return gkd_grid(_task().base)


@st.cache_data(max_entries=4, show_spinner=False)
def gkd_png(theme: str) -> tuple[bytes, list]:
    rows = gkd_rows()
    return common.png(lambda: plots_po.gkd_grid(rows), theme), rows


@st.cache_resource(show_spinner="Training GRPO (β = 0.02) to its fixed point, per prompt and shared…")
def collapse_study():
    from toyfdiv import claims, collapse, rl, rl_tasks

    study = collapse.collapse_study(rl_tasks.prompted(success=(0.05, 0.6), vocab=2, length=3),
                                    rl.preset("grpo", beta=0.02), beta=0.02)
    names = list(study.pass_at_k)
    said = [claims.pass_at_k_crossing(study.ks, study.pass_at_k[names[0]], study.pass_at_k[n], n)[1] for n in names[1:]]
    return study, said


@st.cache_data(max_entries=4, show_spinner=False)
def collapse_png(theme: str) -> tuple[bytes, list]:
    study, said = collapse_study()
    return common.png(lambda: plots_po.collapse_curves(study), theme), said


@st.cache_data(max_entries=16, show_spinner=False)
def three_png(tau: float, ipo: tuple, theme: str) -> bytes:
    return common.png(lambda: plots_po.three_outputs({f"IPO (τ = {tau:g})": ipo, "DPO (limit, any β)": [1.0, 0.0, 0.0],
                                                      "reference": [1 / 3] * 3}), theme)


@st.cache_resource(max_entries=32, show_spinner=False)
def kto(kbeta: float, lam_d: float, lam_u: float, rho: float):
    task = _task()
    return fb.kto_fixed_point(task.log_a, expit(task.reward.values - 0.5), kbeta, sampling_log_probs=task.log_a,
                              lambda_d=lam_d, lambda_u=lam_u, desirable_fraction=None if rho == 0 else rho)


# ---------------------------------------------------------------------------- 1 IPO
st.subheader("1 · IPO: a finite target where DPO's regularisation vanishes")
formula(r"\mathcal L_{\mathrm{IPO}} = \Big(\log\tfrac{\pi(w)}{\pi_{\mathrm{ref}}(w)} - \log\tfrac{\pi(l)}{\pi_{\mathrm{ref}}(l)}"
        r" - \tfrac{1}{2\tau}\Big)^2", "ipo", "three outputs, uniform reference, one pair a ≻ b")
space3 = fb.PreferenceDataset(np.array([0]), np.array([1]), 3)
ipo = np.exp(fb.ipo_dataset_optimum(np.log(np.full(3, 1 / 3)), space3, tau))
closed = softmax([1 / (4 * tau), -1 / (4 * tau), 0.0])
c = st.columns(3)
for j, name in enumerate("abc"):
    c[j].metric(f"IPO π({name})", f"{ipo[j]:.3f}")
st.markdown(f"IPO settles at softmax(1/(4τ), −1/(4τ), 0) = ({closed[0]:.3f}, {closed[1]:.3f}, {closed[2]:.3f}) "
            f"(library optimum within {np.abs(ipo - closed).max():.1e}). DPO's loss −log σ(β Δ) has no minimiser: "
            "it falls all the way to π(a) = 1 at every β.")
common.show_png(three_png(tau, tuple(ipo), common.theme()))

# ---------------------------------------------------------------------------- 2 gold curves
st.subheader("2 · Over-optimisation: gold utility of each method's exact optimum against β")
formula(r"\begin{gathered}\chi\mathrm{PO}:\ \beta\log z \;\to\; \beta(z + \log z),\\ z + \log z = \frac{r-\lambda}"
        r"{\beta},\quad z = \pi^\star/\pi_{\mathrm{ref}}\end{gathered}", "chipo", "one-line change of DPO's link; mixed χ² + KL target")
with common.explained(what="The gold curves cannot be computed"):
    g = gold(pairs, seed)
rows = [dict(method=m, peak=c.peak, peak_beta=c.peak_beta, at_smallest_beta=float(c.gold[-1]), decline=c.decline)
        for m, c in g["curves"].items()]
common.table(common.frame(rows, {"method": "method", "peak": "peak E[u]", "peak_beta": "at β",
                                 "at_smallest_beta": "E[u] at β = 0.01", "decline": "decline after peak"}), key=f"{P}_gold")
declining = [r["method"] for r in rows if r["decline"] > TIE]
best = max(rows, key=lambda r: r["peak"])
st.markdown(f"Declining after their peak (by more than {TIE} reward units): **{', '.join(declining) or 'none'}**. "
            f"Highest peak: **{best['method']}** ({best['peak']:.3f} at β = {best['peak_beta']:.3g}).")
common.show_png(gold_png(pairs, seed, common.theme()))

# ---------------------------------------------------------------------------- 3 KTO
st.subheader("3 · KTO's fixed point: a filter on the thumbs-up odds")
formula(r"v(x) = \lambda_D\,\sigma(\beta(h - z_0))\ \text{or}\ \lambda_U\,\sigma(\beta(z_0 - h)),\quad z_0 = "
        r"\mathrm{KL}(\pi\|\pi_{\mathrm{ref}})", "kto", "thumbs from a logistic rater, P(👍|x) = σ(u(x) − 0.5)")
task = _task()
s = expit(task.reward.values - 0.5)
with common.explained(what="The KTO fixed point cannot be computed"):
    fp = kto(kbeta, lam_d, lam_u, rho)
p_rlhf = fb.dpo_optimum(task.log_a, logit(s), kbeta)
u = task.reward.values
ks = fb.kto_support(fp, s, p_rlhf)  # what KTO keeps, and RLHF/DPO's mass outside it
c = st.columns(4)
c[0].metric("KTO support", f"{ks.kept} / {task.space.size}")
c[1].metric("log-odds threshold", f"{fp.threshold:.3f}")
c[2].metric("E[u]: KTO vs RLHF/DPO", f"{metrics.expectation(fp.log_probs, u):.3f} vs "
             f"{metrics.expectation(p_rlhf, u):.3f}")
c[3].metric("RLHF/DPO mass outside KTO's support", f"{ks.other_mass_outside:.3f}")
kept = ("KTO keeps exactly the outputs whose thumbs-up log-odds exceed " + f"{fp.threshold:.3f}"
        if ks.odds_filter_only else
        f"KTO keeps {ks.kept} of the {ks.above_threshold} outputs whose thumbs-up log-odds exceed "
        f"{fp.threshold:.3f} (at β = 1 a second filter, κ π_ref < (A − B) e^(−z₀), drops the rest)")
st.markdown(f"{kept}; z₀ = KL(π‖π_ref) = {fp.z0:.3f} nats at the fixed point. RLHF and DPO with the same logistic "
            f"reward keep {'every one' if ks.other_kept == task.space.size else ks.other_kept} of the "
            f"{task.space.size} outputs (π_ref·exp(r/β)/Z, smallest probability {ks.other_smallest:.1e}), "
            f"{ks.other_mass_outside:.3f} of their mass outside KTO's support.")

# ---------------------------------------------------------------------------- 4 diversity
st.subheader("4 · Diversity: pass@k and distinct correct answers under every f")
formula(r"\mathrm{pass@}k = 1-(1-P_\pi(\mathrm{correct}))^k,\qquad \pi^\star_f = a\,(f')^{-1}\!\big((r-\lambda)/\beta\big)",
        "mara", "correct = positive sentiment; reward = 1 if correct")
correct = u > 0
rows = diversity.diversity_rows(task.log_a, correct.astype(float), correct, [dbeta],
                                ["reverse_kl", "forward_kl", "js", "hellinger", "pearson", "alpha(0.5)", "tv"], k=k)
for name, lp in (("MARA (reverse KL)", diversity.mara_target(task.log_a, correct.astype(float), dbeta, 0.5)),
                 ("MARA (forward KL)", diversity.mara_target(task.log_a, correct.astype(float), dbeta, 0.5, "forward_kl"))):
    rows.append(dict(divergence=name, beta=dbeta, p_correct=diversity.p_correct(lp, correct),
                     pass_at_k=diversity.pass_at_k_policy(lp, correct, k),
                     distinct_correct=diversity.expected_distinct_correct(lp, correct, k)))
rows.append(dict(divergence="base model a", beta=np.nan, p_correct=diversity.p_correct(task.log_a, correct),
                 pass_at_k=diversity.pass_at_k_policy(task.log_a, correct, k),
                 distinct_correct=diversity.expected_distinct_correct(task.log_a, correct, k)))
common.table(common.frame(rows, {"divergence": "target", "p_correct": "P(correct)", "pass_at_k": f"pass@{k}",
                                 "distinct_correct": f"E[# distinct correct in {k}]"}), key=f"{P}_div")
base_pass = rows[-1]["pass_at_k"]
lost = [r["divergence"] for r in rows[:-1] if r["pass_at_k"] < base_pass - 1e-12]
st.markdown(f"Exact targets that lose pass@{k} against the base model: **{', '.join(lost) or 'none'}** — as the "
            "theorem says (reward increasing in correctness ⇒ P(correct) never drops). Within the correct answers "
            "every f keeps a's ratios; MARA equalises them under reverse KL.")
common.init(f"{P}_collapse", False)
if st.checkbox("Where training loses it: GRPO at β = 0.02 trained to its fixed point, one policy per prompt vs "
               "one adapter shared by a hard and an easy prompt (a few seconds)", key=f"{P}_collapse"):
    png, said = collapse_png(common.theme())
    st.markdown("\n\n".join(said))
    common.show_png(png)
st.subheader("5 · On-policy distillation (GKD)")
common.init(f"{P}_gkd", False)
if st.checkbox("Solve GKD's fixed points for a unigram student of the bigram base model (a few seconds)",
               key=f"{P}_gkd"):
    png, grid = gkd_png(common.theme())
    fwd = next(r for r in grid if r["lam"] == 0 and r["beta"] == 0)
    rev = next(r for r in grid if r["lam"] == 1 and r["beta"] == 1)
    st.markdown(f"Supervised forward KL (λ = 0, β = 0): student entropy {fwd['entropy']:.3f} nats; on-policy reverse "
                f"KL (λ = 1, β = 1): {rev['entropy']:.3f} nats — "
                + ("higher: the detached sampler makes token-level reverse KL average the teacher's conditionals "
                   "geometrically, which is flatter here." if rev["entropy"] > fwd["entropy"] + TIE else
                   "lower: reverse KL locks on." if rev["entropy"] < fwd["entropy"] - TIE else "a tie (within 0.01)."))
    common.show_png(png)
