"""What the server does once at start, so that a lecture's first view is fast.

A fresh Python process pays for its imports (numpy, scipy, matplotlib, pandas, the library: about
2.5 s on the 2-core development machine).  ``streamlit run app.py`` finds ``app`` in app.py, an
``st.App`` whose lifespan starts :func:`warm_up` in a background thread:
the server answers at once (Streamlit prints the URL and may open the browser), and a visitor who
arrives while the warm-up runs simply shares its imports.  ``GET /api/ready`` answers 200 once the
warm-up is done (503 before), for a lecturer's script or a benchmark that wants a warm server.

Beyond what Python itself keeps (modules, font caches), one thing is computed ahead for the
visitor: the Playground's default runs, trained into the run cache (:func:`app_pages.pg_results.trained`,
keyed by the Config, which alone determines a run), so a lecture's first Train answers at once.
Every other number and figure is computed by the page that shows it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

#: Set when :func:`warm_up` has finished (successfully or not: a failed warm-up only costs speed).
READY = threading.Event()
#: The path of the readiness check (Streamlit reserves /_stcore/, /media/, /component/, /static/).
READY_PATH = "/api/ready"


def warm_up() -> float:
    """Import what the pages use, then train the Playground's default settings; the seconds it took.

    Only what a first visitor would otherwise wait for: a visitor who arrives while this runs
    competes with it for the one Python interpreter, so nothing here is optional (matplotlib's
    first drawing is left to the first page that draws: the Playground draws in the browser)."""
    t0 = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd
    import pyarrow  # noqa: F401  (Streamlit sends tables and charts' data as Arrow)

    from app_pages import charts, common, config_io, pg_results, state, ui  # noqa: F401  (app.py, the Playground)

    pd.DataFrame({"x": [1.0, 2.0]}).style.highlight_min().to_html()  # the table highlighter (jinja2)
    for c in config_io.configs({}):  # the Playground's defaults: its first Train is found in the run cache
        pg_results.trained(c.to_json())
    return time.perf_counter() - t0


def _warm_up_in_background() -> None:
    try:
        warm_up()
    except Exception:  # noqa: BLE001  (the warm-up only saves time; a page that fails will say so itself)
        logging.getLogger(__name__).exception("toyfdiv: the warm-up failed; pages import on first use")
    finally:
        READY.set()


@contextlib.asynccontextmanager
async def lifespan(_app):
    """The ``st.App`` lifespan: the warm-up starts in a daemon thread; the server serves meanwhile."""
    threading.Thread(target=_warm_up_in_background, name="toyfdiv-warm-up", daemon=True).start()
    yield


async def ready(_request):
    """``GET /api/ready``: 200 "ready" once the warm-up is done, else 503 "warming up"."""
    from starlette.responses import PlainTextResponse

    return (PlainTextResponse("ready") if READY.is_set()
            else PlainTextResponse("warming up", status_code=503))


def routes() -> list:
    """The server's own routes, beside Streamlit's."""
    from starlette.routing import Route

    return [Route(READY_PATH, ready, methods=["GET"])]
