"""Readers for published example data that are not 3CA study folders, and an Ensembl → symbol table.

Two tumour single-cell sets ship with well-known packages (see ``../shared/real/PROVENANCE.md``):

* **copykat** (Gao et al. 2021) breast tumour, 10x: a genes × cells UMI matrix (tab-separated, empty
  first header field, gene symbols as row names) and copykat's per-cell call table
  (``cell.names``, ``copykat.pred``: ``aneuploid`` = malignant, ``diploid`` = non-malignant,
  ``not.defined`` = no call) — :func:`read_copykat`;
* **inferCNV**'s oligodendroglioma example (Tirosh et al. 2016), Smart-seq2: a genes × cells
  TPM-like matrix written by R (the header holds only the cell names) and a header-less two-column
  annotation file (cell, label); labels ``malignant_<tumour>`` are malignant cells of that tumour,
  every other label (``Microglia/Macrophage``, ``Oligodendrocytes (non-malignant)``) is a
  non-malignant cell type — :func:`read_infercnv`.

Both readers return the AnnData layout of :func:`oncoshot.sources.threeca.read_study` (cells × genes CSR
float32; ``obs`` indexed by cell name with ``sample``, ``cell_type``, ``study``, ``tissue`` and the
source's own label column; ``var`` indexed by symbol, duplicated symbols summed with a warning;
``uns``: ``unit``, ``study``, ``tissue``, ``source``, ``n_duplicated_genes``), so the rest of the
single-cell branch (QC, UCell, Otsu, synthetic bulk) applies unchanged. Malignant cells have
``cell_type == "Malignant"``; ``malignant_only=True`` (the default, SPEC: malignant cells only) keeps
just those. A cell of the matrix without an annotation, an annotated cell missing from the matrix, an
unknown label, a missing / negative / non-finite value: :class:`~oncoshot.errors.InputError` naming
the file, the field and the problem.

:func:`ensembl_symbol_map` reads the Ensembl gene id → HGNC symbol table bundled (``data.csv``:
``ENSEMBL_ID``, ``GENE_TYPE``, ``HGNC_ID``) in the PyPI package ``pygeneconverter`` (0.3), as a plain
CSV (no code of the package is called); the result can be given to
:func:`oncoshot.sources.tcga.harmonise_tcga` as its ``probemap``.
"""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import bulk
from .tables import check_file
from .errors import InputError
from .singlecell import select_cell_types, sum_duplicated_genes

__all__ = [
    "MALIGNANT",
    "COPYKAT_CELL_TYPES",
    "read_copykat",
    "read_infercnv_annotations",
    "read_infercnv",
    "ensembl_symbol_map",
]

MALIGNANT = "Malignant"
#: copykat call -> cell type
COPYKAT_CELL_TYPES = {"aneuploid": MALIGNANT, "diploid": "Non-malignant", "not.defined": "Undefined"}
PathLike = str | os.PathLike


def _examples(items, k: int = 3) -> str:
    items = list(items)
    shown = ", ".join(repr(str(i)) for i in items[:k])
    return shown + (f" … ({len(items)} in all)" if len(items) > k else "")


def _expression(path: Path, header_has_id_column: bool) -> tuple[sp.csr_matrix, list[str], list[str], int]:
    """(cells × genes CSR float32, gene symbols, cell names, number of duplicated symbols) of a
    genes × cells tab-separated matrix read with :func:`oncoshot.bulk.read_matrix`."""
    df = bulk.read_matrix(path, header_has_id_column=header_has_id_column)
    values = df.to_numpy(dtype=np.float64)
    for bad, problem in ((np.isnan(values), "missing value"), (np.isinf(values), "non-finite value"),
                         (values < 0, "negative value; expression must be ≥ 0")):
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InputError(path, f"row {df.index[i]!r}, column {df.columns[j]!r}",
                             f"{problem} ({int(bad.sum())} such cell(s))")
    X = sp.csr_matrix(values.T.astype(np.float32))
    X.eliminate_zeros()
    X, genes, n_dup = sum_duplicated_genes(X, [str(g) for g in df.index], path)
    return X, genes, [str(c) for c in df.columns], n_dup


