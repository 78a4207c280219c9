"""toyfdiv — the Streamlit app.  Run: streamlit run app.py"""

import numpy as np
import streamlit as st

from toyfdiv import AutoregressivePolicy, divergences, tasks, train

st.set_page_config(page_title="toyfdiv", layout="wide")
st.title("toyfdiv: RLHF and GDC are one method")
st.latex(r"\min_\theta D_f(\pi_\theta \,\|\, p), \qquad p(x) = a(x)\, e^{r(x)/\beta} / Z")


@st.cache_data
def run(name: str, beta: float, steps: int):
    task = tasks.default()
    target = task.target("rlhf", beta=beta)
    hist = train(task.base, target, name, steps=steps, lr=0.1)
    return task.log_a, target.log_probs, hist.policy.log_probs(), hist.final(), task.space.decode_all()


name = st.selectbox("divergence", divergences.names(), index=divergences.names().index("js"),
                    help="Which f-divergence D_f(π‖p) to minimise")
beta = st.slider("β", 0.05, 5.0, 0.5, help="KL coefficient of the RLHF target")
steps = st.slider("steps", 10, 500, 200, help="Adam steps of exact f-DPG")
log_a, log_p, log_pi, final, texts = run(name, beta, steps)
top = np.argsort(-np.exp(log_p))[:10]
st.bar_chart({"base a": np.exp(log_a[top]), "target p": np.exp(log_p[top]), "policy π": np.exp(log_pi[top])})
st.table({"sequence": [texts[i] for i in top], "a": np.exp(log_a[top]), "p": np.exp(log_p[top]), "π": np.exp(log_pi[top])})
st.json(final)
