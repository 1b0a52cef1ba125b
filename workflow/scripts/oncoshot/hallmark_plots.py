"""Figures of the hallmark model (matplotlib, Agg backend). Each function returns a figure; save it
with :func:`oncoshot.plots.save_figure` (PNG + SVG), e.g. ``save_figure(fig, "x.png", "x.svg")``.

* :func:`hallmark_heatmap` — mean hallmark probability per group (e.g. cancer type, or
  ``"BRCA · metastatic"``), groups × hallmarks, rows ordered by average-linkage hierarchical
  clustering (Euclidean) of the row means, or alphabetically; values annotated, ``n`` in the labels.
* :func:`group_comparison_plot` — per hallmark, box plots of the probabilities of two groups
  (primary vs metastatic) side by side with the Mann–Whitney p and BH q of
  :func:`oncoshot.hallmark_model.compare_groups` written above each pair.
* :func:`cv_metric_bars` — cross-validation metric per hallmark (+ macro mean), one bar per model
  (MTL, logistic regression, single-task MLP), mean ± sd over folds.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .hallmark_model import compare_groups, mean_by_group  # noqa: E402
from .plots import save_figure  # noqa: E402,F401  (re-exported for convenience)

MODEL_LABELS = {"mtl": "N-MTL (OncoMark)", "logreg": "logistic regression per hallmark",
                "stl_mlp": "single-task MLP per hallmark"}


def _order_rows(means: pd.DataFrame, cluster: bool) -> list:
    if cluster and len(means) >= 3:
        from scipy.cluster.hierarchy import leaves_list, linkage

        values = np.nan_to_num(means.to_numpy(dtype=float), nan=0.0)
        return list(means.index[leaves_list(linkage(values, method="average", metric="euclidean"))])
    return sorted(means.index)


def hallmark_heatmap(probabilities: pd.DataFrame, groups, title: str = "mean hallmark probability",
                     cluster: bool = True, annotate: bool = True, vmin: float = 0.0, vmax: float = 1.0):
    """Heatmap of the mean probability per group (rows) and hallmark (columns)."""
    means, counts = mean_by_group(probabilities, groups)
    rows = _order_rows(means, cluster)
    means = means.loc[rows]
    n_r, n_c = means.shape
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * n_c, 1.2 + 0.32 * n_r))
    im = ax.imshow(means.to_numpy(dtype=float), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(n_c), means.columns, rotation=45, ha="right")
    ax.set_yticks(range(n_r), [f"{r} (n={int(counts.get(r, 0))})" for r in rows], fontsize=7)
    if annotate and n_r * n_c <= 1200:
        for i in range(n_r):
            for j in range(n_c):
                v = means.iat[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5.5,
                            color="black" if v > 0.6 * vmax else "white")
    ax.set_title(title + ("\n(rows: hierarchical clustering)" if cluster and n_r >= 3 else ""), fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, label="mean probability")
    fig.tight_layout()
    return fig


def _p_text(p: float, q: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return f"p={p:.1e}\nq={q:.1e}" if p < 1e-3 else f"p={p:.3f}\nq={q:.3f}"


def group_comparison_plot(probabilities: pd.DataFrame, groups, order: Sequence[str] | None = None,
                          comparison: pd.DataFrame | None = None,
                          title: str = "hallmark probability: primary vs metastatic"):
    """Box plots per hallmark for two groups, annotated with p and q (computed with
    :func:`compare_groups` unless ``comparison`` is given)."""
    comp = comparison if comparison is not None else compare_groups(probabilities, groups, order)
    a_lab, b_lab = str(comp["group_a"].iloc[0]), str(comp["group_b"].iloc[0])
    g = pd.Series(np.asarray(groups, dtype=object), index=probabilities.index) \
        if not isinstance(groups, pd.Series) else groups.reindex(probabilities.index)
    g = g.astype(str)
    hallmarks = list(comp["hallmark"])
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(hallmarks), 4.2))
    colours = {a_lab: "tab:blue", b_lab: "tab:red"}
    for k, (lab, off) in enumerate(((a_lab, -0.2), (b_lab, 0.2))):
        data = [probabilities.loc[(g == lab).to_numpy(), h].dropna().to_numpy() for h in hallmarks]
        bp = ax.boxplot(data, positions=np.arange(len(hallmarks)) + off, widths=0.35, patch_artist=True,
                        showfliers=True, flierprops={"markersize": 2})
        for box in bp["boxes"]:
            box.set_facecolor(colours[lab])
            box.set_alpha(0.55)
        n = int((g == lab).sum())
        ax.plot([], [], "s", color=colours[lab], alpha=0.55, label=f"{lab} (n={n})")
    ct = comp.set_index("hallmark")
    for i, h in enumerate(hallmarks):
        ax.text(i, 1.03, _p_text(float(ct.loc[h, "p"]), float(ct.loc[h, "q"])), ha="center", va="bottom",
                fontsize=6)
    ax.set_xticks(range(len(hallmarks)), hallmarks)
    ax.set_ylim(-0.02, 1.18)
    ax.set_ylabel("predicted probability")
    ax.set_title(title + "\n(two-sided Mann–Whitney U, BH q across hallmarks)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(1.01, 0.0))
    fig.tight_layout()
    return fig


def cv_metric_bars(summary: pd.DataFrame, metric: str = "auroc", models: Sequence[str] | None = None,
                   title: str | None = None, chance: float | None = None):
    """Grouped bars: ``<metric>_mean`` ± ``<metric>_sd`` per hallmark (and ``macro``), one bar per
    model of :func:`oncoshot.hallmark_model.cross_validate`'s summary."""
    models = list(models) if models is not None else list(dict.fromkeys(summary["model"]))
    hallmarks = list(dict.fromkeys(summary["hallmark"]))
    if "macro" in hallmarks:  # macro last
        hallmarks = [h for h in hallmarks if h != "macro"] + ["macro"]
    fig, ax = plt.subplots(figsize=(1.5 + 0.75 * len(hallmarks) * max(len(models), 1) / 2, 4.0))
    width = 0.8 / max(len(models), 1)
    cmap = plt.get_cmap("tab10")
    for j, m in enumerate(models):
        rows = summary[summary["model"] == m].set_index("hallmark").reindex(hallmarks)
        x = np.arange(len(hallmarks)) + (j - (len(models) - 1) / 2) * width
        ax.bar(x, rows[f"{metric}_mean"].to_numpy(dtype=float), width,
               yerr=np.nan_to_num(rows[f"{metric}_sd"].to_numpy(dtype=float)), capsize=2,
               color=cmap(j % 10), label=MODEL_LABELS.get(m, m))
    if chance is None and metric == "auroc":
        chance = 0.5
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1)
    ax.set_xticks(range(len(hallmarks)), hallmarks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"{metric} (mean ± sd over folds)")
    ax.set_title(title or f"cross-validation {metric}: multi-task vs baselines", fontsize=9)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(1.01, 0.0))
    fig.tight_layout()
    return fig


