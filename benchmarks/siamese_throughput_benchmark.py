#!/usr/bin/env python
"""Siamese training throughput at the full input size (SPEC §2.2): pairs/s of ``train_siamese``.

The real training code is timed: ``oncoshot.training.train_siamese`` with ``val_every`` larger
than the number of iterations and no validation set, so the loop runs exactly the production inner
step (balanced ``PairSampler`` batch gathered on the device → ``SiameseNet.logits`` → BCE-with-logits
→ Adam) and nothing else. The time is the loop's own clock (``history.elapsed_s``: from the first
iteration to the end of the last, including the copy of the final weights to the CPU, which also
synchronises CUDA); model construction and data transfer are excluded and reported separately.

Runs, all in this process and on the same simulated training set (``--train-samples`` samples ×
``--genes`` genes, ``--types`` types, log-expression-like values; the values do not change the
cost):

1. warm-up: ``train_siamese`` for ``--warmup`` iterations (not reported);
2. ``train_siamese`` float32 for ``--iterations`` iterations;
3. on CUDA, ``train_siamese(amp_bf16=True)`` for ``--iterations`` iterations (after its own warm-up);
4. reference: a bare hand-written loop of the same step (no history, no logging) for
   ``--bare-iterations`` iterations — the ratio ``train_siamese / bare`` shows the overhead of the
   production loop;
5. one validation pass as ``train_siamese`` does it (embed ``--val-samples`` samples once, score
   ``--val-tasks`` ``--val-n-way``-way tasks from the embeddings).

Projection: wall time of ``--project-iterations`` (20,000) iterations × ``--batch`` (128) pairs, the
loop alone and with one validation every ``--val-every`` (200) iterations (SPEC §2.2).

Usage::

    python benchmarks/siamese_throughput_benchmark.py --out results/benchmarks/siamese_throughput.tsv
        [--iterations 50] [--warmup 3] [--bare-iterations 20] [--batch 128] [--genes 4858]
        [--device cpu|cuda] [--threads N] [--seed 0]

Writes a TSV ``section, metric, value, unit, note`` and prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from oncoshot.oneshot import embed_samples, make_tasks, score_tasks_from_embeddings  # noqa: E402
from oncoshot.pairs import PairSampler  # noqa: E402
from oncoshot.training import make_siamese, pick_device, set_seed, train_siamese  # noqa: E402
from oneshot_eval_benchmark import simulate  # noqa: E402  (same simulated cohort)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_train_siamese(X, y, iterations: int, batch: int, seed: int, device, amp_bf16: bool) -> tuple[float, float, float]:
    """(loop seconds from train_siamese's own clock, whole-call wall seconds, process CPU seconds)."""
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    res = train_siamese(X, y, iterations=iterations, batch_size=batch, lr=5e-6, val_every=iterations + 1,
                        seed=seed, device=device, amp_bf16=amp_bf16, log=lambda m: None)
    sync(device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    loop = float(res.history["elapsed_s"].iloc[-1])
    if len(res.history) != 1 or int(res.history["iteration"].iloc[-1]) != iterations:
        raise RuntimeError("train_siamese did not run the expected iterations")
    return loop, wall, cpu


def time_bare_loop(X, y, iterations: int, batch: int, seed: int, device) -> tuple[float, float]:
    """A minimal loop of train_siamese's inner step (same sampler, model, loss, optimiser):
    (wall seconds, process CPU seconds) of ``iterations`` iterations after one warm-up."""
    set_seed(seed)
    model = make_siamese(X.shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-6)
    sampler = PairSampler(torch.as_tensor(X, device=device), y, seed=seed, device=device)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for it in range(iterations + 1):  # iteration 0 is a warm-up
        if it == 1:
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
        xa, xb, target = sampler.sample_tensors(batch)
        loss = loss_fn(model.logits(xa, xb).float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def time_validation(n_genes: int, n_samples: int, n_types: int, n_way: int, n_tasks: int, seed: int, device) -> float:
    Xv, yv = simulate(n_samples, n_genes, n_types, seed + 7)
    tasks = make_tasks(yv, n_way, n_tasks, seed)
    set_seed(seed)
    model = make_siamese(n_genes).to(device)
    Xd = torch.as_tensor(Xv, device=device)
    score_tasks_from_embeddings(model, embed_samples(model, Xd), tasks)  # warm-up
    best = float("inf")
    for _ in range(2):
        sync(device)
        t0 = time.perf_counter()
        score_tasks_from_embeddings(model, embed_samples(model, Xd), tasks)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="TSV to write")
    parser.add_argument("--iterations", type=int, default=50, help="timed iterations per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up iterations before each timed configuration")
    parser.add_argument("--bare-iterations", type=int, default=20, help="iterations of the bare reference loop (0: skip)")
    parser.add_argument("--batch", type=int, default=128, help="pairs per iteration")
    parser.add_argument("--genes", type=int, default=4858)
    parser.add_argument("--train-samples", type=int, default=600)
    parser.add_argument("--types", type=int, default=19, help="training types (SPEC: 19 TCGA training types)")
    parser.add_argument("--val-samples", type=int, default=300)
    parser.add_argument("--val-types", type=int, default=10)
    parser.add_argument("--val-tasks", type=int, default=1000)
    parser.add_argument("--val-n-way", type=int, default=10)
    parser.add_argument("--val-every", type=int, default=200)
    parser.add_argument("--project-iterations", type=int, default=20000)
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast run on CUDA")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    dev_note = (torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"{torch.get_num_threads()} torch threads, {os.cpu_count()} cores (shared machine: indicative)")
    rows: list[tuple[str, str, object, str, str]] = [
        ("setup", "device", str(device), "", dev_note),
        ("setup", "torch", torch.__version__, "", ""),
        ("setup", "genes", args.genes, "genes", "full input size (SPEC: 4,858 filtered genes)"),
        ("setup", "batch", args.batch, "pairs", "half same-type, half different-type"),
        ("setup", "train_samples", args.train_samples, "samples", f"{args.types} simulated types"),
        ("setup", "timed_iterations", args.iterations, "iterations", f"after {args.warmup} warm-up iterations"),
    ]
    X, y = simulate(args.train_samples, args.genes, args.types, args.seed)

    configs = [("fp32", False)]
    if device.type == "cuda" and not args.no_bf16:
        configs.append(("bf16_autocast", True))
    rates: dict[str, float] = {}
    cpu_rates: dict[str, float] = {}
    for name, amp in configs:
        if args.warmup > 0:
            time_train_siamese(X, y, args.warmup, args.batch, args.seed, device, amp)
        print(f"train_siamese {name}: {args.iterations} iterations of {args.batch} pairs …", flush=True)
        loop, wall, cpu = time_train_siamese(X, y, args.iterations, args.batch, args.seed, device, amp)
        rate = args.iterations * args.batch / loop
        rates[name] = rate
        print(f"  {rate:.1f} pairs/s ({loop / args.iterations:.3f} s/iteration)", flush=True)
        rows += [
            ("throughput", f"train_siamese_{name}_pairs_per_s", round(rate, 1), "pairs/s",
             "train_siamese's loop clock (history.elapsed_s)"),
            ("throughput", f"train_siamese_{name}_s_per_iteration", round(loop / args.iterations, 4), "s", ""),
            ("throughput", f"train_siamese_{name}_call_overhead_s", round(wall - loop, 3), "s",
             "whole call minus loop: model init, data to device, fingerprints"),
        ]
        if device.type == "cpu":
            cpu_rates[name] = args.iterations * args.batch / cpu
            rows.append(("throughput", f"train_siamese_{name}_pairs_per_cpu_s", round(cpu_rates[name], 1),
                         "pairs/cpu-s", "process CPU time of the whole call (less sensitive to other load)"))
    if "bf16_autocast" in rates:
        rows.append(("ratio", "bf16_vs_fp32", round(rates["bf16_autocast"] / rates["fp32"], 2), "x", "pairs/s ratio, same run"))

    if args.bare_iterations > 0:
        print(f"bare reference loop: {args.bare_iterations} iterations …", flush=True)
        bare, bare_cpu = time_bare_loop(X, y, args.bare_iterations, args.batch, args.seed, device)
        bare_rate = args.bare_iterations * args.batch / bare
        print(f"  {bare_rate:.1f} pairs/s", flush=True)
        rows += [
            ("reference", "bare_loop_fp32_pairs_per_s", round(bare_rate, 1), "pairs/s",
             f"hand-written inner step, {args.bare_iterations} iterations after 1 warm-up"),
            ("ratio", "train_siamese_vs_bare_loop_fp32", round(rates["fp32"] / bare_rate, 3), "x",
             "wall clock; 1.0 = no loop overhead (other load on a shared machine shows here)"),
        ]
        if device.type == "cpu":
            bare_cpu_rate = args.bare_iterations * args.batch / bare_cpu
            rows += [
                ("reference", "bare_loop_fp32_pairs_per_cpu_s", round(bare_cpu_rate, 1), "pairs/cpu-s", "process CPU time"),
                ("ratio", "train_siamese_vs_bare_loop_fp32_cpu", round(cpu_rates["fp32"] / bare_cpu_rate, 3), "x",
                 "CPU time; 1.0 = no loop overhead"),
            ]

    print(f"validation pass: {args.val_tasks} {args.val_n_way}-way tasks on {args.val_samples} samples …", flush=True)
    t_val = time_validation(args.genes, args.val_samples, args.val_types, args.val_n_way, args.val_tasks, args.seed, device)
    rows.append(("validation", "validation_pass_s", round(t_val, 3), "s",
                 f"embed {args.val_samples} samples + {args.val_tasks * args.val_n_way} pairs from embeddings, best of 2"))

    n_val = args.project_iterations // args.val_every
    for name, rate in rates.items():
        loop_s = args.project_iterations * args.batch / rate
        rows += [
            ("projection", f"{name}_{args.project_iterations}_iterations_loop_h", round(loop_s / 3600, 3), "h",
             f"{args.project_iterations} x {args.batch} pairs at the measured rate ({hms(loop_s)})"),
            ("projection", f"{name}_{args.project_iterations}_iterations_with_validation_h",
             round((loop_s + n_val * t_val) / 3600, 3), "h",
             f"+ {n_val} validations of {args.val_tasks} tasks ({hms(loop_s + n_val * t_val)})"),
        ]

    table = pd.DataFrame(rows, columns=["section", "metric", "value", "unit", "note"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, sep="\t", index=False)
    with pd.option_context("display.width", 220, "display.max_colwidth", 90, "display.max_rows", 200):
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
