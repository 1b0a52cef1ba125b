"""Marker-gene figures (SPEC §2.4), matplotlib Agg. Every plotting function returns a figure; save
it with :func:`oncoshot.plots.save_figure` (PNG + SVG).

* :func:`tsne_coordinates` / :func:`tsne_plot` — t-SNE of samples on the marker genes, coloured by
  type, optionally shaped by a second label (primary / metastatic).
* :func:`heatmap_matrix` / :func:`marker_heatmap` — per-type mean expression of the markers,
  z-scored per gene across types, types (and genes) ordered by hierarchical clustering, with the
  types' dendrogram.
* :func:`forward_selection_plot` — k vs 1-NN one-shot accuracy (Wilson band), all-genes line.
* :func:`gnb_plot` — k vs Gaussian-NB primary/metastatic accuracy (± sd over folds).
"""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .errors import InputError  # noqa: E402

MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*", "<", ">")


def type_colours(types: Sequence) -> dict:
    """A distinct colour per type (tab20, then tab20b, tab20c: up to 60 distinct colours)."""
    palette = [plt.get_cmap(name)(i) for name in ("tab20", "tab20b", "tab20c") for i in range(20)]
    # tab20 pairs dark/light shades: take the dark ones first for up to 10 types
    if len(types) <= 10:
        palette = [plt.get_cmap("tab10")(i) for i in range(10)]
    return {t: palette[i % len(palette)] for i, t in enumerate(types)}


def _as_matrix(X, genes=None) -> tuple[np.ndarray, list]:
    if isinstance(X, pd.DataFrame):
        M = X.to_numpy(dtype=np.float64)
        g = list(X.columns) if genes is None else list(genes)
    else:
        M = np.asarray(X, dtype=np.float64)
        g = list(range(M.shape[1])) if genes is None else list(genes)
    if M.ndim != 2:
        raise InputError(None, "X", f"expected a samples × genes matrix, got shape {M.shape}")
    if len(g) != M.shape[1]:
        raise InputError(None, "genes", f"{len(g)} gene names for {M.shape[1]} columns")
    return M, g


# ------------------------------------------------------------------------------------------------
# t-SNE
# ------------------------------------------------------------------------------------------------
def tsne_perplexity(n: int, default: float = 30.0) -> float:
    """``min(default, (n − 1) / 3)``, at least 1: sklearn needs perplexity < n, and the usual rule
    of thumb is 3·perplexity < n."""
    if n < 3:
        raise InputError(None, "X", f"t-SNE needs at least 3 samples, got {n}")
    return float(max(1.0, min(default, (n - 1) / 3.0)))


def tsne_coordinates(X, seed: int = 0, perplexity: float | None = None) -> np.ndarray:
    """2-D t-SNE (``sklearn.manifold.TSNE``: PCA initialisation, automatic learning rate,
    ``random_state=seed``) of the rows of ``X`` (samples × marker genes, as given: log expression).
    ``perplexity`` default :func:`tsne_perplexity` (n)."""
    from sklearn.manifold import TSNE

    M, _ = _as_matrix(X)
    n = M.shape[0]
    perp = tsne_perplexity(n) if perplexity is None else float(perplexity)
    if not 0 < perp < n:
        raise InputError(None, "perplexity", f"must lie in (0, {n}), got {perp}")
    return TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto",
                random_state=int(seed)).fit_transform(M)


