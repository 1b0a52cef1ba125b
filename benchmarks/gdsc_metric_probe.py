#!/usr/bin/env python
"""Probe for issue 12: does a metric learned on the training types beat correlation 1-NN on
unseen GDSC cancer types? (A measurement script, not yet a workflow method.)

Data: ``../shared/real/gdsc_celllines`` — the 385 unmeasured genes (``constant_fill_not_measured``)
dropped, lines without a TCGA-style label or labelled ``UNABLE TO CLASSIFY`` dropped, types with
≥ 8 lines kept (26 types, 767 lines, 5,778 genes). Splits: the paper's (16 types with most lines
train, the 10 with fewest unseen) and ``--random-splits`` seeded random choices of 10 unseen
types; unseen lines split 50/50 per type into validation / test (seed 0); ``--tasks`` 6/8/10-way
one-shot tasks on the test half (``oncoshot.oneshot.make_tasks``, seed 1), the same tasks for
every method.

Methods, all cosine / correlation nearest support:
  * ``pearson``: rows centred (= Pearson 1-NN; rows are z-scored upstream, so = Euclidean);
  * ``whitened``: rows centred, projected on the top ``--pcs`` principal axes of the training
    lines, then whitened by the pooled within-type covariance of the training types (shrunk
    towards its mean eigenvalue by ``--shrink``): a Mahalanobis metric learned on the training
    types only (no unseen-type line is used to fit it).

Usage: ``python benchmarks/gdsc_metric_probe.py [--real ../shared/real] [--random-splits 5]``
Prints one row per split and method and the mean over the random splits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from oncoshot.oneshot import make_tasks  # noqa: E402

N_WAYS = (6, 8, 10)


def load(real: Path) -> tuple[np.ndarray, np.ndarray]:
    d = real / "gdsc_celllines"
    X = pd.read_csv(d / "GDSC_EXP.genes_x_samples.tsv.gz", sep="\t", index_col=0)
    ann = pd.read_csv(d / "GDSC_EXP.gene_annotation.tsv", sep="\t")
    unmeasured = set(ann.loc[ann["constant_fill_not_measured"].astype(str).str.upper() == "TRUE", "gene_symbol"])
    X = X.loc[[g not in unmeasured for g in X.index]]
    st = pd.read_csv(d / "GDSC_EXP.sample_types.tsv", sep="\t").set_index("sample_id")
    st = st[st["tcga_label"].notna() & (st["tcga_label"] != "UNABLE TO CLASSIFY")]
    counts = st["tcga_label"].value_counts()
    st = st[st["tcga_label"].isin(counts[counts >= 8].index)]
    return X[st.index].T.to_numpy(np.float64), st["tcga_label"].to_numpy()


def split(y: np.ndarray, seed: int | None, n_unseen: int = 10) -> tuple[np.ndarray, np.ndarray]:
    counts = pd.Series(y).value_counts()
    if seed is None:
        order = sorted(counts.index, key=lambda t: (-counts[t], t))
        unseen = order[len(order) - n_unseen:]
    else:
        unseen = list(np.random.default_rng(seed).choice(sorted(counts.index), n_unseen, replace=False))
    rng = np.random.default_rng(0)
    val = np.zeros(len(y), bool)
    for t in sorted(unseen):
        idx = rng.permutation(np.flatnonzero(y == t))
        val[idx[: len(idx) // 2]] = True
    train = ~np.isin(y, unseen)
    test = np.isin(y, unseen) & ~val
    return train, test


def whitener(X: np.ndarray, y: np.ndarray, pcs: int, shrink: float):
    mu = X.mean(0)
    _, _, vt = np.linalg.svd(X - mu, full_matrices=False)
    P = vt[:pcs].T
    Z = (X - mu) @ P
    types = np.unique(y)
    means = np.stack([Z[y == t].mean(0) for t in types])
    R = Z - means[np.searchsorted(types, y)]
    Sw = R.T @ R / len(R)
    Sw = (1 - shrink) * Sw + shrink * np.trace(Sw) / len(Sw) * np.eye(len(Sw))
    ev, E = np.linalg.eigh(Sw)
    W = E @ np.diag(ev ** -0.5) @ E.T
    return lambda A: ((A - mu) @ P) @ W


def accuracy(Z: np.ndarray, y: np.ndarray, n_way: int, n_tasks: int) -> float:
    tasks = make_tasks(y, n_way, n_tasks, 1)
    S = Z[tasks.support]
    Q = Z[tasks.query][:, None, :]
    S = S / np.linalg.norm(S, axis=2, keepdims=True)
    Q = Q / np.linalg.norm(Q, axis=2, keepdims=True)
    return float(((S * Q).sum(2).argmax(1) == tasks.true_pos).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", default=str(REPO.parent / "shared" / "real"))
    ap.add_argument("--random-splits", type=int, default=5)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--pcs", type=int, default=450)
    ap.add_argument("--shrink", type=float, default=0.3)
    args = ap.parse_args()
    X, y = load(Path(args.real))
    Xc = X - X.mean(1, keepdims=True)
    print(f"{X.shape[0]} lines, {X.shape[1]} genes, {len(np.unique(y))} types")
    rows = []
    for seed in [None, *range(args.random_splits)]:
        train, test = split(y, seed)
        methods = {"pearson": Xc, "whitened": whitener(Xc[train], y[train], args.pcs, args.shrink)(Xc)}
        for name, Z in methods.items():
            acc = [100 * accuracy(Z[test], y[test], n, args.tasks) for n in N_WAYS]
            rows.append({"split": "paper" if seed is None else f"random{seed}", "method": name,
                         **{f"{n}-way": a for n, a in zip(N_WAYS, acc)}})
            print(f"{rows[-1]['split']:8s} {name:9s} " + " ".join(f"{a:5.1f}" for a in acc), flush=True)
    df = pd.DataFrame(rows)
    mean = df[df["split"] != "paper"].groupby("method")[[f"{n}-way" for n in N_WAYS]].mean()
    print("mean over the random splits:")
    print(mean.round(1).to_string())


if __name__ == "__main__":
    main()
