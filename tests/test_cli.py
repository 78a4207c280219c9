"""The command line, run as users run it: ``python -m toyfdiv …`` in a subprocess."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toyfdiv import divergences, experiments
from toyfdiv.config import Config, run

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "toyfdiv", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def table(stdout: str) -> dict[str, list[str]]:
    """{first cell: cells} of the rows under the table's dashed rule."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if set(line.replace(" ", "")) == {"-"}) + 1
    rows = {}
    for line in lines[start:]:
        cells = line.split()
        try:
            float(cells[-2])  # every table row ends with steps and seconds
        except (IndexError, ValueError):
            break
        rows[cells[0] if cells[0] not in rows else " ".join(cells[:3])] = cells
    return rows


def assert_row(cells, row):
    """The printed numbers are the library's (to the 6 digits printed)."""
    for printed, key in zip(cells[1:6], ("final_divergence", "alignment", "kl_from_base", "entropy", "distinct_100")):
        assert float(printed) == pytest.approx(row[key], rel=1e-5, abs=1e-12), key
    assert int(cells[6]) == row["steps"]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("default")
    return cwd, cli("--steps", 8, cwd=cwd)


@pytest.mark.parametrize("command", [[], ["compare"], ["sweep"], ["run"], ["estimators"], ["show"]],
                         ids=["main", "compare", "sweep", "run", "estimators", "show"])
def test_help(tmp_path, command):
    res = cli(*command, "--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: python -m toyfdiv")
    for word in {"compare": ["--divergences", "--beta", "--out"], "sweep": ["--workers", "--betas", "--seeds"],
                 "run": ["config", "--workers"], "estimators": ["--trials", "--baselines", "--z"],
                 "show": ["run"]}.get(command[0] if command else "", ["compare", "sweep", "run", "estimators", "show"]):
        assert word in res.stdout


def test_default_run(default_run):
    cwd, res = default_run
    assert res.returncode == 0, res.stderr
    folders = list((cwd / "toyfdiv-runs").iterdir())
    assert len(folders) == 1 and str(folders[0].relative_to(cwd)) in res.stdout
    out = folders[0]
    names = [d.name for d in divergences.registered()]
    assert sorted(p.parent.name for p in (out / "runs").glob("*/run.json")) == sorted(names)
    for fig in ("training_curves", "distributions", "divergence_zoo", "simplex"):
        assert (out / f"{fig}.png").read_bytes()[:4] == b"\x89PNG"
    rows = table(res.stdout)
    assert list(rows) == names
    library = {r["divergence"]: r for r in experiments.summary_table(experiments.compare("reviews", steps=8))}
    for name in names:
        assert_row(rows[name], library[name])
    assert json.loads((out / "summary.json").read_text())[0]["divergence"] == names[0]


