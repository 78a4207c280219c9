"""The Streamlit app, page by page, with streamlit.testing.v1.AppTest.

For every page: the default run has no exception; every widget set to each of its extreme
values reruns without exception (several widgets per rerun, see ``sweep``); the numbers shown equal the library's for the same
settings.  Random widget combinations on every page: tests/test_app_fuzz.py.

Streamlit's caches are cleared once per module (tests/conftest.py), so the pages' pure cached
computations are shared between this module's tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app_pages import ui
from toyfdiv import claims, divergences, estimator_lab, experiments, feedback, plots, simplex, tasks
from toyfdiv.config import Config

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGES = {"playground": None, "explorer": "app_pages/explorer.py", "estimators": "app_pages/estimators.py",
         "feedback": "app_pages/feedback.py", "scenarios": "app_pages/scenarios.py",
         "glossary": "app_pages/glossary.py"}
TIMEOUT = 120


pytestmark = pytest.mark.usefixtures("clear_streamlit_caches")  # tests/conftest.py


def open_page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert_clean(at)
    if PAGES[name] is not None:
        at.switch_page(PAGES[name]).run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest, where: str = "") -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"


def widgets(at: AppTest) -> list:
    """Every interactive widget on the page with a user key (our widgets all have one)."""
    out = []
    for kind in ("slider", "select_slider", "selectbox", "multiselect", "checkbox", "radio", "number_input",
                 "segmented_control"):
        for w in getattr(at, kind):
            if w.key is not None:
                out.append((kind, w.key))
    return out


def get(at: AppTest, kind: str, key: str):
    try:
        return getattr(at, kind)(key=key)
    except KeyError:
        return None


def extremes(kind: str, w) -> list:
    """The extreme values of a widget: ends of ranges, every option of a choice, empty/all for multiselects."""
    if kind == "slider":
        if isinstance(w.value, tuple):
            return [(w.min, w.min), (w.max, w.max), (w.min, w.max)]
        return [w.min, w.max]
    if kind == "number_input":
        return [w.min, w.max]
    if kind == "select_slider":
        return [_raw(w.options[0]), _raw(w.options[-1])]
    if kind in ("selectbox", "radio", "segmented_control"):
        return [_raw(o) for o in w.options]
    if kind == "multiselect":
        return [[], [_raw(o) for o in w.options]]
    if kind == "checkbox":
        return [True, False]
    raise AssertionError(kind)


def _raw(option: str):
    """AppTest shows options as strings; our numeric choices are ints or floats."""
    for cast in (int, float):
        try:
            return cast(option)
        except ValueError:
            pass
    return option


def sweep(at: AppTest, page: str, skip: tuple = ()) -> int:
    """Every widget to each of its extremes, several widgets per rerun; then every widget restored.

    Rerun i sets every widget to its i-th extreme (its last one once it has run out), so each extreme
    of each widget is run — next to the other widgets' extremes — in max(#extremes) reruns instead of
    Σ #extremes: the same values, a fraction of the page runs.  A widget that an earlier value hid is
    set on the reruns where it is shown.  Returns the number of reruns."""
    originals = {}
    plan = {}
    for kind, key in widgets(at):
        w = get(at, kind, key)
        if key in skip or w is None:
            continue
        originals[key] = (kind, w.value)
        plan[key] = (kind, extremes(kind, w), 0)  # (kind, values, first rerun)
    rounds, i = max((len(v) for _, v, _ in plan.values()), default=0), 0
    while i < rounds:
        chosen = {}
        for key, (kind, values, first) in plan.items():
            w = get(at, kind, key)
            if w is not None:
                chosen[key] = values[min(i - first, len(values) - 1)]
                w.set_value(chosen[key])
        at.run()
        assert_clean(at, f"{page}: {chosen}")
        for kind, key in widgets(at):  # widgets this rerun revealed join the plan
            w = get(at, kind, key)
            if key not in plan and key not in skip and w is not None:
                originals[key] = (kind, w.value)
                plan[key] = (kind, extremes(kind, w), i + 1)
                rounds = max(rounds, i + 1 + len(plan[key][1]))
        i += 1
    for key, (kind, value) in originals.items():
        w = get(at, kind, key)
        if w is not None:
            w.set_value(value)
    at.run()
    assert_clean(at, f"{page}: restored")
    return rounds + 1


def same(cell, value) -> bool:
    """A table cell shows the library's value: the number itself, or its text (app_pages.ui.number)."""
    if isinstance(cell, str):
        return cell in (ui.number(value), ui.number(value, sci=True))
    return bool(np.isclose(float(cell), float(value), rtol=1e-12, atol=0))


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# ---------------------------------------------------------------------------- default runs
def test_default_run_of_every_page_has_no_exception():
    """One session opens every page in turn (as a student clicking through the sidebar)."""
    at = open_page("playground")
    for page, script in PAGES.items():
        if script is not None:
            at.switch_page(script).run()
        assert_clean(at, page)
        assert not at.error, (page, [e.value for e in at.error])
        if page not in ("scenarios", "glossary"):
            assert at.latex, f"{page}: every page shows formulas"
            assert any("2023" in c.value for c in at.caption), f"{page}: formulas cite their papers"


