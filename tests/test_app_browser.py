"""The app in a real browser: `streamlit run app.py` headless, driven by Debian's Chromium through playwright.

Needs Debian's chromium (``apt-get install chromium``; never ``playwright install``); the
test is skipped when it is missing.  One server (a subprocess on a free loopback port, always
stopped) and one browser serve the module.  Every page is opened at 1280×800, 1920×1080,
150 % zoom (a 1280×800 window zoomed to 150 % lays out 853×533 CSS px) and in dark mode, and each
view must show: no error or exception element, no metric cut to "…", nothing wider than the
viewport, no formula that scrolls sideways or is cut, no request leaving the machine, and (at
1280, 1920 and dark) figures whose 12-pt text is ≥ 14 px.  At 150 % zoom the sidebar takes a
third of the window and figures shrink with the column (their text is ~12 screen px): projector
mode collapses the sidebar.

The three light views are one page object resized (the layout is checked in CSS pixels, so
150 % zoom is the 853×533 viewport); dark mode is a second page object, because the figures are
drawn for the theme the browser reports when the page is opened.  Set APP_SCREENSHOTS=<dir> to
save full-page screenshots of every view.
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
PAGES = ["", "explorer", "estimators", "feedback", "beyond_dpo", "rl", "scenarios", "glossary"]
VIEWS = {"1280": dict(viewport={"width": 1280, "height": 800}),
         "1920": dict(viewport={"width": 1920, "height": 1080}),
         "zoom150": dict(viewport={"width": 853, "height": 533}, device_scale_factor=1.5),
         "dark": dict(viewport={"width": 1280, "height": 800}, color_scheme="dark")}
LIGHT = ("1280", "1920", "zoom150")  # one page object, resized; "dark" gets its own
FIGURE_PT, DPI = 12, 96  # the smallest figure text (ticks) and the PNG resolution (app_pages/ui.py)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, port: int | None = None, script: Path | None = None, warm: bool = True):
    """`streamlit run app.py` (or ``script``) on a loopback port (default: a free one): (process, url, log file),
    returned once the server is healthy and, for app.py and ``warm``, has finished its warm-up."""
    port = port or free_port()
    script = script or ROOT / "app.py"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=script.parent, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    # app.py's server answers at once and warms up in the background; /api/ready says when that is done
    check = "/api/ready" if warm and script == ROOT / "app.py" else "/_stcore/health"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}{check}", timeout=2) as r:
                if r.status == 200:
                    return proc, url, log
        except OSError:  # refused while starting; 503 while warming up
            pass
        if proc.poll() is not None or time.time() > deadline:
            stop_server(proc, log)
            raise RuntimeError(f"streamlit did not become healthy:\n{log_path.read_text()}")
        time.sleep(0.3)


def stop_server(proc, log) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (start_new_session)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, url, log = start_server(tmp_path_factory.mktemp("server") / "streamlit.log")
    try:
        yield url
    finally:
        stop_server(proc, log)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


#: The rerun has finished: no "Running" status widget and no element still drawn as a skeleton.
IDLE_JS = ("() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
           "!document.querySelector('[data-testid=\"stSkeleton\"]')")


def wait_idle(page, timeout: float = 90_000) -> None:
    """Wait until the app has finished its rerun (no 'Running' status widget, no skeleton)."""
    page.wait_for_timeout(400)
    page.wait_for_function(IDLE_JS, timeout=timeout)
    page.wait_for_timeout(200)
    page.wait_for_function(IDLE_JS, timeout=timeout)


LAYOUT_JS = """(args) => {
  const [pt, dpi] = args;
  const vw = document.documentElement.clientWidth;
  const out = {pageWidth: document.documentElement.scrollWidth, vw, wide: [], cut: [], small: [], formulas: []};
  for (const el of document.querySelectorAll('.katex-display')) {
    // a formula scrolls sideways (a scroll bar) or is wider than the column that holds it
    const k = el.querySelector('.katex'), box = el.closest('[data-testid="stElementContainer"]') || el;
    if (!k || el.getBoundingClientRect().width === 0) continue;
    if (el.scrollWidth > el.clientWidth + 1 || k.getBoundingClientRect().width > box.clientWidth + 1)
      out.formulas.push(Math.round(k.getBoundingClientRect().width) + ' px in ' + Math.round(box.clientWidth)
                        + ' px: ' + (k.innerText || '').replace(/\\s+/g, ' ').slice(0, 50));
  }
  for (const el of document.querySelectorAll('[data-testid="stMetric"] *')) {
    if (el.children.length === 0 && (el.innerText || '').includes('…')) out.cut.push(el.innerText);
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX === 'hidden')
      out.cut.push('overflow: ' + el.innerText);
  }
  for (const el of document.querySelectorAll('[data-testid="stMain"] *, [data-testid="stSidebar"] *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right <= vw + 1) continue;
    // clipped by an ancestor that hides or scrolls its overflow and itself fits: not visible past the edge
    let clipped = false;
    for (let a = el.parentElement; a; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.overflowX !== 'visible' && a.getBoundingClientRect().right <= vw + 1) { clipped = true; break; }
    }
    if (!clipped && getComputedStyle(el).opacity !== '0')
      out.wide.push(el.tagName + '.' + (el.className || '').toString().slice(0, 40) + ' '
                    + (el.getAttribute('aria-label') || el.type || '') + ' right=' + Math.round(r.right));
  }
  for (const img of document.querySelectorAll('[data-testid="stImage"] img')) {
    if (!img.naturalWidth) continue;
    const px = pt * dpi / 72 * img.getBoundingClientRect().width / img.naturalWidth;
    if (px < 14 - 0.01) out.small.push(Math.round(px * 10) / 10);
  }
  return out;
}"""


def screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main container, so it is scrolled a screen at a time and
    the screens are stacked (resizing the window would make Streamlit redraw)."""
    from PIL import Image
    import io

    main = '[data-testid="stMain"]'
    total, view = page.evaluate(f"() => {{ const m = document.querySelector('{main}'); "
                                "return [m.scrollHeight, m.clientHeight]; }")
    tiles, top = [], 0
    while True:
        page.evaluate(f"(y) => document.querySelector('{main}').scrollTo(0, y)", top)
        page.wait_for_timeout(250)
        shown = page.evaluate(f"() => document.querySelector('{main}').scrollTop")
        tiles.append((shown, Image.open(io.BytesIO(page.screenshot()))))
        if top + view >= total or len(tiles) >= 12:
            break
        top += view
    scale = tiles[0][1].height / view
    sheet = Image.new("RGB", (tiles[0][1].width, int(min(total, tiles[-1][0] + view) * scale)), "white")
    for y, img in tiles:
        sheet.paste(img, (0, int(y * scale)))
    sheet.save(path)
    page.evaluate(f"() => document.querySelector('{main}').scrollTo(0, 0)")


