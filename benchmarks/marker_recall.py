#!/usr/bin/env python
"""How well do the marker rankings recover the demo's planted marker genes?

Reads a finished demo run (``results/`` of ``snakemake --cores 2``: the labelled cohorts, the split
table and the trained Siamese models) and the generator's truth
(``resources/demo/truth/bulk_genes.tsv``: the 300 ``marker_pool`` genes carry every type signature).
For each experiment (default ``tcga19`` and ``met500``) it ranks the genes four ways with
:func:`oncoshot.markers.gene_scores` on the same same-type pairs —

* ``guided`` / ``plain``: guided backpropagation (SPEC §2.4) or ordinary gradients;
* ``score`` / ``mean_abs``: ranked by the signed mean of (w0 + w1)/2 (SPEC) or by mean |w|;

— and reports, against the planted pool: recall@K (how many of the top K genes are pool genes;
chance = K × 300 / number of genes), the ROC AUC of the score for pool membership (0.5 = chance),
and the forward selection of SPEC §2.4 on the experiment's test types (best k and its 1-NN 6-way
accuracy, and the all-genes accuracy on the same tasks). An ANOVA F ranking on the training types
(scikit-learn ``f_classif``; it sees the labels directly) is the reference of what a ranking can
reach on these data.

    python benchmarks/marker_recall.py --results results --out results/benchmarks/marker_recall.tsv

Settings (pairs per type, tasks, seed) default to the demo config's. CPU, about 1 minute.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.feature_selection import f_classif
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from oncoshot.experiments import load_cohorts, load_siamese, select_samples  # noqa: E402
from oncoshot.io import write_tsv  # noqa: E402
from oncoshot.markers import best_k, forward_selection, gene_scores  # noqa: E402


def planted_pool(truth: Path) -> set[str]:
    """Unversioned Ensembl ids of the planted marker genes."""
    genes = pd.read_csv(truth, sep="\t")
    return set(genes.loc[genes["role"] == "marker_pool", "gene_id"].str.split(".").str[0])


def recall_table(ranked: list[str], scores: np.ndarray, universe: list[str], pool: set[str],
                 ks=(20, 50, 100)) -> dict:
    """recall@K and ROC AUC of ``scores`` (aligned with ``universe``) for pool membership."""
    base = [g.split(".")[0] for g in universe]
    member = np.array([g in pool for g in base])
    top = [g.split(".")[0] in pool for g in ranked]
    row = {f"recall@{k}": int(np.sum(top[:k])) for k in ks}
    row.update({f"chance@{k}": round(k * member.mean(), 1) for k in ks})
    row["auc"] = float(roc_auc_score(member, scores))
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results", help="a finished demo run's results/ folder")
    ap.add_argument("--truth", default=str(REPO / "resources/demo/truth/bulk_genes.tsv"))
    ap.add_argument("--experiments", nargs="+", default=["tcga19", "met500"])
    ap.add_argument("--init", default="transfer", choices=["transfer", "scratch"])
    ap.add_argument("--pairs-per-type", type=int, default=200)
    ap.add_argument("--n-tasks", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20211)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="results/benchmarks/marker_recall.tsv")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = Path(args.results)
    pool = planted_pool(Path(args.truth))
    cohorts, samples = load_cohorts(res / "bulk/labelled/tcga.h5ad", res / "bulk/labelled/met500.h5ad",
                                    res / "bulk/splits/samples.tsv")
    universe = list(cohorts["TCGA"].var_names)
    rows = []
    for exp in args.experiments:
        t0 = time.perf_counter()
        X, y, _ = select_samples(cohorts, samples, exp, "train", res / "bulk/splits/samples.tsv")
        Xt, yt, _, pt = select_samples(cohorts, samples, exp, "test", res / "bulk/splits/samples.tsv",
                                       with_patients=True)
        model, _, _ = load_siamese(res / f"models/{exp}/siamese_{args.init}.pt", genes=universe)
        n_way = min(6, len(set(yt)))
        variants = []
        for saliency in ("guided", "plain"):
            table = gene_scores(model, X, y, max_pairs_per_type=args.pairs_per_type, seed=args.seed,
                                genes=universe, saliency=saliency)
            for col in ("score", "mean_abs"):
                variants.append((saliency, col, table.sort_values(col, ascending=False, kind="stable")))
        F, _ = f_classif(np.asarray(X, dtype=np.float64), np.asarray(y))
        F = np.nan_to_num(F)
        order = np.argsort(-F, kind="stable")
        variants.append(("anova_f_reference", "F", pd.DataFrame({"gene": np.asarray(universe)[order],
                                                                 "F": F[order]})))
        for saliency, col, ranked in variants:
            by_gene = ranked.set_index("gene")[col].reindex(universe).to_numpy()
            row = {"experiment": exp, "saliency": saliency, "rank_by": col}
            row.update(recall_table(list(ranked["gene"]), by_gene, universe, pool))
            sel = forward_selection(Xt, yt, list(ranked["gene"]), n_way=n_way, n_tasks=args.n_tasks,
                                    seed=args.seed, genes=universe, groups=pt)
            k = best_k(sel)
            row.update({"best_k": k, "best_k_accuracy": float(sel.loc[sel["k"] == k, "accuracy"].iloc[0]),
                        "top100_accuracy": float(sel.loc[sel["k"] == 100, "accuracy"].iloc[0]),
                        "all_genes_accuracy": float(sel["all_genes_accuracy"].iloc[0]), "n_way": n_way})
            rows.append(row)
        print(f"{exp}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    out = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_tsv(out, args.out)
    print(out.to_markdown(index=False, floatfmt=".3f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