def tsne_plot(X, labels, title: str, *, style=None, style_title: str = "", seed: int = 0,
              perplexity: float | None = None, coords: np.ndarray | None = None):
    """Scatter of the t-SNE of ``X`` (or of the given 2-D ``coords``), one colour per type of
    ``labels`` and, if ``style`` is given (e.g. ``"primary"`` / ``"metastatic"`` per sample), one
    marker shape per style value; legends outside the axes. Returns ``(fig, coords)``."""
    labels = np.asarray(labels).astype(str)
    if coords is None:
        coords = tsne_coordinates(X, seed=seed, perplexity=perplexity)
    coords = np.asarray(coords, dtype=np.float64)
    if coords.shape != (len(labels), 2):
        raise InputError(None, "coords", f"expected {(len(labels), 2)} t-SNE coordinates, got {coords.shape}")
    types = sorted(pd.unique(labels))
    colours = type_colours(types)
    styles = None if style is None else np.asarray(style).astype(str)
    if styles is not None and len(styles) != len(labels):
        raise InputError(None, "style", f"{len(styles)} style values for {len(labels)} samples")
    style_values = [] if styles is None else sorted(pd.unique(styles))
    if len(style_values) > len(MARKERS):
        raise InputError(None, "style", f"at most {len(MARKERS)} style values, got {len(style_values)}")
    fig, ax = plt.subplots(figsize=(7.5, 6.0))
    s = 12 if len(labels) > 2000 else 22
    for t in types:
        m = labels == t
        if styles is None:
            ax.scatter(coords[m, 0], coords[m, 1], s=s, color=colours[t], alpha=0.8, linewidths=0, rasterized=True)
        else:
            for k, v in enumerate(style_values):
                mm = m & (styles == v)
                if mm.any():
                    ax.scatter(coords[mm, 0], coords[mm, 1], s=s, color=colours[t], marker=MARKERS[k], alpha=0.8,
                               linewidths=0, rasterized=True)
    handles = [Line2D([], [], ls="", marker="o", color=colours[t], label=f"{t} ({int((labels == t).sum())})")
               for t in types]
    ncol = 1 if len(types) <= 22 else 2
    ax.legend(handles=handles, title="type", fontsize=7, title_fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), ncol=ncol, frameon=False)
    if styles is not None:
        # a figure legend below the axes (a second axes legend added with add_artist is left out of
        # the tight bounding box and gets clipped)
        sh = [Line2D([], [], ls="", marker=MARKERS[k], color="0.3", label=f"{v} ({int((styles == v).sum())})")
              for k, v in enumerate(style_values)]
        fig.legend(handles=sh, title=style_title or None, fontsize=7, title_fontsize=8, loc="upper center",
                   bbox_to_anchor=(0.5, 0.0), ncol=len(sh), frameon=False)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    return fig, coords


# ------------------------------------------------------------------------------------------------
# heatmap
# ------------------------------------------------------------------------------------------------
def heatmap_matrix(X, labels, genes=None, *, cluster_genes: bool = True, method: str = "average"):
    """Per-type mean of each marker, z-scored per gene across the types (ddof 0; a gene constant
    across types gets 0), as a genes × types DataFrame. Types (columns) are ordered by
    hierarchical clustering (``scipy.cluster.hierarchy.linkage``, ``method`` linkage, Euclidean
    distance) of their z-scored mean profiles (leaf order of the dendrogram); genes (rows) too
    when ``cluster_genes``, else kept in the given order. Returns ``(z, type_linkage)`` (the
    linkage matrix is ``None`` with fewer than 2 types)."""
    from scipy.cluster.hierarchy import leaves_list, linkage

    M, g = _as_matrix(X, genes)
    labels = np.asarray(labels).astype(str)
    if len(labels) != M.shape[0]:
        raise InputError(None, "labels", f"X has {M.shape[0]} rows but labels has {len(labels)} entries")
    means = pd.DataFrame(M, columns=g).groupby(labels, sort=True).mean()  # types × genes
    mu = means.mean(axis=0)
    sd = means.std(axis=0, ddof=0)
    z = (means - mu) / sd.where(sd > 0, np.nan)
    z = z.fillna(0.0)
    link = None
    if len(z) >= 2:
        link = linkage(z.to_numpy(), method=method, metric="euclidean")
        z = z.iloc[leaves_list(link)]
    if cluster_genes and z.shape[1] >= 2:
        z = z.iloc[:, leaves_list(linkage(z.to_numpy().T, method=method, metric="euclidean"))]
    return z.T, link


