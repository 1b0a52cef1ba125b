"""Rule train_siamese: CancerSiamese on balanced pairs, best validation weights (SPEC §2.2)."""

from pathlib import Path

import torch

from oncoshot.experiments import cohort_model_meta, load_experiment_inputs, matrix_genes, load_model, save_model, select_samples
from oncoshot.io import write_tsv
from oncoshot.policy import fit_request
from oncoshot.runtime import run
from oncoshot.training import pick_device, train_siamese


def main(sm, log):
    torch.set_num_threads(sm.threads)
    exp, init = sm.wildcards.experiment, sm.wildcards.init
    cohorts, samples = load_experiment_inputs(sm.input)
    X, y, _ = select_samples(cohorts, samples, exp, "train", sm.input.samples)
    Xv, yv, _, pv = select_samples(cohorts, samples, exp, "validation", sm.input.samples, with_patients=True)
    tower = None
    if init == "transfer":
        cnn = load_model(sm.input.cnn, kind="cnn")
        if cnn["genes"] != matrix_genes(cohorts):
            raise ValueError(f"{sm.input.cnn}: genes differ from the training matrix")
        tower = cnn["state_dict"]
    p = sm.params
    n_val_types = len(set(yv))
    # impossible_requests: error → one line naming siamese.val_n_way; reduce → recorded in the
    # history (val_n_way, val_n_way_requested) and the model file
    val_n_way = fit_request(p.val_n_way, n_val_types, key="siamese.val_n_way", policy=p.impossible,
                            what=f"experiment '{exp}' has only {n_val_types} validation types",
                            source=sm.input.samples, log=log)
    device = pick_device()
    log.info("%s/%s: %d training samples in %d types, %d validation samples in %d types, %d genes, device %s",
             exp, init, len(y), len(set(y)), len(yv), n_val_types, X.shape[1], device)
    checkpoint = Path(sm.params.checkpoint)
    result = train_siamese(
        X, y, Xv, yv, tower_state=tower, distance=p.distance, iterations=p.iterations,
        batch_size=p.batch_size, lr=p.lr, val_every=p.val_every, val_tasks=p.val_tasks,
        val_n_way=val_n_way, seed=p.seed, device=device, checkpoint_path=checkpoint,
        log=log.info, amp_bf16=p.amp_bf16, groups_val=pv, head=p.head,
        # params changed → Snakemake reruns this rule; a checkpoint of the old settings is set aside
        stale_checkpoint="set_aside",
    )
    save_model(sm.output.model, kind="siamese", state_dict=result.state,
               genes=matrix_genes(cohorts), distance=p.distance, head=p.head, experiment=exp, init=init,
               best_iteration=int(result.history.attrs.get("best_iteration", -1)),
               val_n_way=int(val_n_way), val_n_way_requested=int(p.val_n_way), **cohort_model_meta(cohorts))
    history = result.history.assign(val_n_way=int(val_n_way), val_n_way_requested=int(p.val_n_way))
    write_tsv(history, sm.output.history)
    checkpoint.unlink(missing_ok=True)  # finished: the model file is the output


run(main, snakemake)  # noqa: F821
