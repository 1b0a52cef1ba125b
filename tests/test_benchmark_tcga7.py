"""benchmarks/real_tcga_leave_types_out.py: the SPEC protocol — unseen types split by patient into
a validation and a test half, test tasks from the test half only, the Siamese selected on the
validation half (best-validation weights), the last weights kept as a diagnostic."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from workflow_utils import REPO

spec = importlib.util.spec_from_file_location("real_tcga_leave_types_out",
                                              REPO / "benchmarks" / "real_tcga_leave_types_out.py")
ltlo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ltlo)


def test_unseen_halves_by_patient_disjoint_and_seeded():
    rng = np.random.default_rng(1)
    y = np.repeat(["A", "B", "C"], [21, 10, 7])
    patients = np.array([f"{t}-p{i // 2}" for t, i in zip(y, range(len(y)))])  # two samples per patient
    samples = np.array([f"s{i}" for i in range(len(y))])
    order = rng.permutation(len(y))
    y, patients, samples = y[order], patients[order], samples[order]
    val, test = ltlo.unseen_halves(y, patients, samples, 0.5, seed=0)
    assert not (val & test).any() and (val | test).all()
    assert not set(patients[val]) & set(patients[test])  # every patient on one side
    for t in ("A", "B", "C"):
        n_pat = len(set(patients[y == t]))
        assert len(set(patients[val & (y == t)])) == n_pat // 2  # the odd patient goes to test
    again = ltlo.unseen_halves(y, patients, samples, 0.5, seed=0)
    assert (again[0] == val).all()
    assert not (ltlo.unseen_halves(y, patients, samples, 0.5, seed=1)[0] == val).all()


@pytest.mark.real
def test_tiny_run_selects_on_validation_and_keeps_last_as_diagnostic(real_dir, tmp_path, one_torch_thread):
    out = tmp_path / "ltlo.tsv"
    assert ltlo.main(["--out", str(out), "--real", str(real_dir), "--splits", "1", "--tasks", "60",
                      "--val-tasks", "60", "--top-genes", "200", "--siamese-iterations", "10",
                      "--trace-every", "5", "--pretrain-epochs", "1", "--no-monotone"]) == 0
    t = pd.read_csv(out, sep="\t")
    per = t[t["split"] != "mean"]
    assert set(per["row_type"]) == {"result", "trajectory", "validation"}
    r = per[per["row_type"] == "result"].set_index("method")
    # the unseen types' samples are split into halves; test tasks only from the test half
    assert (r["n_val_samples"] > 0).all() and (r["n_test_samples"] > 0).all()
    assert (r["n_tasks"] == 60).all()
    for method in ("siamese_transfer", "siamese_scratch"):
        val = per[(per["row_type"] == "validation") & (per["method"] == method)]
        traj = per[(per["row_type"] == "trajectory") & (per["method"] == method)]
        assert list(val["iteration"]) == [5, 10] == list(traj["iteration"])
        best = val["accuracy"].max()
        selected = int(val.loc[val["accuracy"] == best, "iteration"].max())  # ties -> the later
        assert r.loc[method, "iteration"] == selected
        assert "selected on the validation half" in r.loc[method, "note"]
        at_sel = traj.loc[traj["iteration"] == selected].iloc[0]
        assert r.loc[method, "n_correct"] == at_sel["n_correct"]
        last = r.loc[f"{method}_last"]
        assert last["iteration"] == 10 and "no selection" in last["note"]
        assert last["n_correct"] == traj.loc[traj["iteration"] == 10, "n_correct"].iloc[0]
    for method in ("1nn_euclidean", "1nn_pearson", "whitened_cosine", "cnn_embedding_cosine"):
        assert method in r.index
    assert "calibrated on" in r.loc["whitened_cosine", "note"]
