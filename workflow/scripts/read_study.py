"""Rule read_study: a 3CA study folder (any published layout) → sparse cells × genes .h5ad."""

from oncoshot.io import write_h5ad
from oncoshot.runtime import run
from oncoshot.sources.threeca import read_study


def main(sm, log):
    adata = read_study(sm.input[0], tissue=sm.params.tissue, study=sm.wildcards.study,
                       technologies=list(sm.params.technologies or []))
    log.info("%s: %d cells × %d genes (%s layout; unit %s), tissue %s, metadata %s", sm.wildcards.study,
             adata.n_obs, adata.n_vars, adata.uns["layout"], adata.uns["unit"], sm.params.tissue,
             adata.uns["metadata"] or "none")
    counts = adata.obs["technology"].value_counts()
    for tech in adata.uns["technologies"]:
        log.info("  technology %s: %d cells, unit %s, %d of the genes not measured", tech, counts[tech],
                 adata.uns["units"][tech], adata.uns["genes_missing"][tech])
    write_h5ad(adata, sm.output[0])


run(main, snakemake)  # noqa: F821
