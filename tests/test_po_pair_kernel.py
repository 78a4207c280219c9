"""One pair-loss kernel (toyfdiv.feedback.pairs) under DPO, f-DPO, χ²PO and IPO: golden outputs and oracles.

The golden file tests/golden/pair_kernel.npz was written by ``python tests/test_po_pair_kernel.py record``
on main *before* the four methods were moved onto the shared kernel; each loss and gradient below must
reproduce it to 1e-15 (relative, and absolute for entries near 0).  The kernel itself is checked against
fourth-order central finite differences and a brute-force double loop over the pairs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import log_softmax

from toyfdiv import SequenceSpace
from toyfdiv import feedback as fb
from toyfdiv.policies import TabularPolicy

GOLDEN = Path(__file__).resolve().parent / "golden" / "pair_kernel.npz"
FS = ("reverse_kl", "forward_kl", "js", "alpha(0.5)")


def _setup():
    space = SequenceSpace(["a", "b", "c"], 3)  # N = 27
    rng = np.random.default_rng(3)
    log_ref = log_softmax(rng.normal(size=space.size))
    pol = TabularPolicy(space, params=rng.normal(size=space.size) * 0.7)
    r = rng.normal(size=space.size)
    data = fb.collect_preferences(fb.Rater(r), log_ref, 200, np.random.default_rng(4))
    mu = log_softmax(rng.normal(size=space.size) * 0.5)
    return pol, log_ref, r, data, mu


def outputs() -> dict[str, np.ndarray]:
    pol, log_ref, r, data, mu = _setup()
    out = {"dpo_loss": fb.dpo_loss(pol, log_ref, data, 0.7), "dpo_grad": fb.dpo_gradient(pol, log_ref, data, 0.7),
           "pop_dpo_loss": fb.population_dpo_loss(pol, log_ref, r, 0.7, mu),
           "pop_dpo_grad": fb.population_dpo_gradient(pol, log_ref, r, 0.7, mu)}
    for f in FS:
        out[f"fdpo_loss/{f}"] = fb.fdpo_loss(pol, log_ref, data, 0.7, f)
        out[f"fdpo_grad/{f}"] = fb.fdpo_gradient(pol, log_ref, data, 0.7, f)
        out[f"pop_fdpo_loss/{f}"] = fb.population_fdpo_loss(pol, log_ref, r, 0.7, f, mu)
    for clip in (None, 0.4):
        out[f"chipo_loss/{clip}"] = fb.chipo_loss(pol, log_ref, data, 0.7, clip)
        out[f"chipo_grad/{clip}"] = fb.chipo_gradient(pol, log_ref, data, 0.7, clip)
        g, d = fb.chipo_update(log_ref, data, 0.7, clip)(pol, None)
        out[f"chipo_update/{clip}"] = np.append(g, d["loss"])
    P = fb.bt_preferences(r)
    out["ipo_loss"] = fb.ipo_loss(pol, log_ref, data, 0.3)
    out["ipo_grad"] = fb.ipo_gradient(pol, log_ref, data, 0.3)
    g, d = fb.ipo_update(log_ref, data, 0.3)(pol, None)
    out["ipo_update"] = np.append(g, d["loss"])
    out["pop_ipo_loss"] = fb.population_ipo_loss(pol, log_ref, P, 0.3, mu)
    out["pop_ipo_grad"] = fb.population_ipo_gradient(pol, log_ref, P, 0.3, mu)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


GOLDEN_KEYS = sorted(np.load(GOLDEN).files) if GOLDEN.exists() else []


@pytest.fixture(scope="module")
def now():
    return outputs()


def test_golden_file_covers_every_output(now):
    assert GOLDEN_KEYS == sorted(now), "rerun `python tests/test_po_pair_kernel.py record` on main before a refactor"


@pytest.mark.parametrize("key", GOLDEN_KEYS)
def test_same_as_before_the_refactor(now, key):
    want = np.load(GOLDEN)[key]
    np.testing.assert_allclose(now[key], want, rtol=1e-15, atol=1e-15 * max(1.0, float(np.abs(want).max())))


from toyfdiv.feedback.pairs import Logistic, Squared, bt_pair_mass, pair_loss, population_pair_loss  # noqa: E402

LOSSES = {"logistic": Logistic(0.7), "logistic_clip": Logistic(0.7, 0.4), "squared": Squared(0.3)}


def _fd(fun, h, step=1e-5):
    """Fourth-order central differences of fun at h, (N,)."""
    out = np.zeros_like(h)
    for i in range(h.size):
        e = np.zeros_like(h)
        e[i] = step
        f = [fun(h + s * e) for s in (2, 1, -1, -2)]
        out[i] = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * step)
    return out


@pytest.mark.parametrize("name", list(LOSSES))
def test_kernel_gradient_is_the_finite_difference(name):
    rng = np.random.default_rng(0)
    h = rng.normal(size=6)
    w, l = rng.integers(0, 6, 40), rng.integers(0, 6, 40)
    omega = rng.random(40)
    loss = LOSSES[name]
    if name == "logistic_clip":  # keep margins away from the clip's kinks at |βΔ| = 2R
        keep = np.abs(np.abs(0.7 * (h[w] - h[l])) - 0.8) > 1e-3
        w, l, omega = w[keep], l[keep], omega[keep]
    g = pair_loss(loss, h, w, l, omega)[1]
    np.testing.assert_allclose(g, _fd(lambda x: pair_loss(loss, x, w, l, omega)[0], h), atol=1e-8)


@pytest.mark.parametrize("name", list(LOSSES))
def test_population_kernel_is_the_double_loop(name):
    rng = np.random.default_rng(1)
    h, m = rng.normal(size=5), rng.random((5, 5))
    loss = LOSSES[name]
    value, g = population_pair_loss(loss, h, m)
    want_v, want_g = 0.0, np.zeros(5)
    for x in range(5):
        for y in range(5):
            lv, w, c = loss(np.array(h[x] - h[y]))
            want_v += m[x, y] * float(lv)
            want_g[x] += m[x, y] * c * float(w)
            want_g[y] -= m[x, y] * c * float(w)
    np.testing.assert_allclose(value, want_v, rtol=1e-13)
    np.testing.assert_allclose(g, want_g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g, _fd(lambda x: population_pair_loss(loss, x, m)[0], h), atol=1e-8)


def test_bt_pair_mass_sums_to_one_and_bad_input():
    log_q = fb.pair_log_probs(log_softmax(np.random.default_rng(2).normal(size=4)))
    r = np.array([0.0, 1.0, -1.0, 2.0])
    m = bt_pair_mass(r, log_q)
    assert abs(m.sum() - 1) < 1e-14 and np.allclose(np.diag(m), 0)
    with pytest.raises(ValueError, match="margin_loss="):
        pair_loss("dpo", np.zeros(3), [0], [1])
    with pytest.raises(ValueError, match="winners and losers"):
        pair_loss(Squared(1.0), np.zeros(3), [0, 1], [1])
    with pytest.raises(ValueError, match="weights has shape"):
        pair_loss(Squared(1.0), np.zeros(3), [0], [1], [0.5, 0.5])
    with pytest.raises(ValueError, match="mass has shape"):
        population_pair_loss(Logistic(1.0), np.zeros(3), np.ones((2, 2)))
    with pytest.raises(ValueError, match="h must be"):
        population_pair_loss(Logistic(1.0), [np.nan, 0.0], np.ones((2, 2)))
    with pytest.raises(ValueError, match="beta"):
        Logistic(-1.0)
    with pytest.raises(ValueError, match="clip"):
        Logistic(1.0, 0.0)
    with pytest.raises(ValueError, match="target="):
        Squared(np.inf)
    with pytest.raises(ValueError, match="log_q"):
        bt_pair_mass(r, np.zeros((3, 3)))


if __name__ == "__main__" and sys.argv[1:] == ["record"]:
    np.savez(GOLDEN, **outputs())
    print(f"wrote {len(outputs())} arrays")
