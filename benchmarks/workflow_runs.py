"""What the benchmark scripts that run the workflow share (``run_all.py``, ``gpu_check.py``): a
scratch copy of the workflow, the job blocks Snakemake prints, and the environment of a local run."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
from oncoshot.runtime import local_snakemake_env  # noqa: E402,F401  (re-exported for the scripts)

LINKED = ("Snakefile", "workflow", "config", "resources", "profiles")


def scratch_workflow(folder: Path) -> Path:
    """An empty-results copy of the workflow (symlinks into the repository)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in LINKED:
        (folder / name).symlink_to(REPO / name)
    return folder


def job_blocks(output: str) -> list[dict]:
    """The job blocks Snakemake printed, one dict per job: ``rule`` and every indented
    ``key: value`` line of the block (``benchmark``, ``log``, ``resources``, ...)."""
    jobs, cur = [], None
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\S+):$", line)
        if m:
            cur = {"rule": m.group(1)}
            jobs.append(cur)
        elif cur is not None and line.startswith("    "):
            key, _, val = line.strip().partition(": ")
            cur[key] = val
        elif not line.startswith("    "):
            cur = None
    return jobs
