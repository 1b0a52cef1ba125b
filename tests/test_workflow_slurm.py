"""A real SLURM cluster: the demo's bulk branch through ``split_types`` and one GPU-tagged
``pretrain_cnn``, submitted with ``snakemake --profile profiles/slurm`` to a one-node cluster
started on this machine (``tests/slurm/localcluster.sh``), compared with a local run of the same
targets.

Skipped, with the reason, where SLURM cannot be installed or started (not root, no apt-get, no
daemons). ``.ci/run`` runs as root, so CI installs SLURM and exercises this test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from workflow_utils import REPO, make_workdir, planned_jobs, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

CLUSTER = REPO / "tests/slurm/localcluster.sh"
FAST = "pretrain: {epochs: 2, batch_size: 64, patience: 2}\n"
TARGETS = ["results/bulk/splits/types.tsv", "results/bulk/splits/samples.tsv", "results/models/tcga9/cnn.pt"]
#: what a one-node cluster without accounting needs on top of the profile (README "Run on a cluster")
ONE_NODE = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
            "--slurm-keep-successful-logs", "--restart-times", "0"]


def _cluster(action: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CLUSTER), action], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0 and shutil.which("slurmctld") is None:
        pytest.skip("SLURM is not installed and installing it needs root (tests/slurm/localcluster.sh install)")
    for action in ("install", "start"):
        proc = _cluster(action)
        if proc.returncode != 0:
            pytest.skip(f"a local SLURM cluster could not be {action}ed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    yield
    _cluster("stop")


def _squeue() -> dict[str, dict[str, str]]:
    """Every job the controller remembers (MinJobAge is one day): job id → name, partition, state."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%j|%P|%T"], capture_output=True,
                         text=True, check=True).stdout
    jobs = {}
    for line in out.splitlines():
        jid, name, part, state = line.split("|")
        jobs[jid] = {"name": name, "partition": part, "state": state}
    return jobs


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The SLURM run and, at the same time (the SLURM run mostly waits on the scheduler), the local
    reference run of the same targets from an empty results/ (no shared demo run: this module then
    runs on its own pytest-xdist worker, beside the demo)."""
    before = set(_squeue())
    slurm = make_workdir(tmp_path_factory.mktemp("slurm"))
    local = make_workdir(tmp_path_factory.mktemp("local"))
    for work in (slurm, local):
        (work / "fast.yaml").write_text(FAST)
    with ThreadPoolExecutor(1) as pool:
        reference = pool.submit(snakemake, local, *TARGETS, "--configfile", "config/config.yaml", "fast.yaml")
        proc = snakemake(slurm, *TARGETS, "--configfile", "config/config.yaml", "fast.yaml",
                         "--profile", "profiles/slurm", *ONE_NODE, cores=None, timeout=1200, slurm=True)
        reference.result()
    plan = snakemake(local, *TARGETS, "-n", "--configfile", "config/config.yaml", "fast.yaml")
    assert planned_jobs(plan.stdout + plan.stderr) == {}, plan.stdout[-2000:]
    jobs = {k: v for k, v in _squeue().items() if k not in before}
    return slurm, local, proc.stdout + proc.stderr, jobs


def _job_details(jid: str) -> dict[str, str]:
    """``scontrol show job`` as key → value."""
    out = subprocess.run(["scontrol", "show", "job", "-o", jid], capture_output=True, text=True, check=True).stdout
    return dict(field.split("=", 1) for field in out.split() if "=" in field)


def _submitted(log: str) -> dict[str, str]:
    """rule → SLURM job id, from the executor's 'Job N has been submitted with SLURM jobid J' lines
    matched to the rule of job N."""
    rule_of = {}
    rule = None
    for line in log.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
        m = re.match(r"^jobid: (\d+)$", line.strip())
        if m and rule:
            rule_of[m.group(1)] = rule
    out = {}
    for m in re.finditer(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log):
        out.setdefault(rule_of.get(m.group(1), "?"), []).append(m.group(2))
    return out


def test_every_non_local_job_ran_as_a_slurm_job(runs):
    slurm, _, log, jobs = runs
    submitted = _submitted(log)
    assert set(submitted) == {"harmonise_tcga", "harmonise_met500", "filter_genes", "merge_labels", "split_types",
                              "pretrain_cnn"}, submitted
    assert len(submitted["merge_labels"]) == 2 and all(len(v) == 1 for k, v in submitted.items() if k != "merge_labels")
    ids = [j for v in submitted.values() for j in v]
    for jid in ids:  # the controller knows every one, and each completed
        assert jid in jobs, (jid, jobs)
        assert jobs[jid]["state"] == "COMPLETED", jobs[jid]
    # downloads are local rules (compute nodes of real clusters often have no internet)
    assert "download" not in submitted and re.search(r"localrule download:", log)
    # each job's SLURM log exists and names its job id
    logs = list((slurm / ".snakemake/slurm_logs").rglob("*.log"))
    assert {p.stem for p in logs} >= set(ids), logs


def test_the_gpu_rule_went_to_the_gpu_partition_with_a_gpu(runs):
    _, _, log, jobs = runs
    submitted = _submitted(log)
    (gpu_job,) = submitted["pretrain_cnn"]
    assert jobs[gpu_job]["partition"] == "gpu"
    assert "gres:gpu:1" in _job_details(gpu_job)["TresPerJob"]  # sbatch --gpus=1
    for rule, ids in submitted.items():
        if rule != "pretrain_cnn":
            assert all(jobs[j]["partition"] == "cpu" for j in ids), (rule, [jobs[j] for j in ids])


def test_outputs_equal_a_local_run(runs):
    slurm, local, _, _ = runs
    for name in ("results/bulk/splits/types.tsv", "results/bulk/splits/samples.tsv",
                 "results/bulk/filtered/genes_kept.tsv"):
        assert (slurm / name).read_bytes() == (local / name).read_bytes(), name
    a = torch.load(slurm / "results/models/tcga9/cnn.pt", weights_only=True)
    b = torch.load(local / "results/models/tcga9/cnn.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
