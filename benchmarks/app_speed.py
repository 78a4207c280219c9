"""How fast the app feels in a lecture, measured in a real browser (Debian's Chromium via playwright).

    python benchmarks/app_speed.py [--repeats 5]

Three numbers, each the median of ``--repeats`` runs (issue 13's targets in brackets):

- first view: a fresh ``streamlit run app.py``, healthy, then the Playground opened until its
  first figure is shown and the run has finished (≤ 2 s);
- β change, warm: the β slider moved one step on a page already shown, until the new log Z is
  shown and the rerun has finished (≤ 0.5 s);
- default Train: the Train button pressed with the default settings, until the summary table is
  shown and the rerun has finished (≤ 2 s).

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

from tests.test_app_browser import CHROMIUM, CHROMIUM_ARGS, IDLE_JS, start_server, stop_server  # noqa: E402

LOG_Z_JS = """(old) => { const m = [...document.querySelectorAll('[data-testid="stMetric"]')]
    .find(e => e.innerText.includes('log Z'));
    return m && m.querySelector('[data-testid="stMetricValue"]').innerText !== old; }"""


def _idle(page, timeout=120_000):
    page.wait_for_function(IDLE_JS, timeout=timeout, polling=20)


def _log_z(page) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text="log Z").first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def measure(repeats: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"first view": [], "β change (warm)": [], "default Train": []}
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for r in range(repeats):
                proc, url, log = start_server(Path(tmp) / f"server{r}.log")
                try:
                    page = browser.new_page(viewport={"width": 1280, "height": 800})
                    t0 = time.perf_counter()
                    page.goto(url, wait_until="domcontentloaded")
                    page.locator('[data-testid="stImage"] img').first.wait_for(timeout=120_000)
                    _idle(page)
                    out["first view"].append(time.perf_counter() - t0)

                    thumb = page.get_by_role("slider", name="β (KL coefficient)").first
                    thumb.focus()
                    before = _log_z(page)
                    t0 = time.perf_counter()
                    thumb.press("ArrowRight")
                    page.wait_for_function(LOG_Z_JS, arg=before, timeout=60_000, polling=20)
                    _idle(page)
                    out["β change (warm)"].append(time.perf_counter() - t0)
                    changed = _log_z(page)
                    thumb.press("ArrowLeft")  # back to the default settings
                    page.wait_for_function(LOG_Z_JS, arg=changed, timeout=60_000, polling=20)
                    _idle(page)

                    t0 = time.perf_counter()
                    page.get_by_role("button", name="Train").first.click()
                    page.get_by_text("Summary: where each run lands").wait_for(timeout=120_000)
                    _idle(page)
                    out["default Train"].append(time.perf_counter() - t0)
                    page.close()
                finally:
                    stop_server(proc, log)
        finally:
            browser.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    results = measure(args.repeats)
    targets = {"first view": 2.0, "β change (warm)": 0.5, "default Train": 2.0}
    print(f"{'what':<18} {'median s':>9} {'target s':>9}   all runs")
    for name, values in results.items():
        print(f"{name:<18} {statistics.median(values):9.2f} {targets[name]:9.2f}   "
              + " ".join(f"{v:.2f}" for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
