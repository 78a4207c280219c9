"""The app in a real lecture (issue 13): one test per defect found on the old main, settings that
survive page switches and URL round trips, and every scenario run to its end."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from toyfdiv import claims, divergences, feedback, metrics, plots, tasks

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 180


pytestmark = pytest.mark.usefixtures("clear_streamlit_caches")  # tests/conftest.py


def app(page: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    clean(at)
    return at


def clean(at: AppTest, where: str = "") -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
                     + [w.value for w in at.warning] + [i.value for i in at.info] + [s.value for s in at.success])


# ---------------------------------------------------------------------------- defect 1: settings survive
def test_settings_survive_page_switches_and_results_stay_current():
    at = app()
    at.slider(key="pg_beta").set_value(1.0).run()
    at.slider(key="pg_steps").set_value(5).run()
    at.slider(key="pg_topk").set_value(17).run()
    at.button(key="pg_train").click().run()
    clean(at)
    at.segmented_control(key="pg_view").set_value("movie").run()
    for page in ("app_pages/explorer.py", "app_pages/feedback.py"):
        at.switch_page(page).run()
        clean(at, page)
    at.switch_page("app_pages/playground.py").run()
    assert at.slider(key="pg_beta").value == 1.0
    assert at.slider(key="pg_steps").value == 5
    assert at.segmented_control(key="pg_view").value == "movie", "the results' view survives too"
    assert at.slider(key="pg_topk").value == 17
    assert "Stale" not in texts(at), "the results belong to the settings shown"
    # the other pages keep theirs too
    at.switch_page("app_pages/feedback.py").run()
    at.slider(key="hf_tau").set_value(3.0).run()
    at.switch_page("app_pages/playground.py").run()
    at.switch_page("app_pages/feedback.py").run()
    assert at.slider(key="hf_tau").value == 3.0


def test_lazy_sidebar_sections_draw_only_when_open_and_keep_their_settings():
    at = app()
    lazy = ("pg_optimizer", "pg_schedule", "pg_record_every", "pg_seed", "pg_upload", "pg_paste")
    widgets = lambda: [getattr(w, "key", None) for kind in ("selectbox", "select_slider", "number_input",  # noqa: E731
                                                             "file_uploader", "text_area") for w in at.get(kind)]
    drawn = set(lazy) & set(widgets())
    assert drawn == set(), f"collapsed sections draw nothing: {drawn}"
    assert "pg_steps" in {w.key for w in at.slider}, "steps and learning rate stay in sight"
    at.session_state["pg_more"] = True
    at.run()
    assert set(lazy) - set(widgets()) == {"pg_upload", "pg_paste"}, "the open section draws its four widgets"
    at.selectbox(key="pg_optimizer").set_value("sgd").run()
    at.session_state["pg_more"] = False  # closed again: the widget goes, its value stays
    at.run()
    clean(at)
    assert "pg_optimizer" not in widgets()
    assert at.query_params["pg_optimizer"] == "sgd", "in the URL"
    from app_pages import config_io

    assert {c.optimizer for c in config_io.configs(at.session_state)} == {"sgd"}, "and in the runs Train starts"
    at.switch_page("app_pages/explorer.py").run()
    at.switch_page("app_pages/playground.py").run()
    assert {c.optimizer for c in config_io.configs(at.session_state)} == {"sgd"}, "across page switches"


def test_length_change_keeps_sequences_shown():
    at = app()
    at.slider(key="pg_topk").set_value(17).run()
    at.slider(key="pg_length").set_value(8).run()
    at.slider(key="pg_length").set_value(5).run()
    clean(at)
    assert at.slider(key="pg_topk").value == 17


def test_settings_travel_in_the_url():
    at = app()
    at.slider(key="pg_beta").set_value(1.5).run()
    at.selectbox(key="pg_kind").set_value("rlhf").run()
    at.multiselect(key="pg_divs").set_value(["js", "tv"]).run()
    assert at.query_params["pg_beta"] == "1.5"
    assert at.query_params["pg_divs"] == "js,tv"
    assert "pg_steps" not in at.query_params, "defaults stay out of the URL"
    # a fresh session opened with that URL shows the same settings
    url = dict(at.query_params.items())
    again = app(**url)
    assert again.slider(key="pg_beta").value == 1.5
    assert again.multiselect(key="pg_divs").value == ["js", "tv"]
    # a hostile or out-of-range link is ignored with a note, and the page works
    bad = app(pg_beta="1e9", pg_length="12", pg_divs="js,__import__", pg_task="nope", pg_moment0="5")
    assert bad.slider(key="pg_beta").value == 0.3
    assert bad.slider(key="pg_length").value == 5
    assert sum("Ignored the link's setting" in w.value for w in bad.warning) == 5


# ---------------------------------------------------------------------------- defect 2: GDC targets
@pytest.mark.parametrize("kind", ["pointwise", "hybrid"])
def test_gdc_targets_train_what_can_be_trained_and_offer_the_fix(kind):
    at = app()
    at.selectbox(key="pg_kind").set_value(kind).run()
    assert at.slider(key="pg_epsilon").value == 0.0, "hybrid has an ε control too"
    at.slider(key="pg_steps").set_value(5).run()
    at.button(key="pg_train").click().run()
    clean(at)
    summary = at.dataframe[0].value
    assert list(summary["run"]) == ["forward KL", "Jensen–Shannon" if "Jensen" in plots.divergence_label("js")
                                    else plots.divergence_label("js"), "target p"]
    err = " ".join(e.value for e in at.error)
    assert "reverse_kl" in err and "D_f(a‖p) = ∞" in err and "This is the lesson" in err
    task = tasks.get("reviews")
    tgt = task.target(kind)
    zero = ~np.isfinite(tgt.log_probs)
    assert f"{int(zero.sum()):,} of {zero.size:,} sequences" in err
    at.button(key="pg_smooth_reverse_kl").click().run()  # one click: ε > 0 and train again
    clean(at)
    assert at.slider(key="pg_epsilon").value == 0.01
    assert list(at.dataframe[0].value["run"])[:3] == [plots.divergence_label(d) for d in
                                                      ("reverse_kl", "forward_kl", "js")]
    assert not at.error


# ---------------------------------------------------------------------------- defect 3: captions from numbers
def test_playground_captions_follow_the_numbers_for_the_autoregressive_policy():
    at = app()
    at.selectbox(key="pg_policy").set_value("autoregressive").run()
    at.slider(key="pg_steps").set_value(40).run()
    at.button(key="pg_train").click().run()
    clean(at)
    cfgs = [c for c in __import__("app_pages.config_io", fromlist=["configs"]).configs(at.session_state)]
    from toyfdiv.config import run

    hist = {c.divergence: run(c) for c in cfgs}
    cross = {n: {k.split("/", 1)[1]: v for k, v in h.final().items() if k.startswith("divergence/")}
             for n, h in hist.items()}
    verdicts, sentence = claims.column_winners(cross)
    shown = texts(at)
    assert sentence in shown
    assert "each f wins on its own column" not in shown
    if "lost" in verdicts.values():
        assert "Not every run wins" in shown
    ent = {plots.divergence_label(n): h.final()["entropy"] for n, h in hist.items()}
    verdict, _ = claims.entropy_extremes(ent)
    assert ("most mode-seeking" in shown) == (verdict == "ordered")


def test_small_beta_collapse_is_explained():
    at = app()
    at.slider(key="pg_beta").set_value(0.05).run()
    at.button(key="pg_train").click().run()
    clean(at)
    shown = texts(at)
    from app_pages import config_io
    from toyfdiv.config import run
    from toyfdiv import sequences

    task = tasks.get("reviews")
    target = task.target("rlhf", beta=0.05)
    for c in config_io.configs(at.session_state):
        log_pi = run(c).policy.log_probs()
        top = int(np.argmax(log_pi))
        verdict, sentence = claims.concentration(
            {"pi": float(np.exp(log_pi[top])), "p": float(np.exp(target.log_probs[top]))},
            sequences.rank(target.log_probs, top), plots.divergence_label(c.divergence), task.space.decode(top))
        assert (sentence in shown) == (verdict == "collapsed")


def test_estimator_lab_verdicts_and_text():
    at = app("app_pages/estimators.py")
    shown = at.dataframe[0].value
    for _, row in shown.iterrows():
        assert row["verdict"] == claims.bias_verdict(float(row["bias"]), float(row["noise floor"]))[0]
    # forward KL with a batch Ẑ is biased at n = 4 at the default 400 trials: the bias the page promises shows
    fk = shown[(shown["divergence"] == "forward_kl") & (shown["Z"] == "batch") & (shown["n"] == 4)
               & (shown["baseline"] == "none")].iloc[0]
    assert fk["verdict"] == "biased"
    page = texts(at)
    assert "every f but forward KL is biased" not in page
    assert "except for forward KL" not in page
    assert "a rescale" in page and "a shift" in page


def test_feedback_accuracy_sentence_from_numbers():
    at = app("app_pages/feedback.py")
    at.slider(key="hf_pairs").set_value(5000).run()
    at.slider(key="hf_bias").set_value(0.0).run()
    clean(at)
    task = tasks.get("reviews")
    rater = feedback.Rater.for_task(task, temperature=2.0, length_bias=0.0)
    rng = np.random.default_rng(0)
    data = feedback.collect_preferences(rater, task.base, 5000, rng)
    train_set, held_out = data.split(0.2, rng)
    rm = feedback.fit_reward_model(train_set, feedback.ngram_features(task.space)[0], l2=1.0,
                                   centre_log_probs=task.log_a)
    acc = feedback.evaluate(rm, held_out).accuracy
    expected = claims.accuracy_vs_bayes(acc, feedback.bayes_accuracy(rater, task.base), len(held_out))[1]
    assert expected in texts(at)
    assert "noise caps any model" not in texts(at)


# ---------------------------------------------------------------------------- defect 4: stale means stale
def test_feedback_results_stay_with_their_settings():
    at = app("app_pages/feedback.py")
    at.slider(key="hf_steps").set_value(10).run()
    at.button(key="hf_train").click().run()
    before = at.dataframe[1].value.copy()
    at.slider(key="hf_beta").set_value(2.0).run()
    clean(at)
    after = at.dataframe[1].value
    assert (after["KL(π‖p_β)"] == before["KL(π‖p_β)"]).all(), "the stale table is not recomputed for the new β"
    assert any("Stale" in w.value and "β = 0.3" in w.value for w in at.warning)


def test_playground_stale_results_are_marked():
    at = app()
    at.slider(key="pg_steps").set_value(5).run()
    at.button(key="pg_train").click().run()
    before = at.dataframe[0].value.copy()
    at.slider(key="pg_beta").set_value(2.0).run()
    assert any("Stale" in w.value for w in at.warning)
    assert at.dataframe[0].value.equals(before)


# ---------------------------------------------------------------------------- defect 5: every moment reported
def test_distributional_target_reports_every_moment():
    at = app()
    at.selectbox(key="pg_kind").set_value("distributional").run()
    labels = {m.label for m in at.metric}
    task = tasks.get("reviews")
    assert {f"E_p[{n}]" for n in task.feature_names} <= labels
    tgt = task.target("distributional")
    for k, n in enumerate(task.feature_names):
        want = metrics.expectation(tgt.log_probs, task.feature_matrix[:, k])
        assert next(m.value for m in at.metric if m.label == f"E_p[{n}]") == f"{want:.4f}"


# ---------------------------------------------------------------------------- defect 6: figures, colours
def test_one_colour_per_method_and_figures_fit_1280():
    assert plots.divergence_color("RLHF") == plots.divergence_color("reverse_kl")
    assert plots.divergence_color("GDC-style") == plots.divergence_color("forward_kl")
    names = divergences.names()
    assert len({plots.divergence_color(n) for n in names}) == len(names)
    from app_pages import ui
    from toyfdiv import simplex

    # every figure the app shows is at most 10.5 in wide: 12-pt ticks are ≥ 14 px in the 916-px main column
    # of a 1280-px window (1280 − 300 sidebar − 2 × 32 padding, app_pages/ui.py's CSS)
    space = tasks.get("abc").space
    flat = np.full(space.size, -np.log(space.size))
    figs = [plots.distributions(space, {"target": flat, "base": flat}, k=5, log=True),
            plots.whole_space({"target": flat}), plots.divergence_zoo(["js", "tv"]),
            plots.simplex(simplex.BIMODAL_TARGET, ["js", "tv", "reverse_kl"], steps=5, resolution=10, ncols=3),
            plots.mode_seeking(divergences=["js"], steps=5)]
    for fig in figs:
        w = fig.get_size_inches()[0]
        assert 12 * 916 / (72 * w) >= 14 - 1e-9, f"{w} in wide"
    assert ui.DPI * 12 / 72 >= 14


def test_whole_space_plot_draws_each_distribution_sorted():
    space = tasks.get("abc").space
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(space.size))
    fig = plots.whole_space({"target": np.log(p)})
    y = fig.axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(y, np.sort(p)[::-1])


# ---------------------------------------------------------------------------- defect 7: tables
def test_huge_values_and_missing_entries_are_formatted():
    at = app()
    at.slider(key="pg_beta").set_value(0.05).run()
    at.multiselect(key="pg_divs").set_value(["pearson", "js"]).run()
    at.slider(key="pg_steps").set_value(3).run()
    at.button(key="pg_train").click().run()
    clean(at)
    summary, cross = at.dataframe[0].value, at.dataframe[1].value
    for df in (summary, cross):
        for col in df.columns:
            assert not any(v in ("None", "nan") for v in df[col] if isinstance(v, str)), col
            assert not any(isinstance(v, float) and not np.isfinite(v) for v in df[col]), col
    assert summary.iloc[-1]["s"] == "—"  # the target row has no training time
    assert "e+" in cross[cross["run"] == "pearson"].iloc[0]["pearson"]


# ---------------------------------------------------------------------------- defect 8: dark mode
def test_dark_figures_and_highlight():
    from app_pages import ui
    from PIL import Image
    import io

    space = tasks.get("abc").space
    flat = np.full(space.size, -np.log(space.size))
    data = ui.png(lambda: plots.distributions(space, {"target": flat, "base": flat}, k=3), "dark")
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float) / 255
    assert img[2, 2].mean() < 0.15, "a dark figure background"
    light = np.asarray(Image.open(io.BytesIO(ui.png(lambda: plots.whole_space({"target": flat}), "light")))
                       .convert("RGB"), dtype=float) / 255
    assert light[2, 2].mean() > 0.9
    assert "rgba(" in ui.HIGHLIGHT and "color:" not in ui.HIGHLIGHT.replace("background-color", "")


# ---------------------------------------------------------------------------- defect 9: estimator lab
def test_estimator_lab_run_clears_prompt_and_shows_every_exact_norm():
    at = app("app_pages/estimators.py")
    at.multiselect(key="el_divs").set_value(["forward_kl", "reverse_kl", "js"]).run()
    at.multiselect(key="el_baselines").set_value(["none", "dpg"]).run()
    at.multiselect(key="el_ns").set_value([256]).run()  # 256 × 400 trials × 3 = 307,200 samples: over the budget
    assert any("press **Run**" in i.value for i in at.info)
    at.button(key="el_run").click().run()
    clean(at)
    assert not any("press **Run**" in i.value for i in at.info)
    labels = [m.label for m in at.metric]
    for d in ("forward_kl", "reverse_kl", "js"):
        assert f"‖∇θ D_f‖ exact, {d}" in labels
    assert any("For js f′(1) = 0" in c.value for c in at.caption)


# ---------------------------------------------------------------------------- defect 10: the task explained
def test_task_is_explained():
    at = app()
    page = texts(at)
    assert "r(x) = sentiment(x)" in page and "contains(good)" in page and "“not good”" in page
    assert "E_p[r], reward" in {m.label for m in at.metric}


# ---------------------------------------------------------------------------- defect 11: explorer
def test_explorer_alpha_text_and_restricted_family():
    at = app("app_pages/explorer.py")
    at.segmented_control(key="ex_section").set_value("alpha").run()
    sl = at.slider(key="ex_alpha_m")
    assert (sl.min, sl.max) == (0.0, 1.0)
    sl.set_value(0.25).run()
    assert any("25% of the way" in m.value for m in at.markdown)
    at.segmented_control(key="ex_section").set_value("simplex").run()
    rows = at.dataframe[0].value
    assert all(isinstance(v, str) or v == 0 or abs(v) >= 1e-3 for v in rows["D_end"]), \
        "small values in scientific notation, never a flat 0.0000"
    at.segmented_control(key="ex_section").set_value("restricted").run()
    clean(at)
    rows = at.dataframe[0].value
    from toyfdiv import simplex

    end = simplex.restricted_flow(simplex.BIMODAL_TARGET, "reverse_kl", 1.2, steps=300, lr=0.5)[-1]
    rk = rows[rows["model"] == plots.divergence_label("reverse_kl")].iloc[0]
    from test_app import same

    assert all(same(rk[f"x{i + 1}"], end[i]) for i in range(3))


def test_simplex_contours_have_a_colour_scale_in_nats():
    """Each divergence's triangle gets its own scale (its levels differ), labelled with the unit, 12-pt ticks."""
    from app_pages import ui
    from toyfdiv import simplex

    names = ["js", "tv", "reverse_kl"]
    fig = ui.with_colour_scales(plots.simplex(simplex.BIMODAL_TARGET, names, steps=5, resolution=12, ncols=3))
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == len(names), "one scale per contour panel, none for the overlay"
    for bar in bars:
        assert bar.get_ylabel() == "D_f(π‖p), nats"
        ticks = [t for t in bar.get_yticklabels() if t.get_text()]
        assert ticks and all(t.get_fontsize() >= 12 for t in ticks)
        assert 12 * ui.DPI / 72 >= 14


