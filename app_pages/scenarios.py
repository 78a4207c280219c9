"""Scenarios: a lecture mode.  One click opens a prepared, narrated case; each step asks for a
prediction before the numbers are revealed; the numbers come from the library, and the sentence
that says who was right is generated from them."""

import streamlit as st

from app_pages import common
from app_pages.links import lesson_line
from app_pages.scenario_book import SCENARIOS
from toyfdiv import plots

P = "sc"
BY_KEY = {s.key: s for s in SCENARIOS}

st.title("Scenarios: the lecture, step by step")
lesson_line("app_pages/scenarios.py")
assert tuple(BY_KEY) == common.FIELDS[f"{P}_pick"].options, "the field table lists every scenario"
common.init(f"{P}_pick")
common.init(f"{P}_step")


def _restart() -> None:
    st.session_state[f"{P}_step"] = 0
    for k in [k for k in st.session_state if k.startswith(f"{P}_answer") or k.startswith(f"{P}_revealed")]:
        del st.session_state[k]


pick = st.radio("Scenario", list(BY_KEY), key=f"{P}_pick", format_func=lambda k: BY_KEY[k].title,
                horizontal=True, on_change=_restart, help="Each scenario is 3 steps: setup, predict → reveal, why")
sc = BY_KEY[pick]
st.markdown(f"### {sc.title}\n{sc.promise}")


@st.cache_resource(max_entries=16, show_spinner="Computing the scenario's numbers…")
def numbers(key: str) -> dict:
    return BY_KEY[key].compute()


step_i = min(int(st.session_state[f"{P}_step"]), len(sc.steps) - 1)
st.progress((step_i + 1) / len(sc.steps), text=f"Step {step_i + 1} of {len(sc.steps)}")
for i, step in enumerate(sc.steps[: step_i + 1]):
    st.markdown(f"**{i + 1}.** {step.narration}")
    if step.question is None:
        continue
    st.markdown(f"**Question:** {step.question}")
    answer_key, revealed_key = f"{P}_answer_{sc.key}_{i}", f"{P}_revealed_{sc.key}_{i}"
    guess = st.radio("Your prediction", list(step.options), key=answer_key, index=None,
                     help="Ask the room, pick the majority answer, then reveal")
    if not st.session_state.get(revealed_key):
        st.button("Reveal", key=f"{P}_reveal_{sc.key}_{i}", type="primary", disabled=guess is None,
                  on_click=lambda k=revealed_key: st.session_state.__setitem__(k, True),
                  help="Compute the numbers and see which answer they support")
        break
    with common.explained(what="The numbers of this scenario cannot be computed"):
        data = numbers(sc.key)
        out = step.reveal(data)
    (st.success if guess == out.answer else st.info)(
        f"{'Right' if guess == out.answer else 'Not this time'}: you predicted **{guess}**. {out.text}")
    if out.rows:
        common.table(common.frame(out.rows), key=f"{P}_rows_{sc.key}_{i}")
    if out.figure == "overoptimisation":
        common.show_png(common.png(lambda: plots.overoptimisation(data["curve"]), common.theme()))
    elif out.figure == "mode_seeking":
        common.show_png(common.png(lambda: plots.mode_seeking(divergences=["reverse_kl", "forward_kl", "js"]),
                                   common.theme()))

c1, c2, c3 = st.columns(3)
blocked = any(s.question and not st.session_state.get(f"{P}_revealed_{sc.key}_{i}")
              for i, s in enumerate(sc.steps[: step_i + 1]))
if c1.button("Next step", key=f"{P}_next", disabled=step_i + 1 >= len(sc.steps) or blocked,
             help="Reveal the current question first"):
    st.session_state[f"{P}_step"] = step_i + 1
    st.rerun()
c2.button("Start again", key=f"{P}_restart", on_click=_restart)
if sc.playground:
    def _open() -> None:
        common.forget(*[k for k in list(st.session_state) if k.startswith("pg_moment")])
        st.session_state.update(sc.playground)
        st.session_state.pop("pg_result", None)

    if c3.button("Open this case in the Playground", key=f"{P}_open", on_click=_open,
                 help="The Playground with this scenario's target and divergences"):
        st.switch_page("app_pages/playground.py")
if step_i + 1 == len(sc.steps) and not blocked:
    st.success("End of the scenario.", icon=":material/flag:")
