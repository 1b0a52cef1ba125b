#!/usr/bin/env python
"""Real-data check of the OncoMark hallmark model: train on real tumour cells, score real TCGA.

Everything comes from ``../shared/real`` (see its ``PROVENANCE.md``):

1. **Cells.** copykat's breast tumour (10x UMI; copykat's ``aneuploid`` calls = malignant) and
   inferCNV's oligodendroglioma example (Smart-seq2, TPM-like; cells labelled ``malignant_<tumour>``,
   4 tumours), read with :mod:`oncoshot.published`, malignant cells only, then the SPEC §3.2 cell QC
   (``qc_cells``: ≤ 15 % mitochondrial counts, 200–6,000 detected genes). Tissues: Breast, Brain.
2. **Labels.** UCell scores (``ucell_scores``, max_rank 1500) of the ten curated OncoMark gene sets
   (``gene_sets/oncomark_hallmark_gene_sets.csv``, ``read_gene_sets``); per tissue and hallmark, Otsu
   thresholds on the lower / upper half (``label_cells``).
3. **Synthetic bulk** (``synthetic_bulk``, as the workflow's ``synthetic_bulk`` rule): per study ×
   tumour × hallmark × status, non-overlapping groups of ``--cells-per-bulk`` (5: the sets hold a few
   hundred cells, the SPEC's 200 would give no profile) summed; the studies' profiles combined with
   ``combine_profiles`` (the workflow's ``combine_synthetic_bulk``). ``--genes intersection``
   (default) keeps the genes both studies measured: the oligodendroglioma matrix is down-sampled to
   10,338 genes, so with the workflow's union (``--genes union``: 34,243 genes) ~24,000 genes are
   structural zeros in every Brain profile, and 586 of the 2,000 model genes (seed 0) would be genes
   the oligodendroglioma set never measured (intersection: 9,789 genes, none such).
4. **Models** (``fit_hallmark_model``, SPEC §3.6 preprocessing: per-sample log2 ranks, standardised,
   top ``--n-top`` (2,000) rank-variance genes; 85/15 split stratified per hallmark × status for the
   lr schedule and early stopping). The optimiser settings suit the few hundred profiles (the demo's
   choice): Adam lr 1e-3, batch 32 (OncoMark: 1e-4, 256, for ~10⁵ profiles). **Replicates:**
   ``--replicates`` (5) models, replicate ``r`` with seed ``--seed + r`` (synthetic-bulk grouping,
   split, initialisation, batches); UCell and Otsu are deterministic and shared. One model trained on
   ~180 profiles is far from reproducible (per-type means move by 0.2–0.4 between seeds), so the
   reported profile is the mean of the replicates, with their sd. Metrics per hallmark and replicate
   on the 85 % training part and the 15 % early-stopping part (a handful of profiles per hallmark;
   optimistic: profiles of one tumour sit in both, as in OncoMark's CV).
5. **TCGA.** The 7 types of ``tcga_rnasum`` (ACC, CHOL, DLBC, KICH, UCS, UVM and ``TEST`` = PAAD)
   harmonised by ``harmonise_tcga(unit="counts", on_gene_mismatch="intersect")`` → log2(CPM+1) on
   the 56,537 shared Ensembl ids, with symbols from the table bundled in ``pygeneconverter`` 0.3
   (``ensembl_symbol_map``; an unmapped id keeps its id as symbol and matches no model gene).
   **Several ids with one symbol:** the model's preprocessing keeps the id with the highest mean
   log2(CPM+1) over the 384 samples (the library's rule for duplicated symbols, the same the
   workflow's ``bulk_hallmark_activity`` applies), the others are ignored; CPM is computed over all
   ids, so nothing is summed. Model genes absent from TCGA are filled with 0 before ranking (SPEC
   §3.6) and reported.
6. **Scores** (``predict_anndata``): ten probabilities per sample and model; the ensemble (mean over
   replicates) per sample and per type. Per hallmark: Kruskal–Wallis across the 7 types (BH q);
   Spearman ρ with a proliferation index (mean log2(CPM+1) of classic cell-cycle markers that are in
   no hallmark gene set: MKI67, TOP2A, BUB1, CENPF, AURKA, MCM2, TYMS, CDC20, KIAA0101), a sanity
   check for GIM (genome instability: DNA replication / repair genes, cell-cycle regulated); and the
   replicate agreement (mean pairwise Spearman ρ of the replicates' per-sample probabilities).

Usage::

    python benchmarks/real_hallmark_profile.py --out results/benchmarks/real_hallmark_profile
        [--real ../shared/real] [--seed 0] [--replicates 5] [--cells-per-bulk 5] [--n-top 2000]
        [--genes intersection|union] [--lr 1e-3] [--batch-size 32] [--max-epochs 50]
        [--threads 1] [--device cpu]

Writes into ``--out`` (every file atomically, all of them only after every step succeeded):
``per_sample.tsv`` (ensemble), ``per_sample_replicates.tsv``, ``per_type_profile.tsv`` (type, n,
mean probability of each hallmark), ``per_type_profile_sd.tsv`` (sd over replicates),
``gene_coverage.tsv`` (per replicate and model gene: found in TCGA or why not, the Ensembl ids of its
symbol and the one used), ``hallmark_stats.tsv``, ``training_metrics.tsv``,
``training_profiles.tsv``, ``qc_summary.tsv``, ``otsu_thresholds.tsv``,
``signature_genes_missing.tsv``, ``summary.tsv``, ``models/replicate_<r>.pt``,
``profile_heatmap.png/svg``, ``otsu_histograms.png/svg``; prints the per-type profile as a Markdown
table (mean ± sd over replicates). Bad input: a one-line error naming the file, exit 1, nothing
written.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch
from scipy.stats import kruskal, spearmanr

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from oncoshot import bulk  # noqa: E402
from oncoshot.sources import tcga  # noqa: E402
from oncoshot.errors import InputError  # noqa: E402
from oncoshot.hallmark_model import (  # noqa: E402
    METRICS,
    _unique_columns,
    evaluate_model,
    fit_hallmark_model,
    mean_by_group,
    predict_anndata,
    save_hallmark_model,
)
from oncoshot.hallmark_plots import hallmark_heatmap  # noqa: E402
from oncoshot.hallmarks import combine_profiles, label_cells, synthetic_bulk  # noqa: E402
from oncoshot.io import write_tsv  # noqa: E402
from oncoshot.markers import bh_adjust  # noqa: E402
from oncoshot.plots import otsu_histograms, save_figure  # noqa: E402
from oncoshot.published import ensembl_symbol_map, read_copykat, read_infercnv  # noqa: E402
from oncoshot.runtime import format_duration  # noqa: E402
from oncoshot.singlecell import qc_cells  # noqa: E402
from oncoshot.ucell import read_gene_sets, ucell_scores  # noqa: E402

#: reported type -> file name part (TEST holds 20 PAAD samples)
TCGA_FILES = {"ACC": "ACC", "CHOL": "CHOL", "DLBC": "DLBC", "KICH": "KICH", "PAAD": "TEST", "UCS": "UCS", "UVM": "UVM"}
#: classic proliferation (cell-cycle) markers; those in a hallmark gene set are not used
PROLIFERATION_MARKERS = ("MKI67", "TOP2A", "BUB1", "CENPF", "AURKA", "MCM2", "TYMS", "CDC20", "KIAA0101",
                         "CCNB1", "CDK1", "BIRC5")
T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


@dataclass
class Settings:
    seed: int = 0
    cells_per_bulk: int = 5
    n_top: int = 2000
    genes: str = "intersection"
    max_rank: int = 1500
    max_mito_fraction: float = 0.15
    min_genes: int = 200
    max_genes: int = 6000
    lr: float = 1e-3
    batch_size: int = 32
    max_epochs: int = 50
    plateau_patience: int = 3
    stop_patience: int = 6
    device: str = "cpu"


# ---------------------------------------------------------------------------------------------
# single cells → labels → synthetic bulk
# ---------------------------------------------------------------------------------------------
def load_cells(real: Path, s: Settings) -> tuple[list[ad.AnnData], pd.DataFrame]:
    """Malignant cells of the two tumour sets after the SPEC §3.2 QC, and the QC summary."""
    studies = [
        read_copykat(real / "scrna_breast_copykat" / "copykat_breast10x_UMIcounts_genesxcells.tsv.gz",
                     real / "scrna_breast_copykat" / "test_copykat_prediction.txt"),
        read_infercnv(real / "scrna_oligodendroglioma" / "oligodendroglioma_expression_downsampled.counts.matrix.gz",
                      real / "scrna_oligodendroglioma" / "oligodendroglioma_annotations_downsampled.txt"),
    ]
    kept, summaries = [], []
    for a in studies:
        filtered, _, summary = qc_cells(a, max_mito_fraction=s.max_mito_fraction, min_genes=s.min_genes,
                                        max_genes=s.max_genes)
        summary.insert(1, "tissue", a.uns["tissue"])  # qc_cells gives technology ("all") and unit
        summary.insert(int(summary.columns.get_loc("unit")) + 1, "n_genes", a.n_vars)
        kept.append(filtered)
        summaries.append(summary)
    return kept, pd.concat(summaries, ignore_index=True)


def label(cells: list[ad.AnnData], gene_sets: dict, s: Settings):
    """UCell scores (cells × hallmarks, with study / sample / tissue), Otsu labels per tissue, the
    thresholds and the per-study signature-gene coverage."""
    scores, missing = [], []
    for a in cells:
        sc, miss = ucell_scores(a, None, gene_sets, max_rank=s.max_rank)
        sc.insert(0, "tissue", a.obs["tissue"].astype(str).to_numpy())
        sc.insert(0, "sample", a.obs["sample"].astype(str).to_numpy())
        sc.insert(0, "study", a.uns["study"])
        scores.append(sc)
        missing.append(miss.assign(study=a.uns["study"]))
    scores = pd.concat(scores)
    if scores.index.has_duplicates:
        raise InputError(None, "cell names", "the two studies share cell names")
    hallmarks = list(gene_sets)
    labels, thresholds = label_cells(scores[hallmarks], scores["tissue"])
    return scores, labels, thresholds, pd.concat(missing, ignore_index=True)


def training_profiles(cells: list[ad.AnnData], labels: pd.DataFrame, s: Settings) -> ad.AnnData:
    """Synthetic bulk of every study (the workflow's ``synthetic_bulk`` rule, groups mode), combined."""
    parts = []
    for a in cells:
        obs = a.obs.copy()
        profiles, _ = synthetic_bulk(a.X, obs, labels.reindex(a.obs_names), cells_per_bulk=s.cells_per_bulk,
                                     seed=s.seed, genes=list(a.var_names))
        profiles.obs["mode"] = "groups"
        parts.append(profiles)
    return combine_profiles(parts, join="outer" if s.genes == "union" else "inner")


def train(profiles: ad.AnnData, s: Settings):
    """``fit_hallmark_model`` and per-hallmark metrics on its training and early-stopping parts."""
    model, pre, result, info = fit_hallmark_model(
        profiles.X, profiles.obs, list(profiles.var_names), n_top=s.n_top, seed=s.seed, device=s.device,
        lr=s.lr, batch_size=s.batch_size, max_epochs=s.max_epochs, plateau_patience=s.plateau_patience,
        stop_patience=s.stop_patience)
    tables = []
    for part, idx in (("train_85", info["train_index"]), ("early_stop_15", info["val_index"])):
        m, _ = evaluate_model(model, pre, profiles.X[idx], profiles.obs.iloc[idx], list(profiles.var_names))
        macro = m[list(METRICS)].mean().to_dict() | {"hallmark": "macro", "n": int(m["n"].sum()),
                                                       "n_positive": int(m["n_positive"].sum())}
        tables.append(pd.concat([m, pd.DataFrame([macro])], ignore_index=True).assign(part=part))
    metrics = pd.concat(tables, ignore_index=True)
    return model, pre, result, metrics[["part", "hallmark", "n", "n_positive", *METRICS]]


# ---------------------------------------------------------------------------------------------
# TCGA
# ---------------------------------------------------------------------------------------------
def load_tcga(real: Path, symbol_map: pd.Series | None = None) -> ad.AnnData:
    """The 7 types, log2(CPM+1) on the shared ids, ``var["symbol"]`` from ``ensembl_symbol_map``
    (unmapped ids keep the id), ``obs["cancer_type"]`` with TEST reported as PAAD."""
    d = real / "tcga_rnasum"
    matrices = {name: d / f"TCGA_{name}_Counts.exp.gz" for name in TCGA_FILES.values()}
    symbol_map = ensembl_symbol_map() if symbol_map is None else symbol_map
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bulk.BulkWarning)  # TEST's 3,896 extra ids are dropped (expected)
        adata = tcga.harmonise_tcga(matrices, symbol_map, unit="counts", on_gene_mismatch="intersect")
    rename = {v: k for k, v in TCGA_FILES.items()}
    adata.obs["cancer_type"] = adata.obs["project"].map(rename).astype(str)
    adata.var["mapped"] = adata.var_names.isin(symbol_map.index)
    return adata