def marker_heatmap(X, labels, title: str, genes=None, *, cluster_genes: bool = True, method: str = "average",
                   max_gene_labels: int = 150):
    """Heatmap of the markers (rows) across types (columns) from :func:`heatmap_matrix`, with the
    types' dendrogram on top and a z-score colour bar. Gene labels are drawn when there are at most
    ``max_gene_labels`` genes (font size shrinking with their number). Returns the figure."""
    from scipy.cluster.hierarchy import dendrogram

    z, link = heatmap_matrix(X, labels, genes, cluster_genes=cluster_genes, method=method)
    n_genes, n_types = z.shape
    width = min(3.0 + 0.32 * n_types, 20.0)
    height = min(2.5 + 0.12 * n_genes, 24.0)
    fig = plt.figure(figsize=(width, height))
    top = 1.2 / height  # dendrogram height as a fraction of the figure
    ax_d = fig.add_axes((0.18, 1 - top - 0.02, 0.68, top))
    ax = fig.add_axes((0.18, 0.12, 0.68, 1 - top - 0.16))
    cax = fig.add_axes((0.88, 0.12, 0.02, min(0.3, 1 - top - 0.16)))
    if link is not None:
        dendrogram(link, ax=ax_d, no_labels=True, color_threshold=0, above_threshold_color="0.3")
    ax_d.axis("off")
    lim = max(float(np.nanmax(np.abs(z.to_numpy()))) if z.size else 1.0, 1e-9)
    im = ax.imshow(z.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xticks(range(n_types), [str(c) for c in z.columns], rotation=60, ha="right", fontsize=8)
    if n_genes <= max_gene_labels:
        row_pt = (1 - top - 0.16) * height * 72.0 / max(n_genes, 1)  # height of one row in points
        fs = max(3.0, min(8.0, 0.75 * row_pt))
        ax.set_yticks(range(n_genes), [str(r) for r in z.index], fontsize=fs)
    else:
        ax.set_yticks([])
        ax.set_ylabel(f"{n_genes} marker genes")
    fig.colorbar(im, cax=cax, label="z-score of type mean")
    ax_d.set_title(title)
    return fig


# ------------------------------------------------------------------------------------------------
# selection curves
# ------------------------------------------------------------------------------------------------
def forward_selection_plot(table: pd.DataFrame, title: str, *, best: int | None = None, n_way: int | None = None,
                           label: str = "top-k markers"):
    """k vs 1-NN one-shot accuracy (%) with its Wilson 95 % band; the all-genes accuracy on the same
    tasks as a horizontal line with its band (columns ``all_genes_*`` of
    :func:`oncoshot.markers.forward_selection`); ``best`` k marked; chance (100/N) dotted when
    ``n_way`` is given (default: ``table.attrs['n_way']`` if present)."""
    if len(table) == 0:
        raise InputError(None, "table", "empty forward-selection table")
    t = table.sort_values("k")
    k = t["k"].to_numpy()
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    ax.plot(k, t["accuracy"] * 100, color="tab:blue", lw=1.5, marker="." if len(k) <= 60 else None, label=label)
    if {"ci_low", "ci_high"} <= set(t.columns):
        ax.fill_between(k, t["ci_low"] * 100, t["ci_high"] * 100, color="tab:blue", alpha=0.2, lw=0,
                        label="95 % Wilson interval")
    if "all_genes_accuracy" in t.columns:
        a = float(t["all_genes_accuracy"].iloc[0]) * 100
        ax.axhline(a, color="k", ls="--", lw=1, label=f"all genes ({a:.1f} %)")
        if {"all_genes_ci_low", "all_genes_ci_high"} <= set(t.columns):
            ax.axhspan(float(t["all_genes_ci_low"].iloc[0]) * 100, float(t["all_genes_ci_high"].iloc[0]) * 100,
                       color="k", alpha=0.08, lw=0)
    if best is not None:
        row = t[t["k"] == best]
        if len(row):
            ax.axvline(best, color="tab:red", ls=":", lw=1.2,
                       label=f"best k = {best} ({float(row['accuracy'].iloc[0]) * 100:.1f} %)")
    n_way = n_way if n_way is not None else table.attrs.get("n_way")
    if n_way:
        ax.axhline(100.0 / n_way, color="0.5", ls=":", lw=1, label=f"chance (1/{n_way})")
    ax.set_xlabel("k (top-ranked genes)")
    ax.set_ylabel("1-NN one-shot accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def gnb_plot(table: pd.DataFrame, title: str, *, chosen: int | None = None):
    """k vs Gaussian-NB primary-vs-metastatic accuracy (%) on held-out folds, error bars ± sd over
    folds (:func:`oncoshot.markers.primary_vs_metastatic`); the majority-class baseline dashed;
    ``chosen`` k marked."""
    if len(table) == 0:
        raise InputError(None, "table", "empty table")
    t = table.sort_values("k")
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    sd = t["sd"].to_numpy() * 100 if "sd" in t.columns else None
    ax.errorbar(t["k"], t["accuracy"] * 100, yerr=sd, marker="o", ms=4, capsize=3, color="tab:purple",
                label="Gaussian NB (held-out folds)")
    if "majority_baseline" in t.columns:
        b = float(t["majority_baseline"].iloc[0]) * 100
        ax.axhline(b, color="0.4", ls="--", lw=1, label=f"majority class ({b:.1f} %)")
    if chosen is not None:
        ax.axvline(chosen, color="tab:red", ls=":", lw=1.2, label=f"chosen k = {chosen}")
    ax.set_xlabel("k (top-ranked markers)")
    ax.set_ylabel("primary vs metastatic accuracy (%)")
    lo = min(50.0, math.floor(float(np.nanmin(t["accuracy"])) * 10) * 10)
    ax.set_ylim(lo, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return fig
