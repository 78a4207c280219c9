"""One command for speed and scale: ``python -m benchmarks.run [--quick] [--repeats R]``.

Measures, side by side in one run, toyfdiv against a PyTorch autograd reference of the same
gradient (``benchmarks/reference_torch.py``, float64, CPU, torch's default threads):

- the exact f-DPG step — fresh policy from θ, log πθ over the space, the weights
  w = πθ f'(πθ/p), and Σ_x w(x) ∇θ log πθ(x) — for AutoregressivePolicy and TinyLM, on
  fixed-length and EOS spaces, for JS and forward KL, at N = 10³ … 10⁶ (and V = 8, T = 6);
- a 300-step exact training run on the default task (``toyfdiv.tasks.default()``);
- TinyLM's sampled step (ancestral sampling, log πθ and ĝ at n = 1 024);
- the peak memory of each (``ru_maxrss`` of a fresh subprocess running that case alone).

Before anything is timed, each case checks that toyfdiv and torch give the same gradient
(max |Δ| ≤ 1e-9 · max |g|).  Times are medians of ``--repeats`` runs, the two libraries
interleaved so that machine load hits both alike; ratios are toyfdiv / torch (< 1: toyfdiv
faster).  The scaling exponent is the least-squares slope of log time against log N over
N = 10³ … 10⁶.  The table is printed and written to ``benchmarks/results.md``.
Without torch, toyfdiv is measured alone ("install torch to compare").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy

from toyfdiv import AutoregressivePolicy, SequenceSpace, TinyLM, fdpg, targets, tasks, train

torch = ref = None  # loaded by _load_torch(): optional, and kept out of toyfdiv's memory children


def _load_torch() -> None:
    global torch, ref
    try:
        import torch as _torch

        from benchmarks import reference_torch as _ref
    except ImportError:  # the benchmark runs without it: "install torch to compare"
        return
    torch, ref = _torch, _ref
    torch.set_default_dtype(torch.float64)

HERE = Path(__file__).resolve().parent
CHECK_RTOL = 1e-9


# ---------------------------------------------------------------------------- cases
def _space(V, T, eos):
    return SequenceSpace([f"w{i}" for i in range(V)], T, eos="</s>" if eos else None)


def _target(space):
    """An RLHF target p ∝ a exp(r), a a random autoregressive base, r ∼ N(0, 1) (full support)."""
    log_a = AutoregressivePolicy(space, seed=1, init_scale=1.0).log_probs()
    r = np.random.default_rng(2).standard_normal(space.size)
    return targets.rlhf(log_a, r, 1.0)


def cases(quick: bool) -> list[dict]:
    out = []
    scan = {False: [3, 4, 5, 6], True: [4, 7]}  # T for V = 10: N = 10^T (fixed) or ~10^(T−1)·1.11 (EOS)
    eos_scan = {False: [4, 5, 6, 7], True: [4, 7]}
    if quick:
        scan, eos_scan = {False: [3, 5]}, {False: [4, 6]}
    for model in ("ar", "tiny"):
        for div in ("js", "forward_kl"):
            for T in scan[False]:
                out.append(dict(kind=model, V=10, T=T, eos=False, div=div, scan=True))
            for T in eos_scan[False]:
                out.append(dict(kind=model, V=10, T=T, eos=True, div=div, scan=True))
            out.append(dict(kind=model, V=8, T=6, eos=False, div=div, scan=False))
    for div in ("js", "forward_kl"):
        out.append(dict(kind="train", div=div, record_every=1))
        out.append(dict(kind="train", div=div, record_every=300))
    out.append(dict(kind="sampled", div="js", n=1024, task=True))
    out.append(dict(kind="sampled", div="forward_kl", n=1024, task=True))
    if not quick:
        out.append(dict(kind="sampled", div="js", n=1024, task=False, V=10, T=7))
    return out


def label(c: dict) -> str:
    if c["kind"] in ("ar", "tiny"):
        name = {"ar": "AR exact step", "tiny": "TinyLM exact step"}[c["kind"]]
        return f"{name}, V={c['V']} T={c['T']}{' EOS' if c['eos'] else ''}, {c['div']}"
    if c["kind"] == "train":
        rec = "metrics every step" if c["record_every"] == 1 else "gradient + Adam only"
        return f"train 300 steps, default task, AR, {c['div']} ({rec})"
    where = "default task" if c["task"] else f"V={c['V']} T={c['T']} EOS"
    return f"TinyLM sampled step n={c['n']}, {where}, {c['div']}"


def impls(c: dict) -> list[str]:
    if torch is None:
        return ["toyfdiv"]
    if c["kind"] == "ar":
        return ["toyfdiv", "torch-gather", "torch-tree"]
    if c["kind"] == "tiny":
        return ["toyfdiv", "torch-tree"]
    if c["kind"] == "train" and c["record_every"] == 1:
        return ["toyfdiv"]
    return ["toyfdiv", "torch"]


def build(c: dict, impl: str):
    """A zero-argument callable running one measured unit of case ``c`` with ``impl``."""
    if c["kind"] in ("ar", "tiny"):
        space = _space(c["V"], c["T"], c["eos"])
        tgt = _target(space)
        pol = AutoregressivePolicy(space, seed=0) if c["kind"] == "ar" else TinyLM(space)
        theta = pol.params
        if impl == "toyfdiv":
            return lambda: fdpg.exact_gradient(pol.with_params(theta), tgt, c["div"])
        cls = {"torch-gather": ref.ARGather, "torch-tree": ref.ARTree}[impl] if c["kind"] == "ar" else ref.TinyTree
        return cls(pol, tgt.log_probs, c["div"])
    if c["kind"] == "train":
        task = tasks.default()
        tgt, base = task.target(), task.base
        if impl == "toyfdiv":
            return lambda: train(base, tgt, c["div"], steps=300, lr=0.1, record_every=c["record_every"])
        return _TorchTrain(base, tgt, c["div"])
    # sampled
    if c["task"]:
        task = tasks.default()
        space, tgt = task.space, task.target()
    else:
        space = _space(c["V"], c["T"], True)
        tgt = _target(space)
    model = TinyLM(space, seed=3)
    if impl == "toyfdiv":
        rng = np.random.default_rng(0)
        return lambda: fdpg.sampled_gradient(model, tgt, c["div"], n=c["n"], rng=rng)
    return ref.TinySampled(model, tgt.log_scores, c["div"], c["n"])


class _TorchTrain:
    """300 steps of torch.optim.Adam(lr=0.1) on the exact gradient (gather reference)."""

    def __init__(self, base, tgt, div, steps=300):
        self.base, self.tgt, self.div, self.steps = base, tgt, div, steps

    def __call__(self):
        step = ref.ARGather(self.base, self.tgt.log_probs, self.div)
        opt = torch.optim.Adam([b for b in step.blocks if b is not None], lr=0.1, eps=1e-8)
        for _ in range(self.steps):
            step()
            opt.step()
        return step


def check(c: dict, quick: bool) -> float:
    """Max |g_toyfdiv − g_torch| / max |g| over the torch references of case ``c``."""
    if torch is None or len(impls(c)) == 1:
        return float("nan")
    worst = 0.0
    for impl in impls(c)[1:]:
        if c["kind"] in ("ar", "tiny"):
            run = build(c, impl)
            run()
            g_ref = run.grad()
            space = run.space
            pol = (AutoregressivePolicy(space, seed=0) if c["kind"] == "ar" else TinyLM(space))
            g = fdpg.exact_gradient(pol, _target(space), c["div"])
        elif c["kind"] == "train":
            task = tasks.default()
            hist = train(task.base, task.target(), c["div"], steps=300, lr=0.1, record_every=300)
            run = build(c, impl)
            g_ref = torch.cat([b.detach().reshape(-1) for b in run().blocks if b is not None]).numpy()
            g = hist.policy.params  # compares the final θ after 300 Adam steps
        else:
            run = build(c, impl)
            model, space = run.model, run.space
            idx = np.random.default_rng(5).integers(0, space.size, 4 * c["n"])
            w = np.random.default_rng(6).standard_normal(idx.size)
            run.backward_at(ref.tokens_for(space, idx), torch.from_numpy(w))
            g_ref, g = run.grad(), model.grad_log_prob_at(idx, w)
        err = float(np.max(np.abs(g - g_ref)) / np.max(np.abs(g)))
        tol = 1e-7 if c["kind"] == "train" else CHECK_RTOL  # 300 chained Adam steps amplify rounding
        if not err <= tol:
            raise AssertionError(f"{label(c)}: toyfdiv and {impl} differ by {err:.2e} (relative) > {tol:g}")
        worst = max(worst, err)
    return worst


# ---------------------------------------------------------------------------- measuring
def timed(fns: dict, repeats: int) -> dict:
    """Median seconds per call of each callable, interleaved, after one warm-up call each."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def peak_memory(c: dict, impl: str) -> float:
    """Peak resident memory (MiB) of a fresh process that builds case ``c`` and runs it twice."""
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", json.dumps(c), impl]
    if torch is not None:
        cmd += ["--torch-threads", str(torch.get_num_threads())]
    out = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _child(case_json: str, impl: str) -> None:
    fn = build(json.loads(case_json), impl)
    fn()
    fn()
    print(_peak_rss_mib())


