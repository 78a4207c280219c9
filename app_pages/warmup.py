"""What the server does once at start, so that a lecture's first view is fast.

A fresh Python process pays for its imports (numpy, scipy, matplotlib, pandas, the library: about
2.5 s here) and for matplotlib's first drawing (fonts, glyph caches).  ``streamlit run app.py``
finds ``app`` in app.py, an ``st.App`` whose lifespan starts :func:`warm_up` in a background thread:
the server answers at once (Streamlit prints the URL and may open the browser), and a visitor who
arrives while the warm-up runs simply shares its imports.  ``GET /api/ready`` answers 200 once the
warm-up is done (503 before), for a lecturer's script or a benchmark that wants a warm server.

Nothing is cached for the visitor except what Python itself keeps (modules, font caches): every
number and figure is still computed by the page that shows it.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings

#: Set when :func:`warm_up` has finished (successfully or not: a failed warm-up only costs speed).
READY = threading.Event()
#: The path of the readiness check (Streamlit reserves /_stcore/, /media/, /component/, /static/).
READY_PATH = "/api/ready"


def warm_up() -> float:
    """Import everything the pages use, train once and draw once per theme, off the record; the seconds."""
    t0 = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd
    import pyarrow  # noqa: F401  (Streamlit sends tables and charts' data as Arrow)

    from app_pages import charts, common, config_io, controls, links, pg_results, scenario_book, state, ui  # noqa: F401
    from toyfdiv import config, plots, plots_po, plots_rl, tasks  # noqa: F401

    pd.DataFrame({"x": [1.0, 2.0]}).style.highlight_min().to_html()  # the table highlighter (jinja2)
    task = tasks.get("reviews")
    config.run(config.Config(steps=3))  # the one loop, the exact gradient, the metrics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for theme in ("light", "dark"):  # fonts and glyphs of both themes, a log axis, a legend
            ui.png(lambda: plots.distributions(task.space, {"target": task.log_a, "base": task.log_a}, k=8,
                                               log=True, title="warm-up"), theme)
    return time.perf_counter() - t0


def _warm_up_in_background() -> None:
    try:
        warm_up()
    except Exception:  # noqa: BLE001  (a page that fails will say so itself; the warm-up only saves time)
        pass
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
