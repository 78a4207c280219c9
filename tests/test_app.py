"""The Streamlit app, page by page, with streamlit.testing.v1.AppTest.

For every page: the default run has no exception; every widget set to each of its extreme
values reruns without exception; the numbers shown equal the library's for the same
settings.  A randomised test draws widget combinations (fixed seed) and trains.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from toyfdiv import divergences, estimator_lab, experiments, feedback, simplex, tasks
from toyfdiv.config import Config

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGES = {"playground": None, "explorer": "app_pages/explorer.py", "estimators": "app_pages/estimators.py",
         "feedback": "app_pages/feedback.py"}
TIMEOUT = 120


@pytest.fixture(autouse=True)
def clear_caches():
    """st.cache_data / st.cache_resource live as long as the pytest process: start every test cold."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


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
    """Set every widget to each extreme, rerun, check, and restore it. Returns the number of reruns."""
    runs = 0
    for kind, key in widgets(at):
        if key in skip:
            continue
        w = get(at, kind, key)
        if w is None:  # hidden by an earlier change that was restored
            continue
        original = w.value
        for value in extremes(kind, w):
            w = get(at, kind, key)
            if w is None:
                break
            w.set_value(value).run()
            runs += 1
            assert_clean(at, f"{page}: {key} = {value!r}")
        w = get(at, kind, key)
        if w is not None:
            w.set_value(original)  # restored; the next widget's run (or the last one below) applies it
    at.run()
    assert_clean(at, f"{page}: restored")
    return runs


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# ---------------------------------------------------------------------------- default runs
@pytest.mark.parametrize("page", list(PAGES))
def test_default_run_has_no_exception(page):
    at = open_page(page)
    assert not at.error, [e.value for e in at.error]
    assert at.latex, "every page shows formulas"
    assert any("ICML 2023" in c.value or "2023" in c.value for c in at.caption), "formulas cite their papers"


# ---------------------------------------------------------------------------- extremes
def test_playground_widget_extremes():
    at = open_page("playground")
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
    at = open_page("playground")
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
    assert any("epsilon" in e.value or "ε" in e.value for e in at.error)


def test_explorer_widget_extremes():
    at = open_page("explorer")
    for section in at.segmented_control(key="ex_section").options:
        at.segmented_control(key="ex_section").set_value(section).run()
        assert_clean(at, section)
        sweep(at, f"explorer[{section}]", skip=("ex_section",))


def test_estimator_lab_widget_extremes():
    at = open_page("estimators")
    sweep(at, "estimators", skip=("el_task", "el_kind"))
    for task in tasks.names():
        at.selectbox(key="el_task").set_value(task).run()
        assert_clean(at, task)
    at.selectbox(key="el_task").set_value("abc").run()
    at.slider(key="el_length").set_value(2).run()
    for kind in tasks.TARGET_KINDS:
        at.selectbox(key="el_kind").set_value(kind).run()
        assert_clean(at, kind)
    at.selectbox(key="el_kind").set_value("rlhf").run()
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
    at.slider(key="hf_length").set_value(12).run()  # over the app's limit: explained
    assert_clean(at)
    assert any("too large" in e.value for e in at.error)
    at.slider(key="hf_length").set_value(7).run()  # within the app's limit, over the library's N² limit
    assert_clean(at)
    assert any("smaller space" in e.value or "N²" in e.value for e in at.error)
    at.slider(key="hf_length").set_value(1).run()
    assert_clean(at)


