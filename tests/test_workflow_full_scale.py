"""Full-scale readiness without the internet: the real configuration plans the whole run, every
rule that trains or applies a network asks for a GPU, and the SLURM profile turns that into the
right sbatch parameters (read from the executor plugin's real sbatch call, with a stand-in
``sbatch`` on PATH that records its arguments and refuses to submit)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import yaml

from workflow_utils import REPO, make_workdir, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

FULL = yaml.safe_load((REPO / "config/full.yaml").read_text())
DEMO = yaml.safe_load((REPO / "config/config.yaml").read_text())
PROFILE = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
GPU_RULES = {"pretrain_cnn", "train_siamese", "evaluate_oneshot", "marker_scores", "train_hallmark_model",
             "cv_hallmark_model", "bulk_hallmark_activity", "predict_oneshot"}


def parse_plan(output: str) -> list[dict]:
    """The job blocks of a dry run: [{'rule', 'output', 'wildcards', 'resources'}, ...]."""
    jobs, job = [], None
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\S+):$", line)
        if m:
            job = {"rule": m.group(1)}
            jobs.append(job)
            continue
        m = re.match(r"^    (\w+): (.*)$", line)
        if job is not None and m:
            job[m.group(1)] = m.group(2)
        elif not line.startswith("    "):
            job = None
    for job in jobs:
        job["resources"] = dict(kv.split("=", 1) for kv in job.get("resources", "").split(", ") if "=" in kv)
    return jobs


@pytest.fixture(scope="module")
def full_plan(tmp_path_factory):
    work = make_workdir(tmp_path_factory.mktemp("full"))
    proc = snakemake(work, "-n", "--configfile", "config/full.yaml")
    out = proc.stdout + proc.stderr
    return work, out, parse_plan(out)


def test_full_config_plans_the_whole_real_run(full_plan):
    work, out, jobs = full_plan
    projects = FULL["tcga"]["projects"]
    studies = [s["name"] for s in FULL["singlecell"]["studies"]]
    assert len(projects) == 33 and len(set(projects)) == 33
    n_train = sum(s["role"] == "train" for s in FULL["singlecell"]["studies"])
    n_meta = sum(bool(s.get("metadata_url")) for s in FULL["singlecell"]["studies"])
    runs = FULL.get("evaluation", {}).get("runs") or DEMO["evaluation"]["runs"]  # full.yaml extends the demo
    n_runs = len(runs)
    assert planned_jobs(out) == {
        # 33 expression matrices + 33 clinical tables + probe map, MET500 matrix + metadata, one
        # archive per study and its Meta-data archive, the hallmark gene sets, the published
        # OncoMark wheel (hallmarks.scorer: both)
        "download": 33 * 2 + 1 + 2 + len(studies) + n_meta + 1 + 1,
        "harmonise_tcga": 1, "harmonise_met500": 1, "filter_genes": 1, "merge_labels": 2, "split_types": 1,
        "pretrain_cnn": 5, "train_siamese": 5, "evaluate_cnn_transfer": 1, "evaluate_oneshot": n_runs,
        "fit_metric": len({r["model"] for r in runs}),  # metric.enabled: one per model experiment
        "summarise_oneshot": 1, "marker_scores": 2, "forward_selection": 2, "marker_figures": 2,
        "primary_vs_metastatic": 1, "marker_enrichment": 1,
        "extract_study": len(studies), "read_study": len(studies), "qc_cells": len(studies),
        "score_hallmarks": len(studies), "otsu_labels": 1, "synthetic_bulk": len(studies),
        "combine_synthetic_bulk": 1, "train_hallmark_model": 1, "cv_hallmark_model": 1,
        "validate_hallmark_model": 1, "bulk_hallmark_activity": 1, "oncomark_published_model": 1,
        "hallmark_agreement": 1, "all": 1,
    }
    # OncoMark's study set: its 55 training studies and its external validation studies (Dong2020
    # is in both of OncoMark's lists and is kept as training), each with its Meta-data archive;
    # names with spaces and non-ASCII letters plan like the others
    assert (len(studies), n_train, n_meta) == (59, 55, 59) and len(set(studies)) == 59
    assert {"Data_Cillo2020_Head and Neck", "Data_Kürten2021_Head and Neck", "Data_Zhang2019_Liver-Biliary"} <= set(studies)
    downloads = {j["output"] for j in jobs if j["rule"] == "download"}
    for p in projects:
        assert f"results/downloads/tcga/TCGA-{p}.star_fpkm.tsv.gz" in downloads, p
        assert f"results/downloads/tcga/TCGA-{p}.clinical.tsv.gz" in downloads, p
    assert {"results/downloads/met500/expression.tsv.gz", "results/downloads/met500/metadata.tsv",
            "results/downloads/tcga/probemap.tsv", "results/downloads/genesets/hallmark_gene_sets.csv"} <= downloads
    for s in studies:
        assert f"results/downloads/scrna/{s}.tar.gz" in downloads, s
        assert f"results/downloads/scrna/{s}.metadata.tar.gz" in downloads, s
        assert any(j["rule"] == "synthetic_bulk" and j.get("wildcards") == f"study={s}" for j in jobs), s
    trained = {j["wildcards"] for j in jobs if j["rule"] == "train_siamese"}
    assert trained == {f"experiment={e}, init=transfer" for e in ("tcga9", "tcga14", "tcga19", "met500")} | {
        "experiment=tcga19, init=scratch"}
    assert not (work / "results").exists() or not any((work / "results").rglob("*.gz"))  # nothing fetched


def test_network_rules_and_only_they_ask_for_a_gpu(full_plan):
    _, _, jobs = full_plan
    planned = {j["rule"] for j in jobs}
    assert planned >= GPU_RULES - {"predict_oneshot"}  # the example prediction job is off in full.yaml
    for job in jobs:
        gpu = int(job["resources"].get("gpu", 0))
        if job["rule"] in GPU_RULES:
            assert gpu == 1, job
        else:
            assert gpu == 0, job


def test_slurm_profile_routes_every_gpu_rule_to_the_gpu_partition():
    assert PROFILE["executor"] == "slurm"
    assert PROFILE["default-resources"]["gpu"] == 0
    for rule in GPU_RULES:
        assert PROFILE["set-resources"][rule]["slurm_partition"] == "gpu", rule


def _fake_slurm(tmp: Path) -> Path:
    """A bin/ folder whose sbatch records its arguments (one per line) and refuses to submit."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/bin/sh\nprintf \'%s\\n\' "$@" > "$SBATCH_RECORD"\n'
                                    'echo "test stand-in: not submitting" >&2\nexit 1\n')
    for cmd in ("squeue", "sacct", "sinfo", "scontrol", "sacctmgr", "sshare"):
        (bin_dir / cmd).write_text("#!/bin/sh\necho 'test stand-in' >&2\nexit 1\n")
    for f in bin_dir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _sbatch_args(tmp: Path, monkeypatch, target: str, inputs: list[str]) -> list[str]:
    """Submit one job with the SLURM profile and the full config; its inputs exist (empty), so
    exactly that job is submitted; return the recorded sbatch arguments."""
    work = make_workdir(tmp / "work")
    for path in inputs:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).touch()
    bin_dir = _fake_slurm(tmp)
    record = tmp / "sbatch_args.txt"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SBATCH_RECORD", str(record))
    proc = snakemake(work, target, "--profile", "profiles/slurm", "--restart-times", "0",
                     "--slurm-init-seconds-before-status-checks", "1",
                     "--configfile", "config/full.yaml", check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "test stand-in: not submitting" in out, out[-3000:]
    assert record.exists(), out[-3000:]
    return record.read_text().splitlines()


def _option(args: list[str], flag: str) -> str:
    for i, a in enumerate(args):
        if a == flag:
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    raise AssertionError(f"{flag} not in sbatch call {args}")


def test_slurm_submission_of_a_gpu_job(tmp_path, monkeypatch):
    args = _sbatch_args(tmp_path, monkeypatch, "results/models/tcga19/cnn.pt",
                        ["results/bulk/labelled/tcga.h5ad", "results/bulk/labelled/met500.h5ad",
                         "results/bulk/splits/samples.tsv"])
    want = PROFILE["set-resources"]["pretrain_cnn"]
    assert _option(args, "-p") == "gpu"
    assert _option(args, "--gpus") == "1"
    assert _option(args, "--mem") == str(want["mem_mb"])
    assert _option(args, "-t") == str(want["runtime"])
    assert _option(args, "--cpus-per-task") == str(PROFILE["default-resources"]["cpus_per_task"])
    wrap = _option(args, "--wrap")
    assert "--allowed-rules pretrain_cnn" in wrap and "config/full.yaml" in wrap


def test_slurm_submission_of_a_cpu_job(tmp_path, monkeypatch):
    args = _sbatch_args(tmp_path, monkeypatch, "results/singlecell/labels/labels.tsv",
                        [f"results/singlecell/scores/{s['name']}.tsv" for s in FULL["singlecell"]["studies"]])
    assert _option(args, "-p") == PROFILE["default-resources"]["slurm_partition"] == "cpu"
    assert not any(a.startswith("--gpus") or a.startswith("--gres") for a in args), args
    assert _option(args, "--mem") == str(PROFILE["default-resources"]["mem_mb"])
    assert "--allowed-rules otsu_labels" in _option(args, "--wrap")
