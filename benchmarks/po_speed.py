"""Speed of the exact closed forms of preference optimisation beyond DPO and of the diversity module.

``python -m benchmarks.po_speed [--repeats R] [--quick]``: every closed form at N = 10³ and
N = 10⁴ (random base model, rewards and correctness, fixed seed), median of R runs after a
warm-up, against the budget of 50 ms; with a reference where one exists (the same quantity
computed the textbook way: a dense pseudo-inverse, scipy's L-BFGS reward model), the ratio.
Writes ``benchmarks/results_po.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy
from scipy.special import log_softmax

from toyfdiv import diversity as dv
from toyfdiv.feedback import PreferenceDataset, chipo_optimum, dpo_minimiser_set, ipo_optimum, kto_fixed_point
from toyfdiv.feedback.ipo import ipo_dataset_optimum

BUDGET_MS = 50.0
DIVS = ["reverse_kl", "forward_kl", "js", "hellinger", "pearson", "neyman", "alpha(0.5)", "gjsd(0.5)", "tv"]


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def _cases(n: int, rng):
    log_a = log_softmax(rng.normal(0, 2, n))
    r = rng.normal(0, 1, n)
    correct = r > 0.5
    binary = correct.astype(float)
    win = rng.random(n)
    s = 1 / (1 + np.exp(-r))
    seen = rng.random(n) < 0.5
    m = 4 * n  # pairs for the dataset forms
    w, l_ = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = w != l_
    data = PreferenceDataset(w[keep], l_[keep], n)
    mset = dpo_minimiser_set(log_a, r, 0.5, seen)
    cases = [
        ("IPO optimum π_ref·exp(P(y≻μ)/τ)/Z (given win rates)", lambda: ipo_optimum(log_a, win, 0.5)),
        ("χ²PO mixed target (Wright ω + Newton on λ)", lambda: chipo_optimum(log_a, r, 0.5)),
        ("DPO minimiser set: a member π = s·p_S ⊕ (1 − s)·ν", lambda: mset.member(0.7)),
        ("pass@k per prompt, k = 8", lambda: dv.pass_at_k_policy(log_a, correct, 8)),
        ("E[#distinct correct], k = 8", lambda: dv.expected_distinct_correct(log_a, correct, 8)),
        ("MARA target (reverse KL)", lambda: dv.mara_target(log_a, binary, 0.5, 0.5)),
    ]
    cases += [(f"f-regularised target argmax E[r] − β D_f, {d}", (lambda d=d: dv.regularised_target(log_a, r, 0.5, d)))
              for d in DIVS]
    iterative = [
        ("KTO fixed point (nested root finds; not a closed form)", lambda: kto_fixed_point(log_a, s, 0.5, sampling_log_probs=log_a)),
        ("KTO fixed point at β = 1 (closed form per output, root finds for κ and z₀)",
         lambda: kto_fixed_point(log_a, s, 1.0, sampling_log_probs=log_a)),
        ("IPO gradient-flow limit on 4N pairs (sparse LSQR)", lambda: ipo_dataset_optimum(log_a, data, 0.5)),
    ]
    return cases, iterative, (log_a, data)


def _pinv_reference(log_a, data):
    """The same IPO limit by a dense pseudo-inverse of the pair incidence matrix (the textbook way)."""
    B = np.zeros((len(data), log_a.size))
    B[np.arange(len(data)), data.winners] += 1
    B[np.arange(len(data)), data.losers] -= 1
    return np.linalg.pinv(B) @ np.full(len(data), 1.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="N = 10³ only, 3 repeats")
    args = ap.parse_args(argv)
    sizes = [1000] if args.quick else [1000, 10000]
    repeats = 3 if args.quick else args.repeats
    start = time.time()
    lines = ["# Beyond DPO and diversity: speed of the exact closed forms", "",
             f"Command: `python -m benchmarks.po_speed{' --quick' if args.quick else ''}` — "
             f"{time.strftime('%Y-%m-%d')}.  Python {platform.python_version()}, numpy {np.__version__}, "
             f"scipy {scipy.__version__}; {platform.machine()}, {os.cpu_count()} CPUs, load average "
             f"{os.getloadavg()[0]:.1f} at the start (a shared machine: times scale with the load).", "",
             f"Median of {repeats} runs after one warm-up; budget {BUDGET_MS:g} ms at every N ≤ 10⁴ for the closed "
             "forms.  Random base model (logits ∼ N(0, 4)), rewards ∼ N(0, 1), seed 0.", "",
             "| quantity | " + " | ".join(f"N = {n:,}" for n in sizes) + " | within budget |",
             "|---|" + "---|" * len(sizes) + "---|"]
    results: dict[str, list[float]] = {}
    extra: dict[str, list[float]] = {}
    ref_rows = []
    for n in sizes:
        cases, iterative, (log_a, data) = _cases(n, np.random.default_rng(0))
        for name, fn in cases:
            results.setdefault(name, []).append(_time(fn, repeats))
        for name, fn in iterative:
            extra.setdefault(name, []).append(_time(fn, max(1, repeats // 3)))
    _, iterative, (log_a, data) = _cases(300, np.random.default_rng(0))
    ours = _time(iterative[1][1], 3)
    ref = _time(lambda: _pinv_reference(log_a, data), 1)
    ref_rows.append((300, ours, ref))
    ok_all = True
    for name, ts in results.items():
        ok = all(t < BUDGET_MS for t in ts)
        ok_all &= ok
        lines.append(f"| {name} | " + " | ".join(f"{t:.2f} ms" for t in ts) + f" | {'yes' if ok else 'NO'} |")
    lines += ["", "Iterative solvers (no closed form; reported, not budgeted):", "",
              "| solver | " + " | ".join(f"N = {n:,}" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for name, ts in extra.items():
        lines.append(f"| {name} | " + " | ".join(f"{t:.1f} ms" for t in ts) + " |")
    for n, ours, ref in ref_rows:
        lines += ["", f"Side by side at N = {n:,} (4N pairs): the IPO limit by sparse LSQR {ours:.1f} ms against a dense "
                      f"pseudo-inverse {ref:.1f} ms, ratio {ours / ref:.2f}×."]
    lines += ["", f"All closed forms within {BUDGET_MS:g} ms: {'yes' if ok_all else 'NO'}.  Run time {time.time() - start:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        Path(__file__).with_name("results_po.md").write_text(text)
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
