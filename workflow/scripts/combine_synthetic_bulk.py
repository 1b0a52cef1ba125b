"""Rule combine_synthetic_bulk: all training studies' profiles in one matrix (genes: the union,
absent genes are zero counts), the held-out studies' pooled profiles in another, and a summary of
profiles per tissue / hallmark / status."""

import pandas as pd

from oncoshot.hallmarks import combine_profiles
from oncoshot.io import read_h5ad, write_h5ad, write_tsv
from oncoshot.runtime import run


def combine(paths):
    return combine_profiles([read_h5ad(p) for p in paths], join="outer")


def main(sm, log):
    train = combine(sm.input.train)
    validation = combine(sm.input.validation)
    rows = []
    for name, a in (("train", train), ("validation", validation)):
        if a.n_obs:
            c = a.obs.groupby(["tissue", "hallmark", "status"], observed=True).size().rename("n_profiles")
            rows.append(c.reset_index().assign(set=name))
        log.info("%s: %d profiles × %d genes", name, a.n_obs, a.n_vars)
    summary = pd.concat(rows, ignore_index=True)[["set", "tissue", "hallmark", "status", "n_profiles"]]
    write_h5ad(train, sm.output.train)
    write_h5ad(validation, sm.output.validation)
    write_tsv(summary, sm.output.summary)


run(main, snakemake)  # noqa: F821
