"""toyfdiv — the Streamlit app.  Run: streamlit run app.py

Every number and figure comes from the toyfdiv library; the pages only choose widgets.

Adding a page: write ``app_pages/<name>.py`` (widgets from ``app_pages.common``; its settings
as rows of ``app_pages.state.FIELDS`` with the page's own key prefix, so they survive page
switches and travel in the URL), then add one ``st.Page`` line to a section of ``SECTIONS``.
"""

from pathlib import Path

import streamlit as st

from app_pages import state, ui

ICON = str(Path(__file__).parent / "app_pages" / "icon.png")  # served by the app itself: no network needed

url_notes = state.from_url()  # a shared link: its settings first (validated), once per session
state.keep()  # every page's settings survive page switches
projector = bool(st.session_state.get("app_projector", False))
st.set_page_config(page_title="toyfdiv: RLHF and GDC are one method", page_icon=ICON, layout="wide",
                   initial_sidebar_state="collapsed" if projector else "auto")
ui.style(projector)

SECTIONS = {
    "Lecture": [
        st.Page("app_pages/scenarios.py", title="Scenarios", icon=":material/school:", url_path="scenarios"),
    ],
    "Explore": [
        st.Page("app_pages/playground.py", title="Playground", icon=":material/tune:", default=True),
        st.Page("app_pages/explorer.py", title="Divergence explorer", icon=":material/functions:",
                url_path="explorer"),
        st.Page("app_pages/estimators.py", title="Estimator lab", icon=":material/casino:", url_path="estimators"),
        st.Page("app_pages/feedback.py", title="Human feedback", icon=":material/thumb_up:", url_path="feedback"),
        st.Page("app_pages/beyond_dpo.py", title="Beyond DPO", icon=":material/diversity_3:", url_path="beyond_dpo"),
        st.Page("app_pages/rl.py", title="RLHF as practised", icon=":material/model_training:", url_path="rl"),
    ],
    "Reference": [
        st.Page("app_pages/glossary.py", title="Glossary and lessons", icon=":material/menu_book:",
                url_path="glossary"),
    ],
}

page = st.navigation(SECTIONS)
with st.sidebar:
    state.init("app_projector")
    st.toggle("Projector mode", key="app_projector",
              help="Large text for the back of the room; the sidebar starts collapsed on the next load")
for note in url_notes:
    st.warning(note)
state.to_url()
page.run()
