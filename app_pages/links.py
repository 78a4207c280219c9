"""Pages ↔ lessons: which lesson goes with which page (shown on every page and in the Glossary), and the
app page or scenario each lesson's first cell links back to (:data:`LESSON_APP`, :func:`app_url`)."""

from __future__ import annotations

import streamlit as st

LESSONS = {  # file under lessons/ → title
    "01_f_divergences.py": "Lesson 1 — f-divergences: one family",
    "02_rlhf_is_reverse_kl.py": "Lesson 2 — RLHF is reverse-KL minimisation",
    "03_gdc.py": "Lesson 3 — GDC: targets from constraints",
    "04_f_dpg.py": "Lesson 4 — f-DPG: one gradient for every divergence",
    "05_which_divergence.py": "Lesson 5 — Which divergence?",
    "06_exact_to_sampled.py": "Lesson 6 — From exact to sampled",
    "07_where_r_comes_from.py": "Lesson 7 — Where does r come from?",
    "08_capstone.py": "Lesson 8 — Capstone",
    "09_rlhf_as_practised.py": "Lesson 9 — From f-DPG to PPO and GRPO",
    "10_beyond_dpo.py": "Lesson 10 — Preference optimisation beyond DPO",
}
PAGE_LESSONS = {  # page script → its lessons
    "app_pages/playground.py": ["02_rlhf_is_reverse_kl.py", "03_gdc.py", "05_which_divergence.py"],
    "app_pages/explorer.py": ["01_f_divergences.py", "04_f_dpg.py"],
    "app_pages/estimators.py": ["06_exact_to_sampled.py"],
    "app_pages/feedback.py": ["07_where_r_comes_from.py"],
    "app_pages/scenarios.py": ["05_which_divergence.py", "08_capstone.py"],
    "app_pages/beyond_dpo.py": ["10_beyond_dpo.py"],
    "app_pages/rl.py": ["09_rlhf_as_practised.py"],
}

#: Where a local ``streamlit run app.py`` serves the app (Streamlit's default port).
LOCAL_APP = "http://localhost:8501"

LESSON_APP = {  # lesson → (what the link opens, page url path, settings as query parameters)
    "01_f_divergences.py": ("the Divergence explorer's zoo of f", "explorer", {}),
    "02_rlhf_is_reverse_kl.py": ("the scenario “Collapse at small β”", "scenarios", {"sc_pick": "collapse"}),
    "03_gdc.py": ("the scenario “Pointwise GDC and what reverse KL cannot do”", "scenarios",
                  {"sc_pick": "pointwise"}),
    "04_f_dpg.py": ("the Divergence explorer's simplex flows", "explorer", {"ex_section": "simplex"}),
    "05_which_divergence.py": ("the scenario “RLHF vs GDC on one target”", "scenarios", {"sc_pick": "rlhf_vs_gdc"}),
    "06_exact_to_sampled.py": ("the Estimator lab", "estimators", {}),
    "07_where_r_comes_from.py": ("the Human feedback page", "feedback", {}),
    "08_capstone.py": ("the Playground with a hybrid GDC target", "", {"pg_kind": "hybrid"}),
    "09_rlhf_as_practised.py": ("the page “RLHF as practised”", "rl", {}),
    "10_beyond_dpo.py": ("the page “Beyond DPO”", "beyond_dpo", {}),
}


def app_url(lesson: str) -> str:
    """The link from a lesson back to its page of a local app, settings in the query string."""
    _, path, params = LESSON_APP[lesson]
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{LOCAL_APP}/{path}" + (f"?{query}" if query else "")


def lesson_cell_line(lesson: str) -> str:
    """The line each lesson's first markdown cell carries (written into the lessons, checked by a test)."""
    what = LESSON_APP[lesson][0]
    return f"**In the app:** run `streamlit run app.py`, then open {what}: <{app_url(lesson)}>."


def lesson_line(page: str) -> None:
    """One caption under a page's title: its lessons (open them with jupyter or jupytext) and the glossary."""
    names = PAGE_LESSONS.get(page, [])
    if names:
        st.caption("Goes with " + "; ".join(f"{LESSONS[n]} (`lessons/{n}`)" for n in names)
                   + ". Terms: the Glossary page.")
