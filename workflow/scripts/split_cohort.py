"""Rule split_cohort: training / unseen types of a user's cohort (paper ranking or seeded random)
and the validation / test halves by patient; the patient report (oncoshot.cohort.split_cohort)."""

from oncoshot.bulk import patient_report
from oncoshot.cohort import split_cohort
from oncoshot.io import read_h5ad, write_tsv
from oncoshot.runtime import run


def main(sm, log):
    name = sm.wildcards.cohort
    split = sm.params.split
    adata = read_h5ad(sm.input.labelled)
    types, samples = split_cohort(
        adata, name, policy=split["policy"], n_test_types=split["n_test_types"],
        validation_fraction=split["validation_fraction"], seed=split["seed"], min_patients=sm.params.min_patients,
        small_type_policy=sm.params.small_type_policy, source=f"config cohorts.{name}",
    )
    for role, grp in types.groupby("role", sort=False):
        log.info("%s (%s split, seed %d): %d %s types: %s", name, split["policy"], split["seed"], len(grp),
                 "training" if role == "train" else "unseen",
                 ", ".join(f"{t} ({n})" for t, n in zip(grp["cancer_type"], grp[["n_train", "n_validation", "n_test"]].sum(axis=1))))
    report = patient_report({name: adata}, samples)
    for row in report.itertuples(index=False):
        log.info("%s: %d samples of %d patients (%d with several samples); %d patients on both sides of a split",
                 row.cohort, row.n_samples_after_labels, row.n_patients_after_labels,
                 row.n_patients_with_several_samples_after_labels, row.n_patients_on_both_sides)
    write_tsv(types, sm.output.types)
    write_tsv(samples, sm.output.samples)
    write_tsv(report, sm.output.patients)


run(main, snakemake)  # noqa: F821
