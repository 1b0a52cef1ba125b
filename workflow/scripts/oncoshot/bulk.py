"""Bulk preprocessing shared by the sources (SPEC §1): matrices, gene ids, units, gene filter,
label merge, type splits and the patient report.

The readers of each real source live in :mod:`oncoshot.sources` (:mod:`~oncoshot.sources.tcga`:
GDC-hub matrices, clinical tables, probe map, barcodes and patients;
:mod:`~oncoshot.sources.met500`: matrix, metadata, patients and libraries). They share, from here::

    read_matrix ─► PAR_Y handling + strip_version ─► collapse_duplicates   (read_prepared)
               ─► align gene sets ─► to_log2_fpkm1 ─► AnnData (samples × genes, float32; build_adata)

then, over the cohorts, :func:`filter_genes` (mean-and-std filter + intersection),
:func:`merge_labels` (label table, MISC/SCER dropped), :func:`split_types` (training / test
type sets and the sample splits of every experiment, made by patient) and :func:`patient_report`.

Every bad input raises :class:`oncoshot.errors.InputError` whose message names the file (or the
object), the field (row, column, gene, sample) and the problem. Recoverable oddities (duplicated
gene ids, samples dropped, unknown labels, small types dropped) are reported with
:func:`warnings.warn` (category :class:`BulkWarning`, a :class:`UserWarning`), whose message
names the file or object and the count. Nothing here imports Snakemake.
"""

from __future__ import annotations

import os
import re
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from oncoshot.errors import InputError
from oncoshot.tables import check_file as _check_file
from oncoshot.tables import examples as _examples
from oncoshot.tables import is_gzip as _is_gzip
from oncoshot.tables import open_binary as _open_binary
from oncoshot.tables import read_table as _read_table
from oncoshot.tables import require_columns as _require_columns
from oncoshot.tables import unquote as _unquote

__all__ = [
    "BulkWarning",
    "PathLike",
    "UNITS",
    "warn",
    "read_matrix",
    "strip_version",
    "is_par_y",
    "harmonise_gene_ids",
    "collapse_duplicates",
    "to_log2_fpkm1",
    "read_sample_table",
    "symbols_of",
    "read_prepared",
    "build_adata",
    "gene_filter_mask",
    "filter_genes",
    "read_label_map",
    "merge_labels",
    "split_types",
    "PATIENT_REPORT_COLUMNS",
    "patient_report",
]

PathLike = str | os.PathLike


class BulkWarning(UserWarning):
    """Warning category of this module (duplicates averaged, samples dropped, unknown labels…)."""


#: accepted input units → the unit recorded after :func:`to_log2_fpkm1`.
UNITS: dict[str, str] = {
    "log2_fpkm1": "log2(FPKM+1)",
    "log2_fpkm0.001": "log2(FPKM+1)",
    "fpkm": "log2(FPKM+1)",
    "counts": "log2(CPM+1)",
}

#: log2(0.001), the floor of a log2(FPKM+0.001) matrix.
LOG2_0001 = float(np.log2(0.001))
#: values of a log2(FPKM+0.001) matrix down to ``LOG2_0001 - LOG2_0001_TOLERANCE`` are taken as
#: rounding of log2(0 + 0.001) and become 0; lower values mean a negative FPKM (an error).
LOG2_0001_TOLERANCE = 0.05

_VERSION = re.compile(r"\.\d+$")
_PAR_Y = "_PAR_Y"
_ENSGR = re.compile(r"^ENSGR(\d+)")


def warn(message: str) -> None:
    """Emit a :class:`BulkWarning` (shared by the source readers of :mod:`oncoshot.sources`)."""
    warnings.warn(message, BulkWarning, stacklevel=3)


_warn = warn


def read_matrix(path: PathLike, header_has_id_column: bool = True) -> pd.DataFrame:
    """Read a genes × samples tab-separated matrix (gzip detected by content, or plain text).

    The first header field names the gene-id column whatever it says (``Ensembl_ID``,
    ``sample``, or empty as in the RNAsum files); the other header fields are the sample ids.
    With ``header_has_id_column=False`` (R ``write.table`` style, e.g. inferCNV's example
    matrices) every header field is a sample id and the data rows have one field more.
    Cells ``""``, ``NA``, ``NaN``, ``nan`` … are read as NaN (reported later by
    :func:`to_log2_fpkm1`); blank lines are skipped.

    Returns a float64 DataFrame, index = gene ids as written (name ``gene_id``), columns =
    sample ids in file order.

    Raises :class:`InputError` for: a missing/empty file, a header without sample columns, an
    empty or duplicated sample id (all duplicates are named), a row whose number of fields
    differs from the header's (ragged; names the line and gene), an empty gene id, a file with
    no data row, and a non-numeric cell (names the gene id and the sample column).
    """
    path = _check_file(path)
    gz = _is_gzip(path)
    # Pass 1 (streamed): header, field counts and gene ids. pandas cannot be trusted for this:
    # it pads short rows with NaN and silently turns an over-long first row into an index.
    with _open_binary(path) as fh:
        try:
            header = fh.readline()
        except (OSError, EOFError) as exc:
            raise InputError(path, None, f"cannot be read ({exc})") from exc
        if not header.strip():
            raise InputError(path, "header", "empty file (no header line)")
        text = header.rstrip(b"\r\n").decode("utf-8", "replace").lstrip("\ufeff")
        fields = [_unquote(f) for f in text.split("\t")]
        if not header_has_id_column:
            fields = [""] + fields
        n_fields = len(fields)
        samples = fields[1:]
        if not samples:
            raise InputError(path, "header", "no sample columns (expected a tab-separated header: "
                             "gene-id column, then one column per sample)")
        empty = [i + 2 for i, s in enumerate(samples) if s == ""]
        if empty:
            raise InputError(path, f"header column(s) {_examples(empty)}", "empty sample id")
        dup = pd.Index(samples)
        dup = sorted(set(dup[dup.duplicated()]))
        if dup:
            raise InputError(path, "header (sample ids)", f"duplicated sample ids: {_examples(dup, 10)}")
        gene_ids: list[str] = []
        try:
            for lineno, line in enumerate(fh, start=2):
                line = line.rstrip(b"\r\n")
                if not line.strip():
                    continue
                n = line.count(b"\t") + 1
                gene = _unquote(line.split(b"\t", 1)[0].decode("utf-8", "replace"))
                if n != n_fields:
                    raise InputError(path, f"line {lineno} (gene {gene!r})",
                                     f"ragged row: {n} fields but the header has {n_fields}")
                if gene == "":
                    raise InputError(path, f"line {lineno}", "empty gene id in the first column")
                gene_ids.append(gene)
        except (OSError, EOFError, zlib.error) as exc:  # truncated gzip and the like
            raise InputError(path, None, f"cannot be read ({exc})") from exc
    if not gene_ids:
        raise InputError(path, "rows", "no data rows (header only)")
    # Pass 2: the numbers (fast C parser). Gene ids come from pass 1 so that an id like "NA"
    # is not turned into NaN.
    df = pd.read_csv(
        path, sep="\t", header=None, skiprows=1, names=list(range(n_fields)), index_col=0,
        compression="gzip" if gz else None, low_memory=False, skip_blank_lines=True,
    )
    if len(df) != len(gene_ids):  # e.g. an odd quote character swallowing lines
        raise InputError(path, "rows", f"parsed {len(df)} rows but the file has {len(gene_ids)} "
                         "data lines (check quote characters)")
    df.columns = samples
    df.index = pd.Index(gene_ids, name="gene_id")
    for col in df.columns[[not pd.api.types.is_numeric_dtype(t) for t in df.dtypes]]:
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = np.flatnonzero(num.isna().to_numpy() & raw.notna().to_numpy())
        if len(bad):
            i = bad[0]
            raise InputError(path, f"row {df.index[i]!r}, column {col!r}",
                             f"non-numeric value {raw.iloc[i]!r} ({len(bad)} such cells in this column)")
        df[col] = num
    return df.astype(np.float64)