def _peak_rss_mib() -> float:
    """This process's peak resident memory: VmHWM (reset at exec, unlike ru_maxrss, which a
    forked child inherits from its parent), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB → MiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB → MiB


def exponent(ns, ts) -> float:
    """Least-squares slope of log t against log N."""
    return float(np.polyfit(np.log(ns), np.log(ts), 1)[0])


# ---------------------------------------------------------------------------- report
def fmt_t(s: float) -> str:
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small N only, fewer repeats (a smoke run)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per case (default 7, quick 3)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--out", default=str(HERE / "results.md"), help="markdown file to write")
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    ap.add_argument("--child", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not (args.child and args.child[1] == "toyfdiv"):
        _load_torch()
    if args.child:
        if args.torch_threads and torch is not None:
            torch.set_num_threads(args.torch_threads)
        _child(*args.child)
        return 0
    if args.torch_threads and torch is not None:
        torch.set_num_threads(args.torch_threads)
    repeats = args.repeats or (3 if args.quick else 7)
    start = time.perf_counter()
    rows = []
    for c in cases(args.quick):
        c["N"] = _size_of(c)
        err = check(c, args.quick)
        ts = timed({impl: build(c, impl) for impl in impls(c)}, max(3, repeats // 2) if c["kind"] == "train" else repeats)
        mem = {}
        if not args.no_memory and (c["N"] >= 10**6 or c["kind"] in ("train", "sampled")):
            mem = {impl: peak_memory(c, impl) for impl in impls(c)}
        rows.append(dict(case=c, times=ts, mem=mem, err=err))
        print(_row_text(rows[-1]), flush=True)
    text = report(rows, repeats, args, time.perf_counter() - start)
    Path(args.out).write_text(text)
    print()
    print(text)
    print(f"written to {args.out}")
    return 0


def _size_of(c):
    if c["kind"] in ("ar", "tiny"):
        return SequenceSpace.size_of(c["V"], c["T"], eos=c["eos"])
    if c["kind"] == "sampled" and not c["task"]:
        return SequenceSpace.size_of(c["V"], c["T"], eos=True)
    return tasks.default().space.size


def _err(r) -> str:
    return "—" if r["err"] != r["err"] else f"{r['err']:.1e}"


def _row_text(r) -> str:
    t = r["times"]
    parts = [f"{k} {fmt_t(v)}" for k, v in t.items()]
    return f"{label(r['case'])} (N={r['case']['N']:,}): " + ", ".join(parts)


def report(rows, repeats, args, seconds) -> str:
    have_torch = torch is not None
    lines = ["# toyfdiv benchmarks", ""]
    cmd = "python -m benchmarks.run" + (" --quick" if args.quick else "") + (
        f" --repeats {args.repeats}" if args.repeats else "") + (
        f" --torch-threads {args.torch_threads}" if args.torch_threads else "")
    lines += [f"Command: `{cmd}` — {time.strftime('%Y-%m-%d')}, {seconds:.0f} s.  "
              f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
              + (f"torch {torch.__version__} ({torch.get_num_threads()} threads)" if have_torch
                 else "torch not installed (install torch to compare)")
              + f"; {os.cpu_count()} CPUs, {platform.machine()}.", ""]
    lines += ["Times are medians of " f"{repeats} interleaved repeats (train: {max(3, repeats // 2)}); "
              "ratio = toyfdiv / torch; peak = max RSS of a fresh process running that case alone "
              "(MiB, imports included). Every case first checks that both give the same gradient "
              f"(max |Δg| / max |g| ≤ {CHECK_RTOL:g}; the training run compares θ after 300 steps).", ""]
    lines += ["torch-gather: log πθ(x) gathered over the (N, T) tokens (what a user naturally writes); "
              "torch-tree: summed down the prefix tree level by level, as toyfdiv does.  "
              "TinyLM's torch reference runs the GRU once per tree node, as toyfdiv does.", ""]
    # ---- exact steps
    hdr = "| case | N | toyfdiv | torch-gather | torch-tree | ratio vs gather | ratio vs tree | peak toyfdiv | peak torch (gather / tree) | check |"
    lines += ["## Exact f-DPG step (log πθ + weights + Σ w ∇ log πθ)", "", hdr, "|" + "---|" * 10]
    for r in rows:
        c, t, m = r["case"], r["times"], r["mem"]
        if c["kind"] not in ("ar", "tiny"):
            continue
        tg = t.get("torch-gather")
        tt = t.get("torch-tree")
        ratios = [f"{t['toyfdiv'] / x:.2f}×" if x else "—" for x in (tg, tt)]
        mt = " / ".join(f"{m[k]:.0f}" if k in m else "—" for k in ("torch-gather", "torch-tree")) if len(m) > 1 else ""
        mem_lib = f"{m['toyfdiv']:.0f} MiB" if "toyfdiv" in m else "—"
        lines.append(f"| {label(c)} | {c['N']:,} | {fmt_t(t['toyfdiv'])} | {fmt_t(tg) if tg else '—'} | "
                     f"{fmt_t(tt) if tt else '—'} | {ratios[0]} | {ratios[1]} | "
                     f"{mem_lib} | {mt + ' MiB' if mt else '—'} | {_err(r)} |")
    # ---- exponents
    lines += ["", "## Scaling exponent (slope of log time vs log N)", "",
              "Least squares over N = 10³ … 10⁶, and (in brackets) over the top decade alone, where the "
              "fixed per-call cost no longer matters.", "",
              "| family | toyfdiv | torch-gather | torch-tree |", "|---|---|---|---|"]
    fams = {}
    for r in rows:
        c = r["case"]
        if c["kind"] in ("ar", "tiny") and c["scan"]:
            fams.setdefault((c["kind"], c["eos"], c["div"]), []).append(r)
    for (kind, eos, div), rs in fams.items():
        ns = [r["case"]["N"] for r in rs]
        cells = []
        for impl in ("toyfdiv", "torch-gather", "torch-tree"):
            if all(impl in r["times"] for r in rs) and len(rs) > 1:
                ts = [r['times'][impl] for r in rs]
                cells.append(f"{exponent(ns, ts):.2f} ({exponent(ns[-2:], ts[-2:]):.2f})")
            else:
                cells.append("—")
        name = f"{'AR' if kind == 'ar' else 'TinyLM'} {'EOS' if eos else 'fixed'} {div} (N {min(ns):,}…{max(ns):,})"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    # ---- training and sampling
    lines += ["", "## Training and sampling", "",
              "| case | N | toyfdiv | torch | ratio | peak toyfdiv | peak torch | throughput toyfdiv | throughput torch | check |",
              "|" + "---|" * 10]
    for r in rows:
        c, t, m = r["case"], r["times"], r["mem"]
        if c["kind"] not in ("train", "sampled"):
            continue
        tt = t.get("torch")
        if c["kind"] == "sampled":
            thr = f"{c['n'] / t['toyfdiv']:,.0f} seq/s", (f"{c['n'] / tt:,.0f} seq/s" if tt else "—")
        else:
            thr = f"{300 / t['toyfdiv']:,.0f} steps/s", (f"{300 / tt:,.0f} steps/s" if tt else "—")
        ratio = f"{t['toyfdiv'] / tt:.2f}×" if tt else "—"
        mem = [f"{m[k]:.0f} MiB" if k in m else "—" for k in ("toyfdiv", "torch")]
        lines.append(f"| {label(c)} | {c['N']:,} | {fmt_t(t['toyfdiv'])} | {fmt_t(tt) if tt else '—'} | {ratio} | "
                     f"{mem[0]} | {mem[1]} | {thr[0]} | {thr[1]} | {_err(r)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
