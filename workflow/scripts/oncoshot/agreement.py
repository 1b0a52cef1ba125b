"""Agreement of two hallmark scorers on the same samples: our trained model and OncoMark's published
model (:mod:`oncoshot.sources.oncomark`).

* :func:`spearman_ci` — Spearman ρ of two score vectors over the samples and a percentile bootstrap
  95 % interval (samples resampled with replacement, ``n_boot`` times, seeded generator; a resample
  in which either vector is constant gives no ρ and is left out).
* :func:`agreement_table` — per hallmark: n, ρ (ours vs published, per sample across samples) with
  its interval, the mean of each scorer, the fraction of published probabilities ≥ 0.99 (the
  published model saturates near 1 on bulk tumours, which caps any rank agreement), and ρ of the
  per-type means across types when types are given.
* :func:`type_means_side_by_side` — per type: n and the mean of every hallmark for each scorer
  (``<H>_trained``, ``<H>_published``).

Agreement is not accuracy: neither model is ground truth on bulk tumours. ρ says whether the two
models order the samples alike for a hallmark; the type means say whether they put the same types
high or low.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .errors import InputError

__all__ = ["SATURATION", "spearman", "spearman_ci", "agreement_table", "type_means_side_by_side"]

#: published probabilities at or above this count as saturated
SATURATION = 0.99


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman ρ (Pearson correlation of average ranks); NaN when either vector is constant."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    return float((ra @ rb) / np.sqrt((ra @ ra) * (rb @ rb)))


def spearman_ci(a, b, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``(ρ, low, high)``: Spearman ρ and its percentile bootstrap interval over samples."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(None, "scores", f"two vectors of equal length expected, got {a.shape} and {b.shape}")
    rho = spearman(a, b)
    if not np.isfinite(rho) or n_boot < 1:
        return rho, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    n = len(a)
    boots = []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, n, n)
        r = spearman(a[idx], b[idx])
        if np.isfinite(r):
            boots.append(r)
    if not boots:
        return rho, float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boots, [tail, 100 - tail])
    return rho, float(low), float(high)


def _aligned(ours: pd.DataFrame, published: pd.DataFrame) -> list[str]:
    if not ours.index.equals(published.index):
        raise InputError(None, "samples", "the two scorers' tables hold different samples or orders")
    hallmarks = [h for h in ours.columns if h in published.columns]
    if not hallmarks:
        raise InputError(None, "hallmarks", "the two scorers share no hallmark column")
    return hallmarks


def agreement_table(ours: pd.DataFrame, published: pd.DataFrame, types: pd.Series | None = None,
                    n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per hallmark (columns shared by the two samples × hallmarks tables, same index): ``n``,
    ``spearman_rho``, ``ci_low``, ``ci_high`` (bootstrap, :func:`spearman_ci`), ``mean_trained``,
    ``mean_published``, ``published_saturated`` (fraction ≥ :data:`SATURATION`), and with ``types``
    ``spearman_type_means`` (ρ of the per-type means across types) and ``n_types``."""
    hallmarks = _aligned(ours, published)
    rows = []
    for j, h in enumerate(hallmarks):
        a = ours[h].to_numpy(np.float64)
        b = published[h].to_numpy(np.float64)
        ok = np.isfinite(a) & np.isfinite(b)
        rho, low, high = spearman_ci(a[ok], b[ok], n_boot=n_boot, seed=seed + j)
        row = {"hallmark": h, "n": int(ok.sum()), "spearman_rho": rho, "ci_low": low, "ci_high": high,
               "mean_trained": float(a[ok].mean()) if ok.any() else float("nan"),
               "mean_published": float(b[ok].mean()) if ok.any() else float("nan"),
               "published_saturated": float((b[ok] >= SATURATION).mean()) if ok.any() else float("nan")}
        if types is not None:
            t = pd.Series(np.asarray(types, dtype=object), index=ours.index)
            m = pd.DataFrame({"a": a, "b": b, "t": t.to_numpy()})[ok & t.notna().to_numpy()].groupby("t").mean()
            row["n_types"] = int(len(m))
            row["spearman_type_means"] = spearman(m["a"].to_numpy(), m["b"].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def type_means_side_by_side(ours: pd.DataFrame, published: pd.DataFrame, types) -> pd.DataFrame:
    """Per type (sorted): ``n``, then for every hallmark ``<H>_trained`` and ``<H>_published``."""
    hallmarks = _aligned(ours, published)
    t = pd.Series(np.asarray(types, dtype=object), index=ours.index)
    keep = t.notna().to_numpy()
    g = t[keep].astype(str).to_numpy()
    a = ours.loc[keep, hallmarks].groupby(g).mean()
    b = published.loc[keep, hallmarks].groupby(g).mean()
    out = pd.DataFrame(index=a.index.rename("cancer_type"))
    out["n"] = pd.Series(g).value_counts().reindex(a.index).astype(int).to_numpy()
    for h in hallmarks:
        out[f"{h}_trained"] = a[h]
        out[f"{h}_published"] = b[h]
    return out.sort_index()
