"""Hostile and random input to the app (issue 14): ≥ 50 random widget combinations on every page,
and a corpus of malformed settings files through the uploader and the paste box — 0 exceptions.

Values are drawn from each page's rows of ``app_pages.state.FIELDS`` (the widgets' own ranges and
options), several settings at once, then one rerun: the page must run without an exception (the
library's refusals are shown as messages).  Spaces are kept small (T ≤ 4) so that 50 draws per
page stay fast; large spaces are covered by the extremes tests in test_app.py.
"""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_pages import state as S
from toyfdiv import tasks

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
DRAWS = 50
PAGES = {"pg": "app_pages/playground.py", "ex": "app_pages/explorer.py", "el": "app_pages/estimators.py",
         "hf": "app_pages/feedback.py", "sc": "app_pages/scenarios.py", "po": "app_pages/beyond_dpo.py"}
HEAVY = {"el_trials": (10, 60), "el_k": (0, 5), "hf_pairs": (20, 200), "hf_steps": (1, 5), "pg_steps": (1, 3),
         "ex_steps": (10, 60), "pg_fit_steps": (10, 20)}


pytestmark = pytest.mark.usefixtures("clear_streamlit_caches")  # tests/conftest.py


def draw(rnd: random.Random, f: S.Field):
    """A value the widget itself could hold."""
    if f.key in HEAVY:
        return rnd.randint(*HEAVY[f.key])
    if f.kind == "bool":
        return rnd.random() < 0.5
    if f.kind == "int":
        hi = 4 if f.key.endswith("_length") else int(f.hi)
        return rnd.choice([int(f.lo), hi, rnd.randint(int(f.lo), hi)])
    if f.kind == "float":
        if f.step:
            k = rnd.randint(0, int(round((f.hi - f.lo) / f.step)))
            return round(f.lo + k * f.step, 10)
        return rnd.choice([f.lo, f.hi, rnd.uniform(f.lo, f.hi)])
    if f.kind == "choice":
        return rnd.choice(f.options)
    if f.kind == "multi":
        opts = list(f.options)
        if f.key == "el_ns":
            opts = [o for o in opts if o <= 64]
        return rnd.sample(opts, rnd.randint(0, min(3, len(opts))))
    if f.kind == "range":
        a, b = sorted(rnd.uniform(f.lo, f.hi) for _ in range(2))
        return (round(a / f.step) * f.step, round(b / f.step) * f.step)
    raise AssertionError(f.kind)


@pytest.mark.parametrize("prefix", list(PAGES))
def test_random_widget_combinations_on_every_page(prefix):
    rnd = random.Random(zlib.crc32(prefix.encode()) + 14)  # the same draws in every process (hash() is salted)
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page(PAGES[prefix]).run()
    assert not at.exception
    fields = [f for k, f in S.FIELDS.items() if k.startswith(prefix + "_") and k not in ("pg_frame",)]
    if prefix == "sc":
        fields = [f for f in fields if f.key == "sc_pick"]
    for i in range(DRAWS):
        values = {}
        if fields:
            for f in rnd.sample(fields, min(len(fields), rnd.randint(1, 6))):
                values[f.key] = draw(rnd, f)
        if not fields:  # a page whose widgets are not in the field table: its own widgets' extremes
            from test_app import _raw, extremes, get, widgets

            for kind, key in rnd.sample(widgets(at), k=min(4, len(widgets(at)))):
                w = get(at, kind, key)
                if w is not None:
                    value = rnd.choice(extremes(kind, w) + [w.value])
                    values[key] = [_raw(w.options[0])] if kind == "multiselect" and not value else value
        if prefix in ("pg", "el") and f"{prefix}_task" in values:  # moments belong to the task: in its range
            task = values[f"{prefix}_task"]
            for k in range(len(tasks.get(task).feature_names)):
                lo, hi = S.moment_range(task, k)
                values[f"{prefix}_moment{k}"] = round(lo + 0.05 * rnd.randint(0, int((hi - lo) / 0.05)), 10)
        for k, v in values.items():
            at.session_state[k] = v
        at.run()
        assert not at.exception, f"{prefix} draw {i}: {values}: {[e.value for e in at.exception]}"
        train = [b for b in at.button if b.key == "pg_train" and not b.disabled] if prefix == "pg" else []
        if train and i % 10 == 0:
            train[0].click().run()
            assert not at.exception, f"train after {values}: {[e.value for e in at.exception]}"