# ---------------------------------------------------------------------------- extremes
def open_sections(at: AppTest) -> AppTest:
    """Open the Playground's lazy sidebar sections (optimiser…seed, download/upload): their widgets are drawn."""
    at.session_state["pg_more"] = True
    at.session_state["pg_share"] = True
    return at.run()


def test_playground_widget_extremes():
    at = open_sections(open_page("playground"))
    sweep(at, "playground")
    for kind in ("pointwise", "distributional", "hybrid"):  # widgets that only exist for some targets
        at.selectbox(key="pg_kind").set_value(kind).run()
        sweep(at, f"playground[{kind}]", skip=("pg_kind", "pg_task", "pg_length", "pg_eos", "pg_policy",
                                               "pg_divs", "pg_estimator", "pg_optimizer", "pg_schedule"))
    at.selectbox(key="pg_kind").set_value("rlhf").run()
    at.radio(key="pg_estimator").set_value("sampled").run()
    at.multiselect(key="pg_divs").set_value(["alpha", "gjsd"]).run()
    at.selectbox(key="pg_policy").set_value("tinylm").run()
    sweep(at, "playground[sampled, tinylm, alpha]",
          skip=("pg_kind", "pg_task", "pg_length", "pg_eos", "pg_divs", "pg_optimizer", "pg_schedule", "pg_steps"))
    assert_clean(at)


def test_playground_training_at_extremes():
    """Train (a few steps) at the ends of the training controls: errors are explained, never raised."""
    at = open_sections(open_page("playground"))
    at.slider(key="pg_steps").set_value(3).run()
    for lr, optimizer in ((1e-4, "adam"), (10.0, "sgd"), (10.0, "adam")):
        at.number_input(key="pg_lr").set_value(lr).run()
        at.selectbox(key="pg_optimizer").set_value(optimizer).run()
        at.button(key="pg_train").click().run()
        assert_clean(at, f"train lr={lr} {optimizer}")
    at.selectbox(key="pg_kind").set_value("pointwise").run()
    at.slider(key="pg_epsilon").set_value(0.0).run()
    at.button(key="pg_train").click().run()  # reverse KL against a target with zeros: explained
    assert_clean(at)
    assert any("D_f(a‖p) = ∞" in e.value for e in at.error)


def test_explorer_widget_extremes():
    at = open_page("explorer")
    at.session_state["ex_steps"] = 10  # short flows: the sweep checks the widgets, not the flows' cost
    for section in ("zoo", "alpha", "simplex", "restricted", "frontier"):
        at.segmented_control(key="ex_section").set_value(section).run()
        assert_clean(at, section)
        sweep(at, f"explorer[{section}]", skip=("ex_section", "ex_steps"))


