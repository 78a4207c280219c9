"""The Playground's browser-drawn charts (app_pages/charts.py) and the figure data they share with the
library's matplotlib figures (plots.top_sequences, sorted_probabilities, metric_curve); the server's
warm-up (app_pages/warmup.py) and the st.App that `streamlit run app.py` discovers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app_pages import charts
from toyfdiv import config, plots, tasks
from toyfdiv.space import SequenceSpace

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def reviews():
    task = tasks.get("reviews")
    return task, task.target("rlhf", beta=0.3)


@pytest.fixture(scope="module")
def runs():
    return {d: config.run(config.Config(divergence=d, steps=12, record_every=3)) for d in ("reverse_kl", "js")}


# ---------------------------------------------------------------------------- the shared figure data
def test_top_sequences_are_the_k_most_probable_under_the_first(reviews):
    task, target = reviews
    p = np.exp(target.log_probs)
    top, probs = plots.top_sequences(task.space, {"target": target.log_probs, "base": task.log_a}, k=7)
    order = sorted(range(p.size), key=lambda i: (-p[i], i))[:7]  # ties in index order
    assert list(top) == order
    np.testing.assert_allclose(probs["target"], p[order], rtol=1e-15)
    np.testing.assert_allclose(probs["base"], np.exp(task.log_a)[order], rtol=1e-15)
    assert plots.top_sequences(task.space, {"target": target.log_probs}, k=10**6)[0].size == task.space.size
    with pytest.raises(ValueError, match="dists is empty"):
        plots.top_sequences(task.space, {}, k=3)


def test_sorted_probabilities_drop_zeros_and_sort_descending():
    p = np.array([0.1, 0.0, 0.6, 0.3])
    q = plots.sorted_probabilities({"p": p})["p"]
    np.testing.assert_array_equal(q, [0.6, 0.3, 0.1])
    with pytest.raises(ValueError, match="neither normalised"):
        plots.sorted_probabilities({"p": np.array([0.5, 0.6])})


# ---------------------------------------------------------------------------- bars
def test_bars_show_the_library_numbers_in_the_library_colours(reviews):
    task, target = reviews
    dists = {"target": target.log_probs, "base": task.log_a, "js": task.log_a}
    spec = charts.bars(task.space, dists, k=5, title="T")
    top, probs = plots.top_sequences(task.space, dists, k=5)
    rows = spec["data"]["values"]
    assert len(rows) == 15 and spec["title"] == "T"
    for name, p in probs.items():
        got = [r["probability"] for r in rows if r["model"] == plots.divergence_label(name)]
        np.testing.assert_array_equal(got, p)
    assert spec["encoding"]["y"]["sort"] == {"field": "rank"}, "most probable on top"
    ranked = sorted({(r["rank"], r["sequence"]) for r in rows})
    assert [text for _, text in ranked] == [task.space.decode(int(i)) for i in top]
    scale = spec["encoding"]["x"]["scale"]
    low = min(r["probability"] for r in rows)
    assert scale["type"] == "log" and scale["domainMax"] == 1
    assert low / 10 <= scale["domainMin"] < low, "every bar, the smallest too, has a length"
    assert np.log10(scale["domainMin"]) == round(np.log10(scale["domainMin"])), "a power of ten"
    colour = spec["encoding"]["color"]["scale"]
    assert colour["domain"] == [plots.divergence_label(n) for n in dists]
    assert colour["range"] == plots.label_colors(list(dists))


def test_the_bars_axis_starts_a_decade_below_a_smallest_value_that_is_a_power_of_ten():
    space = SequenceSpace(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], 3)
    spec = charts.bars(space, {"target": np.log(np.full(1000, 1e-3))}, k=4)
    assert spec["encoding"]["x"]["scale"]["domainMin"] == pytest.approx(1e-4, rel=1e-12)


def test_bars_drop_zero_probabilities_which_a_log_axis_cannot_show():
    space = SequenceSpace(["a", "b"], 2)
    p = np.log(np.array([0.5, 0.5, 0.0, 0.0]) + 0.0, where=np.array([True, True, False, False]),
               out=np.full(4, -np.inf))
    spec = charts.bars(space, {"target": p, "base": np.log(np.full(4, 0.25))}, k=4)
    target_rows = [r for r in spec["data"]["values"] if r["model"] == plots.divergence_label("target")]
    assert len(target_rows) == 2 and all(r["probability"] > 0 for r in target_rows)


def test_dark_theme_lightens_only_the_target_black(reviews):
    task, target = reviews
    names = ["target", "base", "reverse_kl"]
    light, dark = charts.colours(names, "light"), charts.colours(names, "dark")
    assert light[0].lower() == "#222222" and dark[0] == "#e8e8e8"
    assert light[1:] == dark[1:]


def test_chart_text_is_at_least_14_px():
    sizes = [charts.CONFIG["axis"]["labelFontSize"], charts.CONFIG["axis"]["titleFontSize"],
             charts.CONFIG["legend"]["labelFontSize"], charts.CONFIG["title"]["fontSize"]]
    assert min(sizes) >= 14


# ---------------------------------------------------------------------------- the whole space
def test_whole_space_keeps_every_point_of_a_small_space():
    p = np.random.default_rng(1).dirichlet(np.ones(81))
    assert p.size <= charts.MAX_POINTS
    spec = charts.whole_space({"target": np.log(p), "base": np.log(np.full(81, 1 / 81))})
    rows = [r for r in spec["data"]["values"] if r["model"] == plots.divergence_label("target")]
    q = np.sort(p)[::-1]
    assert [r["rank"] for r in rows] == list(range(1, 82))
    np.testing.assert_allclose([r["probability"] for r in rows], q, rtol=1e-12)


def test_whole_space_thins_a_large_space_to_log_spaced_ranks_keeping_both_ends():
    rng = np.random.default_rng(0)
    n = 50_000
    p = rng.dirichlet(np.ones(n))
    spec = charts.whole_space({"target": np.log(p)})
    ranks = [r["rank"] for r in spec["data"]["values"]]
    q = np.sort(p)[::-1]
    assert len(ranks) <= charts.MAX_POINTS and ranks[0] == 1 and ranks[-1] == n
    assert ranks == sorted(set(ranks))
    np.testing.assert_allclose([r["probability"] for r in spec["data"]["values"]], q[np.array(ranks) - 1])
    r = np.array(ranks)
    gaps = np.diff(np.log(r))
    step = np.log(n) / (charts.MAX_POINTS - 1)
    assert np.all(gaps <= step + 1.0 / r[:-1]), "evenly spread on the log axis, up to rounding to whole ranks"


# ---------------------------------------------------------------------------- training curves
def test_training_panels_carry_each_runs_recorded_metrics(runs):
    panels = charts.training_panels(runs, target_values={"entropy": 1.5}, cursor=6)
    assert [p["title"] for p in panels] == [plots.metric_curve(runs["js"], k)[2]
                                          for k in ("divergence", "alignment", "kl_from_base", "entropy")]
    for spec, key in zip(panels, ("divergence", "alignment", "kl_from_base", "entropy")):
        rows = spec["data"]["values"]
        for name, hist in runs.items():
            y = plots.metric_curve(hist, key)[0]
            got = [(r["step"], r["value"]) for r in rows if r["model"] == plots.divergence_label(name)]
            assert got == [(int(s), float(v)) for s, v in zip(hist.step, y)]
        rules = {tuple(layer["encoding"]): layer["data"]["values"][0] for layer in spec["layer"][1:]}
        assert rules[("x",)] == {"step": 6}
        assert (("y", "tooltip") in rules) == (key == "entropy")
    assert panels[0]["layer"][0]["encoding"]["y"]["scale"] == {"type": "log"}, "divergences on a log axis"
    assert panels[3]["layer"][0]["encoding"]["y"]["scale"] == {"zero": False}


def test_a_divergence_panel_with_no_positive_value_is_linear(runs):
    import dataclasses

    hist = runs["js"]  # a run that started at its target: D = 0 at every record
    flat = dataclasses.replace(hist, metrics={**hist.metrics, "divergence/js": np.zeros(len(hist.step))})
    spec = charts.training_panels({"js": flat}, keys=("divergence",))[0]
    assert spec["layer"][0]["encoding"]["y"]["scale"] == {"zero": False}
    assert len(spec["data"]["values"]) == len(hist.step)


def test_long_runs_are_thinned_evenly_keeping_the_last_step():
    idx = charts._thin(5001)
    assert idx[0] == 0 and idx[-1] == 5000 and idx.size <= charts.MAX_POINTS
    assert np.diff(idx).max() - np.diff(idx).min() <= 1
    np.testing.assert_array_equal(charts._thin(7), np.arange(7))


# ---------------------------------------------------------------------------- the server
def test_streamlit_run_finds_the_warmed_up_server_in_app_py():
    from streamlit.web.server.app_discovery import discover_asgi_app

    found = discover_asgi_app(ROOT / "app.py")
    assert found.is_asgi_app and found.app_name == "app"
    source = (ROOT / "app.py").read_text()
    assert 'if __name__ == "__main__":' in source
    assert "lifespan=warmup.lifespan, routes=warmup.routes()" in source


def test_the_warm_up_runs_in_the_background_and_says_when_it_is_ready():
    import asyncio

    from app_pages import warmup

    warmup.READY.clear()
    status = lambda: asyncio.run(warmup.ready(None)).status_code  # noqa: E731
    assert status() == 503

    async def serve():
        async with warmup.lifespan(None):  # returns at once: the server serves while warming up
            return warmup.READY.is_set()

    assert asyncio.run(serve()) is False
    assert warmup.READY.wait(timeout=120), "the warm-up finished"
    assert status() == 200
    assert [r.path for r in warmup.routes()] == [warmup.READY_PATH]
    assert warmup.warm_up() > 0, "and the warm-up itself raises nothing (a failure would only be swallowed above)"
    assert not warmup.READY_PATH.startswith(("/_stcore/", "/media/", "/component/", "/static/"))


def test_projector_mode_enlarges_every_chart_text_and_nothing_else(reviews):
    task, target = reviews
    spec = charts.bars(task.space, {"target": target.log_probs}, k=3)
    big = charts.projected(spec)
    assert big["config"]["axis"]["labelFontSize"] == 14 * charts.PROJECTOR_SCALE
    assert big["config"]["title"]["fontSize"] == 17 * charts.PROJECTOR_SCALE
    assert big["config"]["legend"]["symbolSize"] == spec["config"]["legend"]["symbolSize"]
    assert big["encoding"] == spec["encoding"] and spec["config"]["axis"]["labelFontSize"] == 14, "a copy"


def test_the_playground_draws_larger_chart_text_in_projector_mode():
    import json

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.toggle(key="app_projector").set_value(True).run()
    assert not at.exception
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["config"]["axis"]["labelFontSize"] == 14 * charts.PROJECTOR_SCALE


def test_runs_sharing_a_divergence_are_told_apart_as_in_the_figure(runs):
    two = {"lr 0.1": runs["js"], "lr 0.3": runs["js"]}
    spec = charts.training_panels(two, keys=("entropy",))[0]
    labels = plots.run_labels(two)
    assert list(labels.values()) == ["lr 0.1 — " + plots.divergence_label("js"), "lr 0.3 — " + plots.divergence_label("js")]
    assert spec["layer"][0]["encoding"]["color"]["scale"]["domain"] == list(labels.values())
    assert {r["model"] for r in spec["data"]["values"]} == set(labels.values())
    fig = plots.training_curves(two, keys=("entropy",))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(labels.values())


# ---------------------------------------------------------------------------- the run cache
def test_the_warm_up_trains_the_default_settings_into_the_run_cache():
    from app_pages import config_io, pg_results, warmup
    from toyfdiv import config

    pg_results.trained.clear()
    warmup.warm_up()
    calls = []
    for c in config_io.configs({}):
        found = pg_results.trained(c.to_json(), lambda k, n: calls.append(k))
        fresh = config.run(c)
        assert found.final() == fresh.final(), f"{c.divergence}: the cached run is the run"
        np.testing.assert_array_equal(found.policy.log_probs(), fresh.policy.log_probs())
    assert calls == [], "every default run was found in the cache: no update computed"
    other = config_io.configs({})[0].replace(steps=3)
    pg_results.trained(other.to_json(), lambda k, n: calls.append(k))
    assert calls == [1, 2, 3], "settings not trained before are computed, with progress"
