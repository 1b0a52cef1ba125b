"""Rule marker_enrichment: overlap of the primary and metastatic marker lists, and enrichment of
each in the ten hallmark gene sets (hypergeometric against the filtered gene universe, BH)."""

import pandas as pd

from oncoshot.io import read_tsv, write_tsv
from oncoshot.markers import enrichment, marker_overlap
from oncoshot.runtime import run
from oncoshot.ucell import read_gene_sets


def main(sm, log):
    universe = read_tsv(sm.input.universe, required=("gene_id", "symbol"))
    sets = read_gene_sets(sm.input.gene_sets)
    lists = {"primary": read_tsv(sm.input.primary, required=("gene_id", "symbol")),
             "metastatic": read_tsv(sm.input.metastatic, required=("gene_id", "symbol"))}
    uni = list(universe["symbol"].dropna().astype(str).unique())
    tables = []
    for name, markers in lists.items():
        t = enrichment(list(markers["symbol"].dropna().astype(str)), uni, sets)
        t.insert(0, "marker_list", name)
        tables.append(t)
        for row in t.head(3).itertuples():
            log.info("%s markers: %s overlap %d (expected %.1f), q = %.3g", name, row.gene_set, row.overlap,
                     row.expected, row.q_value)
    write_tsv(pd.concat(tables, ignore_index=True), sm.output.enrichment)
    ov = marker_overlap(list(lists["primary"]["gene_id"]), list(lists["metastatic"]["gene_id"]))
    symbol = dict(zip(universe["gene_id"], universe["symbol"]))
    rows = [dict(n_primary=ov["n_a"], n_metastatic=ov["n_b"], n_shared=ov["n_intersection"],
                 jaccard=ov["jaccard"], shared_genes=";".join(str(symbol.get(g, g)) for g in ov["intersection"]))]
    log.info("overlap: %d primary, %d metastatic, %d shared (Jaccard %.3f)", ov["n_a"], ov["n_b"],
             ov["n_intersection"], ov["jaccard"])
    write_tsv(pd.DataFrame(rows), sm.output.overlap)


run(main, snakemake)  # noqa: F821
