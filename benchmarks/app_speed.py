"""How fast the app feels in a lecture, measured in a real browser (Debian's Chromium via playwright).

    python benchmarks/app_speed.py [--repeats 5]

Each number is the median of ``--repeats`` runs; issue 13's targets are in brackets:

- first view, new browser: a fresh ``streamlit run app.py``, healthy (its warm-up done), opened by a
  browser that has never seen it, until the Playground's first chart is drawn and the run has
  finished (≤ 2 s).  Streamlit's own JavaScript (about 80 files) is fetched and compiled first;
- first view, after a restart: the same, by a browser that opened the app before — the lecture case
  (the lecturer prepared the class; Streamlit's files are cached as immutable);
- first view, right at start: a new browser opening the app the moment the server answers, while
  the warm-up (app_pages/warmup.py, a few seconds) still runs in the background;
- Streamlit's floor: the first view, new browser, of a one-chart Streamlit app started the same
  way — no app can be faster on this machine; the ratio app/floor is what the app adds;
- β change, warm: the β slider moved one step on a page already shown and already changed once, until
  the new log Z is shown and the rerun has finished (≤ 0.5 s; each run's value is the median of 3
  changes); the first change on a new page (the slider's and the URL's first update) is its own row;
  Streamlit's floor for it: the same on the floor app (a slider, a metric and a chart);
- default Train: the Train button pressed with the default settings, until the summary table is
  shown and the rerun has finished (≤ 2 s); in a new browser (Streamlit's table code fetched and
  compiled on this first use) and in the lecture case.  The server trained the default settings
  while it warmed up (the run cache, app_pages/pg_results.trained), so this is the page's own cost;
- Train, new settings: β moved one step, then Train — three runs computed while a progress bar
  moves (what every Train of settings not trained before costs).

Never ``playwright install``: the Chromium is the system's (/usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_app_browser import CHROMIUM, CHROMIUM_ARGS, IDLE_JS, free_port, start_server, stop_server  # noqa: E402

#: Issue 13's targets in seconds (None: measured for comparison).
TARGETS = {"first view, new browser": 2.0, "first view, after a restart": 2.0, "first view, right at start": None,
           "Streamlit's floor": None, "Streamlit's floor, β change": None,
           "β change, first on the page": None, "β change (warm)": 0.5,
           "default Train": 2.0, "default Train, after a restart": 2.0,
           "Train, new settings": None}

LOG_Z_JS = """(old) => { const m = [...document.querySelectorAll('[data-testid="stMetric"]')]
    .find(e => e.innerText.includes('log Z'));
    return m && m.querySelector('[data-testid="stMetricValue"]').innerText !== old; }"""


def _idle(page, timeout=120_000):
    page.wait_for_function(IDLE_JS, timeout=timeout, polling=20)


def _log_z(page) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text="log Z").first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


FIRST_CHART = '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg'
FLOOR_APP = """import streamlit as st
st.title("Streamlit's floor")
beta = st.slider("β (KL coefficient)", 0.05, 5.0, 0.3, 0.05)
st.metric("log Z", f"{1 / beta:.4f}")
st.vega_lite_chart(spec={"data": {"values": [{"x": 1, "y": beta}, {"x": 2, "y": 1}]}, "mark": "bar",
                         "encoding": {"x": {"field": "x"}, "y": {"field": "y", "type": "quantitative"}}})