def gene_coverage(pre, tcga: ad.AnnData, symbol_map: pd.Series) -> pd.DataFrame:
    """One row per model gene: ``found`` in TCGA (by symbol), ``reason`` when not
    (``symbol not in the Ensembl table`` / ``no id of the symbol among the TCGA ids``), the TCGA
    ids carrying the symbol and the one the preprocessing uses (highest mean log2(CPM+1))."""
    symbols = tcga.var["symbol"].astype(str).to_numpy()
    cols, names, _ = _unique_columns(tcga.X, symbols)  # the preprocessing's choice among duplicates
    used = dict(zip(names, tcga.var_names[cols]))
    ids_of = pd.Series(tcga.var_names.to_numpy()).groupby(symbols).agg(lambda x: ",".join(sorted(x)))
    known = set(symbol_map.to_numpy())
    rows = []
    for rank, g in enumerate(pre.genes_):
        found = g in used
        rows.append({"gene": g, "found": found,
                     "reason": "" if found else ("symbol not in the Ensembl table" if g not in known
                                                 else "no id of the symbol among the TCGA ids"),
                     "tcga_ids": ids_of.get(g, ""), "used_id": used.get(g, ""),
                     "selection_variance": float(pre.variance_[rank])})
    return pd.DataFrame(rows)


