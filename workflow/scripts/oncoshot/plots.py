"""Figures (matplotlib, Agg backend), each saved as PNG and SVG."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .io import atomic_path  # noqa: E402

METHOD_LABELS = {
    "siamese": "CancerSiamese",
    "nn_euclidean": "1-NN Euclidean",
    "nn_pearson": "1-NN Pearson",
    "cnn_cosine": "pretrained CNN, cosine 1-NN",
    "whitened_cosine": "whitened cosine (metric of the training types)",
    "whitened_cosine_diffusion": "whitened cosine + diffusion (transductive)",
}


def save_figure(fig, png: str | os.PathLike, svg: str | os.PathLike | None = None) -> None:
    """Save ``fig`` atomically as PNG (150 dpi) and, if given, SVG; then close it."""
    for path, fmt in ((png, "png"), (svg, "svg")):
        if path is None:
            continue
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
    plt.close(fig)


def grouped_accuracy_bars(results: pd.DataFrame, experiments: Sequence[str], title: str,
                          paper: dict | None = None):
    """Fig. 3a/3b-like grouped bars: accuracy by N-way (one group per N) with Wilson 95 % intervals.

    One bar per experiment for the model-dependent methods (Siamese, cosine on the pretrained CNN);
    the 1-NN baselines do not depend on the model, so when every experiment was scored on the same
    test samples (same tasks) they are drawn once. ``paper`` maps N → the paper's accuracy (dashed).
    """
    sub = results[results["experiment"].isin(experiments)]
    ns = sorted(sub["n_way"].unique())
    series = []  # (experiment, method, label)
    for m in ("siamese", "whitened_cosine", "whitened_cosine_diffusion", "cnn_cosine"):
        for e in experiments:
            if ((sub["experiment"] == e) & (sub["method"] == m)).any():
                series.append((e, m, f"{e}: {METHOD_LABELS[m]}"))
    base = sub[sub["method"] == "nn_euclidean"].pivot_table(index="n_way", columns="experiment", values="accuracy")
    shared_baselines = base.shape[1] <= 1 or bool((base.nunique(axis=1) == 1).all())  # same tasks everywhere
    for m in ("nn_euclidean", "nn_pearson"):
        for e in (experiments[:1] if shared_baselines else experiments):
            if ((sub["experiment"] == e) & (sub["method"] == m)).any():
                series.append((e, m, METHOD_LABELS[m] if shared_baselines else f"{e}: {METHOD_LABELS[m]}"))
    width = 0.84 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(min(15.0, 3.0 + 0.32 * len(ns) * max(len(series), 1)), 4.4))
    colours = {"siamese": plt.get_cmap("Blues"), "whitened_cosine": plt.get_cmap("Purples"),
               "whitened_cosine_diffusion": plt.get_cmap("cool"),
               "cnn_cosine": plt.get_cmap("Greens"),
               "nn_euclidean": plt.get_cmap("Greys"), "nn_pearson": plt.get_cmap("Oranges")}
    count = {m: sum(1 for s_ in series if s_[1] == m) for m in colours}
    seen = {m: 0 for m in colours}
    for j, (e, m, label) in enumerate(series):
        rows = sub[(sub["experiment"] == e) & (sub["method"] == m)].set_index("n_way").reindex(ns)
        x = np.arange(len(ns)) + (j - (len(series) - 1) / 2) * width
        acc = rows["accuracy"].to_numpy() * 100
        err = np.vstack([acc - rows["ci_low"].to_numpy() * 100, rows["ci_high"].to_numpy() * 100 - acc])
        seen[m] += 1
        shade = 0.45 + 0.5 * seen[m] / max(count[m], 1)
        ax.bar(x, acc, width, yerr=err, capsize=2, label=label, color=colours[m](shade), edgecolor="white", lw=0.3)
    if paper:
        for i, n in enumerate(ns):
            if n in paper:
                ax.plot([i - 0.45, i + 0.45], [paper[n]] * 2, "k--", lw=1)
        ax.plot([], [], "k--", lw=1, label="paper, CancerSiamese TCGA-19")
    for i, n in enumerate(ns):
        ax.plot([i - 0.45, i + 0.45], [100 / n] * 2, color="grey", lw=0.8, ls=":")
    ax.plot([], [], color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xticks(np.arange(len(ns)), [f"{n}-way" for n in ns])
    ax.set_ylabel("accuracy (%), 95 % Wilson interval")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def confusion_heatmap(confusion: pd.DataFrame, title: str):
    """Row-normalised confusion matrix (true × predicted) with counts annotated."""
    counts = confusion.to_numpy()
    frac = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    n = len(confusion)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * confusion.shape[1], 1.0 + 0.5 * n))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(confusion.shape[1]), confusion.columns, rotation=60, ha="right")
    ax.set_yticks(range(n), confusion.index)
    for i in range(n):
        for j in range(confusion.shape[1]):
            if counts[i, j]:
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted type")
    ax.set_ylabel("true type")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.04, label="fraction of true type")
    return fig


def training_curves(histories: dict[str, pd.DataFrame], x: str, panels: Sequence[tuple[str, str]], title: str):
    """One panel per (column, y label); one line per history."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (col, ylabel) in zip(axes[0], panels):
        for name, hist in histories.items():
            if col in hist and hist[col].notna().any():
                ax.plot(hist[x], hist[col], marker=".", label=name)
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def qc_scatter(per_cell: pd.DataFrame, max_mito: float, min_genes: int, max_genes: int, title: str):
    """Detected genes vs mitochondrial fraction per cell, kept / dropped coloured, thresholds drawn."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    kept = per_cell["passed"].to_numpy(bool)
    for mask, colour, label in ((kept, "tab:blue", "kept"), (~kept, "tab:red", "dropped")):
        ax.scatter(per_cell.loc[mask, "n_genes"], per_cell.loc[mask, "mito_fraction"] * 100, s=4,
                   alpha=0.5, c=colour, label=f"{label} ({int(mask.sum())})", rasterized=True)
    ax.axhline(max_mito * 100, color="k", ls="--", lw=1)
    for x in (min_genes, max_genes):
        ax.axvline(x, color="k", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("detected genes per cell (log scale)")
    ax.set_ylabel("mitochondrial counts (%)")
    ax.set_title(title)
    ax.legend(fontsize=8, markerscale=3)
    return fig


def otsu_histograms(scores: pd.DataFrame, tissue: pd.Series, thresholds: pd.DataFrame, title: str):
    """One panel per hallmark: score histogram per tissue with its low / high Otsu thresholds."""
    hallmarks = list(scores.columns)
    ncol = 5
    nrow = int(np.ceil(len(hallmarks) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
    tissues = sorted(pd.unique(tissue))
    colours = {t: plt.get_cmap("tab10")(i % 10) for i, t in enumerate(tissues)}
    table = thresholds.set_index(["tissue", "hallmark"])
    for ax, h in zip(axes.flat, hallmarks):
        for t in tissues:
            s = scores.loc[(tissue == t).to_numpy(), h].dropna()
            ax.hist(s, bins=40, alpha=0.45, color=colours[t], label=t)
            if (t, h) in table.index:
                ax.axvline(table.loc[(t, h), "low"], color=colours[t], ls="--", lw=1)
                ax.axvline(table.loc[(t, h), "high"], color=colours[t], ls="-", lw=1)
        ax.set_title(h, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(hallmarks):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{title}\n(dashed: low threshold, solid: high threshold; per tissue)")
    fig.tight_layout()
    return fig
