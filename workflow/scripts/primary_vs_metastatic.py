"""Rule primary_vs_metastatic: Gaussian Naive Bayes on the top-k primary markers telling primary
(TCGA) from metastatic (MET500) test samples of the same unseen types, held-out folds only; t-SNE
of both on the top markers."""

import numpy as np

from oncoshot.experiments import load_cohorts, select_samples
from oncoshot.io import read_tsv, write_tsv
from oncoshot.marker_plots import gnb_plot, tsne_plot
from oncoshot.markers import best_k, primary_vs_metastatic
from oncoshot.plots import save_figure
from oncoshot.runtime import run


def main(sm, log):
    p = sm.params
    cohorts, samples = load_cohorts(sm.input.tcga, sm.input.met500, sm.input.samples)
    Xp, yp, _ = select_samples(cohorts, samples, p.primary_experiment, "test", sm.input.samples)
    Xm, ym, _ = select_samples(cohorts, samples, p.metastatic_experiment, "test", sm.input.samples)
    shared = sorted(set(yp) & set(ym))
    keep_p, keep_m = np.isin(yp, shared), np.isin(ym, shared)
    X = np.vstack([Xp[keep_p], Xm[keep_m]])
    types = np.concatenate([yp[keep_p], ym[keep_m]])
    is_met = np.r_[np.zeros(keep_p.sum(), bool), np.ones(keep_m.sum(), bool)]
    scores = read_tsv(sm.input.scores, required=("gene_id", "symbol", "rank"))
    markers = read_tsv(sm.input.markers, required=("gene_id",))
    genes = list(cohorts["TCGA"].var_names)
    ks = [k for k in p.ks if k <= len(scores)]
    table = primary_vs_metastatic(X, is_met, list(scores["gene_id"]), ks=ks, n_folds=p.n_folds, seed=p.seed,
                                  genes=genes)
    k = best_k(table)
    log.info("%d primary + %d metastatic test samples of %d shared types; best k = %d (accuracy %.3f); "
             "%d primary markers from forward selection", (~is_met).sum(), is_met.sum(), len(shared), k,
             table.loc[table["k"] == k, "accuracy"].iloc[0], len(markers))
    table["chosen"] = table["k"] == k
    write_tsv(table, sm.output.table)
    save_figure(gnb_plot(table, "Primary vs metastatic (Gaussian NB, held-out folds) on the top-k primary markers",
                         chosen=k), sm.output.png, sm.output.svg)
    origin = np.where(is_met, "metastatic (MET500)", "primary (TCGA)")
    for top, png, svg in zip(p.tsne_top, sm.output.tsne_png, sm.output.tsne_svg):
        cols = [genes.index(g) for g in scores["gene_id"].head(top)]
        fig, _ = tsne_plot(X[:, cols], types, f"Test samples on the top {top} primary markers", style=origin,
                           style_title="origin", seed=p.seed)
        save_figure(fig, png, svg)


run(main, snakemake)  # noqa: F821