def proliferation_index(tcga: ad.AnnData, gene_sets: dict) -> tuple[pd.Series, list[str]]:
    """Mean log2(CPM+1) of the :data:`PROLIFERATION_MARKERS` found in TCGA and in none of the hallmark
    gene sets (an expression readout independent of the model's inputs by construction), and the
    markers used."""
    in_sets = {g for genes in gene_sets.values() for g in genes}
    symbols = tcga.var["symbol"].astype(str)
    used, cols = [], []
    for g in PROLIFERATION_MARKERS:
        hits = np.flatnonzero(symbols.to_numpy() == g)
        if len(hits) and g not in in_sets:
            used.append(g)
            cols.append(hits[np.argmax(np.asarray(tcga.X[:, hits]).mean(axis=0))])
    if not used:
        raise InputError(None, "proliferation markers", "none of the markers is in TCGA outside the gene sets")
    return pd.Series(np.asarray(tcga.X[:, cols], dtype=np.float64).mean(axis=1), index=tcga.obs_names), used


def hallmark_stats(per_sample: pd.DataFrame, replicate_probs: list[pd.DataFrame], prolif: pd.Series,
                   hallmarks) -> pd.DataFrame:
    """Per hallmark, on the ensemble probabilities: Kruskal–Wallis H across the cancer types (BH q),
    Spearman ρ with the proliferation index over all samples; and the mean pairwise Spearman ρ of the
    replicate models' per-sample probabilities (how reproducible the readout is across seeds)."""
    rows = []
    for h in hallmarks:
        groups = [g[h].to_numpy() for _, g in per_sample.groupby("cancer_type")]
        if np.ptp(np.concatenate(groups)) == 0:
            stat, p = float("nan"), float("nan")  # constant: Kruskal–Wallis is undefined
        else:
            stat, p = kruskal(*groups)
        rho, p_rho = spearmanr(per_sample[h].to_numpy(), prolif.reindex(per_sample.index).to_numpy())
        pairs = [spearmanr(a[h], b[h])[0] for i, a in enumerate(replicate_probs) for b in replicate_probs[i + 1:]]
        rows.append({"hallmark": h, "n_types": len(groups), "kruskal_H": float(stat), "kruskal_p": float(p),
                     "spearman_proliferation": float(rho), "spearman_proliferation_p": float(p_rho),
                     "replicate_agreement": float(np.nanmean(pairs)) if pairs else float("nan")})
    out = pd.DataFrame(rows)
    out.insert(4, "kruskal_q", bh_adjust(out["kruskal_p"].to_numpy()))
    return out