def check_view(page, where: str, fonts: bool = True) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, \
        f"{where}: {page.locator('[data-testid=stException]').first.inner_text()}"
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, f"{where}: {errors.first.inner_text()}"
    lay = page.evaluate(LAYOUT_JS, [FIGURE_PT, DPI])
    assert lay["pageWidth"] <= lay["vw"] + 1, f"{where}: the page scrolls sideways ({lay['pageWidth']} > {lay['vw']})"
    assert not lay["wide"], f"{where}: wider than the viewport: {lay['wide'][:5]}"
    assert not lay["cut"], f"{where}: truncated metric: {lay['cut'][:5]}"
    assert not lay["formulas"], f"{where}: formula wider than its column: {lay['formulas'][:5]}"
    assert not fonts or not lay["small"], f"{where}: figure text below 14 px: {lay['small']}"
    charts = page.evaluate(CHARTS_JS)
    assert all(c["drawn"] for c in charts), f"{where}: a chart was not drawn: {charts}"
    assert all(c["width"] <= c["room"] + 1 for c in charts), f"{where}: a chart is wider than its column: {charts}"


#: Every browser-drawn chart (Vega-Lite): drawn (a canvas or svg of some size) and as wide as its column at most.
CHARTS_JS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].map(box => {
  const g = box.querySelector('canvas, svg');
  const r = g ? g.getBoundingClientRect() : {width: 0, height: 0};
  return {drawn: !!g && r.width > 0 && r.height > 0, width: Math.round(r.width),
          room: Math.round(box.getBoundingClientRect().width)};
})"""


SHOTS = os.environ.get("APP_SCREENSHOTS")


def shoot(page, name: str) -> None:
    """A full-page screenshot, only when APP_SCREENSHOTS names a directory (for looking by eye)."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        screenshot(page, Path(SHOTS) / f"{name}.png")


def new_page(browser, server, view: str, outside: list):
    """A page object for a view; every request that would leave the machine is recorded and refused."""
    ctx = browser.new_context(**VIEWS[view])
    ctx.route("**/*", lambda route: (outside.append(route.request.url), route.abort())
              if not route.request.url.startswith(server) and not route.request.url.startswith("data:")
              else route.continue_())
    return ctx, ctx.new_page()


def open_app_page(page, server: str, path: str) -> None:
    page.goto(f"{server}/{path}", wait_until="domcontentloaded")
    page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=90_000)
    wait_idle(page)


def resize(page, view: str) -> None:
    """The same page at another window size; the app lays itself out again (no rerun), then settles."""
    page.set_viewport_size(VIEWS[view]["viewport"])
    page.wait_for_timeout(300)
    wait_idle(page)


def train(page, server: str) -> None:
    open_app_page(page, server, "")
    page.get_by_role("button", name="Train").first.wait_for(timeout=90_000)
    page.get_by_role("button", name="Train").first.click()
    page.get_by_text("Summary: where each run lands").wait_for(timeout=120_000)
    wait_idle(page, 120_000)
    assert "Stale" not in page.locator('[data-testid="stMain"]').inner_text()


