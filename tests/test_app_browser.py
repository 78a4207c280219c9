"""The app in a real browser: `streamlit run app.py` headless, driven by Chromium through playwright.

Needs Debian's chromium (``apt-get install chromium``; never ``playwright install``); the
test is skipped when it is missing.  The server is a subprocess on a free loopback port and
is always stopped (fixture teardown), even when the test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """`streamlit run app.py` on a free loopback port; yields its URL; always stopped afterwards."""
    port = free_port()
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                raise RuntimeError(f"streamlit did not become healthy:\n{(tmp_path / 'streamlit.log').read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (start_new_session)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


def metric_value(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the app has finished its rerun (the status widget stops showing 'Running')."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]').first.inner_text()


def test_browser_slider_changes_numbers_and_figure(server, tmp_path):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.goto(server, wait_until="domcontentloaded")
            page.get_by_text("log Z", exact=False).first.wait_for(timeout=60_000)
            wait_idle(page)
            no_exception(page)
            before = metric_value(page, "log Z")
            img_before = page.locator('[data-testid="stImage"] img').first.get_attribute("src")
            page.screenshot(path=str(tmp_path / "playground_before.png"), full_page=True)

            # move the β slider with the keyboard: 0.30 → 0.55
            thumb = page.locator('input[type="range"][aria-label="β (KL coefficient)"]').first
            thumb.focus()
            for _ in range(5):
                thumb.press("ArrowRight")
            page.wait_for_function(
                """(old) => { const m = [...document.querySelectorAll('[data-testid="stMetric"]')]
                     .find(e => e.innerText.includes('log Z'));
                     return m && m.querySelector('[data-testid="stMetricValue"]').innerText !== old; }""",
                arg=before, timeout=60_000)
            wait_idle(page)
            no_exception(page)
            after = metric_value(page, "log Z")
            assert after != before
            assert thumb.input_value() == "0.55"
            img_after = page.locator('[data-testid="stImage"] img').first.get_attribute("src")
            assert img_after != img_before, "the figure was redrawn for the new target"

            # train with the defaults: the summary and the curves appear
            page.get_by_role("button", name="Train").first.click()
            page.get_by_text("Summary: where each divergence lands").wait_for(timeout=120_000)
            wait_idle(page, 120_000)
            no_exception(page)
            assert page.locator('[data-testid="stImage"] img').count() >= 2
            page.screenshot(path=str(tmp_path / "playground_trained.png"), full_page=True)

            for path in ("explorer", "estimators", "feedback"):
                page.goto(f"{server}/{path}", wait_until="domcontentloaded")
                page.locator('[data-testid="stImage"] img').first.wait_for(timeout=60_000)
                wait_idle(page)
                no_exception(page)
                page.screenshot(path=str(tmp_path / f"{path}.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "playground_trained.png").stat().st_size > 10_000
