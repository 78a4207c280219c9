"""How the app shows things: CSS and projector mode, formulas with their papers, errors as
messages, library figures as PNGs (light or dark), tables.  No mathematics here."""

from __future__ import annotations

import contextlib
import io
import math
import threading
import warnings
from typing import Iterator

import matplotlib
import streamlit as st

PAPERS = {
    "fdpg": "Go, Korbak, Kruszewski, Rozen, Ryu, Dymetman, *Aligning Language Models with Preferences "
            "through f-divergence Minimization*, ICML 2023",
    "gdc": "Khalifa, Elsahar, Dymetman, *A Distributional Approach to Controlled Text Generation*, ICLR 2021",
    "korbak": "Korbak, Perez, Buckley, *RL with KL penalties is better viewed as Bayesian inference*, "
              "Findings of EMNLP 2022",
    "dpg_baseline": "Korbak, Elsahar, Kruszewski, Dymetman, *On Reinforcement Learning and Distribution "
                    "Matching for Fine-Tuning Language Models with no Catastrophic Forgetting*, NeurIPS 2022",
    "dpo": "Rafailov, Sharma, Mitchell, Ermon, Manning, Finn, *Direct Preference Optimization*, NeurIPS 2023",
    "fdpo": "Wang, Jiang, Yang, Liu, Chen, *Beyond Reverse KL: Generalizing Direct Preference Optimization "
            "with Diverse Divergence Constraints*, 2023",
    "bt": "Bradley & Terry 1952; Christiano et al., *Deep RL from Human Preferences*, NeurIPS 2017",
    "gao": "Gao, Schulman, Hilton, *Scaling Laws for Reward Model Overoptimization*, 2022",
    "amari": "Amari, *Differential-Geometrical Methods in Statistics*, 1985 (α-divergences)",
}

#: Pixels per inch of the PNGs.  The pages show a figure at its natural width (never stretched, so never
#: blurry at 1920 px); the library's figures are at most ~10.5 in wide, so 12-pt ticks are ≥ 14 px at 1280.
DPI = 96

#: Page-wide CSS: metric values and labels wrap instead of ending in "…"; sidebar chips show their whole
#: label.  Formulas fit their column: in a narrow main column (150 % zoom at 1280 px: 853 CSS px) the
#: columns holding formulas are stacked, one formula per row, at a smaller display size; the few long ones
#: are split into lines in the pages themselves (a scroll bar stays as the last resort, never a cut).
CSS = """<style>
.katex-display { overflow-x: auto; overflow-y: hidden; padding: 0 4px 2px; }
@media (max-width: 1000px) {
  [data-testid="stHorizontalBlock"]:has(.katex-display) { flex-wrap: wrap; }
  [data-testid="stHorizontalBlock"]:has(.katex-display) > [data-testid="stColumn"] {
    flex: 1 1 100% !important; width: 100% !important; min-width: 100% !important; }
  .katex-display > .katex { font-size: 1.05em; }
  [data-testid="stMetricValue"] { font-size: 1.6rem; }
}
[data-testid="stMetricValue"] > div, [data-testid="stMetricValue"] * { white-space: normal !important;
  overflow-wrap: anywhere; text-overflow: clip !important; }
[data-testid="stMetricLabel"] p, [data-testid="stMetricLabel"] > div { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; }
[data-testid="stMetricLabel"] { width: auto !important; max-width: 100%; }
.stMultiSelect [data-baseweb="tag"] { max-width: none; height: auto; }
.stMultiSelect [data-baseweb="tag"] span { white-space: normal; overflow: visible; text-overflow: clip; }
[data-testid="stImage"] img { max-width: 100%; height: auto; }
[data-testid="stMainBlockContainer"] { padding-left: 2rem; padding-right: 2rem; max-width: 1400px; }
</style>"""

#: Projector mode: larger text everywhere (the sidebar starts collapsed, see app.py).
PROJECTOR_CSS = """<style>
html, body, [data-testid="stAppViewContainer"] { font-size: 20px; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.2rem; }
[data-testid="stMetricValue"] { font-size: 2.4rem; }
h1 { font-size: 2.6rem !important; }
</style>"""


def style(projector: bool = False) -> None:
    """Inject :data:`CSS` (and :data:`PROJECTOR_CSS` in projector mode); called once per run by app.py."""
    st.html(CSS + (PROJECTOR_CSS if projector else ""))


