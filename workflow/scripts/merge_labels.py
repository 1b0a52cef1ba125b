"""Rule merge_labels: TCGA projects of a common origin get the MET500 label; MISC/SCER dropped."""

from oncoshot.bulk import merge_labels, read_label_map
from oncoshot.io import read_h5ad, write_h5ad, write_tsv
from oncoshot.runtime import run


def main(sm, log):
    adata = read_h5ad(sm.input.adata)
    label_map = read_label_map(sm.input.label_map)
    merged, report = merge_labels(adata, label_map, drop_labels=tuple(sm.params.drop_labels))
    log.info("%s: %d samples in %d types after merging", sm.wildcards.cohort,
             merged.n_obs, merged.obs["cancer_type"].nunique())
    write_h5ad(merged, sm.output.adata)
    write_tsv(report, sm.output.report)


run(main, snakemake)  # noqa: F821