def show_view(page, label: str) -> None:
    """Choose one view of the trained Playground's results (its "Show" buttons) and let it draw."""
    page.locator('[data-testid="stButtonGroup"]').get_by_text(label, exact=True).first.click()
    wait_idle(page, 120_000)


#: The trained Playground's views and how many charts each draws (only the chosen view is drawn).
TRAINED_VIEWS = {"trained": (None, 0), "trained_movie": ("Training curves and movie", 5),
                 "trained_space": ("The whole space, one sequence", 1)}


def visit_every_page(page, server: str):
    """Open each page in turn, then the trained Playground in each of its views (summary tables, curves and
    movie, whole space and inspector); yields each one's name."""
    for path in PAGES:
        open_app_page(page, server, path)
        yield path or "playground"
    train(page, server)
    for name, (label, _) in TRAINED_VIEWS.items():
        if label:
            show_view(page, label)
        yield name


def test_every_page_at_1280_1920_and_150_percent_zoom(server, browser):
    """Each page opened once at 1280×800, then resized to 1920×1080 and to 150 % zoom; then the trained
    Playground's three views (tables, movie, inspector) in the same three window sizes."""
    outside = []
    ctx, page = new_page(browser, server, "1280", outside)
    try:
        for name in visit_every_page(page, server):
            charts = page.locator('[data-testid="stVegaLiteChart"]').count()
            expected = {"playground": 1, **{k: n for k, (_, n) in TRAINED_VIEWS.items()}}.get(name, charts)
            assert charts == expected, f"{name}: {charts} charts"
            for view in LIGHT:
                if view != "1280":
                    resize(page, view)
                shoot(page, f"{view}_{name}")
                check_view(page, f"{view} /{name}", fonts=view != "zoom150")
            resize(page, "1280")
    finally:
        ctx.close()
    assert not outside, f"requests that left the machine: {outside[:5]}"


def test_every_page_in_dark_mode(server, browser):
    outside = []
    ctx, page = new_page(browser, server, "dark", outside)
    try:
        for name in visit_every_page(page, server):
            shoot(page, f"dark_{name}")
            check_view(page, f"dark /{name}")
    finally:
        ctx.close()
    assert not outside, f"requests that left the machine: {outside[:5]}"


def test_slider_changes_numbers_and_settings_survive_navigation(server, browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    try:
        page.goto(server, wait_until="domcontentloaded")
        page.get_by_text("log Z", exact=False).first.wait_for(timeout=90_000)
        wait_idle(page)
        box = page.locator('[data-testid="stMetric"]').filter(has_text="log Z").first
        before = box.locator('[data-testid="stMetricValue"]').inner_text()
        thumb = page.locator('[data-testid="stSidebar"] [role="slider"][aria-label="β (KL coefficient)"]').first
        if thumb.count() == 0:
            thumb = page.get_by_role("slider", name="β (KL coefficient)").first
        thumb.focus()
        # press until the slider reads 0.55: on a loaded machine a key press that lands during
        # a rerun can be dropped, so count by the slider's own value, not by presses
        for _ in range(20):
            now = float(thumb.evaluate("e => e.value ?? e.getAttribute('aria-valuenow')"))
            if abs(now - 0.55) < 1e-9:
                break
            thumb.press("ArrowRight" if not now > 0.55 else "ArrowLeft")
            page.wait_for_timeout(300)
        page.wait_for_function(
            """(old) => { const m = [...document.querySelectorAll('[data-testid="stMetric"]')]
                 .find(e => e.innerText.includes('log Z'));
                 return m && m.querySelector('[data-testid="stMetricValue"]').innerText !== old; }""",
            arg=before, timeout=60_000)
        wait_idle(page)
        # the URL is rewritten after the rerun that the last key press starts: wait for it
        # rather than read it once (a loaded machine can run the reruns one by one)
        page.wait_for_function("() => location.href.includes('pg_beta=0.55')", timeout=60_000)
        assert "pg_beta=0.55" in page.url, "the setting is in the address bar"
        page.get_by_role("link", name="Divergence explorer").first.click()
        page.wait_for_url("**/explorer**", timeout=60_000)
        wait_idle(page)
        page.get_by_role("link", name="Playground").first.click()
        page.get_by_text("log Z", exact=False).first.wait_for(timeout=90_000)
        wait_idle(page)
        again = page.locator('[data-testid="stMetric"]').filter(has_text="log Z").first
        assert again.locator('[data-testid="stMetricValue"]').inner_text() != before, "β survived the page switch"
        # a bookmarked link opens the same settings in a fresh session
        fresh = ctx.new_page()
        fresh.goto(f"{server}/?pg_beta=0.55", wait_until="domcontentloaded")
        fresh.get_by_text("log Z", exact=False).first.wait_for(timeout=90_000)
        wait_idle(fresh)
        m = fresh.locator('[data-testid="stMetric"]').filter(has_text="log Z").first
        assert m.locator('[data-testid="stMetricValue"]').inner_text() == \
            again.locator('[data-testid="stMetricValue"]').inner_text()
    finally:
        ctx.close()
