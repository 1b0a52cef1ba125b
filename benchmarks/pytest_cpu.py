"""Where the test suite's CPU goes: a pytest plugin plus a summary, per xdist group.

    ONCOSHOT_TEST_CPU_DIR=results/benchmarks/test_cpu PYTHONPATH=benchmarks python3 -m pytest -p pytest_cpu
    python benchmarks/pytest_cpu.py --dir results/benchmarks/test_cpu --out results/benchmarks/test_cpu.tsv

The plugin appends, for every test, the CPU time (user + system of the pytest process and of the
child processes it waited for: Snakemake runs and their jobs) and the wall time of setup, call and
teardown to ``<dir>/<pid>.tsv`` (one file per xdist worker). The summary adds them up per xdist
group (the ``@group`` suffix of the test id, i.e. ``demo_run`` or the module; ``tests/conftest.py``)
and sorts by CPU. Not counted: jobs that SLURM runs (they are slurmd's children, not the test's).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ENV = "ONCOSHOT_TEST_CPU_DIR"
COLUMNS = ["test", "cpu_s", "wall_s"]


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    folder = os.environ.get(ENV)
    cpu, wall = _cpu(), time.perf_counter()
    yield
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with open(Path(folder) / f"{os.getpid()}.tsv", "a") as f:
            f.write(f"{item.nodeid}\t{_cpu() - cpu:.2f}\t{time.perf_counter() - wall:.2f}\n")


def summarise(folder: Path) -> pd.DataFrame:
    """Per xdist group: tests, CPU and wall seconds (sums), sorted by CPU."""
    files = sorted(Path(folder).glob("*.tsv"))
    if not files:
        raise SystemExit(f"{folder}: no per-worker .tsv files (run pytest with -p pytest_cpu and {ENV} set)")
    rows = pd.concat([pd.read_csv(f, sep="\t", names=COLUMNS) for f in files], ignore_index=True)
    rows["group"] = rows["test"].str.rpartition("@")[2].where(rows["test"].str.contains("@"),
                                                              rows["test"].str.partition("::")[0])
    table = (rows.groupby("group").agg(tests=("test", "size"), cpu_s=("cpu_s", "sum"), wall_s=("wall_s", "sum"))
             .sort_values("cpu_s", ascending=False).reset_index())
    total = pd.DataFrame([{"group": "TOTAL", "tests": int(table["tests"].sum()), "cpu_s": table["cpu_s"].sum(),
                           "wall_s": table["wall_s"].sum()}])
    return pd.concat([table, total], ignore_index=True).round(1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help=f"the plugin's folder ({ENV})")
    ap.add_argument("--out", required=True, help="summary TSV")
    args = ap.parse_args(argv)
    table = summarise(Path(args.dir))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, sep="\t", index=False)
    print(table.to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
