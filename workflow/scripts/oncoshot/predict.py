"""One-shot prediction for a user's own samples with a trained CancerSiamese model, and their
hallmark activity with the trained OncoMark model and/or OncoMark's published model (``hallmarks.scorer``).

A prediction job has a *support* matrix (one or more labelled samples per type — any type names,
including types the model never saw), a label table for it, and a *query* matrix. Pipeline::

    read_expression ─► harmonise_ids ─► to_log2_fpkm1 (the model's units) ─► align_genes
        ─► pair_logits (every query × every support, embeddings cached) ─► type_probabilities
        ─► predictions_table
    (queries) ─► hallmark_input ─► oncoshot.hallmark_model.predict_hallmarks

File conventions (nothing is guessed from the content):

* **Format** from the file name: ``.h5ad`` → AnnData; ``.tsv`` / ``.txt`` → tab-separated;
  ``.csv`` → comma-separated; each text suffix optionally followed by ``.gz`` (gzip is detected by
  content). Any other name is an error.
* **Orientation** (``orientation``): ``genes_x_samples`` — the GDC/Xena layout: the first column
  holds the gene ids (its header says anything), the other header fields are the sample ids —
  is the default for text files; ``samples_x_genes`` — first column = sample ids, header = gene
  ids — is the default for ``.h5ad`` (the AnnData convention: ``obs_names`` = samples,
  ``var_names`` = genes, values from ``X``). Either can be set explicitly for either format.
* **Gene ids** (``gene_ids``): ``ensembl`` (default; versions such as ``.12`` and the ``_PAR_Y``
  copies are handled as in the bulk branch, :func:`oncoshot.bulk.harmonise_gene_ids`) or
  ``symbol``. The Siamese models know their genes by unversioned Ensembl id (the model file's
  ``genes``); symbols are matched through the TCGA probe map (gencode v36), as the bulk branch
  attaches symbols. The hallmark model knows genes by symbol; Ensembl ids are mapped to symbols
  through the same probe map (as :mod:`bulk_hallmark_activity` does via ``var["symbol"]``).
* **Units** (``units``): ``as_is`` / ``zscore`` (:data:`AS_IS_UNITS`: values used as they are) for
  a model trained on such a cohort (config ``cohorts``, e.g. GDSC lines z-scored upstream), whose
  model file records ``unit``; otherwise one of :data:`oncoshot.bulk.UNITS` (``log2_fpkm1``, ``log2_fpkm0.001``,
  ``fpkm``, ``counts``), converted with :func:`oncoshot.bulk.to_log2_fpkm1` to log2(FPKM+1), the
  units of the harmonised, filtered bulk matrices the Siamese models are trained on. Counts become
  log2(CPM+1) with the library size summed over every gene of the file (an approximation: no gene
  lengths).

Gene alignment (:func:`align_genes`): the matrix is reindexed to the model's genes in the model's
order; a model gene absent from the file is filled with 0 (log2(FPKM+1) = 0, i.e. not expressed —
the bulk branch's convention for missing genes, which the hallmark scoring also applies before
ranking); genes of the file that the model does not use are ignored. The report gives per file the
model genes found and missing (the missing ones are listed) and the extra genes ignored. When the
fraction of model genes found is below ``min_coverage`` the job fails with an :class:`InputError`
naming the file (a low coverage usually means the wrong ``gene_ids`` or ``orientation``; the
message says so when the other axis matches better).

Scoring (:func:`pair_logits`, :func:`type_probabilities`): every support and query sample is
embedded once by the Siamese tower (:func:`oncoshot.oneshot.embed_samples`), then every
(query, support) pair is scored by the network's head from the cached embeddings in batches
(:func:`oncoshot.oneshot.score_tasks_from_embeddings`). For query *q* and a type *t* with supports
*s₁ … s_k* (k-shot, k ≥ 1, k may differ between types):

    p_t(q) = (1/k) · Σᵢ σ(logit(q, sᵢ))       — the mean Siamese same-type probability
    share_t(q) = p_t(q) / Σ_u p_u(q)           — normalised over the support's types

computed in log space (``logsumexp`` of log-sigmoids), so that tiny probabilities neither
underflow nor divide by zero. The predicted type is the argmax of ``p_t`` (the first type in sorted
order on an exact tie; ``share`` has the same argmax); ``margin`` = best ``p_t`` − second best.
``p_t`` answers "does q look like the supports of t", independently for each t: a query of a
type absent from the support should have a low ``p_t`` everywhere, whereas ``share`` always sums to
one. Optionally (``min_probability``) a query whose best ``p_t`` is below a threshold is marked
``unassigned``.

Every bad input raises :class:`InputError` naming the file, the field and the problem. Nothing
here imports Snakemake.
"""

