"""Pages ↔ lessons: which lesson goes with which page (shown on every page and in the Glossary)."""

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
}
PAGE_LESSONS = {  # page script → its lessons
    "app_pages/playground.py": ["02_rlhf_is_reverse_kl.py", "03_gdc.py", "05_which_divergence.py"],
    "app_pages/explorer.py": ["01_f_divergences.py", "04_f_dpg.py"],
    "app_pages/estimators.py": ["06_exact_to_sampled.py"],
    "app_pages/feedback.py": ["07_where_r_comes_from.py"],
    "app_pages/scenarios.py": ["05_which_divergence.py", "08_capstone.py"],
}


def lesson_line(page: str) -> None:
    """One caption under a page's title: its lessons (open them with jupyter or jupytext) and the glossary."""
    names = PAGE_LESSONS.get(page, [])
    if names:
        st.caption("Goes with " + "; ".join(f"{LESSONS[n]} (`lessons/{n}`)" for n in names)
                   + ". Terms: the Glossary page.")