def formula(latex: str, *papers: str, note: str | None = None) -> None:
    """One display formula, with a one-line note and the paper(s) it comes from."""
    st.latex(latex)
    src = "; ".join(PAPERS[p] for p in papers)
    st.caption(f"{note + ' — ' if note else ''}{src}")


@contextlib.contextmanager
def lazy_section(label: str, key: str) -> Iterator[bool]:
    """A collapsed section whose widgets are drawn only while it is open: ``with lazy_section(...) as open_:``.

    Every widget costs the browser time on every rerun (a β change redraws the whole page), so settings
    that are seldom changed wait behind a click.  Their values live in the session state whether drawn
    or not (:func:`app_pages.state.keep`); ``key`` is the section's own setting (open or not), a bool row
    of :data:`app_pages.state.FIELDS`, so it survives page switches too."""
    box = st.expander(label, key=key, on_change="rerun")
    with box:
        yield bool(box.open)


@contextlib.contextmanager
def explained(stop: bool = True, what: str = "This setting cannot be computed") -> Iterator[None]:
    """Show the library's ValueError (it says what to change) as ``st.error``, never a traceback.

    Warnings raised inside (e.g. a solver that did not converge) are shown as ``st.warning``.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except ValueError as err:
            st.error(f"**{what}.** {err}")
            if stop:
                st.stop()
    show_warnings(str(w.message) for w in caught)


def show_warnings(messages) -> None:
    for m in dict.fromkeys(messages):  # once each
        st.warning(m)


# ---------------------------------------------------------------------------- figures, light or dark
def theme() -> str:
    """"dark" when the viewer's theme is dark, else "light" (AppTest and old clients: light)."""
    try:
        return "dark" if getattr(st.context.theme, "type", None) == "dark" else "light"
    except Exception:  # noqa: BLE001  (no script context: bare mode)
        return "light"


_DARK_RC = {"figure.facecolor": "#0e1117", "axes.facecolor": "#0e1117", "savefig.facecolor": "#0e1117",
            "text.color": "#f0f0f0", "axes.labelcolor": "#f0f0f0", "axes.edgecolor": "#9a9a9a",
            "xtick.color": "#e0e0e0", "ytick.color": "#e0e0e0", "grid.color": "#8a8a8a",
            "legend.labelcolor": "#f0f0f0"}
_DARK_SWAP = {"#222222": "#e8e8e8", "#000000": "#e8e8e8", "#b8b8b8": "#8c8c8c",  # target black → light
              # the palette's darkest hues (gjsd, neyman, the spare method colours of Beyond DPO) lightened:
              # navy and plum lines were invisible on the dark background
              "#332288": "#8f84e0", "#882255": "#d96f9a", "#393b79": "#8f93dc", "#7b4173": "#c98bc4",
              "#843c39": "#d58c88", "#637939": "#adc56f"}


def rc(theme_name: str):
    """matplotlib rc overrides under which the app builds figures for this theme."""
    return matplotlib.rc_context(_DARK_RC if theme_name == "dark" else {})


def _recolour(fig, swap: dict) -> None:
    """Swap fixed dark colours (the target drawn black) for light ones on a dark background."""
    from matplotlib.colors import to_hex

    for ax in fig.axes:
        for artist in [*ax.lines, *ax.patches, *ax.collections, *ax.texts]:
            for get, set_ in (("get_color", "set_color"), ("get_facecolor", "set_facecolor"),
                              ("get_edgecolor", "set_edgecolor")):
                try:
                    c = getattr(artist, get)()
                    h = to_hex(c if not hasattr(c, "shape") or c.ndim == 1 else c[0])
                except (AttributeError, ValueError, TypeError, IndexError):
                    continue
                if h in swap:
                    getattr(artist, set_)(swap[h])
    for leg in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
        for h in getattr(leg, "legend_handles", []):
            try:
                if to_hex(h.get_color()) in swap:
                    h.set_color(swap[to_hex(h.get_color())])
            except (AttributeError, ValueError, TypeError):
                pass


#: Streamlit runs each browser session (and the server's warm-up) in its own thread; figures are drawn
#: one at a time, each under its own theme's rcParams.
_DRAWING = threading.RLock()


