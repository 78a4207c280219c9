"""Golden outputs: runs recorded before the one-loop refactor (issue 12) reproduce exactly.

The golden files (tests/golden/*.npz, written by ``python tests/test_golden.py record`` on
the main branch before the refactor) hold,
per run, every metric at the steps 0, 10, 20, … and the last one, the recorded steps and
the final parameters θ.  Each case below is the run itself; the test runs it again and
compares.

Tolerance: bit for bit (``assert_array_equal``) wherever the arithmetic is the same.  Two
places reorder floating-point work on purpose, and there the test allows 1e-12 (relative
and absolute), with the reason beside the case:
- DPO's "kl_to_target" is now :func:`toyfdiv.metrics.kl` (scipy.special.rel_entr summed)
  instead of a hand-written dot product πᵀ(log π − log p): the same sum, another order.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from toyfdiv import Config, conditional, load_run, run, save_run, tasks
from toyfdiv.runs import find_runs
from toyfdiv.feedback import Rater, collect_preferences, train_dpo, train_fdpo
from toyfdiv.policies import AutoregressivePolicy, TabularPolicy, TinyLM, TinyLMConfig

GOLDEN = Path(__file__).resolve().parent / "golden"
EVERY = 10  # trajectory points kept: steps 0, 10, 20, … and the last
#: the default comparison's divergences that the test reruns (each run is independent of
#: the others — same start, same target — so a subset reproduces the same numbers; the
#: golden file holds all nine)
CLI_SUBSET = ("reverse_kl", "js", "gjsd(0.25)")


def flatten(runs: dict) -> dict[str, np.ndarray]:
    """{run}/{metric} trajectories (every EVERY-th record and the last), {run}/step, {run}/params."""
    out = {}
    for name, res in runs.items():
        metrics = dict(res.metrics)
        if "loss" not in metrics and hasattr(res, "loss"):  # the pre-refactor DPOResult
            metrics["loss"] = res.loss
        step = np.asarray(res.step)
        keep = np.unique(np.r_[np.arange(0, step.size, EVERY), step.size - 1])
        for key, v in metrics.items():
            v = np.asarray(v, dtype=float)
            out[f"{name}/{key}"] = v[keep[keep < v.size]] if v.size == step.size else v
        out[f"{name}/step"] = step
        out[f"{name}/params"] = np.asarray(res.policy.params)
    return out


def _saved(config: Config, tmp: Path):
    """run(config), saved and loaded back: the History a saved run gives."""
    hist = run(config)
    save_run(tmp / "run", config, hist)
    return load_run(tmp / "run").history


def cli_compare(tmp: Path, divergences=None):
    """The default command-line comparison (``python -m toyfdiv``), its saved runs read back."""
    from toyfdiv.__main__ import main

    argv = ["compare", "--out", str(tmp / "cli"), "--no-figures"]
    if divergences:
        argv += ["--divergences", ",".join(divergences)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 0
    runs = [load_run(p) for p in find_runs(tmp / "cli")]
    return {r.history.divergence: r.history for r in runs}


def config_runs(tmp: Path):
    """An exact, a sampled and a TinyLM run, each through run(Config) → save_run → load_run."""
    return {
        "exact": _saved(Config(steps=40, divergence="js"), tmp / "a"),
        "sampled": _saved(Config(steps=40, divergence="forward_kl", estimator="sampled",
                                 estimator_options={"n": 64, "baseline": "mean"}, seed=3), tmp / "b"),
        "tinylm": _saved(Config(task="abc", policy="tinylm", policy_options={"fit_steps": 60, "n_hidden": 8},
                                steps=20, lr=0.05, divergence="reverse_kl", seed=1, record_every=3), tmp / "c"),
    }


class _Fit:  # a TinyLM fit has no metrics: its final parameters are the golden output
    def __init__(self, policy):
        self.policy, self.metrics, self.step = policy, {}, np.zeros(1)


def tinylm_fit(tmp: Path):
    """TinyLM pretraining, exact and by minibatches from p (the inverse-CDF sampler)."""
    task = tasks.get("abc")
    cfg = TinyLMConfig(n_hidden=6, seed=2)
    return {"fit_exact": _Fit(TinyLM.fit(task.space, task.log_a, cfg, steps=30, lr=0.05)),
            "fit_sampled": _Fit(TinyLM.fit(task.space, task.log_a, cfg, steps=30, lr=0.05, method="sampled",
                                           n=32, seed=3))}


def dpo(tmp: Path):
    """DPO and f-DPO (JS) on 300 pairs from the abc task's base model."""
    task = tasks.get("abc")
    r = np.random.default_rng(0).normal(0.0, 1.0, task.space.size)
    data = collect_preferences(Rater(r, temperature=1.0), task.base, 300, np.random.default_rng(1))
    log_p = task.log_a + r / 0.5
    log_p = log_p - np.logaddexp.reduce(log_p)
    return {"dpo": train_dpo(AutoregressivePolicy.from_log_probs(task.space, task.log_a), task.log_a, data, 0.5,
                             steps=40, lr=0.05, record_every=5, target_log_probs=log_p),
            "fdpo_js": train_fdpo(TabularPolicy.from_log_probs(task.space, task.log_a), task.log_a, data, 0.5,
                                  "js", steps=20, lr=0.05, record_every=4)}


def conditional_runs(tmp: Path):
    """Prompted reviews, exact and sampled."""
    ct = conditional.reviews_task()
    tgt = ct.target("rlhf", beta=1.0)
    return {"exact": conditional.train(ct.base_policy(), tgt, "js", steps=30, lr=0.1),
            "sampled": conditional.train(ct.base_policy(), tgt, "forward_kl", steps=20, lr=0.1,
                                         estimator="sampled", n=64, seed=5, record_every=2)}


CASES = {"cli_compare": cli_compare, "config_runs": config_runs, "tinylm_fit": tinylm_fit, "dpo": dpo,
         "conditional": conditional_runs}
#: arrays allowed to differ by 1e-12 (see the module docstring for why)
REORDERED = {"dpo/kl_to_target", "fdpo_js/kl_to_target"}


@pytest.mark.parametrize("case", list(CASES))
def test_golden_outputs_reproduce(case, tmp_path):
    with np.load(GOLDEN / f"{case}.npz") as z:
        golden = {k: z[k] for k in z.files}
    kwargs = {"divergences": CLI_SUBSET} if case == "cli_compare" else {}
    now = flatten(CASES[case](tmp_path, **kwargs))
    if case == "cli_compare":
        golden = {k: v for k, v in golden.items() if k.split("/")[0] in CLI_SUBSET}
        assert {k.split("/")[0] for k in golden} == set(CLI_SUBSET)
    missing = sorted(set(golden) - set(now))
    assert not missing, f"{case}: outputs no longer produced: {missing}"
    for key, want in golden.items():
        if key in REORDERED:
            np.testing.assert_allclose(now[key], want, rtol=1e-12, atol=1e-12, err_msg=f"{case}: {key}")
        else:
            np.testing.assert_array_equal(now[key], want, err_msg=f"{case}: {key}")


if __name__ == "__main__":  # record: python tests/test_golden.py record
    import tempfile

    if sys.argv[1:] != ["record"]:
        sys.exit("usage: python tests/test_golden.py record   (rewrites tests/golden/*.npz)")
    GOLDEN.mkdir(exist_ok=True)
    for name, fn in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            arrays = flatten(fn(Path(tmp)))
        np.savez_compressed(GOLDEN / f"{name}.npz", **arrays)
        print(name, len(arrays), "arrays")
