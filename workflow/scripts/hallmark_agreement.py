"""Rule hallmark_agreement (hallmarks.scorer: both): per hallmark, Spearman ρ between our trained
model's and the published OncoMark model's probabilities across the bulk samples (bootstrap 95 %
interval), the per-type means side by side, and a figure (oncoshot.agreement)."""

from oncoshot.agreement import agreement_table, type_means_side_by_side
from oncoshot.errors import InputError
from oncoshot.hallmark_model import HALLMARKS
from oncoshot.hallmark_plots import agreement_figure
from oncoshot.io import read_tsv, write_tsv
from oncoshot.plots import save_figure
from oncoshot.runtime import run
from oncoshot.sources.oncomark import published_column


def main(sm, log):
    activity = read_tsv(sm.input.activity, required=("sample_id", "cohort", "cancer_type"), index_col=None)
    activity = activity.set_index("sample_id")
    missing = [c for h in HALLMARKS for c in (h, published_column(h)) if c not in activity.columns]
    if missing:
        raise InputError(sm.input.activity, ", ".join(missing), "missing: the agreement needs both scorers' columns "
                         "(hallmarks.scorer: both)")
    ours = activity[list(HALLMARKS)]
    published = activity[[published_column(h) for h in HALLMARKS]].set_axis(list(HALLMARKS), axis=1)
    groups = activity["cancer_type"].astype(str) + " (" + activity["cohort"].astype(str) + ")"
    table = agreement_table(ours, published, groups, n_boot=sm.params.n_boot, seed=sm.params.seed)
    side = type_means_side_by_side(ours, published, groups)
    for row in table.itertuples():
        log.info("%s: Spearman ρ %.2f [%.2f, %.2f] over %d samples; means ours %.2f, published %.2f "
                 "(%.0f %% of published ≥ 0.99); ρ of the %d type means %.2f", row.hallmark, row.spearman_rho,
                 row.ci_low, row.ci_high, row.n, row.mean_trained, row.mean_published,
                 100 * row.published_saturated, row.n_types, row.spearman_type_means)
    write_tsv(table, sm.output.table)
    write_tsv(side, sm.output.by_type, index=True)
    save_figure(agreement_figure(table, side), sm.output.png, sm.output.svg)


run(main, snakemake)  # noqa: F821
