#!/usr/bin/env python
"""Leave-types-out one-shot benchmark on the 7 real TCGA types of ``../shared/real/tcga_rnasum``.

Data (see ``../shared/real/PROVENANCE.md``): GDC HTSeq raw counts of ACC 79, CHOL 36, DLBC 48,
KICH 65, UCS 56, UVM 80 and ``TEST`` = 20 PAAD (reported as ``PAAD``), harmonised with
``oncoshot.sources.tcga.harmonise_tcga(unit="counts", on_gene_mismatch="intersect")`` (log2(CPM+1) on the
56,537 shared ids), then the SPEC §1.3 filter ``gene_filter_mask(threshold=0.8)`` on all 384
samples (17,921 genes kept; genes in sorted Ensembl-id order).

Splits: the 35 ways of choosing 3 training types out of 7 are listed in sorted order and
``--splits`` (5) of them are drawn without replacement by ``numpy.random.default_rng(--seed)``;
the other 4 types of each split are its unseen test types. Per split:

* network input genes: the ``--top-genes`` (2,000) filtered genes with the largest variance over the
  split's *training* samples (test types never influence the choice), kept in Ensembl-id order
  (the tower's stride-50 first convolution sees neighbouring genes); ``--top-genes 0`` = all
  filtered genes (≈ 4× slower);
* CNN pretraining (``pretrain_cnn``) on the 3 training types, a stratified 15 % of their samples
  held out (``stratified_holdout``) for early stopping on the validation loss;
* Siamese with transfer (tower initialised from the pretrained CNN) and from scratch
  (``train_siamese``), both on all training-type samples, same iterations / batch / lr / seed.
  Model selection: none — validating needs unseen types, and with 3 training types a left-out
  training type would leave no N-way task for validation; **the last weights are reported**;
* ``--tasks`` (2,000) 4-way one-shot tasks on the 4 test types (``make_tasks``, seeded), scored by
  every method on the same tasks: Siamese (transfer), Siamese (scratch), 1-NN Euclidean and 1-NN
  Pearson on all filtered genes (the paper's benchmark) and on the network's gene subset, and
  cosine 1-NN on the pretrained CNN tower embedding; as a diagnostic also Euclidean 1-NN on each
  trained Siamese's tower embedding (``siamese_*_tower_euclidean``: the tower without the head);
  the whitened cosine (``oncoshot.metric``, fitted and calibrated on the training types) and, unless
  ``--no-transductive``, its **transductive** variant ``whitened_cosine_diffusion`` (``metric.transductive:
  diffusion``; its pool is the split's test samples, expression only). ``--metric-only`` skips the CNN
  and the Siamese nets.

Trajectory (diagnostic only): the test tasks are handed to ``train_siamese`` as its validation set
with ``val_every = --trace-every``, so its history logs the test accuracy of the weights every
``--trace-every`` iterations (validation uses no training randomness, so training is unchanged).
The best-on-test weights that ``train_siamese`` returns are *not* used; the reported model is read
from the final checkpoint (last iteration), and its accuracy is checked against the last logged one.
Trajectory rows (``row_type = trajectory``) show how the Siamese accuracy on unseen types evolves
along training; picking their maximum would be selection on the test set.

Accuracy with a Wilson 95 % interval per split and method; the summary (``split = mean``) gives the
mean of the split accuracies and the Wilson interval of all tasks pooled. Settings are chosen for
≤ 15 minutes on 2 shared CPU cores, not tuned on the test types: top-2,000 genes, 400 Siamese
iterations of 32 pairs with Adam lr 1e-4 (the SPEC's 20,000 × 128 pairs at lr 5e-6 on 4,858 genes
is several hours here), CNN ≤ 15 epochs of batch 32, lr 1e-3, patience 3; 1 torch thread. (A first
run used 150 iterations on 2 threads; the count was raised to 400 only because 1 thread turned out
3–10× faster on the shared machine — the trajectory rows show every 50 iterations anyway.)

Usage::

    python benchmarks/real_tcga_leave_types_out.py --out results/benchmarks/real_tcga_leave_types_out.tsv
        [--real ../shared/real] [--splits 5] [--tasks 2000] [--top-genes 2000]
        [--siamese-iterations 400] [--siamese-batch 32] [--siamese-lr 1e-4] [--trace-every 50]
        [--pretrain-epochs 15] [--pretrain-batch 32] [--pretrain-lr 1e-3] [--patience 3]
        [--seed 0] [--threads 1] [--device cpu] [--no-transductive] [--metric-only]

Writes one tidy TSV — one row per split × method (``row_type = result``) and per split × Siamese ×
logged iteration (``row_type = trajectory``), plus ``split = mean`` rows of both — and prints it.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from oncoshot import bulk  # noqa: E402
from oncoshot.sources import tcga  # noqa: E402
from oncoshot.experiments import stratified_holdout  # noqa: E402
from oncoshot.models import CNNClassifier  # noqa: E402
from oncoshot.oneshot import (  # noqa: E402
    accuracy_with_wilson,
    correct,
    embed_samples,
    make_tasks,
    nn_cosine,
    nn_euclidean,
    nn_pearson,
    score_tasks,
)
from oncoshot.training import load_checkpoint, make_siamese, pick_device, pretrain_cnn, train_siamese  # noqa: E402
from oncoshot.metric import fit_whitened_cosine  # noqa: E402

FILES = {"ACC": "ACC", "CHOL": "CHOL", "DLBC": "DLBC", "KICH": "KICH", "PAAD": "TEST", "UCS": "UCS", "UVM": "UVM"}
N_TRAIN_TYPES = 3
N_WAY = 4
T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f} s] {msg}", flush=True)


def load(real: Path, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    """(X float32 samples × filtered genes, labels, gene ids, number of shared ids)."""
    d = real / "tcga_rnasum"
    matrices = {label: d / f"TCGA_{name}_Counts.exp.gz" for label, name in FILES.items()}
    missing = [str(p) for p in matrices.values() if not p.exists()]
    if missing:
        raise SystemExit(f"missing input files: {missing}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bulk.BulkWarning)  # TEST's 3,896 extra ids are dropped (expected)
        adata = tcga.harmonise_tcga(matrices, None, unit="counts", on_gene_mismatch="intersect")
    X = np.asarray(adata.X, dtype=np.float32)
    keep = bulk.gene_filter_mask(X, threshold=threshold)
    return (np.ascontiguousarray(X[:, keep]), adata.obs["cancer_type"].astype(str).to_numpy(),
            adata.var_names.to_numpy()[keep], adata.n_vars, adata.obs["patient"].astype(str).to_numpy())


def choose_splits(types: list[str], n_splits: int, seed: int) -> list[tuple[list[str], list[str]]]:
    combos = list(itertools.combinations(sorted(types), N_TRAIN_TYPES))
    if n_splits > len(combos):
        raise SystemExit(f"--splits {n_splits} > {len(combos)} possible splits")
    picks = np.random.default_rng(seed).choice(len(combos), size=n_splits, replace=False)
    return [(list(combos[i]), sorted(set(types) - set(combos[i]))) for i in picks]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="TSV to write")
    parser.add_argument("--real", default=str(REPO.parent / "shared" / "real"))
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=2000, help="4-way tasks per split")
    parser.add_argument("--top-genes", type=int, default=2000,
                        help="network input: top-k training-variance filtered genes (0 = all filtered genes)")
    parser.add_argument("--filter-threshold", type=float, default=0.8)
    parser.add_argument("--holdout", type=float, default=0.15, help="stratified CNN early-stopping fraction")
    parser.add_argument("--pretrain-epochs", type=int, default=15)
    parser.add_argument("--pretrain-batch", type=int, default=32)
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--siamese-iterations", type=int, default=400)
    parser.add_argument("--trace-every", type=int, default=50,
                        help="log the test accuracy every this many iterations (diagnostic trajectory)")
    parser.add_argument("--siamese-batch", type=int, default=32, help="pairs per iteration")
    parser.add_argument("--siamese-lr", type=float, default=1e-4)
    parser.add_argument("--metric-components", type=int, default=450)
    parser.add_argument("--metric-shrinkage", type=float, default=0.3)
    parser.add_argument("--no-monotone", dest="monotone", action="store_false",
                        help="skip the Siamese with the monotone head (siamese.head: monotone)")
    parser.add_argument("--no-transductive", dest="transductive", action="store_false",
                        help="skip whitened_cosine_diffusion (transductive: its pool is the split's unlabelled "
                             "test samples)")
    parser.add_argument("--metric-only", action="store_true",
                        help="only the 1-NN baselines and the metrics (no CNN, no Siamese): about a minute")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: on a 2-core machine shared with other jobs, 2 threads were "
                             "3-10x slower at these sizes from oversubscription)")
    parser.add_argument("--device", default="cpu", help="cpu (default) / cuda")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    say(f"loading {args.real}/tcga_rnasum (7 count matrices) …")
    X, y, genes, n_shared, patients = load(Path(args.real), args.filter_threshold)
    types = sorted(set(y))
    counts = pd.Series(y).value_counts().sort_index()
    say(f"{X.shape[0]} samples × {X.shape[1]} filtered genes (of {n_shared} shared ids); "
        + ", ".join(f"{t} {n}" for t, n in counts.items()))
    splits = choose_splits(types, args.splits, args.seed)
    for i, (tr, te) in enumerate(splits):
        say(f"split {i}: train {'+'.join(tr)} | test {'+'.join(te)}")

    k = X.shape[1] if args.top_genes <= 0 or args.top_genes >= X.shape[1] else args.top_genes
    gene_note = (f"all {X.shape[1]} filtered genes" if k == X.shape[1]
                 else f"top-{k} training-variance filtered genes")
    net_note = (f"{gene_note}; {args.siamese_iterations} it x {args.siamese_batch} pairs, Adam lr {args.siamese_lr:g}, "
                "last weights")
    rows = []
    for si, (train_types, test_types) in enumerate(splits):
        seed = args.seed + si
        say(f"=== split {si}/{len(splits) - 1}: train {'+'.join(train_types)} | test {'+'.join(test_types)}")
        tr, te = np.isin(y, train_types), np.isin(y, test_types)
        ytr, yte = y[tr], y[te]
        Xte_all = X[te]
        if k < X.shape[1]:
            var = X[tr].var(axis=0, dtype=np.float64)
            cols = np.sort(np.argsort(-var, kind="stable")[:k])
        else:
            cols = np.arange(X.shape[1])
        Xtr, Xte = np.ascontiguousarray(X[tr][:, cols]), np.ascontiguousarray(Xte_all[:, cols])
        tasks = make_tasks(yte, N_WAY, args.tasks, seed, groups=patients[te])  # no task pairs a patient's samples
        base = {"split": si, "train_types": "+".join(train_types), "test_types": "+".join(test_types),
                "n_train_samples": int(tr.sum()), "n_test_samples": int(te.sum())}

        def record(method: str, scores, inputs: str, seconds: float, note: str = "", iteration=np.nan,
                   train_loss=np.nan) -> None:
            hits = correct(scores, tasks)
            acc, lo, hi = accuracy_with_wilson(hits)
            rows.append({**base, "row_type": "result", "method": method, "inputs": inputs, "iteration": iteration,
                         "train_loss": train_loss, "n_tasks": len(tasks), "n_correct": int(hits.sum()),
                         "accuracy": acc, "ci_low": lo, "ci_high": hi, "seconds": round(seconds, 2), "note": note})
            say(f"  {method:<22} {acc:.4f} [{lo:.4f}, {hi:.4f}]  ({seconds:.1f} s)")

        # baselines on the raw genes
        for name, fn in (("1nn_euclidean", nn_euclidean), ("1nn_pearson", nn_pearson)):
            t = time.perf_counter()
            s = fn(Xte_all, tasks)
            record(name, s, f"all {X.shape[1]} filtered genes", time.perf_counter() - t)
            if k < X.shape[1]:
                t = time.perf_counter()
                s = fn(Xte, tasks)
                record(f"{name}_top{k}", s, gene_note, time.perf_counter() - t)

        # whitened cosine (oncoshot.metric) on all filtered genes, fitted on the training types only
        # and calibrated on their own samples (no unseen-type sample is used)
        t = time.perf_counter()
        metric, msum = fit_whitened_cosine(X[tr], ytr, n_components=args.metric_components,
                                           shrinkage=args.metric_shrinkage)
        record("whitened_cosine", score_tasks(metric, Xte_all, tasks), f"all {X.shape[1]} filtered genes",
               time.perf_counter() - t, f"{msum['n_components']} components, shrinkage {args.metric_shrinkage}; "
               "fitted on the training types")
        if args.transductive:
            # metric.transductive: diffusion — TRANSDUCTIVE: the pool is the split's test samples, expression
            # only (there is no validation half here); calibrated on the training samples like the plain metric
            t = time.perf_counter()
            dmetric, dsum = fit_whitened_cosine(X[tr], ytr, n_components=args.metric_components,
                                                shrinkage=args.metric_shrinkage, transductive="diffusion",
                                                X_pool=Xte_all)
            record("whitened_cosine_diffusion", score_tasks(dmetric, Xte_all, tasks),
                   f"all {X.shape[1]} filtered genes", time.perf_counter() - t,
                   f"TRANSDUCTIVE: diffusion over the {dsum['n_pool']} unlabelled test samples, "
                   f"{dsum['diffusion_neighbours']} neighbours, beta {dsum['diffusion_beta']}")
        if args.metric_only:
            continue

        # CNN pretraining on the training types, stratified hold-out for early stopping
        itr, ihold = stratified_holdout(ytr, args.holdout, seed)
        t = time.perf_counter()
        pre = pretrain_cnn(Xtr[itr], ytr[itr], X_val=Xtr[ihold], y_val=ytr[ihold], epochs=args.pretrain_epochs,
                           batch_size=args.pretrain_batch, lr=args.pretrain_lr, patience=args.patience, seed=seed,
                           device=device, log=lambda m: None)
        t_pre = time.perf_counter() - t
        h = pre.history
        best = h.loc[h["epoch"] == h.attrs["best_epoch"]].iloc[0]
        pre_note = (f"best epoch {int(best['epoch'])}/{len(h)}: hold-out loss {best['val_loss']:.4f}, "
                    f"accuracy {best['val_accuracy']:.3f} on {len(ihold)} samples")
        say(f"  CNN pretrained in {t_pre:.1f} s ({len(itr)} train / {len(ihold)} hold-out): {pre_note}")
        cnn = CNNClassifier(k, len(pre.classes))
        cnn.load_state_dict(pre.state)
        cnn.eval()
        t = time.perf_counter()
        with torch.no_grad():
            emb = cnn.tower(torch.as_tensor(Xte)).numpy()
        record("cnn_embedding_cosine", nn_cosine(emb, tasks),
               f"pretrained CNN tower embedding ({emb.shape[1]} features) of the {gene_note}",
               time.perf_counter() - t + t_pre, f"seconds include pretraining; {pre_note}")

        # Siamese: transfer and scratch, same settings, last weights. The test tasks are passed as
        # train_siamese's "validation" only to log the accuracy trajectory (it does not change the
        # training: validation consumes no training randomness); the returned best-on-test state is
        # NOT used — the reported model is the last one, read from the final checkpoint.
        variants = [("siamese_transfer", pre.state, "paper"), ("siamese_scratch", None, "paper")]
        if args.monotone:
            variants.append(("siamese_monotone_transfer", pre.state, "monotone"))
        for method, tower_state, head in variants:
            t = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="oncoshot_ltlo_") as tmp:
                ck_path = Path(tmp) / "siamese.pt"
                res = train_siamese(Xtr, ytr, Xte, yte, tower_state=tower_state, iterations=args.siamese_iterations,
                                    batch_size=args.siamese_batch, lr=args.siamese_lr, val_every=args.trace_every,
                                    val_tasks=args.tasks, val_n_way=N_WAY, seed=seed, device=device,
                                    checkpoint_path=ck_path, head=head,
                                    log=lambda m, method=method: say(f"  {method}: {m.split(' best')[0]}"))
                ck = load_checkpoint(ck_path)
            t_train = time.perf_counter() - t
            if int(ck["iteration"]) != args.siamese_iterations:
                raise RuntimeError(f"final checkpoint at iteration {ck['iteration']}")
            model = make_siamese(k, head=head)
            model.load_state_dict(ck["model"])  # the last weights
            model.to(device)
            t = time.perf_counter()
            s = score_tasks(model, Xte, tasks)
            hist = res.history
            last = hist.iloc[-1]
            acc_last = correct(s, tasks).mean()
            if abs(acc_last - float(last["val_accuracy"])) > 1e-12:
                raise RuntimeError(f"{method}: last-weights accuracy {acc_last} != logged {last['val_accuracy']}")
            record(method, s, net_note, t_train + time.perf_counter() - t,
                   f"last weights (iteration {args.siamese_iterations}); seconds include training and the trajectory "
                   f"evaluations; final train loss {float(last['train_loss']):.4f}"
                   + ("; tower from the pretrained CNN" if tower_state is not None else "; tower Glorot init"),
                   iteration=args.siamese_iterations, train_loss=float(last["train_loss"]))
            emb_s = embed_samples(model, Xte).cpu().numpy()
            record(f"{method}_tower_euclidean", nn_euclidean(emb_s, tasks),
                   f"tower embedding ({emb_s.shape[1]} features) of the last {method} weights",
                   time.perf_counter() - t, "diagnostic: Euclidean 1-NN on the Siamese tower features, head unused",
                   iteration=args.siamese_iterations)
            for _, h in hist.iterrows():
                n_ok = int(round(float(h["val_accuracy"]) * len(tasks)))
                rows.append({**base, "row_type": "trajectory", "method": method, "inputs": net_note,
                             "iteration": int(h["iteration"]), "train_loss": float(h["train_loss"]),
                             "n_tasks": len(tasks), "n_correct": n_ok, "accuracy": float(h["val_accuracy"]),
                             "ci_low": float(h["val_low"]), "ci_high": float(h["val_high"]), "seconds": np.nan,
                             "note": "test accuracy of the weights at this iteration: a diagnostic, not model selection"})
            best = hist.loc[hist["val_accuracy"].idxmax()]
            say(f"  {method} trajectory: " + ", ".join(f"{int(i)}: {a:.3f}" for i, a in
                                                        zip(hist["iteration"], hist["val_accuracy"]))
                + f" (best on test {float(best['val_accuracy']):.3f} @ {int(best['iteration'])}: oracle, not reported as a result)")

    table = pd.DataFrame(rows)
    results = table[table["row_type"] == "result"]
    order = list(dict.fromkeys(results["method"]))
    summary = []

    def pooled_row(sub: pd.DataFrame, **extra) -> dict:
        hits = np.concatenate([np.r_[np.ones(c), np.zeros(n - c)] for c, n in zip(sub["n_correct"], sub["n_tasks"])])
        acc, lo, hi = accuracy_with_wilson(hits)
        return {"split": "mean", "train_types": "", "test_types": "", "n_train_samples": np.nan,
                "n_test_samples": np.nan, "inputs": sub["inputs"].iloc[0],
                "train_loss": float(sub["train_loss"].mean()), "n_tasks": int(sub["n_tasks"].sum()),
                "n_correct": int(sub["n_correct"].sum()), "accuracy": float(sub["accuracy"].mean()),
                "ci_low": lo, "ci_high": hi, "seconds": round(float(sub["seconds"].sum()), 2),
                "note": f"mean of {len(sub)} split accuracies (pooled accuracy {acc:.4f}); "
                        "CI: Wilson 95 % of all tasks pooled; seconds: total", **extra}

    for method in order:
        sub = results[results["method"] == method]
        summary.append(pooled_row(sub, row_type="result", method=method, iteration=sub["iteration"].iloc[0]))
    traj = table[table["row_type"] == "trajectory"]
    for (method, it), sub in traj.groupby(["method", "iteration"], sort=False):
        summary.append(pooled_row(sub, row_type="trajectory", method=method, iteration=it))
    table = pd.concat([table, pd.DataFrame(summary)], ignore_index=True)
    cols = ["split", "train_types", "test_types", "n_train_samples", "n_test_samples", "row_type", "method",
            "inputs", "iteration", "train_loss", "n_tasks", "n_correct", "accuracy", "ci_low", "ci_high",
            "seconds", "note"]
    table = table[cols]
    for c in ("accuracy", "ci_low", "ci_high", "train_loss"):
        table[c] = table[c].astype(float).round(4)
    for c in ("n_train_samples", "n_test_samples", "iteration"):
        table[c] = table[c].astype("Int64")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, sep="\t", index=False)

    say("done")
    res_t = table[table["row_type"] == "result"]
    wide = res_t.pivot_table(index="split", columns="method", values="accuracy", sort=False)[order]
    tr_t = table[table["row_type"] == "trajectory"]
    traj_wide = tr_t.pivot_table(index=["method", "iteration"], columns="split", values="accuracy", sort=False)
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 60):
        print("\naccuracy per split (4-way, {} tasks each; split 'mean' = mean of the splits):".format(args.tasks))
        print(wide.to_string(float_format=lambda v: f"{v:.4f}"))
        print("\nSiamese test accuracy along training (diagnostic, not model selection; rows: method, iteration):")
        print(traj_wide.to_string(float_format=lambda v: f"{v:.4f}"))
        print("\nsplits:")
        for si, (tr, te) in enumerate(splits):
            print(f"  {si}: train {'+'.join(tr)} | test {'+'.join(te)}")
        print("\nsummary (mean of split accuracies; Wilson 95 % CI of all tasks pooled):")
        print(res_t[res_t["split"] == "mean"][["method", "accuracy", "ci_low", "ci_high", "n_tasks", "inputs"]]
              .to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