# ---------------------------------------------------------------------------- numbers equal the library's
def test_playground_numbers_equal_the_library():
    at = open_page("playground")
    task = tasks.get("reviews")
    target = task.target("rlhf", beta=0.3)
    ref = experiments.target_row(target)
    assert metric(at, "log Z") == f"{target.log_z:.4f}"
    assert metric(at, "KL(p‖a), nats") == f"{ref['kl_from_base']:.4f}"
    assert metric(at, "H(p), nats") == f"{ref['entropy']:.4f}"
    assert metric(at, "Sequences N") == f"{task.space.size:,}"

    at.slider(key="pg_steps").set_value(15).run()
    at.button(key="pg_train").click().run()
    assert_clean(at)
    shown = at.dataframe[0].value
    hist = experiments.compare("reviews", "rlhf", ["reverse_kl", "forward_kl", "js"], policy="ngram", steps=15,
                               lr=0.1, target_options={"beta": 0.3}, policy_options={"order": 2})
    rows = experiments.summary_table(hist)
    for i, row in enumerate(rows):
        assert shown.iloc[i]["run"] == row["divergence"]
        np.testing.assert_allclose(shown.iloc[i]["own D_f(π‖p) (nats)"], row["final_divergence"], rtol=1e-12)
        np.testing.assert_allclose(shown.iloc[i]["KL(π‖a) (nats)"], row["kl_from_base"], rtol=1e-12)
        np.testing.assert_allclose(shown.iloc[i]["H(π) (nats)"], row["entropy"], rtol=1e-12)
        np.testing.assert_allclose(shown.iloc[i]["E_π[reward]"], row["alignment"], rtol=1e-12)
        np.testing.assert_allclose(shown.iloc[i]["distinct in 100 samples"], row["distinct_100"], rtol=1e-12)
    cross = at.dataframe[1].value
    np.testing.assert_allclose(cross.iloc[0]["js"], hist["reverse_kl"].final()["divergence/js"], rtol=1e-12)
    # each Config of the shared JSON reproduces its run exactly
    from toyfdiv.config import run

    configs = json.loads(common_json(at))
    assert [c["divergence"] for c in configs] == ["reverse_kl", "forward_kl", "js"]
    again = run(Config.from_dict(configs[2]))
    np.testing.assert_allclose(again.final()["divergence/js"], rows[2]["final_divergence"], rtol=1e-12)


def common_json(at: AppTest) -> str:
    from app_pages import common

    s = {k: at.session_state[k] for k in ("pg_task", "pg_length", "pg_eos", "pg_kind", "pg_beta", "pg_policy",
                                          "pg_order", "pg_steps", "pg_lr", "pg_optimizer", "pg_schedule",
                                          "pg_seed", "pg_estimator")}
    settings = dict(task=s["pg_task"], length=s["pg_length"], eos=s["pg_eos"], kind=s["pg_kind"], beta=s["pg_beta"],
                    epsilon=None, moments=None, policy=s["pg_policy"], policy_options={"order": s["pg_order"]},
                    divergences=["reverse_kl", "forward_kl", "js"], estimator="exact", estimator_options={},
                    optimizer=s["pg_optimizer"], schedule=s["pg_schedule"], steps=s["pg_steps"], lr=s["pg_lr"],
                    seed=s["pg_seed"])
    return common.configs_json(common.playground_configs(settings))


def test_explorer_numbers_equal_the_library():
    at = open_page("explorer")
    shown = at.dataframe[0].value
    t = 2.0
    for _, row in shown.iterrows():
        div = divergences.get(row["divergence"])
        np.testing.assert_allclose(row["f(t)"], div.f(np.array([t]))[0], rtol=1e-12)
        np.testing.assert_allclose(row["R = −f′(t)"], div.pseudo_reward(np.log([t]))[0], rtol=1e-12)
    at.segmented_control(key="ex_section").set_value(at.segmented_control(key="ex_section").options[2]).run()
    rows = at.dataframe[0].value
    p = np.array([62, 33, 5.0])
    s = np.array([10, 10, 80.0])
    path = simplex.gradient_flow(np.log(p / p.sum()), "js", s / s.sum(), steps=300, lr=0.5)
    js = rows[rows["divergence"] == "js"].iloc[0]
    np.testing.assert_allclose([js["π1 (end)"], js["π2 (end)"], js["π3 (end)"]], path[-1], rtol=1e-12)