# ---------------------------------------------------------------------------- defect 12: minor
def test_minor_defects():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["client"]["toolbarMode"] == "viewer"
    source = (ROOT / "app.py").read_text()
    assert "page_icon=ICON" in source and (ROOT / "app_pages" / "icon.png").exists()
    at = app(pg_share="1")  # the download/upload section open (a link can open it)
    assert "64 KB" in at.get("file_uploader")[0].proto.label
    at.multiselect(key="pg_divs").set_value(["gjsd"]).run()
    assert at.slider(key="pg_gjsd").label.startswith("p's weight w")
    at.slider(key="pg_length").set_value(8).run()
    assert any("here T = 8: sequences of up to 8 tokens" in c.value for c in at.sidebar.caption)


# ---------------------------------------------------------------------------- defect 13: lessons
def app_url_paths() -> set[str]:
    """The url paths of app.py's pages, read from its SECTIONS table (importing app.py would build the server)."""
    import ast

    tree = ast.parse((ROOT / "app.py").read_text())
    table = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "SECTIONS")
    return {url for pages in ast.literal_eval(table).values() for *_, url in pages if url}


def test_every_page_names_its_lesson():
    from app_pages.links import PAGE_LESSONS

    at = app()
    for page, names in PAGE_LESSONS.items():
        at.switch_page(page).run()
        clean(at, page)
        lessons = [c.value for c in at.caption if c.value.startswith("Goes with Lesson")]
        assert lessons, page
        for name in names:
            assert (ROOT / "lessons" / name).exists()
            assert f"lessons/{name}" in lessons[0]


