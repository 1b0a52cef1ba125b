"""Helpers to run Snakemake on a scratch copy of the workflow (outputs never touch the repo)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from oncoshot.runtime import local_snakemake_env

REPO = Path(__file__).resolve().parents[1]
LINKED = ("Snakefile", "workflow", "config", "resources", "profiles")


def make_workdir(tmp: Path) -> Path:
    """A directory that looks like the repository (symlinks) with its own results/."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        target = tmp / name
        if not target.exists():
            target.symlink_to(REPO / name)
    return tmp


def copy_workdir(src: Path, dst: Path) -> Path:
    """A new scratch workdir (:func:`make_workdir`) holding a copy of ``src``'s ``results/`` and
    Snakemake's metadata (modification times kept, so Snakemake sees the copied outputs as up to
    date): for a test that re-runs, edits or adds to a finished run without touching the shared one."""
    make_workdir(dst)
    shutil.copytree(src / "results", dst / "results", symlinks=True, copy_function=shutil.copy2)
    meta = src / ".snakemake" / "metadata"
    if meta.is_dir():
        shutil.copytree(meta, dst / ".snakemake" / "metadata", copy_function=shutil.copy2)
    return dst


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900,
              cores: str | None = "2", slurm: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m snakemake`` in ``workdir`` (with ``--cores`` unless ``cores`` is None, as a
    user would type ``snakemake --report``); return the completed process (text).

    ``slurm=False`` (local runs): :func:`oncoshot.runtime.local_snakemake_env`, so that Snakemake's
    start-up does not wait for a SLURM controller that is not running."""
    cores_args = ["--cores", cores] if cores else []
    cmd = [sys.executable, "-m", "snakemake", *cores_args, "--nocolor", *args]
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
    if not slurm:
        env = local_snakemake_env(env)
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


def planned_jobs(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run into {rule: count}."""
    jobs: dict[str, int] = {}
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    except StopIteration:
        return jobs
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            jobs[parts[0]] = int(parts[1])
    return jobs