def _match_cells(cells: list[str], labels: pd.Series, matrix: Path, table: Path) -> pd.Series:
    """Labels in the matrix's cell order; every cell must be labelled and every label's cell present."""
    unlabelled = [c for c in cells if c not in labels.index]
    if unlabelled:
        raise InputError(table, "cells", f"{len(unlabelled)} cell(s) of {matrix.name} have no annotation, "
                         f"e.g. {_examples(unlabelled)}")
    absent = sorted(set(labels.index) - set(cells))
    if absent:
        raise InputError(matrix, "header (cell names)", f"{len(absent)} cell(s) annotated in {table.name} are "
                         f"not in the matrix, e.g. {_examples(absent)}")
    return labels.reindex(cells)


def _anndata(X, genes, cells, obs: pd.DataFrame, unit: str, study: str, tissue: str, source: Path,
             n_dup: int, malignant_only: bool) -> ad.AnnData:
    obs = obs.copy()
    obs.index = pd.Index(cells, dtype=object)
    obs["study"] = study
    obs["tissue"] = tissue
    for col in obs.columns:
        obs[col] = obs[col].astype(object)
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes, dtype=object)))
    adata.uns.update({"unit": unit, "study": study, "tissue": tissue, "source": str(source),
                      "n_duplicated_genes": int(n_dup)})
    if malignant_only:
        adata, _ = select_cell_types(adata, "cell_type", [MALIGNANT])
    return adata


def read_copykat(matrix: PathLike, predictions: PathLike, study: str = "Gao2021_Breast",
                 tissue: str = "Breast", sample: str | None = None, malignant_only: bool = True) -> ad.AnnData:
    """copykat's breast tumour: UMI matrix (genes × cells) + ``cell.names`` / ``copykat.pred`` calls.

    One tumour: every cell's ``sample`` is ``sample`` (default: ``study``). ``obs`` columns
    ``sample``, ``cell_type`` (:data:`COPYKAT_CELL_TYPES`), ``copykat_pred``, ``study``, ``tissue``;
    ``uns["unit"] = "UMI"``. ``malignant_only``: aneuploid cells only.
    """
    matrix, predictions = check_file(matrix), check_file(predictions)
    calls = bulk.read_sample_table(predictions, "cell.names", "copykat.pred", what="copykat prediction table")
    calls = calls.astype(str).str.strip()
    unknown = sorted(set(calls) - set(COPYKAT_CELL_TYPES))
    if unknown:
        raise InputError(predictions, "column 'copykat.pred'", f"unknown call(s) {_examples(unknown)}; "
                         f"expected one of {sorted(COPYKAT_CELL_TYPES)}")
    X, genes, cells, n_dup = _expression(matrix, header_has_id_column=True)
    calls = _match_cells(cells, calls, matrix, predictions)
    obs = pd.DataFrame({"sample": sample or study, "cell_type": calls.map(COPYKAT_CELL_TYPES).to_numpy(),
                        "copykat_pred": calls.to_numpy()})
    return _anndata(X, genes, cells, obs, "UMI", study, tissue, matrix, n_dup, malignant_only)


def read_infercnv_annotations(path: PathLike) -> pd.Series:
    """inferCNV annotation file (header-less, tab-separated: cell name, label) → Series cell → label.

    Raises :class:`InputError` for a missing or empty file, a line without exactly two fields, an
    empty cell name or label, and a cell listed twice.
    """
    path = check_file(path)
    cells, labels = [], []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = [f.strip() for f in line.split("\t")]
            if len(fields) != 2:
                raise InputError(path, f"line {lineno}", f"{len(fields)} tab-separated field(s), expected 2 "
                                 "(cell name, label)")
            if not fields[0] or not fields[1]:
                raise InputError(path, f"line {lineno}", "empty cell name or label")
            cells.append(fields[0])
            labels.append(fields[1])
    if not cells:
        raise InputError(path, None, "no annotation lines")
    index = pd.Index(cells, dtype=object)
    dup = sorted(set(index[index.duplicated()]))
    if dup:
        raise InputError(path, "cell names", f"{len(dup)} cell(s) annotated more than once, e.g. {_examples(dup)}")
    return pd.Series(labels, index=index, name="annotation", dtype=object)