def png(build, theme_name: str | None = None, tight: bool = False) -> bytes:
    """The PNG bytes of a library figure: ``build()`` returns the figure; it is built under the theme's
    colours (a callable, so the rc settings apply while drawing).  A Figure is also accepted (light).
    ``tight``: grow the canvas to whatever was added outside constrained layout's reach (a colour bar's label)."""
    theme_name = theme_name or "light"
    with _DRAWING, rc(theme_name):  # one figure at a time: rcParams are global, matplotlib is not thread-safe
        fig = build() if callable(build) else build
        if theme_name == "dark":
            _recolour(fig, _DARK_SWAP)
        buf = io.BytesIO()
        # constrained layout (every library figure) keeps titles, labels and legends inside the canvas, so no
        # second "tight" layout pass; fast zlib level 1: a PNG ~10 % larger, drawn and encoded ~1.5× faster
        extra = dict(bbox_inches="tight", pad_inches=0.08) if tight else {}
        fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 1}, **extra)
    return buf.getvalue()


def with_colour_scales(fig, label: str = "D_f(π‖p), nats"):
    """A colour scale beside every filled contour plot of ``fig`` (each panel has its own levels),
    labelled with the quantity and its unit; ticks at every third level, 12 pt like the axes' ticks."""
    from matplotlib.contour import ContourSet
    from matplotlib.ticker import FormatStrFormatter

    for ax in list(fig.axes):
        filled = [c for c in ax.collections if isinstance(c, ContourSet) and c.filled]
        if not ax.get_visible() or not filled:
            continue
        cs = filled[0]
        bar = fig.colorbar(cs, ax=ax, shrink=0.85, pad=0.02, fraction=0.07, ticks=cs.levels[::3])
        top = float(max(abs(cs.levels[0]), abs(cs.levels[-1])))
        bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g" if top < 10 else "%.0f"))
        bar.ax.tick_params(labelsize=12)
        bar.set_label(label, fontsize=12)
    return fig


def show_png(data: bytes, caption: str | None = None) -> None:
    """A figure at its natural width (at most the column's): sharp at 1920, readable at 1280."""
    st.image(data, caption=caption, width="content")


# ---------------------------------------------------------------------------- tables
#: Highlight of the smallest value of a column: bold and a translucent green (legible in light and dark).
HIGHLIGHT = "font-weight: bold; background-color: rgba(0, 158, 115, 0.35)"


def number(v, sci: bool = False) -> str:
    """A table number as text: "∞", "—" for missing, 3-significant scientific for huge/tiny or ``sci``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
        return str(v)
    v = float(v)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v != 0 and abs(v) < 1e-12:
        return "≈ 0"  # rounding residue of a value that is 0 (e.g. E_a[r̂] of a centred reward model)
    if sci or (v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3)):
        return f"{v:.3e}"
    if v == round(v) and abs(v) < 1e5:
        return f"{int(v)}"
    return f"{v:.4f}"


def _plain(values) -> bool:
    """A numeric column every value of which prints well as a plain number (finite, not huge, not tiny)."""
    vals = [v for v in values]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return False
    return all(math.isfinite(v) and (v == 0 or 1e-3 <= abs(v) < 1e5) for v in vals)  # else shown as text


def table(df, key: str, sci: tuple = (), highlight_min: tuple = ()) -> None:
    """Show a DataFrame.  Columns in ``sci`` are shown as text in scientific notation; other numeric
    columns stay numbers (4 decimals, or whole) unless a value is missing, infinite, huge or tiny — then
    the column is shown as text (“∞”, “—”, 1.8e+56), never as "None" or raw floats.
    ``highlight_min``: columns whose smallest entry is shown bold on a translucent green."""
    shown = df.copy()
    config = {}
    for c in df.columns:
        col = list(df[c])
        if all(isinstance(v, str) for v in col):
            continue
        if c not in sci and _plain(col):
            whole = all(float(v) == round(float(v)) for v in col)
            config[c] = st.column_config.NumberColumn(format="%d" if whole else "%.4f")
        else:
            shown[c] = [v if isinstance(v, str) else number(v, c in sci) for v in col]
    data = shown
    if highlight_min:
        def mark(column):
            values = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.inf
                      for v in df[column.name]]
            best = min(values) if values else math.inf
            return [HIGHLIGHT if math.isfinite(best) and v == best else "" for v in values]

        data = shown.style.apply(mark, subset=list(highlight_min))
    st.dataframe(data, hide_index=True, key=key, column_config=config)


def frame(rows, columns: dict[str, str] | None = None):
    """A pandas DataFrame of library rows, columns renamed for display."""
    import pandas as pd

    df = pd.DataFrame(list(rows))
    if columns:
        df = df[[c for c in columns if c in df.columns]].rename(columns=columns)
    return df
