"""Workflow tests: Snakemake on the embedded demo up to the type splits (a copy of the shared demo
run of tests/conftest.py), checked against the
generator's ground truth; config validation; re-running after a config edit; the full plan."""

from __future__ import annotations

import os

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from workflow_utils import REPO, copy_workdir, make_workdir, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

TRUTH = REPO / "resources" / "demo" / "truth"
SPLIT_TARGETS = ["results/bulk/splits/types.tsv", "results/bulk/splits/samples.tsv", "results/bulk/patients.tsv"]


@pytest.fixture(scope="module")
def demo_run(demo_run, tmp_path_factory):
    """A copy of the shared demo run (tests/conftest.py), up to date for the split targets: a test
    here edits the config and re-runs."""
    work = copy_workdir(demo_run, tmp_path_factory.mktemp("demo_bulk"))
    plan = snakemake(work, "-n", *SPLIT_TARGETS)
    assert planned_jobs(plan.stdout + plan.stderr) == {}, plan.stdout[-2000:]
    return work


def test_harmonised_samples_match_truth(demo_run):
    truth = pd.read_csv(TRUTH / "bulk_samples.tsv", sep="\t")
    tcga = ad.read_h5ad(demo_run / "results/bulk/harmonised/tcga.h5ad")
    met = ad.read_h5ad(demo_run / "results/bulk/harmonised/met500.h5ad")
    want_tcga = set(truth.query("cohort == 'TCGA' and kept")["sample_id"])
    assert set(tcga.obs_names) == want_tcga  # primaries only (01, and 03 for LAML)
    want_met = set(truth.query("cohort == 'MET500' and library_kept")["sample_id"])  # one library per patient
    assert set(met.obs_names) == want_met
    t = truth.set_index("sample_id")
    assert (tcga.obs["patient"] == t.loc[tcga.obs_names, "patient"]).all()
    assert (met.obs["patient"] == t.loc[met.obs_names, "patient"]).all() and met.obs["patient"].is_unique
    assert (met.obs["library"] == t.loc[met.obs_names, "library"]).all()
    libs = pd.read_csv(demo_run / "results/bulk/harmonised/met500_libraries.tsv", sep="\t")
    assert set(libs["sample_id"]) == set(truth.query("cohort == 'MET500'")["sample_id"])
    assert set(libs.loc[libs["kept"], "sample_id"]) == want_met
    # units: everything in log2(FPKM+1): no negatives, no versioned ids, no duplicated ids
    for a in (tcga, met):
        assert np.nanmin(a.X) >= 0
        assert not a.var_names.str.contains(r"\.").any()
        assert a.var_names.is_unique
        assert "symbol" in a.var


def test_filter_keeps_planted_genes(demo_run):
    genes = pd.read_csv(TRUTH / "bulk_genes.tsv", sep="\t")
    kept = pd.read_csv(demo_run / "results/bulk/filtered/genes_kept.tsv", sep="\t")
    kept_ids = set(kept["gene_id"])
    role = genes.set_index("gene_id")["role"]
    assert set(role[role == "marker_pool"].index) <= kept_ids
    low = set(role[role.str.startswith("low_")].index)
    assert not (low & kept_ids), "low-expression genes of either cohort must be dropped"
    assert list(kept["gene_id"]) == sorted(kept["gene_id"])  # deterministic order
    tcga = ad.read_h5ad(demo_run / "results/bulk/filtered/tcga.h5ad")
    met = ad.read_h5ad(demo_run / "results/bulk/filtered/met500.h5ad")
    assert list(tcga.var_names) == list(met.var_names) == list(kept["gene_id"])


