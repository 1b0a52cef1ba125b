#!/usr/bin/env python
"""Run the repository's benchmarks and write one table (the workflow's ``benchmark`` target).

1. **Demo, end to end**: ``snakemake --cores N`` on the embedded demo (``config/config.yaml``) in a
   scratch copy of the workflow with an empty ``results/`` (symlinks to the repository, as the
   workflow tests do), timed by the wall clock; the goal is ≤ ``--goal-s`` (120 s on 2 cores; config ``benchmark.goal_s``).
2. **Per rule**: the ``benchmark:`` files that run wrote (``results/benchmarks/**/*.tsv``): jobs,
   summed wall seconds, the longest job and the largest max RSS per rule.
3. **Earlier benchmarks** (each measures its ratios against a reference in the same run; see
   ``benchmarks/README.md``): UCell vs pyucell, one-shot evaluation batched vs per task, Siamese
   training throughput vs a bare loop, and the marker recall on the demo run of step 1; with
   ``--real`` also the leave-types-out benchmarks on ``../shared/real``: 7 TCGA types and GDSC cell lines.

Output: one tidy TSV (``benchmark, section, metric, value, unit, note``; the per-rule rows have
``section = rule``) and the same as Markdown next to it (``.md``). Every sub-benchmark's own TSV
is kept in ``--work`` (default: a folder next to the output).

    python benchmarks/run_all.py --out results/benchmarks/summary.tsv --cores 2
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from workflow_runs import job_blocks, local_snakemake_env, scratch_workflow  # noqa: E402
COLUMNS = ["benchmark", "section", "metric", "value", "unit", "note"]
# rows of the sub-benchmarks' own tables that go into the summary (the rest stays in their TSVs)
KEEP_SECTIONS = {"speed", "speedup", "ratio", "throughput", "agreement", "projection", "summary", "time"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_demo(folder: Path, cores: int) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall time, CPU time (Snakemake and every job it ran: user + system) and the process."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--nocolor"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # a local run: Snakemake's start-up must not wait for a SLURM controller that is not running
    # (oncoshot.runtime.local_snakemake_env; it costs 9-60 s where only the SLURM client is installed)
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, env=local_snakemake_env())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def benchmark_files(snakemake_output: str) -> dict[str, tuple[str, str | None]]:
    """``benchmark:`` file → (rule, its job's first ``log:`` file), from the job blocks Snakemake
    printed during the run."""
    return {job["benchmark"]: (job["rule"], job["log"].split(",")[0].strip() if "log" in job else None)
            for job in job_blocks(snakemake_output) if "benchmark" in job}


DONE = re.compile(r"done in ([0-9.]+) s")


def work_seconds(log_file: Path) -> float | None:
    """The ``done in X s`` that ``oncoshot.runtime.run`` logs when a rule script finishes: the
    time inside the script's ``main`` (reading, computing, writing), without the interpreter's
    start-up and the imports. ``None`` for jobs that do not log it (``run:`` jobs)."""
    if not log_file.is_file():
        return None
    found = DONE.findall(log_file.read_text(errors="replace"))
    return float(found[-1]) if found else None


def rule_times(folder: Path, snakemake_output: str) -> pd.DataFrame:
    """Per rule, from Snakemake's ``benchmark:`` files of the run: jobs, summed and longest wall
    time, CPU time, largest max RSS, and the split of the wall time into the script's own work
    (``work_s``, from its log) and the rest (``startup_s``: Python start-up, imports, Snakemake's
    script preamble)."""
    rows = []
    for path, (rule, log_file) in sorted(benchmark_files(snakemake_output).items()):
        table = pd.read_csv(folder / path, sep="\t")
        wall = float(table["s"].iloc[0])
        work = work_seconds(folder / log_file) if log_file else None
        # a `run:` job (rule download) runs in a thread of Snakemake's own process, whose CPU time its
        # benchmark file reports: not the job's, so left out
        cpu = pd.to_numeric(table.get("cpu_time", pd.Series([float("nan")])), errors="coerce").iloc[0]
        rows.append({"rule": rule, "s": wall, "cpu_s": float("nan") if work is None else cpu,
                     "work_s": work, "startup_s": None if work is None else max(wall - work, 0.0),
                     "max_rss": pd.to_numeric(table["max_rss"], errors="coerce").iloc[0]})
    df = pd.DataFrame(rows)
    return (df.groupby("rule").agg(jobs=("s", "size"), total_s=("s", "sum"), longest_s=("s", "max"),
                                   cpu_s=("cpu_s", "sum"), work_s=("work_s", "sum"),
                                   startup_s=("startup_s", "sum"), max_rss_mb=("max_rss", "max"))
            .sort_values("total_s", ascending=False).reset_index())


def schedule_bounds(per_rule: pd.DataFrame, cores: int) -> list[list]:
    """Lower bounds on the demo's wall time on ``cores`` cores, from its jobs' measured times: no
    schedule of these jobs can beat the sum of their wall times divided by the cores, nor — even
    with every job's start-up (interpreter, imports) made free — the sum of the scripts' own work
    divided by the cores. Each job is one process on 1 thread (``resources.torch_threads: 1``)."""
    total = float(per_rule["total_s"].sum())
    work = float(per_rule["work_s"].sum())
    return [
        ["demo", "end_to_end", "lower_bound_s", round(total / cores, 1), "s",
         f"sum_of_rule_s / {cores} cores: no schedule of these jobs is faster"],
        ["demo", "end_to_end", "lower_bound_without_startup_s", round(work / cores, 1), "s",
         f"sum_of_work_s / {cores} cores: the bound even if every job's start-up were free"],
    ]


def sub_benchmark(name: str, argv: list[str], work: Path, threads: int) -> pd.DataFrame:
    out = work / f"{name}.tsv"
    cmd = [sys.executable, str(REPO / "benchmarks" / f"{name}.py"), "--out", str(out), *argv]
    if "--threads" not in argv:
        cmd += ["--threads", str(threads)]
    log(f"{name}: {' '.join(cmd[1:])}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    (work / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark {name} failed (exit {proc.returncode}); see {work / (name + '.log')}:\n"
                         f"{proc.stderr[-2000:]}")
    table = pd.read_csv(out, sep="\t")
    log(f"{name}: {time.perf_counter() - t0:.0f} s")
    if {"section", "metric", "value"} <= set(table.columns):
        keep = table[table["section"].isin(KEEP_SECTIONS)].copy()
        keep.insert(0, "benchmark", name)
        for col in ("unit", "note"):
            keep[col] = keep[col].fillna("") if col in keep else ""
        return keep[COLUMNS]
    return pd.DataFrame(columns=COLUMNS)


def marker_rows(path: Path) -> pd.DataFrame:
    t = pd.read_csv(path, sep="\t")
    rows = [["marker_recall", "recall", f"{e}_{s}_{k}_recall@100", v, "planted markers in the top 100",
             f"chance {c}; forward-selection best k {bk}: accuracy {a:.3f} (all genes {ag:.3f})"]
            for e, s, k, v, c, bk, a, ag in zip(t["experiment"], t["saliency"], t["rank_by"], t["recall@100"],
                                              t["chance@100"], t["best_k"], t["best_k_accuracy"],
                                              t["all_genes_accuracy"])]
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="summary TSV (a .md is written next to it)")
    ap.add_argument("--cores", type=int, default=2, help="cores for the demo run")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the micro-benchmarks")
    ap.add_argument("--goal-s", type=float, default=120.0, help="demo wall-time goal")
    ap.add_argument("--oneshot-tasks", type=int, default=2000)
    ap.add_argument("--throughput-iterations", type=int, default=20)
    ap.add_argument("--real", action="store_true", help="also the real-TCGA leave-types-out benchmark")
    ap.add_argument("--work", default=None, help="folder for the demo copy and sub-benchmark tables")
    ap.add_argument("--keep", action="store_true", help="keep the demo run's results")
    args = ap.parse_args(argv)
    out = Path(args.out)
    work = Path(args.work) if args.work else out.parent / "summary_work"
    work.mkdir(parents=True, exist_ok=True)

    demo = scratch_workflow(work / "demo")
    log(f"demo: snakemake --cores {args.cores} from an empty results/ in {demo}")
    wall, cpu, proc = run_demo(demo, args.cores)
    (work / "demo_snakemake.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"the demo run failed (exit {proc.returncode}); see {work / 'demo_snakemake.log'}:\n"
                         f"{proc.stderr[-3000:]}")
    log(f"demo: {wall:.0f} s")
    per_rule = rule_times(demo, proc.stdout + proc.stderr)
    rows = [["demo", "end_to_end", "wall_s", round(wall, 1), "s",
             f"snakemake --cores {args.cores}, demo config, empty results/; {int(per_rule['jobs'].sum())} jobs"],
            ["demo", "end_to_end", "goal_s", args.goal_s, "s", "issue 14: the whole demo in <= 2 minutes on 2 cores"],
            ["demo", "end_to_end", "within_goal", "yes" if wall <= args.goal_s else "no", "", ""],
            ["demo", "end_to_end", "sum_of_rule_s", round(float(per_rule["total_s"].sum()), 1), "s",
             "sum over the benchmark: files (jobs run 2 at a time, so > wall time is possible)"],
            ["demo", "end_to_end", "sum_of_work_s", round(float(per_rule["work_s"].sum()), 1), "s",
             "inside the rule scripts' main (their logs' 'done in'): reading, computing, writing"],
            ["demo", "end_to_end", "sum_of_startup_s", round(float(per_rule["startup_s"].sum()), 1), "s",
             "the rest of the script jobs' time: Python start-up, imports (torch, anndata, scipy, ...), "
             "Snakemake's script preamble"],
            ["demo", "end_to_end", "cpu_s", round(cpu, 1), "s", "user + system time of Snakemake and every job"],
            ["demo", "end_to_end", "core_utilisation", round(cpu / (wall * args.cores), 3), "",
             f"cpu_s / (wall_s x {args.cores} cores)"]]
    rows += schedule_bounds(per_rule, args.cores)
    summary = [pd.DataFrame(rows, columns=COLUMNS)]
    summary.append(pd.DataFrame({
        "benchmark": "demo", "section": "rule", "metric": per_rule["rule"], "value": per_rule["total_s"].round(2),
        "unit": "s", "note": [f"{j} job(s), longest {lo:.1f} s, work {w:.1f} s + start-up {st:.1f} s, "
                              f"CPU {c:.1f} s, max RSS {m:.0f} MB"
                              for j, lo, w, st, c, m in zip(per_rule["jobs"], per_rule["longest_s"], per_rule["work_s"],
                                                            per_rule["startup_s"], per_rule["cpu_s"],
                                                            per_rule["max_rss_mb"])]}))

    summary.append(sub_benchmark("marker_recall", ["--results", str(demo / "results")], work, args.threads))
    summary.append(marker_rows(work / "marker_recall.tsv"))
    summary.append(sub_benchmark("oneshot_eval_benchmark", ["--tasks", str(args.oneshot_tasks)], work,
                                 args.threads))
    summary.append(sub_benchmark("siamese_throughput_benchmark",
                                 ["--iterations", str(args.throughput_iterations)], work, args.threads))
    summary.append(sub_benchmark("ucell_benchmark", [], work, args.threads))
    if args.real:
        summary.append(sub_benchmark("real_tcga_leave_types_out", [], work, args.threads))
        summary.append(sub_benchmark("real_oneshot_gdsc", [], work, args.threads))
    if not args.keep:
        shutil.rmtree(demo / "results", ignore_errors=True)
        shutil.rmtree(demo / ".snakemake", ignore_errors=True)

    table = pd.concat([s for s in summary if len(s)], ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    table.to_csv(tmp, sep="\t", index=False)
    os.replace(tmp, out)
    md = out.with_suffix(".md")
    md.write_text(table.to_markdown(index=False) + "\n")
    print(table.to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