@pytest.mark.parametrize("lesson", sorted(p.name for p in (ROOT / "lessons").glob("[0-9][0-9]_*.py")))
def test_every_lesson_links_back_to_its_page(lesson):
    """The lesson's first markdown cell holds the link; the link's page exists in app.py and every setting
    in its query string is one the app accepts (the same check as a shared link)."""
    from urllib.parse import parse_qsl, urlsplit

    from app_pages import links
    from app_pages import state as S

    text = (ROOT / "lessons" / lesson).read_text()
    first = text[text.index("# %% [markdown]"):]
    first = first[: first.index("# %%", 5)]
    assert links.lesson_cell_line(lesson) in first.replace("\n# ", " ").replace("\n#", " ")
    url = urlsplit(links.app_url(lesson))
    assert url.netloc == "localhost:8501"
    path = url.path.strip("/")
    assert path == "" or path in app_url_paths()
    state = {}
    for key, value in parse_qsl(url.query):
        assert S.is_setting(key), key
        state[key] = S.check(key, S._decode(key, value, state), state)
    notebook = (ROOT / "lessons" / lesson).with_suffix(".ipynb").read_text()
    assert links.app_url(lesson) in notebook, "the paired notebook was regenerated"


# ---------------------------------------------------------------------------- scenarios
def test_every_scenario_runs_to_its_end():
    from app_pages.scenario_book import SCENARIOS

    assert len(SCENARIOS) >= 7
    at = app("app_pages/scenarios.py")
    for sc in SCENARIOS:
        assert 3 <= len(sc.steps) <= 5
        assert any(s.question for s in sc.steps), "predict-then-reveal"
        at.radio(key="sc_pick").set_value(sc.key).run()
        for i, step in enumerate(sc.steps):
            if step.question:
                assert at.button(key=f"sc_reveal_{sc.key}_{i}").disabled, "predict first"
                at.radio(key=f"sc_answer_{sc.key}_{i}").set_value(step.options[0]).run()
                at.button(key=f"sc_reveal_{sc.key}_{i}").click().run()
                clean(at, f"{sc.key} step {i}")
                verdict = [x.value for x in (*at.success, *at.info) if "you predicted" in x.value]
                assert verdict, f"{sc.key}: the reveal says who was right"
            if i + 1 < len(sc.steps):
                at.button(key="sc_next").click().run()
                clean(at, f"{sc.key} step {i}")
        assert any("End of the scenario" in s.value for s in at.success), sc.key
        assert not at.error, (sc.key, [e.value for e in at.error])


