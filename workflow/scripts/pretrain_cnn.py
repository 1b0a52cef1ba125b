"""Rule pretrain_cnn: the 1D-CNN classifier on an experiment's training types (SPEC §2.1)."""

import torch

from oncoshot.experiments import cohort_model_meta, load_experiment_inputs, matrix_genes, save_model, select_samples, stratified_holdout
from oncoshot.io import write_tsv
from oncoshot.runtime import run
from oncoshot.training import pick_device, pretrain_cnn


def main(sm, log):
    torch.set_num_threads(sm.threads)
    cohorts, samples = load_experiment_inputs(sm.input)
    X, y, _ = select_samples(cohorts, samples, sm.wildcards.experiment, "train", sm.input.samples)
    p = sm.params
    tr, va = stratified_holdout(y, p.validation_fraction, p.seed)
    device = pick_device()
    log.info("%s: %d training samples (%d held out for early stopping), %d types, %d genes, device %s",
             sm.wildcards.experiment, len(tr), len(va), len(set(y)), X.shape[1], device)
    result = pretrain_cnn(
        X[tr], y[tr], X_val=X[va] if len(va) else None, y_val=y[va] if len(va) else None,
        epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, patience=p.patience, seed=p.seed,
        device=device, log=log.info, amp_bf16=p.amp_bf16,
    )
    genes = matrix_genes(cohorts)
    save_model(sm.output.model, kind="cnn", state_dict=result.state, genes=genes,
               classes=list(result.classes), experiment=sm.wildcards.experiment,
               best_epoch=int(result.history.attrs.get("best_epoch", -1)), **cohort_model_meta(cohorts))
    write_tsv(result.history, sm.output.history)


run(main, snakemake)  # noqa: F821
