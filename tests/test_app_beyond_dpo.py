"""The Beyond DPO page: runs clean at the defaults and at every widget's extremes; its numbers are the library's."""

import numpy as np
import pytest
from scipy.special import expit
from streamlit.testing.v1 import AppTest

from test_app import APP, TIMEOUT, assert_clean, sweep
from toyfdiv import diversity, tasks

PAGE = "app_pages/beyond_dpo.py"


pytestmark = pytest.mark.usefixtures("clear_streamlit_caches")  # tests/conftest.py


def _open():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    return at


def test_defaults_show_the_library_numbers_and_every_extreme_runs():
    at = _open()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["IPO π(a)"] == "0.506" and metrics["IPO π(b)"] == "0.186" and metrics["IPO π(c)"] == "0.307"
    task = tasks.default()
    from toyfdiv.feedback import kto_fixed_point
    fp = kto_fixed_point(task.log_a, expit(task.reward.values - 0.5), 0.5, sampling_log_probs=task.log_a)
    assert metrics["KTO support"] == f"{int(fp.support.sum())} / {task.space.size}"
    correct = task.reward.values > 0
    want = diversity.pass_at_k_policy(task.log_a, correct, 8)
    tables = [df.value for df in at.dataframe if "pass@8" in df.value.columns]
    assert tables and np.isclose(tables[0]["pass@8"].iloc[-1], want, rtol=1e-12)  # the base model's row
    sweep(at, "beyond_dpo", skip=("po_pairs", "po_seed"))  # (both only re-draw the pairs: slow, covered by the defaults)
    assert_clean(at)