def read_infercnv(matrix: PathLike, annotations: PathLike, study: str = "Tirosh2016_Oligodendroglioma",
                  tissue: str = "Brain", malignant_prefix: str = "malignant_", unit: str = "TPM",
                  malignant_only: bool = True) -> ad.AnnData:
    """inferCNV's example tumour: R-written genes × cells matrix + header-less annotations.

    A label ``<malignant_prefix><tumour>`` makes the cell ``Malignant`` with ``sample = <tumour>``;
    any other label is the cell type of a non-malignant cell whose ``sample`` is its cell-name prefix
    (text before the first ``_``; inferCNV's cell names carry the patient). ``obs`` columns ``sample``,
    ``cell_type``, ``annotation`` (the label as written), ``study``, ``tissue``.
    """
    matrix, annotations = check_file(matrix), check_file(annotations)
    labels = read_infercnv_annotations(annotations)
    X, genes, cells, n_dup = _expression(matrix, header_has_id_column=False)
    labels = _match_cells(cells, labels, matrix, annotations)
    malignant = labels.str.startswith(malignant_prefix).to_numpy()
    tumour = labels.str.slice(len(malignant_prefix)).to_numpy()
    if (malignant & (tumour == "")).any():
        raise InputError(annotations, "labels", f"label {malignant_prefix!r} names no tumour")
    prefix = pd.Series(cells).str.split("_", n=1).str[0].to_numpy()
    obs = pd.DataFrame({"sample": np.where(malignant, tumour, prefix),
                        "cell_type": np.where(malignant, MALIGNANT, labels.to_numpy()),
                        "annotation": labels.to_numpy()})
    return _anndata(X, genes, cells, obs, unit, study, tissue, matrix, n_dup, malignant_only)


def ensembl_symbol_map(path: PathLike | None = None) -> pd.Series:
    """Unversioned Ensembl gene id → HGNC symbol (Series named ``symbol``, index ``gene_id``).

    ``path``: a CSV with columns ``ENSEMBL_ID`` and ``HGNC_ID`` (``GENE_TYPE`` ignored); default: the
    ``data.csv`` bundled in ``pygeneconverter`` 0.3 (``pip install pygeneconverter==0.3``, listed in
    ``requirements-dev.txt``), found with :mod:`importlib.resources`. Version suffixes are stripped,
    rows with an empty id or symbol dropped; an id listed twice keeps its first symbol. Several ids
    may share a symbol (e.g. ``5S_rRNA``): callers decide how to combine them.
    """
    if path is None:
        import importlib.resources

        try:
            path = importlib.resources.files("pygeneconverter") / "data.csv"
        except ModuleNotFoundError:
            raise InputError(None, "pygeneconverter", "package not installed (pip install "
                             "pygeneconverter==0.3, see requirements-dev.txt)") from None
    path = check_file(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot parse the gene table CSV: {exc}") from None
    missing = [c for c in ("ENSEMBL_ID", "HGNC_ID") if c not in table.columns]
    if missing:
        raise InputError(path, "header", f"missing column(s) {missing} (found {list(table.columns)})")
    table = table.dropna(subset=["ENSEMBL_ID", "HGNC_ID"])
    ids = bulk.strip_version(table["ENSEMBL_ID"].str.strip().to_numpy())
    out = pd.Series(table["HGNC_ID"].str.strip().to_numpy(dtype=object), name="symbol",
                    index=pd.Index(ids, name="gene_id"))
    if out.empty:
        raise InputError(path, "rows", "no Ensembl id with a symbol")
    return out[~out.index.duplicated(keep="first")]
