"""The workflow on your own cohort (config ``cohorts``): a tiny hand-written cohort end to end
(harmonise → split → CNN → Siamese → evaluation with every method, the Euclidean 1-NN accuracy
recomputed here), explicit skips, bad input leaving no output, config errors, the default config's
plan, and the gdsc.yaml dry run on the real GDSC cell lines."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from workflow_utils import make_workdir, planned_jobs, snakemake  # noqa: E402

SKIPS = {
    "met500": "no MET500 in this test",
    "cnn_primary_to_met": "no metastases in this test",
    "marker_comparison": "needs TCGA and MET500 markers",
    "singlecell": "not part of this test",
    "predict": "the example job needs the demo's tcga19 model",
}


def _write_cohort(folder: Path, n_types=7, per_type=8, per_patient=2, n_genes=200, seed=5):
    """samples × genes FPKM TSV (types differ on their own block of genes) + labels with patients;
    one extra unlabelled sample ('unknown') and one sample without a label row."""
    rng = np.random.default_rng(seed)
    genes = [f"ENSG{i:011d}.{1 + i % 3}" for i in range(n_genes)]  # versioned Ensembl ids
    rows, labels = [], []
    for t in range(n_types):
        for k in range(per_type):
            x = rng.gamma(2.0, 2.0, size=n_genes)
            x[t * 20:(t + 1) * 20] *= 6.0
            sid = f"s{t}_{k}"
            rows.append(pd.Series(x, index=genes, name=sid))
            labels.append((sid, f"type{t}", f"p{t}_{k // per_patient}"))
    rows.append(pd.Series(rng.gamma(2.0, 2.0, size=n_genes), index=genes, name="s_unlabelled"))
    labels.append(("s_unlabelled", "unknown", "p_u"))
    rows.append(pd.Series(rng.gamma(2.0, 2.0, size=n_genes), index=genes, name="s_no_row"))
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "expr.tsv", sep="\t", index_label="sample")
    pd.DataFrame(labels, columns=["sample", "diagnosis", "donor"]).to_csv(folder / "labels.tsv", sep="\t", index=False)
    # a prediction job on the cohort's model: new samples of two unseen types (gene ids without versions)
    a, b = n_types - 2, n_types - 1  # the last two types (unseen under the paper policy)
    new = pd.DataFrame(rows[:-2])
    new.columns = [c.split(".")[0] for c in new.columns]
    new.loc[[f"s{a}_0", f"s{b}_0"]].to_csv(folder / "support.tsv", sep="\t", index_label="sample")
    last = per_type - 1
    new.loc[[f"s{a}_{last}", f"s{b}_{last}", f"s{b}_{last - 1}"]].T.to_csv(folder / "queries.tsv", sep="\t",
                                                                          index_label="gene")
    pd.DataFrame({"sample_id": [f"s{a}_0", f"s{b}_0"], "type": [f"type{a}", f"type{b}"]}).to_csv(
        folder / "support_labels.tsv", sep="\t", index=False)


def _config(folder: Path, **cohort_extra) -> dict:
    cohort = {
        "expression": {"path": str(folder / "expr.tsv"), "units": "fpkm", "gene_ids": "ensembl",
                       "orientation": "samples_x_genes"},
        "labels": {"path": str(folder / "labels.tsv"), "sample_column": "sample", "label_column": "diagnosis",
                   "patient_column": "donor", "drop_labels": ["unknown"]},
        "min_samples": 4,
        "split": {"policy": "paper", "n_test_types": 4, "validation_fraction": 0.5, "seed": 11},
    }
    cohort.update(cohort_extra)
    return {
        "bulk": {"sources": []},
        "skip": dict(SKIPS),
        "cohorts": {"mine": cohort},
        "pretrain": {"epochs": 2, "batch_size": 16},
        "siamese": {"iterations": 6, "batch_size": 16, "val_every": 3, "val_tasks": 20, "val_n_way": 3},
        "evaluation": {"n_way": [3, 4], "n_tasks": 200, "runs": [{"name": "mine", "model": "mine",
                                                                "init": "transfer", "test": "mine"}]},
        "markers": {"experiments": ["mine"]},
        "predict": {"mine_job": {
            "model": "mine", "init": "transfer",
            "support": {"path": str(folder / "support.tsv"), "units": "fpkm", "orientation": "samples_x_genes"},
            "support_labels": str(folder / "support_labels.tsv"),
            "queries": {"path": str(folder / "queries.tsv"), "units": "fpkm"},
        }},
    }


def _workdir(tmp_path: Path, cfg: dict) -> Path:
    work = make_workdir(tmp_path / "wd")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return work


def test_tiny_cohort_end_to_end(tmp_path):
    _write_cohort(tmp_path / "data")
    cfg = _config(tmp_path / "data")
    # the transductive metric through the workflow: fit_metric's pool, its evaluation column and a
    # prediction job scored by it
    cfg["metric"] = {"transductive": "diffusion", "diffusion": {"neighbours": 3, "beta": 0.9}, "n_components": 20}
    cfg["predict"]["mine_job"]["method"] = "whitened_cosine"
    work = _workdir(tmp_path, cfg)
    cfg = str(tmp_path / "cfg.yaml")
    run = snakemake(work, "results/evaluation/oneshot_results.tsv", "results/logs/skipped_steps.tsv",
                    "results/bulk/cohorts/mine/patients.tsv", "results/predict/mine_job/predictions.tsv",
                    "--configfile", cfg)
    out = run.stdout + run.stderr
    for step, reason in SKIPS.items():  # every skip printed at start-up with its reason
        assert f"skipped skip.{step}: {reason}" in out
    assert planned_jobs(out) == {"harmonise_cohort": 1, "split_cohort": 1, "skipped_steps": 1, "pretrain_cnn": 1,
                                 "train_siamese": 1, "fit_metric": 1, "evaluate_oneshot": 1, "summarise_oneshot": 1,
                                 "download": 1, "predict_oneshot": 1}
    res = work / "results"
    assert not (res / "bulk" / "labelled").exists()  # the built-in branch did not run
    skipped = pd.read_csv(res / "logs" / "skipped_steps.tsv", sep="\t")
    assert dict(zip(skipped["step"], skipped["reason"])) == {"bulk.sources": skipped["reason"].iloc[0],
                                                            **{f"skip.{k}": v for k, v in SKIPS.items()}}
    log = (res / "logs" / "bulk" / "cohorts" / "harmonise_mine.log").read_text()
    assert "1 with a dropped label (unknown: 1)" in log and "1 sample(s) of the matrix have no row" in log

    types = pd.read_csv(res / "bulk" / "cohorts" / "mine" / "types.tsv", sep="\t")
    samples = pd.read_csv(res / "bulk" / "cohorts" / "mine" / "samples.tsv", sep="\t")
    # 7 types of 8 samples tie: the paper ranking breaks ties by name, the 4 last names are unseen
    assert sorted(types.loc[types["role"] == "test", "cancer_type"]) == ["type3", "type4", "type5", "type6"]
    vt = samples[samples["split"] != "train"]
    assert not set(vt.loc[vt["split"] == "validation", "patient"]) & set(vt.loc[vt["split"] == "test", "patient"])
    patients = pd.read_csv(res / "bulk" / "cohorts" / "mine" / "patients.tsv", sep="\t")
    assert patients.loc[0, "n_patients_on_both_sides"] == 0 and patients.loc[0, "n_samples_after_labels"] == 56

    table = pd.read_csv(res / "evaluation" / "oneshot_results.tsv", sep="\t")
    assert {"siamese", "nn_euclidean", "nn_pearson", "cnn_cosine", "whitened_cosine",
            "whitened_cosine_diffusion"} <= set(table["method"])
    summary = pd.read_csv(res / "models" / "mine" / "whitened_cosine.tsv", sep="\t")
    assert summary.loc[0, "transductive"] == "diffusion"
    assert summary.loc[0, "n_pool"] == len(vt)  # the unlabelled pool: validation and test samples
    assert set(table["n_way"]) == {3, 4} and (table["test"] == "mine").all()
    assert (table["n_test_samples"] == len(vt[vt["split"] == "test"])).all()

    # the cohort's model types new samples (prediction job; the example job on tcga19 is skipped)
    pred = pd.read_csv(res / "predict" / "mine_job" / "predictions.tsv", sep="\t")
    assert list(pred["sample_id"]) == ["s5_7", "s6_7", "s6_6"] and {"p_type5", "p_type6"} <= set(pred.columns)
    assert pred["predicted_type"].isin(["type5", "type6"]).all()
    assert not (res / "predict" / "example").exists()

    # Euclidean 1-NN recomputed here from the labelled matrix and the split table on the same tasks
    import anndata as ad

    from oncoshot.oneshot import make_tasks

    lab = ad.read_h5ad(res / "bulk" / "cohorts" / "mine" / "labelled.h5ad")
    test = samples[samples["split"] == "test"]
    X = np.asarray(lab[list(test["sample_id"])].X, dtype=np.float64)
    raw = pd.read_csv(tmp_path / "data" / "expr.tsv", sep="\t", index_col=0)
    raw.columns = [c.split(".")[0] for c in raw.columns]
    np.testing.assert_allclose(X, np.log2(raw.loc[list(test["sample_id"]), list(lab.var_names)].to_numpy() + 1),
                               rtol=1e-5)
    y = test["cancer_type"].to_numpy()
    groups = np.asarray([f"mine:{p}" for p in test["patient"]])
    for n_way in (3, 4):
        tasks = make_tasks(y, n_way, 200, 20211, groups=groups)
        d = ((X[tasks.query][:, None, :] - X[tasks.support]) ** 2).sum(axis=2)
        expected = float((d.argmin(axis=1) == tasks.true_pos).mean())
        got = table[(table["method"] == "nn_euclidean") & (table["n_way"] == n_way)]["accuracy"].item()
        assert got == pytest.approx(expected, abs=1e-12)


def test_bad_cohort_input_fails_cleanly(tmp_path):
    _write_cohort(tmp_path / "data", n_types=3, per_type=4)
    cfg = _config(tmp_path / "data")
    cfg["cohorts"]["mine"]["labels"]["label_column"] = "tcga_label"
    work = _workdir(tmp_path, cfg)
    proc = snakemake(work, "results/bulk/cohorts/mine/labelled.h5ad", "--configfile", str(tmp_path / "cfg.yaml"),
                     check=False)
    assert proc.returncode != 0
    assert "labels.tsv: column 'tcga_label': missing from the label table" in proc.stdout + proc.stderr
    assert not list((work / "results" / "bulk" / "cohorts" / "mine").glob("*.h5ad"))


def test_config_errors(tmp_path):
    _write_cohort(tmp_path / "data", n_types=3, per_type=4)
    cfg = _config(tmp_path / "data")
    del cfg["skip"]["singlecell"], cfg["skip"]["met500"]
    work = _workdir(tmp_path, cfg)
    proc = snakemake(work, "-n", "--configfile", str(tmp_path / "cfg.yaml"), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "list each under 'skip' with the reason: met500, singlecell" in out


def test_default_config_plans_no_cohort_job(tmp_path):
    work = make_workdir(tmp_path / "wd")
    out = snakemake(work, "-n").stdout
    jobs = planned_jobs(out)
    assert jobs["pretrain_cnn"] == 5 and jobs["train_siamese"] == 5 and jobs["evaluate_oneshot"] == 6
    assert jobs["evaluate_cnn_transfer"] == 1 and jobs["primary_vs_metastatic"] == 1 and jobs["predict_oneshot"] == 1
    assert not {"harmonise_cohort", "split_cohort", "skipped_steps"} & set(jobs)
    assert "OncoShot: skipped" not in out


def test_gdsc_config_dry_run(tmp_path, real_dir):
    work = make_workdir(tmp_path / "wd")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "real").symlink_to(real_dir)  # ../shared/real as seen from the workdir
    proc = snakemake(work, "-n", "--configfile", "config/gdsc.yaml")
    out = proc.stdout + proc.stderr
    assert planned_jobs(out) == {"harmonise_cohort": 1, "split_cohort": 1, "skipped_steps": 1, "pretrain_cnn": 1,
                                 "train_siamese": 1, "fit_metric": 1, "evaluate_oneshot": 1, "summarise_oneshot": 1,
                                 "marker_scores": 1, "forward_selection": 1, "marker_figures": 1, "all": 1}
    for step in ("skip.met500", "skip.cnn_primary_to_met", "skip.marker_comparison", "skip.singlecell",
                 "skip.predict", "cohorts.gdsc.gene_filter"):
        assert f"OncoShot: skipped {step}: " in out
    assert "../shared/real/gdsc_celllines/GDSC_EXP.genes_x_samples.tsv.gz" in out