from __future__ import annotations

import csv
import gzip
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .bulk import UNITS, BulkWarning, harmonise_gene_ids, read_sample_table, strip_version, to_log2_fpkm1
from .tables import check_file as _check_file
from .tables import examples as _examples
from .tables import is_gzip as _is_gzip
from .errors import InputError
from .experiments import load_siamese  # re-exported: predict_oneshot loads its model through it

__all__ = [
    "ORIENTATIONS",
    "GENE_ID_TYPES",
    "UNASSIGNED",
    "ExpressionSpec",
    "AS_IS_UNITS",
    "convert_units",
    "file_format",
    "read_expression",
    "harmonise_ids",
    "load_expression",
    "align_genes",
    "hallmark_input",
    "read_labels",
    "load_siamese",
    "pair_logits",
    "type_probabilities",
    "predictions_table",
    "probability_heatmap",
    "PredictionResult",
    "predict_job",
]

ORIENTATIONS = ("genes_x_samples", "samples_x_genes")
#: units meaning "use the values as they are" (no conversion; finite values required).
AS_IS_UNITS = {"as_is": "as given", "zscore": "z-score per sample (as given)"}
GENE_ID_TYPES = ("ensembl", "symbol")
#: ``assigned_type`` of a query whose best same-type probability is below ``min_probability``.
UNASSIGNED = "unassigned"
_TEXT_SEPARATORS = {".tsv": "\t", ".txt": "\t", ".csv": ","}

PathLike = str | os.PathLike


@dataclass(frozen=True)
class ExpressionSpec:
    """How to read one expression file (a job's ``support`` or ``queries`` block)."""

    path: str
    units: str = "log2_fpkm1"
    gene_ids: str = "ensembl"
    orientation: str | None = None  # None: genes_x_samples for text, samples_x_genes for .h5ad

    def __post_init__(self):
        if self.units not in UNITS and self.units not in AS_IS_UNITS:
            raise InputError(self.path, "units",
                             f"unknown units {self.units!r}; expected one of {sorted(UNITS) + sorted(AS_IS_UNITS)}")
        if self.gene_ids not in GENE_ID_TYPES:
            raise InputError(self.path, "gene_ids", f"unknown value {self.gene_ids!r}; expected one of {GENE_ID_TYPES}")
        if self.orientation is not None and self.orientation not in ORIENTATIONS:
            raise InputError(self.path, "orientation",
                             f"unknown value {self.orientation!r}; expected one of {ORIENTATIONS}")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def file_format(path: PathLike) -> tuple[str, str | None]:
    """``("h5ad", None)`` or ``("text", separator)`` from the file name (see module docstring)."""
    name = Path(path).name.lower()
    if name.endswith(".h5ad"):
        return "h5ad", None
    stem = name[:-3] if name.endswith(".gz") else name
    for suffix, sep in _TEXT_SEPARATORS.items():
        if stem.endswith(suffix):
            return "text", sep
    raise InputError(path, "file name", "unknown format: expected .h5ad, .tsv, .txt or .csv "
                     "(text files optionally gzipped, .gz)")


def _axis_names(orientation: str) -> tuple[str, str]:
    """(what the rows are, what the header columns are)."""
    return ("gene", "sample") if orientation == "genes_x_samples" else ("sample", "gene")


def _check_ids(ids: Sequence, path: PathLike, field: str, what: str, unique: bool = True) -> list[str]:
    out = ["" if (x is None or (isinstance(x, float) and np.isnan(x))) else str(x).strip() for x in ids]
    empty = [i + 1 for i, x in enumerate(out) if x == ""]
    if empty:
        raise InputError(path, field, f"empty or NA {what} id at position(s) {_examples(empty)}")
    if unique:
        dup = pd.Index(out)
        dup = sorted(set(dup[dup.duplicated()]))
        if dup:
            raise InputError(path, field, f"duplicated {what} ids: {_examples(dup, 10)}")
    return out


