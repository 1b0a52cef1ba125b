"""Rule validate_hallmark_model: metrics of the trained model on the held-out studies' pooled
profiles (validation mode)."""

import pandas as pd

from oncoshot.hallmark_model import evaluate_model, load_hallmark_model
from oncoshot.io import read_h5ad, write_tsv
from oncoshot.runtime import run


def main(sm, log):
    model, pre, _ = load_hallmark_model(sm.input.model)
    adata = read_h5ad(sm.input.validation)
    if adata.n_obs == 0:
        log.warning("no held-out study configured: no validation metrics")
        write_tsv(pd.DataFrame(columns=["hallmark"]), sm.output[0])
        return
    metrics, report = evaluate_model(model, pre, adata.X, adata.obs, list(adata.var_names))
    log.info("held-out profiles: %d; model genes missing from them: %s", adata.n_obs,
             len(report.get("missing_genes", [])))
    log.info("\n%s", metrics.to_string())
    write_tsv(metrics, sm.output[0])


run(main, snakemake)  # noqa: F821
