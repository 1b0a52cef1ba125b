"""Single-cell quality control (SPEC §3.2) and cell-type selection.

Reading the real sources lives in :mod:`oncoshot.sources.threeca` (3CA study folders, every
layout) and :mod:`oncoshot.published` (the published example sets); both give a cells × genes
AnnData (CSR float32, ``obs`` with ``study``, ``sample``, ``cell_type``, and ``technology`` for 3CA).
:func:`qc_cells` applies the OncoMark QC per study × technology, including the normal-sample filter
driven by the sample metadata's real columns (:data:`DEFAULT_NORMAL_MARKERS`);
:func:`select_cell_types` keeps the configured cell types. Every bad input raises
:class:`oncoshot.errors.InputError` naming the file, the field and the problem; recoverable
oddities warn with :class:`SingleCellWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from oncoshot.errors import InputError

__all__ = [
    "SingleCellWarning",
    "QC_REASONS",
    "DEFAULT_NORMAL_MARKERS",
    "sum_duplicated_genes",
    "mito_mask",
    "normal_cells",
    "qc_cells",
    "select_cell_types",
]

#: QC reasons in the order they are reported (a cell may fail several)
QC_REASONS = ("normal_sample", "high_mito", "low_genes", "high_genes")
#: column -> values that mark a normal sample (3CA / OncoMark's compiled metadata; REAL_FORMATS.md)
DEFAULT_NORMAL_MARKERS = {"source": ("Normal",), "cancer_type": ("Normal",), "sample_primary_met": ("Normal",)}
#: technology label when the data carry none (not a 3CA multi-technology study)
NO_TECHNOLOGY = "all"


class SingleCellWarning(UserWarning):
    """Recoverable oddities of single-cell input (duplicated or quoted gene symbols, unmatched
    samples, genes missing in one technology, a normal-sample filter that cannot apply)."""


def _warn(message: str) -> None:
    warnings.warn(message, SingleCellWarning, stacklevel=3)


def sum_duplicated_genes(X: sp.csr_matrix, genes: list[str], path: str | Path | None):
    """Sum columns that share a symbol (first occurrence order); warns with the counts.

    Returns ``(X, genes, n_duplicated_symbols)``.
    """
    index = pd.Index(genes)
    if not index.has_duplicates:
        return X, genes, 0
    codes, uniques = pd.factorize(index)
    dup_symbols = int(index[index.duplicated()].nunique())
    merged = int(index.duplicated().sum())
    _warn(
        f"{path}: {dup_symbols} gene symbol(s) occur more than once ({merged} extra column(s)); "
        f"their counts are summed into one column each"
    )
    agg = sp.csr_matrix(
        (np.ones(len(genes), dtype=np.float64), (np.arange(len(genes)), codes)),
        shape=(len(genes), len(uniques)),
    )
    summed = (X.astype(np.float64) @ agg).astype(np.float32)
    return sp.csr_matrix(summed), [str(g) for g in uniques], dup_symbols


# ---------------------------------------------------------------------------------------------
# quality control
# ---------------------------------------------------------------------------------------------


def mito_mask(genes: Sequence[str]) -> np.ndarray:
    """Boolean mask of mitochondrial genes: symbols starting ``MT-`` (case-insensitive)."""
    return np.array([str(g).upper().startswith("MT-") for g in genes], dtype=bool)


def normal_cells(
    adata: ad.AnnData, markers: Mapping[str, Sequence[str]] | None = None
) -> tuple[np.ndarray, str]:
    """Which cells belong to normal samples, and what the filter could do.

    A cell is normal when, for any ``column → values`` of ``markers`` (default
    :data:`DEFAULT_NORMAL_MARKERS`) whose column exists in ``obs``, its value is one of ``values``
    (stripped, case-insensitive; missing values are not normal). Returns ``(mask, status)``, the
    status being ``"applied: <columns used>"``, ``"no metadata"`` (no marker column, and the reader
    found no sample metadata: ``uns["metadata"]`` empty or absent) or ``"no normal column"`` (a
    metadata table was read but none of the marker columns is in it).
    """
    markers = DEFAULT_NORMAL_MARKERS if markers is None else markers
    obs = adata.obs
    used = [c for c in markers if c in obs.columns]
    mask = np.zeros(adata.n_obs, dtype=bool)
    if not used:
        status = "no metadata" if not adata.uns.get("metadata") else "no normal column"
        return mask, status
    for col in used:
        wanted = {str(v).strip().lower() for v in markers[col]}
        values = obs[col]
        mask |= (values.notna() & values.astype(str).str.strip().str.lower().isin(wanted)).to_numpy()
    return mask, "applied: " + ", ".join(used)


def qc_cells(
    adata: ad.AnnData,
    max_mito_fraction: float = 0.15,
    min_genes: int = 200,
    max_genes: int = 6000,
    normal_markers: Mapping[str, Sequence[str]] | None = None,
) -> tuple[ad.AnnData, pd.DataFrame, pd.DataFrame]:
    """OncoMark QC (SPEC §3.2): keep a cell when all of

    * its sample is not normal (:func:`normal_cells` with ``normal_markers``, default
      :data:`DEFAULT_NORMAL_MARKERS`: ``source``, ``cancer_type`` or ``sample_primary_met`` =
      Normal); when no marker column exists, nothing is dropped for this reason, the summary's
      ``normal_filter`` says why and a :class:`SingleCellWarning` is raised;
    * mitochondrial fraction = counts of ``MT-*`` genes / total counts ≤ ``max_mito_fraction``
      (a cell with zero total counts has fraction 0 and fails ``min_genes``);
    * detected genes (values > 0) ≥ ``min_genes`` and ≤ ``max_genes``.

    Returns
    -------
    filtered : AnnData, the kept cells (a copy, same genes).
    per_cell : DataFrame indexed like ``adata.obs``: ``study``, ``technology``, ``sample``,
        ``n_counts``, ``n_genes``, ``mito_fraction``, ``is_normal``, ``pass_normal``,
        ``pass_mito``, ``pass_min_genes``, ``pass_max_genes``, ``passed``, ``reason`` (failed
        criteria joined with ``;`` in the order of :data:`QC_REASONS`, ``""`` when kept).
    summary : DataFrame, one row per study × technology (``obs["technology"]``, ``"all"`` when
        absent): ``study``, ``technology``, ``unit`` (``uns["units"]`` / ``uns["unit"]``),
        ``n_cells``, ``kept``, ``dropped``, ``dropped_<reason>`` for each reason (cells failing that
        criterion: a cell failing two counts in both, so these may add up to more than
        ``dropped``; ``dropped_normal_sample`` = the cells flagged normal), ``normal_samples``
        (samples flagged normal) and ``normal_filter`` (the status of :func:`normal_cells`).
    """
    if not 0 <= max_mito_fraction <= 1:
        raise InputError(None, "max_mito_fraction", f"must be in [0, 1], got {max_mito_fraction}")
    if min_genes > max_genes:
        raise InputError(None, "min_genes", f"min_genes {min_genes} > max_genes {max_genes}")
    X = adata.X
    X = sp.csr_matrix(X) if not sp.issparse(X) or X.format != "csr" else X
    n_cells, n_genes_total = X.shape
    mito = mito_mask(adata.var_names).astype(np.float64)
    ones = np.ones(n_genes_total, dtype=np.float64)
    detected = sp.csr_matrix(((X.data > 0).astype(np.float64), X.indices, X.indptr), shape=X.shape)
    n_genes = np.asarray(detected @ ones).ravel().astype(np.int64)
    total = np.asarray(X @ ones, dtype=np.float64).ravel()
    mito_counts = np.asarray(X @ mito, dtype=np.float64).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        mito_fraction = np.where(total > 0, mito_counts / np.where(total > 0, total, 1.0), 0.0)

    obs = adata.obs
    is_normal, status = normal_cells(adata, normal_markers)
    study = obs["study"].astype(str).to_numpy() if "study" in obs.columns else np.full(n_cells, "")
    if not status.startswith("applied"):
        markers = DEFAULT_NORMAL_MARKERS if normal_markers is None else normal_markers
        _warn(f"{', '.join(sorted(set(study))) or 'cells'}: normal-sample filter not applied ({status}: "
              f"none of the columns {list(markers)} is in the cell or sample metadata); normal samples, "
              "if any, are kept")

    passes = {
        "normal_sample": ~is_normal,
        "high_mito": mito_fraction <= max_mito_fraction,
        "low_genes": n_genes >= min_genes,
        "high_genes": n_genes <= max_genes,
    }
    passed = np.logical_and.reduce(list(passes.values()))
    fail_matrix = np.column_stack([~passes[r] for r in QC_REASONS])
    reason_arr = np.array(QC_REASONS, dtype=object)
    reasons = [";".join(reason_arr[row]) for row in fail_matrix]

    technology = (obs["technology"].astype(str).to_numpy() if "technology" in obs.columns
                  else np.full(n_cells, NO_TECHNOLOGY))
    sample = obs["sample"].astype(str).to_numpy() if "sample" in obs.columns else np.full(n_cells, "")
    per_cell = pd.DataFrame(
        {
            "study": study,
            "technology": technology,
            "sample": sample,
            "n_counts": total,
            "n_genes": n_genes,
            "mito_fraction": mito_fraction,
            "is_normal": is_normal,
            "pass_normal": passes["normal_sample"],
            "pass_mito": passes["high_mito"],
            "pass_min_genes": passes["low_genes"],
            "pass_max_genes": passes["high_genes"],
            "passed": passed,
            "reason": reasons,
        },
        index=obs.index.copy(),
    )
    grouped = per_cell.groupby(["study", "technology"], sort=True)
    summary = pd.DataFrame({"n_cells": grouped.size(), "kept": grouped["passed"].sum().astype(int)})
    summary["dropped"] = summary["n_cells"] - summary["kept"]
    for r, col in zip(
        QC_REASONS, ("pass_normal", "pass_mito", "pass_min_genes", "pass_max_genes"), strict=True
    ):
        summary[f"dropped_{r}"] = grouped[col].apply(lambda s: int((~s).sum())).astype(int)
    summary["normal_samples"] = (
        per_cell[per_cell["is_normal"]].groupby(["study", "technology"])["sample"].nunique()
        .reindex(summary.index).fillna(0).astype(int)
    )
    summary["normal_filter"] = status
    summary = summary.reset_index()
    units = adata.uns.get("units")
    units = dict(units) if isinstance(units, Mapping) else {}
    summary.insert(2, "unit", [units.get(t, adata.uns.get("unit", "")) for t in summary["technology"]])
    filtered = adata[passed].copy()
    return filtered, per_cell, summary


def select_cell_types(adata: ad.AnnData, column: str, keep: Sequence[str]) -> tuple[ad.AnnData, int]:
    """Keep cells whose ``obs[column]`` is one of ``keep`` (stripped, case-insensitive); an empty
    ``keep`` keeps every cell. Returns ``(subset, n_dropped)``. A missing column is an InputError."""
    if not keep:
        return adata, 0
    if column not in adata.obs:
        raise InputError(adata.uns.get("source"), column,
                         f"cell-type column missing (have {list(adata.obs.columns)})")
    wanted = {str(k).strip().lower() for k in keep}
    mask = adata.obs[column].astype(str).str.strip().str.lower().isin(wanted).to_numpy()
    return adata[mask].copy(), int((~mask).sum())
