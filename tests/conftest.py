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
            group = "demo_run" if "demo_run" in getattr(item, "fixturenames", ()) else item.module.__name__
            item.add_marker(pytest.mark.xdist_group(group))


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
