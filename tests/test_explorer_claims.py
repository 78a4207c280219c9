"""The explorer's "Restricted family" sentence is generated from the numbers it describes (claims.mode_choice).

Oracles: hand-made fits where the fixed sentence it replaces ("reverse KL on one mode, forward KL across the
valley") would be wrong — a tie between the modes, the order reversed, a gap just past the threshold — and, in
the app, the sentence recomputed from the library's own restricted flows (simplex.restricted_flow).
"""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from toyfdiv import claims, plots, simplex

ROOT = Path(__file__).resolve().parent.parent
P = [0.46, 0.08, 0.46]

pytestmark = pytest.mark.usefixtures("clear_streamlit_caches")  # tests/conftest.py


def test_reversed_order_is_reported_as_it_is():
    """Forward KL on a mode and reverse KL between them: the sentence follows the numbers, not the textbook."""
    verdicts, s = claims.mode_choice(P, {"reverse KL": [0.3, 0.4, 0.3], "forward KL": [0.9, 0.08, 0.02]})
    assert verdicts == {"reverse KL": "between the modes", "forward KL": "one mode"}
    assert "forward KL ends on one mode, x1: π(x1) = 0.90 against π(x3) = 0.02 (mode-seeking)" in s
    assert "reverse KL ends between the modes" in s and "0.40 to the valley x2 (mass-covering)" in s


@pytest.mark.parametrize("pi, verdict", [
    ([0.44, 0.1, 0.46], "between the modes"),  # 0.02 apart: a tie, although x3 is larger
    ([0.47, 0.06, 0.47], "between the modes"),  # exactly level
    ([0.40, 0.06, 0.54], "one mode"),  # 0.14 apart
    ([0.54, 0.06, 0.40], "one mode"),  # the other mode
], ids=["tie", "level", "x3", "x1"])
def test_threshold(pi, verdict):
    verdicts, s = claims.mode_choice(P, {"fit": pi})
    gap = abs(pi[0] - pi[2])
    assert verdicts["fit"] == verdict == ("one mode" if gap > claims.MODE_TIE else "between the modes")
    assert f"within {claims.MODE_TIE:g}" in s
    if verdict == "one mode":
        hi = "x1" if pi[0] > pi[2] else "x3"
        assert f"ends on one mode, {hi}: π({hi}) = {max(pi[0], pi[2]):.2f}" in s


def test_modes_come_from_the_target_and_names_are_used():
    verdicts, s = claims.mode_choice([0.1, 0.5, 0.4], {"f": [0.2, 0.79, 0.01]}, outcomes=["a", "b", "c"])
    assert verdicts == {"f": "one mode"} and "p's modes are b and c" in s and "π(b) = 0.79 against π(c) = 0.01" in s


@pytest.mark.parametrize("args, match", [
    (([0.5, 0.5], {"f": [0.5, 0.5]}), "target="),
    ((P, {}), "ends="),
    ((P, {"f": [0.5, 0.5]}), r"ends\['f'\] has 2 entries"),
    (([0.6, 0.2, 0.2], {"f": P}), "no two modes"),
    ((P, {"f": P}, ["a"]), "outcomes has 1 names"),
    ((P, {"f": [0.5, float("nan"), 0.5]}), "NaN"),
])
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        claims.mode_choice(*args)
    with pytest.raises(ValueError, match="tol="):
        claims.mode_choice(P, {"f": P}, tol=-0.1)


def test_the_explorer_says_what_the_library_computes():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["ex_section"] = "restricted"  # straight to the section: no other page or section is drawn
    at.switch_page("app_pages/explorer.py").run()
    assert at.segmented_control(key="ex_section").value == "restricted"
    assert not at.exception, [e.value for e in at.exception]
    names = ("reverse_kl", "forward_kl", "js", "hellinger")
    ends = {plots.divergence_label(n): simplex.restricted_flow(simplex.BIMODAL_TARGET, n, 1.2, steps=300, lr=0.5)[-1]
            for n in names}
    verdicts, sentence = claims.mode_choice(np.exp(simplex.BIMODAL_TARGET), ends)
    shown = [m.value for m in at.markdown]
    assert sentence in shown
    assert verdicts["reverse KL"] == "one mode" and verdicts["forward KL"] == "between the modes"
    assert not any("reverse KL on one mode (mode-seeking), forward KL across the valley" in m for m in shown)