def profile(model, pre, tcga: ad.AnnData) -> tuple[pd.DataFrame, dict]:
    """Probabilities of every TCGA sample (``predict_anndata``) and its preprocessing report."""
    probs = predict_anndata(model, pre, tcga)
    report = probs.attrs.get("report", {})
    return probs.set_axis(tcga.obs_names), report


def per_type_tables(replicate_probs: list[pd.DataFrame], types: pd.Series):
    """Ensemble per-sample table (mean over replicates, with ``cancer_type``), per-type mean
    (``n`` first) and the sd over replicates of each replicate's per-type mean."""
    ensemble = sum(replicate_probs) / len(replicate_probs)
    means, counts = mean_by_group(ensemble, types)
    per_type = means.copy()
    per_type.insert(0, "n", counts.reindex(per_type.index).astype(int))
    per_type.index.name = "cancer_type"
    stack = np.stack([mean_by_group(p, types)[0].loc[means.index].to_numpy() for p in replicate_probs])
    sd = pd.DataFrame(stack.std(axis=0, ddof=1) if len(replicate_probs) > 1 else np.full(means.shape, np.nan),
                      index=per_type.index, columns=means.columns)
    per_sample = pd.concat([types.astype(str).rename("cancer_type"), ensemble], axis=1)
    per_sample.index.name = "sample_id"
    return per_sample, per_type, sd


