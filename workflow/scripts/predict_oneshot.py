"""Rule predict_oneshot: type the user's query samples against their labelled support samples with a
trained Siamese model (k supports of a type: their same-type probabilities averaged), and score the
queries' hallmark activity with the configured scorer(s) (hallmarks.scorer: our trained model and/or
OncoMark's published one); genes aligned to each model with a report (oncoshot.predict)."""

import torch

from oncoshot.sources.tcga import read_probemap
from oncoshot.hallmark_model import load_hallmark_model
from oncoshot.io import write_tsv
from oncoshot.plots import save_figure
from oncoshot.experiments import load_scorer
from oncoshot.predict import ExpressionSpec, predict_job, probability_heatmap
from oncoshot.runtime import run
from oncoshot.sources.oncomark import load_published_model
from oncoshot.training import pick_device


def main(sm, log):
    torch.set_num_threads(sm.threads)
    p = sm.params
    device = pick_device()
    model, genes, meta = load_scorer(sm.input.siamese, device)  # a Siamese net or a whitened-cosine metric
    log.info("%s model %s (%s, %s): %d genes, device %s", meta.get("kind"), sm.input.siamese,
             meta.get("experiment"), meta.get("init", meta.get("method")), len(genes), device)
    hallmark = None
    if sm.input.get("hallmark_model"):
        hallmark_model, preprocessor, _ = load_hallmark_model(sm.input.hallmark_model, device)
        hallmark = (hallmark_model, preprocessor)
    published = load_published_model(sm.input.published_model, device) if sm.input.get("published_model") else None
    if published is None:
        log.info("published OncoMark model not run (hallmarks.scorer: trained)")
    result = predict_job(
        model, genes, ExpressionSpec(**p.support), sm.input.support_labels, ExpressionSpec(**p.queries),
        symbols=read_probemap(sm.input.probemap), hallmark=hallmark, published=published,
        published_min_coverage=p.published_min_coverage,
        query_labels=sm.input.get("query_labels"), sample_column=p.sample_column, type_column=p.type_column,
        min_coverage=p.min_coverage, min_probability=p.min_probability, batch=p.batch, log=log.info,
        model_gene_ids=meta.get("gene_ids", "ensembl"), model_unit=meta.get("unit"),
    )
    table = result.predictions
    for row in table.itertuples():
        log.info("%s → %s (p %.3f, margin %.3f)%s", row.sample_id, row.assigned_type, row.probability,
                 row.margin, f" [true {row.true_type}]" if "true_type" in table.columns else "")
    write_tsv(table, sm.output.predictions)
    write_tsv(result.hallmarks, sm.output.hallmarks)
    write_tsv(result.missing, sm.output.missing)
    write_tsv(result.alignment, sm.output.alignment)
    save_figure(probability_heatmap(table, title=f"one-shot prediction: job {sm.wildcards.job}"),
                sm.output.png, sm.output.svg)


run(main, snakemake)  # noqa: F821
