"""Single-cell input (SPEC §3.1) and quality control (SPEC §3.2).

A 3CA study folder ``Data_<Author><Year>_<Tissue>/`` holds

* ``Exp_data_UMIcounts.mtx`` (or ``Exp_data_TPM.mtx`` for full-length protocols; ``.mtx.gz``
  accepted too): genes × cells Matrix Market;
* ``Cells.csv``: one row per cell, columns ``cell_name``, ``sample``, ``cell_type`` and any
  others (kept);
* ``Genes.txt``: one gene symbol a line, no header;
* optionally ``Samples.csv``: one row per sample (``sample`` plus e.g. ``patient``,
  ``sample_type``), merged into the cell table by ``sample``.

:func:`read_study` returns a cells × genes AnnData (CSR float32); :func:`qc_cells` applies the
OncoMark QC. Every bad input raises :class:`oncoshot.errors.InputError` naming the file, the
field and the problem; recoverable oddities warn with :class:`SingleCellWarning`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from oncoshot.errors import InputError

__all__ = [
    "SingleCellWarning",
    "EXPRESSION_FILES",
    "REQUIRED_CELL_COLUMNS",
    "QC_REASONS",
    "parse_study_folder",
    "read_study",
    "mito_mask",
    "qc_cells",
]

#: accepted expression files, in order of preference, with the unit they record
EXPRESSION_FILES = (
    ("Exp_data_UMIcounts.mtx", "UMI"),
    ("Exp_data_UMIcounts.mtx.gz", "UMI"),
    ("Exp_data_TPM.mtx", "TPM"),
    ("Exp_data_TPM.mtx.gz", "TPM"),
)
REQUIRED_CELL_COLUMNS = ("cell_name", "sample", "cell_type")
#: QC reasons in the order they are reported (a cell may fail several)
QC_REASONS = ("normal_sample", "high_mito", "low_genes", "high_genes")


class SingleCellWarning(UserWarning):
    """Recoverable oddities of single-cell input (duplicated gene symbols, unmatched samples)."""


def _warn(message: str) -> None:
    warnings.warn(message, SingleCellWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------


def parse_study_folder(folder: str | os.PathLike) -> tuple[str, str]:
    """``(study, tissue)`` from a folder name ``Data_<Author><Year>_<Tissue>``.

    The study is the name without its ``Data_`` prefix (``"Kim2020_Lung"``: unique even when one
    paper ships several tissues); the tissue is the text after the last ``_``. A name without
    ``_`` gives the whole name for both.
    """
    name = Path(folder).name
    study = name[5:] if name.startswith("Data_") and len(name) > 5 else name
    tissue = study.rsplit("_", 1)[-1] if "_" in study else study
    return study, tissue


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise InputError(path, None, f"{what} file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot parse {what} CSV: {exc}") from None
    table.columns = [str(c).strip() for c in table.columns]
    return table


def _sum_duplicated_genes(X: sp.csr_matrix, genes: list[str], path: Path):
    """Sum columns that share a symbol (first occurrence order); warns with the counts."""
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


def read_study(
    folder: str | os.PathLike, tissue: str | None = None, study: str | None = None
) -> ad.AnnData:
    """Read one 3CA study folder into a cells × genes AnnData.

    Parameters
    ----------
    folder
        ``Data_<Author><Year>_<Tissue>/``.
    tissue, study
        Override the values parsed from the folder name (:func:`parse_study_folder`).

    Returns
    -------
    AnnData with ``X`` scipy CSR float32 (cells × genes); ``obs`` indexed by ``cell_name`` with
    every column of ``Cells.csv`` (as strings), the columns of ``Samples.csv`` not already in
    ``Cells.csv`` (merged by ``sample``), and ``study`` and ``tissue``; ``var`` indexed by
    gene symbol (duplicated symbols summed into one column, with a :class:`SingleCellWarning`);
    ``study`` / ``tissue`` columns of ``Cells.csv``, if any, are overwritten;
    ``uns``: ``unit`` ("UMI" or "TPM"), ``study``, ``tissue``, ``source`` (the expression file),
    ``n_duplicated_genes``.

    Raises
    ------
    InputError
        missing folder / files, mtx rows ≠ number of genes, mtx columns ≠ number of cells,
        duplicated or empty cell names, missing required columns, duplicated samples in
        ``Samples.csv``, negative or non-finite values, an unreadable mtx.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, None, "study folder not found")
    parsed_study, parsed_tissue = parse_study_folder(folder)
    study = parsed_study if study is None else str(study)
    tissue = parsed_tissue if tissue is None else str(tissue)

    mtx_path, unit = None, None
    for name, u in EXPRESSION_FILES:
        if (folder / name).is_file():
            mtx_path, unit = folder / name, u
            break
    if mtx_path is None:
        raise InputError(
            folder, "Exp_data_UMIcounts.mtx", "expression matrix not found (nor Exp_data_TPM.mtx)"
        )
    cells_path = folder / "Cells.csv"
    genes_path = folder / "Genes.txt"
    for path in (cells_path, genes_path):
        if not path.is_file():
            raise InputError(path, None, "file not found")

    # genes
    with open(genes_path, encoding="utf-8") as handle:
        genes = [line.strip() for line in handle.read().splitlines()]
    while genes and not genes[-1]:
        genes.pop()
    empty = [i + 1 for i, g in enumerate(genes) if not g]
    if empty:
        raise InputError(genes_path, f"line {empty[0]}", f"{len(empty)} empty gene symbol(s)")
    if not genes:
        raise InputError(genes_path, None, "no gene symbols")

    # cells
    cells = _read_csv(cells_path, "cell")
    missing = [c for c in REQUIRED_CELL_COLUMNS if c not in cells.columns]
    if missing:
        raise InputError(cells_path, "header", f"missing required column(s) {missing}")
    names = cells["cell_name"]
    if names.isna().any():
        row = int(np.flatnonzero(names.isna().to_numpy())[0]) + 2
        raise InputError(cells_path, f"cell_name (line {row})", "empty cell name")
    names = names.str.strip()
    dup = names[names.duplicated()]
    if len(dup):
        raise InputError(
            cells_path, "cell_name", f"{dup.nunique()} duplicated cell name(s), e.g. {dup.iloc[0]!r}"
        )
    if cells["sample"].isna().any():
        row = int(np.flatnonzero(cells["sample"].isna().to_numpy())[0]) + 2
        raise InputError(cells_path, f"sample (line {row})", "empty sample")
    cells["cell_name"] = names
    cells["sample"] = cells["sample"].str.strip()

    # matrix: check the header before reading the body
    try:
        n_rows, n_cols, _, _, field, _ = scipy.io.mminfo(mtx_path)
    except (ValueError, OSError) as exc:
        raise InputError(mtx_path, "header", f"not a Matrix Market file: {exc}") from None
    if n_rows != len(genes):
        raise InputError(
            mtx_path, "rows", f"{n_rows} rows but {len(genes)} genes in {genes_path.name}"
        )
    if n_cols != len(cells):
        raise InputError(
            mtx_path, "columns", f"{n_cols} columns but {len(cells)} cells in {cells_path.name}"
        )
    if field == "complex":
        raise InputError(mtx_path, "header", "complex values are not expression values")
    try:
        M = scipy.io.mmread(mtx_path)
    except (ValueError, OSError) as exc:
        raise InputError(mtx_path, None, f"cannot read Matrix Market body: {exc}") from None
    X = sp.csr_matrix(sp.coo_matrix(M).T, dtype=np.float32)
    X.sum_duplicates()
    if X.nnz:
        if not np.isfinite(X.data).all():
            raise InputError(mtx_path, "values", f"{int((~np.isfinite(X.data)).sum())} non-finite value(s)")
        if X.data.min() < 0:
            n_neg = int((X.data < 0).sum())
            raise InputError(mtx_path, "values", f"{n_neg} negative value(s); expression must be ≥ 0")
    X.eliminate_zeros()

    X, genes, n_dup = _sum_duplicated_genes(X, genes, genes_path)

    # samples
    obs = cells.set_index("cell_name", drop=True)
    obs.index.name = None
    samples_path = folder / "Samples.csv"
    if samples_path.is_file():
        samples = _read_csv(samples_path, "sample")
        if "sample" not in samples.columns:
            raise InputError(samples_path, "header", "missing required column ['sample']")
        samples["sample"] = samples["sample"].astype(str).str.strip()
        dup_s = samples["sample"][samples["sample"].duplicated()]
        if len(dup_s):
            raise InputError(
                samples_path, "sample", f"{dup_s.nunique()} duplicated sample(s), e.g. {dup_s.iloc[0]!r}"
            )
        extra = [c for c in samples.columns if c != "sample" and c not in obs.columns]
        unmatched = sorted(set(obs["sample"]) - set(samples["sample"]))
        if unmatched:
            _warn(
                f"{samples_path}: {len(unmatched)} sample(s) of Cells.csv not listed "
                f"(their sample columns are empty), e.g. {unmatched[0]!r}"
            )
        if extra:
            table = samples.set_index("sample")[extra]
            merged = table.reindex(obs["sample"].to_numpy())
            merged.index = obs.index
            obs = pd.concat([obs, merged], axis=1)
    obs["study"] = study
    obs["tissue"] = tissue
    for col in obs.columns:
        obs[col] = obs[col].astype(object)

    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes, dtype=object)))
    adata.uns["unit"] = unit
    adata.uns["study"] = study
    adata.uns["tissue"] = tissue
    adata.uns["source"] = str(mtx_path)
    adata.uns["n_duplicated_genes"] = int(n_dup)
    return adata


