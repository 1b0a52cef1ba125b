"""The benchmark target's table builder (benchmarks/run_all.py): per-rule times come from the
benchmark files Snakemake reported for each job, matched to their rule."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from workflow_utils import REPO

spec = importlib.util.spec_from_file_location("run_all", REPO / "benchmarks" / "run_all.py")
run_all = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_all)

OUTPUT = """\
[Sat Nov 21 08:06:36 2026]
rule download:
    output: results/downloads/tcga/a.tsv.gz
    log: results/logs/download/tcga/a.tsv.gz.log
    jobid: 58
    benchmark: results/benchmarks/download/tcga/a.tsv.gz.tsv
    wildcards: group=tcga, filename=a.tsv.gz
    resources: tmpdir=/tmp
Shell command: None

[Sat Nov 21 08:06:37 2026]
rule download:
    output: results/downloads/tcga/b.tsv.gz
    benchmark: results/benchmarks/download/tcga/b.tsv.gz.tsv
Finished jobid: 58 (Rule: download)
localrule merge_labels:
    input: x
    log: results/logs/bulk/merge_labels_tcga.log
    benchmark: results/benchmarks/bulk/merge_labels_tcga.tsv
[Sat Nov 21 08:06:38 2026]
rule all:
    input: y
    jobid: 0
"""


def _bench(path, s, rss):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\n" f"{s}\t0:00:01\t{rss}\t100\n")


def test_rule_times_from_reported_benchmark_files(tmp_path):
    assert run_all.benchmark_files(OUTPUT) == {
        "results/benchmarks/download/tcga/a.tsv.gz.tsv": ("download", "results/logs/download/tcga/a.tsv.gz.log"),
        "results/benchmarks/download/tcga/b.tsv.gz.tsv": ("download", None),
        "results/benchmarks/bulk/merge_labels_tcga.tsv": ("merge_labels", "results/logs/bulk/merge_labels_tcga.log"),
    }
    # the script's own time, as oncoshot.runtime.run logs it (the last 'done in' counts)
    log = tmp_path / "results/logs/bulk/merge_labels_tcga.log"
    log.parent.mkdir(parents=True)
    log.write_text("08:06:38 INFO oncoshot.merge_labels: done in 9.9 s\n08:06:39 INFO oncoshot.merge_labels: done in 5.5 s\n")
    _bench(tmp_path / "results/benchmarks/download/tcga/a.tsv.gz.tsv", 1.5, 10)
    _bench(tmp_path / "results/benchmarks/download/tcga/b.tsv.gz.tsv", 2.25, 30)
    _bench(tmp_path / "results/benchmarks/bulk/merge_labels_tcga.tsv", 7.0, "NA")
    # a benchmark file no job reported (e.g. from an earlier run) is not counted
    _bench(tmp_path / "results/benchmarks/bulk/stale.tsv", 99.0, 1)
    table = run_all.rule_times(tmp_path, OUTPUT).set_index("rule")
    assert list(table.index) == ["merge_labels", "download"]  # by total time
    assert table.loc["download", "jobs"] == 2
    assert table.loc["download", "total_s"] == pytest.approx(3.75)
    assert table.loc["download", "longest_s"] == pytest.approx(2.25)
    assert table.loc["download", "max_rss_mb"] == 30
    assert pd.isna(table.loc["merge_labels", "max_rss_mb"])
    assert table.loc["merge_labels", "work_s"] == pytest.approx(5.5)
    assert table.loc["merge_labels", "startup_s"] == pytest.approx(1.5)  # 7.0 s wall - 5.5 s work
    assert table.loc["download", "work_s"] == 0 and table.loc["download", "startup_s"] == 0  # no 'done in' logged


def test_marker_rows_carry_recall_and_selection(tmp_path):
    path = tmp_path / "marker_recall.tsv"
    pd.DataFrame({"experiment": ["tcga19"], "saliency": ["guided"], "rank_by": ["score"], "recall@100": [34],
                  "chance@100": [23.4], "best_k": [110], "best_k_accuracy": [0.531],
                  "all_genes_accuracy": [0.456]}).to_csv(path, sep="\t", index=False)
    rows = run_all.marker_rows(path)
    assert list(rows.columns) == run_all.COLUMNS
    assert rows.iloc[0]["metric"] == "tcga19_guided_score_recall@100" and rows.iloc[0]["value"] == 34
    assert "best k 110: accuracy 0.531 (all genes 0.456)" in rows.iloc[0]["note"]


def test_schedule_bounds_divide_job_times_by_the_cores():
    per_rule = pd.DataFrame({"rule": ["a", "b"], "total_s": [300.0, 100.0], "work_s": [250.0, 30.0]})
    rows = {r[2]: r[3] for r in run_all.schedule_bounds(per_rule, cores=2)}
    assert rows == {"lower_bound_s": 200.0, "lower_bound_without_startup_s": 140.0}
    rows4 = {r[2]: r[3] for r in run_all.schedule_bounds(per_rule, cores=4)}
    assert rows4["lower_bound_s"] == 100.0
    assert all(len(r) == len(run_all.COLUMNS) for r in run_all.schedule_bounds(per_rule, cores=2))
