"""Rule summarise_oneshot: one tidy table of every evaluation, Fig. 3a/3b-like bar charts and the
training curves."""

import pandas as pd

from oncoshot.io import read_tsv, write_tsv
from oncoshot.plots import grouped_accuracy_bars, save_figure, training_curves
from oncoshot.runtime import run

PAPER_TCGA19 = {6: 89.67, 8: 87.32, 10: 84.59}


def main(sm, log):
    results = pd.concat([read_tsv(f) for f in sm.input.evaluations], ignore_index=True)
    write_tsv(results, sm.output.table)
    reduced = results[results["n_way"] != results.get("n_way_requested", results["n_way"])]
    for row in reduced.drop_duplicates(["experiment", "n_way_requested"]).itertuples():
        log.warning("%s: %d-way requested, evaluated %d-way (impossible_requests: reduce; column "
                    "n_way_requested)", row.experiment, row.n_way_requested, row.n_way)
    # a reduced N may repeat a requested one (same tasks, same numbers): plot each N once
    results = results.drop_duplicates(["experiment", "method", "n_way"])
    primary = [r for r in sm.params.primary_runs if r in set(results["experiment"])]
    metastatic = [r for r in sm.params.metastatic_runs if r in set(results["experiment"])]
    cohort = [r for r in sm.params.cohort_runs if r in set(results["experiment"])]
    if primary or not cohort:
        fig = grouped_accuracy_bars(results, primary, "Unseen primary types (TCGA test types)", paper=PAPER_TCGA19)
    else:  # only your own cohorts (config cohorts): their unseen types, no paper line
        names = sorted(set(results.loc[results["experiment"].isin(cohort), "test"]))
        fig = grouped_accuracy_bars(results, cohort, f"Unseen types of cohort(s) {', '.join(names)}")
    save_figure(fig, sm.output.primary_png, sm.output.primary_svg)
    fig = grouped_accuracy_bars(results, metastatic, "Unseen metastatic types (MET500 test types)")
    save_figure(fig, sm.output.metastatic_png, sm.output.metastatic_svg)
    siamese = {f"{h.split('/')[-2]} {h.split('/')[-1].split('_')[1]}": read_tsv(h) for h in sm.input.siamese_histories}
    fig = training_curves(siamese, "iteration", [("train_loss", "training BCE loss"),
                                                 ("val_accuracy", "validation 10-way accuracy")],
                          "Siamese training")
    save_figure(fig, sm.output.curves_png, sm.output.curves_svg)
    for row in results.itertuples():
        log.info("%s %s %d-way: %.3f", row.experiment, row.method, row.n_way, row.accuracy)


run(main, snakemake)  # noqa: F821
