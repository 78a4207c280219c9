"""The command line: ``python -m toyfdiv [compare|sweep|run|estimators|show|rl] …`` (``--help`` on each).

No arguments runs the default comparison — every registered divergence on the default
task, from the base model, exact gradients — prints the table and writes figures and the
saved runs into a folder it names.  ``run FILE`` runs the Config JSON that the app's
"Download settings" button (or :func:`toyfdiv.config.configs_to_json`) wrote.  ``show RUN``
prints saved runs (every one validated in full first) and writes their figures.

Exit codes (one line on stderr, no traceback, for every failure but a bug):

- 0: done;
- 1: the command line was valid but the work failed: a file that is missing, corrupt or
  not a valid Config / saved run, a run whose training diverged, an unwritable folder;
- 2: the command line itself is invalid (unknown option, a value that is not a number or
  out of its range — every range is checked by the parser, e.g. ``--lr nan`` and
  ``--lr inf`` alike);
- 130: interrupted by SIGINT (Ctrl-C), as shells report 128 + 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

__all__ = ["main", "Progress", "format_table"]


# ---------------------------------------------------------------------------- progress
class Progress:
    """A textual progress bar on stderr, shown only once the work has taken over ``delay`` seconds."""

    def __init__(self, label: str, total: int | None = None, *, stream=None, delay: float = 1.0, width: int = 30):
        self.label, self.total, self.width, self.delay = label, total, width, delay
        self.stream = sys.stderr if stream is None else stream
        self.start = time.perf_counter()
        self.last = 0.0
        self.shown = False
        self.done = 0

    def __call__(self, done: int, total: int | None = None) -> None:
        self.done, self.total = done, total or self.total
        now = time.perf_counter()
        if now - self.start >= self.delay and (now - self.last >= 0.1 or done == self.total):
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        total = max(self.total or 1, 1)
        frac = min(self.done / total, 1.0)
        bar = "#" * int(frac * self.width)
        self.stream.write(f"\r{self.label} [{bar:<{self.width}}] {self.done}/{total} {100 * frac:3.0f}% "
                          f"{now - self.start:5.1f}s")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------------- tables
def _fmt(v, key: str = "") -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if key == "seconds" else f"{v:.6g}"
    return str(v)


def format_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain-text table: ``columns`` = [(row key, header)], numbers to 6 significant digits."""
    cells = [[h for _, h in columns]] + [[_fmt(r.get(k, ""), k) for k, _ in columns] for r in rows]
    widths = [max(len(c[j]) for c in cells) for j in range(len(columns))]
    lines = ["  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _summary_columns(rows: list[dict], extra: list[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    key = rows[0].get("alignment_key", "") if rows else ""
    return [("divergence", "divergence"), *extra, ("final_divergence", "D_f(π‖p) nats"),
            ("alignment", f"E_π[{key}]"), ("kl_from_base", "KL(π‖a) nats"), ("entropy", "H(π) nats"),
            ("distinct_100", "distinct/100"), ("steps", "steps"), ("seconds", "time s")]


# ---------------------------------------------------------------------------- argument types
def _divergence_list(text: str) -> list[str]:
    from . import divergences

    names = [t.strip() for t in text.split(",") if t.strip()] if text != "all" else divergences.names()
    try:
        return [divergences.get(n).name for n in names]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _check_value(kind, text: str, low, strict: bool, high=None):
    """``kind(text)`` if it is finite and in range, else the ArgumentTypeError that makes it a usage error (exit 2)."""
    try:
        v = kind(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    ok = math.isfinite(v) and (v > low if strict else v >= low) and (high is None or v < high)
    if not ok:
        allowed = f"{'>' if strict else '≥'} {low:g}" + (f" and < {high:g}" if high is not None else "")
        raise argparse.ArgumentTypeError(f"{text.strip()!r} is out of range; allowed: finite, {allowed}")
    return v


def _number(kind, low, *, strict: bool = False, high=None):
    """An argparse type: one number of ``kind`` in [low, high) (or (low, high) with ``strict``)."""
    def parse(text: str):
        return _check_value(kind, text, low, strict, high)
    parse.__name__ = kind.__name__
    return parse


def _number_list(kind, low, *, strict: bool = False):
    """An argparse type: a non-empty comma-separated list of numbers, each checked as by :func:`_number`."""
    def parse(text: str):
        items = [t for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"{text!r}: the list is empty")
        return [_check_value(kind, t, low, strict) for t in items]
    parse.__name__ = f"list of {kind.__name__}"
    return parse


def _common(p: argparse.ArgumentParser, *, divergences_default: str = "all") -> None:
    from . import optim, tasks
    from .build import POLICIES
    from .training import ESTIMATORS

    p.add_argument("--task", default=tasks.names()[0], choices=tasks.names(), help="catalogue task (default: %(default)s)")
    p.add_argument("--kind", default="rlhf", choices=tasks.TARGET_KINDS, help="target kind (default: %(default)s)")
    default = None if divergences_default == "all" else _divergence_list(divergences_default)
    p.add_argument("--divergences", type=_divergence_list, default=default,
                   help="comma-separated names, e.g. forward_kl,reverse_kl,alpha(0.3); 'all' = every registered one")
    p.add_argument("--steps", type=_number(int, 1), default=300, help="updates per run (default: %(default)s)")
    p.add_argument("--lr", type=_number(float, 0, strict=True), default=0.1, help="learning rate (default: %(default)s)")
    p.add_argument("--optimizer", default="adam", choices=optim.names(), help="(default: %(default)s)")
    p.add_argument("--policy", default="autoregressive", choices=POLICIES,
                   help="policy family, started from the base model (default: %(default)s)")
    p.add_argument("--estimator", default="exact", choices=ESTIMATORS, help="(default: %(default)s)")
    p.add_argument("--n", "--samples", dest="n", type=_number(int, 1), default=None,
                   help="samples per step n (sampled estimator; --samples is the deprecated name)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: toyfdiv-runs/<timestamp>)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")


def _name_list(allowed):
    def parse(text: str):
        names = [t.strip() for t in text.split(",") if t.strip()]
        bad = [n for n in names if n not in allowed]
        if not names or bad:
            raise argparse.ArgumentTypeError(f"{text!r}: {bad or 'empty'} not allowed; choose from {list(allowed)}")
        return names
    return parse


def build_parser() -> argparse.ArgumentParser:
    from . import tasks
    from .estimator_lab import LAB_BASELINES, LAB_Z

    parser = argparse.ArgumentParser(
        prog="python -m toyfdiv",
        description="toyfdiv: RLHF and GDC as f-divergence minimisation, exact on toy spaces. "
                    "Without a command: the default comparison (same options as 'compare').",
        epilog="exit codes: 0 done; 1 the work failed (missing or corrupt file, invalid Config or saved run, "
               "diverged training); 2 invalid command line; 130 interrupted (Ctrl-C).")
    sub = parser.add_subparsers(dest="command", metavar="{compare,sweep,run,estimators,show,rl}")
    cmp_ = sub.add_parser("compare", help="train one policy per divergence and compare them",
                          description="Train one policy per divergence from the base model; print the table, "
                                      "write figures and the saved runs.")
    _common(cmp_)
    cmp_.add_argument("--beta", type=_number(float, 0, strict=True), default=None, help="RLHF KL coefficient β (default: the task's)")
    cmp_.add_argument("--epsilon", type=_number(float, 0, high=1), default=None, help="pointwise smoothing ε in [0, 1)")
    cmp_.add_argument("--seed", type=_number(int, 0), default=0, help="(default: %(default)s)")
    sw = sub.add_parser("sweep", help="a grid of divergences × β × seeds over processes",
                        description="Run the grid divergences × β × seeds (RLHF targets) over --workers processes; "
                                    "print the table, write the frontier figure and the saved runs.")
    _common(sw, divergences_default="forward_kl,reverse_kl,js,tv")
    sw.set_defaults(policy="ngram")
    sw.add_argument("--betas", type=_number_list(float, 0, strict=True), default=[0.2, 0.5, 1.0, 2.0], help="comma-separated β values")
    sw.add_argument("--seeds", type=_number_list(int, 0), default=[0], help="comma-separated seeds")
    sw.add_argument("--workers", type=_number(int, 1), default=min(4, os.cpu_count() or 1),
                    help="processes (default: %(default)s)")
    rn = sub.add_parser("run", help="run the Config JSON that the app's 'Download settings' wrote",
                        description="Run every Config in a JSON file (one object, or an array as the app's "
                                    "'Download settings' writes); print the table, write figures and the saved runs.")
    rn.add_argument("config", type=Path, help="a Config JSON file (one object or an array of objects)")
    rn.add_argument("--workers", type=_number(int, 1), default=1, help="processes (default: %(default)s)")
    rn.add_argument("--out", type=Path, default=None, help="output folder (default: toyfdiv-runs/<timestamp>)")
    rn.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    es = sub.add_parser("estimators", help="bias, variance and cosine of the sampled gradient against the exact one",
                        description="The estimator laboratory: over --trials independent batches of n samples from "
                                    "the base model, the bias ‖E ĝ − g‖, variance tr Cov ĝ and mean cos(ĝ, g) of the "
                                    "sampled f-DPG gradient ĝ against the exact gradient g, per divergence, n, "
                                    "baseline and Z estimate; print the table, write the figure.")
    es.add_argument("--task", default=tasks.names()[0], choices=tasks.names(), help="catalogue task (default: %(default)s)")
    es.add_argument("--kind", default="rlhf", choices=tasks.TARGET_KINDS, help="target kind (default: %(default)s)")
    es.add_argument("--beta", type=_number(float, 0, strict=True), default=None, help="RLHF KL coefficient β (default: the task's)")
    es.add_argument("--divergences", type=_divergence_list, default=_divergence_list("forward_kl,reverse_kl,js,tv"),
                    help="comma-separated names (default: forward_kl,reverse_kl,js,tv)")
    es.add_argument("--n", type=_number_list(int, 1), default=[64, 256, 1024], help="comma-separated sample sizes "
                    "(default: 64,256,1024)")
    es.add_argument("--trials", type=_number(int, 2), default=2000, help="independent estimates per cell "
                    "(default: %(default)s)")
    es.add_argument("--baselines", type=_name_list(LAB_BASELINES), default=["none", "mean"],
                    help=f"comma-separated, from {','.join(LAB_BASELINES)} (default: none,mean)")
    es.add_argument("--z", type=_name_list(LAB_Z), default=["exact", "batch"],
                    help=f"comma-separated Z options, from {','.join(LAB_Z)} (default: exact,batch)")
    es.add_argument("--seed", type=_number(int, 0), default=0, help="(default: %(default)s)")
    es.add_argument("--out", type=Path, default=None, help="output folder (default: toyfdiv-runs/<timestamp>)")
    es.add_argument("--no-figures", action="store_true", help="skip the PNG figure")
    sh = sub.add_parser("show", help="print a saved run's table and write its figures",
                        description="Load saved runs (a run path, or a folder written by compare/sweep); print "
                                    "their table and write their figures.")
    sh.add_argument("run", type=Path, help="a saved run (its directory, or its run.json) or a folder of runs")
    sh.add_argument("--out", type=Path, default=None, help="figure folder (default: next to the runs)")
    sh.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    _rl_parser(sub)
    return parser


def _rl_parser(sub) -> None:
    """The ``rl`` subcommand: the expected-update table of the RLHF algorithms (issue 16)."""
    from .rl import MODES, names as rl_names

    rl_ = sub.add_parser("rl", help="the expected update of PPO, GRPO, RLOO, … against the exact RLHF gradient",
                         description="For every RLHF algorithm preset on the prompted verifiable-reward task: its "
                                     "expected update (exact where the batch space is small, else Monte Carlo with "
                                     "its noise floor) against the exact gradient of E[r] − β KL(π‖a).")
    rl_.add_argument("--G", type=_number(int, 2), default=8, help="responses per prompt (default: %(default)s)")
    rl_.add_argument("--trials", type=_number(int, 20), default=10_000, help="Monte-Carlo batches per algorithm "
                     "(default: %(default)s)")
    rl_.add_argument("--mode", choices=MODES, default="auto", help="exact, mc or auto (default: %(default)s)")
    rl_.add_argument("--algorithms", type=_name_list(rl_names()), default=rl_names(),
                     help=f"comma-separated, from {','.join(rl_names())} (default: all)")
    rl_.add_argument("--reward", choices=("binary", "graded", "prefix"), default="binary",
                     help="the task's reward (default: %(default)s)")
    rl_.add_argument("--seed", type=_number(int, 0), default=0, help="(default: %(default)s)")


def cmd_rl(args) -> int:
    from . import rl, rl_tasks

    task = rl_tasks.prompted(reward=args.reward)
    rows = rl.update_table(task, args.G, algorithms=args.algorithms, mode=args.mode, trials=args.trials,
                           seed=args.seed)
    print(f"Expected update u of each algorithm against the exact gradient g of E[r] − β KL(π‖a) "
          f"({len(task.prompts)} prompts, base success {', '.join(f'{p:g}' for p in task.base_success)}; G = {args.G})")
    print(format_table(rows, [("algorithm", "algorithm"), ("mode", "mode"), ("trials", "trials"),
                              ("cosine", "cos(u, g)"), ("scale", "⟨u,g⟩/‖g‖²"), ("residual", "‖u − scale·g‖/‖g‖"),
                              ("noise", "noise/‖g‖"), ("follows", "follows g")]))
    follow = [r["algorithm"] for r in rows if r["follows"]]
    print(f"Follow the exact gradient up to a step size (residual < {rl.FOLLOWS_THRESHOLD:g} noise floors, "
          f"or < 1e-9 when exact): {', '.join(follow) if follow else 'none'}; the others reweight it.")
    return 0


# ---------------------------------------------------------------------------- commands
def _out_folder(out: Path | None) -> Path:
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        return out
    base = Path("toyfdiv-runs") / time.strftime("%Y%m%d-%H%M%S")
    folder, k = base, 1
    while folder.exists():
        k += 1
        folder = base.with_name(f"{base.name}-{k}")
    folder.mkdir(parents=True)
    return folder


def _base_config(args):
    from .config import Config

    opts = {"n": args.n} if args.n is not None else {}
    return Config(task=args.task, kind=args.kind, policy=args.policy, steps=args.steps, lr=args.lr,
                  optimizer=args.optimizer, estimator=args.estimator, estimator_options=opts,
                  beta=getattr(args, "beta", None), epsilon=getattr(args, "epsilon", None),
                  seed=getattr(args, "seed", 0))


def _write_figures(folder: Path, task, target, histories: dict) -> list[Path]:
    from . import experiments, plots, simplex

    folder.mkdir(parents=True, exist_ok=True)
    ref = experiments.target_row(target)
    dists = experiments.final_policies(task, target, histories)
    worst = sorted(histories, key=lambda n: -histories[n].final()["divergence/reverse_kl"])[:1]
    keep = ["target", "base"] + [n for n in ("forward_kl", "reverse_kl") if n in dists] + \
        [n for n in worst if n not in ("forward_kl", "reverse_kl")]
    figures = {
        "training_curves.png": plots.training_curves(histories, target_values={
            "alignment": ref["alignment"], "kl_from_base": ref["kl_from_base"], "entropy": ref["entropy"]}),
        "distributions.png": plots.distributions(task.space, {k: dists[k] for k in keep}, k=10),
        "divergence_zoo.png": plots.divergence_zoo(),
        "simplex.png": plots.simplex(simplex.DEFAULT_TARGET, list(histories)),
    }
    paths = []
    for name, fig in figures.items():
        fig.savefig(folder / name)
        paths.append(folder / name)
    return paths


def cmd_compare(args) -> int:
    from . import divergences, experiments
    from .runs import save_run, write_json_atomic

    base = _base_config(args)
    folder = _out_folder(args.out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # skipped divergences are reported below
        configs = experiments.compare_configs(base, args.divergences)
    task = experiments.as_task(base.task)
    target = experiments.make_target(task, base.kind, base.target_options)
    bar = Progress(f"training {len(configs)} divergences")
    histories = experiments.run_configs(configs, callback=bar)
    bar.close()
    rows = experiments.summary_table(histories)
    print(f"{task.name}: {task.description}  target: {target.describe()}")
    print(f"policy: {base.policy} from the base model, {base.steps} steps of {base.optimizer} "
          f"(lr {base.lr:g}), {base.estimator} gradients")
    print(format_table(rows, _summary_columns(rows)))
    wanted = args.divergences or [d.name for d in divergences.registered()]
    skipped = [d for d in wanted if d not in histories]
    if skipped:
        print(f"skipped (infinite D_f for this target): {', '.join(skipped)}")
    for c in configs:
        save_run(folder / "runs" / c.divergence, c, histories[c.divergence])
    write_json_atomic(folder / "summary.json", rows)
    if not args.no_figures:
        _write_figures(folder, task, target, histories)
    print(f"wrote {len(histories)} saved runs{'' if args.no_figures else ' and 4 figures'} to {folder}")
    return 0


def cmd_sweep(args) -> int:
    from . import experiments, plots
    from .runs import save_run, write_json_atomic

    if args.kind != "rlhf":
        raise ValueError("sweep varies β, which only rlhf targets have; use --kind rlhf")
    configs = experiments.sweep_configs(_base_config(args), args.divergences, args.betas, args.seeds)
    folder = _out_folder(args.out)
    bar = Progress(f"sweep: {len(configs)} runs on {args.workers} processes")
    histories = experiments.run_many(configs, workers=args.workers, callback=bar)
    bar.close()
    rows = []
    for c, h in zip(configs, histories):
        row = experiments.summary_table({h.divergence: h})[0]
        rows.append(dict(row, beta=c.beta, seed=c.seed))
        save_run(folder / "runs" / f"{h.divergence}-beta{c.beta:g}-seed{c.seed}", c, h)
    print(format_table(rows, _summary_columns(rows, [("beta", "β"), ("seed", "seed")])))
    write_json_atomic(folder / "sweep.json", rows)
    if not args.no_figures:
        plots.frontier(experiments.frontier_from_runs(configs, histories)).savefig(folder / "frontier.png")
    print(f"wrote {len(rows)} saved runs{'' if args.no_figures else ' and the frontier figure'} to {folder}")
    return 0


MAX_CONFIG_BYTES = 1 << 20


def _shared_target(configs):
    """(task, target) when every Config has the same task and target (so one set of figures
    can compare them), else None."""
    from . import experiments

    key = lambda c: (c.task, c.length, c.eos, c.kind, c.target_options)  # noqa: E731
    if any(key(c) != key(configs[0]) for c in configs):
        return None
    c = configs[0]
    task = experiments.as_task(c.task, length=c.length, eos=c.eos)
    return task, experiments.make_target(task, c.kind, c.target_options)


def cmd_run(args) -> int:
    from . import experiments
    from .config import configs_from_json
    from .runs import save_run, write_json_atomic

    path = Path(args.config)
    if not path.is_file():
        raise ValueError(f"config={str(path)!r} is not a file; give the settings JSON that the app wrote")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"config={str(path)!r} has {path.stat().st_size:,} bytes; a config file is under "
                         f"{MAX_CONFIG_BYTES:,}")
    configs = configs_from_json(path.read_bytes())
    folder = _out_folder(args.out)
    bar = Progress(f"running {len(configs)} config{'s' * (len(configs) > 1)}")
    histories = experiments.run_many(configs, workers=args.workers, callback=bar)
    bar.close()
    names = [c.divergence for c in configs]
    labels = names if len(set(names)) == len(names) else [f"{i + 1}-{n}" for i, n in enumerate(names)]
    rows = [dict(experiments.summary_table({h.divergence: h})[0], run=label)
            for label, h in zip(labels, histories)]
    print(format_table(rows, [("run", "run")] + _summary_columns(rows)[1:]))
    for label, c, h in zip(labels, configs, histories):
        save_run(folder / "runs" / label, c, h)
    write_json_atomic(folder / "summary.json", rows)
    shared = _shared_target(configs) if labels == names else None
    if not args.no_figures and shared:
        _write_figures(folder, *shared, dict(zip(names, histories)))
    elif not args.no_figures:
        print("no figures: the configs have different targets or repeat a divergence (see 'show' per run)")
    print(f"wrote {len(rows)} saved runs to {folder}")
    return 0


def cmd_estimators(args) -> int:
    import numpy as np

    from . import experiments, plots
    from .estimator_lab import estimator_stats
    from .runs import write_json_atomic

    if any(n < 1 for n in args.n):
        raise ValueError(f"--n {args.n}: every sample size must be ≥ 1")
    task = experiments.as_task(args.task)
    target = experiments.make_target(task, args.kind, {"beta": args.beta} if args.beta is not None else None)
    folder = _out_folder(args.out)
    cells = [(d, n) for d in args.divergences for n in args.n]
    bar = Progress(f"estimator laboratory: {len(cells)} cells × {args.trials} trials", len(cells))
    rows = []
    for i, (d, n) in enumerate(cells):  # one seed per cell: the table does not depend on its order
        rng = np.random.default_rng([args.seed, i])
        rows += estimator_stats(task.base, target, d, n=n, trials=args.trials, rng=rng,
                                baselines=args.baselines, z_options=args.z)
        bar(i + 1)
    bar.close()
    print(f"{task.name}: {task.description}  target: {target.describe()}")
    print(f"policy: the base model a; {args.trials} independent estimates per row; bias s.e. = √(variance/trials)")
    print(format_table(rows, [("divergence", "divergence"), ("n", "n"), ("z", "Z"), ("baseline", "baseline"),
                              ("bias", "bias"), ("bias_se", "bias s.e."), ("variance", "variance"),
                              ("cosine", "cosine"), ("grad_norm", "‖g‖")]))
    write_json_atomic(folder / "estimators.json", rows)
    if not args.no_figures:
        plots.estimator_stats(rows).savefig(folder / "estimator_stats.png")
    print(f"wrote the table{'' if args.no_figures else ' and its figure'} to {folder}")
    return 0


def cmd_show(args) -> int:
    from .runs import find_runs, load_run

    paths = find_runs(args.run)
    loaded = [load_run(p) for p in paths]  # every run validated in full before anything is printed
    histories = {p.name: r.history for p, r in zip(paths, loaded)}
    rows = [dict(r.summary, run=p.name) for p, r in zip(paths, loaded)]
    print(format_table(rows, [("run", "run")] + _summary_columns(rows)[1:]))
    if not args.no_figures:
        shared = _shared_target([r.config for r in loaded])
        if not shared:
            raise ValueError("these runs have different tasks or targets; show them one at a time for figures")
        task, target = shared
        given = Path(args.run).parent if Path(args.run).name == "run.json" else Path(args.run)
        folder = args.out or (given.parent if paths == [given] else given)  # beside one run, or the folder
        by_div = {r.history.divergence: r.history for r in loaded}
        written = _write_figures(folder, task, target, by_div if len(by_div) == len(loaded) else histories)
        print(f"wrote {len(written)} figures to {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code: 0 ok, 1 the work failed, 2 usage error, 130 SIGINT (module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["compare", *argv]  # no command: the default comparison
    args = build_parser().parse_args(argv)
    commands = {"compare": cmd_compare, "sweep": cmd_sweep, "run": cmd_run, "estimators": cmd_estimators,
                "show": cmd_show, "rl": cmd_rl}
    try:
        return commands[args.command](args)
    except (ValueError, OSError) as err:
        print(f"toyfdiv: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("toyfdiv: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