def test_labels_merged_and_dropped(demo_run):
    tcga = ad.read_h5ad(demo_run / "results/bulk/labelled/tcga.h5ad")
    met = ad.read_h5ad(demo_run / "results/bulk/labelled/met500.h5ad")
    assert tcga.obs["cancer_type"].nunique() == 29
    for merged in ("COLO", "KDNY", "LUNG", "HCC"):
        assert merged in set(tcga.obs["cancer_type"])
    for gone in ("COAD", "READ", "KIRC", "KIRP", "KICH", "LUAD", "LUSC", "LIHC"):
        assert gone not in set(tcga.obs["cancer_type"])
    assert not {"MISC", "SCER"} & set(met.obs["cancer_type"])
    truth = pd.read_csv(TRUTH / "bulk_samples.tsv", sep="\t").set_index("sample_id")
    assert (tcga.obs["cancer_type"] == truth.loc[tcga.obs_names, "cancer_type"]).all()


def test_splits_follow_spec(demo_run):
    truth = pd.read_csv(TRUTH / "bulk_samples.tsv", sep="\t")
    types = pd.read_csv(demo_run / "results/bulk/splits/types.tsv", sep="\t")
    samples = pd.read_csv(demo_run / "results/bulk/splits/samples.tsv", sep="\t")
    tcga_kept = truth.query("cohort == 'TCGA' and kept")
    met_types = set(truth.query("cohort == 'MET500'")["cancer_type"]) - {"MISC", "SCER"}
    counts = tcga_kept.groupby("cancer_type").size()
    shared = counts[counts.index.isin(met_types)].sort_values(ascending=False)
    only_tcga = set(counts.index) - met_types
    assert len(shared) == 20 and len(only_tcga) == 9
    ranked = list(shared.index)
    for exp, k in {"tcga9": 0, "tcga14": 5, "tcga19": 10}.items():
        t = types.query("experiment == @exp")
        assert set(t.query("role == 'train'")["cancer_type"]) == only_tcga | set(ranked[:k])
        assert set(t.query("role == 'test'")["cancer_type"]) == set(ranked[10:])
    # test types: their TCGA patients split ~50/50 into validation and test, disjoint
    s = samples.query("experiment == 'tcga19'")
    for ctype in ranked[10:]:
        sub = s[s["cancer_type"] == ctype]
        n_val, n_test = (sub.groupby("split")["patient"].nunique().get(k, 0) for k in ("validation", "test"))
        assert abs(n_val - n_test) <= 1 and n_val >= 2 and n_test >= 2
    assert not set(s.query("split == 'train'")["cancer_type"]) & set(ranked[10:])
    m = types.query("experiment == 'met500'")
    assert set(m.query("role == 'train'")["cancer_type"]) == set(ranked[:10])
    assert set(m.query("role == 'test'")["cancer_type"]) == set(ranked[10:])
    ms = samples.query("experiment == 'met500'")
    assert set(ms["cohort"]) == {"MET500"}


def test_filter_edit_reruns_only_downstream(demo_run, tmp_path):
    harmonised = demo_run / "results/bulk/harmonised/tcga.h5ad"
    before = os.stat(harmonised).st_mtime_ns
    n_before = len(pd.read_csv(demo_run / "results/bulk/filtered/genes_kept.tsv", sep="\t"))
    override = tmp_path / "override.yaml"
    override.write_text("bulk:\n  filter_threshold: 0.7\n")
    plan = snakemake(demo_run, *SPLIT_TARGETS, "-n", "--configfile", "config/config.yaml", str(override))
    jobs = planned_jobs(plan.stdout + plan.stderr)
    assert jobs == {"filter_genes": 1, "merge_labels": 2, "split_types": 1}, jobs
    snakemake(demo_run, *SPLIT_TARGETS, "--configfile", "config/config.yaml", str(override))
    assert os.stat(harmonised).st_mtime_ns == before
    kept = pd.read_csv(demo_run / "results/bulk/filtered/genes_kept.tsv", sep="\t")
    assert len(kept) > n_before  # a lower threshold keeps more genes
    # going back to the default threshold re-runs the same four jobs, and only those
    plan = snakemake(demo_run, "-n", *SPLIT_TARGETS)
    assert planned_jobs(plan.stdout + plan.stderr) == {"filter_genes": 1, "merge_labels": 2, "split_types": 1}


