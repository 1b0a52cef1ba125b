"""Sample selection from the split tables, stratified hold-out, and model files."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from oncoshot.errors import InputError
from oncoshot.experiments import load_model, save_model, select_samples, stratified_holdout
from oncoshot.models import CNNClassifier


def _cohort(prefix, n, genes, seed):
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame(index=[f"{prefix}{i}" for i in range(n)])
    return ad.AnnData(rng.normal(size=(n, len(genes))).astype(np.float32), obs=obs,
                      var=pd.DataFrame(index=genes))


def test_select_samples_follows_table_order_across_cohorts():
    genes = ["g1", "g2", "g3"]
    tcga, met = _cohort("T", 4, genes, 0), _cohort("M", 3, genes, 1)
    table = pd.DataFrame({
        "experiment": ["e"] * 5 + ["other"],
        "sample_id": ["T2", "M0", "T0", "M2", "T3", "T1"],
        "cohort": ["TCGA", "MET500", "TCGA", "MET500", "TCGA", "TCGA"],
        "cancer_type": ["A", "B", "A", "B", "C", "A"],
        "split": ["train", "test", "train", "train", "validation", "train"],
    })
    X, y, ids = select_samples({"TCGA": tcga, "MET500": met}, table, "e", "train")
    assert list(ids) == ["T2", "T0", "M2"]
    assert list(y) == ["A", "A", "B"]
    np.testing.assert_array_equal(X[0], tcga["T2"].X[0])
    np.testing.assert_array_equal(X[2], met["M2"].X[0])
    X, y, ids = select_samples({"TCGA": tcga, "MET500": met}, table, "e", ["train", "test"])
    assert len(ids) == 4


def test_select_samples_with_patients():
    genes = ["g1", "g2"]
    tcga, met = _cohort("T", 3, genes, 0), _cohort("M", 2, genes, 1)
    table = pd.DataFrame({"experiment": ["e"] * 4, "sample_id": ["T2", "M0", "T0", "M1"],
                          "cohort": ["TCGA", "MET500", "TCGA", "MET500"], "cancer_type": ["A", "B", "A", "B"],
                          "split": ["test"] * 4, "patient": ["p1", "m1", "p1", "m2"]})
    X, y, ids, patients = select_samples({"TCGA": tcga, "MET500": met}, table, "e", "test", with_patients=True)
    assert list(ids) == ["T2", "T0", "M0", "M1"]
    assert list(patients) == ["TCGA:p1", "TCGA:p1", "MET500:m1", "MET500:m2"]
    with pytest.raises(InputError, match=r"splits\.tsv: column 'patient': missing"):
        select_samples({"TCGA": tcga, "MET500": met}, table.drop(columns="patient"), "e", "test", "splits.tsv",
                       with_patients=True)


def test_select_samples_errors_name_the_problem():
    genes = ["g1", "g2"]
    tcga = _cohort("T", 2, genes, 0)
    table = pd.DataFrame({"experiment": ["e"], "sample_id": ["T9"], "cohort": ["TCGA"],
                          "cancer_type": ["A"], "split": ["train"]})
    with pytest.raises(InputError, match="not in the matrix.*T9"):
        select_samples({"TCGA": tcga}, table, "e", "train", "splits.tsv")
    with pytest.raises(InputError, match="no samples for experiment 'x'"):
        select_samples({"TCGA": tcga}, table, "x", "train")
    with pytest.raises(InputError, match="unknown cohort 'TCGA'"):
        select_samples({"MET500": tcga}, table, "e", "train")


def test_stratified_holdout_per_label():
    labels = np.array(["a"] * 20 + ["b"] * 7 + ["c"] * 1 + ["d"] * 2)
    tr, ho = stratified_holdout(labels, 0.15, seed=3)
    assert set(tr) | set(ho) == set(range(len(labels))) and not set(tr) & set(ho)
    held = pd.Series(labels[ho]).value_counts()
    assert held["a"] == 3 and held["b"] == 1 and held["d"] == 1 and "c" not in held
    assert (pd.Series(labels[tr]).value_counts() >= 1).all()
    tr2, ho2 = stratified_holdout(labels, 0.15, seed=3)
    np.testing.assert_array_equal(ho, ho2)
    assert len(stratified_holdout(labels, 0.0, seed=3)[1]) == 0


def test_model_file_roundtrip_with_weights_only(tmp_path):
    model = CNNClassifier(200, 3)
    path = tmp_path / "m.pt"
    save_model(path, kind="cnn", state_dict=model.state_dict(), genes=[f"g{i}" for i in range(200)],
               classes=["A", "B", "C"], experiment="e", best_epoch=4)
    obj = load_model(path, kind="cnn")
    assert obj["classes"] == ["A", "B", "C"] and obj["best_epoch"] == 4 and len(obj["genes"]) == 200
    fresh = CNNClassifier(200, 3)
    fresh.load_state_dict(obj["state_dict"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k])
    with pytest.raises(InputError, match="expected a siamese model"):
        load_model(path, kind="siamese")


def test_load_model_refuses_arbitrary_pickles(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("executed!",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"format": "oncoshot-model-v1", "x": Evil()}, fh)
    with pytest.raises(InputError, match="not a readable model file"):
        load_model(path)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_errors_name_the_configured_source_beside_the_cached_copy():
    """Issue 15: bulk errors named the results/downloads/… copy, not the path or URL the user
    configured; oncoshot.runtime.run adds it (params.sources of the rules reading downloads)."""
    from oncoshot.runtime import name_sources

    sources = {"results/downloads/tcga/TCGA-ACC.star_fpkm.tsv.gz": "https://hub/TCGA-ACC.star_fpkm.tsv.gz",
               "results/downloads/tcga/probemap.tsv": "results/downloads/tcga/probemap.tsv"}
    msg = "results/downloads/tcga/TCGA-ACC.star_fpkm.tsv.gz: genes: project ACC: 1 gene ids differ."
    assert name_sources(msg, sources) == ("results/downloads/tcga/TCGA-ACC.star_fpkm.tsv.gz (configured: "
                                          "https://hub/TCGA-ACC.star_fpkm.tsv.gz): genes: project ACC: 1 gene ids differ.")
    assert name_sources("results/downloads/tcga/probemap.tsv: empty", sources) == "results/downloads/tcga/probemap.tsv: empty"
    assert name_sources(msg, None) == msg
