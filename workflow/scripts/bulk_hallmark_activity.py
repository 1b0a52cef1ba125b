"""Rule bulk_hallmark_activity: hallmark probabilities of every TCGA and MET500 sample from the
configured scorer(s) (hallmarks.scorer): our trained model (columns IA … AIM) and/or OncoMark's
published model (columns published_IA … published_AIM). Genes are matched by symbol; a model gene
missing from a cohort is filled with 0 before ranking, as OncoMark does, and reported (coverage in
the log, the genes in bulk_missing_genes.tsv). Heatmap by cancer type and primary vs metastatic
comparison of every scorer (figures: the trained model's when it runs, else the published one's)."""

import pandas as pd

from oncoshot.bulk import merge_labels, read_label_map
from oncoshot.hallmark_model import HALLMARKS, compare_groups, load_hallmark_model, predict_anndata
from oncoshot.hallmark_plots import group_comparison_plot, hallmark_heatmap
from oncoshot.io import read_h5ad, write_tsv
from oncoshot.plots import save_figure
from oncoshot.runtime import run
from oncoshot.sources.oncomark import load_published_model, predict_published_anndata, published_column

LABELS = {"trained": "our trained model", "published": "published OncoMark model"}


def main(sm, log):
    scorers = list(sm.params.scorers)
    trained = load_hallmark_model(sm.input.model)[:2] if "trained" in scorers else None
    published = load_published_model(sm.input.published) if "published" in scorers else None
    if published is None:
        log.info("published OncoMark model not run: hallmarks.scorer is %r. It needs real HGNC gene symbols "
                 "(the demo's simulated genes match none of its 9,326 genes); set hallmarks.scorer to "
                 "'both' or 'published' on real data (config/full.yaml)", sm.params.scorers[0])
    label_map = read_label_map(sm.input.label_map)
    tables, missing = [], []
    for cohort in ("tcga", "met500"):
        path = getattr(sm.input, cohort)
        adata, _ = merge_labels(read_h5ad(path), label_map, drop_labels=tuple(sm.params.drop_labels))
        parts = [adata.obs[["cohort", "cancer_type", "sample_type"]].astype(str)]
        if trained is not None:
            model, pre = trained
            probs = predict_anndata(model, pre, adata)
            genes = probs.attrs.get("report", {}).get("missing_genes", [])
            n = len(pre.genes_)
            log.info("%s, trained model: %d samples; %d of %d model genes found (%.1f %%), %d missing (filled "
                     "with 0)", cohort, adata.n_obs, n - len(genes), n, 100 * (n - len(genes)) / n, len(genes))
            missing.append(pd.DataFrame({"scorer": "trained", "cohort": cohort, "gene": list(genes)}))
            parts.append(probs.set_axis(adata.obs_names))
        if published is not None:
            probs = predict_published_anndata(published, adata, min_coverage=sm.params.published_min_coverage,
                                              source=path)
            rep = probs.attrs["report"]
            log.info("%s, published model: %d of %d genes found by symbol (%.1f %%), %d missing (filled with 0); "
                     "%d columns of duplicated symbols dropped (OncoMark keeps the first)", cohort, rep["n_found"],
                     rep["n_features"], 100 * rep["coverage"], rep["n_missing"], rep["n_duplicate_columns_dropped"])
            missing.append(pd.DataFrame({"scorer": "published", "cohort": cohort, "gene": rep["missing_genes"]}))
            parts.append(probs.set_axis(adata.obs_names).rename(columns=published_column))
        tables.append(pd.concat(parts, axis=1))
    activity = pd.concat(tables)
    activity.index.name = "sample_id"
    write_tsv(activity, sm.output.activity, index=True)
    write_tsv(pd.concat(missing, ignore_index=True), sm.output.missing)
    comparisons = {}
    for scorer in scorers:
        cols = list(HALLMARKS) if scorer == "trained" else [published_column(h) for h in HALLMARKS]
        probs = activity[cols].set_axis(list(HALLMARKS), axis=1)
        comp = compare_groups(probs, activity["sample_type"], order=("primary", "metastatic"))
        comparisons[scorer] = (probs, comp)
        for row in comp.itertuples():
            log.info("%s, %s: primary %.3f vs metastatic %.3f, Cliff's delta %.2f, p %.2g", scorer, row.hallmark,
                     row.mean_a, row.mean_b, row.cliffs_delta, row.p)
    write_tsv(pd.concat([c.assign(scorer=s)[["scorer", *c.columns]] for s, (_, c) in comparisons.items()],
                        ignore_index=True), sm.output.comparison)
    shown = scorers[0]  # the trained model's figures when it runs
    probs, comp = comparisons[shown]
    groups = activity["cancer_type"] + " (" + activity["sample_type"].str[0].str.upper() + ")"
    save_figure(hallmark_heatmap(probs, groups, title=f"mean hallmark probability by cancer type, {LABELS[shown]} "
                                 "(P primary TCGA, M metastatic MET500)"), sm.output.heatmap_png, sm.output.heatmap_svg)
    save_figure(group_comparison_plot(probs, activity["sample_type"], order=("primary", "metastatic"), comparison=comp,
                                      title=f"hallmark probability: primary vs metastatic, {LABELS[shown]}"),
                sm.output.compare_png, sm.output.compare_svg)


run(main, snakemake)  # noqa: F821
