#!/usr/bin/env python
"""How reproducible is the demo's Siamese training? Same seed twice, other thread counts,
deterministic algorithms.

Trains the demo's ``tcga19`` CancerSiamese (tower initialised from the demo's pretrained CNN, the
demo config's ``siamese`` settings and seed) with the workflow's own
``oncoshot.training.train_siamese`` on the demo's training / validation samples, several times in
this process:

* ``A``: ``--threads`` torch threads (default 1);
* ``A again``: the same, a second time (same machine, same settings);
* ``B``: ``--other-threads`` threads (default 2);
* with ``--deterministic``, also ``A`` and ``B`` under ``torch.use_deterministic_algorithms(True)``.

For each pair it reports the max |Δ weight| over every parameter of the best-validation state and
the difference in one-shot accuracy on the demo's ``tcga19`` test half (``--n-way``-way,
``--tasks`` tasks, the same tasks for every model, patients kept apart as in the workflow), and the
training wall time of each run (the cost of a setting).

Needs the demo's bulk branch and the tcga19 CNN (a scratch copy of the workflow is fine)::

    snakemake --cores 2 results/bulk/splits/samples.tsv results/models/tcga19/cnn.pt
    python benchmarks/reproducibility.py --results results --out results/benchmarks/reproducibility.tsv

Writes a TSV ``comparison, max_abs_weight_diff, accuracy_a, accuracy_b, accuracy_diff`` and one
of runs (``run, threads, deterministic, train_s, accuracy``) beside it (``<out>.runs.tsv``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from oncoshot.experiments import load_cohorts, load_model, select_samples  # noqa: E402
from oncoshot.oneshot import (accuracy_with_wilson, correct, embed_samples, make_tasks,  # noqa: E402
                              score_tasks_from_embeddings)
from oncoshot.training import make_siamese, train_siamese  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=Path("results"), help="results/ of a demo run")
    ap.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    ap.add_argument("--experiment", default="tcga19")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--other-threads", type=int, default=2)
    ap.add_argument("--deterministic", action="store_true",
                    help="also train A and B under torch.use_deterministic_algorithms(True)")
    ap.add_argument("--iterations", type=int, default=None, help="default: the config's siamese.iterations")
    ap.add_argument("--n-way", type=int, default=10)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--out", type=Path, required=True)
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = yaml.safe_load(args.config.read_text())
    s, seed = cfg["siamese"], int(cfg["seed"])
    iterations = args.iterations or int(s["iterations"])
    res = args.results
    cohorts, samples = load_cohorts(res / "bulk/labelled/tcga.h5ad", res / "bulk/labelled/met500.h5ad",
                                    res / "bulk/splits/samples.tsv")
    exp = args.experiment
    X, y, _ = select_samples(cohorts, samples, exp, "train")
    Xv, yv, _, pv = select_samples(cohorts, samples, exp, "validation", with_patients=True)
    Xt, yt, _, pt = select_samples(cohorts, samples, exp, "test", with_patients=True)
    tower = load_model(res / f"models/{exp}/cnn.pt", kind="cnn")["state_dict"]
    val_n_way = min(int(s["val_n_way"]), len(set(yv)))
    tasks = make_tasks(yt, args.n_way, args.tasks, seed, groups=pt)
    print(f"{exp}: {len(y)} training samples ({len(set(y))} types), {len(yv)} validation, {len(yt)} test "
          f"({len(set(yt))} types); {iterations} iterations; {X.shape[1]} genes", flush=True)

    def train(threads: int, deterministic: bool):
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        t0 = time.perf_counter()
        out = train_siamese(X, y, Xv, yv, tower_state=tower, distance=s["distance"], iterations=iterations,
                            batch_size=int(s["batch_size"]), lr=float(s["lr"]), val_every=int(s["val_every"]),
                            val_tasks=int(s["val_tasks"]), val_n_way=val_n_way, seed=seed, device="cpu",
                            log=lambda line: None, amp_bf16=False, groups_val=pv)
        train_s = time.perf_counter() - t0
        model = make_siamese(X.shape[1], s["distance"], None)
        model.load_state_dict(out.state)
        model.eval()
        torch.set_num_threads(args.threads)  # the evaluation itself in one fixed setting
        emb = embed_samples(model, Xt)
        acc, _, _ = accuracy_with_wilson(correct(score_tasks_from_embeddings(model, emb, tasks), tasks))
        torch.use_deterministic_algorithms(False)
        return out.state, float(acc), train_s

    plan = [("A", args.threads, False), ("A again", args.threads, False), ("B", args.other_threads, False)]
    if args.deterministic:
        plan += [("A deterministic", args.threads, True), ("B deterministic", args.other_threads, True)]
    states, rows = {}, []
    for name, threads, det in plan:
        state, acc, sec = train(threads, det)
        states[name] = (state, acc)
        rows.append(dict(run=name, threads=threads, deterministic=det, train_s=round(sec, 2), accuracy=acc))
        print(f"{name}: {threads} thread(s), deterministic={det}: trained in {sec:.1f} s, "
              f"{args.n_way}-way accuracy {acc:.4f}", flush=True)

    def max_diff(a, b):
        return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)

    pairs = [("A", "A again"), ("A", "B")]
    if args.deterministic:
        pairs += [("A", "A deterministic"), ("A deterministic", "B deterministic")]
    comp = []
    for a, b in pairs:
        d = max_diff(states[a][0], states[b][0])
        comp.append(dict(comparison=f"{a} vs {b}", max_abs_weight_diff=d, accuracy_a=states[a][1],
                         accuracy_b=states[b][1], accuracy_diff=states[b][1] - states[a][1]))
        print(f"{a} vs {b}: max |Δ weight| {d:.3g}, accuracy {states[a][1]:.4f} vs {states[b][1]:.4f} "
              f"(Δ {100 * (states[b][1] - states[a][1]):+.2f} points)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(comp).to_csv(args.out, sep="\t", index=False)
    pd.DataFrame(rows).to_csv(args.out.with_name(args.out.name + ".runs.tsv"), sep="\t", index=False)
    print(f"torch {torch.__version__}; written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
