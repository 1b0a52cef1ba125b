"""Rule synthetic_bulk: synthetic biopsies of one study (SPEC §3.5). Training studies: per patient
sample × hallmark × status, non-overlapping groups of cells_per_bulk cells summed. Held-out studies
(validation mode): all positive (and all negative) cells of a sample pooled per hallmark."""

from oncoshot.hallmarks import pooled_validation_bulk, synthetic_bulk
from oncoshot.io import atomic_path, read_h5ad, read_tsv, write_h5ad
from oncoshot.runtime import run


def main(sm, log):
    adata = read_h5ad(sm.input.adata)
    study = sm.wildcards.study
    table = read_tsv(sm.input.labels, required=("cell", "study"))
    table = table[table["study"] == study].set_index("cell")
    hallmarks = [c for c in table.columns if c not in ("study", "sample", "tissue")]
    labels = table[hallmarks].reindex(adata.obs_names)
    obs = adata.obs.copy()
    obs["study"] = study
    if sm.params.mode == "pooled":
        profiles, membership = pooled_validation_bulk(adata.X, obs, labels, genes=list(adata.var_names))
    else:
        profiles, membership = synthetic_bulk(adata.X, obs, labels, cells_per_bulk=sm.params.cells_per_bulk,
                                              seed=sm.params.seed, genes=list(adata.var_names))
    profiles.obs["mode"] = sm.params.mode
    counts = profiles.obs.groupby(["hallmark", "status"], observed=True).size()
    log.info("%s (%s): %d profiles\n%s", study, sm.params.mode, profiles.n_obs, counts.to_string())
    write_h5ad(profiles, sm.output.adata)
    with atomic_path(sm.output.membership) as tmp:
        membership.to_csv(tmp, sep="\t", index=False, compression="gzip")


run(main, snakemake)  # noqa: F821