def strip_version(ids: Iterable[str]) -> np.ndarray:
    """Unversioned Ensembl ids: ``ENSG00000123456.12`` → ``ENSG00000123456``,
    ``ENSG00000182378.14_PAR_Y`` → ``ENSG00000182378``. Ids without a version are unchanged.

    Returns a numpy object array of str, same length and order as ``ids``.
    """
    s = pd.Series(list(ids), dtype=object).astype(str)
    s = s.str.replace(r"_PAR_Y$", "", regex=True).str.replace(r"\.\d+$", "", regex=True)
    return s.to_numpy(dtype=object)


def is_par_y(ids: Iterable[str]) -> np.ndarray:
    """True for the chrY pseudo-autosomal copies of X genes: ids ending in ``_PAR_Y`` (gencode
    ≥ v25, e.g. the GDC v36 files) or starting with ``ENSGR`` (gencode ≤ v24, e.g. MET500's v23)."""
    s = pd.Series(list(ids), dtype=object).astype(str)
    return (s.str.endswith(_PAR_Y) | s.str.match(r"^ENSGR\d")).to_numpy(dtype=bool)


def _par_base(ids: np.ndarray) -> np.ndarray:
    """Unversioned id of the X copy of PAR_Y ids (``ENSGR0000182378`` → ``ENSG00000182378``)."""
    out = strip_version(ids)
    return np.array([_ENSGR.sub(r"ENSG0\1", x) for x in out], dtype=object)


def harmonise_gene_ids(df: pd.DataFrame, source: PathLike | None, par_y: str = "drop") -> tuple[pd.DataFrame, int]:
    """Strip versions from the gene ids of ``df`` and handle the chrY PAR copies.

    ``par_y="drop"`` *(our choice, default)*: a PAR_Y row (see :func:`is_par_y`) whose X copy is
    also in the matrix is dropped — the GDC pipeline masks the chrY PARs, so these rows are all
    zero and averaging them with the X copy would halve the X gene; a PAR_Y row without an X
    copy is kept under the unversioned base id. ``par_y="mean"``: PAR_Y rows take the base id
    and are averaged with the X copy by :func:`collapse_duplicates` (SPEC's plain rule).

    Returns ``(df with unversioned ids, number of PAR_Y rows dropped)``; ``df`` is not modified.
    """
    if par_y not in ("drop", "mean"):
        raise InputError(source, "par_y", f"unknown option {par_y!r}; expected 'drop' or 'mean'")
    raw = np.asarray(df.index, dtype=object)
    par = is_par_y(raw)
    base = strip_version(raw)
    if par.any():
        base[par] = _par_base(raw[par])
    out = df.copy()
    out.index = pd.Index(base, name="gene_id")
    n_dropped = 0
    if par_y == "drop" and par.any():
        x_ids = set(base[~par])
        drop = par & np.fromiter((b in x_ids for b in base), dtype=bool, count=len(base))
        n_dropped = int(drop.sum())
        out = out[~drop]
    return out, n_dropped


def collapse_duplicates(df: pd.DataFrame, source: PathLike | None) -> tuple[pd.DataFrame, int]:
    """Average the rows of duplicated gene ids (SPEC §1.2).

    The mean is taken in the units of ``df`` (call it before the unit conversion to average in
    the file's units); a NaN in any duplicate makes the mean NaN (so that it is still reported).
    Row order = first occurrence. Warns (:class:`BulkWarning`) naming ``source``, the number of
    duplicated ids and of rows involved.

    Returns ``(collapsed df, number of distinct ids that occurred more than once)``.
    """
    dup_mask = df.index.duplicated(keep=False)
    if not dup_mask.any():
        return df, 0
    sub = df[dup_mask]
    codes, uniq = pd.factorize(sub.index)
    counts = np.bincount(codes)
    indicator = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                              shape=(len(uniq), len(codes)))
    means = (indicator @ sub.to_numpy(dtype=np.float64)) / counts[:, None]  # NaN propagates
    collapsed = pd.concat([df[~dup_mask], pd.DataFrame(means, index=uniq, columns=df.columns)])
    collapsed = collapsed.loc[pd.unique(df.index)]
    collapsed.index.name = df.index.name
    n = len(uniq)
    _warn(f"{source}: {n} gene ids occur more than once ({int(dup_mask.sum())} rows); "
          "their rows were averaged")
    return collapsed, n