def test_estimator_lab_widget_extremes():
    at = open_page("estimators")
    at.slider(key="el_trials").set_value(10).run()
    at.multiselect(key="el_ns").set_value([4]).run()
    sweep(at, "estimators", skip=("el_task", "el_kind", "el_length", "el_trials", "el_ns"))
    at.slider(key="el_length").set_value(8).run()  # N = 97,656: behind the Run button
    assert_clean(at)
    assert any("press **Run**" in i.value for i in at.info)
    at.slider(key="el_length").set_value(1).run()
    assert_clean(at)
    for task in tasks.names():
        at.selectbox(key="el_task").set_value(task).run()
        assert_clean(at, task)
    at.selectbox(key="el_task").set_value("abc").run()
    at.slider(key="el_length").set_value(2).run()
    for kind in tasks.TARGET_KINDS:
        at.selectbox(key="el_kind").set_value(kind).run()
        assert_clean(at, kind)
    at.selectbox(key="el_kind").set_value("rlhf").run()
    at.multiselect(key="el_ns").set_value([64, 256]).run()
    at.slider(key="el_trials").set_value(1000).run()
    at.button(key="el_run").click().run()  # over the automatic budget: behind the button
    assert_clean(at)
    assert at.dataframe


def test_feedback_widget_extremes():
    at = open_page("feedback")
    sweep(at, "feedback", skip=("hf_length", "hf_steps"))
    at.slider(key="hf_steps").set_value(1).run()
    at.button(key="hf_train").click().run()
    assert_clean(at)
    assert at.slider(key="hf_length").max == 8  # the slider stops at the longest space the app allows
    at.slider(key="hf_length").set_value(7).run()  # within the app's limit, over the library's N² limit
    assert_clean(at)
    assert any("smaller space" in e.value or "N²" in e.value for e in at.error)
    at.slider(key="hf_length").set_value(1).run()
    assert_clean(at)


# ---------------------------------------------------------------------------- numbers equal the library's
@pytest.fixture(scope="module")
def trained_playground():
    """The default Playground trained for 15 steps, and the library's runs for the same settings.

    Shared by the tests below, which only read it (one training instead of one per test)."""
    at = open_page("playground")
    assert {m.label for m in at.metric} >= {"KL(p‖a), nats", "H(p), nats"}, "units sit in the labels"
    before = {m.label: m.value for m in at.metric}
    at.slider(key="pg_steps").set_value(15).run()
    at.button(key="pg_train").click().run()
    assert_clean(at)
    hist = experiments.compare("reviews", "rlhf", ["reverse_kl", "forward_kl", "js"], policy="ngram", steps=15,
                               lr=0.1, target_options={"beta": 0.3}, policy_options={"order": 2}, record_every=5)
    return at, before, hist, experiments.summary_table(hist)


def test_playground_numbers_equal_the_library(trained_playground):
    at, before, hist, rows = trained_playground
    task = tasks.get("reviews")
    target = task.target("rlhf", beta=0.3)
    ref = experiments.target_row(target)
    assert before["log Z"] == f"{target.log_z:.4f}"
    assert before["KL(p‖a), nats"] == f"{ref['kl_from_base']:.4f}"
    assert before["H(p), nats"] == f"{ref['entropy']:.4f}"
    assert before["Sequences N"] == f"{task.space.size:,}"
    shown = at.dataframe[0].value
    for i, row in enumerate(rows):
        assert shown.iloc[i]["run"] == plots.divergence_label(row["divergence"])
        assert shown.iloc[i]["own D_f(π‖p)"] == ui.number(row["final_divergence"], sci=True)
        assert same(shown.iloc[i]["KL(π‖a)"], row["kl_from_base"])
        assert same(shown.iloc[i]["H(π)"], row["entropy"])
        assert same(shown.iloc[i]["E_π[r], reward"], row["alignment"])
        assert same(shown.iloc[i]["distinct in 100"], row["distinct_100"])
    cross = at.dataframe[1].value
    assert cross.iloc[0]["js"] == ui.number(hist["reverse_kl"].final()["divergence/js"], sci=True)
    # the Playground runs Configs: each reproduces its run exactly
    from app_pages import config_io
    from toyfdiv.config import run

    configs = config_io.configs(at.session_state)
    assert [c.divergence for c in configs] == ["reverse_kl", "forward_kl", "js"]
    again = run(configs[2])
    np.testing.assert_allclose(again.final()["divergence/js"], rows[2]["final_divergence"], rtol=1e-12)


