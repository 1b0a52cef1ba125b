"""Workflow test: the demo through CNN pretraining, Siamese training and one-shot evaluation (the
wiring, not the numbers), on the shared demo run (``demo_run`` in ``tests/conftest.py``: the shipped
config, every target); the expected task counts and validation iterations come from that config."""

from __future__ import annotations

import struct

import pandas as pd
import pytest
import yaml

from oncoshot.experiments import load_model
from workflow_utils import REPO

pytestmark = pytest.mark.workflow

DEMO = yaml.safe_load((REPO / "config/config.yaml").read_text())


@pytest.fixture(scope="module")
def run_dir(demo_run):
    return demo_run


def test_results_table_is_complete_and_consistent(run_dir):
    res = pd.read_csv(run_dir / "results/evaluation/oneshot_results.tsv", sep="\t")
    runs = {"tcga9", "tcga14", "tcga19", "tcga19_scratch", "met500", "tcga19_on_met500"}
    assert set(res["experiment"]) == runs
    assert set(res["method"]) == {"siamese", "nn_euclidean", "nn_pearson", "cnn_cosine", "whitened_cosine"}
    assert set(res["n_way"]) == {6, 8, 10}
    assert len(res) == len(runs) * 5 * 3
    assert (res["tasks"] == DEMO["evaluation"]["n_tasks"]).all()
    assert ((res["ci_low"] <= res["accuracy"]) & (res["accuracy"] <= res["ci_high"])).all()
    # the same seed gives the same tasks for every model tested on the same samples:
    # the baselines do not depend on the model, so they must agree across runs exactly
    base = res[res["method"].isin(["nn_euclidean", "nn_pearson"])]
    tcga = base[base["test"].str.startswith("tcga")].pivot_table(
        index=["method", "n_way"], columns="experiment", values="accuracy")
    assert (tcga.nunique(axis=1) == 1).all(), tcga
    met = base[base["test"] == "met500"].pivot_table(index=["method", "n_way"], columns="experiment", values="accuracy")
    assert (met.nunique(axis=1) == 1).all(), met


def test_models_histories_and_figures(run_dir):
    models = run_dir / "results/models"
    for exp in ("tcga9", "tcga14", "tcga19", "met500", "cnn_primary_to_met"):
        cnn = load_model(models / exp / "cnn.pt", kind="cnn")
        assert len(cnn["classes"]) >= 2
    for exp, init in [("tcga19", "transfer"), ("tcga19", "scratch"), ("met500", "transfer")]:
        siam = load_model(models / exp / f"siamese_{init}.pt", kind="siamese")
        assert siam["distance"] == "sq" and siam["init"] == init
        hist = pd.read_csv(models / exp / f"siamese_{init}_history.tsv", sep="\t")
        it, every = DEMO["siamese"]["iterations"], DEMO["siamese"]["val_every"]
        assert list(hist["iteration"]) == sorted(set(range(every, it + 1, every)) | {it})  # and after the last
        assert not (models / exp / f"siamese_{init}.ckpt").exists()  # removed once finished
    ev = run_dir / "results/evaluation"
    for name in ("fig3a_primary", "fig3b_metastatic", "training_curves", "cnn_primary_to_met/confusion"):
        png = (ev / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert width > 300 and height > 200
        assert (ev / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    acc = pd.read_csv(ev / "cnn_primary_to_met/accuracy.tsv", sep="\t")
    assert acc.loc[0, "n_types"] == 10 and 0 <= acc.loc[0, "accuracy"] <= 1
    pred = pd.read_csv(ev / "cnn_primary_to_met/predictions.tsv", sep="\t")
    assert len(pred) == acc.loc[0, "n_samples"]
    assert acc.loc[0, "accuracy"] == pytest.approx((pred["true_type"] == pred["predicted_type"]).mean())


def test_logs_show_progress_and_eta(run_dir):
    log = (run_dir / "results/logs/models/tcga19/train_siamese_transfer.log").read_text()
    assert "ETA" in log and "val" in log.lower()


def test_marker_outputs(run_dir):
    m = run_dir / "results/markers"
    for exp in ("tcga19", "met500"):
        scores = pd.read_csv(m / exp / "gene_scores.tsv", sep="\t")
        assert list(scores["rank"]) == list(range(1, len(scores) + 1))
        assert scores["score"].is_monotonic_decreasing
        assert scores["gene_id"].str.startswith("ENSG").all() and scores["symbol"].notna().all()
        sel = pd.read_csv(m / exp / "forward_selection.tsv", sep="\t")
        ks = list(sel["k"])
        assert ks[:3] == [10, 20, 30] and ks == sorted(ks) and ks[-1] == len(scores)
        # the all-genes 1-NN on the same tasks equals the last k (every gene)
        assert sel["accuracy"].iloc[-1] == pytest.approx(sel["all_genes_accuracy"].iloc[0])
        markers = pd.read_csv(m / exp / "markers.tsv", sep="\t")
        best = sel.loc[sel["accuracy"].idxmax()]
        assert len(markers) == sel.loc[sel["accuracy"] == best["accuracy"], "k"].min()
        assert list(markers["gene_id"]) == list(scores["gene_id"].head(len(markers)))
        for fig in ("tsne_train", "tsne_test", "heatmap", "forward_selection"):
            assert (m / exp / f"{fig}.png").read_bytes()[:4] == b"\x89PNG"
    gnb = pd.read_csv(m / "primary_vs_metastatic/gnb_accuracy.tsv", sep="\t")
    assert list(gnb["k"]) == list(range(10, 101, 10)) and gnb["chosen"].sum() == 1
    assert ((gnb["accuracy"] >= 0) & (gnb["accuracy"] <= 1)).all()
    enr = pd.read_csv(m / "enrichment.tsv", sep="\t")
    assert set(enr["marker_list"]) == {"primary", "metastatic"} and len(enr) == 20
    assert ((enr["q_value"] >= enr["p_value"] - 1e-12)).all()
    ov = pd.read_csv(m / "overlap.tsv", sep="\t")
    assert 0 <= ov.loc[0, "jaccard"] <= 1