def agreement_figure(table: pd.DataFrame, side_by_side: pd.DataFrame | None = None,
                     title: str = "our trained model vs the published OncoMark model"):
    """Left: per hallmark the Spearman ρ (ours vs published, per sample across samples) with its
    bootstrap 95 % interval (:func:`oncoshot.agreement.agreement_table`). Right (with
    ``side_by_side``, :func:`oncoshot.agreement.type_means_side_by_side`): the per-type mean
    probability of each hallmark, ours and the published model's, as two heatmaps on one scale."""
    hallmarks = list(table["hallmark"])
    n_panels = 3 if side_by_side is not None and len(side_by_side) else 1
    n_types = len(side_by_side) if n_panels == 3 else 0
    fig, axes = plt.subplots(1, n_panels, figsize=(4.2 + (2 * (1.2 + 0.45 * len(hallmarks)) if n_panels == 3 else 0),
                                                   max(3.6, 1.4 + 0.3 * n_types)), squeeze=False)
    ax = axes[0, 0]
    rho = table["spearman_rho"].to_numpy(dtype=float)
    low = table["ci_low"].to_numpy(dtype=float)
    high = table["ci_high"].to_numpy(dtype=float)
    y = np.arange(len(hallmarks))
    err = np.vstack([np.nan_to_num(rho - low), np.nan_to_num(high - rho)])
    ax.errorbar(rho, y, xerr=err, fmt="o", color="tab:blue", ecolor="grey", capsize=2, markersize=4)
    for i, r in enumerate(rho):
        if not np.isfinite(r):
            ax.text(0, i, "n/a (constant)", va="center", ha="center", fontsize=6)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, hallmarks)
    ax.invert_yaxis()
    ax.set_xlim(-1, 1)
    ax.set_xlabel("Spearman ρ per sample (95 % bootstrap CI)")
    ax.set_title(f"agreement across samples (n={int(table['n'].max()) if len(table) else 0})", fontsize=8)
    if n_panels == 3:
        types = list(side_by_side.index)
        labels = [f"{t} (n={int(side_by_side.loc[t, 'n'])})" for t in types]
        for ax, scorer in zip(axes[0, 1:], ("trained", "published")):
            M = side_by_side[[f"{h}_{scorer}" for h in hallmarks]].to_numpy(dtype=float)
            im = ax.imshow(M, cmap="viridis", vmin=0, vmax=1, aspect="auto")
            ax.set_xticks(range(len(hallmarks)), hallmarks, rotation=45, ha="right")
            ax.set_yticks(range(len(types)), labels if scorer == "trained" else [], fontsize=7)
            if M.size <= 1200:
                for i in range(M.shape[0]):
                    for j in range(M.shape[1]):
                        if np.isfinite(M[i, j]):
                            ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=5,
                                    color="black" if M[i, j] > 0.6 else "white")
            ax.set_title(f"mean probability by type: {scorer}", fontsize=8)
        fig.colorbar(im, ax=list(axes[0, 1:]), fraction=0.03, label="mean probability")
    fig.suptitle(title, fontsize=9)
    return fig
