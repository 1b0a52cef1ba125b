"""Rule filter_genes: mean-and-std < threshold filter per cohort, then the intersection."""

from oncoshot.bulk import filter_genes
from oncoshot.io import read_h5ad, write_h5ad, write_tsv
from oncoshot.runtime import run


def main(sm, log):
    cohorts = {"tcga": read_h5ad(sm.input.tcga), "met500": read_h5ad(sm.input.met500)}
    filtered, kept, counts = filter_genes(cohorts, threshold=sm.params.threshold)
    for name, row in counts.iterrows():
        log.info("%s", row.to_dict())
    log.info("%d genes kept in every cohort (threshold %.3g)", len(kept), sm.params.threshold)
    write_h5ad(filtered["tcga"], sm.output.tcga)
    write_h5ad(filtered["met500"], sm.output.met500)
    write_tsv(kept, sm.output.kept)
    write_tsv(counts, sm.output.counts)


run(main, snakemake)  # noqa: F821
