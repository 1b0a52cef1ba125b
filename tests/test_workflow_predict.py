"""Workflow test: the example prediction job (resources/predict_example/) on the demo; a job whose
gene ids are declared wrongly fails cleanly; rule all asks for the example.

Reads the shared demo run (``demo_run`` in ``tests/conftest.py``: the shipped config, every target):
the demo's own training settings matter here, since a shorter training (3 epochs, 20 Siamese
iterations) leaves the network at chance on these unseen types (7 of 24 right), which would test
nothing. The failing job runs in a copy of that run."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from oncoshot.experiments import load_model
from workflow_utils import REPO, copy_workdir, make_workdir, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

EXAMPLE = REPO / "resources" / "predict_example"
EXTRA = """
predict:
  wrong_ids:                       # symbols declared as Ensembl ids
    model: tcga19
    support: {path: resources/predict_example/support.tsv}
    support_labels: resources/predict_example/support_labels.tsv
    queries: {path: resources/predict_example/queries.h5ad, units: fpkm}
"""
OUT = "results/predict/example"
HALLMARKS = ["IA", "TPI", "GIM", "SPS", "AID", "ERI", "RCD", "EGS", "DCE", "AIM"]


@pytest.fixture(scope="module")
def run_dir(demo_run):
    return demo_run  # the shared demo run (tests/conftest.py): rule all includes the example job


@pytest.fixture
def extra_dir(demo_run, tmp_path):
    """A copy of the shared run with the extra (wrongly declared) job configured."""
    work = copy_workdir(demo_run, tmp_path / "extra")
    (work / "extra.yaml").write_text(EXTRA)
    return work


def test_predictions_table(run_dir):
    pred = pd.read_csv(run_dir / OUT / "predictions.tsv", sep="\t")
    support = pd.read_csv(EXAMPLE / "support_labels.tsv", sep="\t")
    truth = pd.read_csv(EXAMPLE / "query_labels.tsv", sep="\t")
    types = sorted(set(support["type"]))
    assert list(pred.columns) == (["sample_id", "predicted_type", "probability", "margin", "assigned_type"]
                                  + [f"p_{t}" for t in types] + [f"share_{t}" for t in types]
                                  + ["true_type", "correct"])
    assert list(pred["sample_id"]) == list(truth["sample_id"])
    P = pred[[f"p_{t}" for t in types]].to_numpy()
    assert np.all((P >= 0) & (P <= 1))
    np.testing.assert_allclose(pred[[f"share_{t}" for t in types]].sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(pred["probability"], P.max(axis=1), rtol=1e-6)
    assert (pred["assigned_type"] == pred["predicted_type"]).all()  # min_probability: null
    # queries of a support type are mostly typed right (6 types: chance 1/6); measured 23 of 24
    known = pred["true_type"].isin(types)
    assert known.sum() == 24
    acc = (pred.loc[known, "predicted_type"] == pred.loc[known, "true_type"]).mean()
    assert acc >= 0.75, pred.loc[known, ["sample_id", "predicted_type", "true_type", "probability"]]
    # a type absent from the support can only be wrong
    assert not pred.loc[~known, "correct"].any() and set(pred.loc[~known, "true_type"]) == {"testis"}


def test_gene_report_and_hallmarks(run_dir):
    model = load_model(run_dir / "results/models/tcga19/siamese_transfer.pt", kind="siamese")
    queries = ad.read_h5ad(EXAMPLE / "queries.h5ad")
    want_missing = [g for g in model["genes"] if g not in set(queries.var["gene_id"])]
    missing = pd.read_csv(run_dir / OUT / "genes_missing.tsv", sep="\t", keep_default_na=False)
    sia = missing[missing["model"] == "siamese"]
    assert len(want_missing) > 0 and list(sia["gene_id"]) == want_missing
    assert set(sia["file"]) == {"queries"} and (sia["symbol"] != "").all()
    align = pd.read_csv(run_dir / OUT / "alignment.tsv", sep="\t").set_index(["file", "model"])
    assert align.loc[("support", "siamese"), "n_missing"] == 0
    assert align.loc[("queries", "siamese"), "n_missing"] == len(want_missing)
    assert align.loc[("queries", "siamese"), "n_model_genes"] == len(model["genes"])
    hall = pd.read_csv(run_dir / OUT / "hallmarks.tsv", sep="\t")
    assert list(hall.columns) == ["sample_id"] + HALLMARKS and len(hall) == queries.n_obs
    assert ((hall[HALLMARKS] >= 0) & (hall[HALLMARKS] <= 1)).all().all()
    assert (run_dir / OUT / "probabilities.png").read_bytes()[:4] == b"\x89PNG"
    log = (run_dir / "results/logs/predict/example.log").read_text()
    assert "Siamese model genes found" in log and "predicted correctly" in log


def test_wrong_gene_ids_fail_cleanly(extra_dir):
    run_dir = extra_dir
    plan = snakemake(run_dir, f"{OUT}/predictions.tsv", "-n", "--configfile", "config/config.yaml", "extra.yaml")
    assert planned_jobs(plan.stdout + plan.stderr) == {}  # the copied example is up to date
    proc = snakemake(run_dir, "results/predict/wrong_ids/predictions.tsv", "--configfile", "config/config.yaml",
                     "extra.yaml", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "queries.h5ad: genes: only 0 of the model's" in out and "set gene_ids: symbol" in out, out[-3000:]
    folder = run_dir / "results/predict/wrong_ids"
    assert not folder.exists() or not any(folder.iterdir())


def test_rule_all_runs_the_example(tmp_path):
    work = make_workdir(tmp_path / "plan")
    jobs = planned_jobs(snakemake(work, "-n").stdout)
    assert jobs.get("predict_oneshot") == 1