def test_estimator_lab_numbers_equal_the_library():
    at = open_page("estimators")
    shown = at.dataframe[0].value
    task = tasks.get("reviews")
    target = task.target("rlhf")
    lib = estimator_lab.estimator_stats(experiments.make_policy(task), target, "js", n=64, trials=100,
                                        rng=np.random.default_rng(0), baselines=("none", "mean", "dpg"),
                                        z_options=("exact", "batch"))
    for row in lib:
        got = shown[(shown["n"] == 64) & (shown["baseline"] == row["baseline"]) & (shown["Z"] == row["z"])].iloc[0]
        np.testing.assert_allclose(got["bias"], row["bias"], rtol=1e-12)
        np.testing.assert_allclose(got["variance"], row["variance"], rtol=1e-12)
        np.testing.assert_allclose(got["cosine"], row["cosine"], rtol=1e-12)


def test_feedback_numbers_equal_the_library():
    at = open_page("feedback")
    task = tasks.get("reviews")
    rater = feedback.Rater.for_task(task, temperature=2.0, length_bias=2.0)
    rng = np.random.default_rng(0)
    data = feedback.collect_preferences(rater, task.base, 100, rng)
    train_set, held_out = data.split(0.2, rng)
    rm = feedback.fit_reward_model(train_set, feedback.ngram_features(task.space)[0], l2=1.0,
                                   center_log_probs=task.log_a)
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

    np.testing.assert_allclose(got["KL(π‖a)"], metrics.kl(dpo.policy.log_probs(), task.log_a), rtol=1e-10)


# ---------------------------------------------------------------------------- reading aids for the lecture
def test_playground_reading_aids():
    """After Train, one sentence names the lowest- and highest-entropy runs (library numbers), the
    cross table marks each column's smallest value, and metric units sit in the labels."""
    at = open_page("playground")
    assert {m.label for m in at.metric} >= {"KL(p‖a), nats", "H(p), nats"}
    at.slider(key="pg_steps").set_value(15).run()
    at.button(key="pg_train").click().run()
    assert_clean(at)
    hist = experiments.compare("reviews", "rlhf", ["reverse_kl", "forward_kl", "js"], policy="ngram", steps=15,
                               lr=0.1, target_options={"beta": 0.3}, policy_options={"order": 2})
    rows = experiments.summary_table(hist)
    lo, hi = min(rows, key=lambda r: r["entropy"]), max(rows, key=lambda r: r["entropy"])
    read = next(m.value for m in at.markdown if m.value.startswith("**Read it:**"))
    assert f"{lo['entropy']:.3f} nats" in read and f"{hi['entropy']:.3f} nats" in read
    assert f"they give {lo['distinct_100']:.0f} and {hi['distinct_100']:.0f} different sequences" in read
    from toyfdiv import plots

    assert read.index(plots.divergence_label(lo["divergence"])) < read.index(plots.divergence_label(hi["divergence"]))
    assert any("highlighted" in c.value for c in at.caption)
    cross = at.dataframe[1].value  # the values stay the library's (the Styler only formats)
    np.testing.assert_allclose(cross.iloc[1]["forward_kl"], hist["forward_kl"].final()["divergence/forward_kl"],
                               rtol=1e-12)


def test_too_large_space_names_the_length_that_fits():
    at = open_page("playground")
    at.slider(key="pg_length").set_value(12).run()
    assert_clean(at)
    msg = " ".join(e.value for e in at.error)
    assert "too large" in msg and "Length T to 8 or less" in msg and "97,656" in msg
    assert get(at, "button", "pg_train") is None, "nothing to train until the space fits"
    at.checkbox(key="pg_eos").set_value(False).run()
    msg = " ".join(e.value for e in at.error)
    assert "Length T to 7 or less" in msg  # 5**7 = 78,125 sequences of exactly T tokens


