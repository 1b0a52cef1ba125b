"""oncoshot.sources.threeca on hand-written fixtures shaped like the real 3CA files
(``docs/REAL_FORMATS.md``, section 3CA): every layout, the file-name variants, quoted genes, the
sample metadata with its real normal markers, and the archives as 3CA serves them. The fixtures are
written here, independently of the demo generator; expected values are computed with numpy."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oncoshot.download import safe_extract
from oncoshot.errors import InputError
from oncoshot.singlecell import SingleCellWarning, qc_cells
from oncoshot.sources.threeca import find_layout, parse_study_folder, read_cells, read_genes, read_study

MARKERS = {"source": ["Normal"], "cancer_type": ["Normal"], "sample_primary_met": ["Normal"]}


def mtx_text(dense: np.ndarray, field: str = "integer") -> str:
    """genes × cells Matrix Market coordinate text, written by hand (entries column by column)."""
    rows, cols = np.nonzero(dense)
    order = np.lexsort((rows, cols))
    fmt = (lambda v: str(int(v))) if field == "integer" else (lambda v: f"{v:.6g}")
    body = [f"{rows[k] + 1} {cols[k] + 1} {fmt(dense[rows[k], cols[k]])}" for k in order]
    return "\n".join([f"%%MatrixMarket matrix coordinate {field} general", "%", f"{dense.shape[0]} {dense.shape[1]} {len(rows)}", *body]) + "\n"


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return folder


# --- Kim2020_Lung-like: flat, Exp_data_UMIcounts.mtx, Meta-data_<Study>.csv in the metadata archive
KIM_GENES = ["MT-ND1", "TP53", "MT-CO1", "EGFR", "KRT19", "PTPRC"]
KIM_COUNTS = np.array([  # genes × cells
    [3, 0, 1, 0, 6, 0, 2, 0],
    [1, 2, 0, 4, 1, 0, 0, 5],
    [0, 1, 0, 0, 4, 2, 0, 0],
    [5, 0, 2, 1, 0, 3, 1, 2],
    [2, 4, 0, 3, 1, 0, 7, 1],
    [0, 0, 6, 0, 0, 1, 0, 0],
])
KIM_CELLS = [
    ("AAACCTGAGCTGCCCA_LUNG_T06", "LUNG_T06", "Malignant"),
    ("AAACCTGCAGCGTAAG_LUNG_T06", "LUNG_T06", "Malignant"),
    ("AAACGGGTCTTGTACT_LUNG_T06", "LUNG_T06", "T_cell"),
    ("AAAGATGCATCGGACC_LUNG_N06", "LUNG_N06", "Epithelial"),
    ("AAAGCAATCCTCATTA_LUNG_N06", "LUNG_N06", ""),
    ("AACACGTTCTGCGTAA_LUNG_N08", "LUNG_N08", "Epithelial"),
    ("AACCATGGTTCCACGG_LUNG_T08", "LUNG_T08", "Malignant"),
    ("AACTCAGCAAGCGAGT_LUNG_N09", "LUNG_N09", "Fibroblast"),
]
KIM_CELLS_CSV = "cell_name,sample,cell_type,cell_subtype,umap1\n" + "".join(
    f"{n},{s},{t},{t}-sub,{i * 0.5:.1f}\n" for i, (n, s, t) in enumerate(KIM_CELLS))
# normals marked the real way: source / cancer_type / sample_primary_met = Normal; no sample_type
KIM_META = (
    "sample,patient,technology,sample_primary_met,source,cancer_type\n"
    "LUNG_T06,P0006,10x,primary,Tumor,Lung Adenocarcinoma\n"
    "LUNG_N06,P0006,10x,primary,Normal,Normal\n"
    "LUNG_N08,P0008,10x,primary,Tumor,normal \n"   # cancer_type only, lower case, trailing space
    "LUNG_T08,P0008,10x,primary,Tumor,Lung Adenocarcinoma\n"
    "LUNG_N09,P0009,10x,Normal,Tumor,Lung Adenocarcinoma\n"  # sample_primary_met only
)
KIM_NORMAL = {"LUNG_N06", "LUNG_N08", "LUNG_N09"}


def kim_study(root: Path, name: str = "Data_Kim2020_Lung", meta: bool = True) -> Path:
    study = write(root / name, {"Exp_data_UMIcounts.mtx": mtx_text(KIM_COUNTS), "Cells.csv": KIM_CELLS_CSV,
                                "Genes.txt": "\n".join(KIM_GENES) + "\n"})
    if meta:
        write(study / "metadata_archive", {"Meta-data_Kim2020_Lung.csv": KIM_META})
    return study


# --- Gao2021_Breast-like: nested one folder down (Breast/), every symbol quoted in Genes.txt
GAO_GENES = ["KRT8", "MT-ATP6", "ESR1", "MT-CYB", "GATA3"]
GAO_COUNTS = np.array([[4, 0, 2, 1], [1, 3, 0, 2], [0, 2, 5, 1], [2, 2, 1, 0], [3, 0, 1, 6]])
GAO_CELLS_CSV = ("cell_name,sample,cell_type,cell_cycle_phase\n"
                 "CID4471_AAAGCAAGTCCGAGTC,CID4471,Malignant,G1\n"
                 "CID4471_AACCGCGTCAGCTCTC,CID4471,Malignant,S\n"
                 "CID44971_AACTGGTGTGGTTTCA,CID44971,Macrophage,G1\n"
                 "CID44971_ACACCCTAGATCCGAG,CID44971,Malignant,G2M\n")


def gao_study(root: Path) -> Path:
    return write(root / "Data_Gao2021_Breast", {
        "Breast/Exp_data_UMIcounts.mtx": mtx_text(GAO_COUNTS), "Breast/Cells.csv": GAO_CELLS_CSV,
        "Breast/Genes.txt": "".join(f'"{g}"\n' for g in GAO_GENES)})


# --- Neftel2019_Brain-like, new style: SmartSeq2/ (TPM, lower-case names) and a 10x folder
SS2_GENES = ["MT-CO1", "SOX2", "OLIG2", "EGFR"]
SS2_TPM = np.array([[120.5, 0, 33.25], [0, 410.0, 12.5], [250.75, 80.0, 0], [0, 0, 999.5]])
SS2_CELLS = ("cell_name,sample,cell_type,MESlike1,NPClike1\n"
             "MGH101-P1-A04,MGH101,Malignant,0.21,-0.1\nMGH101-P1-B09,MGH101,Malignant,0.02,0.4\n"
             "MGH102-P1-C01,MGH102,Macrophage,,\n")
TENX_GENES = ["EGFR", "MT-CO1", "PDGFRA", "SOX2", "MT-ND1"]
TENX_COUNTS = np.array([[2, 0, 1, 0], [1, 3, 0, 0], [0, 4, 2, 1], [5, 0, 0, 2], [0, 1, 0, 0]])
# space-separated as R's write.table writes it (quoted fields; a cell type with a space)
TENX_CELLS = ('"cell_name" "sample" "cell_type"\n'
              '"MGH105A_AAACCTGAGACTAGAT" "MGH105" "Malignant"\n"MGH105A_AAACCTGCAATCCGAT" "MGH105" "T cell"\n'
              '"MGH105B_AAACGGGAGCTGATAA" "MGH105" "Malignant"\n"MGH124_AAAGATGCAGCCTTGG" "MGH124" "Malignant"\n')
NEFTEL_META = ("sample,patient,technology,sample_primary_met,source,cancer_type\n"
               "MGH101,MGH101,SmartSeq2,primary,Tumor,Glioblastoma\n"
               "MGH102,MGH102,SmartSeq2,primary,Tumor,Glioblastoma\n"
               "MGH105,MGH105,10x,primary,Tumor,Glioblastoma\n"
               "MGH124,MGH124,10x,primary,Tumor,Glioblastoma\n")


def neftel_new(root: Path) -> Path:
    return write(root / "Data_Neftel2019_Brain", {
        "Data_Neftel2019_Brain/SmartSeq2/exp_data_TPM.mtx": mtx_text(SS2_TPM, "real"),
        "Data_Neftel2019_Brain/SmartSeq2/Cells.csv": SS2_CELLS,
        "Data_Neftel2019_Brain/SmartSeq2/genes.txt": "\n".join(SS2_GENES) + "\n",
        "Data_Neftel2019_Brain/10X/Exp_data_UMIcounts_10X.mtx": mtx_text(TENX_COUNTS),
        "Data_Neftel2019_Brain/10X/Cells_10X.txt": TENX_CELLS,
        "Data_Neftel2019_Brain/10X/Genes_10X.txt": "\n".join(TENX_GENES) + "\n",
        "metadata_archive/Meta-data.csv": NEFTEL_META})


def neftel_old(root: Path, collide: bool = False, shared_genes: bool = False) -> Path:
    """The older copy: Group1/ (10x, _10X names, space-separated cells) and Group2/ (TPM, Cells.txt
    tab-separated)."""
    g2_names = ["MGH105A_AAACCTGAGACTAGAT", "X2", "X3"] if collide else ["MGH101-P1-A04", "MGH101-P1-B09", "MGH102-P1-C01"]
    g2_cells = "cell_name\tsample\tcell_type\n" + "".join(
        f"{n}\t{s}\tMalignant\n" for n, s in zip(g2_names, ["MGH101", "MGH101", "MGH102"]))
    files = {
        "Group1/Exp_data_UMIcounts_10X.mtx": mtx_text(TENX_COUNTS), "Group1/Cells_10X.txt": TENX_CELLS,
        "Group1/Genes_10X.txt": "\n".join(TENX_GENES) + "\n",
        "Group2/exp_data_TPM.mtx": mtx_text(SS2_TPM, "real"), "Group2/Cells.txt": g2_cells,
    }
    if shared_genes:  # the gene list above the technology folders, Group1 keeps its own
        files["Genes.txt"] = "\n".join(SS2_GENES) + "\n"
    else:
        files["Group2/Genes.txt"] = "\n".join(SS2_GENES) + "\n"
    return write(root / "Data_Neftel2019_Brain", files)


def mito_fraction(counts: np.ndarray, genes: list[str]) -> np.ndarray:
    """Independent: MT- counts / total counts per cell (genes × cells input)."""
    mt = np.array([g.startswith("MT-") for g in genes])
    total = counts.sum(axis=0)
    return np.where(total > 0, counts[mt].sum(axis=0) / np.where(total > 0, total, 1), 0.0)


# ---------------------------------------------------------------------------------------------
# layouts


def test_parse_study_folder_real_names():
    assert parse_study_folder("/x/Data_Kim2020_Lung") == ("Kim2020_Lung", "Lung")
    assert parse_study_folder("Data_Cillo2020_Head and Neck/") == ("Cillo2020_Head and Neck", "Head and Neck")
    assert parse_study_folder("Data_Zhang2019_Liver-Biliary") == ("Zhang2019_Liver-Biliary", "Liver-Biliary")
    assert parse_study_folder("Data_Kürten2021_Head and Neck")[1] == "Head and Neck"
    assert parse_study_folder("Lonely") == ("Lonely", "Lonely")


def test_flat_kim2020_with_metadata_and_real_normal_markers(tmp_path):
    study = kim_study(tmp_path)
    layout = find_layout(study)
    assert layout.kind == "flat" and layout.names == ["all"]
    assert layout.metadata == study / "metadata_archive" / "Meta-data_Kim2020_Lung.csv"
    a = read_study(study)
    assert a.shape == (8, 6)
    assert list(a.obs_names) == [c[0] for c in KIM_CELLS] and list(a.var_names) == KIM_GENES
    np.testing.assert_array_equal(a.X.toarray(), KIM_COUNTS.T)
    assert a.X.dtype == np.float32 and a.uns["unit"] == "UMI" and a.uns["units"] == {"all": "UMI"}
    assert set(a.obs["technology"]) == {"all"} and set(a.obs["study"]) == {"Kim2020_Lung"}
    assert set(a.obs["tissue"]) == {"Lung"}
    assert list(a.obs["patient"]) == ["P0006"] * 5 + ["P0008", "P0008", "P0009"]
    assert list(a.obs["technology_reported"]) == ["10x"] * 8  # the metadata's column, kept aside
    assert pd.isna(a.obs["cell_type"].iloc[4]) and a.obs["umap1"].iloc[3] == "1.5"
    kept, per_cell, summary = qc_cells(a, min_genes=1, max_genes=100, max_mito_fraction=0.5, normal_markers=MARKERS)
    want_normal = np.array([s in KIM_NORMAL for _, s, _ in KIM_CELLS])
    np.testing.assert_array_equal(per_cell["is_normal"].to_numpy(), want_normal)
    np.testing.assert_allclose(per_cell["mito_fraction"].to_numpy(), mito_fraction(KIM_COUNTS, KIM_GENES))
    want_pass = ~want_normal & (mito_fraction(KIM_COUNTS, KIM_GENES) <= 0.5)
    assert list(kept.obs_names) == [c[0] for c, ok in zip(KIM_CELLS, want_pass) if ok]
    row = summary.iloc[0]
    assert len(summary) == 1 and row["technology"] == "all" and row["unit"] == "UMI"
    assert row["dropped_normal_sample"] == 4 and row["normal_samples"] == 3
    assert row["normal_filter"] == "applied: source, cancer_type, sample_primary_met"


def test_without_metadata_the_summary_says_so(tmp_path):
    a = read_study(kim_study(tmp_path, meta=False))
    assert a.uns["metadata"] == ""
    with pytest.warns(SingleCellWarning, match=r"Kim2020_Lung: normal-sample filter not applied \(no metadata"):
        _, per_cell, summary = qc_cells(a, min_genes=1, normal_markers=MARKERS)
    assert not per_cell["is_normal"].any()
    assert summary["normal_filter"].tolist() == ["no metadata"] and summary["dropped_normal_sample"].tolist() == [0]


def test_metadata_without_a_normal_column_says_so(tmp_path):
    study = kim_study(tmp_path, meta=False)
    write(study, {"Samples.csv": "sample,patient\nLUNG_T06,P6\nLUNG_N06,P6\nLUNG_N08,P8\nLUNG_T08,P8\nLUNG_N09,P9\n"})
    a = read_study(study)
    assert a.uns["metadata"].endswith("Samples.csv") and a.obs["patient"].iloc[-1] == "P9"
    with pytest.warns(SingleCellWarning, match=r"no normal column: none of the columns \['source'"):
        _, _, summary = qc_cells(a, min_genes=1, normal_markers=MARKERS)
    assert summary["normal_filter"].tolist() == ["no normal column"]


def test_meta_data_wins_over_older_samples_csv(tmp_path):
    study = kim_study(tmp_path)
    write(study, {"Samples.csv": "sample,patient\nLUNG_T06,OLD\n"})
    a = read_study(study)
    assert a.uns["metadata"].endswith("Meta-data_Kim2020_Lung.csv") and a.obs["patient"].iloc[0] == "P0006"


def test_nested_gao2021_with_quoted_genes(tmp_path):
    study = gao_study(tmp_path)
    assert find_layout(study).kind == "nested"
    with pytest.warns(SingleCellWarning, match=r'5 of 5 gene symbols were quoted \(e.g. "KRT8"\)'):
        a = read_study(study)
    assert list(a.var_names) == GAO_GENES  # unquoted: MT- genes and hallmark symbols match again
    assert a.uns["n_quoted_genes"] == 5 and a.n_obs == 4
    np.testing.assert_array_equal(a.X.toarray(), GAO_COUNTS.T)
    with pytest.warns(SingleCellWarning, match="no metadata"):
        _, per_cell, summary = qc_cells(a, min_genes=1)
    expected = mito_fraction(GAO_COUNTS, GAO_GENES)
    assert (expected > 0).all()
    np.testing.assert_allclose(per_cell["mito_fraction"].to_numpy(), expected)
    assert summary["normal_filter"].tolist() == ["no metadata"]


def test_multi_technology_new_style(tmp_path):
    study = neftel_new(tmp_path)
    layout = find_layout(study)
    assert layout.kind == "multi-technology" and layout.names == ["10X", "SmartSeq2"]
    with pytest.warns(SingleCellWarning) as rec:
        a = read_study(study)
    msgs = [str(r.message) for r in rec]
    union = ["EGFR", "MT-CO1", "PDGFRA", "SOX2", "MT-ND1", "OLIG2"]  # 10X first (sorted folders), then new ones
    assert list(a.var_names) == union
    assert any("technology '10X' lacks 1 of the study's 6 genes" in m for m in msgs)
    assert any("technology 'SmartSeq2' lacks 2 of the study's 6 genes" in m for m in msgs)
    assert a.shape == (7, 6)
    assert a.obs["technology"].tolist() == ["10X"] * 4 + ["SmartSeq2"] * 3
    assert a.uns["units"] == {"10X": "UMI", "SmartSeq2": "TPM"} and a.uns["unit"] == "mixed"
    assert a.uns["genes_missing"] == {"10X": 1, "SmartSeq2": 2}
    assert a.obs["cell_type"].tolist()[:2] == ["Malignant", "T cell"]  # quoted, space-separated
    # independent expected matrix: each technology's values placed by symbol, 0 where not measured
    expected = np.zeros((7, 6))
    for j, g in enumerate(TENX_GENES):
        expected[:4, union.index(g)] = TENX_COUNTS[j]
    for j, g in enumerate(SS2_GENES):
        expected[4:, union.index(g)] = SS2_TPM[j]
    np.testing.assert_allclose(a.X.toarray(), expected, rtol=1e-6)
    assert a.obs["technology_reported"].tolist() == ["10x"] * 4 + ["SmartSeq2"] * 3
    _, per_cell, summary = qc_cells(a, min_genes=1, normal_markers=MARKERS)
    assert summary[["technology", "unit", "n_cells"]].values.tolist() == [["10X", "UMI", 4], ["SmartSeq2", "TPM", 3]]
    assert set(summary["normal_filter"]) == {"applied: source, cancer_type, sample_primary_met"}
    mf = np.concatenate([mito_fraction(TENX_COUNTS, TENX_GENES), mito_fraction(SS2_TPM, SS2_GENES)])
    np.testing.assert_allclose(per_cell["mito_fraction"].to_numpy(), mf, rtol=1e-6)


def test_technologies_key_picks_and_rejects(tmp_path):
    study = neftel_new(tmp_path)
    a = read_study(study, technologies=["SmartSeq2"])
    assert a.n_obs == 3 and list(a.var_names) == SS2_GENES and a.uns["unit"] == "TPM"
    assert a.uns["technologies"] == ["SmartSeq2"]
    with pytest.raises(InputError, match=r"\['Fluidigm'\] not in the study; technologies present: \['10X', 'SmartSeq2'\]") as err:
        read_study(study, technologies=["Fluidigm"])
    assert str(study) in str(err.value)


def test_multi_technology_old_style(tmp_path):
    study = neftel_old(tmp_path)
    assert find_layout(study).names == ["Group1", "Group2"]
    with pytest.warns(SingleCellWarning, match="lacks"):
        a = read_study(study)
    assert a.obs["technology"].value_counts().to_dict() == {"Group1": 4, "Group2": 3}
    assert a.uns["units"] == {"Group1": "UMI", "Group2": "TPM"}
    assert a.obs.loc["MGH102-P1-C01", "sample"] == "MGH102"  # tab-separated Cells.txt


def test_shared_gene_list_above_the_technologies(tmp_path):
    study = neftel_old(tmp_path, shared_genes=True)
    layout = find_layout(study)
    assert [t.genes.name for t in layout.technologies] == ["Genes_10X.txt", "Genes.txt"]
    with pytest.warns(SingleCellWarning):
        assert read_study(study).n_obs == 7


def test_cell_names_colliding_across_technologies_are_prefixed(tmp_path):
    study = neftel_old(tmp_path, collide=True)
    with pytest.warns(SingleCellWarning) as rec:
        a = read_study(study)
    assert any("1 cell name(s) occur in more than one technology" in str(r.message) for r in rec)
    assert a.obs_names.is_unique and a.n_obs == 7
    assert "Group1:MGH105A_AAACCTGAGACTAGAT" in a.obs_names and "Group2:MGH105A_AAACCTGAGACTAGAT" in a.obs_names


def test_normalized_tpm_and_gzipped_variants(tmp_path):
    import gzip

    study = write(tmp_path / "Data_Darmanis2017_Brain", {
        "normalized_Exp_data_TPM.mtx": mtx_text(SS2_TPM, "real"), "Cells.csv": SS2_CELLS,
        "Genes.txt": "\n".join(SS2_GENES) + "\n"})
    a = read_study(study)
    assert a.uns["unit"] == "TPM" and a.shape == (3, 4)
    (study / "normalized_Exp_data_TPM.mtx").unlink()
    (study / "EXP_DATA_TPM.MTX.GZ").write_bytes(gzip.compress(mtx_text(SS2_TPM, "real").encode()))
    b = read_study(study)
    np.testing.assert_allclose(b.X.toarray(), SS2_TPM.T, rtol=1e-6)


def test_r_row_names_in_cells_txt(tmp_path):
    path = write(tmp_path, {"Cells.txt": '"cell_name" "sample" "cell_type"\n"1" "c1" "S1" "Malignant"\n"2" "c2" "S1" ""\n'})
    cells = read_cells(path / "Cells.txt")
    assert cells["cell_name"].tolist() == ["c1", "c2"] and list(cells.columns) == ["cell_name", "sample", "cell_type"]


# ---------------------------------------------------------------------------------------------
# archives as 3CA serves them, through safe_extract


def tar_with_root(src, arc, top):
    """``arc``: a tar.gz of the files under ``src`` in folder ``top/``, led by a ``/`` root member
    (as folder downloads carry)."""
    with tarfile.open(arc, "w:gz") as tf:
        root = tarfile.TarInfo("/")
        root.type = tarfile.DIRTYPE
        tf.addfile(root)
        for p in sorted(src.rglob("*")):
            if p.is_file():
                tf.add(p, arcname=f"{top}/{p.relative_to(src).as_posix()}")


def test_tar_gz_with_root_member_reads(tmp_path):
    src = kim_study(tmp_path / "src")
    arc = tmp_path / "Data_Kim2020_Lung.tar.gz"
    tar_with_root(src, arc, "Data_Kim2020_Lung")
    out = tmp_path / "raw" / "Data_Kim2020_Lung"
    safe_extract(arc, out)
    a = read_study(out, study="Data_Kim2020_Lung")
    assert a.n_obs == 8 and set(a.obs["study"]) == {"Data_Kim2020_Lung"}
    assert a.obs["source"].tolist()[3] == "Normal"


def test_zip_named_tar_gz_reads(tmp_path):
    src = gao_study(tmp_path / "src")
    arc = tmp_path / "Data_Gao2021_Breast.tar.gz"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("/", b"")
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, arcname=p.relative_to(src).as_posix())
    out = tmp_path / "raw" / "Data_Gao2021_Breast"
    safe_extract(arc, out)
    with pytest.warns(SingleCellWarning, match="quoted"):
        a = read_study(out)
    assert a.n_obs == 4 and "MT-ATP6" in a.var_names


# ---------------------------------------------------------------------------------------------
# bad inputs: one InputError naming the file (or folder) and the problem


def test_two_matrices_in_one_folder(tmp_path):
    study = kim_study(tmp_path, meta=False)
    (study / "Exp_data_TPM.mtx").write_text(mtx_text(KIM_COUNTS))
    with pytest.raises(InputError) as err:
        read_study(study)
    msg = str(err.value)
    assert str(study) in msg and "2 expression matrix" in msg
    assert "Exp_data_TPM.mtx" in msg and "Exp_data_UMIcounts.mtx" in msg and "Cells.csv" in msg


@pytest.mark.parametrize("missing, problem", [("Exp_data_UMIcounts.mtx", "no expression matrix"),
                                              ("Cells.csv", "no cell table"), ("Genes.txt", "no gene list")])
def test_missing_file(tmp_path, missing, problem):
    study = kim_study(tmp_path, meta=False)
    (study / missing).unlink()
    with pytest.raises(InputError, match=problem) as err:
        read_study(study)
    assert str(study) in str(err.value)


def test_no_study_files_and_missing_folder(tmp_path):
    write(tmp_path / "empty", {"README.txt": "nothing here"})
    with pytest.raises(InputError, match=r"no 3CA study files found.*files seen: 'README.txt'"):
        read_study(tmp_path / "empty")
    with pytest.raises(InputError, match="study folder not found"):
        read_study(tmp_path / "Data_None2020_Lung")


def test_folders_that_are_not_siblings(tmp_path):
    study = kim_study(tmp_path, meta=False)
    write(study / "old" / "copy", {"Exp_data_UMIcounts.mtx": mtx_text(KIM_COUNTS), "Cells.csv": KIM_CELLS_CSV,
                                   "Genes.txt": "\n".join(KIM_GENES)})
    with pytest.raises(InputError, match=r"not sibling technology folders.*\['\.', 'old/copy'\]"):
        read_study(study)


def test_two_different_metadata_tables(tmp_path):
    study = kim_study(tmp_path)
    write(study, {"Meta-data.csv": "sample,source\nLUNG_T06,Tumor\n"})
    with pytest.raises(InputError, match=r"2 different sample-metadata tables") as err:
        read_study(study)
    assert "Meta-data.csv" in str(err.value) and "Meta-data_Kim2020_Lung.csv" in str(err.value)


@pytest.mark.filterwarnings("ignore::oncoshot.singlecell.SingleCellWarning")
@pytest.mark.parametrize("change, file, match", [
    (("Genes.txt", "\n".join(KIM_GENES[:5]) + "\n"), "Exp_data_UMIcounts.mtx", "6 rows but 5 genes in Genes.txt"),
    (("Cells.csv", KIM_CELLS_CSV.rsplit("AACTCAGC", 1)[0]), "Exp_data_UMIcounts.mtx", "8 columns but 7 cells in Cells.csv"),
    (("Cells.csv", KIM_CELLS_CSV.replace("cell_type", "celltype")), "Cells.csv", "column 'cell_type': missing"),
    (("Cells.csv", KIM_CELLS_CSV.replace("AAACCTGCAGCGTAAG", "AAACCTGAGCTGCCCA")), "Cells.csv", "duplicated cell name"),
    (("Cells.csv", KIM_CELLS_CSV.replace(",LUNG_T08,", ",,")), "Cells.csv", "empty sample"),
    (("Genes.txt", "MT-ND1\tENSG1\nTP53\n"), "Genes.txt", "several tab-separated fields"),
    (("Genes.txt", "MT-ND1\n\nTP53\n"), "Genes.txt", "line 2: 1 empty gene symbol"),
    (("Exp_data_UMIcounts.mtx", "6 8 1\n1 1 2\n"), "Exp_data_UMIcounts.mtx", "not a Matrix Market file"),
    (("Exp_data_UMIcounts.mtx", mtx_text(KIM_COUNTS).replace("\n1 1 3\n", "\n1 1 -3\n")),
     "Exp_data_UMIcounts.mtx", "1 negative value"),
    (("metadata_archive/Meta-data_Kim2020_Lung.csv", KIM_META + "LUNG_T06,P0099,10x,primary,Tumor,x\n"),
     "Meta-data_Kim2020_Lung.csv", r"listed more than once with different values, e.g. 'LUNG_T06' \(columns that differ: \['patient', 'cancer_type'\]\)"),
    (("metadata_archive/Meta-data_Kim2020_Lung.csv", "patient,source\nP1,Normal\n"), "Meta-data_Kim2020_Lung.csv",
     "column 'sample': missing"),
])
def test_bad_inputs_name_file_and_problem(tmp_path, change, file, match):
    study = kim_study(tmp_path)
    name, text = change
    (study / name).write_text(text)
    with pytest.raises(InputError, match=match) as err:
        read_study(study)
    assert file in str(err.value)


def test_identical_metadata_rows_are_kept_once(tmp_path):
    study = kim_study(tmp_path)
    (study / "metadata_archive" / "Meta-data_Kim2020_Lung.csv").write_text(KIM_META + KIM_META.splitlines()[1] + "\n")
    assert read_study(study).obs["patient"].iloc[0] == "P0006"


def test_read_genes_counts_quotes(tmp_path):
    p = tmp_path / "Genes.txt"
    p.write_text('"A"\nB\n\'C\'\n\n')
    with pytest.warns(SingleCellWarning, match="2 of 3 gene symbols were quoted"):
        assert read_genes(p) == (["A", "B", "C"], 2)
    p.write_text("A\nB\n")
    assert read_genes(p) == (["A", "B"], 0)


def test_bytes_io_helper_is_matrix_market():
    import scipy.io

    m = scipy.io.mmread(io.BytesIO(mtx_text(KIM_COUNTS).encode()))
    np.testing.assert_array_equal(m.toarray(), KIM_COUNTS)
