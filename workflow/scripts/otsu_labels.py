"""Rule otsu_labels: per tissue and hallmark, low/high Otsu thresholds on the lower/upper halves of
the training studies' scores (SPEC §3.4); every cell labelled positive / negative / unlabelled.
Held-out (validation) studies are labelled with the thresholds of their tissue from the training
studies, so that no information flows from them into the thresholds."""

import pandas as pd

from oncoshot.hallmarks import apply_thresholds, label_cells
from oncoshot.io import read_tsv, write_tsv
from oncoshot.plots import otsu_histograms, save_figure
from oncoshot.runtime import run

META = ["cell", "study", "sample", "tissue"]


def main(sm, log):
    tables = [read_tsv(f, required=tuple(META)) for f in sm.input.scores]
    roles = dict(zip(sm.params.studies, sm.params.roles))
    scores = pd.concat(tables, ignore_index=True)
    scores["key"] = scores["study"] + "/" + scores["cell"].astype(str)
    scores = scores.set_index("key")
    hallmarks = [c for c in scores.columns if c not in META]
    train = scores[scores["study"].map(roles) == "train"]
    labels_train, thresholds = label_cells(train[hallmarks], train["tissue"])
    held = scores[scores["study"].map(roles) != "train"]
    parts = [labels_train]
    if len(held):
        known = set(thresholds["tissue"])
        new = held[~held["tissue"].isin(known)]
        if len(new):
            log.warning("tissues without a training study (%s): thresholds fitted on the held-out "
                        "cells themselves", sorted(set(new["tissue"])))
            lab_new, thr_new = label_cells(new[hallmarks], new["tissue"])
            thresholds = pd.concat([thresholds, thr_new], ignore_index=True)
            parts.append(lab_new)
        old = held[held["tissue"].isin(known)]
        if len(old):
            parts.append(apply_thresholds(old[hallmarks], old["tissue"], thresholds))
    labels = pd.concat(parts).reindex(scores.index)
    out = pd.concat([scores[META], labels], axis=1)
    for row in thresholds.itertuples():
        log.info("%s %s: low %.4f high %.4f (+%d / -%d of %d)", row.tissue, row.hallmark, row.low,
                 row.high, row.n_pos, row.n_neg, row.n_cells)
    write_tsv(out, sm.output.labels)
    write_tsv(thresholds, sm.output.thresholds)
    fig = otsu_histograms(train[hallmarks], train["tissue"], thresholds, "UCell hallmark scores of the training studies")
    save_figure(fig, sm.output.png, sm.output.svg)


run(main, snakemake)  # noqa: F821
