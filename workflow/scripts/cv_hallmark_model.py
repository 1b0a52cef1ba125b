"""Rule cv_hallmark_model: repeated stratified k-fold CV of the N-MTL model and, on the same folds,
logistic regression and a single-task MLP per hallmark (preprocessing fitted inside each fold)."""

import torch

from oncoshot.hallmark_model import cross_validate
from oncoshot.hallmark_plots import cv_metric_bars
from oncoshot.io import read_h5ad, write_tsv
from oncoshot.plots import save_figure
from oncoshot.runtime import run
from oncoshot.training import pick_device


def main(sm, log):
    torch.set_num_threads(sm.threads)
    p = sm.params
    adata = read_h5ad(sm.input[0])
    train_kwargs = dict(lr=p.lr, batch_size=p.batch_size, max_epochs=p.max_epochs, plateau_patience=p.plateau_patience,
                        lr_factor=p.lr_factor, min_lr=p.min_lr, stop_patience=p.stop_patience)
    cv = cross_validate(adata.X, adata.obs, list(adata.var_names), n_splits=p.n_splits, n_repeats=p.n_repeats,
                        seed=p.seed, n_top=p.n_top, train_kwargs=train_kwargs, device=pick_device(), log=log.info)
    macro = cv.summary[cv.summary["hallmark"] == "macro"]
    for row in macro.itertuples():
        log.info("%s: AUROC %.3f ± %.3f, F1 %.3f ± %.3f", row.model, row.auroc_mean, row.auroc_sd, row.f1_mean, row.f1_sd)
    write_tsv(cv.folds, sm.output.folds)
    write_tsv(cv.summary, sm.output.summary)
    fig = cv_metric_bars(cv.summary, "auroc", title=f"{p.n_splits}-fold CV × {p.n_repeats}: AUROC per hallmark",
                         chance=0.5)
    save_figure(fig, sm.output.png, sm.output.svg)


run(main, snakemake)  # noqa: F821
