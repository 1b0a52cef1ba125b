"""benchmarks/pytest_cpu.py: the per-test CPU plugin and its per-group summary."""

import os
import subprocess
import sys

import pandas as pd

from workflow_utils import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import pytest_cpu  # noqa: E402


def test_plugin_records_each_test_and_the_summary_adds_them_per_group(tmp_path):
    (tmp_path / "test_busy.py").write_text(
        "import subprocess, sys\n"
        "def test_child():\n"
        "    subprocess.run([sys.executable, '-c', 'sum(i * i for i in range(3_000_000))'], check=True)\n"
        "def test_idle():\n"
        "    pass\n")
    out = tmp_path / "cpu"
    env = dict(os.environ, PYTHONPATH=str(REPO / "benchmarks"), **{pytest_cpu.ENV: str(out)})
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "pytest_cpu", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_busy.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = list(out.glob("*.tsv"))
    assert len(files) == 1
    rows = pd.read_csv(files[0], sep="\t", names=pytest_cpu.COLUMNS).set_index("test")
    assert set(rows.index) == {"test_busy.py::test_child", "test_busy.py::test_idle"}
    # the child process's CPU is counted (it was waited for): it dwarfs the empty test's
    assert rows.loc["test_busy.py::test_child", "cpu_s"] > rows.loc["test_busy.py::test_idle", "cpu_s"] + 0.05
    table = pytest_cpu.summarise(out).set_index("group")
    assert table.loc["test_busy.py", "tests"] == 2
    assert table.loc["TOTAL", "cpu_s"] == round(rows["cpu_s"].sum(), 1)


def test_summary_groups_by_the_xdist_group_suffix(tmp_path):
    (tmp_path / "1.tsv").write_text("t/a.py::x@demo_run\t10\t5\nt/b.py::y@t_b\t1\t2\n")
    (tmp_path / "2.tsv").write_text("t/c.py::z@demo_run\t4\t1\n")
    table = pytest_cpu.summarise(tmp_path).set_index("group")
    assert list(table.index) == ["demo_run", "t_b", "TOTAL"]
    assert table.loc["demo_run", "cpu_s"] == 14 and table.loc["demo_run", "tests"] == 2
    assert table.loc["TOTAL", "wall_s"] == 8