def _first_cell(mask: np.ndarray, df: pd.DataFrame) -> tuple[str, str]:
    i, j = np.argwhere(mask)[0]
    return str(df.index[i]), str(df.columns[j])


def to_log2_fpkm1(df: pd.DataFrame, unit: str, source: PathLike | None) -> tuple[pd.DataFrame, str]:
    """Convert a genes × samples matrix to log2(FPKM+1) (SPEC §1.2).

    ``unit``:
      * ``"log2_fpkm1"`` — already log2(FPKM+1): returned unchanged (values must be ≥ 0).
      * ``"log2_fpkm0.001"`` — log2(FPKM+0.001) (MET500): ``log2(max(2**x − 0.001, 0) + 1)``.
        Values below log2(0.001) by at most :data:`LOG2_0001_TOLERANCE` are rounding of
        log2(0+0.001) and give 0; lower values (a negative FPKM) are an error.
      * ``"fpkm"`` — linear FPKM: ``log2(x + 1)`` (values must be ≥ 0).
      * ``"counts"`` — raw counts, no gene lengths *(our choice)*: ``log2(CPM + 1)`` with
        CPM = x / (column sum) · 10⁶ over the genes of ``df``; recorded unit ``"log2(CPM+1)"``.
        A sample whose counts sum to 0 is an error.

    NaN, ±inf, and negative values where the unit forbids them raise :class:`InputError`
    naming ``source``, the first offending gene and sample, and the number of such cells.

    Returns ``(converted float64 df, recorded unit)``; see :data:`UNITS`.
    """
    if unit not in UNITS:
        raise InputError(source, "unit", f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")
    X = df.to_numpy(dtype=np.float64)
    nan = np.isnan(X)
    if nan.any():
        g, s = _first_cell(nan, df)
        raise InputError(source, f"gene {g!r}, sample {s!r}", f"missing value (NaN); {int(nan.sum())} NaN cells in total")
    inf = np.isinf(X)
    if inf.any():
        g, s = _first_cell(inf, df)
        raise InputError(source, f"gene {g!r}, sample {s!r}", f"infinite value; {int(inf.sum())} such cells in total")
    if unit == "log2_fpkm0.001":
        bad = X < LOG2_0001 - LOG2_0001_TOLERANCE
        limit = f"below log2(0.001) = {LOG2_0001:.4f}, i.e. a negative FPKM in a log2(FPKM+0.001) matrix"
    else:
        bad = X < 0
        limit = {"log2_fpkm1": "negative, i.e. a negative FPKM in a log2(FPKM+1) matrix",
                 "fpkm": "negative FPKM", "counts": "negative count"}[unit]
    if bad.any():
        g, s = _first_cell(bad, df)
        i, j = np.argwhere(bad)[0]
        raise InputError(source, f"gene {g!r}, sample {s!r}",
                         f"value {float(X[i, j]):.6g} is {limit}; {int(bad.sum())} such cells in total")
    if unit == "log2_fpkm1":
        out = X
    elif unit == "log2_fpkm0.001":
        out = np.log2(np.clip(np.exp2(X) - 0.001, 0.0, None) + 1.0)
    elif unit == "fpkm":
        out = np.log2(X + 1.0)
    else:  # counts
        lib = X.sum(axis=0)
        zero = np.flatnonzero(lib <= 0)
        if len(zero):
            raise InputError(source, f"sample {df.columns[zero[0]]!r}",
                             f"library size (sum of counts) is 0, CPM undefined ({len(zero)} such samples)")
        out = np.log2(X / lib * 1e6 + 1.0)
    return pd.DataFrame(out, index=df.index, columns=df.columns), UNITS[unit]


def read_sample_table(path: PathLike, sample_column: str, label_column: str, what: str = "sample table") -> pd.Series:
    """Read a tab-separated table with a header → Series sample id → label (str).

    Raises :class:`InputError` naming the file and column for a missing column, an empty sample
    id or label, and a sample listed twice with different labels (identical repeats are merged).
    """
    path = _check_file(path)
    df = _read_table(path, what)
    _require_columns(df, path, (sample_column, label_column), what)
    df = df[[sample_column, label_column]]
    empty_id = np.flatnonzero(df[sample_column].isna().to_numpy())
    if len(empty_id):
        raise InputError(path, f"column {sample_column!r}, data row {empty_id[0] + 1}", "empty sample id")
    empty = df[df[label_column].isna()][sample_column]
    if len(empty):
        raise InputError(path, f"column {label_column!r}", f"empty label for sample(s) {_examples(empty)}")
    df = df.drop_duplicates()
    dup = df[sample_column][df[sample_column].duplicated()]
    if len(dup):
        raise InputError(path, f"column {sample_column!r}",
                         f"sample(s) listed with different labels: {_examples(sorted(set(dup)))}")
    return pd.Series(df[label_column].to_numpy(dtype=object),
                     index=pd.Index(df[sample_column].to_numpy(dtype=object), name="sample"), name=label_column)


# ---------------------------------------------------------------------------------------------
# Harmonisation
# ---------------------------------------------------------------------------------------------


def symbols_of(genes: pd.Index, probemap: pd.Series | None) -> np.ndarray:
    """Symbol of each gene id from a probe-map Series (unversioned id → symbol); the id itself
    where the map has none or no map is given."""
    if probemap is None:
        return np.asarray(genes, dtype=object)
    sym = probemap.reindex(genes)
    return np.where(sym.isna().to_numpy(), np.asarray(genes, dtype=object), sym.to_numpy(dtype=object)).astype(object)


def read_prepared(path: PathLike, par_y: str) -> tuple[pd.DataFrame, int, int]:
    """:func:`read_matrix` → :func:`harmonise_gene_ids` (``par_y``) → :func:`collapse_duplicates`.

    Returns ``(genes × samples frame with unversioned ids, number of duplicated ids averaged,
    number of PAR_Y rows dropped)``: the first steps every source reader shares.
    """
    df = read_matrix(path)
    df, n_par = harmonise_gene_ids(df, path, par_y)
    df, n_dup = collapse_duplicates(df, path)
    return df, n_dup, n_par


def build_adata(X: np.ndarray, obs: pd.DataFrame, genes: pd.Index, probemap: pd.Series | None,
                uns: dict) -> ad.AnnData:
    """The harmonised AnnData of a cohort: ``X`` samples × genes (float32), ``obs`` indexed by
    sample id (index name ``sample_id``), ``var`` indexed by gene id with ``symbol``
    (:func:`symbols_of`), ``uns`` as given."""
    var = pd.DataFrame({"symbol": symbols_of(genes, probemap)}, index=pd.Index(genes.astype(str), name="gene_id"))
    obs.index = obs.index.astype(str)
    obs.index.name = "sample_id"
    return ad.AnnData(X=np.ascontiguousarray(X, dtype=np.float32), obs=obs, var=var, uns=uns)


# ---------------------------------------------------------------------------------------------
# Gene filter
# ---------------------------------------------------------------------------------------------


def gene_filter_mask(X, threshold: float = 0.8, genes: Sequence[str] | None = None,
                     source: str | None = None, chunk: int = 4096) -> np.ndarray:
    """Genes to keep (SPEC §1.3): a gene is dropped when its mean **and** its standard deviation
    over all samples are both < ``threshold``; kept otherwise (equality keeps).

    ``X``: samples × genes (dense or scipy sparse). The standard deviation is the population one
    (ddof = 0, numpy's default, as in the reference code's ``np.std``). Statistics are computed
    in float64, in chunks of ``chunk`` genes. ``genes``/``source`` only name the gene in errors.
    A NaN or infinite value raises :class:`InputError`; so do 0 samples and a 1-D ``X``.
    """
    if sp.issparse(X):
        X = X.tocsc()
    else:
        X = np.asarray(X)
    if X.ndim != 2:
        raise InputError(source, "X", f"expected a samples × genes matrix, got {X.ndim} dimension(s)")
    n, g = X.shape
    if n == 0:
        raise InputError(source, "samples", "no sample: the gene filter needs at least one")
    keep = np.empty(g, dtype=bool)
    for start in range(0, g, chunk):
        block = X[:, start:start + chunk]
        block = block.toarray() if sp.issparse(block) else block
        block = np.asarray(block, dtype=np.float64)
        bad = ~np.isfinite(block)
        if bad.any():
            j = start + int(np.argwhere(bad)[0][1])
            name = genes[j] if genes is not None else f"column {j}"
            raise InputError(source, f"gene {name!r}", "NaN or infinite value: the gene filter needs finite values")
        mean = block.mean(axis=0)
        std = block.std(axis=0, ddof=0)
        keep[start:start + chunk] = ~((mean < threshold) & (std < threshold))
    return keep


def filter_genes(cohorts: Mapping[str, ad.AnnData], threshold: float = 0.8
                 ) -> tuple[dict[str, ad.AnnData], pd.DataFrame, pd.DataFrame]:
    """Apply :func:`gene_filter_mask` within each cohort and keep the intersection (SPEC §1.3).

    A gene survives when it is present in every cohort and kept in every cohort. The surviving
    ids are sorted (the gene order the CNN sees) and every cohort is subset to that order.

    Returns ``(filtered cohorts (copies), kept, counts)``: ``kept`` has columns ``gene_id``,
    ``symbol`` (from the first cohort with a ``symbol`` column, else the id); ``counts`` one row
    per cohort with ``cohort``, ``n_genes_in``, ``n_kept`` (kept within that cohort, before the
    intersection). Each filtered cohort gets ``uns["gene_filter"]`` with the threshold and counts.
    An empty intersection, an empty ``cohorts`` or duplicated gene ids raise :class:`InputError`.
    """
    if not cohorts:
        raise InputError(None, "cohorts", "no cohort given to the gene filter")
    kept_sets, rows = {}, []
    for name, a in cohorts.items():
        if not a.var_names.is_unique:
            dup = a.var_names[a.var_names.duplicated()]
            raise InputError(name, "var (gene ids)", f"duplicated gene ids: {_examples(sorted(set(dup)))}")
        mask = gene_filter_mask(a.X, threshold, genes=a.var_names, source=name)
        kept_sets[name] = set(a.var_names[mask])
        rows.append({"cohort": name, "n_genes_in": int(a.n_vars), "n_kept": int(mask.sum())})
    common = set.intersection(*kept_sets.values())
    counts = pd.DataFrame(rows, columns=["cohort", "n_genes_in", "n_kept"])
    if not common:
        raise InputError(None, "genes", "no gene passes the filter (mean and sd both < "
                         f"{threshold}) in every cohort: " + ", ".join(
                             f"{r['cohort']} keeps {r['n_kept']} of {r['n_genes_in']}" for r in rows))
    genes = sorted(common)
    symbol = None
    for a in cohorts.values():
        if "symbol" in a.var.columns:
            symbol = a.var.loc[genes, "symbol"].astype(str).to_numpy()
            break
    kept = pd.DataFrame({"gene_id": genes, "symbol": symbol if symbol is not None else genes})
    out = {}
    for name, a in cohorts.items():
        b = a[:, genes].copy()
        b.uns["gene_filter"] = {"threshold": float(threshold), "n_genes_in": int(a.n_vars),
                                "n_kept_in_cohort": int(len(kept_sets[name])), "n_kept": int(len(genes))}
        out[name] = b
    return out, kept, counts


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


def read_label_map(path: PathLike) -> dict[str, str]:
    """Read the label table (TSV with ``source_label`` and ``merged_label``) → dict.

    Identity rows (``BRCA → BRCA``) are allowed and mark a label as known. Raises
    :class:`InputError` for missing columns, empty cells and a source label mapped twice to
    different merged labels.
    """
    path = _check_file(path)
    df = _read_table(path, "label map")
    _require_columns(df, path, ("source_label", "merged_label"), "label map")
    for col in ("source_label", "merged_label"):
        empty = np.flatnonzero(df[col].isna().to_numpy())
        if len(empty):
            raise InputError(path, f"column {col!r}, data row {empty[0] + 1}", "empty label")
    df = df[["source_label", "merged_label"]].apply(lambda c: c.str.strip()).drop_duplicates()
    dup = df["source_label"][df["source_label"].duplicated()]
    if len(dup):
        raise InputError(path, "column 'source_label'",
                         f"label(s) mapped to more than one merged label: {_examples(sorted(set(dup)))}")
    return dict(zip(df["source_label"], df["merged_label"]))


def merge_labels(adata: ad.AnnData, label_map: Mapping[str, str],
                 drop_labels: Sequence[str] = ("MISC", "SCER")) -> tuple[ad.AnnData, pd.DataFrame]:
    """Merge cancer types of a common origin (SPEC §1.4) and drop ``drop_labels``.

    ``obs["original_type"]`` keeps the label before merging (left as is when the column already
    exists, so that merging twice is harmless) and ``obs["cancer_type"]`` becomes
    ``label_map.get(label, label)``. A label is *known* when it is a key or a value of the map
    (so MET500's merged names such as COLO map to themselves); unknown labels are kept unchanged
    with a warning naming them. Samples whose original or merged label is in ``drop_labels`` are
    removed. Dropping every sample is an error.

    Returns ``(new AnnData, report)``; report columns: ``original_label``, ``merged_label``,
    ``n_samples``, ``action`` (``merged``, ``kept``, ``unknown_kept`` or ``dropped``).
    """
    if "cancer_type" not in adata.obs.columns:
        raise InputError(None, "obs column 'cancer_type'", "missing: cannot merge labels")
    original = adata.obs["original_type"] if "original_type" in adata.obs.columns else adata.obs["cancer_type"]
    original = original.astype(str)
    current = adata.obs["cancer_type"].astype(str)
    known = set(label_map) | set(label_map.values())
    drop = set(drop_labels)
    merged = current.map(lambda x: label_map.get(x, x))
    rows, unknown = [], []
    for (orig, cur, new), n in pd.DataFrame({"o": original, "c": current, "m": merged}).value_counts(sort=False).items():
        if orig in drop or cur in drop or new in drop:
            action = "dropped"
        elif cur not in known:
            action = "unknown_kept"
            unknown.append(cur)
        elif new != orig:
            action = "merged"
        else:
            action = "kept"
        rows.append({"original_label": orig, "merged_label": new, "n_samples": int(n), "action": action})
    report = pd.DataFrame(rows, columns=["original_label", "merged_label", "n_samples", "action"])
    report = report.sort_values(["merged_label", "original_label"], kind="stable").reset_index(drop=True)
    if unknown:
        _warn(f"label map does not know {len(set(unknown))} label(s), kept unchanged: {_examples(sorted(set(unknown)), 20)}")
    keep = ~(original.isin(drop) | current.isin(drop) | merged.isin(drop)).to_numpy()
    if not keep.any():
        raise InputError(None, "obs column 'cancer_type'", f"every sample has a dropped label ({sorted(drop)})")
    out = adata[keep].copy()
    out.obs["original_type"] = original[keep].to_numpy()
    out.obs["cancer_type"] = merged[keep].to_numpy()
    return out, report


# ---------------------------------------------------------------------------------------------
# Type splits
# ---------------------------------------------------------------------------------------------

#: experiment names used by :func:`split_types` besides the TCGA training sets.
MET500_EXPERIMENT = "met500"
CNN_EXPERIMENT = "cnn_primary_to_met"

_TYPE_COLUMNS = ["experiment", "cancer_type", "role", "cohort", "n_train", "n_validation", "n_test", "rank",
                 "n_types_requested", "n_types"]
_SAMPLE_COLUMNS = ["experiment", "sample_id", "cohort", "cancer_type", "split", "patient"]


def _obs_of(x, default_cohort: str, what: str) -> pd.DataFrame:
    obs = x.obs if isinstance(x, ad.AnnData) else x
    if not isinstance(obs, pd.DataFrame):
        raise InputError(what, None, "expected an AnnData or an obs DataFrame")
    if "cancer_type" not in obs.columns:
        raise InputError(what, "obs column 'cancer_type'", "missing")
    if obs.empty:
        raise InputError(what, "samples", "no sample")
    out = pd.DataFrame({"sample_id": obs.index.astype(str), "cancer_type": obs["cancer_type"].astype(str).to_numpy(),
                        "cohort": obs["cohort"].astype(str).to_numpy() if "cohort" in obs.columns else default_cohort})
    if out["sample_id"].duplicated().any():
        raise InputError(what, "samples", f"duplicated sample ids: {_examples(out['sample_id'][out['sample_id'].duplicated()])}")
    if "patient" in obs.columns:
        patient = obs["patient"]
        empty = out["sample_id"][patient.isna().to_numpy() | (patient.astype(str).str.strip() == "").to_numpy()]
        if len(empty):
            raise InputError(what, "obs column 'patient'", f"empty patient for sample(s) {_examples(empty)}")
        out["patient"] = patient.astype(str).to_numpy()
    else:
        _warn(f"{what}: no obs column 'patient': every sample is treated as its own patient (samples of one "
              "patient could then sit on both sides of a split)")
        out["patient"] = out["sample_id"]
    types_per_patient = out.groupby("patient")["cancer_type"].nunique()
    mixed = types_per_patient[types_per_patient > 1].index
    if len(mixed):
        p = sorted(mixed)[0]
        sub = out[out["patient"] == p]
        raise InputError(what, "obs columns 'patient', 'cancer_type'",
                         f"{len(mixed)} patient(s) have samples of different cancer types, e.g. {p!r} ("
                         + ", ".join(f"{s}: {t}" for s, t in zip(sub["sample_id"], sub["cancer_type"]))
                         + "); one patient has one type")
    return out


def val_test_halves(patients: pd.Series, fraction: float, seed: int, key: str) -> tuple[list[str], list[str]]:
    """Seeded per-type split by patient. ``patients``: sample id → patient. The sorted distinct
    patients are permuted by a generator seeded with (seed, crc32(key)); validation = the samples
    of the first floor(n_patients · fraction) patients, test = the others (test gets the odd
    patient). Every patient's samples are on one side."""
    uniq = np.array(sorted(set(patients.astype(str))), dtype=object)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    perm = rng.permutation(len(uniq))
    n_val = int(np.floor(len(uniq) * fraction + 1e-9))
    val_patients = set(uniq[perm[:n_val]])
    in_val = patients.astype(str).isin(val_patients).to_numpy()
    ids = patients.index.astype(str).to_numpy()
    return sorted(ids[in_val]), sorted(ids[~in_val])


def split_types(
    tcga,
    met500,
    *,
    training_sets: Mapping[str, int] | None = None,
    n_test_types: int = 10,
    validation_fraction: float = 0.5,
    met500_n_train: int = 10,
    min_samples: int = 2,
    small_type_policy: str = "drop",
    seed: int,
    impossible: str = "error",
    requirements: Mapping[str, Sequence[tuple[str, int, str]]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training / test cancer types and sample splits of every experiment (SPEC §1.5).

    ``tcga``/``met500``: AnnData (or obs DataFrames) after :func:`merge_labels`, with
    ``obs["cancer_type"]``. Types only in TCGA always train; types in both cohorts ("shared") are
    ranked by their number of TCGA samples, descending, ties broken by name ascending (rank 1 =
    largest). MET500-only types are ignored with a warning.

    Experiments:
      * one per ``training_sets`` item ``name: k`` (default ``tcga9: 0, tcga14: 5, tcga19: 10``):
        train = TCGA samples of the TCGA-only types + the top-k shared types; test types = the
        ``n_test_types`` lowest-ranked shared types, their TCGA samples split per type into
        validation / test. The same test types and the same split for every training set.
      * ``"met500"``: train = MET500 samples of the top ``met500_n_train`` shared types; test
        types = all other shared types, their MET500 samples split validation / test.
      * ``"cnn_primary_to_met"``: TCGA samples of the top ``met500_n_train`` shared types train a
        classifier; the MET500 samples of the same types are its test set (split ``test``). Each
        type has two rows in the types table (role ``train``, cohort TCGA; role ``test``, cohort
        MET500).

    Patients: ``obs["patient"]`` (TCGA: the first 12 barcode characters; MET500: the metadata's
    ``sample_source``) keeps every patient's samples together: validation / test are split by
    patient, never by sample. A patient with samples of two types in one cohort is an error. Without
    a ``patient`` column every sample is its own patient (with a warning).

    Validation / test split per type *(our choice)*: the sorted distinct patients are permuted by a
    generator seeded with ``(seed, crc32("<cohort>:<type>"))`` — independent of input order and
    of the other types — validation = the samples of the first floor(n_patients ·
    validation_fraction) patients, test = the rest. With one sample per patient this is the
    sample split of before.

    Small types: a type with fewer than ``min_samples`` *patients* in any split it has in an
    experiment (train, validation or test) cannot serve one-shot tasks (a query must come from
    another patient than its support); ``small_type_policy``
    ``"drop"`` removes it from that experiment with a warning naming it and the count,
    ``"error"`` raises :class:`InputError`. An experiment left with fewer than 2 training or 2
    test types always raises.

    Impossible requests (:mod:`oncoshot.policy`, config key ``impossible_requests``): fewer shared
    types than requested (the training sets' k plus ``n_test_types``, ``met500_n_train`` plus 2
    test types) raise an :class:`InputError` naming the config key with ``impossible="error"``
    (default); ``"reduce"`` shrinks the request with a warning (test types first keep their
    number) and the types table records it. ``requirements``: experiment → ``(config key, number
    of test types needed, what needs them)`` (N-way evaluation, Siamese validation, forward
    selection); an experiment left with fewer test types is the same kind of impossible request.

    Returns ``(types, samples)``: types columns ``experiment, cancer_type, role, cohort,
    n_train, n_validation, n_test, rank, n_types_requested, n_types`` (rank: shared-type rank,
    <NA> for TCGA-only types; ``n_types_requested``: the number of types of this role the config
    asked for in this experiment, <NA> where it asks for "all the others" (MET500 test types);
    ``n_types``: the number it got); samples columns ``experiment, sample_id, cohort,
    cancer_type, split, patient``.
    """
    from .policy import check_policy

    check_policy(impossible)
    if training_sets is None:
        training_sets = {"tcga9": 0, "tcga14": 5, "tcga19": 10}
    if small_type_policy not in ("drop", "error"):
        raise InputError(None, "small_type_policy", f"unknown policy {small_type_policy!r}; expected 'drop' or 'error'")
    if not (0 < float(validation_fraction) < 1):
        raise InputError(None, "validation_fraction", f"{validation_fraction!r} must be strictly between 0 and 1")
    if int(n_test_types) < 2:
        raise InputError(None, "n_test_types", f"{n_test_types!r}: one-shot tests need at least 2 types")
    if int(min_samples) < 1:
        raise InputError(None, "min_samples", f"{min_samples!r} must be at least 1")
    if int(met500_n_train) < 2:
        raise InputError(None, "met500_n_train", f"{met500_n_train!r}: training needs at least 2 types")
    if seed is None or int(seed) < 0:
        raise InputError(None, "seed", f"{seed!r} must be a non-negative integer")
    for name, k in training_sets.items():
        if name in (MET500_EXPERIMENT, CNN_EXPERIMENT):
            raise InputError(None, f"training_sets[{name!r}]", "name is reserved for another experiment")
        if int(k) < 0:
            raise InputError(None, f"training_sets[{name!r}]", f"{k!r} shared types: must be ≥ 0")
    seed = int(seed)

    t_obs = _obs_of(tcga, "TCGA", "tcga")
    m_obs = _obs_of(met500, "MET500", "met500")
    t_count = t_obs["cancer_type"].value_counts()
    m_types = set(m_obs["cancer_type"])
    tcga_only = sorted(set(t_count.index) - m_types)
    shared = sorted(set(t_count.index) & m_types, key=lambda x: (-int(t_count[x]), x))
    rank = {t: i + 1 for i, t in enumerate(shared)}
    met_only = sorted(m_types - set(t_count.index))
    if met_only:
        _warn(f"met500: {len(met_only)} MET500 type(s) absent from TCGA are not used: {_examples(met_only, 20)}")
    S = len(shared)

    def shortfall(key: str, what: str) -> None:
        if impossible == "error":
            raise InputError(None, f"config key '{key}'",
                             f"{what} (shared cancer types); lower {key}, or set impossible_requests: "
                             "reduce to use what exists (recorded in types.tsv)")
        _warn(f"config key '{key}': {what}; reduced (impossible_requests: reduce)")

    test_n = min(int(n_test_types), S)
    if test_n < int(n_test_types):
        shortfall("splits.n_test_types",
                  f"only {S} cancer types occur in both cohorts, {n_test_types} test types requested")
    test_types = shared[S - test_n:]

    # plans: experiment → list of (cancer_type, role, cohort frame, mode)
    plans: dict[str, list[tuple[str, str, str, str]]] = {}
    requested: dict[tuple[str, str], int | None] = {}  # (experiment, role) → types requested
    for name, k in training_sets.items():
        k_eff = min(int(k), S - test_n)
        if k_eff < int(k):
            shortfall(f"splits.training_sets.{name}",
                      f"training set {name!r}: {k} shared types requested but only {S - test_n} are not test types")
        requested[(name, "train")] = len(tcga_only) + int(k)
        requested[(name, "test")] = int(n_test_types)
        plan = [(t, "train", "TCGA", "train") for t in tcga_only + shared[:k_eff]]
        plan += [(t, "test", "TCGA", "valtest") for t in test_types]
        plans[name] = plan
    m_train = min(int(met500_n_train), max(S - 2, 0))
    if m_train < int(met500_n_train):
        shortfall("splits.met500_n_train",
                  f"experiment {MET500_EXPERIMENT!r}: {met500_n_train} training types + at least 2 test types "
                  f"requested but only {S} cancer types occur in both cohorts")
    requested[(MET500_EXPERIMENT, "train")] = int(met500_n_train)
    requested[(MET500_EXPERIMENT, "test")] = None
    plans[MET500_EXPERIMENT] = ([(t, "train", "MET500", "train") for t in shared[:m_train]]
                                + [(t, "test", "MET500", "valtest") for t in shared[m_train:]])
    c_n = min(int(met500_n_train), S)
    if c_n < int(met500_n_train):
        shortfall("splits.met500_n_train",
                  f"experiment {CNN_EXPERIMENT!r}: {met500_n_train} types requested but only {S} are shared")
    requested[(CNN_EXPERIMENT, "train")] = requested[(CNN_EXPERIMENT, "test")] = int(met500_n_train)
    plans[CNN_EXPERIMENT] = ([(t, "train", "TCGA", "train") for t in shared[:c_n]]
                             + [(t, "test", "MET500", "test") for t in shared[:c_n]])

    by_cohort = {
        "TCGA": {t: g["sample_id"].tolist() for t, g in t_obs.groupby("cancer_type")},
        "MET500": {t: g["sample_id"].tolist() for t, g in m_obs.groupby("cancer_type")},
    }
    cohort_label = {"TCGA": t_obs.set_index("sample_id")["cohort"], "MET500": m_obs.set_index("sample_id")["cohort"]}
    patient_of = {"TCGA": t_obs.set_index("sample_id")["patient"], "MET500": m_obs.set_index("sample_id")["patient"]}
    type_rows, sample_rows = [], []
    for exp, plan in plans.items():
        assigned: dict[str, list[tuple[str, str, str, dict[str, list[str]]]]] = {}
        for t, role, cohort, mode in plan:
            ids = by_cohort[cohort].get(t, [])
            if mode == "train":
                splits = {"train": sorted(ids)}
            elif mode == "test":
                splits = {"test": sorted(ids)}
            else:
                val, test = val_test_halves(patient_of[cohort].loc[ids], float(validation_fraction), seed, f"{cohort}:{t}")
                splits = {"validation": val, "test": test}
            assigned.setdefault(t, []).append((role, cohort, mode, splits))
        small = {}
        for t, entries in assigned.items():
            for role, cohort, mode, splits in entries:
                for split, ids in splits.items():
                    n_pat = int(patient_of[cohort].loc[ids].nunique()) if ids else 0
                    if n_pat < int(min_samples):
                        small.setdefault(t, f"{n_pat} {cohort} patient(s) ({len(ids)} sample(s)) in split {split!r}")
        for t, why in small.items():
            msg = (f"experiment {exp!r}: cancer type {t!r} has {why}, fewer than min_samples={min_samples}")
            if small_type_policy == "error":
                raise InputError(None, f"cancer type {t!r}", msg)
            _warn(msg + "; type dropped from this experiment")
            del assigned[t]
        n_train_types = len({t for t, e in assigned.items() if any(r == "train" for r, *_ in e)})
        n_test = len({t for t, e in assigned.items() if any(r == "test" for r, *_ in e)})
        if n_train_types < 2 or n_test < 2:
            raise InputError(None, f"experiment {exp!r}",
                             f"{n_train_types} training and {n_test} test type(s) left after removing small "
                             "types; at least 2 of each are needed")
        for key, needed, what in (requirements or {}).get(exp, ()):
            if int(needed) > n_test:
                msg = (f"{what} needs {needed} test types but experiment {exp!r} has {n_test} "
                       f"({n_test} of the {S} shared cancer types after the splits)")
                if impossible == "error":
                    raise InputError(None, f"config key '{key}'",
                                     f"{msg}; lower {key}, or set impossible_requests: reduce to use {n_test}")
                _warn(f"config key '{key}': {msg}; the rule will use {n_test} (impossible_requests: reduce)")
        n_role = {"train": n_train_types, "test": n_test}
        for t, entries in assigned.items():
            for role, cohort, mode, splits in entries:
                req = requested.get((exp, role))
                type_rows.append({
                    "experiment": exp, "cancer_type": t, "role": role, "cohort": cohort,
                    "n_train": len(splits.get("train", [])), "n_validation": len(splits.get("validation", [])),
                    "n_test": len(splits.get("test", [])), "rank": rank.get(t, pd.NA),
                    "n_types_requested": pd.NA if req is None else req, "n_types": n_role[role]})
                for split, ids in splits.items():
                    labels = cohort_label[cohort].reindex(ids).to_numpy()
                    pats = patient_of[cohort].reindex(ids).to_numpy()
                    for sid, lab, pat in zip(ids, labels, pats):
                        sample_rows.append((exp, sid, lab, t, split, pat))
        for t, entries in assigned.items():  # internal check: no patient on two sides
            for role, cohort, mode, splits in entries:
                if len(splits) > 1:
                    sides = [set(patient_of[cohort].loc[ids]) for ids in splits.values()]
                    assert not set.intersection(*sides), f"internal error: {exp}/{t}: a patient on both sides"
        one_shot = exp != CNN_EXPERIMENT
        if one_shot:
            tr = {t for t, e in assigned.items() if any(r == "train" for r, *_ in e)}
            te = {t for t, e in assigned.items() if any(r == "test" for r, *_ in e)}
            assert not tr & te, f"internal error: {exp} train and test types overlap: {tr & te}"
    types = pd.DataFrame(type_rows, columns=_TYPE_COLUMNS)
    types["rank"] = types["rank"].astype("Int64")
    types["n_types_requested"] = types["n_types_requested"].astype("Int64")
    samples = pd.DataFrame(sample_rows, columns=_SAMPLE_COLUMNS)
    return types, samples


# ---------------------------------------------------------------------------------------------
# Patient report
# ---------------------------------------------------------------------------------------------

#: columns of :func:`patient_report` (``results/bulk/patients.tsv``).
PATIENT_REPORT_COLUMNS = [
    "cohort", "policy", "n_samples_in", "n_samples_dropped_non_primary", "n_libraries_dropped", "n_samples_kept",
    "n_patients", "n_patients_with_several_samples", "n_samples_of_such_patients", "n_samples_after_labels",
    "n_patients_after_labels", "n_patients_with_several_samples_after_labels", "n_patients_on_both_sides",
]


def patient_report(cohorts: Mapping[str, ad.AnnData], samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per cohort: how many samples / libraries came in, were dropped or merged by patient.

    ``cohorts``: cohort name (``TCGA``, ``MET500``) → the labelled AnnData (after
    :func:`merge_labels`), whose ``uns["patients"]`` holds the harmonisation counts
    (:func:`oncoshot.sources.tcga.harmonise_tcga`, :func:`oncoshot.sources.met500.harmonise_met500`):
    ``n_samples_in`` (samples or libraries of the matrices), ``n_samples_dropped_non_primary``,
    ``n_libraries_dropped`` (MET500 libraries of a patient who keeps another), ``n_samples_kept``,
    ``n_patients``, ``n_patients_with_several_samples`` and ``n_samples_of_such_patients`` (in the
    harmonised input, before the library choice); then, counted here on the labelled samples
    (MISC/SCER dropped): ``n_samples_after_labels``, ``n_patients_after_labels``,
    ``n_patients_with_several_samples_after_labels``; and ``n_patients_on_both_sides``: the
    patients that the split table ``samples`` (:func:`split_types`) puts in two splits of one
    experiment (0 by construction; counted independently of the split code).

    A cohort without ``uns["patients"]`` or ``obs["patient"]`` is an :class:`InputError`.
    """
    rows = []
    for name, a in cohorts.items():
        info = a.uns.get("patients") if hasattr(a, "uns") else None
        if info is None:
            raise InputError(name, "uns['patients']", "missing: harmonise the cohort with oncoshot.sources")
        if "patient" not in a.obs.columns:
            raise InputError(name, "obs column 'patient'", "missing: harmonise the cohort with oncoshot.sources")
        row = {c: info.get(c) for c in PATIENT_REPORT_COLUMNS if c in info}
        row["cohort"] = str(info.get("cohort", name))
        row["policy"] = str(info.get("policy", ""))
        for c in PATIENT_REPORT_COLUMNS[2:10]:
            if c in info:
                row[c] = int(info[c])
        per = a.obs["patient"].astype(str).value_counts()
        row["n_samples_after_labels"] = int(a.n_obs)
        row["n_patients_after_labels"] = int(len(per))
        row["n_patients_with_several_samples_after_labels"] = int((per > 1).sum())
        both = 0
        if samples is not None:
            sub = samples[samples["cohort"].astype(str) == row["cohort"]]
            if len(sub):
                n_splits = sub.groupby(["experiment", "patient"])["split"].nunique()
                both = int(n_splits[n_splits > 1].index.get_level_values("patient").nunique())
        row["n_patients_on_both_sides"] = both
        rows.append(row)
    out = pd.DataFrame(rows)
    for c in PATIENT_REPORT_COLUMNS:
        if c not in out.columns:
            out[c] = pd.NA
    return out[PATIENT_REPORT_COLUMNS]