def markdown(per_type: pd.DataFrame, sd: pd.DataFrame | None = None) -> str:
    cols = list(per_type.columns)
    lines = ["| type | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for t, row in per_type.iterrows():
        cells = [str(int(row["n"]))]
        for c in cols[1:]:
            v = f"{row[c]:.2f}"
            if sd is not None and np.isfinite(sd.loc[t, c]):
                v += f" ± {sd.loc[t, c]:.2f}"
            cells.append(v)
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the whole check
# ---------------------------------------------------------------------------------------------
def model_and_profile(cells, gene_sets, tcga: ad.AnnData, symbol_map: pd.Series, s: Settings,
                      replicates: int = 1) -> dict:
    """Steps 2–6 on loaded cells and TCGA: UCell and Otsu once (deterministic), then per replicate
    ``r`` (seed ``s.seed + r``: synthetic-bulk grouping, 85/15 split, initialisation, batches) the
    synthetic bulk, the model and its TCGA probabilities; the ensemble is the mean over replicates."""
    if replicates < 1:
        raise InputError(None, "replicates", f"must be >= 1, got {replicates}")
    scores, labels, thresholds, sig_missing = label(cells, gene_sets, s)
    say(f"UCell + Otsu: {len(scores)} cells, {int(labels.notna().any(axis=1).sum())} labelled for a hallmark")
    reps = []
    for r in range(replicates):
        sr = replace(s, seed=s.seed + r)
        profiles = training_profiles(cells, labels, sr)
        if profiles.n_obs == 0:
            raise InputError(None, "cells_per_bulk", f"no synthetic bulk profile with {s.cells_per_bulk} cells per bulk")
        model, pre, result, metrics = train(profiles, sr)
        probs, report = profile(model, pre, tcga)
        coverage = gene_coverage(pre, tcga, symbol_map)
        if int(coverage["found"].sum()) != len(coverage) - report["n_missing"]:
            raise RuntimeError("coverage table disagrees with predict_anndata's report")
        counts = (profiles.obs.groupby(["tissue", "hallmark", "status"], observed=True).size()
                  .rename("n_profiles").reset_index())
        say(f"replicate {r} (seed {sr.seed}): {profiles.n_obs} profiles × {profiles.n_vars} genes; "
            f"{len(pre.genes_)} model genes, {int(coverage['found'].sum())} found in TCGA; best epoch "
            f"{result.best_epoch}/{len(result.history)}; macro AUROC early-stop part "
            f"{metrics.set_index(['part', 'hallmark']).loc[('early_stop_15', 'macro'), 'auroc']:.3f}")
        reps.append({"seed": sr.seed, "profiles": profiles, "profile_counts": counts.assign(replicate=r),
                     "model": model, "preprocessor": pre, "result": result, "metrics": metrics.assign(replicate=r),
                     "probs": probs, "report": report, "coverage": coverage.assign(replicate=r)})
    replicate_probs = [x["probs"] for x in reps]
    per_sample, per_type, sd = per_type_tables(replicate_probs, tcga.obs["cancer_type"])
    prolif, markers = proliferation_index(tcga, gene_sets)
    stats = hallmark_stats(per_sample, replicate_probs, prolif, reps[0]["model"].hallmarks)
    long = pd.concat([p.assign(replicate=r, cancer_type=tcga.obs["cancer_type"].to_numpy())
                      for r, p in enumerate(replicate_probs)])
    long.index.name = "sample_id"
    return {"scores": scores, "labels": labels, "thresholds": thresholds, "signature_missing": sig_missing,
            "replicates": reps, "per_sample": per_sample, "per_sample_replicates": long, "per_type": per_type,
            "per_type_sd": sd, "hallmark_stats": stats, "proliferation_markers": markers,
            "coverage": pd.concat([x["coverage"] for x in reps], ignore_index=True),
            "metrics": pd.concat([x["metrics"] for x in reps], ignore_index=True),
            "profile_counts": pd.concat([x["profile_counts"] for x in reps], ignore_index=True)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--real", default=str(REPO.parent / "shared" / "real"))
    d = Settings()
    parser.add_argument("--seed", type=int, default=d.seed, help="replicate r uses seed + r")
    parser.add_argument("--replicates", type=int, default=5,
                        help="models trained with seeds seed, seed+1, …; the profile is their mean")
    parser.add_argument("--cells-per-bulk", type=int, default=d.cells_per_bulk)
    parser.add_argument("--n-top", type=int, default=d.n_top, help="model genes (top rank-variance genes)")
    parser.add_argument("--genes", choices=("intersection", "union"), default=d.genes,
                        help="genes of the combined profiles: shared by both studies, or the workflow's union")
    parser.add_argument("--max-rank", type=int, default=d.max_rank, help="UCell max_rank")
    parser.add_argument("--max-mito-fraction", type=float, default=d.max_mito_fraction)
    parser.add_argument("--min-genes", type=int, default=d.min_genes)
    parser.add_argument("--max-genes", type=int, default=d.max_genes)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--max-epochs", type=int, default=d.max_epochs)
    parser.add_argument("--plateau-patience", type=int, default=d.plateau_patience)
    parser.add_argument("--stop-patience", type=int, default=d.stop_patience)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default=d.device, help="cpu (default; same seed → same numbers) or cuda")
    args = parser.parse_args(argv)
    s = Settings(**{k: getattr(args, k) for k in Settings.__dataclass_fields__})
    torch.set_num_threads(max(1, args.threads))
    real, out = Path(args.real), Path(args.out)

    try:
        say(f"reading the two tumour single-cell sets in {real} …")
        cells, qc = load_cells(real, s)
        for row in qc.itertuples():
            say(f"  {row.study} ({row.tissue}, {row.unit}, {row.n_genes} genes): {row.n_cells} malignant cells, "
                f"{row.kept} pass QC")
        gene_sets = read_gene_sets(real / "gene_sets" / "oncomark_hallmark_gene_sets.csv")
        say("reading the 7 TCGA count matrices …")
        symbol_map = ensembl_symbol_map()
        tcga = load_tcga(real, symbol_map)
        sym = tcga.var.loc[tcga.var["mapped"], "symbol"]
        n_multi = int((sym.value_counts() > 1).sum())
        say(f"  {tcga.n_obs} samples × {tcga.n_vars} ids; {len(sym)} ids mapped to {sym.nunique()} symbols "
            f"({n_multi} symbols carried by several ids)")
        r = model_and_profile(cells, gene_sets, tcga, symbol_map, s, args.replicates)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    cov, stats = r["coverage"], r["hallmark_stats"]
    per_rep = cov.groupby("replicate").agg(n=("found", "size"), found=("found", "sum"))
    missing = cov[~cov["found"]].drop_duplicates("gene").sort_values("gene")  # over all replicates
    reason = missing["reason"].value_counts()
    m = r["metrics"][r["metrics"]["hallmark"] == "macro"].groupby("part")["auroc"].mean()
    gim = stats.set_index("hallmark").loc["GIM"]
    summary = pd.DataFrame([
        ("malignant_cells_read", int(qc["n_cells"].sum())), ("cells_after_qc", int(qc["kept"].sum())),
        ("cells_labelled_any", int(r["labels"].notna().any(axis=1).sum())),
        ("replicates", args.replicates),
        ("training_profiles_mean", float(np.mean([x["profiles"].n_obs for x in r["replicates"]]))),
        ("training_genes", r["replicates"][0]["profiles"].n_vars),
        ("model_genes", int(per_rep["n"].iloc[0])),
        ("model_genes_found_in_tcga_min", int(per_rep["found"].min())),
        ("model_genes_found_in_tcga_max", int(per_rep["found"].max())),
        ("model_gene_coverage_mean", round(float((per_rep["found"] / per_rep["n"]).mean()), 4)),
        ("missing_genes_any_replicate", ",".join(missing["gene"])),
        ("missing_symbol_not_in_table", int(reason.get("symbol not in the Ensembl table", 0))),
        ("missing_no_tcga_id", int(reason.get("no id of the symbol among the TCGA ids", 0))),
        ("tcga_samples", tcga.n_obs), ("tcga_ids", tcga.n_vars), ("tcga_ids_mapped", len(sym)),
        ("tcga_symbols", int(sym.nunique())), ("tcga_symbols_with_several_ids", n_multi),
        ("macro_auroc_train_85_mean", round(float(m["train_85"]), 4)),
        ("macro_auroc_early_stop_15_mean", round(float(m["early_stop_15"]), 4)),
        ("proliferation_markers", ",".join(r["proliferation_markers"])),
        ("gim_spearman_proliferation", round(float(gim["spearman_proliferation"]), 4)),
        ("seed", s.seed), ("cells_per_bulk", s.cells_per_bulk), ("n_top", s.n_top), ("genes", s.genes),
        ("seconds", round(time.perf_counter() - T0, 1)),
    ], columns=["key", "value"])

    # every table and figure is built; now write them (each atomically)
    write_tsv(r["per_sample"], out / "per_sample.tsv", index=True)
    write_tsv(r["per_sample_replicates"], out / "per_sample_replicates.tsv", index=True)
    write_tsv(r["per_type"], out / "per_type_profile.tsv", index=True)
    write_tsv(r["per_type_sd"], out / "per_type_profile_sd.tsv", index=True)
    write_tsv(cov, out / "gene_coverage.tsv")
    write_tsv(stats, out / "hallmark_stats.tsv")
    write_tsv(r["metrics"], out / "training_metrics.tsv")
    write_tsv(r["profile_counts"], out / "training_profiles.tsv")
    write_tsv(qc, out / "qc_summary.tsv")
    write_tsv(r["thresholds"], out / "otsu_thresholds.tsv")
    write_tsv(r["signature_missing"], out / "signature_genes_missing.tsv")
    write_tsv(summary, out / "summary.tsv")
    for i, x in enumerate(r["replicates"]):
        save_hallmark_model(out / "models" / f"replicate_{i}.pt", x["model"], x["preprocessor"],
                            {"seed": int(x["seed"]), "n_profiles": int(x["profiles"].n_obs)})
    hm = list(r["replicates"][0]["model"].hallmarks)
    save_figure(hallmark_heatmap(r["per_sample"][hm], r["per_sample"]["cancer_type"],
                                 title=f"hallmark model trained on real breast + oligodendroglioma cells "
                                       f"(mean of {args.replicates} seeds): mean probability by TCGA type"),
                out / "profile_heatmap.png", out / "profile_heatmap.svg")
    save_figure(otsu_histograms(r["scores"][hm], r["scores"]["tissue"], r["thresholds"],
                                "UCell hallmark scores of the real malignant cells"),
                out / "otsu_histograms.png", out / "otsu_histograms.svg")

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\ncells (malignant only) and QC:")
        print(qc.to_string(index=False))
        print("\nAUROC per hallmark, mean over replicates (train_85 = fitted part, early_stop_15 = lr-schedule part):")
        print(r["metrics"].groupby(["hallmark", "part"])["auroc"].mean().unstack().round(3).to_string())
        print(f"\nmodel genes found in TCGA: {per_rep['found'].min()}–{per_rep['found'].max()} of "
              f"{per_rep['n'].iloc[0]} per replicate; missing in any replicate: {len(missing)} genes ("
              + (", ".join(missing["gene"]) or "none") + "): "
              + (", ".join(f"{n} {k}" for k, n in reason.items()) or "none"))
        print("\nper hallmark (ensemble): Kruskal–Wallis across the 7 types, Spearman with the proliferation "
              f"index ({', '.join(r['proliferation_markers'])}), replicate agreement (mean pairwise Spearman):")
        print(stats.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"\nmean hallmark probability per TCGA type (mean of {args.replicates} models ± sd over them):\n")
    print(markdown(r["per_type"], r["per_type_sd"]))
    say(f"done in {format_duration(time.perf_counter() - T0)}; outputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
