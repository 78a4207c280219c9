"""Glossary and lessons: the words the pages use, and which lesson goes with which page."""

import streamlit as st

from app_pages.links import LESSONS, PAGE_LESSONS

st.title("Glossary and lessons")

TERMS = {
    "nats": "The unit of a divergence or an entropy computed with the natural logarithm (1 nat = 1/ln 2 bits). "
            "KL = 0.69 nats is one bit.",
    "f-divergence D_f(π‖p)": "Σ_x p(x) f(π(x)/p(x)) for a convex f with f(1) = 0: zero exactly when π = p. The policy π "
                             "comes first, the target p second. Reverse KL (RLHF) is f(t) = t log t; forward KL "
                             "(GDC/DPG) is f(t) = −log t.",
    "target p": "The distribution the policy should become. RLHF: p = a·exp(r/β)/Z; GDC: p = a·b·exp(λ·φ)/Z.",
    "base model a": "The pretrained model every run starts from.",
    "log Z": "The logarithm of the partition function Z = Σ_x a(x)·exp(r(x)/β) (or a·b·exp(λ·φ)) that normalises "
             "the target.",
    "pseudo-reward": "R(x) = −f′(π(x)/p(x)): minimising D_f is REINFORCE with this reward (f-DPG).",
    "mode-seeking / mass-covering": "A divergence that prefers π to sit on one high-probability region of p "
                                    "(reverse KL) vs one that prefers π to cover all of p's mass (forward KL). It "
                                    "shows only when the policy cannot represent p exactly.",
    "ESS": "Effective sample size of importance weights w: (Σw)²/Σw². With n samples, ESS = n means the proposal "
           "matches; ESS ≈ 1 means one sample carries all the weight.",
    "noise floor": "The size a measured bias ‖E ĝ − g‖ would have from sampling noise alone, √(tr Cov ĝ / trials). "
                   "A bias is called a bias only above 3 noise floors.",
    "distinct in 100": "The expected number of different sequences in 100 samples from π: Σ_x 1 − (1 − π(x))^100. "
                       "A collapsed policy keeps few; the diversity a lecture can see.",
    "tie": "Two numbers whose difference is within the stated threshold (noise, or a relative 5 %) are called a "
           "tie: the app declares no winner.",
    "β": "The KL coefficient of RLHF: small β trusts the reward, large β stays near a. (The generalised JS's "
         "mixture weight is called w in the app, to avoid a second β.)",
    "ε": "The smoothing of a GDC constraint: b(x) = ε instead of 0 where the constraint fails; ε > 0 keeps reverse "
         "KL finite.",
}
for term, text in TERMS.items():
    st.markdown(f"**{term}** — {text}")

st.header("Lessons and pages")
st.caption("The lessons are jupytext files under `lessons/` (open the paired .ipynb in Jupyter).")
for page, names in PAGE_LESSONS.items():
    title = page.split("/")[-1].removesuffix(".py").replace("_", " ").capitalize()
    cols = st.columns([1, 3])
    cols[0].page_link(page, label=title)
    cols[1].markdown("; ".join(f"{LESSONS[n]} (`lessons/{n}`)" for n in names))
