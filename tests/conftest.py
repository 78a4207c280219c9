"""Shared test oracles: finite differences and small spaces."""

import numpy as np
import pytest

from toyfdiv import SequenceSpace


def fd_gradient(fun, theta, h=1e-4):
    """4th-order central differences: (−f(θ+2h) + 8f(θ+h) − 8f(θ−h) + f(θ−2h)) / 12h."""
    theta = np.asarray(theta, dtype=float)
    g = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        g[i] = (-fun(theta + 2 * e) + 8 * fun(theta + e) - 8 * fun(theta - e) + fun(theta - 2 * e)) / (12 * h)
    return g


SPACES = {
    "fixed-V3-T3": dict(vocab=["a", "b", "c"], length=3),
    "eos-V2-T4": dict(vocab=["a", "b"], length=4, eos="</s>"),
    "eos-unterminated-V2-T3": dict(vocab=["a", "b"], length=3, eos="</s>", unterminated=True),
}


@pytest.fixture(params=list(SPACES), ids=list(SPACES))
def small_space(request):
    return SequenceSpace(**SPACES[request.param])


@pytest.fixture(scope="module")
def clear_streamlit_caches():
    """st.cache_data / st.cache_resource live as long as the pytest process: start every app test module cold.

    The app test modules use it with ``pytestmark``; within a module the tests share the pages'
    cached pure computations (keyed by their arguments), which is what keeps the app tests fast.
    streamlit is imported here only when an app test asks for it.
    """
    import streamlit as st  # optional: only the app tests need streamlit loaded

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


#: The longest test files (minutes, not seconds), started first.  The suite runs on every core
#: (pytest-xdist, ``--dist=loadfile``: a file's tests stay together, in order, on one worker); a long
#: file handed out last would run alone at the end while the other cores idle.
LONGEST_FIRST = ("test_app_browser.py", "test_app_fuzz.py", "test_lessons.py", "test_app.py", "test_app_lecture.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: every file keeps its own order
