"""Rule bulk_hallmark_activity: hallmark probabilities of every TCGA and MET500 sample (genes
matched by symbol; model genes missing from a sample are filled with 0 before ranking, as OncoMark
does, and reported), heatmap by cancer type, primary vs metastatic comparison."""

import pandas as pd

from oncoshot.bulk import merge_labels, read_label_map
from oncoshot.hallmark_model import compare_groups, load_hallmark_model, predict_anndata
from oncoshot.hallmark_plots import group_comparison_plot, hallmark_heatmap
from oncoshot.io import read_h5ad, write_tsv
from oncoshot.plots import save_figure
from oncoshot.runtime import run


def main(sm, log):
    model, pre, _ = load_hallmark_model(sm.input.model)
    label_map = read_label_map(sm.input.label_map)
    tables, missing = [], []
    for cohort in ("tcga", "met500"):
        adata, _ = merge_labels(read_h5ad(getattr(sm.input, cohort)), label_map,
                                drop_labels=tuple(sm.params.drop_labels))
        probs = predict_anndata(model, pre, adata)
        report = probs.attrs.get("report", {})
        genes = report.get("missing_genes", [])
        log.info("%s: %d samples; %d of %d model genes missing (filled with 0)", cohort, adata.n_obs,
                 len(genes), len(pre.genes_))
        missing.append(pd.DataFrame({"cohort": cohort, "gene": list(genes)}))
        meta = adata.obs[["cohort", "cancer_type", "sample_type"]].astype(str)
        tables.append(pd.concat([meta, probs.set_axis(adata.obs_names)], axis=1))
    activity = pd.concat(tables)
    activity.index.name = "sample_id"
    write_tsv(activity, sm.output.activity, index=True)
    write_tsv(pd.concat(missing, ignore_index=True), sm.output.missing)
    hallmarks = [c for c in activity.columns if c not in ("cohort", "cancer_type", "sample_type")]
    probs = activity[hallmarks]
    comparison = compare_groups(probs, activity["sample_type"], order=("primary", "metastatic"))
    write_tsv(comparison, sm.output.comparison)
    for row in comparison.itertuples():
        log.info("%s: primary %.3f vs metastatic %.3f, Cliff's delta %.2f, p %.2g", row.hallmark,
                 row.mean_a, row.mean_b, row.cliffs_delta, row.p)
    groups = activity["cancer_type"] + " (" + activity["sample_type"].str[0].str.upper() + ")"
    save_figure(hallmark_heatmap(probs, groups, title="mean hallmark probability by cancer type "
                                 "(P primary TCGA, M metastatic MET500)"), sm.output.heatmap_png, sm.output.heatmap_svg)
    save_figure(group_comparison_plot(probs, activity["sample_type"], order=("primary", "metastatic"),
                                      comparison=comparison), sm.output.compare_png, sm.output.compare_svg)


run(main, snakemake)  # noqa: F821
