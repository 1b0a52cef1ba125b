"""Bulk preprocessing (SPEC §1): read, harmonise, gene filter, label merge and type splits.

Pipeline for one cohort::

    read_matrix ─► PAR_Y handling + strip_version ─► collapse_duplicates ─► align gene sets
               ─► to_log2_fpkm1 ─► primary selection (TCGA) ─► AnnData (samples × genes, float32)

then, over the cohorts, :func:`filter_genes` (mean-and-std filter + intersection),
:func:`merge_labels` (label table, MISC/SCER dropped) and :func:`split_types` (training / test
type sets and the sample splits of every experiment).

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
from pathlib import Path

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
    "UNITS",
    "SAMPLE_TYPE_NAMES",
    "read_matrix",
    "strip_version",
    "is_par_y",
    "harmonise_gene_ids",
    "collapse_duplicates",
    "to_log2_fpkm1",
    "read_probemap",
    "read_sample_table",
    "read_clinical",
    "sample_code",
    "is_primary",
    "harmonise_tcga",
    "harmonise_met500",
    "gene_filter_mask",
    "filter_genes",
    "read_label_map",
    "merge_labels",
    "split_types",
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

#: GDC sample type code → the name used by ``sample_type.samples`` in the Xena clinical files.
SAMPLE_TYPE_NAMES: dict[str, str] = {
    "01": "Primary Tumor",
    "02": "Recurrent Tumor",
    "03": "Primary Blood Derived Cancer - Peripheral Blood",
    "04": "Recurrent Blood Derived Cancer - Bone Marrow",
    "05": "Additional - New Primary",
    "06": "Metastatic",
    "07": "Additional Metastatic",
    "08": "Human Tumor Original Cells",
    "09": "Primary Blood Derived Cancer - Bone Marrow",
    "10": "Blood Derived Normal",
    "11": "Solid Tissue Normal",
    "12": "Buccal Cell Normal",
    "13": "EBV Immortalized Normal",
    "14": "Bone Marrow Normal",
    "15": "sample type 15",
    "16": "sample type 16",
    "20": "Control Analyte",
    "40": "Recurrent Blood Derived Cancer - Peripheral Blood",
    "50": "Cell Lines",
    "60": "Primary Xenograft Tissue",
    "61": "Cell Line Derived Xenograft Tissue",
}

_BARCODE = re.compile(r"^TCGA-[A-Za-z0-9]{2}-[A-Za-z0-9]{4}-(\d{2})")
_VERSION = re.compile(r"\.\d+$")
_PAR_Y = "_PAR_Y"
_ENSGR = re.compile(r"^ENSGR(\d+)")


def _warn(message: str) -> None:
    warnings.warn(message, BulkWarning, stacklevel=3)


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


def read_probemap(path: PathLike) -> pd.Series:
    """Read a Xena probe map (``id gene chrom chromStart chromEnd strand``) → Series
    unversioned gene id → symbol (name ``symbol``).

    ``_PAR_Y`` ids collapse onto their X id; when an id appears more than once the first symbol
    is kept. Rows with an empty symbol are ignored. Raises :class:`InputError` for a missing or
    empty file and missing ``id``/``gene`` columns.
    """
    path = _check_file(path)
    df = _read_table(path, "probe map")
    _require_columns(df, path, ("id", "gene"), "probe map")
    df = df.dropna(subset=["id", "gene"])
    ids = strip_version(df["id"].to_numpy())
    s = pd.Series(df["gene"].to_numpy(dtype=object), index=pd.Index(ids, name="gene_id"), name="symbol")
    return s[~s.index.duplicated(keep="first")]


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


def read_clinical(path: PathLike, sample_column: str = "sample", type_column: str = "sample_type.samples") -> pd.Series:
    """Read a GDC-hub ``TCGA-<PROJ>.clinical.tsv.gz`` → Series sample barcode → sample type name.

    Only used for a consistency check, so it is lenient where :func:`read_sample_table` is
    strict: rows with an empty sample or sample type are ignored, and a sample listed with
    different types keeps the first with a warning. Missing columns are still an error.
    """
    path = _check_file(path)
    df = _read_table(path, "clinical table")
    _require_columns(df, path, (sample_column, type_column), "clinical table")
    df = df[[sample_column, type_column]].dropna().drop_duplicates()
    dup = df[sample_column][df[sample_column].duplicated()]
    if len(dup):
        _warn(f"{path}: {dup.nunique()} sample(s) listed with different {type_column!r}; the first is used: "
              f"{_examples(sorted(set(dup)))}")
        df = df[~df[sample_column].duplicated()]
    return pd.Series(df[type_column].to_numpy(dtype=object),
                     index=pd.Index(df[sample_column].to_numpy(dtype=object), name="sample"), name=type_column)


def sample_code(barcode: str, source: PathLike | None = None) -> str:
    """TCGA sample type code = characters 14–15 of the barcode (``TCGA-OR-A5J1-01A`` → ``"01"``).

    Works on sample (16-character) and aliquot (28-character) barcodes. Raises
    :class:`InputError` (naming ``source`` and the sample) when ``barcode`` is not a TCGA barcode.
    """
    m = _BARCODE.match(str(barcode))
    if not m:
        raise InputError(source, f"sample {barcode!r}",
                         "not a TCGA barcode (expected TCGA-XX-XXXX-NN…, sample code = characters 14-15)")
    return m.group(1)


def is_primary(barcode: str, project: str, primary_codes: Sequence[str] = ("01",),
               blood_projects: Sequence[str] = ("LAML",), blood_codes: Sequence[str] = ("03",),
               source: PathLike | None = None) -> bool:
    """Whether a TCGA sample is a primary tumour (SPEC §1.2).

    Solid projects: sample code in ``primary_codes`` (01). Blood projects (``blood_projects``,
    LAML): code in ``blood_codes`` (03, primary blood-derived) or in ``primary_codes``.
    Metastatic (06), normal (10, 11, …) and other codes are not primary.
    """
    code = sample_code(barcode, source)
    if project in set(blood_projects):
        return code in set(blood_codes) | set(primary_codes)
    return code in set(primary_codes)


# ---------------------------------------------------------------------------------------------
# Harmonisation
# ---------------------------------------------------------------------------------------------


def _probemap_series(probemap: PathLike | pd.Series | None) -> pd.Series | None:
    if probemap is None or isinstance(probemap, pd.Series):
        return probemap
    return read_probemap(probemap)


def _symbols(genes: pd.Index, probemap: pd.Series | None) -> np.ndarray:
    if probemap is None:
        return np.asarray(genes, dtype=object)
    sym = probemap.reindex(genes)
    return np.where(sym.isna().to_numpy(), np.asarray(genes, dtype=object), sym.to_numpy(dtype=object)).astype(object)


def _check_clinical(samples: Sequence[str], codes: Sequence[str], clinical: pd.Series,
                    path: PathLike) -> int:
    """Warn when ``sample_type.samples`` disagrees with the barcode code; returns the count."""
    clin = clinical.copy()
    clin.index = [str(i)[:16] for i in clin.index]
    clin = clin[~clin.index.duplicated()]
    bad = []
    for s, code in zip(samples, codes):
        key = str(s)[:16]
        if key not in clin.index or code not in SAMPLE_TYPE_NAMES:
            continue
        if str(clin[key]).strip().lower() != SAMPLE_TYPE_NAMES[code].lower():
            bad.append(f"{s} (clinical {clin[key]!r}, barcode code {code} = {SAMPLE_TYPE_NAMES[code]!r})")
    if bad:
        _warn(f"{path}: column 'sample_type.samples' disagrees with the barcode sample code for "
              f"{len(bad)} sample(s): {'; '.join(bad[:3])}{' …' if len(bad) > 3 else ''}; "
              "the barcode decides")
    return len(bad)


def _read_prepared(path: PathLike, par_y: str) -> tuple[pd.DataFrame, int, int]:
    df = read_matrix(path)
    df, n_par = harmonise_gene_ids(df, path, par_y)
    df, n_dup = collapse_duplicates(df, path)
    return df, n_dup, n_par


def _build_adata(X: np.ndarray, obs: pd.DataFrame, genes: pd.Index, probemap: pd.Series | None,
                 uns: dict) -> ad.AnnData:
    var = pd.DataFrame({"symbol": _symbols(genes, probemap)}, index=pd.Index(genes.astype(str), name="gene_id"))
    obs.index = obs.index.astype(str)
    obs.index.name = "sample_id"
    return ad.AnnData(X=np.ascontiguousarray(X, dtype=np.float32), obs=obs, var=var, uns=uns)


def harmonise_tcga(
    matrices: Mapping[str, PathLike],
    probemap: PathLike | pd.Series | None = None,
    unit: str = "log2_fpkm1",
    clinical: Mapping[str, PathLike] | None = None,
    primary_codes: Sequence[str] = ("01",),
    blood_projects: Sequence[str] = ("LAML",),
    blood_codes: Sequence[str] = ("03",),
    on_gene_mismatch: str = "error",
    par_y: str = "drop",
) -> ad.AnnData:
    """Harmonise TCGA project matrices into one samples × genes AnnData in log2(FPKM+1).

    ``matrices``: project (e.g. ``"ACC"``) → genes × samples matrix (Xena GDC
    ``TCGA-<PROJ>.star_fpkm.tsv.gz``, or the RNAsum counts format with ``unit="counts"``).
    ``probemap``: Xena probe map path or a Series from :func:`read_probemap`; ``None`` → the
    symbol is the gene id. ``clinical``: optional project → ``TCGA-<PROJ>.clinical.tsv.gz``;
    its ``sample_type.samples`` is compared with the barcode code (matched on the 16-character
    sample barcode), disagreements warn and the barcode decides. A clinical project that is not
    in ``matrices`` is an error.

    Steps per project: :func:`read_matrix` → :func:`harmonise_gene_ids` (``par_y``) →
    :func:`collapse_duplicates` → primary selection (:func:`is_primary`; a project without any
    primary sample is an error). Then the gene sets are aligned: ``on_gene_mismatch="error"``
    (default) raises naming the first project whose unversioned ids differ from the first
    project's, with the counts; ``"intersect"`` keeps the ids shared by all projects and warns
    per project with the number dropped. Then :func:`to_log2_fpkm1` per project on the aligned
    genes — for ``"counts"`` the CPM library size is therefore the sum over the shared genes, so
    that every project is normalised on the same gene set. A barcode present in two projects is
    an error.

    Returns AnnData (float32), obs index = barcode as written in the file, obs columns
    ``cohort`` ("TCGA"), ``project``, ``cancer_type`` (= project, before label merging),
    ``sample_type`` ("primary"), ``sample_code``; var index = unversioned Ensembl id (sorted),
    ``var["symbol"]``; uns: ``unit`` (recorded), ``source_unit``, and per project
    ``n_duplicate_ids``, ``n_dropped_non_primary``, ``n_par_y_dropped``,
    ``n_genes_dropped_mismatch``, ``n_clinical_disagreements``.
    """
    if not matrices:
        raise InputError(None, "matrices", "no TCGA project given")
    if unit not in UNITS:
        raise InputError(None, "unit", f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")
    if on_gene_mismatch not in ("error", "intersect"):
        raise InputError(None, "on_gene_mismatch", f"unknown option {on_gene_mismatch!r}; expected 'error' or 'intersect'")
    clinical = dict(clinical or {})
    for project, path in clinical.items():
        if project not in matrices:
            raise InputError(path, "project", f"clinical file given for project {project!r}, "
                             "which has no expression matrix")
    pm = _probemap_series(probemap)
    frames: dict[str, pd.DataFrame] = {}
    n_dup: dict[str, int] = {}
    n_par: dict[str, int] = {}
    n_drop: dict[str, int] = {}
    n_clin: dict[str, int] = {}
    codes_by_project: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for project, path in matrices.items():
        project = str(project)
        df, n_dup[project], n_par[project] = _read_prepared(path, par_y)
        codes = [sample_code(s, path) for s in df.columns]
        if project in clinical:
            n_clin[project] = _check_clinical(list(df.columns), codes, read_clinical(clinical[project]), clinical[project])
        keep = np.array([is_primary(s, project, primary_codes, blood_projects, blood_codes, path) for s in df.columns])
        n_drop[project] = int((~keep).sum())
        if not keep.any():
            raise InputError(path, "samples", f"no primary tumour sample in project {project!r} "
                             f"(sample codes found: {sorted(set(codes))})")
        if n_drop[project]:
            dropped = pd.Series(codes)[~keep].value_counts().sort_index()
            _warn(f"{path}: {n_drop[project]} non-primary sample(s) of {project} dropped "
                  f"(sample codes {', '.join(f'{c}: {n}' for c, n in dropped.items())})")
        df = df.loc[:, keep].astype(np.float32)  # halves memory for the full TCGA (≈10k samples)
        for s in df.columns:
            if s in owner:
                raise InputError(path, f"sample {s!r}", f"duplicated barcode: also in project {owner[s]!r} "
                                 f"({matrices[owner[s]]})")
            owner[s] = project
        frames[project] = df
        codes_by_project[project] = [c for c, k in zip(codes, keep) if k]

    projects = list(frames)
    ref = projects[0]
    ref_ids = set(frames[ref].index)
    common = set(ref_ids)
    for p in projects[1:]:
        ids = set(frames[p].index)
        if ids != ref_ids:
            only_p, only_ref = len(ids - ref_ids), len(ref_ids - ids)
            if on_gene_mismatch == "error":
                raise InputError(matrices[p], "genes",
                                 f"project {p}: {only_p + only_ref} gene ids differ from project {ref} "
                                 f"({only_p} only in {p}, {only_ref} only in {ref}); "
                                 "use on_gene_mismatch='intersect' to keep the shared ids")
        common &= ids
    if not common:
        raise InputError(None, "genes", f"no gene id shared by all TCGA projects ({', '.join(projects)})")
    genes = pd.Index(sorted(common), name="gene_id")
    n_mismatch = {p: int(len(frames[p]) - len(genes)) for p in projects}
    for p in projects:
        if n_mismatch[p]:
            _warn(f"{matrices[p]}: {n_mismatch[p]} gene ids of project {p} are not in every TCGA "
                  f"project and were dropped ({len(genes)} shared ids kept)")

    X = np.empty((sum(f.shape[1] for f in frames.values()), len(genes)), dtype=np.float32)
    obs_parts, row = [], 0
    recorded = UNITS[unit]
    for p in projects:
        conv, recorded = to_log2_fpkm1(frames[p].loc[genes], unit, matrices[p])
        X[row:row + conv.shape[1]] = conv.to_numpy(dtype=np.float32).T
        row += conv.shape[1]
        obs_parts.append(pd.DataFrame({
            "cohort": "TCGA", "project": p, "cancer_type": p, "sample_type": "primary",
            "sample_code": codes_by_project[p]}, index=conv.columns))
        del frames[p]
    obs = pd.concat(obs_parts)
    uns = {
        "unit": recorded, "source_unit": unit, "par_y": par_y, "on_gene_mismatch": on_gene_mismatch,
        "n_duplicate_ids": n_dup, "n_dropped_non_primary": n_drop, "n_par_y_dropped": n_par,
        "n_genes_dropped_mismatch": n_mismatch, "n_clinical_disagreements": n_clin,
    }
    return _build_adata(X, obs, genes, pm, uns)


def harmonise_met500(
    matrix: PathLike,
    metadata: PathLike,
    probemap: PathLike | pd.Series | None = None,
    unit: str = "log2_fpkm0.001",
    sample_column: str = "Sample_id",
    label_column: str = "cohort",
    par_y: str = "drop",
) -> ad.AnnData:
    """Harmonise the MET500 matrix (Xena ``M.mx.log2.txt.gz``) into samples × genes log2(FPKM+1).

    ``metadata`` (``M.meta.plus.txt``) gives each sample's label in ``label_column``
    (``sample_column`` holds the sample ids, matched exactly to the matrix header). A matrix
    sample absent from the metadata is an error naming the samples; metadata samples without
    expression are dropped with a warning. Gene ids: :func:`harmonise_gene_ids` (``par_y``;
    gencode v23 ``ENSGR…`` PAR ids included) → :func:`collapse_duplicates` → sorted.

    Returns AnnData (float32) with obs ``cohort`` ("MET500"), ``cancer_type`` (= label, before
    merging), ``sample_type`` ("metastatic"); var as in :func:`harmonise_tcga`; uns ``unit``,
    ``source_unit``, ``n_duplicate_ids``, ``n_par_y_dropped``, ``n_metadata_without_expression``.
    """
    if unit not in UNITS:
        raise InputError(None, "unit", f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")
    pm = _probemap_series(probemap)
    labels = read_sample_table(metadata, sample_column, label_column, what="MET500 metadata")
    df, n_dup, n_par = _read_prepared(matrix, par_y)
    missing = [s for s in df.columns if s not in labels.index]
    if missing:
        raise InputError(metadata, f"column {sample_column!r}",
                         f"{len(missing)} sample(s) of the expression matrix {matrix} have no metadata row: "
                         f"{_examples(missing)}")
    extra = labels.index.difference(df.columns)
    if len(extra):
        _warn(f"{metadata}: {len(extra)} metadata sample(s) have no expression in {matrix} and were dropped: "
              f"{_examples(sorted(extra))}")
    df = df.loc[sorted(df.index)]
    conv, recorded = to_log2_fpkm1(df, unit, matrix)
    obs = pd.DataFrame({"cohort": "MET500", "cancer_type": labels.reindex(conv.columns).to_numpy(dtype=object),
                        "sample_type": "metastatic"}, index=conv.columns)
    uns = {"unit": recorded, "source_unit": unit, "par_y": par_y, "n_duplicate_ids": int(n_dup),
           "n_par_y_dropped": int(n_par), "n_metadata_without_expression": int(len(extra))}
    return _build_adata(conv.to_numpy(dtype=np.float32).T, obs, pd.Index(conv.index, name="gene_id"), pm, uns)


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

_TYPE_COLUMNS = ["experiment", "cancer_type", "role", "cohort", "n_train", "n_validation", "n_test", "rank"]
_SAMPLE_COLUMNS = ["experiment", "sample_id", "cohort", "cancer_type", "split"]


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
    return out


def _val_test(ids: Sequence[str], fraction: float, seed: int, key: str) -> tuple[list[str], list[str]]:
    """Seeded per-type split: sorted ids, permuted by a generator seeded with (seed, crc32(key));
    validation = the first floor(n · fraction) ids, test = the rest (test gets the odd one)."""
    ids = np.array(sorted(ids), dtype=object)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    perm = rng.permutation(len(ids))
    n_val = int(np.floor(len(ids) * fraction + 1e-9))
    return sorted(ids[perm[:n_val]]), sorted(ids[perm[n_val:]])


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

    Validation / test split per type *(our choice)*: the sorted sample ids are permuted by a
    generator seeded with ``(seed, crc32("<cohort>:<type>"))`` — independent of input order and
    of the other types — validation = first floor(n · validation_fraction), test = the rest.

    Small types: a type with fewer than ``min_samples`` samples in any split it has in an
    experiment (train, validation or test) cannot serve one-shot tasks; ``small_type_policy``
    ``"drop"`` removes it from that experiment with a warning naming it and the count,
    ``"error"`` raises :class:`InputError`. Fewer shared types than requested (the training
    sets' k plus ``n_test_types``, ``met500_n_train`` plus 2 test types): ``"drop"`` shrinks the
    request with a warning (test types first keep their number), ``"error"`` raises. An
    experiment left with fewer than 2 training or 2 test types always raises.

    Returns ``(types, samples)``: types columns ``experiment, cancer_type, role, cohort,
    n_train, n_validation, n_test, rank`` (rank: shared-type rank, <NA> for TCGA-only types);
    samples columns ``experiment, sample_id, cohort, cancer_type, split``.
    """
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

    def shortfall(what: str) -> None:
        if small_type_policy == "error":
            raise InputError(None, "shared cancer types", what)
        _warn(what + "; reduced (small_type_policy='drop')")

    test_n = min(int(n_test_types), S)
    if test_n < int(n_test_types):
        shortfall(f"only {S} cancer types occur in both cohorts, {n_test_types} test types requested")
    test_types = shared[S - test_n:]

    # plans: experiment → list of (cancer_type, role, cohort frame, mode)
    plans: dict[str, list[tuple[str, str, str, str]]] = {}
    for name, k in training_sets.items():
        k_eff = min(int(k), S - test_n)
        if k_eff < int(k):
            shortfall(f"training set {name!r}: {k} shared types requested but only {S - test_n} are not test types")
        plan = [(t, "train", "TCGA", "train") for t in tcga_only + shared[:k_eff]]
        plan += [(t, "test", "TCGA", "valtest") for t in test_types]
        plans[name] = plan
    m_train = min(int(met500_n_train), max(S - 2, 0))
    if m_train < int(met500_n_train):
        shortfall(f"experiment {MET500_EXPERIMENT!r}: {met500_n_train} training types + at least 2 test types "
                  f"requested but only {S} cancer types occur in both cohorts")
    plans[MET500_EXPERIMENT] = ([(t, "train", "MET500", "train") for t in shared[:m_train]]
                                + [(t, "test", "MET500", "valtest") for t in shared[m_train:]])
    c_n = min(int(met500_n_train), S)
    if c_n < int(met500_n_train):
        shortfall(f"experiment {CNN_EXPERIMENT!r}: {met500_n_train} types requested but only {S} are shared")
    plans[CNN_EXPERIMENT] = ([(t, "train", "TCGA", "train") for t in shared[:c_n]]
                             + [(t, "test", "MET500", "test") for t in shared[:c_n]])

    by_cohort = {
        "TCGA": {t: g["sample_id"].tolist() for t, g in t_obs.groupby("cancer_type")},
        "MET500": {t: g["sample_id"].tolist() for t, g in m_obs.groupby("cancer_type")},
    }
    cohort_label = {"TCGA": t_obs.set_index("sample_id")["cohort"], "MET500": m_obs.set_index("sample_id")["cohort"]}
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
                val, test = _val_test(ids, float(validation_fraction), seed, f"{cohort}:{t}")
                splits = {"validation": val, "test": test}
            assigned.setdefault(t, []).append((role, cohort, mode, splits))
        small = {}
        for t, entries in assigned.items():
            for role, cohort, mode, splits in entries:
                for split, ids in splits.items():
                    if len(ids) < int(min_samples):
                        small.setdefault(t, f"{len(ids)} {cohort} sample(s) in split {split!r}")
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
        for t, entries in assigned.items():
            for role, cohort, mode, splits in entries:
                type_rows.append({
                    "experiment": exp, "cancer_type": t, "role": role, "cohort": cohort,
                    "n_train": len(splits.get("train", [])), "n_validation": len(splits.get("validation", [])),
                    "n_test": len(splits.get("test", [])), "rank": rank.get(t, pd.NA)})
                for split, ids in splits.items():
                    labels = cohort_label[cohort].reindex(ids).to_numpy()
                    for sid, lab in zip(ids, labels):
                        sample_rows.append((exp, sid, lab, t, split))
        one_shot = exp != CNN_EXPERIMENT
        if one_shot:
            tr = {t for t, e in assigned.items() if any(r == "train" for r, *_ in e)}
            te = {t for t, e in assigned.items() if any(r == "test" for r, *_ in e)}
            assert not tr & te, f"internal error: {exp} train and test types overlap: {tr & te}"
    types = pd.DataFrame(type_rows, columns=_TYPE_COLUMNS)
    types["rank"] = types["rank"].astype("Int64")
    samples = pd.DataFrame(sample_rows, columns=_SAMPLE_COLUMNS)
    return types, samples
