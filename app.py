"""toyfdiv — the Streamlit app.  Run: streamlit run app.py

Pages (app_pages/): Playground (default), Divergence explorer, Estimator lab, Human feedback.
Every number and figure comes from the toyfdiv library; the pages only choose widgets.
"""

import streamlit as st

st.set_page_config(page_title="toyfdiv: RLHF and GDC are one method", page_icon=":material/tune:", layout="wide")

from app_pages import common  # noqa: E402  (after set_page_config)

common.style()
PAGES = [
    st.Page("app_pages/playground.py", title="Playground", icon=":material/tune:", default=True),
    st.Page("app_pages/explorer.py", title="Divergence explorer", icon=":material/functions:"),
    st.Page("app_pages/estimators.py", title="Estimator lab", icon=":material/casino:"),
    st.Page("app_pages/feedback.py", title="Human feedback", icon=":material/thumb_up:"),
    st.Page("app_pages/beyond_dpo.py", title="Beyond DPO", icon=":material/diversity_3:"),
    st.Page("app_pages/rl.py", title="RLHF as practised", icon=":material/model_training:"),
]
st.navigation(PAGES).run()
