"""TensorFlow Probability as a peer: every divergence with a tfp.vi Csiszár counterpart, through
the mapping of docs/conventions.md (TFP_PEERS), against TFP's own functions.

TFP's numpy substrate runs without TensorFlow.  TFP writes f_TFP(u), u = p/q, and
D[p, q] = E_q[f_TFP(u)] with q the policy, so D_toyfdiv(π ‖ p) = scale · Σ π f_TFP(log p − log π)
and, function by function, f_toyfdiv(t) = scale · t · f_TFP(1/t).
"""

import pathlib
import re
import sys

import numpy as np
import pytest

from toyfdiv import divergences

from tensorflow_probability.substrates import numpy as tfp  # a test dependency (pyproject [test]); no TensorFlow

PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "conventions.md"


def _peers() -> dict:
    block = next(b for b in re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
                 if "TFP_PEERS = {" in b)
    ns: dict = {}
    exec(compile(block, str(PAGE), "exec"), ns)
    return ns["TFP_PEERS"]


PEERS = _peers()


def _tfp_f(fn: str, kw: dict):
    """The tfp.vi Csiszár function named in the page, as a function of log u."""
    m = re.fullmatch(r"dual_csiszar_function\((\w+)\)", fn)
    if m:
        inner = getattr(tfp.vi, m.group(1))
        return lambda logu: tfp.vi.dual_csiszar_function(logu, inner)
    return lambda logu: getattr(tfp.vi, fn)(logu, **kw)


def _pairs():
    rng = np.random.default_rng(0)
    out = []
    for k in range(6):
        z1, z2 = (rng.standard_normal(9) * (0.5 + k) for _ in range(2))  # from close to far apart
        out.append((z1 - np.logaddexp.reduce(z1), z2 - np.logaddexp.reduce(z2)))
    return out


def test_numpy_substrate_runs_without_tensorflow():
    assert "tensorflow" not in sys.modules
    assert float(tfp.vi.kl_reverse(np.log(2.0))) == pytest.approx(-np.log(2.0), rel=1e-15)


def test_every_registered_divergence_is_mapped_or_has_no_tfp_counterpart():
    mapped = {divergences.get(n).name for n in PEERS}
    no_counterpart = {d.name for d in divergences.registered() if d.name.startswith("gjsd(")}
    assert {d.name for d in divergences.registered()} <= mapped | no_counterpart
    assert {"forward_kl", "reverse_kl", "tv", "js", "hellinger", "pearson", "neyman", "alpha(0.5)"} <= mapped


@pytest.mark.parametrize("name", list(PEERS))
def test_value_matches_tfp(name):
    fn, kw, scale = PEERS[name]
    f_tfp, div = _tfp_f(fn, kw), divergences.get(name)
    for log_pi, log_p in _pairs():
        theirs = scale * float(np.exp(log_pi) @ np.asarray(f_tfp(log_p - log_pi), dtype=float))
        assert div.value(log_pi, log_p) == pytest.approx(theirs, rel=1e-10, abs=1e-14), (name, fn)


@pytest.mark.parametrize("name", [n for n in PEERS if not PEERS[n][0].startswith("amari") and PEERS[n][0] != "t_power"])
def test_generator_is_the_perspective_of_tfp(name):
    """f(t) = scale · t · f_TFP(1/t) pointwise (amari_alpha and t_power differ by c(t − 1): equal as divergences)."""
    fn, kw, scale = PEERS[name]
    t = np.geomspace(1e-3, 1e3, 25)
    theirs = scale * t * np.asarray(_tfp_f(fn, kw)(-np.log(t)), dtype=float)
    np.testing.assert_allclose(divergences.get(name).f(t), theirs, rtol=1e-9, atol=1e-12)


def test_the_scales_are_needed():
    """The page's factors are not cosmetic: without them TFP and toyfdiv disagree."""
    log_pi, log_p = _pairs()[2]
    pi = np.exp(log_pi)
    js_tfp = float(pi @ tfp.vi.jensen_shannon(log_p - log_pi, self_normalized=True))
    assert js_tfp == pytest.approx(2 * divergences.get("js").value(log_pi, log_p), rel=1e-10)
    pearson_tfp = float(pi @ tfp.vi.pearson(log_p - log_pi))
    assert abs(pearson_tfp - divergences.get("pearson").value(log_pi, log_p)) > 1e-3  # TFP's Pearson is our Neyman
    amari = float(pi @ tfp.vi.amari_alpha(log_p - log_pi, alpha=0.2))
    assert abs(amari - divergences.alpha(0.2).value(log_pi, log_p)) > 1e-3  # α ↔ 1 − α
    assert amari == pytest.approx(divergences.alpha(0.8).value(log_pi, log_p), rel=1e-10)
