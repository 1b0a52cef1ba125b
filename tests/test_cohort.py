"""Your own labelled cohort (oncoshot.cohort): formats, units, labels, excluded genes, gene filter,
small types, split policies (paper ranking, seeded random), patients kept on one side, bad inputs,
and the real GDSC cell lines against PROVENANCE.md."""

from __future__ import annotations

import re
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from oncoshot.bulk import BulkWarning
from oncoshot.cohort import (build_cohort, choose_unseen_types, rank_types, read_cohort_expression,
                             read_cohort_labels, split_cohort)
from oncoshot.errors import InputError

GENES = [f"G{i:03d}" for i in range(12)]


def _matrix(n_samples=10, seed=0):
    """genes × samples, non-negative (valid in every unit)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.uniform(0, 5, size=(len(GENES), n_samples)), index=GENES,
                        columns=[f"S{j:02d}" for j in range(n_samples)])


def _write_labels(path, rows, columns=("sample_id", "type", "patient")):
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, sep="\t", index=False)
    return path


def _labels_for(df, types=("A", "B")):
    return [(s, types[j % len(types)], f"P{j}") for j, s in enumerate(df.columns)]


# --- formats and units -------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["tsv_gxs", "tsv_sxg", "csv_gz", "h5ad"])
def test_formats_give_the_same_matrix(tmp_path, fmt):
    df = _matrix()
    if fmt == "tsv_gxs":
        path, orientation = tmp_path / "m.tsv", None
        df.to_csv(path, sep="\t", index_label="gene")
    elif fmt == "tsv_sxg":
        path, orientation = tmp_path / "m.tsv", "samples_x_genes"
        df.T.to_csv(path, sep="\t", index_label="sample")
    elif fmt == "csv_gz":
        path, orientation = tmp_path / "m.csv.gz", "genes_x_samples"
        df.to_csv(path, index_label="gene", compression="gzip")
    else:
        path, orientation = tmp_path / "m.h5ad", None
        ad.AnnData(X=df.T.to_numpy(), obs=pd.DataFrame(index=df.columns), var=pd.DataFrame(index=df.index)).write_h5ad(path)
    got, unit = read_cohort_expression(path, "as_is", "symbol", orientation)
    assert unit == "as given"
    pd.testing.assert_frame_equal(got.loc[GENES, list(df.columns)], df, check_names=False, atol=1e-12)


def test_units(tmp_path):
    df = _matrix()
    path = tmp_path / "m.tsv"
    df.to_csv(path, sep="\t", index_label="gene")
    fpkm, unit = read_cohort_expression(path, "fpkm", "symbol")
    assert unit == "log2(FPKM+1)"
    np.testing.assert_allclose(fpkm.loc[GENES].to_numpy(), np.log2(df.to_numpy() + 1))
    z, unit = read_cohort_expression(path, "zscore", "symbol")
    np.testing.assert_allclose(z.loc[GENES].to_numpy(), df.to_numpy())
    neg = df - 10  # z-scores may be negative, FPKM may not
    neg.to_csv(path, sep="\t", index_label="gene")
    read_cohort_expression(path, "zscore", "symbol")
    with pytest.raises(InputError, match="negative"):
        read_cohort_expression(path, "fpkm", "symbol")


# --- build_cohort ------------------------------------------------------------------------------
def _cohort_files(tmp_path, n_types=7, per_type=8, per_patient=2, seed=0):
    """A genes × samples TSV with ``n_types`` types of ``per_type`` samples, ``per_patient`` samples
    per patient; label table with a patient column."""
    rng = np.random.default_rng(seed)
    ids, rows = [], []
    for t in range(n_types):
        for k in range(per_type):
            sid = f"T{t}_S{k}"
            ids.append(sid)
            rows.append((sid, f"TYPE{t}", f"T{t}_P{k // per_patient}"))
    df = pd.DataFrame(rng.normal(size=(len(GENES), len(ids))), index=GENES, columns=ids)
    mpath = tmp_path / "expr.tsv"
    df.to_csv(mpath, sep="\t", index_label="gene")
    lpath = _write_labels(tmp_path / "labels.tsv", rows)
    return mpath, lpath, df


def test_build_cohort_labels_exclusion_filter_and_small_types(tmp_path):
    df = _matrix(n_samples=12)
    df.loc["G000"] = 0.1  # mean and sd < 0.8: the gene filter drops it
    df.loc["G001"] = 3.0  # mean ≥ 0.8: kept although constant
    mpath = tmp_path / "m.tsv"
    df.to_csv(mpath, sep="\t", index_label="gene")
    rows = [(s, "A" if j < 6 else "B", s) for j, s in enumerate(df.columns)]
    rows[0] = (rows[0][0], "", rows[0][2])                 # empty label: unlabelled
    rows[1] = (rows[1][0], "UNKNOWN", rows[1][2])          # dropped label: unlabelled
    rows[11] = (rows[11][0], "C", rows[11][2])             # a type of 1 sample: below min_samples
    del rows[10]                                           # a matrix sample without a label row
    rows.append(("NOT_IN_MATRIX", "A", "x"))               # a label row without a sample
    lpath = _write_labels(tmp_path / "labels.tsv", rows)
    excl = tmp_path / "genes.tsv"
    pd.DataFrame({"gene": GENES, "not_measured": ["FALSE"] * 10 + ["TRUE", "TRUE"]}).to_csv(excl, sep="\t", index=False)
    with pytest.warns(BulkWarning) as record:
        harm, lab, report, counts = build_cohort(
            "mine", {"path": str(mpath), "units": "log2_fpkm1", "gene_ids": "symbol"},
            {"path": str(lpath), "sample_column": "sample_id", "label_column": "type", "drop_labels": ["UNKNOWN"]},
            exclude={"path": str(excl), "column": "gene", "filter": {"column": "not_measured", "values": ["TRUE"]}},
            gene_filter=True, filter_threshold=0.8, min_samples=2)
    messages = " ".join(str(w.message) for w in record)
    assert "1 sample(s) of the matrix have no row" in messages and "'S10'" in messages
    assert "1 sample(s) of the label table are not in the matrix" in messages and "NOT_IN_MATRIX" in messages
    assert counts["n_unlabelled_empty"] == 1 and counts["n_unlabelled_dropped"] == 1
    assert counts["n_matrix_samples_without_label_row"] == 1 and counts["n_label_rows_without_sample"] == 1
    # harmonised: every labelled matrix sample, excluded genes gone, genes sorted
    expected_samples = [s for j, s in enumerate(df.columns) if j not in (0, 1, 10)]
    assert sorted(harm.obs_names) == sorted(expected_samples)
    assert list(harm.var_names) == GENES[:10]
    np.testing.assert_allclose(harm[expected_samples].X, df.loc[GENES[:10], expected_samples].T.to_numpy(), rtol=1e-6)
    assert set(harm.obs["cohort"]) == {"mine"} and harm.uns["unit"] == "log2(FPKM+1)"
    # labelled: gene filter (computed here independently) and type C (1 sample) dropped
    Xh = df.loc[GENES[:10], expected_samples].to_numpy()
    keep = ~((Xh.mean(axis=1) < 0.8) & (Xh.std(axis=1) < 0.8))
    assert list(lab.var_names) == [g for g, k in zip(GENES[:10], keep) if k]
    assert "G000" not in lab.var_names and "G001" in lab.var_names
    assert set(lab.obs["cancer_type"]) == {"A", "B"} and "S11" not in lab.obs_names
    assert report.set_index("cancer_type").loc["C", "kept"] == False  # noqa: E712
    # without the filter every non-excluded gene stays
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BulkWarning)
        _, lab2, _, _ = build_cohort(
            "mine", {"path": str(mpath), "units": "log2_fpkm1", "gene_ids": "symbol"},
            {"path": str(lpath), "sample_column": "sample_id", "label_column": "type", "drop_labels": ["UNKNOWN"]},
            gene_filter=False, min_samples=2)
    assert list(lab2.var_names) == GENES


# --- splits ------------------------------------------------------------------------------------
def test_paper_ranking_and_ties_by_hand():
    labels = ["A"] * 5 + ["B"] * 5 + ["C"] * 4 + ["D"] * 3 + ["E"] * 3 + ["F"] * 2
    assert rank_types(labels) == ["A", "B", "C", "D", "E", "F"]
    # D and E tie at 3 samples across the cut: E sorts after D, so E is unseen and D trains
    assert choose_unseen_types(labels, "paper", 2, seed=1) == ["E", "F"]
    assert choose_unseen_types(labels, "paper", 3, seed=1) == ["D", "E", "F"]
    with pytest.raises(InputError, match=r"6 types, fewer than n_test_types \(5\) \+ 2"):
        choose_unseen_types(labels, "paper", 5, seed=1)


def test_random_policy_reproducible_and_seed_dependent():
    labels = [f"T{i:02d}" for i in range(12) for _ in range(3)]
    a = choose_unseen_types(labels, "random", 4, seed=7)
    assert a == choose_unseen_types(labels, "random", 4, seed=7)
    pool = sorted(set(labels))
    assert a == sorted(pool[i] for i in np.random.default_rng(7).choice(12, size=4, replace=False))
    assert any(choose_unseen_types(labels, "random", 4, seed=s) != a for s in (8, 9, 10))


def test_split_keeps_patients_on_one_side(tmp_path):
    mpath, lpath, df = _cohort_files(tmp_path, n_types=7, per_type=12, per_patient=3)
    _, lab, _, _ = build_cohort("c", {"path": str(mpath), "units": "as_is", "gene_ids": "symbol"},
                                {"path": str(lpath), "label_column": "type", "patient_column": "patient"},
                                gene_filter=False, min_samples=2)
    types, samples = split_cohort(lab, "c", policy="random", n_test_types=4, validation_fraction=0.5, seed=3)
    unseen = set(types.loc[types["role"] == "test", "cancer_type"])
    assert len(unseen) == 4 and len(types) == 7
    # independent check: no patient in both validation and test; every sample of a type used once
    val = set(samples.loc[samples["split"] == "validation", "patient"])
    test = set(samples.loc[samples["split"] == "test", "patient"])
    assert val and test and not val & test
    assert set(samples.loc[samples["split"] == "train", "cancer_type"]).isdisjoint(unseen)
    assert sorted(samples["sample_id"]) == sorted(lab.obs_names) and not samples["sample_id"].duplicated().any()
    lab_patient = lab.obs["patient"].astype(str)
    assert (samples.set_index("sample_id")["patient"] == lab_patient.reindex(samples["sample_id"]).to_numpy()).all()
    for t in unseen:  # 4 patients per type: 2 validation, 2 test
        sub = samples[samples["cancer_type"] == t]
        assert sub.groupby("split")["patient"].nunique().to_dict() == {"test": 2, "validation": 2}
    assert list(samples.columns) == ["experiment", "sample_id", "cohort", "cancer_type", "split", "patient"]
    again = split_cohort(lab, "c", policy="random", n_test_types=4, validation_fraction=0.5, seed=3)[1]
    pd.testing.assert_frame_equal(samples, again)


# --- bad input ---------------------------------------------------------------------------------
def _build(mpath, lpath, **kw):
    expression = {"path": str(mpath), "units": kw.pop("units", "as_is"), "gene_ids": "symbol",
                  "orientation": kw.pop("orientation", None)}
    labels = {"path": str(lpath), "label_column": kw.pop("label_column", "type"),
              "patient_column": kw.pop("patient_column", None)}
    return build_cohort("c", expression, labels, gene_filter=False, min_samples=1, **kw)


def test_bad_inputs(tmp_path):
    mpath, lpath, df = _cohort_files(tmp_path, n_types=3, per_type=4)
    with pytest.raises(InputError, match=r"labels.tsv: column 'tcga_label': missing from the label table"):
        _build(mpath, lpath, label_column="tcga_label")
    with pytest.raises(InputError, match=r"units: unknown units 'tpm'"):
        _build(mpath, lpath, units="tpm")
    with pytest.raises(InputError, match=r"orientation: unknown value 'rows'"):
        _build(mpath, lpath, orientation="rows")
    dup = tmp_path / "dup.tsv"
    rows = pd.read_csv(lpath, sep="\t")
    pd.concat([rows, rows.iloc[:1]]).to_csv(dup, sep="\t", index=False)
    with pytest.raises(InputError, match=r"dup.tsv: column 'sample_id': 1 duplicated sample id\(s\): 'T0_S0'"):
        _build(mpath, dup)
    two = tmp_path / "two.tsv"
    r2 = rows.copy()
    r2.loc[r2["sample_id"] == "T1_S0", "patient"] = "T0_P0"  # patient T0_P0 now has TYPE0 and TYPE1
    r2.to_csv(two, sep="\t", index=False)
    with pytest.raises(InputError, match=r"two.tsv: columns 'patient', 'type': 1 patient\(s\) have samples of different types"):
        _build(mpath, two, patient_column="patient")
    bad = tmp_path / "bad.tsv"
    d2 = df.astype(object)
    d2.iloc[3, 2] = "high"
    d2.to_csv(bad, sep="\t", index_label="gene")
    with pytest.raises(InputError, match=r"bad.tsv: gene 'G003', sample 'T0_S2': non-numeric value 'high'"):
        _build(bad, lpath)
    d2.iloc[3, 2] = "NA"
    d2.to_csv(bad, sep="\t", index_label="gene")
    with pytest.raises(InputError, match=r"bad.tsv: gene 'G003', sample 'T0_S2': missing or infinite value \(nan\)"):
        _build(bad, lpath)
    # samples × genes declared as genes × samples: the label ids are the matrix's row ids
    sxg = tmp_path / "sxg.tsv"
    df.T.to_csv(sxg, sep="\t", index_label="sample")
    with pytest.raises(InputError, match=r"sxg.tsv: samples: .*row ids of the matrix: is the orientation right"):
        _build(sxg, lpath, orientation="genes_x_samples")
    _build(sxg, lpath, orientation="samples_x_genes")  # declared right: fine
    dupm = tmp_path / "dupm.tsv"
    d3 = df.copy()
    d3.columns = [c if c != "T0_S1" else "T0_S0" for c in d3.columns]
    d3.to_csv(dupm, sep="\t", index_label="gene")
    with pytest.raises(InputError, match=r"dupm.tsv: header: duplicated sample ids: 'T0_S0'"):
        _build(dupm, lpath)
    _, lab, _, _ = _build(mpath, lpath)
    with pytest.raises(InputError, match=r"3 types, fewer than n_test_types \(2\) \+ 2 training types"):
        split_cohort(lab, "c", policy="paper", n_test_types=2, seed=1, source="config cohorts.c")


def test_small_unseen_type_dropped_or_error(tmp_path):
    mpath, lpath, _ = _cohort_files(tmp_path, n_types=6, per_type=4, per_patient=1)
    rows = pd.read_csv(lpath, sep="\t")
    rows = rows[~rows["sample_id"].isin(["T5_S2", "T5_S3"])]  # TYPE5: 2 samples → 1 validation, 1 test patient
    rows.to_csv(lpath, sep="\t", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BulkWarning)
        _, lab, _, _ = _build(mpath, lpath, patient_column="patient")
    with pytest.warns(BulkWarning, match="type 'TYPE5' has 1 patient"):
        types, _ = split_cohort(lab, "c", policy="paper", n_test_types=3, seed=1, min_patients=2)
    assert "TYPE5" not in set(types["cancer_type"])
    with pytest.raises(InputError, match="type 'TYPE5'"):
        split_cohort(lab, "c", policy="paper", n_test_types=3, seed=1, min_patients=2, small_type_policy="error")


# --- the real GDSC cell lines --------------------------------------------------------------------
def test_gdsc_counts_match_provenance(real_dir):
    gdsc = real_dir / "gdsc_celllines"
    row = next(line for line in (real_dir / "PROVENANCE.md").read_text().splitlines() if "gdsc_celllines/" in line)
    listed = dict((t, int(n)) for t, n in re.findall(r"([A-Z][A-Z/]+) (\d+)[,)]", row.split("767 lines:")[1]))
    assert len(listed) == 26 and sum(listed.values()) == 767
    with warnings.catch_warnings():
        warnings.simplefilter("error", BulkWarning)  # every matrix line has a label row and vice versa
        harm, lab, report, counts = build_cohort(
            "gdsc",
            {"path": str(gdsc / "GDSC_EXP.genes_x_samples.tsv.gz"), "units": "zscore", "gene_ids": "symbol",
             "orientation": "genes_x_samples"},
            {"path": str(gdsc / "GDSC_EXP.sample_types.tsv"), "sample_column": "sample_id",
             "label_column": "tcga_label", "drop_labels": ["UNABLE TO CLASSIFY", "NA"]},
            exclude={"path": str(gdsc / "GDSC_EXP.gene_annotation.tsv"), "column": "gene_symbol",
                     "filter": {"column": "constant_fill_not_measured", "values": ["TRUE"]}},
            gene_filter=False, min_samples=8)
    assert counts["n_matrix_samples"] == 975 and counts["n_genes_excluded"] == 385
    assert lab.n_vars == 5778 and lab.n_obs == 767
    assert lab.obs["cancer_type"].value_counts().to_dict() == listed
    types, samples = split_cohort(lab, "gdsc", policy="paper", n_test_types=10, seed=20211)
    train = set(types.loc[types["role"] == "train", "cancer_type"])
    ranked = sorted(listed, key=lambda t: (-listed[t], t))  # PROVENANCE's paper-like split: 16 most / 10 fewest
    assert train == set(ranked[:16]) and len(types) == 26
    assert samples.groupby("split").size().to_dict()["train"] == sum(listed[t] for t in ranked[:16])


# --- prediction jobs on a cohort's model -----------------------------------------------------------
def test_prediction_with_a_symbol_zscore_model(tmp_path):
    from oncoshot.predict import ExpressionSpec, align_genes, predict_job

    expr = _matrix(n_samples=3)
    X, rep = align_genes(expr, ["G002", "G000", "G099"], source="q.tsv", gene_ids="symbol", symbols=None,
                         min_coverage=0.5, model_gene_ids="symbol")
    np.testing.assert_allclose(X[:, :2], expr.loc[["G002", "G000"]].T.to_numpy())
    assert rep["missing"] == ["G099"] and (X[:, 2] == 0).all()
    with pytest.raises(InputError, match=r"q.tsv: gene_ids: the model knows its genes by symbol"):
        align_genes(expr, ["G000"], source="q.tsv", gene_ids="ensembl", model_gene_ids="symbol")
    path = tmp_path / "s.tsv"
    expr.to_csv(path, sep="\t", index_label="gene")
    spec = ExpressionSpec(str(path), units="fpkm", gene_ids="symbol")
    with pytest.raises(InputError, match=r"s.tsv: units: units 'fpkm' do not fit the model, trained on values in z-score"):
        predict_job(None, GENES, spec, path, spec, model_gene_ids="symbol", model_unit="z-score per sample (as given)")
    z = ExpressionSpec(str(path), units="zscore", gene_ids="symbol")
    with pytest.raises(InputError, match=r"units 'zscore' do not fit the model, trained on values in log2\(FPKM\+1\)"):
        predict_job(None, GENES, z, path, z)
