"""Rule score_hallmarks: UCell scores of every cell for the ten hallmark gene sets (SPEC §3.3)."""

from oncoshot.io import read_h5ad, write_tsv
from oncoshot.runtime import run
from oncoshot.ucell import read_gene_sets, signatures_without_genes, ucell_scores


def main(sm, log):
    adata = read_h5ad(sm.input.adata)
    sets = read_gene_sets(sm.input.gene_sets)
    scores, missing = ucell_scores(adata.X, list(adata.var_names), sets, max_rank=sm.params.max_rank,
                                   chunk_size=sm.params.chunk_size, cell_names=list(adata.obs_names))
    # a hallmark with no signature gene in the study: an error naming both, or (explicitly) NaN
    scores = signatures_without_genes(scores, missing, study=sm.wildcards.study, policy=sm.params.no_signature_genes,
                                      source=sm.input.adata, gene_sets=sm.input.gene_sets)
    for row in missing.itertuples():
        if row.n_present == 0:
            log.warning("%s: none of the %d %s genes is in the study: scores are NaN "
                        "(singlecell.ucell.no_signature_genes: nan)", sm.wildcards.study, row.n_genes, row.signature)
        elif row.n_missing:
            log.warning("%s: %d of %d %s genes missing from the study (scored as max_rank): %s",
                        sm.wildcards.study, row.n_missing, row.n_genes, row.signature, row.missing_genes)
    out = scores.copy()
    out.insert(0, "tissue", adata.obs["tissue"].astype(str).to_numpy())
    out.insert(0, "sample", adata.obs["sample"].astype(str).to_numpy())
    out.insert(0, "study", sm.wildcards.study)
    out.index.name = "cell"
    log.info("%s: scored %d cells for %d hallmarks", sm.wildcards.study, len(scores), scores.shape[1])
    write_tsv(out, sm.output.scores, index=True)
    missing.insert(0, "study", sm.wildcards.study)
    write_tsv(missing, sm.output.missing)


run(main, snakemake)  # noqa: F821
