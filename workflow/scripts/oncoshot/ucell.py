"""UCell hallmark scores (SPEC §3.3), vectorised and chunked, equal to ``pyucell``.

:func:`ucell_scores` reproduces ``pyucell.compute_ucell_scores`` (pyucell 0.8.0) with its
default arguments (``max_rank=1500``, ``ties_method="average"``, ``missing_genes="impute"``,
``w_neg=1.0``, CPU path) detail for detail:

* per cell, only the non-zero entries are ranked, by decreasing value, ties get the average
  rank (``scipy.stats.rankdata(-x, "average")``); NaN counts as zero, ±inf as the largest finite
  value of the dtype (``numpy.nan_to_num``); negative values are non-zero and ranked after the
  positive ones (zeros are never ranked);
* a rank above ``max_rank`` (a tied group straddling ``max_rank`` is judged by its average
  rank) and a zero count as ``max_rank``: the effective rank is ``min(rank, max_rank)``;
* a signature is a list of symbols; a trailing ``"+"`` is stripped (positive gene), a trailing
  ``"-"`` makes it a negative gene (stripped); every item is ``str(g).strip()``-ed first;
  duplicates count as often as they are listed; a gene missing from the data counts as
  ``max_rank`` and still counts in ``n`` (``missing_genes="impute"``); when a gene symbol occurs
  more than once in ``genes`` the *last* column is used (pyucell's ``{g: i}`` dictionary);
* for the n genes of one part (positive or negative),
  ``U = 1 - (Σ ranks - n(n+1)/2) / (n·max_rank - n(n+1)/2)``, 0 when the part is empty or the
  denominator is 0; the score is ``max(U_pos - w_neg·U_neg, 0)``.

The arithmetic of the last step is done in float32 as pyucell does (rank sums are exact), so
the scores are bit-identical to pyucell's for any signature with ``n·max_rank < 2**23``.

How the ranks are computed without a per-cell Python loop: a chunk of ``chunk_size`` cells
is read as CSR (views into an in-memory CSR matrix, no copy). Every non-zero value gets a uint32
order-preserving code (its float32 bit pattern when float32 holds the values exactly, as for
UMI counts and float32 TPM; otherwise its index among the chunk's distinct values). The chunk
is cut into bands of 32 cells; a band's codes are written into a band × (longest row) array
padded with the code of 0, each row is sorted (``np.sort(axis=1)``, short in-cache rows), and
``row << 32`` is added so that the flattened band is globally sorted. The signature entries of
the chunk (``csr[:, signature_columns]``), keyed the same way and sorted, are located with two
``searchsorted`` calls: ``left`` (first element equal to x) and ``right`` (one past the last),
so that #values above x = row end - right and the average rank is
``#above + (right - left + 1) / 2``. The rank sums are ``n·max_rank`` plus the sparse matrix
of deficits ``min(rank, max_rank) - max_rank`` (cells × distinct signature genes) times the
gene-membership matrix of the signatures (exact: half-integers). Working memory is O(non-zeros
of one chunk) per worker, whatever the number of cells.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import scipy.sparse as sp

from oncoshot.errors import InputError

__all__ = [
    "HALLMARK_CODES",
    "DEFAULT_CHUNK_SIZE",
    "UCellWarning",
    "read_gene_sets",
    "parse_signature",
    "ucell_scores",
]

#: OncoMark hallmark codes in the order of ``hallmark_surv_curated.csv``.
HALLMARK_CODES = ("IA", "TPI", "GIM", "SPS", "AID", "ERI", "RCD", "EGS", "DCE", "AIM")

#: Cells per chunk (per worker thread). Measured working memory above the input: ≈ 50 MiB at
#: 2,000 detected genes a cell (benchmarks/ucell_benchmark.py), independent of the cell count.
DEFAULT_CHUNK_SIZE = 1000


class UCellWarning(UserWarning):
    """Recoverable oddities of the scoring input (duplicated gene symbols, empty signatures)."""


# ---------------------------------------------------------------------------------------------
# gene sets
# ---------------------------------------------------------------------------------------------


def read_gene_sets(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read OncoMark's gene-set CSV: one column per hallmark, symbols listed down the column.

    Shorter columns are padded with empty cells. Symbols are whitespace-stripped, empty cells
    dropped and duplicates removed keeping the first occurrence. Returns ``{column: [symbols]}``
    in the column order of the file. Raises :class:`InputError` when the file is missing, has no
    columns, or has duplicated / empty column names.
    """
    if not os.path.exists(path):
        raise InputError(path, None, "gene-set file not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise InputError(path, None, "gene-set file is empty") from None
    names = [str(c).strip() for c in table.columns]
    if not names:
        raise InputError(path, "header", "no gene-set columns")
    bad = [c for c in names if not c or c.startswith("Unnamed:")]
    if bad:
        raise InputError(path, "header", f"empty column name(s): {bad}")
    # pandas renames duplicated headers "X.1"; read the raw header to detect them
    with open(path, encoding="utf-8-sig") as handle:
        raw = [c.strip() for c in handle.readline().rstrip("\r\n").split(",")]
    dup = sorted({c for c in raw if raw.count(c) > 1})
    if dup:
        raise InputError(path, "header", f"duplicated gene-set name(s): {dup}")
    out: dict[str, list[str]] = {}
    for raw_name, name in zip(table.columns, names, strict=True):
        seen: dict[str, None] = {}
        for value in table[raw_name].tolist():
            symbol = str(value).strip()
            if symbol and symbol not in seen:
                seen[symbol] = None
        out[name] = list(seen)
    return out


def parse_signature(genes: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split a signature into (positive, negative) symbols exactly as pyucell's ``_parse_sig``."""
    pos: list[str] = []
    neg: list[str] = []
    for g in genes:
        gs = str(g).strip()
        if gs.endswith("+"):
            pos.append(gs[:-1])
        elif gs.endswith("-"):
            neg.append(gs[:-1])
        else:
            pos.append(gs)
    return pos, neg


# ---------------------------------------------------------------------------------------------
# ranking helpers
# ---------------------------------------------------------------------------------------------

_SHIFT = np.uint64(32)
_SIGN = np.uint32(0x80000000)


def _mono32(v32: np.ndarray) -> np.ndarray:
    """Order-preserving map float32 -> uint32 (IEEE 754: flip all bits of negatives, set the
    sign bit of the others)."""
    bits = v32.view(np.uint32)
    return np.where(bits >= _SIGN, ~bits, bits | _SIGN)


class _Coder:
    """uint32 order-preserving codes of the (cleaned, non-zero) values of one chunk.

    float32 values (or values float32 holds exactly, e.g. integer UMI counts) are coded by their
    bit pattern (monotone for non-negative floats; :func:`_mono32` when negatives occur); other
    values by their index among the chunk's distinct values (and 0).
    """

    def __init__(self, data: np.ndarray, negative: bool):
        self.uniq = None
        self.data32 = None
        if data.dtype == np.float32:
            self.data32 = data
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                v32 = data.astype(np.float32)
                exact = np.array_equal(v32.astype(data.dtype), data)
            if exact:
                self.data32 = v32
            else:
                self.uniq = np.unique(np.concatenate([data, np.zeros(1, data.dtype)]))
        self.data = data
        self.negative = negative
        self.zero = self.encode(np.zeros(1, dtype=data.dtype))[0]

    def encode(self, values: np.ndarray) -> np.ndarray:
        if self.uniq is not None:
            return np.searchsorted(self.uniq, values).astype(np.uint32)
        v32 = np.ascontiguousarray(values, dtype=np.float32)
        if self.negative:
            return _mono32(v32)
        return v32.view(np.uint32)

    def codes(self) -> np.ndarray:
        return self.encode(self.data if self.data32 is None else self.data32)


def _clean(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray):
    """pyucell's view of a row: NaN -> 0, ±inf -> ±max (``nan_to_num``), zeros never ranked.

    Returns (data, indices, indptr, has_negative) without explicit zeros; the input arrays are
    returned as they are (no copy) in the usual case of finite, strictly positive values."""
    if data.size == 0:
        return data, indices, indptr, False
    lo, hi = data.min(), data.max()
    floating = np.issubdtype(data.dtype, np.floating)
    if lo > 0 and (not floating or np.isfinite(hi)):
        return data, indices, indptr, False
    if floating and not (np.isfinite(lo) and np.isfinite(hi)):
        data = np.nan_to_num(data)
    negative = bool(data.min() < 0)
    keep = data != 0
    if keep.all():
        return data, indices, indptr, negative
    kept_before = np.zeros(keep.size + 1, dtype=np.int64)
    np.cumsum(keep, out=kept_before[1:])
    return data[keep], indices[keep], kept_before[indptr], negative


def _csr_view(data, indices, indptr, shape) -> sp.csr_matrix:
    """A csr_matrix on existing arrays without the O(nnz) format check of the constructor."""
    m = sp.csr_matrix(shape, dtype=data.dtype)
    m.data, m.indices, m.indptr = data, indices, indptr
    return m


def _chunk_ranks(
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    n_genes: int,
    sig_cols: np.ndarray,
    max_rank: int,
    band: int = 32,
) -> sp.csr_matrix:
    """Rank deficits ``min(rank, max_rank) - max_rank`` (≤ 0) of the signature genes detected in
    each cell of a chunk, as a sparse cells × distinct-signature-genes matrix (a gene not
    detected in a cell has effective rank ``max_rank``, deficit 0).

    ``data, indices, indptr`` are one chunk of a CSR matrix (indptr starting at 0). Rows are
    processed in bands of ``band`` cells: the non-zero values of a band are written into a
    band × (longest row) array padded with the code of 0, each row sorted (``np.sort`` axis 1),
    and the sorted codes offset by ``row << 32`` so that the flattened band is globally sorted;
    the signature entries, sorted the same way, are located with two ``searchsorted`` calls.
    """
    n_rows = indptr.size - 1
    shape = (n_rows, sig_cols.size)
    data, indices, indptr, negative = _clean(data, indices, indptr)
    if data.size == 0 or sig_cols.size == 0:
        return sp.csr_matrix(shape, dtype=np.float64)
    coder = _Coder(data, negative)
    codes = coder.codes()
    zero = coder.zero
    sig = _csr_view(data, indices, indptr, (n_rows, n_genes))[:, sig_cols]
    sig_data = sig.data
    sig_codes = coder.encode(sig_data)
    sig_ptr = sig.indptr
    deficit = np.zeros(sig_data.size, dtype=np.float64)  # in the order of sig's entries
    lengths_all = np.diff(indptr)
    # buffers reused by every band (fresh large arrays would cost page faults each time)
    max_width = int(lengths_all.max())
    padded_buf = np.empty(band * max_width, dtype=np.uint32)
    keys_buf = np.empty(band * max_width, dtype=np.uint64)
    offsets = np.arange(band, dtype=np.uint64) << _SHIFT
    for s in range(0, n_rows, band):
        e = min(s + band, n_rows)
        qa, qb = sig_ptr[s], sig_ptr[e]
        if qa == qb:
            continue
        r = e - s
        a, b = indptr[s], indptr[e]
        lengths = lengths_all[s:e]
        width = int(lengths.max())
        padded = padded_buf[: r * width].reshape(r, width)
        padded.fill(zero)
        padded[np.arange(width) < lengths[:, None]] = codes[a:b]
        padded.sort(axis=1)
        keys2d = keys_buf[: r * width].reshape(r, width)
        np.add(padded, offsets[:r, None], out=keys2d)
        keys = keys_buf[: r * width]
        qrow = np.repeat(np.arange(r, dtype=np.int64), np.diff(sig_ptr[s : e + 1]))
        qkeys = (qrow.astype(np.uint64) << _SHIFT) | sig_codes[qa:qb]
        order = np.argsort(qkeys)
        qkeys = qkeys[order]
        qrow = qrow[order]
        left = np.searchsorted(keys, qkeys, side="left")
        right = np.searchsorted(keys, qkeys, side="right")
        greater = (qrow + 1) * width - right  # values above x in its padded row
        if coder.negative:  # the zero padding lies above a negative x but is never ranked
            below0 = sig_data[qa:qb][order] < 0
            greater -= np.where(below0, width - lengths[qrow], 0)
        rank = greater + (right - left + 1) * 0.5
        np.minimum(rank, float(max_rank), out=rank)
        deficit[qa + order] = rank - max_rank
    return sp.csr_matrix((deficit, sig.indices, sig_ptr), shape=shape)


def _u_float32(rank_sum: np.ndarray, n: int, max_rank: int) -> np.ndarray:
    """pyucell's ``_calculate_U`` on exact rank sums, with its float32 arithmetic."""
    n_cells = rank_sum.shape[0]
    if n == 0:
        return np.zeros(n_cells, dtype=np.float32)
    s_min = n * (n + 1) / 2.0
    s_max = n * max_rank
    if s_max == s_min:
        return np.zeros(n_cells, dtype=np.float32)
    rs = rank_sum.astype(np.float32)
    return 1.0 - (rs - s_min) / (s_max - s_min)


# ---------------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------------


def ucell_scores(
    X,
    genes: Sequence[str] | None,
    signatures: Mapping[str, Sequence[str]],
    max_rank: int = 1500,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    w_neg: float = 1.0,
    *,
    cell_names: Sequence[str] | None = None,
    n_jobs: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """UCell scores of every cell for every signature, equal to ``pyucell.compute_ucell_scores``.

    Parameters
    ----------
    X
        cells × genes expression: scipy sparse (CSR is used in place; other sparse formats are
        converted to CSR once), a dense 2-D array, anything that slices rows ``X[a:b]`` into one
        of those (e.g. a backed AnnData's ``X``), or an :class:`anndata.AnnData` (its ``X``;
        ``genes`` and ``cell_names`` then default to its var / obs names).
    genes
        Gene symbols of the columns of ``X`` (length = number of columns).
    signatures
        ``{name: [symbols]}``; see the module docstring for ``+`` / ``-`` suffixes.
    max_rank, w_neg
        As pyucell (defaults 1500 and 1.0).
    chunk_size
        Cells processed at once (the memory bound); results do not depend on it.
    cell_names
        Index of the result (default ``0..n-1``).
    n_jobs
        Threads scoring chunks concurrently (numpy releases the GIL in the heavy steps); peak
        working memory grows with ``n_jobs × chunk_size``. Results do not depend on it.

    Returns
    -------
    scores : DataFrame, cells × signatures (columns = signature names, no suffix), float32.
    missing : DataFrame, one row per signature: ``signature``, ``n_genes`` (positive + negative,
        with multiplicity), ``n_present``, ``n_missing``, ``missing_genes`` (comma-separated, in
        signature order).
    """
    try:
        import anndata as ad
    except ImportError:  # pragma: no cover
        ad = None
    if ad is not None and isinstance(X, ad.AnnData):
        if genes is None:
            genes = X.var_names
        if cell_names is None:
            cell_names = X.obs_names
        X = X.X
    if genes is None:
        raise InputError(None, "genes", "gene symbols are required unless X is an AnnData")
    if X is None or len(getattr(X, "shape", ())) != 2:
        raise InputError(None, "X", "expression must be a 2-D cells × genes matrix")
    max_rank = int(max_rank)
    if max_rank < 1:
        raise InputError(None, "max_rank", f"must be >= 1, got {max_rank}")
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise InputError(None, "chunk_size", f"must be >= 1, got {chunk_size}")
    n_jobs = max(1, int(n_jobs))
    if not isinstance(signatures, Mapping):
        raise InputError(None, "signatures", "must be a mapping {name: [gene symbols]}")
    genes = [str(g) for g in genes]
    n_cells, n_genes = X.shape
    if len(genes) != n_genes:
        raise InputError(None, "genes", f"{len(genes)} gene symbols for {n_genes} columns of X")
    if cell_names is not None and len(cell_names) != n_cells:
        raise InputError(None, "cell_names", f"{len(cell_names)} names for {n_cells} rows of X")
    if sp.issparse(X) and X.format != "csr":
        X = sp.csr_matrix(X)
    # repeated (row, column) entries: pyucell sees their sum (toarray), so must we; checked
    # once here (scipy, O(nnz)) and, when the matrix is not canonical, fixed chunk by chunk
    canonical = bool(X.has_canonical_format) if sp.issparse(X) else True

    # -- signatures -> parts (positive, negative) of present column indices and missing counts
    gene_index = {g: i for i, g in enumerate(genes)}  # last occurrence wins, as in pyucell
    dup_symbols: set[str] = set()
    if len(gene_index) < n_genes:
        gidx = pd.Index(genes)
        dup_symbols = set(gidx[gidx.duplicated()])
    sig_names = [str(name) for name in signatures]
    parts: list[tuple[list[int], int, int]] = []  # (present columns, n missing, n)
    report = []
    used_dups: set[str] = set()
    for name in signatures:
        items = signatures[name]
        if isinstance(items, str):
            raise InputError(None, f"signatures[{name!r}]", "must be a list of gene symbols, not a string")
        pos, neg = parse_signature(list(items))
        missing_all: list[str] = []
        n_present = 0
        for part in (pos, neg):
            cols = [gene_index[g] for g in part if g in gene_index]
            miss = [g for g in part if g not in gene_index]
            used_dups.update(g for g in part if g in dup_symbols)
            parts.append((cols, len(miss), len(part)))
            missing_all.extend(miss)
            n_present += len(cols)
        if not pos and not neg:
            warnings.warn(f"signature {name!r} is empty: its score is 0", UCellWarning, stacklevel=2)
        report.append(
            {
                "signature": str(name),
                "n_genes": len(pos) + len(neg),
                "n_present": n_present,
                "n_missing": len(missing_all),
                "missing_genes": ",".join(missing_all),
            }
        )
    if used_dups:
        warnings.warn(
            f"{len(used_dups)} signature gene symbol(s) occur more than once among the genes; the "
            f"last column is used, as in pyucell: {sorted(used_dups)[:10]}",
            UCellWarning,
            stacklevel=2,
        )

    sig_cols = np.array(sorted({c for cols, _, _ in parts for c in cols}), dtype=np.int64)
    position = {c: k for k, c in enumerate(sig_cols.tolist())}
    membership = np.zeros((sig_cols.size, len(parts)), dtype=np.float64)
    for j, (cols, _, _) in enumerate(parts):
        for c in cols:
            membership[position[c], j] += 1.0
    n_part = [n for _, _, n in parts]
    full_sum = np.array(n_part, dtype=np.float64) * max_rank

    scores = np.zeros((n_cells, len(sig_names)), dtype=np.float32)
    in_memory_csr = sp.issparse(X)

    def score_chunk(start: int) -> None:
        stop = min(start + chunk_size, n_cells)
        if in_memory_csr:
            a, b = X.indptr[start], X.indptr[stop]
            data, indices = X.data[a:b], X.indices[a:b]
            indptr = X.indptr[start : stop + 1] - a
            if not canonical:
                block = sp.csr_matrix((data, indices, indptr), shape=(stop - start, n_genes), copy=True)
                block.sum_duplicates()
                data, indices, indptr = block.data, block.indices, block.indptr
        else:
            block = X[start:stop]
            block = sp.csr_matrix(block) if sp.issparse(block) else sp.csr_matrix(np.asarray(block))
            block.sum_duplicates()
            data, indices, indptr = block.data, block.indices, block.indptr
        deficits = _chunk_ranks(data, indices, indptr, n_genes, sig_cols, max_rank)
        # Σ ranks = n·max_rank + Σ (rank - max_rank) over the detected genes (exact)
        sums = deficits @ membership + full_sum
        for k in range(len(sig_names)):
            u_pos = _u_float32(sums[:, 2 * k], n_part[2 * k], max_rank)
            u_neg = _u_float32(sums[:, 2 * k + 1], n_part[2 * k + 1], max_rank)
            score = u_pos - w_neg * u_neg
            score[score < 0] = 0.0
            scores[start:stop, k] = score

    starts = range(0, n_cells, chunk_size)
    if n_jobs == 1 or len(starts) <= 1:
        for start in starts:
            score_chunk(start)
    else:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            for _ in pool.map(score_chunk, starts):
                pass

    if cell_names is not None:
        index = pd.Index([str(c) for c in cell_names])
    else:
        index = pd.RangeIndex(n_cells)
    scores_df = pd.DataFrame(scores, index=index, columns=sig_names)
    missing_df = pd.DataFrame(
        report, columns=["signature", "n_genes", "n_present", "n_missing", "missing_genes"]
    )
    return scores_df, missing_df


#: ``singlecell.ucell.no_signature_genes``: what a signature none of whose genes a study measured
#: gets (UCell would score every cell 0, which reads as "no activity").
NO_SIGNATURE_GENE_POLICIES = ("error", "nan")


def signatures_without_genes(scores: pd.DataFrame, missing: pd.DataFrame, *, study: str, policy: str = "error",
                             source: str | None = None, gene_sets: str | None = None) -> pd.DataFrame:
    """Apply the ``no_signature_genes`` policy to the output of :func:`ucell_scores`.

    A signature with no gene present in the study (``n_present == 0``): ``"error"`` raises an
    :class:`InputError` naming the study and the signature; ``"nan"`` sets its scores to NaN
    (never 0; downstream, NaN cells are unlabelled for that hallmark). ``missing`` gains a column
    ``scored`` (``ucell`` or ``nan: no signature gene in the study``). Returns the scores."""
    if policy not in NO_SIGNATURE_GENE_POLICIES:
        raise InputError(None, "config key 'singlecell.ucell.no_signature_genes'",
                         f"unknown value {policy!r}; expected one of {list(NO_SIGNATURE_GENE_POLICIES)}")
    empty = missing.loc[missing["n_present"] == 0, "signature"].tolist()
    missing["scored"] = ["nan: no signature gene in the study" if s in empty else "ucell"
                         for s in missing["signature"]]
    if not empty:
        return scores
    row = missing.set_index("signature").loc[empty[0]]
    if policy == "error":
        genes = str(row["missing_genes"]).split(",")
        raise InputError(source, f"study {study!r}, hallmark {empty[0]!r}",
                         f"none of its {int(row['n_genes'])} signature genes (e.g. {', '.join(genes[:5])}) is "
                         f"among the study's genes{f' (gene sets: {gene_sets})' if gene_sets else ''}, so every cell "
                         "would score 0; check the gene symbols, or set singlecell.ucell.no_signature_genes: nan "
                         f"to report NaN{f' (also: {empty[1:]})' if len(empty) > 1 else ''}")
    scores = scores.copy()
    scores[empty] = np.nan
    return scores
