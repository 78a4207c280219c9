"""toyfdiv — the Streamlit app.  Run: streamlit run app.py

Every number and figure comes from the toyfdiv library; the pages only choose widgets.

This file has two roles.  Streamlit runs it as ``__main__`` for every visit and rerun: that is
:func:`main`, the pages and their navigation.  ``streamlit run app.py`` also imports it once as
a module, finds ``app`` (an ``st.App`` serving this same file) and starts the server with its
lifespan, which warms the process up in the background for the first visitor (:mod:`app_pages.warmup`).

Adding a page: write ``app_pages/<name>.py`` (widgets from ``app_pages.common``; its settings
as rows of ``app_pages.state.FIELDS`` with the page's own key prefix, so they survive page
switches and travel in the URL), then add one ``st.Page`` line to a section of ``SECTIONS``.
"""

from pathlib import Path

import streamlit as st

ICON = str(Path(__file__).parent / "app_pages" / "icon.png")  # served by the app itself: no network needed

SECTIONS = {
    "Lecture": [
        ("app_pages/scenarios.py", "Scenarios", ":material/school:", "scenarios"),
    ],
    "Explore": [
        ("app_pages/playground.py", "Playground", ":material/tune:", None),  # the default page
        ("app_pages/explorer.py", "Divergence explorer", ":material/functions:", "explorer"),
        ("app_pages/estimators.py", "Estimator lab", ":material/casino:", "estimators"),
        ("app_pages/feedback.py", "Human feedback", ":material/thumb_up:", "feedback"),
        ("app_pages/beyond_dpo.py", "Beyond DPO", ":material/diversity_3:", "beyond_dpo"),
        ("app_pages/rl.py", "RLHF as practised", ":material/model_training:", "rl"),
    ],
    "Reference": [
        ("app_pages/glossary.py", "Glossary and lessons", ":material/menu_book:", "glossary"),
    ],
}


def main() -> None:
    """One run of the app: settings from the URL and the session, the page chosen, the page run."""
    from app_pages import state, ui

    url_notes = state.from_url()  # a shared link: its settings first (validated), once per session
    state.keep()  # every page's settings survive page switches
    projector = bool(st.session_state.get("app_projector", False))
    st.set_page_config(page_title="toyfdiv: RLHF and GDC are one method", page_icon=ICON, layout="wide",
                       initial_sidebar_state="collapsed" if projector else "auto")
    ui.style(projector)
    page = st.navigation({
        section: [st.Page(path, title=title, icon=icon, **(dict(url_path=url) if url else dict(default=True)))
                  for path, title, icon, url in pages]
        for section, pages in SECTIONS.items()})
    with st.sidebar:
        state.init("app_projector")
        st.toggle("Projector mode", key="app_projector",
                  help="Large text for the back of the room; the sidebar starts collapsed on the next load")
    for note in url_notes:
        st.warning(note)
    state.to_url()
    page.run()


if __name__ == "__main__":  # a visit or a rerun
    main()
else:  # imported by `streamlit run app.py`: the server, warmed up in the background
    from app_pages import warmup

    app = st.App(__file__, lifespan=warmup.lifespan, routes=warmup.routes())