def test_compare(tmp_path):
    res = cli("compare", "--divergences", "forward_kl,alpha(0.3)", "--steps", 12, "--beta", 0.5, "--seed", 1,
              "--policy", "tabular", "--no-figures", "--out", tmp_path / "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = table(res.stdout)
    assert list(rows) == ["forward_kl", "alpha(0.3)"]
    for name in rows:
        hist = run(Config(divergence=name, steps=12, beta=0.5, seed=1, policy="tabular"))
        assert_row(rows[name], experiments.summary_table({name: hist})[0])
    assert not list((tmp_path / "out").glob("*.png"))
    assert (tmp_path / "out" / "runs" / "alpha(0.3)" / "arrays.npz").is_file()


def test_sweep_two_processes(tmp_path):
    res = cli("sweep", "--divergences", "forward_kl,reverse_kl", "--betas", "0.5,2", "--steps", 10,
              "--workers", 2, "--out", tmp_path / "sw", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [(r["divergence"], r["beta"]) for r in rows] == [("forward_kl", 0.5), ("forward_kl", 2.0),
                                                            ("reverse_kl", 0.5), ("reverse_kl", 2.0)]
    for r in rows:  # a worker's numbers are the library's, exactly
        hist = run(Config(divergence=r["divergence"], beta=r["beta"], steps=10, policy="ngram"))
        assert r["final_divergence"] == experiments.summary_table({r["divergence"]: hist})[0]["final_divergence"]
    assert (tmp_path / "sw" / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((tmp_path / "sw" / "runs").glob("*/run.json"))) == 4


def test_run_settings_from_the_app(tmp_path):
    """The app's "Download settings" file, run by the CLI, gives the library's numbers."""
    from app_pages.common import configs_json

    configs = [Config(divergence=d, steps=9, beta=0.4, policy="ngram", policy_options={"order": 2})
               for d in ("reverse_kl", "js")]
    (tmp_path / "settings.json").write_text(configs_json(configs))
    res = cli("run", "settings.json", "--workers", 2, "--out", "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = table(res.stdout)
    assert list(rows) == ["reverse_kl", "js"]
    for c in configs:
        assert_row(rows[c.divergence], experiments.summary_table({c.divergence: run(c)})[0])
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "distributions.png", "divergence_zoo.png", "simplex.png", "training_curves.png"]
    saved = cli("show", tmp_path / "out" / "runs" / "js", "--no-figures", cwd=tmp_path)
    assert saved.returncode == 0 and table(saved.stdout)["js"][:7] == rows["js"][:7]  # all but the time


def test_run_one_config_object(tmp_path):
    config = Config(divergence="tv", steps=5, task="abc")
    (tmp_path / "one.json").write_text(config.to_json())
    res = cli("run", "one.json", "--no-figures", "--out", "o", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert_row(table(res.stdout)["tv"], experiments.summary_table({"tv": run(config)})[0])
    assert not list((tmp_path / "o").glob("*.png"))


def test_estimators_table_is_the_library_s(tmp_path):
    from toyfdiv import tasks
    from toyfdiv.estimator_lab import estimator_stats

    res = cli("estimators", "--divergences", "tv,forward_kl", "--n", "8,32", "--trials", 50, "--baselines", "none,loo",
              "--z", "batch", "--beta", 0.5, "--seed", 4, "--out", "e", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if set(line.replace(" ", "")) == {"-"}) + 1
    printed = [line.split() for line in lines[start:start + 8]]
    task = tasks.default()
    target = task.target("rlhf", beta=0.5)
    expected = [r for i, (d, n) in enumerate([("tv", 8), ("tv", 32), ("forward_kl", 8), ("forward_kl", 32)])
                for r in estimator_stats(task.base, target, d, n=n, trials=50, rng=np.random.default_rng([4, i]),
                                         baselines=("none", "loo"), z_options=("batch",))]
    assert [c[:4] for c in printed] == [[r["divergence"], str(r["n"]), r["z"], r["baseline"]] for r in expected]
    for cells, r in zip(printed, expected):
        for text, key in zip(cells[4:8], ("bias", "bias_se", "variance", "cosine")):
            assert float(text) == pytest.approx(r[key], rel=1e-5), key
    assert json.loads((tmp_path / "e" / "estimators.json").read_text())[0]["bias"] == expected[0]["bias"]
    assert (tmp_path / "e" / "estimator_stats.png").read_bytes()[:4] == b"\x89PNG"


def test_show(default_run, tmp_path):
    cwd, _ = default_run
    folder = next((cwd / "toyfdiv-runs").iterdir())
    res = cli("show", folder, "--out", tmp_path / "figs", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = table(res.stdout)
    saved = {r["divergence"]: r for r in json.loads((folder / "summary.json").read_text())}
    assert sorted(rows) == sorted(saved)
    for name, cells in rows.items():
        assert_row(cells, saved[name])
    assert len(list((tmp_path / "figs").glob("*.png"))) == 4
    one = cli("show", folder / "runs" / "js" / "run.json", "--no-figures", cwd=tmp_path)
    assert one.returncode == 0 and list(table(one.stdout)) == ["js"]


@pytest.mark.parametrize("args", [["--bogus"], ["compare", "--divergences", "nope"], ["sweep", "--betas", "x"],
                                  ["show"], ["estimators", "--baselines", "ema"], ["estimators", "--trials", "1"],
                                  ["estimators", "--n", "0,8"], ["--lr", "nan"], ["--lr", "inf"], ["--beta", "0"],
                                  ["sweep", "--betas", "0"], ["sweep", "--seeds", "0,-1"], ["--seed", "-1"],
                                  ["--epsilon", "1"], ["--steps", "1e3"]],
                         ids=["option", "divergence", "betas", "no-run", "lab-baseline", "lab-trials", "lab-n",
                              "lr-nan", "lr-inf", "beta-0", "betas-0", "seeds-negative", "seed-negative",
                              "epsilon-1", "steps-float"])
def test_usage_errors_exit_2(tmp_path, args):
    res = cli(*args, cwd=tmp_path)
    assert res.returncode == 2
    assert "usage:" in res.stderr and "Traceback" not in res.stderr


def test_seed_range_is_stated_as_accepted(tmp_path):
    """--seed 0 is accepted, so the refusal of -1 says ≥ 0 (not > 0)."""
    from toyfdiv.__main__ import build_parser

    assert build_parser().parse_args(["compare", "--seed", "0"]).seed == 0
    res = cli("compare", "--seed", "-1", cwd=tmp_path)
    assert res.returncode == 2 and "allowed: finite, ≥ 0" in res.stderr


def test_sigint_exits_130(monkeypatch, capsys):
    """Ctrl-C during a command: exit code 130 (128 + SIGINT), one line on stderr, as documented."""
    import toyfdiv.__main__ as cli_main

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_main, "cmd_show", interrupted)
    assert cli_main.main(["show", "anything"]) == 130
    assert capsys.readouterr().err.strip() == "toyfdiv: interrupted"
    assert "130" in cli_main.__doc__ and "130" in cli_main.build_parser().epilog


@pytest.mark.parametrize("args, match", [
    (["show", "missing-run"], "no saved run"),
    (["sweep", "--kind", "pointwise", "--steps", "2"], "only rlhf"),
    (["run", "missing.json"], "is not a file"),
    (["run", "bad.json"], "unknown config keys"),
    (["run", "nan.json"], "numbers must be finite"),
], ids=["missing-run", "sweep-kind", "run-missing", "run-unknown-key", "run-nan"])
def test_runtime_errors_exit_1_with_one_line(tmp_path, args, match):
    (tmp_path / "bad.json").write_text('{"divergence": "js", "stepz": 5}')
    (tmp_path / "nan.json").write_text('{"lr": NaN}')
    res = cli(*args, cwd=tmp_path)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("toyfdiv: error:") and match in lines[0]


def test_corrupt_run_is_a_runtime_error(default_run, tmp_path):
    cwd, _ = default_run
    src = next((cwd / "toyfdiv-runs").iterdir()) / "runs" / "tv"
    bad = tmp_path / "tv"
    shutil.copytree(src, bad)
    (bad / "run.json").write_text((src / "run.json").read_text()[:50])
    res = cli("show", bad, cwd=tmp_path)
    assert res.returncode == 1 and "corrupt" in res.stderr and "Traceback" not in res.stderr


def test_compare_from_a_ready_start_is_compare_from_its_recipe():
    """One fitted TinyLM shared by several comparisons (as frontier does) gives the same runs."""
    task = experiments.as_task("abc", length=3)
    options = {"n_hidden": 3, "fit_steps": 30}
    start = experiments.make_policy(task, "tinylm", seed=1, **options)
    a = experiments.compare(task, "rlhf", ["js"], policy="tinylm", policy_options=options, seed=1, steps=5)
    b = experiments.compare(task, "rlhf", ["js"], start=start, seed=1, steps=5)
    for key in a["js"].metrics:
        np.testing.assert_array_equal(a["js"].metrics[key], b["js"].metrics[key], err_msg=key)
    rows = experiments.frontier(task, ["js"], betas=(0.5, 2.0), steps=5, policy="tinylm", policy_options=options,
                                seed=1)
    again = experiments.compare(task, "rlhf", ["js"], start=start, seed=1, steps=5, target_options={"beta": 2.0})
    assert rows[1]["final_divergence"] == experiments.summary_table(again)[0]["final_divergence"]


def test_experiments_bad_input_audit():
    task = experiments.as_task("abc")
    for call, match in [(lambda: experiments.make_target(None, "rlhf"), r"task=None"),
                        (lambda: experiments.make_target(task, "rlhf", [1]), r"target_options=\[1\]"),
                        (lambda: experiments.make_policy(task, "tabular", seed=-1), r"seed=-1"),
                        (lambda: experiments.compare(task, divergences=5), r"divergences=5"),
                        (lambda: experiments.summary_table(None), r"histories=None"),
                        (lambda: experiments.primary_alignment(None), r"metrics=None"),
                        (lambda: experiments.target_row(None), r"target=None"),
                        (lambda: experiments.frontier(task, ["js"], betas=[None]), r"betas=\[None\]"),
                        (lambda: experiments.frontier(task, ["js"], betas="abc"), r"betas='abc'"),
                        (lambda: experiments.sweep_configs(None), r"base=None"),
                        (lambda: experiments.sweep_configs(Config(), ["js"], seeds=[1.5]), r"seeds\[\]=1.5"),
                        (lambda: experiments.run_many(None), r"configs=None"),
                        (lambda: experiments.frontier_from_runs([Config()], []), r"1 configs and 0 histories"),
                        (lambda: experiments.compare(task, start="tinylm"), r"start='tinylm' must be a Policy"),
                        (lambda: experiments.compare(task, start=experiments.make_policy(experiments.as_task(
                            "reviews"))), r"must be a Policy on the task's space")]:
        with pytest.raises(ValueError, match=match):
            call()