def test_scenario_opens_in_the_playground():
    at = app("app_pages/scenarios.py")
    at.radio(key="sc_pick").set_value("pointwise").run()
    at.button(key="sc_open").click().run()
    clean(at)
    assert at.selectbox(key="pg_kind").value == "pointwise"
    assert at.slider(key="pg_epsilon").value == 0.0


def test_projector_mode():
    at = app()
    at.toggle(key="app_projector").set_value(True).run()
    clean(at)
    assert at.query_params["app_projector"] == "1"
    from app_pages import ui

    assert "font-size: 20px" in ui.PROJECTOR_CSS


# ---------------------------------------------------------------------------- movie and inspector
def shown_charts(at: AppTest) -> list:
    """[(Vega-Lite spec, its top-level data as a DataFrame)] of every chart on the page, in order."""
    import json

    from streamlit import dataframe_util

    return [(json.loads(el.proto.spec), dataframe_util.convert_arrow_bytes_to_pandas_df(el.proto.data.data))
            for el in at.get("vega_lite_chart")]


def test_training_movie_and_sequence_inspector():
    at = app()
    at.selectbox(key="pg_policy").set_value("autoregressive").run()
    at.slider(key="pg_steps").set_value(10).run()
    at.button(key="pg_train").click().run()
    clean(at)
    assert at.segmented_control(key="pg_view").value == "summary"
    assert shown_charts(at) == [], "only the chosen view is drawn: the summary has tables, no chart"
    at.segmented_control(key="pg_view").set_value("movie").run()
    clean(at)
    before = shown_charts(at)
    at.slider(key="pg_frame").set_value(5).run()
    clean(at)
    after = shown_charts(at)
    assert len(after) == len(before) == 5, "four curve panels and the bars"
    cursors = [[layer["data"]["values"][0]["step"] for layer in spec["layer"] if layer["mark"]["type"] == "rule"
                and "x" in layer["encoding"]] for spec, _ in after[:4]]
    assert cursors == [[5]] * 4, "a cursor on every curve panel, at the chosen step"
    assert not before[4][1].equals(after[4][1]), "the bars move with the step"
    assert "after step 5 of 10" in after[4][0]["title"]
    at.button(key="pg_play").click().run()
    clean(at)
    at.segmented_control(key="pg_view").set_value("space").run()
    clean(at)
    (_, space_data), = shown_charts(at)
    from test_app import same

    for name, h in at.session_state["pg_result"]["histories"].items():
        shown = space_data[space_data["model"] == plots.divergence_label(name)]["probability"]
        assert same(shown.max(), np.exp(h.policy.log_probs().max())), "the whole space shows the final policies"
    task = tasks.get("reviews")
    target = task.target("rlhf", beta=0.3)
    pick = "not good </s>"
    at.selectbox(key="pg_inspect").set_value(pick).run()
    clean(at)
    i = task.space.index(pick)
    from toyfdiv import sequences

    rows = at.dataframe[-1].value
    row = rows[rows["model"] == "target"].iloc[0]
    assert same(row["prob"], np.exp(target.log_probs[i]))
    path = sequences.token_path(task.space, target.log_probs, i)
    assert same(row["2. good"], path[1][1])
    assert f"rank under p: {sequences.rank(target.log_probs, i):,}" in texts(at)
