"""The 'RLHF as practised' page (app_pages/rl.py) with streamlit.testing.v1.AppTest."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from toyfdiv import rl, rl_tasks

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(autouse=True)
def clear_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("app_pages/rl.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_shows_the_library_numbers_and_reruns_on_every_toggle():
    at = open_page()
    alg = rl.preset("grpo").with_(name="yours", epochs=4)
    row = rl.update_table(rl_tasks.prompted(), 8, algorithms=[alg], trials=2000)[0]
    shown = {m.label: m.value for m in at.metric}
    assert shown["cos(E[update], exact gradient)"] == f"{row['cosine']:.4f}"
    assert shown["scale ⟨u, g⟩/‖g‖²"] == f"{row['scale']:.4f}"
    text = " ".join(m.value for m in at.markdown)
    assert ("**Does not follow**" in text) == (not row["follows"])
    assert "KL(π*‖RLHF target)" in text
    # presets and toggles rerun cleanly, and the sentences follow the numbers
    at.selectbox(key="rl_preset").set_value("reinforce").run()
    at.slider(key="rl_beta").set_value(0.5).run()
    assert not at.exception
    assert at.selectbox(key="rl_adv").value == "none" and at.selectbox(key="rl_kl").value == "k1"
    text = " ".join(m.value for m in at.markdown)
    assert "**Follows**" in text and "it ends at the RLHF target" in text
    at.selectbox(key="rl_adv").set_value("reinforce_pp").run()
    assert not at.exception and any("Monte Carlo only" in w.value for w in at.warning)
    at.selectbox(key="rl_adv").set_value("rloo")
    at.selectbox(key="rl_kl").set_value("k3")
    at.selectbox(key="rl_place").set_value("loss")
    at.slider(key="rl_beta").set_value(0.5)
    at.run()
    assert not at.exception
    assert "it ends at the k3 closed form" in " ".join(m.value for m in at.markdown)
    at.selectbox(key="rl_preset").set_value("dapo").run()  # DAPO's dynamic sampling and overlong penalty load
    assert not at.exception and at.checkbox(key="rl_dapo").value and not at.checkbox(key="rl_gspo").value
    assert "dynamic sampling, overlong penalty" in " ".join(i.value for i in at.info)