# ---------------------------------------------------------------------------------------------
# quality control
# ---------------------------------------------------------------------------------------------


def mito_mask(genes: Sequence[str]) -> np.ndarray:
    """Boolean mask of mitochondrial genes: symbols starting ``MT-`` (case-insensitive)."""
    return np.array([str(g).upper().startswith("MT-") for g in genes], dtype=bool)


def qc_cells(
    adata: ad.AnnData,
    max_mito_fraction: float = 0.15,
    min_genes: int = 200,
    max_genes: int = 6000,
    normal_column: str | None = "sample_type",
    normal_values: Sequence[str] = ("normal",),
) -> tuple[ad.AnnData, pd.DataFrame, pd.DataFrame]:
    """OncoMark QC (SPEC §3.2): keep a cell when all of

    * its sample is not normal: ``obs[normal_column]`` (when the column exists) is not one of
      ``normal_values`` (compared stripped and case-insensitively; missing values are kept);
    * mitochondrial fraction = counts of ``MT-*`` genes / total counts ≤ ``max_mito_fraction``
      (a cell with zero total counts has fraction 0 and fails ``min_genes``);
    * detected genes (values > 0) ≥ ``min_genes`` and ≤ ``max_genes``.

    Returns
    -------
    filtered : AnnData, the kept cells (a copy, same genes).
    per_cell : DataFrame indexed like ``adata.obs``: ``study``, ``sample``, ``n_counts``,
        ``n_genes``, ``mito_fraction``, ``is_normal``, ``pass_normal``, ``pass_mito``,
        ``pass_min_genes``, ``pass_max_genes``, ``passed``, ``reason`` (failed criteria
        joined with ``;`` in the order of :data:`QC_REASONS`, ``""`` when kept).
    summary : DataFrame, one row per study: ``study``, ``n_cells``, ``kept``, ``dropped``, and
        ``dropped_<reason>`` for each reason: cells failing that criterion (a cell failing two
        counts in both, so these may add up to more than ``dropped``).
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
    if normal_column is not None and normal_column in obs.columns:
        wanted = {str(v).strip().lower() for v in normal_values}
        col = obs[normal_column]
        is_normal = (col.notna() & col.astype(str).str.strip().str.lower().isin(wanted)).to_numpy()
    else:
        is_normal = np.zeros(n_cells, dtype=bool)

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

    study = obs["study"].astype(str).to_numpy() if "study" in obs.columns else np.full(n_cells, "")
    sample = obs["sample"].astype(str).to_numpy() if "sample" in obs.columns else np.full(n_cells, "")
    per_cell = pd.DataFrame(
        {
            "study": study,
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
    grouped = per_cell.groupby("study", sort=True)
    summary = pd.DataFrame(
        {
            "n_cells": grouped.size(),
            "kept": grouped["passed"].sum().astype(int),
        }
    )
    summary["dropped"] = summary["n_cells"] - summary["kept"]
    for r, col in zip(
        QC_REASONS, ("pass_normal", "pass_mito", "pass_min_genes", "pass_max_genes"), strict=True
    ):
        summary[f"dropped_{r}"] = grouped[col].apply(lambda s: int((~s).sum())).astype(int)
    summary = summary.reset_index()
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
