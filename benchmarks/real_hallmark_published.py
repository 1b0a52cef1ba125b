#!/usr/bin/env python
"""Real-data check: OncoMark's published model against ours on the 7 real TCGA types.

Our side is exactly ``real_hallmark_profile.py`` (same cells, labels, synthetic bulk, settings and
seeds; the ensemble of ``--replicates`` models, mean probability per sample). The published side is
OncoMark 1.0.0 from its PyPI wheel (``--wheel``; sha256 pinned), converted by
:mod:`oncoshot.sources.oncomark` (tested equal to Keras + sklearn to ≤ 1e-5) and applied with
OncoMark's preprocessing to the same TCGA log2(CPM+1) matrix by symbol (ids sharing a symbol: the
first is kept, as OncoMark does).

Reported (``--out``, every file written atomically after every step succeeded):

* ``agreement.tsv`` — per hallmark: Spearman ρ between the two models' per-sample probabilities
  across the 384 samples with a percentile bootstrap 95 % interval over samples (``--bootstrap``
  resamples), both means, the fraction of published probabilities ≥ 0.99 (saturation), ρ of the 7
  per-type means, the mean of the within-type ρ (agreement not driven by type differences), and ρ
  over the samples whose published probability is < 0.99 (``n_unsaturated``; NaN below 20);
* ``agreement_by_type.tsv`` — per type: n and the mean of every hallmark, ours and published;
* ``published_per_sample.tsv``, ``published_missing_genes.tsv``, ``summary.tsv``;
* ``agreement.png/svg`` (:func:`oncoshot.hallmark_plots.agreement_figure`).

What limits agreement (``summary.tsv``): our training data (cells, profiles) against the published
scaler's 57,735 training profiles; gene coverage of each model in TCGA and the overlap of our model
genes with the published model's 9,326 inputs; saturation of the published outputs near 1.

Usage::

    python3 -m pip download --no-deps OncoMark==1.0.0 -d /tmp/oncomark
    python benchmarks/real_hallmark_published.py --wheel /tmp/oncomark/OncoMark-1.0.0-py3-none-any.whl \\
        --out results/benchmarks/real_hallmark_published [--real ../shared/real] [--seed 0]
        [--replicates 5] [--bootstrap 1000] [--threads 1]

Prints the agreement table as Markdown. Bad input: a one-line error naming the file, exit 1,
nothing written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(HERE))

import real_hallmark_profile as base  # noqa: E402
from oncoshot.agreement import SATURATION, agreement_table, spearman, type_means_side_by_side  # noqa: E402
from oncoshot.errors import InputError  # noqa: E402
from oncoshot.hallmark_model import HALLMARKS  # noqa: E402
from oncoshot.hallmark_plots import agreement_figure  # noqa: E402
from oncoshot.io import write_tsv  # noqa: E402
from oncoshot.plots import save_figure  # noqa: E402
from oncoshot.published import ensembl_symbol_map  # noqa: E402
from oncoshot.runtime import format_duration  # noqa: E402
from oncoshot.sources import oncomark as om  # noqa: E402
from oncoshot.ucell import read_gene_sets  # noqa: E402

T0 = time.perf_counter()
MIN_UNSATURATED = 20


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


def extra_columns(table: pd.DataFrame, ours: pd.DataFrame, published: pd.DataFrame, types: pd.Series) -> pd.DataFrame:
    """Within-type ρ (mean over types with ≥ 10 samples) and ρ over the unsaturated samples."""
    within, unsat, n_unsat = [], [], []
    for h in table["hallmark"]:
        rhos = [spearman(ours.loc[idx, h].to_numpy(), published.loc[idx, h].to_numpy())
                for _, idx in types.groupby(types).groups.items() if len(idx) >= 10]
        rhos = [r for r in rhos if np.isfinite(r)]
        within.append(float(np.mean(rhos)) if rhos else float("nan"))
        keep = (published[h] < SATURATION).to_numpy()
        n_unsat.append(int(keep.sum()))
        unsat.append(spearman(ours[h].to_numpy()[keep], published[h].to_numpy()[keep])
                     if keep.sum() >= MIN_UNSATURATED else float("nan"))
    return table.assign(spearman_within_type_mean=within, n_unsaturated=n_unsat, spearman_unsaturated=unsat)


def markdown(table: pd.DataFrame) -> str:
    lines = ["| hallmark | ρ per sample [95 % CI] | mean ours | mean published | published ≥ 0.99 | "
             "ρ of type means | mean within-type ρ | ρ unsaturated (n) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        unsat = f"{r.spearman_unsaturated:.2f} ({r.n_unsaturated})" if np.isfinite(r.spearman_unsaturated) \
            else f"n/a ({r.n_unsaturated})"
        lines.append(f"| {r.hallmark} | {r.spearman_rho:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}] | {r.mean_trained:.2f} | "
                     f"{r.mean_published:.2f} | {100 * r.published_saturated:.0f} % | {r.spearman_type_means:.2f} | "
                     f"{r.spearman_within_type_mean:.2f} | {unsat} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--wheel", required=True, help=f"{om.WHEEL_NAME} (get it with: {om.PIP_COMMAND})")
    parser.add_argument("--real", default=str(REPO.parent / "shared" / "real"))
    parser.add_argument("--seed", type=int, default=0, help="replicate r of our model uses seed + r")
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the samples")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    real, out = Path(args.real), Path(args.out)
    s = base.Settings(seed=args.seed)
    try:
        say(f"converting the published model from {args.wheel} …")
        pub = om.convert_wheel(args.wheel)
        say("our side: real_hallmark_profile's cells, labels, synthetic bulk and models …")
        cells, qc = base.load_cells(real, s)
        gene_sets = read_gene_sets(real / "gene_sets" / "oncomark_hallmark_gene_sets.csv")
        symbol_map = ensembl_symbol_map()
        tcga = base.load_tcga(real, symbol_map)
        r = base.model_and_profile(cells, gene_sets, tcga, symbol_map, s, args.replicates)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    types = tcga.obs["cancer_type"].astype(str)
    ours = r["per_sample"][list(HALLMARKS)]
    published = om.predict_published_anndata(pub, tcga).set_axis(tcga.obs_names)
    rep = published.attrs["report"]
    say(f"published model: {rep['n_found']} of {rep['n_features']} genes found in TCGA by symbol "
        f"({100 * rep['coverage']:.1f} %); {rep['n_duplicate_columns_dropped']} columns of duplicated symbols dropped")
    table = agreement_table(ours, published, types, n_boot=args.bootstrap, seed=args.seed)
    table = extra_columns(table, ours, published, types)
    side = type_means_side_by_side(ours, published, types)

    our_genes = sorted({g for x in r["replicates"] for g in x["preprocessor"].genes_})
    features = set(pub.features)
    cov = r["coverage"].groupby("replicate")["found"].mean()
    summary = pd.DataFrame([
        ("our_cells_after_qc", int(qc["kept"].sum())),
        ("our_training_profiles_mean", float(np.mean([x["profiles"].n_obs for x in r["replicates"]]))),
        ("our_cells_per_profile", s.cells_per_bulk), ("our_replicates", args.replicates),
        ("published_training_profiles_scaler", pub.meta["n_samples_seen"]),
        ("our_model_genes_per_replicate", len(r["replicates"][0]["preprocessor"].genes_)),
        ("our_model_genes_union", len(our_genes)),
        ("our_model_genes_among_published_inputs", sum(g in features for g in our_genes)),
        ("our_gene_coverage_tcga_mean", round(float(cov.mean()), 4)),
        ("published_features", len(pub.features)), ("published_found_in_tcga", rep["n_found"]),
        ("published_coverage_tcga", round(rep["coverage"], 4)),
        ("published_duplicate_columns_dropped", rep["n_duplicate_columns_dropped"]),
        ("published_saturated_fraction_all", round(float((published.to_numpy() >= SATURATION).mean()), 4)),
        ("spearman_median_over_hallmarks", round(float(table["spearman_rho"].median()), 4)),
        ("tcga_samples", tcga.n_obs), ("seed", args.seed), ("bootstrap", args.bootstrap),
        ("wheel_sha256", om.WHEEL_SHA256), ("seconds", round(time.perf_counter() - T0, 1)),
    ], columns=["key", "value"])

    per_sample = pd.concat([types.rename("cancer_type"), published], axis=1)
    per_sample.index.name = "sample_id"
    write_tsv(table, out / "agreement.tsv")
    write_tsv(side, out / "agreement_by_type.tsv", index=True)
    write_tsv(per_sample, out / "published_per_sample.tsv", index=True)
    write_tsv(pd.DataFrame({"gene": rep["missing_genes"]}), out / "published_missing_genes.tsv")
    write_tsv(summary, out / "summary.tsv")
    save_figure(agreement_figure(table, side, title=f"7 real TCGA types: ours (real cells, mean of {args.replicates} "
                                 "models) vs published OncoMark"), out / "agreement.png", out / "agreement.svg")

    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print("\nwhat limits agreement:")
        print(summary.to_string(index=False))
        print("\nper-type means, ours | published:")
        print(side.round(2).to_string())
    print(f"\nagreement per hallmark, ours (mean of {args.replicates} models) vs published, {tcga.n_obs} samples:\n")
    print(markdown(table))
    say(f"done in {format_duration(time.perf_counter() - T0)}; outputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
