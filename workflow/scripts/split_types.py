"""Rule split_types: training/test type sets (9/14/19 TCGA, MET500 10/10) and sample splits, made by
patient; the patient report (samples / libraries in, dropped, merged by patient)."""

import pandas as pd

from oncoshot.bulk import patient_report, split_types
from oncoshot.io import read_h5ad, write_tsv
from oncoshot.runtime import run


def main(sm, log):
    tcga, met500 = read_h5ad(sm.input.tcga), read_h5ad(sm.input.met500)
    types, samples = split_types(
        tcga,
        met500,
        training_sets=dict(sm.params.training_sets),
        n_test_types=sm.params.n_test_types,
        validation_fraction=sm.params.validation_fraction,
        met500_n_train=sm.params.met500_n_train,
        min_samples=sm.params.min_samples,
        small_type_policy=sm.params.small_type_policy,
        seed=sm.params.seed,
        impossible=sm.params.impossible,
        requirements={exp: [tuple(r) for r in reqs] for exp, reqs in dict(sm.params.requirements).items()},
    )
    for exp, grp in types.groupby("experiment", sort=False):
        log.info("%s: %d training types, %d test types", exp,
                 (grp["role"] == "train").sum(), (grp["role"] == "test").sum())
        for role, g in grp.groupby("role", sort=False):
            req = g["n_types_requested"].iloc[0]
            if not pd.isna(req) and int(req) != int(g["n_types"].iloc[0]):
                log.warning("%s: %d %s types requested, %d used (recorded in types.tsv: n_types_requested, "
                            "n_types)", exp, int(req), role, int(g["n_types"].iloc[0]))
    report = patient_report({"TCGA": tcga, "MET500": met500}, samples)
    for row in report.itertuples(index=False):
        log.info("%s patients (%s): %d samples in, %d non-primary dropped, %d libraries dropped, %d kept of "
                 "%d patients (%d with several samples); after labels %d samples of %d patients "
                 "(%d with several); %d patients on both sides of a split", row.cohort, row.policy,
                 row.n_samples_in, row.n_samples_dropped_non_primary, row.n_libraries_dropped, row.n_samples_kept,
                 row.n_patients, row.n_patients_with_several_samples, row.n_samples_after_labels,
                 row.n_patients_after_labels, row.n_patients_with_several_samples_after_labels,
                 row.n_patients_on_both_sides)
    write_tsv(types, sm.output.types)
    write_tsv(samples, sm.output.samples)
    write_tsv(report, sm.output.patients)


run(main, snakemake)  # noqa: F821
