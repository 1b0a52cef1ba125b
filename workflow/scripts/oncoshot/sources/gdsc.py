"""GDSC cancer cell lines as shipped in ``../shared/real/gdsc_celllines`` (PROVENANCE.md there),
for the real-data benchmark and tests: the workflow reads the same files through ``cohorts:``
(``config/gdsc.yaml``, :mod:`oncoshot.cohort`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

UNLABELLED = ("", "NA", "UNABLE TO CLASSIFY")


def read_gdsc(folder: str | Path, min_lines: int = 8) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X [lines, genes] float32, tcga_label per line, genes)``: genes with
    ``constant_fill_not_measured = TRUE`` dropped; lines without a TCGA-style label (empty, ``NA``,
    ``UNABLE TO CLASSIFY``) dropped; types with fewer than ``min_lines`` lines dropped. Lines in the
    order of ``GDSC_EXP.sample_types.tsv``."""
    d = Path(folder)
    X = pd.read_csv(d / "GDSC_EXP.genes_x_samples.tsv.gz", sep="\t", index_col=0)
    ann = pd.read_csv(d / "GDSC_EXP.gene_annotation.tsv", sep="\t")
    unmeasured = set(ann.loc[ann["constant_fill_not_measured"].astype(str).str.upper() == "TRUE", "gene_symbol"])
    X = X.loc[[g not in unmeasured for g in X.index]]
    st = pd.read_csv(d / "GDSC_EXP.sample_types.tsv", sep="\t", keep_default_na=False).set_index("sample_id")
    st = st[~st["tcga_label"].isin(UNLABELLED)]
    counts = st["tcga_label"].value_counts()
    st = st[st["tcga_label"].isin(counts[counts >= min_lines].index)]
    return X[st.index].T.to_numpy(np.float32), st["tcga_label"].to_numpy().astype(str), list(X.index)