def test_playground_reading_aids(trained_playground):
    """After Train, the sentence on entropies is claims.entropy_extremes of the library's numbers and the
    cross-table sentence is claims.column_winners of them."""
    at, _, hist, rows = trained_playground
    ref = experiments.target_row(tasks.get("reviews").target("rlhf", beta=0.3))
    expected = claims.entropy_extremes({plots.divergence_label(r["divergence"]): r["entropy"] for r in rows},
                                       ref["entropy"])[1]
    assert any(m.value == "**Read it:** " + expected for m in at.markdown)
    cross = {n: {k.split("/", 1)[1]: v for k, v in h.final().items() if k.startswith("divergence/")}
             for n, h in hist.items()}
    assert any(claims.column_winners(cross)[1] in m.value for m in at.markdown)


def test_explorer_numbers_equal_the_library():
    at = open_page("explorer")
    shown = at.dataframe[0].value
    t = 2.0
    for _, row in shown.iterrows():
        div = divergences.get(row["divergence"])
        assert same(row["f(t)"], div.f(np.array([t]))[0])
        assert same(row["R = −f′(t)"], div.pseudo_reward(np.log([t]))[0])
    at.segmented_control(key="ex_section").set_value("simplex").run()
    rows = at.dataframe[0].value
    p = np.array([62, 33, 5.0])
    s = np.array([10, 10, 80.0])
    path = simplex.gradient_flow(np.log(p / p.sum()), "js", s / s.sum(), steps=300, lr=0.5)
    js = rows[rows["divergence"] == "js"].iloc[0]
    assert all(same(js[f"π{i + 1} (end)"], path[-1][i]) for i in range(3))


def test_estimator_lab_numbers_equal_the_library():
    at = open_page("estimators")
    shown = at.dataframe[0].value
    task = tasks.get("reviews")
    target = task.target("rlhf")
    lib = estimator_lab.estimator_stats(experiments.make_policy(task), target, "forward_kl", n=64, trials=400,
                                        rng=np.random.default_rng(0), baselines=("none", "loo", "dpg"),
                                        z_options=("exact", "batch"))
    for row in lib:
        got = shown[(shown["n"] == 64) & (shown["baseline"] == row["baseline"]) & (shown["Z"] == row["z"])
                    & (shown["divergence"] == "forward_kl")].iloc[0]
        assert same(got["bias"], row["bias"]) and same(got["variance"], row["variance"])
        assert same(got["cosine"], row["cosine"])
        assert got["verdict"] == claims.bias_verdict(row["bias"], row["bias_se"])[0]


def test_feedback_numbers_equal_the_library():
    at = open_page("feedback")
    task = tasks.get("reviews")
    rater = feedback.Rater.for_task(task, temperature=2.0, length_bias=2.0)
    rng = np.random.default_rng(0)
    data = feedback.collect_preferences(rater, task.base, 100, rng)
    train_set, held_out = data.split(0.2, rng)
    rm = feedback.fit_reward_model(train_set, feedback.ngram_features(task.space)[0], l2=1.0,
                                   centre_log_probs=task.log_a)
    curve = feedback.overoptimisation_curve(task.log_a, rm.values, rater.utility)
    assert metric(at, "r̂ accuracy, held out") == f"{feedback.evaluate(rm, held_out).accuracy:.3f}"
    assert metric(at, "Bayes accuracy") == f"{feedback.bayes_accuracy(rater, task.base):.3f}"
    assert metric(at, "Best β for the truth") == f"{curve.turning_beta:.4g}"
    assert curve.is_overoptimised, "the default settings show over-optimisation"

    at.slider(key="hf_steps").set_value(20).run()
    at.button(key="hf_train").click().run()
    assert_clean(at)
    shown = at.dataframe[1].value
    dpo = feedback.train_dpo(experiments.make_policy(task), task.log_a, train_set, 0.3, steps=20, lr=0.05)
    got = shown[shown["method"] == "DPO"].iloc[0]
    from toyfdiv import metrics

    assert same(got["KL(π‖a)"], metrics.kl(dpo.policy.log_probs(), task.log_a))