def _numeric(df: pd.DataFrame, path: PathLike, orientation: str) -> pd.DataFrame:
    """Every column numeric, or an error naming the first non-numeric cell."""
    row_what, col_what = _axis_names(orientation)
    for col in df.columns[[not pd.api.types.is_numeric_dtype(t) for t in df.dtypes]]:
        num = pd.to_numeric(df[col], errors="coerce")
        bad = np.flatnonzero(num.isna().to_numpy() & df[col].notna().to_numpy())
        if len(bad):
            raise InputError(path, f"{row_what} {df.index[bad[0]]!r}, {col_what} {col!r}",
                             f"non-numeric value {df[col].iloc[bad[0]]!r} ({len(bad)} such cells in this column)")
        df[col] = num
    return df.astype(np.float64)


def _read_text(path: Path, sep: str, orientation: str) -> pd.DataFrame:
    row_what, col_what = _axis_names(orientation)
    gz = _is_gzip(path)
    opener = gzip.open if gz else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            header = next(csv.reader([fh.readline().lstrip("\ufeff").rstrip("\r\n")], delimiter=sep), [])
    except (OSError, EOFError) as exc:
        raise InputError(path, None, f"cannot be read ({exc})") from exc
    if len(header) < 2:
        raise InputError(path, "header", f"expected a header line: the {row_what}-id column, then one column "
                         f"per {col_what} (separator {sep!r}); found {len(header)} field(s)")
    columns = _check_ids(header[1:], path, "header", col_what)
    try:
        df = pd.read_csv(path, sep=sep, header=None, skiprows=1, index_col=0, dtype={0: str},
                         compression="gzip" if gz else None, low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise InputError(path, "rows", "no data rows (header only)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(path, "rows", f"malformed table: {exc}") from exc
    if df.empty:
        raise InputError(path, "rows", "no data rows (header only)")
    if df.shape[1] != len(columns):
        raise InputError(path, "rows", f"the data rows have {df.shape[1] + 1} fields but the header has "
                         f"{len(header)} (separator {sep!r}); check the separator and the header")
    df.columns = columns
    df.index = pd.Index(_check_ids(df.index, path, f"first column ({row_what} ids)", row_what,
                                   unique=row_what == "sample"))
    return _numeric(df, path, orientation)


def _read_h5ad(path: Path, orientation: str) -> pd.DataFrame:
    from .io import read_h5ad

    adata = read_h5ad(path)
    X = adata.X
    if X is None:
        raise InputError(path, "X", "the AnnData has no X matrix")
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise InputError(path, "X", f"non-numeric matrix (dtype {X.dtype})")
    obs = _check_ids(adata.obs_names, path, "obs_names", "sample" if orientation == "samples_x_genes" else "gene",
                     unique=orientation == "samples_x_genes")
    var = _check_ids(adata.var_names, path, "var_names", "gene" if orientation == "samples_x_genes" else "sample",
                     unique=orientation == "genes_x_samples")
    df = pd.DataFrame(np.asarray(X, dtype=np.float64), index=obs, columns=var)
    return df.T if orientation == "samples_x_genes" else df


def read_expression(path: PathLike, orientation: str | None = None) -> pd.DataFrame:
    """Read an expression file into a float64 DataFrame **genes × samples** (ids as written; the
    gene ids are checked for duplicates by :func:`harmonise_ids`). See the module docstring for the
    format and orientation conventions. Errors name the file and the row/column."""
    path = _check_file(path)
    kind, sep = file_format(path)
    if orientation is None:
        orientation = "samples_x_genes" if kind == "h5ad" else "genes_x_samples"
    if orientation not in ORIENTATIONS:
        raise InputError(path, "orientation", f"unknown value {orientation!r}; expected one of {ORIENTATIONS}")
    df = _read_h5ad(path, orientation) if kind == "h5ad" else _read_text(path, sep, orientation)
    if orientation == "samples_x_genes" and kind == "text":
        df = df.T
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise InputError(path, None, f"empty matrix ({df.shape[0]} genes × {df.shape[1]} samples)")
    return df


def harmonise_ids(df: pd.DataFrame, source: PathLike | None, gene_ids: str = "ensembl") -> pd.DataFrame:
    """Gene ids of a genes × samples matrix ready for matching: Ensembl ids unversioned with the
    chrY PAR copies dropped where the X copy is present (:func:`oncoshot.bulk.harmonise_gene_ids`),
    symbols stripped of surrounding blanks. A gene id that occurs twice (after that) is an error:
    the rows of a user's file are not averaged behind their back."""
    if gene_ids not in GENE_ID_TYPES:
        raise InputError(source, "gene_ids", f"unknown value {gene_ids!r}; expected one of {GENE_ID_TYPES}")
    if gene_ids == "ensembl":
        out, n_par = harmonise_gene_ids(df, source, par_y="drop")
        if n_par:
            warnings.warn(f"{source}: {n_par} chrY PAR copies (_PAR_Y) dropped: their X copy is present",
                          BulkWarning, stacklevel=2)
    else:
        out = df.copy()
        out.index = pd.Index([str(g).strip() for g in df.index], name="gene_id")
    dup = out.index[out.index.duplicated()]
    if len(dup):
        what = "gene ids (after removing version suffixes)" if gene_ids == "ensembl" else "gene symbols"
        raise InputError(source, "gene ids", f"{len(set(dup))} duplicated {what}: {_examples(sorted(set(dup)))}; "
                         "keep one row per gene")
    return out


def load_expression(spec: ExpressionSpec) -> pd.DataFrame:
    """:func:`read_expression` → :func:`harmonise_ids` → :func:`oncoshot.bulk.to_log2_fpkm1`:
    a genes × samples float64 matrix in log2(FPKM+1) (log2(CPM+1) for counts)."""
    df = harmonise_ids(read_expression(spec.path, spec.orientation), spec.path, spec.gene_ids)
    conv, _ = convert_units(df, spec.units, spec.path)
    return conv


def convert_units(df: pd.DataFrame, units: str, source: PathLike | None) -> tuple[pd.DataFrame, str]:
    """``units`` in :data:`oncoshot.bulk.UNITS` → :func:`oncoshot.bulk.to_log2_fpkm1`; ``as_is`` /
    ``zscore`` → unchanged (a NaN or infinite cell is an error naming it). Returns ``(df, unit)``."""
    if units in UNITS:
        return to_log2_fpkm1(df, units, source)
    if units not in AS_IS_UNITS:
        raise InputError(source, "units", f"unknown units {units!r}; expected one of {sorted(UNITS) + sorted(AS_IS_UNITS)}")
    X = df.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(source, f"gene {df.index[i]!r}, sample {df.columns[j]!r}",
                         f"missing or infinite value ({float(X[i, j])}); {int(bad.sum())} such cells in total")
    return df.astype(np.float64), AS_IS_UNITS[units]


# ---------------------------------------------------------------------------------------------
# Gene alignment
# ---------------------------------------------------------------------------------------------
def _match_keys(model_genes: Sequence[str], gene_ids: str, symbols: pd.Series | None,
                model_gene_ids: str = "ensembl") -> pd.Index:
    """What each model gene (an Ensembl id, or a symbol for a cohort model with ``model_gene_ids``
    ``symbol``) is called in a file with ``gene_ids`` ids."""
    genes = pd.Index([str(g) for g in model_genes])
    if gene_ids == model_gene_ids:
        return genes
    if model_gene_ids == "symbol":
        raise InputError(None, "gene_ids", "the model knows its genes by symbol (a cohort with gene_ids: symbol): "
                         "give the file's genes as symbols (gene_ids: symbol)")
    if symbols is None:
        raise InputError(None, "probe map", "matching gene symbols needs the probe map (Ensembl id → symbol)")
    return pd.Index(symbols.reindex(genes).fillna("").astype(str).to_numpy())


def align_genes(expr: pd.DataFrame, model_genes: Sequence[str], *, source: PathLike | None,
                gene_ids: str = "ensembl", symbols: pd.Series | None = None,
                min_coverage: float = 0.9, role: str = "", model_gene_ids: str = "ensembl") -> tuple[np.ndarray, dict]:
    """Reindex a genes × samples matrix to ``model_genes`` (module docstring: missing → 0).

    ``symbols``: Series unversioned Ensembl id → symbol (:func:`oncoshot.sources.tcga.read_probemap`),
    needed when ``gene_ids="symbol"``. Returns ``(X float32 [n_samples, n_model_genes], report)``;
    report keys: ``file``, ``path``, ``n_model_genes``, ``n_found``, ``n_missing``, ``coverage``,
    ``n_input_genes``, ``n_extra_ignored``, ``missing`` (model genes not found, model order).
    Raises :class:`InputError` naming ``source`` when ``coverage < min_coverage``.
    """
    model_genes = [str(g) for g in model_genes]
    try:
        keys = _match_keys(model_genes, gene_ids, symbols, model_gene_ids)
    except InputError as exc:
        raise InputError(source, exc.field, exc.problem) from exc
    pos = expr.index.get_indexer(keys)
    pos[(keys == "")] = -1
    found = pos >= 0
    n_found, G = int(found.sum()), len(model_genes)
    coverage = n_found / G if G else 0.0
    used = set(pos[found].tolist())
    missing = [g for g, f in zip(model_genes, found) if not f]
    report = {"file": role, "path": str(source), "n_model_genes": G, "n_found": n_found,
              "n_missing": G - n_found, "coverage": coverage, "n_input_genes": int(expr.shape[0]),
              "n_extra_ignored": int(expr.shape[0] - len(used)), "missing": missing}
    if coverage < float(min_coverage):
        hint = ""
        cols = expr.columns.astype(str)
        if gene_ids == "ensembl":  # sample ids that are versioned Ensembl ids: a transposed file
            cols = strip_version(cols)
        n_cols = int(pd.Index(cols).isin(keys[keys != ""]).sum())
        if n_cols > n_found:
            hint = (f"; {n_cols} of the file's sample ids are model genes: is the orientation right "
                    "(genes_x_samples / samples_x_genes)?")
        else:
            other = "symbol" if gene_ids == "ensembl" else "ensembl"
            if symbols is not None and model_gene_ids == "ensembl":
                alt = _match_keys(model_genes, other, symbols)
                n_alt = int(expr.index.isin(alt[alt != ""]).sum())
                if n_alt > n_found:
                    hint = f"; {n_alt} genes match as {other} ids: set gene_ids: {other}"
        raise InputError(source, "genes", f"only {n_found} of the model's {G} genes found ({coverage:.1%}), "
                         f"below min_coverage {float(min_coverage):.0%}; missing e.g. "
                         f"{_examples(missing)}{hint}")
    X = np.zeros((expr.shape[1], G), dtype=np.float32)
    X[:, found] = expr.to_numpy(dtype=np.float32)[pos[found]].T
    return X, report


def hallmark_input(expr: pd.DataFrame, gene_ids: str, symbols: pd.Series | None) -> tuple[np.ndarray, list[str]]:
    """Samples × genes matrix and its gene symbols for :func:`oncoshot.hallmark_model.predict_hallmarks`:
    Ensembl ids become probe-map symbols (ids without a symbol get ``""`` and are ignored there)."""
    if gene_ids == "ensembl":
        if symbols is None:
            raise InputError(None, "probe map", "hallmark scoring of Ensembl ids needs the probe map")
        names = symbols.reindex(expr.index).fillna("").astype(str).tolist()
    else:
        names = [str(g) for g in expr.index]
    return expr.to_numpy(dtype=np.float64).T, names


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------
def read_labels(path: PathLike, samples: Sequence[str], *, sample_column: str = "sample_id",
                type_column: str = "type", matrix: PathLike | None = None,
                what: str = "label table") -> pd.Series:
    """Sample → type from a tab-separated table with a header (:func:`oncoshot.bulk.read_sample_table`:
    missing columns, empty ids or types and a sample listed with two types are errors naming the
    file and column). A labelled sample that is not in ``samples`` (the matrix ``matrix``) is an
    error. Returns the labels of ``samples`` that have one, in ``samples`` order (types stripped)."""
    labels = read_sample_table(path, sample_column, type_column, what=what).astype(str).str.strip()
    labels.index = labels.index.astype(str).str.strip()
    present = set(samples)
    absent = [s for s in labels.index if s not in present]
    if absent:
        raise InputError(path, f"column {sample_column!r}",
                         f"{len(absent)} sample(s) are not in the expression matrix {matrix}: {_examples(absent)}")
    labelled = set(labels.index)
    return labels.reindex([s for s in samples if s in labelled])


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------
def pair_logits(model, X_support, X_query, batch: int = 65536, embed_batch: int = 1024) -> np.ndarray:
    """Siamese logits ``[n_query, n_support]`` of every (query, support) pair: every sample embedded
    once (:func:`oncoshot.oneshot.embed_samples`), pairs scored from the cached embeddings in batches
    of ``batch`` (:func:`oncoshot.oneshot.score_tasks_from_embeddings`)."""
    from .oneshot import OneShotTasks, embed_samples, score_tasks_from_embeddings

    X_support = np.asarray(X_support, dtype=np.float32)
    X_query = np.asarray(X_query, dtype=np.float32)
    S, Q = X_support.shape[0], X_query.shape[0]
    if S == 0 or Q == 0:
        raise InputError(None, "samples", f"{S} support and {Q} query samples: need at least one of each")
    emb = embed_samples(model, np.vstack([X_support, X_query]), embed_batch)
    tasks = OneShotTasks(support=np.tile(np.arange(S, dtype=np.int64), (Q, 1)),
                         query=S + np.arange(Q, dtype=np.int64), true_pos=np.zeros(Q, dtype=np.int64))
    return score_tasks_from_embeddings(model, emb, tasks, batch)


def type_probabilities(logits, support_types: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per query and type: ``p`` = mean over the type's supports of σ(logit) and ``share`` =
    p / Σ_types p (module docstring), both computed in float64 log space.

    ``logits``: ``[n_query, n_support]``; ``support_types``: the type of each support column.
    Returns ``(p, share)``, DataFrames ``n_query × types`` with the types sorted.
    """
    from scipy.special import log_expit, logsumexp

    L = np.asarray(logits, dtype=np.float64)
    types = np.asarray([str(t) for t in support_types], dtype=object)
    if L.ndim != 2 or L.shape[1] != len(types):
        raise InputError(None, "support types", f"{len(types)} support types for a logit matrix of shape {L.shape}")
    log_p_pair = log_expit(L)
    names = sorted(set(types.tolist()))
    log_p = np.column_stack([logsumexp(log_p_pair[:, types == t], axis=1) - np.log((types == t).sum())
                             for t in names]) if names else np.zeros((L.shape[0], 0))
    share = np.exp(log_p - logsumexp(log_p, axis=1, keepdims=True))
    return pd.DataFrame(np.exp(log_p), columns=names), pd.DataFrame(share, columns=names)


def predictions_table(query_ids: Sequence[str], p: pd.DataFrame, share: pd.DataFrame,
                      true_types: pd.Series | None = None, min_probability: float | None = None) -> pd.DataFrame:
    """One row per query: ``sample_id``, ``predicted_type`` (argmax of p; first sorted type on a
    tie), ``probability`` (its p), ``margin`` (best p − second best p; NaN with one type),
    ``assigned_type`` (the predicted type, or ``unassigned`` when ``probability`` <
    ``min_probability``; the predicted type when ``min_probability`` is None), then ``p_<type>``
    and ``share_<type>`` per type, then ``true_type`` and ``correct`` when ``true_types``
    (sample → type, may miss samples) is given."""
    P = p.to_numpy(dtype=np.float64)
    types = list(p.columns)
    best = np.argmax(P, axis=1)
    rows = np.arange(len(P))
    top = P[rows, best]
    if P.shape[1] >= 2:
        second = np.sort(P, axis=1)[:, -2]
        margin = top - second
    else:
        margin = np.full(len(P), np.nan)
    predicted = np.asarray(types, dtype=object)[best]
    out = pd.DataFrame({"sample_id": [str(q) for q in query_ids], "predicted_type": predicted,
                        "probability": top, "margin": margin})
    if min_probability is None:
        out["assigned_type"] = predicted
    else:
        out["assigned_type"] = np.where(top >= float(min_probability), predicted, UNASSIGNED)
    for t in types:
        out[f"p_{t}"] = p[t].to_numpy()
    for t in types:
        out[f"share_{t}"] = share[t].to_numpy()
    if true_types is not None:
        truth = true_types.reindex(out["sample_id"]).to_numpy(dtype=object)
        out["true_type"] = truth
        has = pd.notna(truth)
        out["correct"] = pd.array(np.where(has, out["predicted_type"].to_numpy() == truth, False), dtype="boolean")
        out.loc[~has, "correct"] = pd.NA
    return out


def probability_heatmap(predictions: pd.DataFrame, title: str = "one-shot prediction"):
    """Heatmap queries × types of ``p_<type>`` (the mean same-type probability); queries ordered by
    predicted type, the predicted cell outlined; the true type (when known) in the row label."""
    from .plots import plt

    types = [c[2:] for c in predictions.columns if c.startswith("p_")]
    order = predictions.sort_values(["predicted_type", "probability"], ascending=[True, False], kind="stable")
    M = order[[f"p_{t}" for t in types]].to_numpy(dtype=float)
    labels = order["sample_id"].astype(str).tolist()
    if "true_type" in order.columns:
        labels = [f"{s} [{t}]" if pd.notna(t) else s for s, t in zip(labels, order["true_type"])]
    n_r, n_c = M.shape
    fig, ax = plt.subplots(figsize=(2.4 + 0.6 * n_c, 1.4 + 0.24 * n_r))
    im = ax.imshow(M, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(n_c), types, rotation=45, ha="right")
    ax.set_yticks(range(n_r), labels, fontsize=6 if n_r > 30 else 7)
    col = {t: j for j, t in enumerate(types)}
    for i, t in enumerate(order["predicted_type"]):
        ax.add_patch(plt.Rectangle((col[t] - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.2))
    ax.set_xlabel("support type")
    ax.set_ylabel("query" + (" [true type]" if "true_type" in order.columns else ""))
    ax.set_title(f"{title}\nmean Siamese same-type probability (red: predicted type)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, label="p(same type)")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# A whole job
# ---------------------------------------------------------------------------------------------
@dataclass
class PredictionResult:
    """Tables of one job: ``predictions`` (:func:`predictions_table`), ``hallmarks`` (queries ×
    hallmarks, ``sample_id`` first; empty without a hallmark model), ``missing`` (one row per model
    gene absent from a file: ``file``, ``path``, ``model``, ``gene_id``, ``symbol``), ``alignment``
    (one row per file and model: the counts of :func:`align_genes`), ``support_counts`` (type → k)."""

    predictions: pd.DataFrame
    hallmarks: pd.DataFrame
    missing: pd.DataFrame
    alignment: pd.DataFrame
    support_counts: pd.Series


MISSING_COLUMNS = ["file", "path", "model", "gene_id", "symbol"]
ALIGNMENT_COLUMNS = ["file", "path", "model", "n_model_genes", "n_found", "n_missing", "coverage",
                     "n_input_genes", "n_extra_ignored"]


def _missing_rows(report: dict, model: str, symbols: pd.Series | None, ids_are_symbols: bool) -> pd.DataFrame:
    genes = report["missing"]
    if ids_are_symbols:
        ids, syms = [""] * len(genes), genes
    else:
        ids = genes
        syms = symbols.reindex(genes).fillna("").tolist() if symbols is not None else [""] * len(genes)
    return pd.DataFrame({"file": report["file"], "path": report["path"], "model": model, "gene_id": ids,
                         "symbol": syms}, columns=MISSING_COLUMNS)


def predict_job(model, model_genes: Sequence[str], support: ExpressionSpec, support_labels: PathLike,
                queries: ExpressionSpec, *, symbols: pd.Series | None = None, hallmark=None,
                published=None, published_min_coverage: float | None = None,
                query_labels: PathLike | None = None, sample_column: str = "sample_id",
                type_column: str = "type", min_coverage: float = 0.9,
                min_probability: float | None = None, batch: int = 65536, log=None,
                model_gene_ids: str = "ensembl", model_unit: str | None = None) -> PredictionResult:
    """Run one prediction job (module docstring) with a loaded Siamese ``model`` whose input genes
    are ``model_genes``; ``hallmark`` = ``(HallmarkMTL, Preprocessor)`` or None (no trained-model
    columns); ``published`` = :class:`oncoshot.sources.oncomark.PublishedOncoMark` or None (no
    ``published_<hallmark>`` columns; a query file covering less than ``published_min_coverage`` of
    its 9,326 genes is an error naming the file).
    ``log(msg)`` receives progress lines. Support samples without a label are left out with a
    warning; fewer than 2 labelled types is an error naming the label table."""
    say = log or (lambda msg: None)
    expr, X, reports = {}, {}, []
    as_is_model = model_unit in AS_IS_UNITS.values()
    for role, spec in (("support", support), ("queries", queries)):
        if (spec.units in AS_IS_UNITS) != as_is_model:
            raise InputError(spec.path, "units", f"units {spec.units!r} do not fit the model, trained on values in "
                             f"{model_unit or 'log2(FPKM+1)'}: give "
                             + ("as_is / zscore values prepared as the model's cohort was" if as_is_model
                                else f"one of {sorted(UNITS)}"))
        expr[role] = load_expression(spec)
        X[role], rep = align_genes(expr[role], model_genes, source=spec.path, gene_ids=spec.gene_ids,
                                   symbols=symbols, min_coverage=min_coverage, role=role,
                                   model_gene_ids=model_gene_ids)
        reports.append((rep, "siamese", False))
        say(f"{role} {spec.path}: {expr[role].shape[1]} samples; {rep['n_found']} of {rep['n_model_genes']} "
            f"Siamese model genes found ({rep['coverage']:.1%}), {rep['n_missing']} missing (filled with 0), "
            f"{rep['n_extra_ignored']} extra genes ignored; units {spec.units}")
    support_ids = list(expr["support"].columns)
    labels = read_labels(support_labels, support_ids, sample_column=sample_column, type_column=type_column,
                         matrix=support.path, what="support label table")
    labelled = set(labels.index)
    unlabelled = [s for s in support_ids if s not in labelled]
    if unlabelled:
        warnings.warn(f"{support_labels}: {len(unlabelled)} support sample(s) of {support.path} have no label and "
                      f"are not used: {_examples(unlabelled)}", BulkWarning, stacklevel=2)
    counts = labels.value_counts().sort_index()
    if len(counts) < 2:
        raise InputError(support_labels, f"column {type_column!r}",
                         f"{len(counts)} type(s) among the support samples; one-shot typing needs at least 2")
    say("support: " + ", ".join(f"{t} (k={k})" for t, k in counts.items()))
    position = {s: i for i, s in enumerate(support_ids)}
    rows = [position[s] for s in labels.index]
    logits = pair_logits(model, X["support"][rows], X["queries"], batch=batch)
    p, share = type_probabilities(logits, labels.to_numpy())
    query_ids = list(expr["queries"].columns)
    truth = None
    if query_labels is not None:
        truth = read_labels(query_labels, query_ids, sample_column=sample_column, type_column=type_column,
                            matrix=queries.path, what="query label table")
    table = predictions_table(query_ids, p, share, truth, min_probability)
    if truth is not None:
        known = table["correct"].notna() & table["true_type"].isin(list(counts.index))
        if known.any():
            say(f"queries of a support type: {int(table.loc[known, 'correct'].sum())} of {int(known.sum())} "
                "predicted correctly")

    hallmarks = pd.DataFrame({"sample_id": query_ids})
    if hallmark is not None:
        from .hallmark_model import predict_hallmarks

        hm_model, pre = hallmark
        Xh, names = hallmark_input(expr["queries"], queries.gene_ids, symbols)
        probs = predict_hallmarks(hm_model, pre, Xh, names, samples=query_ids)
        hrep = probs.attrs.get("report", {})
        n_model = len(pre.genes_)
        rep = {"file": "queries", "path": str(queries.path), "n_model_genes": n_model,
               "n_found": n_model - int(hrep.get("n_missing", 0)), "n_missing": int(hrep.get("n_missing", 0)),
               "coverage": (n_model - int(hrep.get("n_missing", 0))) / n_model if n_model else 0.0,
               "n_input_genes": int(expr["queries"].shape[0]),
               "n_extra_ignored": int(hrep.get("n_unused_input_genes", 0)), "missing": list(hrep.get("missing_genes", []))}
        reports.append((rep, "hallmark", True))
        say(f"hallmarks: {rep['n_found']} of {n_model} hallmark model genes found by symbol "
            f"({rep['coverage']:.1%}); missing ones filled with 0 before ranking")
        hallmarks = pd.concat([hallmarks, probs.reset_index(drop=True)], axis=1)
    if published is not None:
        from .sources.oncomark import predict_published, published_column

        Xh, names = hallmark_input(expr["queries"], queries.gene_ids, symbols)
        probs = predict_published(published, Xh, names, samples=query_ids, min_coverage=published_min_coverage,
                                  source=queries.path)
        prep = probs.attrs["report"]
        rep = {"file": "queries", "path": str(queries.path), "n_model_genes": prep["n_features"],
               "n_found": prep["n_found"], "n_missing": prep["n_missing"], "coverage": prep["coverage"],
               "n_input_genes": int(expr["queries"].shape[0]), "n_extra_ignored": prep["n_unused_input_genes"],
               "missing": list(prep["missing_genes"])}
        reports.append((rep, "published", True))
        say(f"hallmarks, published OncoMark model: {rep['n_found']} of {rep['n_model_genes']} genes found by "
            f"symbol ({rep['coverage']:.1%}); missing ones filled with 0 before ranking; "
            f"{prep['n_duplicate_columns_dropped']} columns of duplicated symbols dropped (the first is kept)")
        hallmarks = pd.concat([hallmarks, probs.reset_index(drop=True).rename(columns=published_column)], axis=1)
    missing = pd.concat([_missing_rows(r, m, symbols, sym) for r, m, sym in reports], ignore_index=True)
    alignment = pd.DataFrame([{**{k: r[k] for k in ALIGNMENT_COLUMNS if k != "model"}, "model": m}
                              for r, m, _ in reports], columns=ALIGNMENT_COLUMNS)
    return PredictionResult(table, hallmarks, missing, alignment, counts)
