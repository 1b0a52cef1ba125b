"""oncoshot.bulk on real TCGA data: ../shared/real/tcga_rnasum (7 types, GDC HTSeq raw counts).

Format (see ../shared/real/PROVENANCE.md): ``TCGA_<T>_Counts.exp.gz`` genes × samples with an
empty first header field, unversioned Ensembl ids, full aliquot barcodes; ``TCGA_<T>_Target.txt.gz``
with ``Sample_name`` and ``Target`` ("ACC (TCGA)"). The Target files name the type of each file;
they do not list exactly the matrix samples (some matrix samples are missing from them, and they
list normal 11A samples that the matrices do not hold), so the matrix decides which samples exist
and the Target label names the project. ``TEST`` (20 PAAD) has 60,483 ids — 50 of them gencode-v22
``ENSGR…`` PAR_Y copies (all zero) — the six others 56,537: the shared ids are kept with
``on_gene_mismatch="intersect"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oncoshot import bulk
from oncoshot.sources import tcga
from oncoshot.errors import InputError

pytestmark = pytest.mark.real

TYPES = ["ACC", "CHOL", "DLBC", "KICH", "TEST", "UCS", "UVM"]
N_SAMPLES = {"ACC": 79, "CHOL": 36, "DLBC": 48, "KICH": 65, "TEST": 20, "UCS": 56, "UVM": 80}
N_SHARED = 56_537
N_KEPT = 17_921  # PROVENANCE.md: genes kept by the mean/std < 0.8 filter on log2(CPM+1)


@pytest.fixture(scope="module")
def rnasum(real_dir):
    d = real_dir / "tcga_rnasum"
    matrices, targets = {}, {}
    for t in TYPES:
        target = bulk.read_sample_table(d / f"TCGA_{t}_Target.txt.gz", "Sample_name", "Target", what="target table")
        labels = set(target.str.replace(r"\s*\(TCGA\)$", "", regex=True))
        assert len(labels) == 1, f"{t}: Target file names several types {labels}"
        project = labels.pop()
        assert project == t
        matrices[project] = d / f"TCGA_{t}_Counts.exp.gz"
        targets[project] = target
    return matrices, targets


@pytest.fixture(scope="module")
def harmonised(rnasum):
    matrices, _ = rnasum
    with pytest.warns(bulk.BulkWarning, match=r"TCGA_TEST_Counts\.exp\.gz: 3896 gene ids of project TEST"):
        return tcga.harmonise_tcga(matrices, None, unit="counts", on_gene_mismatch="intersect")


@pytest.fixture(scope="module")
def independent(rnasum):
    """log2(CPM+1) on the shared ids computed straight from the files with pandas/numpy."""
    matrices, _ = rnasum
    raw = {p: pd.read_csv(path, sep="\t", index_col=0) for p, path in matrices.items()}
    shared = sorted(set.intersection(*(set(df.index) for df in raw.values())))
    blocks = []
    for p, df in raw.items():
        c = df.loc[shared].to_numpy(dtype=np.float64)
        blocks.append(pd.DataFrame(np.log2(c / c.sum(axis=0) * 1e6 + 1).T, index=df.columns, columns=shared))
    return pd.concat(blocks)


def test_real_gene_sets_differ_and_error_by_default(rnasum):
    matrices, _ = rnasum
    with pytest.raises(InputError) as e:
        tcga.harmonise_tcga({"ACC": matrices["ACC"], "TEST": matrices["TEST"]}, None, unit="counts")
    msg = str(e.value)
    assert "TCGA_TEST_Counts.exp.gz" in msg and "project TEST" in msg and "3896 gene ids differ" in msg


def test_real_shapes_and_labels(harmonised, rnasum):
    a = harmonised
    _, targets = rnasum
    assert a.obs["project"].value_counts().to_dict() == N_SAMPLES
    assert a.n_obs == sum(N_SAMPLES.values()) == 384
    assert a.n_vars == N_SHARED
    assert a.var_names.is_monotonic_increasing and a.var_names.is_unique
    assert (a.var["symbol"] == a.var_names).all()  # no probe map: symbol = id
    # patients: the first 12 characters of the (aliquot) barcodes; report counts agree
    assert (a.obs["patient"] == a.obs_names.str[:12]).all()
    per = a.obs["patient"].value_counts()
    assert a.uns["patients"]["n_patients"] == len(per)
    assert a.uns["patients"]["n_patients_with_several_samples"] == int((per > 1).sum())
    assert set(a.obs["sample_type"]) == {"primary"} and set(a.obs["sample_code"]) == {"01"}
    assert a.obs["cancer_type"].equals(a.obs["project"])
    # the Target files agree on the type of every sample they share with the matrices
    for p, target in targets.items():
        obs = a.obs[a.obs["project"] == p]
        common = obs.index.intersection(target.index)
        assert len(common) >= 0.8 * len(obs)
        assert (target[common].str.replace(" (TCGA)", "", regex=False) == p).all()
    assert a.uns["unit"] == "log2(CPM+1)" and a.uns["source_unit"] == "counts"
    assert a.uns["n_par_y_dropped"]["TEST"] == 50  # ENSGR… rows, all zero
    assert a.uns["n_genes_dropped_mismatch"] == {p: (3896 if p == "TEST" else 0) for p in TYPES}
    assert all(v == 0 for v in a.uns["n_dropped_non_primary"].values())


def test_real_values_are_log2_cpm1(harmonised, independent):
    a = harmonised
    X = np.asarray(a.X, dtype=np.float64)
    assert a.X.dtype == np.float32 and X.min() >= 0
    np.testing.assert_allclose((2 ** X - 1).sum(axis=1), 1e6, rtol=1e-4)
    ref = independent.loc[a.obs_names, a.var_names].to_numpy()
    np.testing.assert_allclose(X, ref, rtol=1e-6, atol=1e-5)


def test_real_gene_filter(harmonised, independent):
    filtered, kept, counts = bulk.filter_genes({"tcga": harmonised}, threshold=0.8)
    assert len(kept) == N_KEPT
    assert counts.to_dict("records") == [{"cohort": "tcga", "n_genes_in": N_SHARED, "n_kept": N_KEPT}]
    X = independent.to_numpy()
    mean, sd = X.mean(axis=0), X.std(axis=0)  # population sd (ddof=0)
    ref = independent.columns[~((mean < 0.8) & (sd < 0.8))]
    assert len(ref) == N_KEPT
    assert kept["gene_id"].tolist() == sorted(ref)
    assert filtered["tcga"].var_names.tolist() == kept["gene_id"].tolist()
    assert filtered["tcga"].shape == (384, N_KEPT)