"""


def _step_beta(page, key: str) -> float:
    """One step of the β slider by keyboard (``key``: "ArrowRight" or "ArrowLeft"): the seconds from the
    key press to the new log Z shown and the rerun finished."""
    thumb = page.get_by_role("slider", name="β (KL coefficient)").first
    thumb.focus()
    before = _log_z(page)
    t0 = time.perf_counter()
    thumb.press(key)
    page.wait_for_function(LOG_Z_JS, arg=before, timeout=60_000, polling=20)
    _idle(page)
    return time.perf_counter() - t0


def _beta_change(page) -> float:
    """Seconds of one step of the β slider; the slider is stepped back afterwards (the default settings)."""
    seconds = _step_beta(page, "ArrowRight")
    _step_beta(page, "ArrowLeft")
    return seconds


def _first_view(page, url: str) -> float:
    """Seconds from opening ``url`` in ``page`` to the first chart drawn and the run finished."""
    t0 = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.locator(FIRST_CHART).first.wait_for(timeout=120_000)
    _idle(page)
    return time.perf_counter() - t0


#: The summary of a run for the settings shown: its heading, and no "Stale" warning (a page that was
#: trained before and then changed shows the old summary, marked stale, until the new one arrives).
CURRENT_SUMMARY_JS = """() => { const t = document.querySelector('[data-testid="stMain"]').innerText;
    return t.includes('Summary: where each run lands') && !t.includes('Stale: the settings changed'); }"""


def _train(page) -> float:
    """Seconds from pressing Train to the summary of the settings shown and the run finished."""
    t0 = time.perf_counter()
    page.get_by_role("button", name="Train").first.click()
    page.wait_for_function(CURRENT_SUMMARY_JS, timeout=120_000, polling=20)
    _idle(page)
    return time.perf_counter() - t0


def _train_new_settings(page) -> float:
    """Seconds of a Train whose runs are computed: β one step to the right (not timed), then Train."""
    _step_beta(page, "ArrowRight")
    assert "Stale" in page.locator('[data-testid="stMain"]').inner_text(), "the old results are marked stale"
    return _train(page)


def measure(repeats: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {k: [] for k in TARGETS}
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
        floor = Path(tmp) / "floor"
        (floor / ".streamlit").mkdir(parents=True)
        (floor / ".streamlit" / "config.toml").write_text((ROOT / ".streamlit" / "config.toml").read_text())
        (floor / "floor.py").write_text(FLOOR_APP)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        viewport = {"viewport": {"width": 1280, "height": 800}}
        try:
            for r in range(repeats):
                proc, url, log = start_server(Path(tmp) / f"floor{r}.log", script=floor / "floor.py")
                try:
                    def floor_run(context):
                        page = context.new_page()
                        out["Streamlit's floor"].append(_first_view(page, url))
                        _beta_change(page)
                        out["Streamlit's floor, β change"].append(statistics.median(_beta_change(page)
                                                                                    for _ in range(3)))
                    with_context(browser, viewport, floor_run)
                finally:
                    stop_server(proc, log)

                context = browser.new_context(**viewport)  # a browser of its own: nothing cached
                try:
                    port = free_port()
                    proc, url, log = start_server(Path(tmp) / f"server{r}.log", port=port)
                    try:
                        page = context.new_page()
                        out["first view, new browser"].append(_first_view(page, url))
                        out["β change, first on the page"].append(_beta_change(page))
                        out["β change (warm)"].append(statistics.median(_beta_change(page) for _ in range(3)))

                        out["default Train"].append(_train(page))
                        out["Train, new settings"].append(_train_new_settings(page))
                        page.close()
                    finally:
                        stop_server(proc, log)
                    # at once: the server has just answered, its warm-up still running
                    proc, url, log = start_server(Path(tmp) / f"cold{r}.log", warm=False)
                    try:
                        with_context(browser, viewport,
                                     lambda c: out["first view, right at start"].append(_first_view(c.new_page(), url)))
                    finally:
                        stop_server(proc, log)
                    # the lecture case: the server restarted, the browser has seen the app before
                    proc, url, log = start_server(Path(tmp) / f"restart{r}.log", port=port)
                    try:
                        page = context.new_page()
                        out["first view, after a restart"].append(_first_view(page, url))
                        out["default Train, after a restart"].append(_train(page))
                    finally:
                        stop_server(proc, log)
                finally:
                    context.close()
        finally:
            browser.close()
    return out


def with_context(browser, options: dict, use) -> None:
    context = browser.new_context(**options)
    try:
        use(context)
    finally:
        context.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    results = measure(args.repeats)
    print(f"{'what':<30} {'median s':>9} {'target s':>9}   all runs")
    for name, values in results.items():
        target = f"{TARGETS[name]:9.2f}" if TARGETS[name] else f"{'—':>9}"
        print(f"{name:<30} {statistics.median(values):9.2f} {target}   " + " ".join(f"{v:.2f}" for v in values))
    for app, floor in (("first view, new browser", "Streamlit's floor"),
                       ("β change (warm)", "Streamlit's floor, β change")):
        ratio = [a / f for a, f in zip(results[app], results[floor])]
        print(f"{app} / {floor}: median {statistics.median(ratio):.2f}× (each run's pair measured side by side)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
