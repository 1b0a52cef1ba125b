#!/usr/bin/env python
"""Benchmark of oncoshot.ucell.ucell_scores against pyucell.compute_ucell_scores (SPEC §3.3).

1. Speed and agreement: the real breast tumour of ``../shared/real`` (302 cells × 33,694 genes,
   10x UMI) replicated to ≥ 20,000 cells, scored with the ten OncoMark hallmark gene sets by
   pyucell (defaults: all cores; and ``n_jobs=1``) and by ours (1 thread and ``--threads``):
   cells/s, ratio to pyucell, max |difference|.
2. Memory: a simulated sparse matrix (default 200,000 cells × 20,000 genes, ~2,000 detected
   genes a cell) scored with the default chunk in a fresh subprocess: peak RSS above the RSS
   with the input loaded (Linux ``/proc/self/clear_refs`` resets the high-water mark; else
   ``ru_maxrss``) and the tracemalloc peak of the call; repeated at a quarter of the cells to
   show the bound does not grow with the number of cells.
3. Projection: hours for 2.7 million cells at each measured rate.

Usage::

    python benchmarks/ucell_benchmark.py --out results/benchmarks/ucell.tsv [--cells 20000]
        [--sim-cells 200000] [--sim-genes 20000] [--threads 2] [--real ../shared/real]

Writes a TSV ``section, metric, value, unit, note`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from oncoshot.ucell import DEFAULT_CHUNK_SIZE, read_gene_sets, ucell_scores  # noqa: E402

N_PROJECT = 2_700_000


def _rss_now() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _rss_peak() -> int:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def simulate(n_cells: int, n_genes: int, mean_detected: int = 2000, seed: int = 0) -> sp.csr_matrix:
    """Sparse UMI-like counts in canonical CSR, built row-block by row-block to keep the build's
    peak near the matrix's own size. Cell i with d_i detected genes gets the genes
    ``o_i + k·(n_genes // d_i)``, k < d_i, with a random offset ``o_i < n_genes // d_i``
    (sorted, no repeats, spread over all genes)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(mean_detected // 4, 2 * mean_detected - mean_detected // 4, n_cells)
    lengths = np.minimum(lengths, n_genes)
    indptr = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    nnz = int(indptr[-1])
    data = np.empty(nnz, dtype=np.float32)
    indices = np.empty(nnz, dtype=np.int32)
    block = 10_000
    for s in range(0, n_cells, block):
        e = min(s + block, n_cells)
        a, b = indptr[s], indptr[e]
        step = n_genes // lengths[s:e]
        start = rng.integers(0, step)
        k = np.arange(b - a) - np.repeat(indptr[s:e] - a, lengths[s:e])
        indices[a:b] = np.repeat(start, lengths[s:e]) + k * np.repeat(step, lengths[s:e])
        data[a:b] = rng.geometric(0.45, b - a)  # 1, 2, 3, ... mostly 1s, like UMI counts
    X = sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))
    X.has_canonical_format = True  # sorted, unique by construction
    return X


def memory_child(n_cells: int, n_genes: int, gene_sets_path: str | None) -> dict:
    X = simulate(n_cells, n_genes)
    genes = [f"G{i}" for i in range(n_genes)]
    if gene_sets_path:
        sigs = read_gene_sets(gene_sets_path)
        rng = np.random.default_rng(1)  # same sizes as the hallmark sets, on simulated genes
        sigs = {k: list(rng.choice(genes, len(v), replace=False)) for k, v in sigs.items()}
    else:
        rng = np.random.default_rng(1)
        sigs = {f"S{i}": list(rng.choice(genes, 100, replace=False)) for i in range(10)}
    input_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    rss_before = _rss_now()
    reset = _reset_peak()
    tracemalloc.start()
    t0 = time.perf_counter()
    scores, _ = ucell_scores(X, genes, sigs)
    seconds = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = _rss_peak()
    return {
        "n_cells": n_cells,
        "n_genes": n_genes,
        "nnz": int(X.nnz),
        "input_bytes": int(input_bytes),
        "output_bytes": int(scores.to_numpy().nbytes),
        "rss_before": int(rss_before),
        "rss_peak": int(peak),
        "peak_reset": reset,
        "traced_peak": int(traced_peak),
        "seconds_traced": seconds,
    }


