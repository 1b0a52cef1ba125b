"""Rule harmonise_cohort: a user's labelled cohort (config ``cohorts``) → its harmonised and labelled
matrices and the per-type label report (oncoshot.cohort.build_cohort)."""

from oncoshot.cohort import build_cohort
from oncoshot.io import write_h5ad, write_tsv
from oncoshot.runtime import run


def main(sm, log):
    spec = sm.params.spec
    name = sm.wildcards.cohort
    gene_filter = bool(spec.get("gene_filter", True))
    if not gene_filter:
        log.info("gene filter (SPEC §1.3) skipped for cohort %s: %s", name, spec.get("gene_filter_reason"))
    harmonised, labelled, report, counts = build_cohort(
        name, spec["expression"], spec["labels"], exclude=spec.get("exclude_genes"), gene_filter=gene_filter,
        filter_threshold=sm.params.filter_threshold, min_samples=spec.get("min_samples", 8), log=log.info,
    )
    for key in ("n_matrix_samples", "n_matrix_samples_without_label_row", "n_label_rows_without_sample",
                "n_unlabelled_empty", "n_unlabelled_dropped", "n_labelled", "n_genes_in", "n_genes_excluded",
                "n_genes_kept", "n_types", "n_samples"):
        log.info("%s: %s", key, counts[key])
    write_h5ad(harmonised, sm.output.harmonised)
    write_h5ad(labelled, sm.output.labelled)
    write_tsv(report, sm.output.labels)


run(main, snakemake)  # noqa: F821
