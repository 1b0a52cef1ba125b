"""oncoshot.singlecell (cell QC, SPEC §3.2) and the basic 3CA reader cases of oncoshot.sources.threeca
(SPEC §3.1) on hand-made data; the real-format layouts are in test_threeca.py."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from oncoshot.errors import InputError
from oncoshot.singlecell import SingleCellWarning, mito_mask, qc_cells
from oncoshot.sources.threeca import parse_study_folder, read_study

# genes × cells, as 3CA ships it
COUNTS = np.array(
    [
        [1, 0, 3, 0],  # GA
        [0, 2, 0, 0],  # MT-CO1
        [4, 0, 0, 1],  # GB
        [0, 5, 1, 0],  # GA again (summed into GA)
        [2, 2, 2, 2],  # GC
    ],
    dtype=float,
)
GENES = ["GA", "MT-CO1", "GB", "GA", "GC"]
CELLS = (
    "cell_name,sample,cell_type,n_extra\n"
    "c1,S1,Malignant,10\n"
    "c2,S1,T cell,11\n"
    "c3,S2,Malignant,12\n"
    "c4,S3,Fibroblast,13\n"
)
SAMPLES = "sample,patient,sample_type\nS1,P1,Tumour\nS2,P2,Normal\nS3,P2,tumour\n"


def make_study(root: Path, name="Data_Smith2020_Breast", counts=COUNTS, genes=GENES, cells=CELLS,
               samples=SAMPLES, mtx_name="Exp_data_UMIcounts.mtx") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    scipy.io.mmwrite(folder / mtx_name, sp.coo_matrix(counts))
    (folder / "Genes.txt").write_text("\n".join(genes) + "\n")
    (folder / "Cells.csv").write_text(cells)
    if samples is not None:
        (folder / "Samples.csv").write_text(samples)
    return folder


def test_parse_study_folder():
    assert parse_study_folder("/x/Data_Smith2020_Breast") == ("Smith2020_Breast", "Breast")
    assert parse_study_folder("Data_Kim2020_Head-and-Neck/") == ("Kim2020_Head-and-Neck", "Head-and-Neck")
    assert parse_study_folder("Lonely") == ("Lonely", "Lonely")


def test_read_study_tiny_folder(tmp_path):
    folder = make_study(tmp_path)
    with pytest.warns(SingleCellWarning, match=r"1 gene symbol\(s\) occur more than once"):
        adata = read_study(folder)
    assert adata.shape == (4, 4)
    assert sp.isspmatrix_csr(adata.X) or sp.issparse(adata.X) and adata.X.format == "csr"
    assert adata.X.dtype == np.float32
    assert list(adata.obs_names) == ["c1", "c2", "c3", "c4"]
    assert list(adata.var_names) == ["GA", "MT-CO1", "GB", "GC"]
    expected = np.array([[1, 0, 4, 2], [5, 2, 0, 2], [4, 0, 0, 2], [0, 0, 1, 2]], dtype=np.float32)
    np.testing.assert_array_equal(adata.X.toarray(), expected)  # GA rows summed
    obs = adata.obs
    assert list(obs["sample"]) == ["S1", "S1", "S2", "S3"]
    assert list(obs["cell_type"]) == ["Malignant", "T cell", "Malignant", "Fibroblast"]
    assert list(obs["n_extra"]) == ["10", "11", "12", "13"]
    assert list(obs["patient"]) == ["P1", "P1", "P2", "P2"]
    assert list(obs["sample_type"]) == ["Tumour", "Tumour", "Normal", "tumour"]
    assert set(obs["study"]) == {"Smith2020_Breast"} and set(obs["tissue"]) == {"Breast"}
    assert adata.uns["unit"] == "UMI" and adata.uns["n_duplicated_genes"] == 1


def test_read_study_tpm_overrides_and_no_samples(tmp_path):
    folder = make_study(tmp_path, genes=["GA", "MT-CO1", "GB", "GD", "GC"], samples=None,
                        mtx_name="Exp_data_TPM.mtx", counts=COUNTS * 0.5)
    adata = read_study(folder, tissue="Mammary", study="S-2020")
    assert adata.uns["unit"] == "TPM"
    assert set(adata.obs["tissue"]) == {"Mammary"} and set(adata.obs["study"]) == {"S-2020"}
    np.testing.assert_allclose(adata.X.toarray(), (COUNTS * 0.5).T)
    assert "sample_type" not in adata.obs.columns


def test_read_study_samples_unmatched_and_conflicting_columns(tmp_path):
    cells = CELLS.replace("n_extra", "patient")
    folder = make_study(tmp_path, genes=["A", "B", "C", "D", "E"], cells=cells,
                        samples="sample,patient,sample_type\nS1,P1,Tumour\nS2,P2,Normal\n")
    with pytest.warns(SingleCellWarning, match=r"1 sample\(s\) of the cell table not listed"):
        adata = read_study(folder)
    assert list(adata.obs["patient"]) == ["10", "11", "12", "13"]  # Cells.csv wins
    assert adata.obs["sample_type"].tolist()[:3] == ["Tumour", "Tumour", "Normal"]
    assert pd.isna(adata.obs["sample_type"].iloc[3])


def test_read_study_gzipped_matrix(tmp_path):
    folder = make_study(tmp_path, genes=["A", "B", "C", "D", "E"])
    mtx = folder / "Exp_data_UMIcounts.mtx"
    with open(mtx, "rb") as src, gzip.open(str(mtx) + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    mtx.unlink()
    adata = read_study(folder)
    np.testing.assert_array_equal(adata.X.toarray(), COUNTS.T)


@pytest.mark.filterwarnings("ignore::oncoshot.singlecell.SingleCellWarning")
@pytest.mark.parametrize(
    "change, match",
    [
        ({"genes": GENES[:4]}, "5 rows but 4 genes"),
        ({"cells": CELLS.rsplit("c4", 1)[0]}, "4 columns but 3 cells"),
        ({"cells": CELLS.replace("c4,", "c1,")}, "duplicated cell name"),
        ({"cells": CELLS.replace("cell_type", "celltype")}, r"Cells.csv: column 'cell_type': missing"),
        ({"cells": CELLS.replace("sample,", "smp,", 1)}, r"Cells.csv: column 'sample': missing"),
        ({"counts": np.where(COUNTS == 5, -5, COUNTS)}, "1 negative value"),
        ({"counts": np.where(COUNTS == 5, np.nan, COUNTS)}, "1 non-finite value"),
        ({"samples": "patient\nP1\n"}, r"Samples.csv: column 'sample': missing"),
        ({"samples": SAMPLES + "S1,P9,Tumour\n"}, r"Samples.csv: sample: 1 sample\(s\) listed more than once"),
    ],
)
def test_read_study_errors(tmp_path, change, match):
    folder = make_study(tmp_path, **change)
    with pytest.raises(InputError, match=match):
        read_study(folder)


@pytest.mark.filterwarnings("ignore::oncoshot.singlecell.SingleCellWarning")
@pytest.mark.parametrize("missing, what", [("Exp_data_UMIcounts.mtx", "no expression matrix"),
                                           ("Cells.csv", "no cell table"), ("Genes.txt", "no gene list")])
def test_read_study_missing_files(tmp_path, missing, what):
    folder = make_study(tmp_path)
    (folder / missing).unlink()
    with pytest.raises(InputError, match=what) as info:
        read_study(folder)
    assert str(folder) in str(info.value) and missing not in str(info.value).split("files in the folder")[-1]


def test_read_study_missing_folder(tmp_path):
    with pytest.raises(InputError, match="study folder not found"):
        read_study(tmp_path / "Data_None2020_Lung")


# ---------------------------------------------------------------------------------------------
# QC
# ---------------------------------------------------------------------------------------------


def qc_example():
    """8 cells × 300 genes built so that each cell tests one rule (thresholds scaled down)."""
    import anndata as ad

    n_genes = 300
    genes = [f"G{i}" for i in range(n_genes - 2)] + ["MT-ND1", "mt-co2"]
    X = np.zeros((8, n_genes), dtype=np.float32)
    X[0, :100] = 1  # 100 genes, no MT: kept
    X[1, :49] = 1  # 49 genes < min 50: low_genes
    X[2, :50] = 1  # exactly 50: kept
    X[3, :121] = 1  # 121 > max 120: high_genes
    X[4, :120] = 1  # exactly 120: kept
    X[5, :98] = 1
    X[5, 298] = 18  # MT 18/116 = 0.155 > 0.15: high_mito
    X[6, :102] = 1
    X[6, 298:300] = [10, 8]  # MT 18/120 = 0.15 exactly: kept (≤)
    X[7, :100] = 1  # would pass but normal sample
    obs = pd.DataFrame(
        {
            "sample": ["S1"] * 4 + ["S2"] * 3 + ["S3"],
            "study": ["A"] * 4 + ["B"] * 4,
            "sample_type": ["Tumour"] * 7 + [" NORMAL "],
        },
        index=[f"c{i}" for i in range(8)],
    )
    return ad.AnnData(X=sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=genes))


def test_mito_mask_is_case_insensitive():
    assert mito_mask(["MT-ND1", "mt-co2", "Mt-X", "MTOR", "AMT-1"]).tolist() == [True, True, True, False, False]


def test_qc_keeps_exactly_the_right_cells():
    adata = qc_example()
    kept, per_cell, summary = qc_cells(adata, max_mito_fraction=0.15, min_genes=50, max_genes=120,
                                       normal_markers={"sample_type": ["normal"]})
    assert list(kept.obs_names) == ["c0", "c2", "c4", "c6"]
    assert per_cell.loc["c1", "reason"] == "low_genes"
    assert per_cell.loc["c3", "reason"] == "high_genes"
    assert per_cell.loc["c5", "reason"] == "high_mito"
    assert per_cell.loc["c7", "reason"] == "normal_sample"
    assert per_cell.loc["c0", "reason"] == ""
    assert per_cell["n_genes"].tolist() == [100, 49, 50, 121, 120, 99, 104, 100]
    assert per_cell.loc["c5", "mito_fraction"] == pytest.approx(18 / 116)
    assert per_cell.loc["c6", "mito_fraction"] == 0.15
    assert summary["technology"].tolist() == ["all", "all"]
    summary = summary.set_index("study").drop(columns=["technology", "unit"])
    assert summary.loc["A"].to_dict() == {
        "n_cells": 4, "kept": 2, "dropped": 2, "dropped_normal_sample": 0, "dropped_high_mito": 0,
        "dropped_low_genes": 1, "dropped_high_genes": 1, "normal_samples": 0, "normal_filter": "applied: sample_type",
    }
    assert summary.loc["B"].to_dict() == {
        "n_cells": 4, "kept": 2, "dropped": 2, "dropped_normal_sample": 1, "dropped_high_mito": 1,
        "dropped_low_genes": 0, "dropped_high_genes": 0, "normal_samples": 1, "normal_filter": "applied: sample_type",
    }
    np.testing.assert_array_equal(kept.X.toarray(), adata.X.toarray()[[0, 2, 4, 6]])


def test_qc_defaults_and_multiple_reasons():
    adata = qc_example()
    # defaults 200 / 6000: every cell has too few genes
    kept, per_cell, _ = qc_cells(adata, normal_markers={"sample_type": ["normal"]})
    assert kept.n_obs == 0
    assert per_cell.loc["c7", "reason"] == "normal_sample;low_genes"
    assert per_cell.loc["c5", "reason"] == "high_mito;low_genes"
    # the default markers are the real 3CA columns: a sample_type column is not one of them, and
    # the summary and a warning say that the filter could not apply
    with pytest.warns(SingleCellWarning, match=r"A, B: normal-sample filter not applied \(no metadata"):
        kept, per_cell, summary = qc_cells(adata, min_genes=50, max_genes=120)
    assert "c7" in kept.obs_names and not per_cell["is_normal"].any()
    assert set(summary["normal_filter"]) == {"no metadata"}
    adata.uns["metadata"] = "Samples.csv"
    with pytest.warns(SingleCellWarning, match="no normal column"):
        _, _, summary = qc_cells(adata, min_genes=50, max_genes=120)
    assert set(summary["normal_filter"]) == {"no normal column"}


def test_qc_normal_markers_any_column_case_insensitive_and_per_technology():
    adata = qc_example()
    adata.obs["source"] = ["Tumor"] * 6 + ["normal", None]
    adata.obs["cancer_type"] = ["LUAD"] * 7 + [" NORMAL "]
    adata.obs["technology"] = ["10X"] * 2 + ["SmartSeq2"] * 6
    adata.uns["units"] = {"10X": "UMI", "SmartSeq2": "TPM"}
    _, per_cell, summary = qc_cells(adata, min_genes=50, max_genes=120)
    assert per_cell["is_normal"].tolist() == [False] * 6 + [True, True]
    assert summary[["study", "technology", "unit", "n_cells"]].values.tolist() == [
        ["A", "10X", "UMI", 2], ["A", "SmartSeq2", "TPM", 2], ["B", "SmartSeq2", "TPM", 4]]
    assert summary["dropped_normal_sample"].tolist() == [0, 0, 2]
    assert summary["normal_samples"].tolist() == [0, 0, 2]  # S2 (source) and S3 (cancer_type)
    assert set(summary["normal_filter"]) == {"applied: source, cancer_type"}


def test_select_cell_types_keeps_named_types_only():
    import anndata as ad

    from oncoshot.singlecell import select_cell_types

    obs = pd.DataFrame({"cell_type": ["Malignant", " malignant ", "T cell", "Fibroblast"]},
                       index=list("abcd"))
    a = ad.AnnData(sp.csr_matrix(np.eye(4, 3, dtype=np.float32)), obs=obs)
    kept, dropped = select_cell_types(a, "cell_type", ["Malignant"])
    assert list(kept.obs_names) == ["a", "b"] and dropped == 2
    same, none = select_cell_types(a, "cell_type", [])
    assert same.n_obs == 4 and none == 0
    with pytest.raises(InputError, match="cell-type column missing"):
        select_cell_types(a, "celltype", ["Malignant"])
