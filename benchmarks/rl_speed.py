"""RLHF as practised (issue 16): speed of the expected-update table and of a sampled GRPO step.

1. The expected-update table (``rl.update_table``) for every preset on the default prompted
   task at G = 8, by Monte Carlo with 10 000 sampled batches per preset (mode="mc", so every
   preset pays the sampling) — the target is < 10 s for all presets together.
2. One sampled GRPO step on TinyLM (default task, one prompt: groups × G responses, GRPO
   advantages, per-response token mean, no KL, first epoch): toyfdiv (``rl.sample_batch`` +
   ``rl.sampled_update``) against a torch reference that samples ancestrally, computes
   log πθ of the samples with autograd and back-propagates the same loss.  Both are first
   checked to give the same gradient on the same batch.

Run: ``python -m benchmarks.rl_speed [--repeats 7] [--torch-threads 1]``; writes
benchmarks/results_rl.md.  torch is needed only for part 2 (``pip install torch``).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import scipy

from benchmarks.run import timed
from toyfdiv import rl, rl_tasks, tasks
from toyfdiv.policies import TinyLM

try:
    import torch

    from benchmarks import reference_torch as ref
except ImportError:  # part 2 needs torch
    torch = None

HERE = Path(__file__).resolve().parent
CHECK_RTOL = 1e-9


def table_timing(G: int = 8, trials: int = 10_000) -> tuple[float, list[tuple[str, float]], list[dict]]:
    """Seconds for the whole table, per preset, and the rows (Monte Carlo for every preset)."""
    task = rl_tasks.prompted()
    per, rows = [], []
    start = time.perf_counter()
    for name in rl.names():
        t0 = time.perf_counter()
        rows += rl.update_table(task, G, algorithms=[name], mode="mc", trials=trials)
        per.append((name, time.perf_counter() - t0))
    return time.perf_counter() - start, per, rows


def _one_prompt_task():
    task = tasks.default()
    return task, rl_tasks.PromptedTask("reviews", ("",), np.zeros(1), task.space, task.log_a[None],
                                       task.reward.values[None].astype(float), np.zeros(1, dtype=int),
                                       np.full(1, np.nan))


GRPO = rl.Algorithm("grpo-step", "grpo", "token_mean")


class TorchGRPO(ref.TinySampled if torch is not None else object):
    """The same GRPO step in torch: sample, log πθ with autograd, A = (R − mean)/(std + 1e-4), 1/(G|y|), backward."""

    def __init__(self, model, reward, groups, G, seed=0):
        super().__init__(model, np.zeros(model.space.size), "js", groups * G, seed)
        self.reward, self.groups, self.G = torch.from_numpy(reward), groups, G

    def coefficients(self, tokens, idx):
        R = self.reward[idx].reshape(self.groups, self.G)
        A = (R - R.mean(1, keepdim=True)) / (R.std(1, keepdim=True) + rl.GRPO_EPS)
        L = (tokens >= 0).sum(1).reshape(self.groups, self.G).to(ref.DTYPE)
        return (-(A / (self.G * L))).reshape(-1)

    def __call__(self):
        self._zero()
        tokens = self.sample_tokens(self.n)
        idx = self.index_of(tokens)
        log_pi = self.log_probs_of(tokens)
        (self.coefficients(tokens, idx).detach() * log_pi).sum().backward()
        return idx


def grpo_timing(groups: int, G: int, repeats: int) -> dict:
    task, one = _one_prompt_task()
    model = TinyLM(task.space, seed=3)
    rng = np.random.default_rng(0)

    def toy():
        idx = model.sample(groups * G, rng).reshape(groups, G)
        R = one.reward[0][idx]
        batch = rl.ppo.Batch(idx.reshape(1, -1), R.reshape(1, -1), rl.group_advantages(R, "grpo").reshape(1, -1),
                             rl.scales(task.space.lengths[idx], "token_mean", task.space.length).reshape(1, -1))
        return rl.sampled_update(GRPO, model, one, batch)

    out = {"N": task.space.size, "n": groups * G}
    # the check: the same batch through both
    idx = model.sample(groups * G, np.random.default_rng(5)).reshape(groups, G)
    R = one.reward[0][idx]
    A, s = rl.group_advantages(R, "grpo"), rl.scales(task.space.lengths[idx], "token_mean", task.space.length)
    g = rl.sampled_update(GRPO, model, one, rl.ppo.Batch(idx.reshape(1, -1), R.reshape(1, -1), A.reshape(1, -1),
                                                          s.reshape(1, -1)))
    if torch is not None:
        tref = TorchGRPO(model, one.reward[0], groups, G)
        tokens = ref.tokens_for(task.space, idx.ravel())
        c = tref.coefficients(tokens, torch.from_numpy(idx.ravel()))
        tref.backward_at(tokens, c)
        out["check"] = float(np.max(np.abs(g - tref.grad())) / np.max(np.abs(g)))
        if not out["check"] <= CHECK_RTOL:
            raise AssertionError(f"toyfdiv and torch GRPO gradients differ by {out['check']:.2e}")
        fns = {"toyfdiv": toy, "torch": tref}
    else:
        fns = {"toyfdiv": toy}
    out.update(timed(fns, repeats))  # the harness of benchmarks/run.py: warm-up, interleaved repeats, medians
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args(argv)
    if torch is not None:
        torch.set_num_threads(args.torch_threads)
    total, per, rows = table_timing()
    grpo = [grpo_timing(groups, 8, args.repeats) for groups in (8, 64, 512)]
    lines = ["# RLHF as practised: benchmarks (issue 16)", "",
             f"Command: `python -m benchmarks.rl_speed --torch-threads {args.torch_threads}` — "
             f"{time.strftime('%Y-%m-%d')}.  Python {platform.python_version()}, numpy {np.__version__}, "
             f"scipy {scipy.__version__}" + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
                                             if torch is not None else ", torch not installed") + "; "
             f"{__import__('os').cpu_count()} CPUs, {platform.machine()}.", "",
             "## 1. The expected-update table: every preset, default prompted task, G = 8, 10 000 batches each", "",
             f"Total **{total:.2f} s** for {len(per)} presets (target < 10 s: "
             f"{'met' if total < 10 else 'NOT met'}).", "",
             "| preset | seconds | cos(u, g) | scale | residual/‖g‖ | noise/‖g‖ | follows g |", "|---|---|---|---|---|---|---|"]
    for (name, sec), r in zip(per, rows):
        lines.append(f"| {name} | {sec:.3f} | {r['cosine']:.4f} | {r['scale']:.4f} | {r['residual']:.3g} | "
                     f"{r['noise']:.3g} | {r['follows']} |")
    lines += ["", "## 2. One sampled GRPO step on TinyLM (default task, N = 781, G = 8)", "",
              f"Median of {args.repeats} interleaved repeats after a warm-up; ratio = toyfdiv / torch; check = "
              "max |Δg| / max |g| on the same batch.", "",
              "| responses n (groups × 8) | toyfdiv | torch | ratio | check |", "|---|---|---|---|---|"]
    for r in grpo:
        tt = r.get("torch", float("nan"))
        lines.append(f"| {r['n']} | {1e3 * r['toyfdiv']:.3g} ms | {1e3 * tt:.3g} ms | {r['toyfdiv'] / tt:.2f}× | "
                     f"{r.get('check', float('nan')):.1e} |")
    text = "\n".join(lines) + "\n"
    (HERE / "results_rl.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
