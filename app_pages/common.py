"""One import for page modules: the shared state, widgets and display helpers.

The app's code is split by responsibility (no mathematics anywhere; every number comes from
:mod:`toyfdiv`):

- :mod:`app_pages.state` — the table of settings fields, one session state for all pages, the URL;
- :mod:`app_pages.config_io` — the Playground's settings ⇄ :class:`toyfdiv.Config` (download, upload);
- :mod:`app_pages.controls` — shared widgets and the cached library calls behind them;
- :mod:`app_pages.ui` — CSS, formulas, errors as messages, figures (light/dark), tables.

A page writes ``from app_pages import common`` and uses ``common.<name>`` from any of them.
"""

from app_pages.config_io import configs, configs_json, parse_settings  # noqa: F401
from app_pages.controls import (APP_MAX_N, KIND_HELP, KIND_LABEL, check_size,  # noqa: F401
                                choice, divergence_options, get_target, get_task, number_input, short_label,
                                short_name, slider, space_controls, space_size, target_controls, task_defaults,
                                task_story)
from app_pages.state import FIELDS, Field, forget, init, register  # noqa: F401
from app_pages.ui import (DPI, PAPERS, explained, formula, frame, lazy_section, number, png,  # noqa: F401
                          show_png, show_warnings, style, table, theme)
