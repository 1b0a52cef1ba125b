"""Rule marker_scores: guided-backpropagation saliency of the Siamese network on same-type pairs of
the training types; gene score = mean over pairs of (w0 + w1) / 2 (SPEC §2.4)."""

import torch

from oncoshot.experiments import load_experiment_inputs, load_siamese, select_samples
from oncoshot.io import write_tsv
from oncoshot.markers import gene_scores
from oncoshot.runtime import run
from oncoshot.training import pick_device


def main(sm, log):
    torch.set_num_threads(sm.threads)
    p = sm.params
    cohorts, samples = load_experiment_inputs(sm.input)
    X, y, _ = select_samples(cohorts, samples, sm.wildcards.experiment, "train", sm.input.samples)
    var = next(iter(cohorts.values())).var
    device = pick_device()
    model, _, _ = load_siamese(sm.input.siamese, device, genes=list(var.index))
    table = gene_scores(model, X, y, max_pairs_per_type=p.max_pairs_per_type, seed=p.seed,
                        batch_size=p.batch_size, device=device, genes=list(var.index), rank_by=p.rank_by,
                        saliency=p.saliency)
    log.info("%s: %d same-type pairs over %d training types, %s saliency, ranked by %s",
             sm.wildcards.experiment, table.attrs.get("n_pairs", -1), len(set(y)), p.saliency, p.rank_by)
    table = table.rename(columns={"gene": "gene_id"})
    table.insert(1, "symbol", var["symbol"].reindex(table["gene_id"]).to_numpy())
    write_tsv(table, sm.output[0])


run(main, snakemake)  # noqa: F821