# ---------------------------------------------------------------------------- reading aids for the lecture
def test_length_slider_stops_where_the_space_fits():
    at = open_page("playground")
    assert at.slider(key="pg_length").max == 8  # (5**8 − 1)/4 = 97,656 ≤ 100,000 with EOS
    at.checkbox(key="pg_eos").set_value(False).run()
    assert at.slider(key="pg_length").max == 7  # 5**7 = 78,125 sequences of exactly T tokens
    at.selectbox(key="pg_task").set_value("abc").run()
    assert at.slider(key="pg_length").max == 10  # 3**10 = 59,049


def test_explorer_shows_every_selected_generator():
    at = open_page("explorer")
    generators = [x.value.strip("$\n ") for x in at.latex]
    generators = [g for g in generators if g.startswith("f(t) = ")]
    assert len(generators) == len(at.multiselect(key="ex_zoo").value)
    at.multiselect(key="ex_zoo").set_value(divergences.names()).run()
    generators = [g for g in (x.value.strip("$\n ") for x in at.latex) if g.startswith("f(t) = ")]
    assert len(generators) == len(divergences.names())
    assert generators[-1].startswith("f(t) = -0.25"), "the long gjsd generator gets its own row, last"


# ---------------------------------------------------------------------------- shareable settings
def test_settings_round_trip_and_hostile_files_are_rejected():
    at = open_sections(open_page("playground"))
    at.slider(key="pg_beta").set_value(1.5).run()
    at.selectbox(key="pg_policy").set_value("tabular").run()
    from app_pages import common

    good = Config(beta=1.5, policy="tabular", divergence="js", steps=50, lr=0.2).to_json()
    at.file_uploader(key="pg_upload").set_value(("c.json", good.encode(), "application/json")).run()
    assert_clean(at)
    assert at.slider(key="pg_beta").value == 1.5
    assert at.multiselect(key="pg_divs").value == ["js"]
    assert at.slider(key="pg_steps").value == 50
    assert not at.error
    hostile = [b"{not json", b'{"task": "__import__(\'os\').system(\'echo hi\')"}', b'{"steps": 1e999}',
               b'{"beta": NaN}', b'{"extra": 1}', b"\xff\xfe", b"[" * 100_000, b'{"steps": 100000}',
               b'{"policy_options": {"order": {"__class__": 1}}}', b'[]', b'"a string"',
               b'{"kind": "distributional", "moments": [5.0, 5.0]}',
               b'{"kind": "hybrid", "moments": [0.5, -3]}', b'{"length": 12}', b'{"beta": 0.001}']
    for bad in hostile:
        at.file_uploader(key="pg_upload").set_value(("bad.json", bad, "application/json")).run()
        assert_clean(at, repr(bad[:40]))
        assert at.error, f"rejected with a message: {bad[:40]!r}"
        assert at.slider(key="pg_steps").value == 50, "nothing changed"
    at.text_area(key="pg_paste").set_value('{"task": "abc", "kind": "pointwise", "divergence": "alpha(0.3)"}').run()
    at.button(key="pg_load").click().run()
    assert_clean(at)
    assert at.selectbox(key="pg_task").value == "abc"
    assert at.slider(key="pg_alpha").value == pytest.approx(0.3)
    state, _ = common.parse_settings(common.configs_json([Config(divergence="forward_kl"), Config(divergence="tv")]))
    assert common.parse_settings(Config(kind="hybrid", moments=(0.5, 0.5), epsilon=0.1).to_json())[0][
        "pg_epsilon"] == 0.1
    assert state["pg_divs"] == ["forward_kl", "tv"]
    with pytest.raises(ValueError):
        common.parse_settings(json.dumps([Config().to_dict(), Config(steps=7).to_dict()]))
