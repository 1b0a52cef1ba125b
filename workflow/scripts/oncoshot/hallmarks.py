"""Hallmark labels from UCell scores (SPEC §3.4) and synthetic bulk profiles (SPEC §3.5).

* :func:`otsu_thresholds` — low / high thresholds of one score distribution: Otsu
  (``skimage.filters.threshold_otsu``, its default 256 bins) of the lower and of the upper half
  of the sorted scores. For an odd number of scores the median belongs to both halves
  (lower = ``s[:(n+1)//2]``, upper = ``s[n//2:]``); for an even number the halves are disjoint
  (``n/2`` each). NaN scores are ignored; no score gives ``(nan, nan)``.
* :func:`label_cells` — per tissue and hallmark: positive (1) when score > high, negative (0)
  when score < low, unlabelled (NaN) otherwise.
* :func:`synthetic_bulk` — per group (default study × sample) × hallmark × status: the
  qualifying cells are shuffled with a generator seeded by ``(seed, crc32 of the group,
  hallmark and status)`` (so one group's profiles do not depend on the other groups) and cut into
  non-overlapping groups of ``cells_per_bulk``; the leftover (< ``cells_per_bulk``) is dropped.
  Each profile is the sum of its cells' counts. A cell appears at most once per hallmark (it
  has one status per hallmark) and may appear in profiles of several hallmarks.
* :func:`pooled_validation_bulk` — validation mode: per group × hallmark, all positive cells
  pooled into one profile, and (``include_negative=True``, the default) all negative cells into
  one negative profile, so that per-patient metrics such as AUROC are defined.

The sums are one sparse product ``indicator (profiles × cells) @ counts (cells × genes)``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from skimage.filters import threshold_otsu

from oncoshot.errors import InputError

__all__ = [
    "STATUS_VALUES",
    "otsu_halves",
    "otsu_thresholds",
    "label_cells",
    "synthetic_bulk",
    "pooled_validation_bulk",
    "combine_profiles",
]

#: status name -> label value
STATUS_VALUES = {"positive": 1.0, "negative": 0.0}


# ---------------------------------------------------------------------------------------------
# Otsu labels
# ---------------------------------------------------------------------------------------------


def otsu_halves(scores) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper half of the sorted finite scores (median in both when n is odd)."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = np.sort(values[~np.isnan(values)])
    n = values.size
    return values[: (n + 1) // 2], values[n // 2 :]


def otsu_thresholds(scores) -> tuple[float, float]:
    """``(low, high)``: ``threshold_otsu`` of the lower and of the upper half of the scores.

    See :func:`otsu_halves` for the halves; a constant half gives its value (skimage's rule);
    no finite score gives ``(nan, nan)``.
    """
    lower, upper = otsu_halves(scores)
    if lower.size == 0:
        return float("nan"), float("nan")
    return float(threshold_otsu(lower)), float(threshold_otsu(upper))


def label_cells(
    scores_df: pd.DataFrame, tissue_series: pd.Series | Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Binary hallmark labels per tissue (SPEC §3.4).

    Parameters
    ----------
    scores_df
        cells × hallmarks UCell scores.
    tissue_series
        Tissue of every cell: a Series indexed by cell (aligned to ``scores_df.index``), or a
        sequence in the order of ``scores_df``.

    Returns
    -------
    labels : DataFrame like ``scores_df`` (float): 1.0 positive (score > high), 0.0 negative
        (score < low), NaN unlabelled (between, or NaN score).
    thresholds : DataFrame with columns ``tissue``, ``hallmark``, ``n_cells``, ``low``,
        ``high``, ``n_pos``, ``n_neg``, ``n_unlabelled``; one row per tissue × hallmark, tissues
        sorted, hallmarks in column order.
    """
    if isinstance(tissue_series, pd.Series):
        missing = scores_df.index.difference(tissue_series.index)
        if len(missing):
            raise InputError(
                None, "tissue", f"{len(missing)} scored cell(s) without a tissue, e.g. {missing[0]!r}"
            )
        tissue = tissue_series.reindex(scores_df.index)
    else:
        tissue = pd.Series(list(tissue_series), index=scores_df.index)
        if len(tissue) != len(scores_df):
            raise InputError(None, "tissue", f"{len(tissue)} tissues for {len(scores_df)} cells")
    if tissue.isna().any():
        raise InputError(None, "tissue", f"{int(tissue.isna().sum())} cell(s) with an empty tissue")
    tissue = tissue.astype(str).to_numpy()
    values = scores_df.to_numpy(dtype=np.float64)
    labels = np.full(values.shape, np.nan)
    rows = []
    for t in sorted(set(tissue)):
        mask = tissue == t
        block = values[mask]
        out = np.full(block.shape, np.nan)
        for j, hallmark in enumerate(scores_df.columns):
            col = block[:, j]
            low, high = otsu_thresholds(col)
            pos = col > high
            neg = col < low
            out[pos, j] = 1.0
            out[neg, j] = 0.0
            rows.append(
                {
                    "tissue": t,
                    "hallmark": str(hallmark),
                    "n_cells": int(mask.sum()),
                    "low": low,
                    "high": high,
                    "n_pos": int(pos.sum()),
                    "n_neg": int(neg.sum()),
                    "n_unlabelled": int(mask.sum() - pos.sum() - neg.sum()),
                }
            )
        labels[mask] = out
    labels_df = pd.DataFrame(labels, index=scores_df.index, columns=scores_df.columns)
    thresholds = pd.DataFrame(
        rows,
        columns=["tissue", "hallmark", "n_cells", "low", "high", "n_pos", "n_neg", "n_unlabelled"],
    )
    return labels_df, thresholds


# ---------------------------------------------------------------------------------------------
# synthetic bulk
# ---------------------------------------------------------------------------------------------


def _inputs(counts, obs, labels, group_by, genes):
    """Normalise (counts CSR, obs, labels aligned to obs, genes, group columns)."""
    if isinstance(counts, ad.AnnData):
        if obs is None:
            obs = counts.obs
        if genes is None:
            genes = counts.var_names
        counts = counts.X
    if obs is None:
        raise InputError(None, "obs", "a cell table is required unless counts is an AnnData")
    counts = sp.csr_matrix(counts) if not sp.issparse(counts) or counts.format != "csr" else counts
    n_cells, n_genes = counts.shape
    if len(obs) != n_cells:
        raise InputError(None, "obs", f"{len(obs)} cells in obs for {n_cells} rows of counts")
    if obs.index.has_duplicates:
        raise InputError(None, "obs", "duplicated cell names")
    group_by = [group_by] if isinstance(group_by, str) else list(group_by)
    needed = [c for c in dict.fromkeys(group_by + ["tissue"]) if c not in obs.columns]
    if needed:
        raise InputError(None, "obs", f"missing column(s) {needed}")
    if genes is None:
        genes = [str(i) for i in range(n_genes)]
    genes = pd.Index([str(g) for g in genes])
    if len(genes) != n_genes:
        raise InputError(None, "genes", f"{len(genes)} gene names for {n_genes} columns")
    labels = labels.reindex(obs.index)
    bad = ~(labels.isna() | labels.isin([0, 1]))
    if bad.to_numpy().any():
        raise InputError(None, "labels", "values must be 1 (positive), 0 (negative) or NaN")
    return counts, obs, labels, genes, group_by


def _group_codes(obs: pd.DataFrame, group_by: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Sorted distinct groups (DataFrame of ``group_by`` values as str) and each cell's group."""
    keys = obs[group_by].astype(str)
    frame = keys.drop_duplicates().sort_values(group_by).reset_index(drop=True)
    lookup = {t: i for i, t in enumerate(frame.itertuples(index=False, name=None))}
    cell_group = np.fromiter(
        (lookup[t] for t in keys.itertuples(index=False, name=None)), dtype=np.int64, count=len(keys)
    )
    return frame, cell_group


def _assemble(counts, obs, genes, group_frame, group_by, members, prefix_cols):
    """Profiles AnnData and membership table from a list of (group, hallmark, status, k, cells)."""
    n_cells = counts.shape[0]
    names, meta, prof_idx, cell_idx = [], [], [], []
    # per-cell values of the descriptive columns that are not grouping columns
    described = {
        c: obs[c].astype(str).to_numpy()
        for c in ("study", "sample", "tissue")
        if c in obs.columns and c not in group_by
    }
    group_values = [
        {c: str(v) for c, v in zip(group_by, values, strict=True)}
        for values in group_frame.itertuples(index=False, name=None)
    ]
    for p, (g, hallmark, status, k, cells) in enumerate(members):
        row = dict(group_values[g])
        names.append("|".join(list(row.values()) + [str(hallmark), status, str(k)]))
        for c, values in described.items():
            distinct = sorted(set(values[cells].tolist()))
            row[c] = distinct[0] if len(distinct) == 1 else ",".join(distinct)
        for c in ("study", "sample"):
            row.setdefault(c, "")
        row.update({"hallmark": str(hallmark), "status": status, "n_cells": int(len(cells))})
        meta.append(row)
        prof_idx.append(np.full(len(cells), p, dtype=np.int64))
        cell_idx.append(np.asarray(cells, dtype=np.int64))
    n_prof = len(members)
    if n_prof:
        pi = np.concatenate(prof_idx)
        ci = np.concatenate(cell_idx)
    else:
        pi = ci = np.zeros(0, dtype=np.int64)
    indicator = sp.csr_matrix(
        (np.ones(pi.size, dtype=np.float32), (pi, ci)), shape=(n_prof, n_cells)
    )
    X = sp.csr_matrix(indicator @ counts.astype(np.float32, copy=False), dtype=np.float32)
    columns = ["hallmark", "status"] + [c for c in dict.fromkeys(prefix_cols)] + ["tissue", "n_cells"]
    prof_obs = pd.DataFrame(meta, columns=list(dict.fromkeys(columns)), index=pd.Index(names, dtype=object))
    prof_obs["n_cells"] = prof_obs["n_cells"].astype(np.int64)
    profiles = ad.AnnData(X=X, obs=prof_obs, var=pd.DataFrame(index=genes))
    cell_names = obs.index.astype(str).to_numpy()
    membership = pd.DataFrame(
        {
            "profile": np.asarray(names, dtype=object)[pi] if n_prof else np.zeros(0, dtype=object),
            "cell": cell_names[ci],
            "hallmark": prof_obs["hallmark"].to_numpy()[pi] if n_prof else np.zeros(0, dtype=object),
            "status": prof_obs["status"].to_numpy()[pi] if n_prof else np.zeros(0, dtype=object),
        }
    )
    return profiles, membership


def synthetic_bulk(
    counts,
    obs: pd.DataFrame | None,
    labels: pd.DataFrame,
    cells_per_bulk: int = 200,
    seed: int = 0,
    group_by: Sequence[str] = ("study", "sample"),
    genes: Sequence[str] | None = None,
) -> tuple[ad.AnnData, pd.DataFrame]:
    """Synthetic bulk profiles of ``cells_per_bulk`` same-status cells (SPEC §3.5).

    Parameters
    ----------
    counts
        cells × genes counts (sparse or dense, rows in the order of ``obs``), or an AnnData
        (its ``X``; ``obs`` and ``genes`` default to its obs / var names).
    obs
        Cell table indexed by cell name with the ``group_by`` columns and ``tissue``.
    labels
        cells × hallmarks, 1 / 0 / NaN (:func:`label_cells`), indexed by cell name; cells of
        ``obs`` absent from it are unlabelled.
    cells_per_bulk, seed, group_by
        Group size, seed of the shuffles, columns defining a patient sample.

    Returns
    -------
    profiles : AnnData, profiles × genes, ``X`` CSR float32 summed counts; ``obs`` indexed by
        ``"<group values>|<hallmark>|<status>|<k>"`` with ``hallmark``, ``status``
        ("positive"/"negative"), the ``group_by`` columns, ``study``, ``sample``, ``tissue``,
        ``n_cells``. Order: groups sorted, then hallmark (column order), positive before
        negative, then k.
    membership : DataFrame ``profile``, ``cell``, ``hallmark``, ``status``: one row per cell of a
        profile.
    """
    cells_per_bulk = int(cells_per_bulk)
    if cells_per_bulk < 1:
        raise InputError(None, "cells_per_bulk", f"must be >= 1, got {cells_per_bulk}")
    counts, obs, labels, genes, group_by = _inputs(counts, obs, labels, group_by, genes)
    group_frame, cell_group = _group_codes(obs, group_by)
    order = np.argsort(cell_group, kind="stable")
    bounds = np.searchsorted(cell_group[order], np.arange(len(group_frame) + 1))
    lab = labels.to_numpy(dtype=np.float64)
    members = []
    for g in range(len(group_frame)):
        cells_g = order[bounds[g] : bounds[g + 1]]  # ascending cell positions
        key = "|".join(str(v) for v in group_frame.iloc[g].tolist())
        for j, hallmark in enumerate(labels.columns):
            for status, value in STATUS_VALUES.items():
                qualifying = cells_g[lab[cells_g, j] == value]
                n_full = qualifying.size // cells_per_bulk
                if n_full == 0:
                    continue
                tag = f"{key}|{hallmark}|{status}".encode()
                rng = np.random.default_rng([int(seed), zlib.crc32(tag)])
                shuffled = rng.permutation(qualifying)[: n_full * cells_per_bulk]
                for k, cells in enumerate(shuffled.reshape(n_full, cells_per_bulk)):
                    members.append((g, hallmark, status, k, cells))
    return _assemble(counts, obs, genes, group_frame, group_by, members, list(group_by) + ["study", "sample"])


def pooled_validation_bulk(
    counts,
    obs: pd.DataFrame | None,
    labels: pd.DataFrame,
    group_by: Sequence[str] = ("study", "sample"),
    include_negative: bool = True,
    min_cells: int = 1,
    genes: Sequence[str] | None = None,
) -> tuple[ad.AnnData, pd.DataFrame]:
    """Validation profiles (SPEC §3.5): per group × hallmark all positive cells pooled into one
    profile (``status="positive"``), and with ``include_negative`` all negative cells into one
    ``status="negative"`` profile. A pool with fewer than ``min_cells`` cells is not made.

    Same inputs and outputs as :func:`synthetic_bulk` (``k`` is always 0).
    """
    min_cells = max(1, int(min_cells))
    counts, obs, labels, genes, group_by = _inputs(counts, obs, labels, group_by, genes)
    group_frame, cell_group = _group_codes(obs, group_by)
    order = np.argsort(cell_group, kind="stable")
    bounds = np.searchsorted(cell_group[order], np.arange(len(group_frame) + 1))
    lab = labels.to_numpy(dtype=np.float64)
    statuses = dict(STATUS_VALUES) if include_negative else {"positive": 1.0}
    members = []
    for g in range(len(group_frame)):
        cells_g = order[bounds[g] : bounds[g + 1]]
        for j, hallmark in enumerate(labels.columns):
            for status, value in statuses.items():
                pooled = cells_g[lab[cells_g, j] == value]
                if pooled.size >= min_cells:
                    members.append((g, hallmark, status, 0, pooled))
    return _assemble(counts, obs, genes, group_frame, group_by, members, list(group_by) + ["study", "sample"])


def apply_thresholds(scores_df: pd.DataFrame, tissue_series: pd.Series | Sequence[str],
                     thresholds: pd.DataFrame) -> pd.DataFrame:
    """Label cells with thresholds fitted elsewhere (e.g. held-out studies with the training
    studies' per-tissue thresholds): 1.0 if score > high, 0.0 if score < low, NaN otherwise.

    ``thresholds`` is the table of :func:`label_cells` (``tissue``, ``hallmark``, ``low``,
    ``high``). A tissue × hallmark without a threshold row is an InputError naming it.
    """
    tissue = (tissue_series.reindex(scores_df.index) if isinstance(tissue_series, pd.Series)
              else pd.Series(list(tissue_series), index=scores_df.index))
    table = thresholds.set_index(["tissue", "hallmark"])
    labels = pd.DataFrame(np.nan, index=scores_df.index, columns=scores_df.columns, dtype=float)
    for t in pd.unique(tissue):
        rows = (tissue == t).to_numpy()
        for h in scores_df.columns:
            if (t, h) not in table.index:
                raise InputError(None, "tissue", f"no threshold for tissue {t!r}, hallmark {h!r}")
            low, high = table.loc[(t, h), ["low", "high"]]
            s = scores_df.loc[rows, h].to_numpy(dtype=float)
            lab = np.full(s.shape, np.nan)
            lab[s > high] = 1.0
            lab[s < low] = 0.0
            labels.loc[rows, h] = lab
    return labels


def combine_profiles(parts: Sequence[ad.AnnData], join: str = "outer") -> ad.AnnData:
    """Synthetic bulk profiles of several studies in one matrix (``anndata.concat``, obs names kept).

    ``join="outer"`` (the workflow's ``combine_synthetic_bulk``) keeps the union of the genes, a gene
    absent from a study counting 0 in its profiles; ``"inner"`` keeps the genes every study has.
    Genes sorted by name; ``X`` CSR float32. No parts → an empty AnnData.
    """
    if join not in ("outer", "inner"):
        raise InputError(None, "join", f"expected 'outer' or 'inner', got {join!r}")
    parts = list(parts)
    if not parts:
        return ad.AnnData(sp.csr_matrix((0, 0), dtype=np.float32))
    combined = ad.concat(parts, join=join, fill_value=0, index_unique=None)
    combined.X = sp.csr_matrix(combined.X, dtype=np.float32)
    return combined[:, sorted(combined.var_names)].copy()
