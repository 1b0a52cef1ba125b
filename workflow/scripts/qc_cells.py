"""Rule qc_cells: OncoMark cell QC (SPEC §3.2) per technology and, optionally, tumour cells only."""

from oncoshot.io import read_h5ad, write_h5ad, write_tsv
from oncoshot.plots import qc_scatter, save_figure
from oncoshot.runtime import run
from oncoshot.singlecell import NO_TECHNOLOGY, qc_cells, select_cell_types


def main(sm, log):
    p = sm.params
    adata = read_h5ad(sm.input[0])
    markers = {str(k): [str(v) for v in vals] for k, vals in dict(p.normal_markers).items()}
    filtered, per_cell, summary = qc_cells(
        adata, max_mito_fraction=p.max_mito_fraction, min_genes=p.min_genes, max_genes=p.max_genes,
        normal_markers=markers,
    )
    kept, _ = select_cell_types(filtered, p.cell_type_column, list(p.keep_cell_types))
    tech = "technology"
    kept_by = (kept.obs[tech].astype(str).value_counts() if tech in kept.obs else
               {NO_TECHNOLOGY: kept.n_obs})
    summary["kept_scored"] = [int(kept_by.get(t, 0)) for t in summary["technology"]]
    summary["dropped_cell_type"] = summary["kept"] - summary["kept_scored"]
    for row in summary.to_dict("records"):
        log.info("%s", row)
        log.info("%s / %s: normal-sample filter %s; %d cells of %d normal sample(s) dropped", row["study"],
                 row["technology"], row["normal_filter"], row["dropped_normal_sample"], row["normal_samples"])
    write_h5ad(kept, sm.output.adata)
    write_tsv(per_cell, sm.output.cells, index=True)
    write_tsv(summary, sm.output.summary)
    fig = qc_scatter(per_cell, p.max_mito_fraction, p.min_genes, p.max_genes,
                     f"{sm.wildcards.study}: cell QC ({int(per_cell['passed'].sum())} of {len(per_cell)} kept)")
    save_figure(fig, sm.output.png, sm.output.svg)


run(main, snakemake)  # noqa: F821
