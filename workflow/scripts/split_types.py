"""Rule split_types: training/test type sets (9/14/19 TCGA, MET500 10/10) and sample splits."""

from oncoshot.bulk import split_types
from oncoshot.io import read_h5ad, write_tsv
from oncoshot.runtime import run


def main(sm, log):
    types, samples = split_types(
        read_h5ad(sm.input.tcga),
        read_h5ad(sm.input.met500),
        training_sets=dict(sm.params.training_sets),
        n_test_types=sm.params.n_test_types,
        validation_fraction=sm.params.validation_fraction,
        met500_n_train=sm.params.met500_n_train,
        min_samples=sm.params.min_samples,
        small_type_policy=sm.params.small_type_policy,
        seed=sm.params.seed,
    )
    for exp, grp in types.groupby("experiment", sort=False):
        log.info("%s: %d training types, %d test types", exp,
                 (grp["role"] == "train").sum(), (grp["role"] == "test").sum())
    write_tsv(types, sm.output.types)
    write_tsv(samples, sm.output.samples)


run(main, snakemake)  # noqa: F821
