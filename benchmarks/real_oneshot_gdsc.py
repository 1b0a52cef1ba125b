#!/usr/bin/env python
"""One-shot typing of unseen cancer types on real data: GDSC cancer cell lines (issue 12).

Data: ``../shared/real/gdsc_celllines`` (PROVENANCE.md) — the 385 unmeasured genes
(``constant_fill_not_measured``) dropped; lines without a TCGA-style label, or labelled ``NA`` /
``UNABLE TO CLASSIFY``, dropped; types with ≥ 8 lines kept: 26 types, 767 lines, 5,778 genes, each
line z-scored across its genes upstream (so Euclidean and Pearson 1-NN nearly agree). A cell line
is its own patient.

Splits (``--splits``): ``paper`` — the 16 types with most lines train, the 10 with fewest are
unseen (ties by name), as in the paper's design — and ``random<seed>`` — 10 unseen types drawn by
``numpy.random.default_rng(seed)`` for each ``--random-seeds`` seed. The unseen lines of each type
are split 50/50 by a seeded permutation into *validation* (model selection and calibration: the
Siamese best-validation weights, the metric's probability calibration) and *test*. Every method
is scored on the same ``--tasks`` N-way one-shot tasks of the test half (``make_tasks``, seed
``--task-seed``), N = 6, 8, 10; accuracy with a Wilson 95 % interval.

Methods:
  * ``nn_pearson``, ``nn_euclidean``: correlation / Euclidean 1-NN on the genes (the paper's baselines);
  * ``whitened_cosine``: :mod:`oncoshot.metric` fitted on the training types (``--metric-components``,
    ``--metric-shrinkage``; the workflow's defaults);
  * ``whitened_cosine_diffusion`` (**transductive**, unless ``--no-transductive``): the same metric with
    ``transductive="diffusion"`` (config ``metric.transductive: diffusion``), its diffusion pool the split's
    unseen-type lines of both halves, *expression only, no labels* (``--diffusion-neighbours``,
    ``--diffusion-beta``); the labels of the validation half calibrate it as above, test labels are used
    only for scoring; with ``--oracle`` also ``oracle_whitened_cosine``,
    fitted on every line *with the unseen types' labels* — a diagnostic upper bound, not a method;
  * with ``--siamese-splits`` (default ``paper``; ``all`` or ``none``): the CNN pretrained on the training
    types (``pretrain_cnn``, 15 % stratified hold-out for early stopping) and its tower's cosine 1-NN
    (``cnn_cosine``); the Siamese net with the pretrained tower (``train_siamese``) with the paper's head
    (``siamese``, SPEC §2.2 — the paper-faithful mode, with the iterations given here) and, unless
    ``--no-monotone``, with the monotone head (``siamese_monotone``); validation every
    ``--val-every`` iterations on ``--val-tasks`` 10-way tasks of the validation half, best weights kept.
    Their training curves (validation accuracy per iteration) are written beside the table.

Usage::

    python benchmarks/real_oneshot_gdsc.py --out results/benchmarks/real_oneshot_gdsc.tsv
        [--real ../shared/real] [--random-seeds 0 1 2 3 4] [--tasks 2000] [--siamese-splits paper]
        [--no-transductive] [--diffusion-neighbours 10] [--diffusion-beta 0.9]
        [--pretrain-epochs 30] [--siamese-iterations 600] [--siamese-batch 64] [--siamese-lr 1e-4]
        [--val-every 50] [--val-tasks 1000] [--threads 1] [--device cpu]

Writes the table (one row per split × method × N; ``split = mean_random`` rows average the random
splits, with the Wilson interval of their tasks pooled), ``<out stem>_curves.tsv`` and, when a Siamese
was trained, ``<out stem>_curves.png``; prints the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from oncoshot.experiments import stratified_holdout  # noqa: E402
from oncoshot.metric import fit_whitened_cosine  # noqa: E402
from oncoshot.models import CNNClassifier  # noqa: E402
from oncoshot.oneshot import (accuracy_with_wilson, correct, make_tasks, nn_cosine, nn_euclidean,  # noqa: E402
                              nn_pearson, score_tasks)
from oncoshot.sources.gdsc import read_gdsc  # noqa: E402
from oncoshot.training import make_siamese, pick_device, pretrain_cnn, train_siamese  # noqa: E402

N_WAYS = (6, 8, 10)
N_UNSEEN = 10
T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f} s] {msg}", flush=True)


def make_split(y: np.ndarray, name: str, seed: int | None, halves_seed: int) -> dict:
    counts = pd.Series(y).value_counts()
    if seed is None:
        order = sorted(counts.index, key=lambda t: (-counts[t], t))
        unseen = sorted(order[len(order) - N_UNSEEN:])
    else:
        unseen = sorted(np.random.default_rng(seed).choice(sorted(counts.index), N_UNSEEN, replace=False))
    rng = np.random.default_rng(halves_seed)
    val = np.zeros(len(y), bool)
    for t in unseen:
        idx = rng.permutation(np.flatnonzero(y == t))
        val[idx[: len(idx) // 2]] = True
    train = ~np.isin(y, unseen)
    return dict(name=name, unseen=unseen, train=train, val=val, test=np.isin(y, unseen) & ~val)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--real", default=str(REPO.parent / "shared" / "real"))
    ap.add_argument("--random-seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    ap.add_argument("--halves-seed", type=int, default=0, help="seed of the validation/test halves")
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--task-seed", type=int, default=1)
    ap.add_argument("--metric-components", type=int, default=450)
    ap.add_argument("--metric-shrinkage", type=float, default=0.3)
    ap.add_argument("--no-transductive", dest="transductive", action="store_false",
                    help="skip whitened_cosine_diffusion (transductive: uses the unlabelled unseen-type lines)")
    ap.add_argument("--diffusion-neighbours", type=int, default=10)
    ap.add_argument("--diffusion-beta", type=float, default=0.9)
    ap.add_argument("--siamese-splits", choices=["paper", "all", "none"], default="paper")
    ap.add_argument("--no-monotone", dest="monotone", action="store_false")
    ap.add_argument("--oracle", action="store_true",
                    help="diagnostic: also the whitened cosine fitted on ALL lines with their labels, the "
                         "unseen types' included (an upper bound, not a method)")
    ap.add_argument("--pretrain-epochs", type=int, default=30)
    ap.add_argument("--pretrain-batch", type=int, default=32)
    ap.add_argument("--pretrain-lr", type=float, default=5e-4)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--siamese-iterations", type=int, default=600)
    ap.add_argument("--siamese-batch", type=int, default=64)
    ap.add_argument("--siamese-lr", type=float, default=1e-4)
    ap.add_argument("--val-every", type=int, default=50)
    ap.add_argument("--val-tasks", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)

    X, y, genes = read_gdsc(Path(args.real) / "gdsc_celllines")
    say(f"GDSC: {X.shape[0]} lines × {X.shape[1]} genes, {len(set(y))} types; device {device}, "
        f"{args.threads} torch thread(s)")
    splits = [make_split(y, "paper", None, args.halves_seed)]
    splits += [make_split(y, f"random{s}", s, args.halves_seed) for s in args.random_seeds]
    rows, curves = [], []
    for sp in splits:
        tr, va, te = sp["train"], sp["val"], sp["test"]
        say(f"=== {sp['name']}: unseen {'+'.join(sp['unseen'])}; {tr.sum()} training / {va.sum()} validation / "
            f"{te.sum()} test lines")
        Xtr, ytr, Xva, yva, Xte, yte = X[tr], y[tr], X[va], y[va], X[te], y[te]
        scorers: dict[str, tuple] = {}
        t = time.perf_counter()
        metric, msum = fit_whitened_cosine(Xtr, ytr, n_components=args.metric_components,
                                           shrinkage=args.metric_shrinkage, X_cal=Xva, labels_cal=yva)
        scorers["whitened_cosine"] = (lambda tasks, m=metric: score_tasks(m, Xte, tasks), time.perf_counter() - t,
                                      f"{msum['n_components']} components, shrinkage {args.metric_shrinkage}", np.nan)
        if args.transductive:
            t = time.perf_counter()
            diff, dsum = fit_whitened_cosine(Xtr, ytr, n_components=args.metric_components,
                                             shrinkage=args.metric_shrinkage, X_cal=Xva, labels_cal=yva,
                                             transductive="diffusion", X_pool=X[va | te],
                                             diffusion_neighbours=args.diffusion_neighbours,
                                             diffusion_beta=args.diffusion_beta)
            scorers["whitened_cosine_diffusion"] = (
                lambda tasks, m=diff: score_tasks(m, Xte, tasks), time.perf_counter() - t,
                f"TRANSDUCTIVE: diffusion over the {dsum['n_pool']} unlabelled unseen-type lines (validation + test "
                f"halves), {args.diffusion_neighbours} neighbours, beta {args.diffusion_beta}", np.nan)
        if args.oracle:
            oracle, _ = fit_whitened_cosine(X, y, n_components=args.metric_components, shrinkage=args.metric_shrinkage)
            scorers["oracle_whitened_cosine"] = (lambda tasks, m=oracle: score_tasks(m, Xte, tasks), 0.0,
                                                 "diagnostic upper bound: fitted with the unseen types' labels", np.nan)
        scorers["nn_pearson"] = (lambda tasks: nn_pearson(Xte, tasks), 0.0, "genes", np.nan)
        scorers["nn_euclidean"] = (lambda tasks: nn_euclidean(Xte, tasks), 0.0, "genes", np.nan)
        if args.siamese_splits == "all" or (args.siamese_splits == "paper" and sp["name"] == "paper"):
            seed = 0
            itr, ihold = stratified_holdout(ytr, 0.15, seed)
            t = time.perf_counter()
            pre = pretrain_cnn(Xtr[itr], ytr[itr], X_val=Xtr[ihold], y_val=ytr[ihold], epochs=args.pretrain_epochs,
                               batch_size=args.pretrain_batch, lr=args.pretrain_lr, patience=args.patience,
                               seed=seed, device=device, log=lambda m: None)
            t_pre = time.perf_counter() - t
            say(f"  CNN pretrained in {t_pre:.0f} s (best epoch {pre.history.attrs.get('best_epoch')})")
            cnn = CNNClassifier(X.shape[1], len(pre.classes))
            cnn.load_state_dict(pre.state)
            cnn.to(device).eval()
            with torch.no_grad():
                emb = cnn.tower(torch.as_tensor(Xte, device=device)).cpu().numpy()
            scorers["cnn_cosine"] = (lambda tasks, e=emb: nn_cosine(e, tasks), t_pre,
                                     f"pretrained CNN tower, {args.pretrain_epochs} epochs max", np.nan)
            heads = [("siamese", "paper")] + ([("siamese_monotone", "monotone")] if args.monotone else [])
            for method, head in heads:
                t = time.perf_counter()
                res = train_siamese(Xtr, ytr, Xva, yva, tower_state=pre.state, iterations=args.siamese_iterations,
                                    batch_size=args.siamese_batch, lr=args.siamese_lr, val_every=args.val_every,
                                    val_tasks=args.val_tasks, val_n_way=10, seed=seed, device=device, head=head,
                                    log=lambda m, method=method: say(f"  {method}: {m}"))
                t_train = time.perf_counter() - t
                model = make_siamese(X.shape[1], head=head)
                model.load_state_dict(res.state)
                model.to(device).eval()
                h = res.history
                best_it = int(h.attrs.get("best_iteration", -1))
                scorers[method] = (lambda tasks, m=model: score_tasks(m, Xte, tasks), t_train,
                                   f"{head} head, {args.siamese_iterations} it × {args.siamese_batch} pairs, lr "
                                   f"{args.siamese_lr:g}, best validation weights (iteration {best_it})", best_it)
                for r in h.itertuples(index=False):
                    curves.append(dict(split=sp["name"], method=method, iteration=int(r.iteration),
                                       train_loss=float(r.train_loss), val_accuracy=float(r.val_accuracy),
                                       val_low=float(r.val_low), val_high=float(r.val_high)))
        for n in N_WAYS:
            tasks = make_tasks(yte, n, args.tasks, args.task_seed)
            for method, (score, seconds, note, it) in scorers.items():
                hits = correct(score(tasks), tasks)
                acc, lo, hi = accuracy_with_wilson(hits)
                rows.append(dict(split=sp["name"], unseen_types="+".join(sp["unseen"]), method=method, n_way=n,
                                 accuracy=acc, ci_low=lo, ci_high=hi, n_tasks=len(tasks), n_correct=int(hits.sum()),
                                 iteration=it, fit_seconds=round(seconds, 1), note=note))
            say(f"  {n}-way: " + ", ".join(f"{r['method']} {100 * r['accuracy']:.1f}" for r in rows
                                           if r["split"] == sp["name"] and r["n_way"] == n))
    table = pd.DataFrame(rows)
    rnd = table[table["split"].str.startswith("random")]
    mean_rows = []
    for (method, n), sub in rnd.groupby(["method", "n_way"], sort=False):
        hits = np.concatenate([np.r_[np.ones(c), np.zeros(k - c)] for c, k in zip(sub["n_correct"], sub["n_tasks"])])
        _, lo, hi = accuracy_with_wilson(hits)
        mean_rows.append(dict(split="mean_random", unseen_types=f"{len(sub)} splits", method=method, n_way=n,
                              accuracy=float(sub["accuracy"].mean()), ci_low=lo, ci_high=hi,
                              n_tasks=int(sub["n_tasks"].sum()), n_correct=int(sub["n_correct"].sum()),
                              iteration=np.nan, fit_seconds=float(sub["fit_seconds"].sum()),
                              note="mean of the split accuracies; CI: Wilson of the pooled tasks"))
    table = pd.concat([table, pd.DataFrame(mean_rows)], ignore_index=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, sep="\t", index=False)
    pd.DataFrame(curves).to_csv(out.with_name(out.stem + "_curves.tsv"), sep="\t", index=False)
    if curves:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        c = pd.DataFrame(curves)
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for (split, method), sub in c.groupby(["split", "method"]):
            ax.plot(sub["iteration"], 100 * sub["val_accuracy"], marker="o", ms=3, label=f"{split}: {method}")
        base = table[(table["split"] == "paper") & (table["method"] == "nn_pearson") & (table["n_way"] == 10)]
        if len(base):
            ax.axhline(100 * base["accuracy"].iloc[0], color="grey", ls="--", label="Pearson 1-NN, 10-way (test)")
        ax.set_xlabel("iteration")
        ax.set_ylabel("validation 10-way accuracy (%)")
        ax.legend(fontsize=7)
        fig.savefig(out.with_name(out.stem + "_curves.png"), dpi=120, bbox_inches="tight")
    wide = table.pivot_table(index=["split", "method"], columns="n_way", values="accuracy", sort=False) * 100
    print(wide.round(1).to_string())
    say(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
