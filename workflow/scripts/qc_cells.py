"""Rule qc_cells: OncoMark cell QC (SPEC §3.2) and, optionally, tumour cells only."""

from oncoshot.io import read_h5ad, write_h5ad, write_tsv
from oncoshot.plots import qc_scatter, save_figure
from oncoshot.runtime import run
from oncoshot.singlecell import qc_cells, select_cell_types


def main(sm, log):
    p = sm.params
    adata = read_h5ad(sm.input[0])
    filtered, per_cell, summary = qc_cells(
        adata, max_mito_fraction=p.max_mito_fraction, min_genes=p.min_genes, max_genes=p.max_genes,
        normal_column=p.normal_column, normal_values=tuple(p.normal_values),
    )
    kept, n_other = select_cell_types(filtered, p.cell_type_column, list(p.keep_cell_types))
    summary["dropped_cell_type"] = n_other
    summary["kept_scored"] = kept.n_obs
    log.info("%s", summary.to_dict("records"))
    write_h5ad(kept, sm.output.adata)
    write_tsv(per_cell, sm.output.cells, index=True)
    write_tsv(summary, sm.output.summary)
    fig = qc_scatter(per_cell, p.max_mito_fraction, p.min_genes, p.max_genes,
                     f"{sm.wildcards.study}: cell QC ({int(per_cell['passed'].sum())} of {len(per_cell)} kept)")
    save_figure(fig, sm.output.png, sm.output.svg)


run(main, snakemake)  # noqa: F821