def read_breast(real: Path) -> tuple[sp.csr_matrix, list[str]]:
    path = real / "scrna_breast_copykat" / "copykat_breast10x_UMIcounts_genesxcells.tsv.gz"
    table = pd.read_csv(path, sep="\t", index_col=0)
    return sp.csr_matrix(table.T.to_numpy(dtype=np.float32)), [str(g) for g in table.index]


def time_call(fn, repeats: int = 1) -> tuple[float, float]:
    """Best wall-clock seconds and best CPU seconds of this process (threads included)."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="TSV to write")
    parser.add_argument("--real", default=str(REPO.parent / "shared" / "real"))
    parser.add_argument("--cells", type=int, default=20_000, help="replicate the breast tumour to at least this")
    parser.add_argument("--sim-cells", type=int, default=200_000)
    parser.add_argument("--sim-genes", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-pyucell", action="store_true")
    parser.add_argument("--n-studies", type=int, default=51,
                        help="studies the 2.7 M cells come in (OncoMark: 51), for the cluster projection")
    parser.add_argument("--largest-study", type=int, default=200_000,
                        help="cells of the largest study: with one job per study it bounds the cluster wall time")
    parser.add_argument("--memory-child", nargs=2, type=int, metavar=("CELLS", "GENES"), help=argparse.SUPPRESS)
    parser.add_argument("--gene-sets", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_child:
        print(json.dumps(memory_child(*args.memory_child, args.gene_sets)))
        return 0

    rows: list[tuple[str, str, object, str, str]] = []
    real = Path(args.real)
    gs_path = real / "gene_sets" / "oncomark_hallmark_gene_sets.csv"
    gene_sets = read_gene_sets(gs_path)

    # 1. speed and agreement on the replicated breast tumour
    X0, genes = read_breast(real)
    reps = -(-args.cells // X0.shape[0])
    X = sp.vstack([X0] * reps, format="csr")
    n = X.shape[0]
    rows.append(("speed", "cells", n, "cells", f"breast tumour {X0.shape[0]} cells x {reps}, {X.shape[1]} genes"))
    rows.append(("speed", "mean_detected_genes", round(X.nnz / n, 1), "genes", ""))
    rows.append(("speed", "cpu_count", os.cpu_count(), "cores", "shared machine: timings are indicative"))
    ours = {}
    for threads in sorted({1, args.threads}):
        result = {}

        def run(threads=threads, result=result):
            result["scores"] = ucell_scores(X, genes, gene_sets, n_jobs=threads)[0]

        seconds, cpu = time_call(run, repeats=2)
        ours[threads] = (seconds, cpu, result["scores"])
        rows.append(("speed", f"oncoshot_n_jobs{threads}_cells_per_s", round(n / seconds), "cells/s",
                     f"wall clock, best of 2, chunk_size={DEFAULT_CHUNK_SIZE}"))
        if threads == 1:
            rows.append(("speed", "oncoshot_n_jobs1_cells_per_cpu_s", round(n / cpu), "cells/cpu-s",
                         "CPU time of the process (robust to other load)"))
    if not args.skip_pyucell:
        import anndata as ad
        import pyucell

        ref = {}
        for label, kwargs in (("pyucell_default", {}), ("pyucell_n_jobs1", {"n_jobs": 1})):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                adata = ad.AnnData(X=X, var=pd.DataFrame(index=pd.Index(genes)))
            seconds, cpu = time_call(
                lambda adata=adata, kwargs=kwargs: pyucell.compute_ucell_scores(adata, gene_sets, **kwargs)
            )
            ref[label] = (seconds, cpu, adata.obs[[f"{k}_UCell" for k in gene_sets]].to_numpy())
            note = "defaults (n_jobs=-1: all cores, chunk 500), wall clock" if not kwargs else "one process, wall clock"
            rows.append(("speed", f"{label}_cells_per_s", round(n / seconds), "cells/s", note))
            if kwargs:
                rows.append(("speed", f"{label}_cells_per_cpu_s", round(n / cpu), "cells/cpu-s", "CPU time"))
        base = ref["pyucell_default"][0]
        base1 = ref["pyucell_n_jobs1"][0]
        for threads, (seconds, _, scores) in ours.items():
            rows.append(("speed", f"ratio_oncoshot_n_jobs{threads}_vs_pyucell_default", round(base / seconds, 2), "x", "wall clock"))
            rows.append(("speed", f"ratio_oncoshot_n_jobs{threads}_vs_pyucell_n_jobs1", round(base1 / seconds, 2), "x", "wall clock"))
            diff = float(np.abs(scores.to_numpy(dtype=np.float64) - ref["pyucell_default"][2]).max())
            rows.append(("agreement", f"max_abs_diff_n_jobs{threads}", diff, "score", "vs pyucell defaults"))
        rows.append(("speed", "ratio_cpu_oncoshot_vs_pyucell_n_jobs1", round(ref["pyucell_n_jobs1"][1] / ours[1][1], 2),
                     "x", "per core: CPU seconds, one process each"))

    # 2. memory of the default chunk on simulated data, in fresh subprocesses
    for n_sim in (args.sim_cells // 4, args.sim_cells):
        cmd = [sys.executable, __file__, "--out", os.devnull, "--memory-child", str(n_sim), str(args.sim_genes),
               "--gene-sets", str(gs_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        m = json.loads(proc.stdout.strip().splitlines()[-1])
        tag = f"sim{n_sim}"
        note = f"{m['n_cells']} cells x {m['n_genes']} genes, {m['nnz']} non-zeros"
        rows.append(("memory", f"{tag}_input_MiB", round(m["input_bytes"] / 2**20, 1), "MiB", note))
        rows.append(("memory", f"{tag}_output_MiB", round(m["output_bytes"] / 2**20, 2), "MiB", "scores float32"))
        rows.append(("memory", f"{tag}_rss_with_input_MiB", round(m["rss_before"] / 2**20, 1), "MiB", ""))
        extra = (m["rss_peak"] - m["rss_before"]) / 2**20
        rows.append(("memory", f"{tag}_peak_rss_above_input_MiB", round(extra, 1), "MiB",
                     "VmHWM reset before scoring" if m["peak_reset"] else "ru_maxrss (includes the build)"))
        rows.append(("memory", f"{tag}_tracemalloc_peak_MiB", round(m["traced_peak"] / 2**20, 1), "MiB",
                     f"allocations of the call, chunk_size={DEFAULT_CHUNK_SIZE}"))
        rows.append(("memory", f"{tag}_cells_per_s_traced", round(n_sim / m["seconds_traced"]), "cells/s",
                     "under tracemalloc, ~2,000 detected genes a cell"))

    # 3. projection to 2.7 million cells
    for metric, value, unit, _ in [r[1:] for r in rows if r[0] == "speed" and r[3].startswith("cells/")]:
        hours = N_PROJECT / float(value) / 3600
        name = metric.replace("_cells_per_cpu_s", "_cpu_hours_2.7M_cells").replace("_cells_per_s", "_hours_2.7M_cells")
        rows.append(("projection", name, round(hours, 3), "h",
                     f"at the rate measured on the breast tumour ({X.nnz / n:.0f} detected genes a cell)"))
        if metric.startswith("oncoshot") and metric.endswith("_cells_per_s"):
            # one job per study: the wall time is that of the largest study (scoring only)
            rows.append(("projection", metric.replace("_cells_per_s", "_cluster_minutes_largest_study"),
                         round(args.largest_study / float(value) / 60, 2), "min",
                         f"{args.n_studies} jobs in parallel; largest study {args.largest_study:,} cells"))

    table = pd.DataFrame(rows, columns=["section", "metric", "value", "unit", "note"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, sep="\t", index=False)
    with pd.option_context("display.width", 200, "display.max_colwidth", 70, "display.max_rows", 200):
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
