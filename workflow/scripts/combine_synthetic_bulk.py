"""Rule combine_synthetic_bulk: all training studies' profiles in one matrix (genes: the union,
absent genes are zero counts), the held-out studies' pooled profiles in another, and a summary of
profiles per tissue / hallmark / status."""

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from oncoshot.io import read_h5ad, write_h5ad, write_tsv
from oncoshot.runtime import run


def combine(paths):
    parts = [read_h5ad(p) for p in paths]
    if not parts:
        return ad.AnnData(sp.csr_matrix((0, 0), dtype=np.float32))
    combined = ad.concat(parts, join="outer", fill_value=0, index_unique=None)
    combined.X = sp.csr_matrix(combined.X, dtype=np.float32)
    return combined[:, sorted(combined.var_names)].copy()


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