def _corpus() -> list[bytes]:
    ok = {"task": "reviews", "kind": "rlhf", "beta": 0.3, "divergence": "js"}
    bad_values = [
        {"kind": "distributional", "moments": [5.0, 5.0]}, {"kind": "hybrid", "moments": [0.5, -3]},
        {"kind": "distributional", "moments": [0.5]}, {"kind": "distributional", "moments": [0.5, 0.5, 0.5]},
        {"beta": 1e-9}, {"beta": 1e9}, {"beta": -1}, {"beta": "0.3"}, {"beta": True}, {"beta": [0.3]},
        {"epsilon": 0.9}, {"length": 12}, {"length": 0}, {"length": 2**70}, {"eos": "yes"},
        {"steps": 5000}, {"steps": 1.5}, {"lr": 1e-9}, {"lr": 100.0}, {"seed": -1}, {"seed": 10**20},
        {"policy": "ngram", "policy_options": {"order": 9}}, {"policy": "tinylm", "policy_options": {"n_hidden": 0}},
        {"policy": "tabular", "policy_options": {"order": 2}}, {"estimator": "sampled", "estimator_options":
                                                                {"n": 3}},
        {"estimator": "sampled", "estimator_options": {"baseline": "__import__"}},
        {"divergence": "alpha(7)"}, {"divergence": "gjsd(0.999)"}, {"divergence": "nope"},
        {"task": "../../etc/passwd"}, {"optimizer": "rmsprop"}, {"schedule": "linear"},
        {"record_every": 3}, {"record_every": 0},
    ]
    files = [json.dumps(dict(ok, **v)).encode() for v in bad_values]
    files += [b"", b" ", b"{", b"[]", b"null", b"0", b'"x"', b"[" * 5000 + b"]" * 5000, b"\xff\xfe\x00",
              b'{"beta": NaN}', b'{"beta": Infinity}', b"{" + b'"a":1,' * 20000 + b'"b":2}',
              json.dumps([dict(ok, divergence="js"), dict(ok, divergence="js")]).encode(),
              json.dumps([dict(ok, divergence="alpha(0.2)"), dict(ok, divergence="alpha(0.4)")]).encode(),
              json.dumps([dict(ok), dict(ok, beta=0.5, divergence="tv")]).encode(),
              json.dumps([ok] * 50).encode()]
    return files


def test_malformed_settings_files_leave_the_page_working():
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["pg_share"] = True  # the download/upload section, open
    at.run()
    at.slider(key="pg_steps").set_value(42).run()
    corpus = _corpus()
    assert len(corpus) >= 50
    for i, data in enumerate(corpus):
        at.file_uploader(key="pg_upload").set_value(("bad.json", data, "application/json")).run()
        assert not at.exception, f"upload {i}: {data[:60]!r}: {[e.value for e in at.exception]}"
        assert any("Settings rejected" in e.value for e in at.error), f"upload {i} is refused: {data[:60]!r}"
        assert at.slider(key="pg_steps").value == 42, "nothing changed"
        assert at.button(key="pg_train") is not None, "the rest of the page still renders"
        at.run()  # and the next rerun too (the crash of issue 14 repeated on every rerun)
        assert not at.exception
    for i, data in enumerate(corpus[:40]):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        at.text_area(key="pg_paste").set_value(text[: S.MAX_UPLOAD_BYTES]).run()
        at.button(key="pg_load").click().run()
        assert not at.exception, f"paste {i}: {text[:60]!r}"
        if text.strip():
            assert any("Settings rejected" in e.value for e in at.error), f"paste {i} is refused: {text[:60]!r}"
        assert at.slider(key="pg_steps").value == 42
    # a good file after all that still loads
    good = json.dumps({"task": "abc", "kind": "distributional", "moments": [1.5, 1.0], "divergence": "tv",
                       "steps": 7}).encode()
    at.file_uploader(key="pg_upload").set_value(("good.json", good, "application/json")).run()
    assert not at.exception and not at.error
    assert at.slider(key="pg_steps").value == 7 and at.selectbox(key="pg_task").value == "abc"
    assert tasks.get("abc").feature_names and at.slider(key="pg_moment0").value == 1.5
