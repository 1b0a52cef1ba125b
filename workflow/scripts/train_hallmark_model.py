"""Rule train_hallmark_model: the OncoMark N-MTL model on all training synthetic bulk profiles
(preprocessing fitted on them; 85/15 split for the learning-rate schedule and early stopping)."""

import torch

from oncoshot.hallmark_model import fit_hallmark_model, save_hallmark_model
from oncoshot.io import read_h5ad, write_tsv
from oncoshot.runtime import run
from oncoshot.training import pick_device


def main(sm, log):
    torch.set_num_threads(sm.threads)
    p = sm.params
    adata = read_h5ad(sm.input[0])
    model, pre, result, info = fit_hallmark_model(
        adata.X, adata.obs, list(adata.var_names), n_top=p.n_top, seed=p.seed, device=pick_device(),
        log=log.info, lr=p.lr, batch_size=p.batch_size, max_epochs=p.max_epochs,
        plateau_patience=p.plateau_patience, lr_factor=p.lr_factor, min_lr=p.min_lr,
        stop_patience=p.stop_patience,
    )
    log.info("trained on %d profiles, %d model genes; best epoch %d", adata.n_obs, len(pre.genes_), result.best_epoch)
    save_hallmark_model(sm.output.model, model, pre, {"best_epoch": int(result.best_epoch),
                                                      "n_profiles": int(adata.n_obs)})
    write_tsv(result.history, sm.output.history)


run(main, snakemake)  # noqa: F821