def test_bad_config_names_the_key(tmp_path):
    work = make_workdir(tmp_path / "w")
    bad = tmp_path / "bad.yaml"
    bad.write_text("bulk:\n  filter_treshold: 0.5\nseed: -3\n")
    proc = snakemake(work, "-n", "--configfile", "config/config.yaml", str(bad), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key 'bulk'" in out and "filter_treshold" in out
    assert "config key 'seed'" in out


def test_lint_is_clean(tmp_path):
    work = make_workdir(tmp_path / "lint")
    proc = snakemake(work, "--lint", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations" in out, out[-3000:]


def test_bad_checksum_fails_cleanly(tmp_path):
    work = make_workdir(tmp_path / "sum")
    src = "resources/demo/bulk/MET500_M.meta.plus.txt"
    bad = tmp_path / "bad_sum.yaml"
    bad.write_text(f"checksums:\n  {src}: '{'0' * 64}'\n")
    target = "results/downloads/met500/metadata.tsv"
    proc = snakemake(work, target, "--configfile", "config/config.yaml", str(bad), check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    log_path = work / "results/logs/download/met500/metadata.tsv.log"
    assert log_path.exists(), proc.stdout + proc.stderr
    log = log_path.read_text()
    assert "sha256 mismatch" in log and src in log
    assert not (work / target).exists()
    folder = work / "results/downloads/met500"
    assert not folder.exists() or not any(folder.iterdir())  # no temp file either


def test_patients_never_straddle_a_split_or_a_task(demo_run):
    """End to end on the demo's samples table: the 01A/01B vials of a TCGA patient sit on one side,
    no patient is in two splits of an experiment, the report's counts match the generator's truth,
    and tasks drawn with the patients never pair two samples of one patient."""
    from oncoshot.oneshot import make_tasks

    truth = pd.read_csv(TRUTH / "bulk_samples.tsv", sep="\t", keep_default_na=False)
    samples = pd.read_csv(demo_run / "results/bulk/splits/samples.tsv", sep="\t")
    assert (samples.groupby(["experiment", "cohort", "patient"])["split"].nunique() == 1).all()
    vials = truth[truth["sample_code"] == "01B"]["patient"]
    assert len(vials) == 5
    s19 = samples[samples["experiment"] == "tcga19"]
    in_test_types = s19[s19["patient"].isin(vials) & (s19["split"] != "train")]
    assert in_test_types.groupby("patient").size().eq(2).all() and in_test_types["patient"].nunique() == 3
    report = pd.read_csv(demo_run / "results/bulk/patients.tsv", sep="\t").set_index("cohort")
    met = truth[truth["cohort"] == "MET500"]
    n_lib = met.groupby("patient").size()
    assert report.loc["MET500", "n_samples_in"] == len(met)
    assert report.loc["MET500", "n_patients"] == len(n_lib)
    assert report.loc["MET500", "n_patients_with_several_samples"] == int((n_lib > 1).sum())
    assert report.loc["MET500", "n_libraries_dropped"] == len(met) - len(n_lib)
    assert report.loc["MET500", "n_patients_with_several_samples_after_labels"] == 0
    assert report.loc["TCGA", "n_samples_kept"] == int((truth["cohort"].eq("TCGA") & truth["kept"]).sum())
    assert report.loc["TCGA", "n_patients_with_several_samples"] == 5
    assert (report["n_patients_on_both_sides"] == 0).all()
    test = s19[s19["split"] == "test"].reset_index(drop=True)
    y, groups = test["cancer_type"].to_numpy(), test["patient"].to_numpy()
    tasks = make_tasks(y, 6, 5000, 20211, groups=groups)
    rows = np.arange(len(tasks))
    assert (groups[tasks.support] != groups[tasks.query][:, None]).all()
    assert (y[tasks.support[rows, tasks.true_pos]] == y[tasks.query]).all()
