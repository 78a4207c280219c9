"""What the server does once, before it reports healthy, so that a lecture's first view is fast.

A fresh Python process pays for its imports (numpy, scipy, matplotlib, pandas, the library: about
2 s here) and for matplotlib's first drawing (fonts, glyph caches: about 1 s).  ``streamlit run
app.py`` finds ``app`` in app.py, an ``st.App`` whose lifespan runs :func:`warm_up` at server
start, so none of this falls on the first visitor.  Nothing here is cached for the visitor except
what Python itself keeps (modules, font caches): every number and figure is still computed by the
page that shows it.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings

_LOG = logging.getLogger("toyfdiv.app")


def warm_up() -> float:
    """Import everything the pages use and draw and train once, off the record; the seconds it took."""
    t0 = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd
    import pyarrow  # noqa: F401  (Streamlit sends tables as Arrow)

    from app_pages import common, config_io, controls, links, pg_results, scenario_book, state, ui  # noqa: F401
    from toyfdiv import config, plots, plots_po, plots_rl, tasks  # noqa: F401

    pd.DataFrame({"x": [1.0, 2.0]}).style.highlight_min().to_html()  # the table highlighter (jinja2)
    task = tasks.get("reviews")
    run = config.run(config.Config(steps=3))  # the one loop, the exact gradient, the metrics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for theme in ("light", "dark"):  # fonts and glyphs of both themes, a log axis, a legend
            ui.png(lambda: plots.distributions(task.space, {"target": task.log_a, "base": task.log_a}, k=8,
                                               log=True, title="warm-up"), theme)
            ui.png(lambda: plots.training_curves({"reverse_kl": run}), theme)
    seconds = time.perf_counter() - t0
    _LOG.info("toyfdiv: warmed up in %.1f s", seconds)
    return seconds


@contextlib.asynccontextmanager
async def lifespan(_app):
    """The ``st.App`` lifespan: :func:`warm_up` before the first request is served."""
    warm_up()
    yield
