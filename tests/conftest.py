"""Shared fixtures: repository paths, the real data in ../shared/real (skipped when absent) and one
finished demo run shared by the workflow tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "real"


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject.toml): one worker more than there are CPUs, at most 6. Many tests
    wait on a Snakemake subprocess, SLURM's scheduler or disk for part of their time, so a spare
    worker keeps the cores busy; more than 6 would only add memory (each worker imports torch)."""
    return max(2, min((os.cpu_count() or 1) + 1, 6))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Groups for ``pytest -n N --dist loadgroup`` (pyproject.toml): every test that reads the
    shared demo run (the session fixture ``demo_run``) goes to one worker, which runs the demo once;
    every other test stays with the rest of its module, so a module's fixtures are built once."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = "demo_run" if _reads_demo(item) else item.module.__name__
            item.add_marker(pytest.mark.xdist_group(group))
    # xdist hands out the groups in this order (--no-loadscope-reorder, pyproject.toml): the demo
    # first, so that it starts at once on a worker that has run nothing else (pytest_runtest_setup),
    # then the modules that take longest (wall time), so that none of them is left for the end
    items[:] = sorted(items, key=_group_rank)


#: test modules handed out right after the demo group, longest first (wall times of a fresh-clone
#: run on 2 cores: the SLURM cluster test and the demo regeneration take 2-3 minutes each, mostly
#: waiting for SLURM or at low priority). Order only: a module missing here just runs later.
LONG_MODULES = ("test_workflow_slurm", "test_demo", "test_benchmark_tcga7", "test_bulk_real", "test_gpu_check",
                "test_workflow_impossible", "test_hallmark_real", "test_workflow_cohort", "test_training")


def _reads_demo(item) -> bool:
    return "demo_run" in getattr(item, "fixturenames", ())


def _group_rank(item) -> int:
    if _reads_demo(item):
        return 0
    name = item.module.__name__.rpartition(".")[2]
    return 1 + LONG_MODULES.index(name) if name in LONG_MODULES else 1 + len(LONG_MODULES)


#: niceness that an xdist worker takes before its first test that does not read the demo run
OTHER_TESTS_NICENESS = 10
_niced = False


def pytest_runtest_setup(item):
    """The shared demo run is the suite's longest chain (about 4.5 minutes of 2 cores, then the
    tests that read it), so under xdist it runs at normal priority and every other test at
    niceness 10: the other workers fill the cores the demo leaves idle instead of slowing it down.
    The ``demo_run`` group is handed out first (``pytest_collection_modifyitems``), so its worker
    runs the demo before it lowers its own priority for the groups it gets later. Niceness only
    orders CPU time; no result depends on it. Serial runs (``-n 0``) are left alone."""
    global _niced
    if _niced or not os.environ.get("PYTEST_XDIST_WORKER") or _reads_demo(item):
        return
    os.nice(OTHER_TESTS_NICENESS)
    _niced = True


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """``../shared/real``; tests that use it are skipped when it is absent."""
    if not (REAL / "PROVENANCE.md").exists():
        pytest.skip("../shared/real is absent: real-data test skipped")
    return REAL


@pytest.fixture
def one_torch_thread():
    """Torch on one CPU thread for the test (reproducible and not oversubscribed); restored after."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """One complete demo run, ``snakemake --cores 2`` with the shipped config (every target of
    ``rule all``) in a scratch workdir, made once per test session. Tests only *read* it; a test
    that re-runs, edits or adds outputs works on a copy (``workflow_utils.copy_workdir``).
    ``ONCOSHOT_TEST_DEMO_RUN=<workdir>`` reuses a finished, up-to-date demo workdir instead (the
    report test adds ``results/report.html`` to it)."""
    from workflow_utils import make_workdir, planned_jobs, snakemake

    reuse = os.environ.get("ONCOSHOT_TEST_DEMO_RUN")
    if reuse:  # a finished demo workdir (e.g. from an earlier session): it must be up to date
        work = make_workdir(Path(reuse))
        plan = snakemake(work, "-n")
        if planned_jobs(plan.stdout + plan.stderr):
            pytest.fail(f"ONCOSHOT_TEST_DEMO_RUN={reuse} is not an up-to-date demo run:\n{plan.stdout[-2000:]}")
        return work
    work = make_workdir(tmp_path_factory.mktemp("demo_shared"))
    snakemake(work, timeout=3600)
    return work