def test_explorer_shows_every_selected_generator():
    at = open_page("explorer")
    generators = [x.value.strip("$\n ") for x in at.latex]
    generators = [g for g in generators if g.startswith("f(t) = ")]
    assert len(generators) == len(divergences.names())
    assert generators[-1].startswith("f(t) = -0.25"), "the long gjsd generator gets its own row, last"


# ---------------------------------------------------------------------------- shareable settings
def test_settings_round_trip_and_hostile_files_are_rejected():
    at = open_page("playground")
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
               b'{"policy_options": {"order": {"__class__": 1}}}', b'[]', b'"a string"']
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
    assert state["pg_divs"] == ["forward_kl", "tv"]
    with pytest.raises(ValueError):
        common.parse_settings(json.dumps([Config().to_dict(), Config(steps=7).to_dict()]))


# ---------------------------------------------------------------------------- random combinations
def test_random_widget_combinations():
    """A few dozen random settings of the Playground, each trained for a few steps, plus random
    settings of the other pages: no exception anywhere (library refusals are explained)."""
    rnd = random.Random(20240601)
    at = open_page("playground")
    names = divergences.names()
    trained = 0
    for draw in range(24):
        task = rnd.choice(tasks.names())
        t = tasks.get(task)
        kind = rnd.choice(tasks.TARGET_KINDS)
        values = dict(pg_task=task, pg_length=rnd.randint(1, 5), pg_eos=rnd.random() < 0.5, pg_kind=kind,
                      pg_beta=rnd.choice([0.05, 0.3, 1.0, 5.0]), pg_epsilon=rnd.choice([0.0, 0.1, 0.5]),
                      pg_policy=rnd.choice(experiments.POLICIES), pg_fit_steps=10, pg_n_hidden=rnd.randint(1, 8),
                      pg_order=rnd.randint(1, 4), pg_divs=rnd.sample(names, rnd.randint(1, 3)),
                      pg_alpha=rnd.choice([-1.0, 0.0, 0.5, 1.0, 2.0]), pg_gjsd=rnd.choice([0.05, 0.5, 0.95]),
                      pg_estimator=rnd.choice(["exact", "sampled"]), pg_n=rnd.choice([8, 64, 256]),
                      pg_baseline=rnd.choice(["none", "mean", "loo", "ema", "dpg"]),
                      pg_z=rnd.choice(["exact", "batch", "running"]), pg_optimizer=rnd.choice(["adam", "sgd"]),
                      pg_schedule=rnd.choice(["constant", "cosine", "exponential"]), pg_steps=rnd.randint(1, 4),
                      pg_lr=rnd.choice([0.01, 0.1, 1.0]), pg_seed=rnd.randint(0, 10))
        phi = t.feature_matrix
        for k in range(phi.shape[1]):
            lo, hi = float(phi[:, k].min()), float(phi[:, k].max())
            values[f"pg_moment{k}"] = round(rnd.uniform(lo, hi) * 20) / 20
        for key, value in values.items():
            at.session_state[key] = value
        at.run()
        assert_clean(at, f"draw {draw}: {values}")
        button = get(at, "button", "pg_train")
        if button is None:  # the target itself is refused (explained) for this draw
            assert at.error, f"draw {draw}: no Train button and no explanation"
            continue
        button.click().run()
        assert_clean(at, f"draw {draw}: {values}")
        trained += 1
    assert trained >= 12, f"only {trained} of 24 draws could train"
    for page, count in (("explorer", 6), ("estimators", 6), ("feedback", 6)):
        at = open_page(page)
        for draw in range(count):
            for kind, key in rnd.sample(widgets(at), k=min(4, len(widgets(at)))):
                w = get(at, kind, key)
                if w is None:
                    continue
                value = rnd.choice(extremes(kind, w) + [w.value])
                if kind == "multiselect" and not value:
                    value = [_raw(w.options[0])]
                if page == "estimators" and key == "el_ns":
                    value = [4, 64]
                w.set_value(value).run()
                assert_clean(at, f"{page} draw {draw}: {key} = {value!r}")
