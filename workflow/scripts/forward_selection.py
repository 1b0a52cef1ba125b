"""Rule forward_selection: 1-NN 6-way one-shot accuracy on the test types with the top-k ranked
genes, k = 10, 20, ...; the marker set is the best k (SPEC §2.4)."""

from oncoshot.experiments import load_experiment_inputs, matrix_genes, select_samples
from oncoshot.io import read_tsv, write_tsv
from oncoshot.marker_plots import forward_selection_plot
from oncoshot.markers import best_k, forward_selection
from oncoshot.plots import save_figure
from oncoshot.policy import fit_request
from oncoshot.runtime import run


def main(sm, log):
    p = sm.params
    cohorts, samples = load_experiment_inputs(sm.input)
    X, y, _, patients = select_samples(cohorts, samples, sm.wildcards.experiment, "test", sm.input.samples,
                                       with_patients=True)
    scores = read_tsv(sm.input.scores, required=("gene_id", "symbol", "rank"))
    genes = matrix_genes(cohorts)
    n_way = fit_request(p.n_way, len(set(y)), key="markers.selection.n_way", policy=p.impossible,
                        what=f"experiment '{sm.wildcards.experiment}' has only {len(set(y))} test types",
                        source=sm.input.samples, log=log)
    table = forward_selection(X, y, list(scores["gene_id"]), step=p.step, max_k=p.max_k, n_way=n_way,
                              n_tasks=p.n_tasks, seed=p.seed, genes=genes, groups=patients)
    table["n_way"] = n_way
    table["n_way_requested"] = int(p.n_way)
    k = best_k(table)
    best = table.loc[table["k"] == k].iloc[0]
    log.info("%s: best k = %d, %d-way accuracy %.4f; all %d genes %.4f", sm.wildcards.experiment, k, n_way,
             best["accuracy"], len(genes), table["all_genes_accuracy"].iloc[0])
    write_tsv(table, sm.output.table)
    write_tsv(scores.head(k), sm.output.markers)
    fig = forward_selection_plot(table, f"{sm.wildcards.experiment}: forward selection on the test types",
                                 best=k, n_way=n_way)
    save_figure(fig, sm.output.png, sm.output.svg)


run(main, snakemake)  # noqa: F821
