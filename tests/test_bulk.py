"""Unit tests of oncoshot.bulk and the TCGA / MET500 readers (oncoshot.sources) on hand-made tiny
files (SPEC §1). Real-format fixtures with patients: tests/test_sources_patients.py."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from oncoshot import bulk
from oncoshot.errors import InputError
from oncoshot.sources import met500, tcga

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def write_text(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode()
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def write_matrix(path: Path, first: str, samples, rows, gz: bool = False) -> Path:
    """rows: list of (gene_id, [values]) — values written with str()."""
    lines = ["\t".join([first, *samples])]
    lines += ["\t".join([g, *map(str, vals)]) for g, vals in rows]
    return write_text(path, "\n".join(lines) + "\n", gz)


def assert_names(exc: pytest.ExceptionInfo, *parts: str) -> None:
    msg = str(exc.value)
    for p in parts:
        assert p in msg, f"{p!r} not in message {msg!r}"


def no_warnings():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error", bulk.BulkWarning)
    return ctx


# ---------------------------------------------------------------------------------------------
# read_matrix
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["Ensembl_ID", "sample", ""])
@pytest.mark.parametrize("gz", [False, True])
def test_read_matrix_formats(tmp_path, first, gz):
    p = write_matrix(tmp_path / ("m.tsv.gz" if gz else "m.tsv"), first, ["S1", "S2"],
                     [("ENSG1.1", [1, 2.5]), ("NA", [0, 3])], gz=gz)
    df = bulk.read_matrix(p)
    assert list(df.columns) == ["S1", "S2"]
    assert list(df.index) == ["ENSG1.1", "NA"]  # a gene called "NA" is not NaN
    assert df.dtypes.unique().tolist() == [np.float64]
    np.testing.assert_array_equal(df.to_numpy(), [[1, 2.5], [0, 3]])


def test_read_matrix_gzip_detected_by_content(tmp_path):
    p = write_matrix(tmp_path / "m.txt", "g", ["S1"], [("G", [4])], gz=True)
    assert bulk.read_matrix(p).iloc[0, 0] == 4


def test_read_matrix_r_style_header(tmp_path):
    """R write.table header (cell names only): every header field is a sample; a row with the
    header's field count is then ragged."""
    p = write_text(tmp_path / "m.tsv", "S1\tS2\nG1\t1\t2\nG2\t3\t4\n")
    df = bulk.read_matrix(p, header_has_id_column=False)
    assert list(df.columns) == ["S1", "S2"] and list(df.index) == ["G1", "G2"]
    np.testing.assert_array_equal(df.to_numpy(), [[1, 2], [3, 4]])
    with pytest.raises(InputError, match=r"line 2 \(gene 'G1'\): ragged row: 3 fields but the header has 2"):
        bulk.read_matrix(p)  # the default: the first header field names the gene column
    p = write_text(tmp_path / "m2.tsv", "S1\tS2\nG1\t1\nG2\t3\t4\n")
    with pytest.raises(InputError, match=r"line 2 \(gene 'G1'\): ragged row: 2 fields but the header has 3"):
        bulk.read_matrix(p, header_has_id_column=False)


def test_read_matrix_crlf_and_na_cells(tmp_path):
    p = write_text(tmp_path / "m.tsv", "g\tS1\tS2\r\nG1\t1\tNA\r\nG2\t\t2\r\n")
    df = bulk.read_matrix(p)
    assert list(df.columns) == ["S1", "S2"]
    assert np.isnan(df.loc["G1", "S2"]) and np.isnan(df.loc["G2", "S1"])


def test_read_matrix_missing_file(tmp_path):
    with pytest.raises(InputError) as e:
        bulk.read_matrix(tmp_path / "nope.tsv")
    assert_names(e, "nope.tsv", "not found")


def test_read_matrix_empty_file(tmp_path):
    p = write_text(tmp_path / "empty.tsv", "")
    with pytest.raises(InputError) as e:
        bulk.read_matrix(p)
    assert_names(e, "empty.tsv", "header", "empty file")


def test_read_matrix_empty_gz(tmp_path):
    p = write_text(tmp_path / "empty.tsv.gz", "", gz=True)
    with pytest.raises(InputError) as e:
        bulk.read_matrix(p)
    assert_names(e, "empty.tsv.gz", "empty file")


def test_read_matrix_header_only(tmp_path):
    p = write_text(tmp_path / "h.tsv", "g\tS1\tS2\n")
    with pytest.raises(InputError) as e:
        bulk.read_matrix(p)
    assert_names(e, "h.tsv", "rows", "no data rows")


def test_read_matrix_no_sample_column(tmp_path):
    p = write_text(tmp_path / "h.tsv", "gene\nG1\n")
    with pytest.raises(InputError) as e:
        bulk.read_matrix(p)
    assert_names(e, "h.tsv", "header", "no sample columns")


def test_read_matrix_duplicated_samples(tmp_path):
    p = write_matrix(tmp_path / "dup.tsv", "g", ["S1", "S2", "S1", "S3", "S2"], [("G", [1, 2, 3, 4, 5])])
    with pytest.raises(InputError) as e:
        bulk.read_matrix(p)
    assert_names(e, "dup.tsv", "sample ids", "duplicated", "'S1'", "'S2'")
    assert "'S3'" not in str(e.value)


def test_read_matrix_empty_sample_id(tmp_path):
    p = write_text(tmp_path / "e.tsv", "g\tS1\t\nG\t1\t2\n")
    with pytest.raises(InputError) as e:
        bulk.read_matrix(p)
    assert_names(e, "e.tsv", "header column", "empty sample id")


def test_read_matrix_non_numeric(tmp_path):
    p = write_matrix(tmp_path / "nn.tsv", "g", ["S1", "S2"], [("G1", [1, 2]), ("G2", [3, "abc"])])
    with pytest.raises(InputError) as e:
        bulk.read_matrix(p)
    assert_names(e, "nn.tsv", "'G2'", "'S2'", "non-numeric", "'abc'")


@pytest.mark.parametrize("text,line,gene,n", [
    ("g\tS1\tS2\nG1\t1\t2\nG2\t1\n", 3, "G2", 2),          # short row
    ("g\tS1\tS2\nG1\t1\t2\nG2\t1\t2\t3\n", 3, "G2", 4),    # long row
    ("g\tS1\tS2\nG1\t1\t2\t3\nG2\t1\t2\n", 2, "G1", 4),    # long first row (pandas would take it as index)
])
def test_read_matrix_ragged(tmp_path, text, line, gene, n):
    p = write_text(tmp_path / "r.tsv", text)
    with pytest.raises(InputError) as e:
        bulk.read_matrix(p)
    assert_names(e, "r.tsv", f"line {line}", repr(gene), "ragged", f"{n} fields", "header has 3")


def test_read_matrix_empty_gene_id(tmp_path):
    p = write_text(tmp_path / "g.tsv", "g\tS1\nG1\t1\n\t2\n")
    with pytest.raises(InputError) as e:
        bulk.read_matrix(p)
    assert_names(e, "g.tsv", "line 3", "empty gene id")


# ---------------------------------------------------------------------------------------------
# gene ids, duplicates
# ---------------------------------------------------------------------------------------------


def test_strip_version():
    ids = ["ENSG00000123456.12", "ENSG00000182378.14_PAR_Y", "ENSG00000000003", "ENSG00000000005.5"]
    out = bulk.strip_version(ids)
    assert isinstance(out, np.ndarray)
    assert out.tolist() == ["ENSG00000123456", "ENSG00000182378", "ENSG00000000003", "ENSG00000000005"]
    assert bulk.strip_version(pd.Index(["ENSG1.2"])).tolist() == ["ENSG1"]


def test_is_par_y():
    ids = ["ENSG00000182378.14_PAR_Y", "ENSG00000182378.14", "ENSGR0000182378.10", "ENSG00000000003"]
    assert bulk.is_par_y(ids).tolist() == [True, False, True, False]


def _par_df():
    return pd.DataFrame({"S1": [4.0, 0.0, 0.0, 2.0, 1.0], "S2": [6.0, 0.0, 0.0, 2.0, 3.0]},
                        index=["ENSG00000182378.14", "ENSG00000182378.14_PAR_Y", "ENSGR0000002586.5",
                               "ENSG00000002586.19", "ENSG00000000009_PAR_Y"])


def test_harmonise_gene_ids_par_y_drop():
    out, n = bulk.harmonise_gene_ids(_par_df(), "m.tsv", par_y="drop")
    assert n == 2  # both nomenclatures (v36 _PAR_Y, v22/v23 ENSGR) dropped when the X copy exists
    assert out.index.tolist() == ["ENSG00000182378", "ENSG00000002586", "ENSG00000000009"]
    assert out.loc["ENSG00000182378", "S1"] == 4.0  # X copy untouched (not averaged with zeros)


def test_harmonise_gene_ids_par_y_mean():
    out, n = bulk.harmonise_gene_ids(_par_df(), "m.tsv", par_y="mean")
    assert n == 0
    with pytest.warns(bulk.BulkWarning, match=r"m\.tsv: 2 gene ids occur more than once \(4 rows\)"):
        col, nd = bulk.collapse_duplicates(out, "m.tsv")
    assert nd == 2
    assert col.loc["ENSG00000182378"].tolist() == [2.0, 3.0]
    assert col.loc["ENSG00000002586"].tolist() == [1.0, 1.0]


def test_harmonise_gene_ids_bad_option():
    with pytest.raises(InputError) as e:
        bulk.harmonise_gene_ids(_par_df(), "m.tsv", par_y="sum")
    assert_names(e, "m.tsv", "par_y", "unknown option")


def test_collapse_duplicates_mean_and_order():
    df = pd.DataFrame({"S1": [1.0, 5.0, 3.0, 7.0, 2.0], "S2": [0.0, 1.0, 2.0, 3.0, np.nan]},
                      index=["A", "B", "A", "C", "B"])
    with pytest.warns(bulk.BulkWarning) as rec:
        out, n = bulk.collapse_duplicates(df, "src.tsv")
    assert n == 2
    msg = str(rec[0].message)
    assert "src.tsv" in msg and "2 gene ids" in msg
    assert out.index.tolist() == ["A", "B", "C"]
    assert out.loc["A"].tolist() == [2.0, 1.0]
    assert out.loc["B", "S1"] == 3.5
    assert np.isnan(out.loc["B", "S2"])  # a NaN in a duplicate stays visible
    assert out.loc["C"].tolist() == [7.0, 3.0]


def test_collapse_duplicates_none():
    df = pd.DataFrame({"S1": [1.0, 2.0]}, index=["A", "B"])
    ctx = no_warnings()
    try:
        out, n = bulk.collapse_duplicates(df, "src.tsv")
    finally:
        ctx.__exit__(None, None, None)
    assert n == 0 and out.equals(df)


# ---------------------------------------------------------------------------------------------
# units
# ---------------------------------------------------------------------------------------------


def _df(values, genes=None, samples=None):
    values = np.asarray(values, dtype=float)
    genes = genes or [f"G{i}" for i in range(values.shape[0])]
    samples = samples or [f"S{j}" for j in range(values.shape[1])]
    return pd.DataFrame(values, index=genes, columns=samples)


def test_unit_log2_fpkm1_identity():
    df = _df([[0.0, 1.5], [3.2, 10.0]])
    out, unit = bulk.to_log2_fpkm1(df, "log2_fpkm1", "x.tsv")
    assert unit == "log2(FPKM+1)"
    np.testing.assert_array_equal(out.to_numpy(), df.to_numpy())


def test_unit_log2_fpkm0001():
    x = np.array([[np.log2(0.001), 0.0, 3.0], [-9.9658, 5.5, np.log2(0.001) - 0.01]])
    out, unit = bulk.to_log2_fpkm1(_df(x), "log2_fpkm0.001", "met.tsv")
    assert unit == "log2(FPKM+1)"
    expected = [[0.0, np.log2(1 - 0.001 + 1), np.log2(8 - 0.001 + 1)],
                [0.0, np.log2(2 ** 5.5 - 0.001 + 1), 0.0]]  # rounding below log2(0.001) → clipped to 0
    np.testing.assert_allclose(out.to_numpy(), expected, rtol=0, atol=1e-12)
    assert (out.to_numpy() >= 0).all()


def test_unit_log2_fpkm0001_far_below_is_error():
    df = _df([[1.0, -12.0]], genes=["ENSG9"], samples=["A", "B"])
    with pytest.raises(InputError) as e:
        bulk.to_log2_fpkm1(df, "log2_fpkm0.001", "met.tsv")
    assert_names(e, "met.tsv", "gene 'ENSG9'", "sample 'B'", "below log2(0.001)", "negative FPKM")


def test_unit_fpkm():
    out, unit = bulk.to_log2_fpkm1(_df([[0.0, 1.0], [3.0, 1023.0]]), "fpkm", "f.tsv")
    assert unit == "log2(FPKM+1)"
    np.testing.assert_allclose(out.to_numpy(), [[0, 1], [2, 10]])


def test_unit_counts_cpm():
    counts = np.array([[10.0, 0.0], [30.0, 5.0], [60.0, 15.0]])
    out, unit = bulk.to_log2_fpkm1(_df(counts), "counts", "c.tsv")
    assert unit == "log2(CPM+1)"
    cpm = counts / counts.sum(axis=0) * 1e6
    np.testing.assert_allclose(out.to_numpy(), np.log2(cpm + 1))
    np.testing.assert_allclose((2 ** out.to_numpy() - 1).sum(axis=0), 1e6)


def test_unit_counts_zero_library():
    with pytest.raises(InputError) as e:
        bulk.to_log2_fpkm1(_df([[1.0, 0.0], [2.0, 0.0]], samples=["A", "B"]), "counts", "c.tsv")
    assert_names(e, "c.tsv", "sample 'B'", "library size")


@pytest.mark.parametrize("unit,problem", [("log2_fpkm1", "negative"), ("fpkm", "negative FPKM"),
                                          ("counts", "negative count")])
def test_unit_negative_is_error(unit, problem):
    df = _df([[1.0, 2.0], [3.0, -0.5]], genes=["ENSG1", "ENSG2"], samples=["A", "B"])
    with pytest.raises(InputError) as e:
        bulk.to_log2_fpkm1(df, unit, "neg.tsv")
    assert_names(e, "neg.tsv", "gene 'ENSG2'", "sample 'B'", problem, "-0.5")


@pytest.mark.parametrize("unit", sorted(bulk.UNITS))
def test_unit_nan_is_error(unit):
    df = _df([[1.0, np.nan], [3.0, 4.0]], genes=["ENSG1", "ENSG2"], samples=["A", "B"])
    with pytest.raises(InputError) as e:
        bulk.to_log2_fpkm1(df, unit, "nan.tsv")
    assert_names(e, "nan.tsv", "gene 'ENSG1'", "sample 'B'", "NaN")


def test_unit_inf_is_error():
    df = _df([[1.0, np.inf]], genes=["ENSG1"], samples=["A", "B"])
    with pytest.raises(InputError) as e:
        bulk.to_log2_fpkm1(df, "fpkm", "inf.tsv")
    assert_names(e, "inf.tsv", "gene 'ENSG1'", "sample 'B'", "infinite")


def test_unit_unknown():
    with pytest.raises(InputError) as e:
        bulk.to_log2_fpkm1(_df([[1.0]]), "tpm", "u.tsv")
    assert_names(e, "u.tsv", "unit", "'tpm'")


# ---------------------------------------------------------------------------------------------
# probe map, barcodes
# ---------------------------------------------------------------------------------------------

PROBEMAP = ("id\tgene\tchrom\tchromStart\tchromEnd\tstrand\n"
            "ENSG00000000003.15\tTSPAN6\tchrX\t100627108\t100639991\t-\n"
            "ENSG00000182378.14\tPLCXD1\tchrX\t1\t2\t+\n"
            "ENSG00000182378.14_PAR_Y\tPLCXD1\tchrY\t1\t2\t+\n"
            "ENSG00000000005.6\tTNMD\tchrX\t3\t4\t+\n")


def test_read_probemap(tmp_path):
    s = tcga.read_probemap(write_text(tmp_path / "pm.tsv", PROBEMAP))
    assert s.to_dict() == {"ENSG00000000003": "TSPAN6", "ENSG00000182378": "PLCXD1", "ENSG00000000005": "TNMD"}


def test_read_probemap_missing_column(tmp_path):
    p = write_text(tmp_path / "pm.tsv", "id\tsymbol\nENSG1\tA\n")
    with pytest.raises(InputError) as e:
        tcga.read_probemap(p)
    assert_names(e, "pm.tsv", "column 'gene'", "missing")


def test_read_probemap_empty(tmp_path):
    with pytest.raises(InputError) as e:
        tcga.read_probemap(write_text(tmp_path / "pm.tsv", ""))
    assert_names(e, "pm.tsv", "empty")


def test_sample_code_and_is_primary():
    assert tcga.sample_code("TCGA-OR-A5J1-01A") == "01"
    assert tcga.sample_code("TCGA-OR-A5J1-11A-11R-A29S-07") == "11"
    assert tcga.is_primary("TCGA-OR-A5J1-01A", "ACC")
    assert tcga.is_primary("TCGA-OR-A5J1-01B-11R-A29S-07", "ACC")
    assert not tcga.is_primary("TCGA-OR-A5J1-06A", "ACC")
    assert not tcga.is_primary("TCGA-OR-A5J1-11A", "ACC")
    assert not tcga.is_primary("TCGA-OR-A5J1-03A", "ACC")  # 03 only counts for blood cancers
    assert tcga.is_primary("TCGA-AB-2802-03A", "LAML")
    assert not tcga.is_primary("TCGA-AB-2802-11A", "LAML")
    assert tcga.is_primary("TCGA-AB-2802-09A", "LAML", blood_codes=("03", "09"))
    assert tcga.is_primary("TCGA-OR-A5J1-06A", "SKCM", primary_codes=("01", "06"))


def test_sample_code_bad_barcode():
    with pytest.raises(InputError) as e:
        tcga.sample_code("GTEX-1234", source="m.tsv")
    assert_names(e, "m.tsv", "sample 'GTEX-1234'", "not a TCGA barcode")


# ---------------------------------------------------------------------------------------------
# harmonise_tcga
# ---------------------------------------------------------------------------------------------

ACC_SAMPLES = ["TCGA-OR-A5J1-01A", "TCGA-OR-A5J2-01A", "TCGA-OR-A5J3-06A", "TCGA-OR-A5J4-11A"]
LAML_SAMPLES = ["TCGA-AB-2802-03A", "TCGA-AB-2803-03A", "TCGA-AB-2804-11A"]


def _tcga_files(tmp_path, acc_extra_gene=False, laml_samples=LAML_SAMPLES):
    acc_rows = [
        ("ENSG00000000005.6", [0.5, 1.0, 2.0, 3.0]),
        ("ENSG00000000003.15", [1.0, 2.0, 3.0, 4.0]),
        ("ENSG00000182378.14", [5.0, 6.0, 7.0, 8.0]),
        ("ENSG00000182378.14_PAR_Y", [0.0, 0.0, 0.0, 0.0]),
        ("ENSG00000000009.1", [1.0, 1.0, 1.0, 1.0]),
        ("ENSG00000000009.2", [3.0, 5.0, 1.0, 1.0]),  # duplicate after version stripping
    ]
    if acc_extra_gene:
        acc_rows.append(("ENSG00000999999.1", [1, 1, 1, 1]))
    laml_rows = [
        ("ENSG00000000003.15", [0.1, 0.2, 0.3]),
        ("ENSG00000000005.6", [1.1, 1.2, 1.3]),
        ("ENSG00000182378.14", [2.1, 2.2, 2.3]),
        ("ENSG00000182378.14_PAR_Y", [0, 0, 0]),
        ("ENSG00000000009.2", [4.0, 4.0, 4.0]),
    ]
    acc = write_matrix(tmp_path / "TCGA-ACC.star_fpkm.tsv.gz", "Ensembl_ID", ACC_SAMPLES, acc_rows, gz=True)
    laml = write_matrix(tmp_path / "TCGA-LAML.star_fpkm.tsv.gz", "Ensembl_ID", list(laml_samples), laml_rows, gz=True)
    pm = write_text(tmp_path / "probemap.tsv", PROBEMAP)
    return {"ACC": acc, "LAML": laml}, pm


def test_harmonise_tcga(tmp_path):
    matrices, pm = _tcga_files(tmp_path)
    with pytest.warns(bulk.BulkWarning) as rec:
        a = tcga.harmonise_tcga(matrices, pm)
    msgs = " | ".join(str(r.message) for r in rec)
    assert "TCGA-ACC.star_fpkm.tsv.gz: 1 gene ids occur more than once" in msgs
    assert "2 non-primary sample(s) of ACC dropped" in msgs and "06: 1" in msgs and "11: 1" in msgs
    assert a.shape == (4, 4)
    assert a.X.dtype == np.float32
    assert a.obs_names.tolist() == ["TCGA-OR-A5J1-01A", "TCGA-OR-A5J2-01A", "TCGA-AB-2802-03A", "TCGA-AB-2803-03A"]
    assert a.obs["cohort"].unique().tolist() == ["TCGA"]
    assert a.obs["project"].tolist() == ["ACC", "ACC", "LAML", "LAML"]
    assert a.obs["cancer_type"].tolist() == a.obs["project"].tolist()
    assert a.obs["sample_type"].unique().tolist() == ["primary"]
    assert a.obs["sample_code"].tolist() == ["01", "01", "03", "03"]
    genes = ["ENSG00000000003", "ENSG00000000005", "ENSG00000000009", "ENSG00000182378"]
    assert a.var_names.tolist() == genes
    # symbol from the probe map, the id where the map has none
    assert a.var["symbol"].tolist() == ["TSPAN6", "TNMD", "ENSG00000000009", "PLCXD1"]
    X = pd.DataFrame(a.X, index=a.obs_names, columns=a.var_names)
    assert X.loc["TCGA-OR-A5J2-01A", "ENSG00000000009"] == pytest.approx(3.0)  # mean of 1 and 5
    assert X.loc["TCGA-OR-A5J1-01A", "ENSG00000182378"] == pytest.approx(5.0)  # PAR_Y zeros dropped
    assert X.loc["TCGA-AB-2803-03A", "ENSG00000000005"] == pytest.approx(1.2)
    assert a.uns["unit"] == "log2(FPKM+1)" and a.uns["source_unit"] == "log2_fpkm1"
    assert a.uns["n_duplicate_ids"] == {"ACC": 1, "LAML": 0}
    assert a.uns["n_dropped_non_primary"] == {"ACC": 2, "LAML": 1}
    assert a.uns["n_par_y_dropped"] == {"ACC": 1, "LAML": 1}
    # the interchange format round-trips
    out = tmp_path / "tcga.h5ad"
    a.write_h5ad(out)
    b = ad.read_h5ad(out)
    assert b.uns["n_dropped_non_primary"]["ACC"] == 2
    np.testing.assert_array_equal(b.X, a.X)


def test_harmonise_tcga_fpkm_unit_and_series_probemap(tmp_path):
    matrices, pm = _tcga_files(tmp_path)
    with pytest.warns(bulk.BulkWarning):
        a = tcga.harmonise_tcga({"LAML": matrices["LAML"]}, tcga.read_probemap(pm), unit="fpkm")
    assert a.uns["unit"] == "log2(FPKM+1)" and a.uns["source_unit"] == "fpkm"
    X = pd.DataFrame(a.X, index=a.obs_names, columns=a.var_names)
    assert X.loc["TCGA-AB-2802-03A", "ENSG00000000005"] == pytest.approx(np.log2(2.1))


def test_harmonise_tcga_gene_mismatch(tmp_path):
    matrices, pm = _tcga_files(tmp_path, acc_extra_gene=True)
    with pytest.warns(bulk.BulkWarning), pytest.raises(InputError) as e:
        tcga.harmonise_tcga(matrices, pm)
    assert_names(e, "TCGA-LAML.star_fpkm.tsv.gz", "genes", "project LAML", "1 gene ids differ", "project ACC")
    with pytest.warns(bulk.BulkWarning) as rec:
        a = tcga.harmonise_tcga(matrices, pm, on_gene_mismatch="intersect")
    assert any("1 gene ids of project ACC are not in every TCGA project" in str(r.message) for r in rec)
    assert "ENSG00000999999" not in a.var_names
    assert a.uns["n_genes_dropped_mismatch"] == {"ACC": 1, "LAML": 0}


def test_harmonise_tcga_gene_mismatch_names_the_file_that_differs(tmp_path):
    """Issue 15: a duplicated gene id that replaces another id (ACC: ENSG…05 written as a second
    ENSG…03) blamed the *other* project's file and suggested on_gene_mismatch='intersect', which no
    config key set. Now: the file that differs from the others, its duplicates, the real config key."""
    matrices, pm = _tcga_files(tmp_path)
    acc_rows = [("ENSG00000000003.16", [0.5, 1.0, 2.0, 3.0]),  # was ENSG00000000005.6
                ("ENSG00000000003.15", [1.0, 2.0, 3.0, 4.0]),
                ("ENSG00000182378.14", [5.0, 6.0, 7.0, 8.0]),
                ("ENSG00000000009.2", [3.0, 5.0, 1.0, 1.0])]
    matrices["ACC"] = write_matrix(tmp_path / "TCGA-ACC.star_fpkm.tsv.gz", "Ensembl_ID", ACC_SAMPLES, acc_rows, gz=True)
    uvm_rows = [("ENSG00000000003.15", [1, 2]), ("ENSG00000000005.6", [1, 2]), ("ENSG00000182378.14", [1, 2]),
                ("ENSG00000000009.2", [1, 2])]
    matrices["UVM"] = write_matrix(tmp_path / "TCGA-UVM.star_fpkm.tsv.gz", "Ensembl_ID",
                                   ["TCGA-V4-A9E5-01A", "TCGA-V4-A9E7-01A"], uvm_rows, gz=True)
    with pytest.warns(bulk.BulkWarning), pytest.raises(InputError) as e:
        tcga.harmonise_tcga(matrices, pm)
    assert_names(e, "TCGA-ACC.star_fpkm.tsv.gz: genes: project ACC: 1 gene ids differ from the 2 projects that "
                 "agree ('LAML', 'UVM')", "0 only in ACC, 1 missing from ACC", "ENSG00000000005",
                 "1 duplicated gene id(s)", "config key tcga.on_gene_mismatch: intersect")
    assert "on_gene_mismatch='intersect'" not in str(e.value) and "TCGA-LAML" not in str(e.value)


def test_harmonise_tcga_duplicate_barcode_across_projects(tmp_path):
    matrices, pm = _tcga_files(tmp_path, laml_samples=["TCGA-AB-2802-03A", "TCGA-OR-A5J1-01A", "TCGA-AB-2804-11A"])
    with pytest.warns(bulk.BulkWarning), pytest.raises(InputError) as e:
        tcga.harmonise_tcga(matrices, pm, blood_codes=("03", "01"))
    assert_names(e, "TCGA-LAML.star_fpkm.tsv.gz", "sample 'TCGA-OR-A5J1-01A'", "duplicated barcode", "ACC")


def test_harmonise_tcga_no_primary(tmp_path):
    matrices, pm = _tcga_files(tmp_path)
    with pytest.raises(InputError) as e:
        tcga.harmonise_tcga({"LAML": matrices["LAML"]}, pm, blood_projects=())
    assert_names(e, "TCGA-LAML.star_fpkm.tsv.gz", "samples", "no primary tumour", "03", "11")


def test_harmonise_tcga_bad_barcode(tmp_path):
    p = write_matrix(tmp_path / "TCGA-ACC.star_fpkm.tsv", "Ensembl_ID", ["TCGA-OR-A5J1-01A", "sampleX"],
                     [("ENSG1.1", [1, 2])])
    with pytest.raises(InputError) as e:
        tcga.harmonise_tcga({"ACC": p}, None)
    assert_names(e, "TCGA-ACC.star_fpkm.tsv", "sample 'sampleX'", "not a TCGA barcode")


def test_harmonise_tcga_clinical(tmp_path):
    matrices, pm = _tcga_files(tmp_path)
    clin = write_text(tmp_path / "TCGA-ACC.clinical.tsv.gz",
                      "sample\tsample_type.samples\tage\n"
                      "TCGA-OR-A5J1-01A\tPrimary Tumor\t50\n"
                      "TCGA-OR-A5J2-01A\tSolid Tissue Normal\t60\n"   # disagrees with code 01
                      "TCGA-OR-A5J3-06A\tMetastatic\t70\n", gz=True)
    with pytest.warns(bulk.BulkWarning) as rec:
        a = tcga.harmonise_tcga(matrices, pm, clinical={"ACC": clin})
    msg = [str(r.message) for r in rec if "sample_type.samples" in str(r.message)]
    assert len(msg) == 1
    assert "TCGA-ACC.clinical.tsv.gz" in msg[0] and "TCGA-OR-A5J2-01A" in msg[0] and "1 sample(s)" in msg[0]
    assert "TCGA-OR-A5J2-01A" in a.obs_names  # the barcode decides
    assert a.uns["n_clinical_disagreements"] == {"ACC": 1}


def test_harmonise_tcga_clinical_errors(tmp_path):
    matrices, pm = _tcga_files(tmp_path)
    clin = write_text(tmp_path / "c.tsv", "sample\ttype\nTCGA-OR-A5J1-01A\tPrimary Tumor\n")
    with pytest.warns(bulk.BulkWarning), pytest.raises(InputError) as e:
        tcga.harmonise_tcga(matrices, pm, clinical={"ACC": clin})
    assert_names(e, "c.tsv", "column 'sample_type.samples'", "missing")
    with pytest.raises(InputError) as e:
        tcga.harmonise_tcga(matrices, pm, clinical={"BRCA": clin})
    assert_names(e, "c.tsv", "project", "'BRCA'", "no expression matrix")


def test_harmonise_tcga_bad_options(tmp_path):
    matrices, pm = _tcga_files(tmp_path)
    with pytest.raises(InputError, match="unit.*'tpm'"):
        tcga.harmonise_tcga(matrices, pm, unit="tpm")
    with pytest.raises(InputError, match="on_gene_mismatch"):
        tcga.harmonise_tcga(matrices, pm, on_gene_mismatch="union")
    with pytest.raises(InputError, match="no TCGA project"):
        tcga.harmonise_tcga({}, pm)


# ---------------------------------------------------------------------------------------------
# harmonise_met500
# ---------------------------------------------------------------------------------------------


def _met_files(tmp_path, meta_extra=(), meta_missing=False):
    samples = ["MO_1000", "MO_1001", "MO_1002"]
    rows = [
        ("ENSG00000000003.14", [np.log2(0.001), 3.0, 5.25]),
        ("ENSG00000000005.5", [-9.9658, 0.0, 1.0]),
        ("ENSG00000182378.10", [2.0, 2.0, 2.0]),
        ("ENSGR0000182378.10", [np.log2(0.001)] * 3),
    ]
    mx = write_matrix(tmp_path / "M.mx.log2.txt.gz", "sample", samples, rows, gz=True)
    meta_rows = [("MO_1000", "BRCA"), ("MO_1001", "COLO"), ("MO_1002", "MISC"), *meta_extra]
    if meta_missing:
        meta_rows = meta_rows[1:]
    meta = write_text(tmp_path / "M.meta.plus.txt", "Sample_id\tsample_source\tcohort\tbiopsy_tissue\n"
                      + "".join(f"{s}\tP{s[3:]}\t{c}\tliver\n" for s, c in meta_rows))
    return mx, meta


def test_harmonise_met500(tmp_path):
    mx, meta = _met_files(tmp_path)
    pm = write_text(tmp_path / "probemap.tsv", PROBEMAP)
    a = met500.harmonise_met500(mx, meta, pm)
    assert a.shape == (3, 3)
    assert a.obs["cohort"].unique().tolist() == ["MET500"]
    assert a.obs["sample_type"].unique().tolist() == ["metastatic"]
    assert a.obs["cancer_type"].tolist() == ["BRCA", "COLO", "MISC"]
    assert a.var_names.tolist() == ["ENSG00000000003", "ENSG00000000005", "ENSG00000182378"]
    assert a.var["symbol"].tolist() == ["TSPAN6", "TNMD", "PLCXD1"]
    X = pd.DataFrame(a.X, index=a.obs_names, columns=a.var_names)
    hand = lambda x: np.log2(2 ** x - 0.001 + 1)  # noqa: E731
    assert X.loc["MO_1001", "ENSG00000000003"] == pytest.approx(hand(3.0), rel=1e-6)
    assert X.loc["MO_1002", "ENSG00000000003"] == pytest.approx(hand(5.25), rel=1e-6)
    assert X.loc["MO_1000", "ENSG00000000003"] == 0.0
    assert X.loc["MO_1000", "ENSG00000000005"] == 0.0  # -9.9658 < log2(0.001): rounding, clipped
    assert X.loc["MO_1000", "ENSG00000182378"] == pytest.approx(hand(2.0), rel=1e-6)
    assert a.uns["unit"] == "log2(FPKM+1)" and a.uns["source_unit"] == "log2_fpkm0.001"
    assert a.uns["n_par_y_dropped"] == 1


def test_harmonise_met500_custom_columns(tmp_path):
    mx = write_matrix(tmp_path / "mx.tsv", "id", ["a", "b"], [("ENSG1.1", [1.0, 2.0])])
    meta = write_text(tmp_path / "meta.tsv", "run\tlabel\tdonor\nb\tPRAD\tp2\na\tSKCM\tp1\n")
    a = met500.harmonise_met500(mx, meta, None, unit="log2_fpkm1", sample_column="run", label_column="label",
                                patient_column="donor")
    assert a.obs["cancer_type"].tolist() == ["SKCM", "PRAD"]
    assert a.obs["patient"].tolist() == ["p1", "p2"]
    assert a.var["symbol"].tolist() == ["ENSG1"]


def test_harmonise_met500_sample_without_metadata(tmp_path):
    mx, meta = _met_files(tmp_path, meta_missing=True)
    with pytest.raises(InputError) as e:
        met500.harmonise_met500(mx, meta, None)
    assert_names(e, "M.meta.plus.txt", "column 'Sample_id'", "no metadata row", "'MO_1000'", "M.mx.log2.txt.gz")


def test_harmonise_met500_metadata_without_expression(tmp_path):
    mx, meta = _met_files(tmp_path, meta_extra=[("MO_9999", "PRAD")])
    with pytest.warns(bulk.BulkWarning, match=r"M\.meta\.plus\.txt: 1 metadata sample.*'MO_9999'"):
        a = met500.harmonise_met500(mx, meta, None)
    assert "MO_9999" not in a.obs_names
    assert a.uns["n_metadata_without_expression"] == 1


def test_harmonise_met500_metadata_errors(tmp_path):
    mx, _ = _met_files(tmp_path)
    meta = write_text(tmp_path / "m1.txt", "Sample_id\ttissue\nMO_1000\tliver\n")
    with pytest.raises(InputError) as e:
        met500.harmonise_met500(mx, meta, None)
    assert_names(e, "m1.txt", "column 'cohort'", "missing")
    meta = write_text(tmp_path / "m2.txt", "Sample_id\tcohort\tsample_source\nMO_1000\tBRCA\tP1\nMO_1000\tPRAD\tP1\n")
    with pytest.raises(InputError) as e:
        met500.harmonise_met500(mx, meta, None)
    assert_names(e, "m2.txt", "column 'Sample_id'", "different 'cohort'", "MO_1000")
    meta = write_text(tmp_path / "m3.txt", "Sample_id\tcohort\nMO_1000\t\n")
    with pytest.raises(InputError) as e:
        met500.harmonise_met500(mx, meta, None)
    assert_names(e, "m3.txt", "column 'cohort'", "empty label", "MO_1000")


def test_harmonise_met500_nan_names_file_gene_sample(tmp_path):
    mx = write_matrix(tmp_path / "mx.tsv", "sample", ["a", "b"], [("ENSG1.1", [1.0, "NA"])])
    meta = write_text(tmp_path / "meta.tsv", "Sample_id\tcohort\tsample_source\na\tBRCA\tpa\nb\tPRAD\tpb\n")
    with pytest.raises(InputError) as e:
        met500.harmonise_met500(mx, meta, None)
    assert_names(e, "mx.tsv", "gene 'ENSG1'", "sample 'b'", "NaN")


# ---------------------------------------------------------------------------------------------
# gene filter
# ---------------------------------------------------------------------------------------------


def _reference_mask(X, t):
    """Independent computation: explicit formulas, one gene at a time."""
    keep = []
    for j in range(X.shape[1]):
        col = X[:, j].astype(np.float64)
        m = col.sum() / len(col)
        sd = np.sqrt(((col - m) ** 2).sum() / len(col))
        keep.append(not (m < t and sd < t))
    return np.array(keep)


def test_gene_filter_mask_against_numpy():
    rng = np.random.default_rng(0)
    n = 40
    X = np.column_stack([
        rng.normal(loc, sd, size=n).clip(0) for loc, sd in
        [(0.1, 0.05), (5.0, 1.0), (0.3, 2.0), (0.2, 0.1), (3.0, 0.1)] * 20
    ]).astype(np.float32)
    mask = bulk.gene_filter_mask(X, 0.8)
    np.testing.assert_array_equal(mask, _reference_mask(X, 0.8))
    assert 0 < mask.sum() < X.shape[1]
    np.testing.assert_array_equal(bulk.gene_filter_mask(X, 0.8, chunk=7), mask)


def test_gene_filter_mask_semantics():
    # columns: mean<t & sd<t → drop; mean≥t → keep; sd≥t → keep; equality keeps;
    # sd(ddof=0)=0.775 < 0.8 ≤ sd(ddof=1)=0.8944 → dropped: the population sd is used.
    X = np.array([
        [0.1, 2.0, 0.0, 0.8, 0.0],
        [0.2, 2.0, 3.0, 0.8, 1.55],
        [0.1, 2.0, 0.0, 0.8, 0.0],
        [0.2, 2.0, 0.0, 0.8, 1.55],
    ])
    assert np.std(X[:, 4], ddof=1) >= 0.8 > np.std(X[:, 4])
    assert bulk.gene_filter_mask(X, 0.8).tolist() == [False, True, True, True, False]


def test_gene_filter_mask_nan():
    with pytest.raises(InputError) as e:
        bulk.gene_filter_mask(np.array([[1.0, np.nan]]), genes=["A", "B"], source="tcga")
    assert_names(e, "tcga", "gene 'B'", "NaN")


def _adata(X, genes, samples=None, symbols=None, **obs):
    samples = samples or [f"s{i}" for i in range(len(X))]
    var = pd.DataFrame(index=pd.Index(genes))
    if symbols is not None:
        var["symbol"] = symbols
    return ad.AnnData(X=np.asarray(X, dtype=np.float32), obs=pd.DataFrame(obs, index=samples), var=var)


def test_filter_genes_intersection():
    # gene:        G4(keep) G1(keep) G2(drop in A) G3(keep) G5 (only in A, keep)
    A = _adata([[5, 1, 0.1, 3, 9], [6, 3, 0.2, 4, 9]], ["G4", "G1", "G2", "G3", "G5"], symbols=list("dabce"))
    # in B:        G3(keep) G2(keep) G1(drop) G4(keep)
    B = _adata([[3, 2, 0.1, 5], [4, 3, 0.1, 6], [5, 2, 0.1, 7]], ["G3", "G2", "G1", "G4"])
    out, kept, counts = bulk.filter_genes({"tcga": A, "met500": B})
    assert kept["gene_id"].tolist() == ["G3", "G4"]
    assert kept["symbol"].tolist() == ["c", "d"]
    assert counts.to_dict("records") == [{"cohort": "tcga", "n_genes_in": 5, "n_kept": 4},
                                         {"cohort": "met500", "n_genes_in": 4, "n_kept": 3}]
    for a in out.values():
        assert a.var_names.tolist() == ["G3", "G4"]
    np.testing.assert_array_equal(out["met500"].X, [[3, 5], [4, 6], [5, 7]])
    assert out["tcga"].uns["gene_filter"]["n_kept"] == 2


def test_filter_genes_empty_intersection():
    A = _adata([[5, 0.1], [6, 0.1]], ["G1", "G2"])
    B = _adata([[0.1, 5], [0.1, 6]], ["G1", "G2"])
    with pytest.raises(InputError) as e:
        bulk.filter_genes({"tcga": A, "met500": B})
    assert_names(e, "genes", "no gene passes", "tcga keeps 1 of 2")


# ---------------------------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------------------------


TCGA33 = ("ACC BLCA BRCA CESC CHOL COAD DLBC ESCA GBM HNSC KICH KIRC KIRP LAML LGG LIHC LUAD LUSC "
          "MESO OV PAAD PCPG PRAD READ SARC SKCM STAD TGCT THCA THYM UCEC UCS UVM").split()


def test_repo_label_map():
    m = bulk.read_label_map(REPO / "resources" / "label_map.tsv")
    assert {k: v for k, v in m.items() if k != v} == {
        "COAD": "COLO", "READ": "COLO", "KIRP": "KDNY", "KIRC": "KDNY", "KICH": "KDNY",
        "LUAD": "LUNG", "LUSC": "LUNG", "LIHC": "HCC"}
    assert len(TCGA33) == 33 and set(TCGA33) <= set(m)
    assert len({m[t] for t in TCGA33}) == 29  # 33 TCGA types become 29


def test_read_label_map_errors(tmp_path):
    with pytest.raises(InputError) as e:
        bulk.read_label_map(write_text(tmp_path / "lm.tsv", "source\tmerged_label\nCOAD\tCOLO\n"))
    assert_names(e, "lm.tsv", "column 'source_label'", "missing")
    with pytest.raises(InputError) as e:
        bulk.read_label_map(write_text(tmp_path / "lm.tsv", "source_label\tmerged_label\nCOAD\tCOLO\nCOAD\tREAD\n"))
    assert_names(e, "lm.tsv", "column 'source_label'", "more than one merged label", "COAD")
    with pytest.raises(InputError) as e:
        bulk.read_label_map(write_text(tmp_path / "lm.tsv", "source_label\tmerged_label\nCOAD\t\n"))
    assert_names(e, "lm.tsv", "column 'merged_label'", "empty label")


LABEL_MAP = {"COAD": "COLO", "READ": "COLO", "KIRC": "KDNY", "LIHC": "HCC", "BRCA": "BRCA"}


def test_merge_labels_tcga_unknown_warns():
    types = ["COAD", "READ", "BRCA", "FOO", "KIRC", "LIHC"]
    a = _adata(np.zeros((6, 1)), ["G"], cohort=["TCGA"] * 6, cancer_type=types)
    with pytest.warns(bulk.BulkWarning, match=r"1 label\(s\), kept unchanged: 'FOO'"):
        out, report = bulk.merge_labels(a, LABEL_MAP)
    assert out.obs["cancer_type"].tolist() == ["COLO", "COLO", "BRCA", "FOO", "KDNY", "HCC"]
    assert out.obs["original_type"].tolist() == types
    r = report.set_index("original_label")
    assert r.loc["COAD", "action"] == "merged" and r.loc["COAD", "merged_label"] == "COLO"
    assert r.loc["BRCA", "action"] == "kept"
    assert r.loc["FOO", "action"] == "unknown_kept"
    assert r["n_samples"].sum() == 6
    # merging twice changes nothing and keeps the original labels
    with pytest.warns(bulk.BulkWarning):
        again, _ = bulk.merge_labels(out, LABEL_MAP)
    assert again.obs["cancer_type"].tolist() == out.obs["cancer_type"].tolist()
    assert again.obs["original_type"].tolist() == types


def test_merge_labels_met500_drops_misc_scer():
    types = ["COLO", "MISC", "KDNY", "SCER", "BRCA", "COLO"]
    a = _adata(np.arange(6).reshape(6, 1), ["G"], cohort=["MET500"] * 6, cancer_type=types)
    with warnings.catch_warnings():
        warnings.simplefilter("error", bulk.BulkWarning)  # merged names are known: no warning
        out, report = bulk.merge_labels(a, LABEL_MAP)
    assert out.obs_names.tolist() == ["s0", "s2", "s4", "s5"]
    assert out.obs["cancer_type"].tolist() == ["COLO", "KDNY", "BRCA", "COLO"]
    np.testing.assert_array_equal(out.X[:, 0], [0, 2, 4, 5])
    r = report.set_index("original_label")
    assert r.loc["MISC", "action"] == "dropped" and r.loc["SCER", "action"] == "dropped"
    assert r.loc["COLO", "n_samples"] == 2


def test_merge_labels_all_dropped():
    a = _adata(np.zeros((2, 1)), ["G"], cancer_type=["MISC", "SCER"])
    with pytest.raises(InputError, match="every sample has a dropped label"):
        bulk.merge_labels(a, LABEL_MAP)


# ---------------------------------------------------------------------------------------------
# type splits
# ---------------------------------------------------------------------------------------------

ONLY = [f"T{i}" for i in range(9)]                # 9 TCGA-only types
SHARED = [f"S{i:02d}" for i in range(20)]         # 20 shared types


def _cohorts(tcga_counts=None, met_counts=None, shuffle_seed=None):
    tcga_counts = tcga_counts or {**{t: 30 for t in ONLY}, **{s: 100 - 4 * i for i, s in enumerate(SHARED)}}
    met_counts = met_counts or {s: 10 + i % 3 for i, s in enumerate(SHARED)}
    t_types = [t for t, n in tcga_counts.items() for _ in range(n)]
    m_types = [t for t, n in met_counts.items() for _ in range(n)]
    t_obs = pd.DataFrame({"cohort": "TCGA", "cancer_type": t_types},
                         index=[f"TCGA-{t}-{i}" for i, t in enumerate(t_types)])
    m_obs = pd.DataFrame({"cohort": "MET500", "cancer_type": m_types},
                         index=[f"MET-{t}-{i}" for i, t in enumerate(m_types)])
    t_obs["patient"] = t_obs.index  # one sample per patient (patients: tests/test_sources_patients.py)
    m_obs["patient"] = m_obs.index
    if shuffle_seed is not None:
        t_obs = t_obs.sample(frac=1, random_state=shuffle_seed)
        m_obs = m_obs.sample(frac=1, random_state=shuffle_seed)
    tcga = ad.AnnData(X=np.zeros((len(t_obs), 1), dtype=np.float32), obs=t_obs)
    met = ad.AnnData(X=np.zeros((len(m_obs), 1), dtype=np.float32), obs=m_obs)
    return tcga, met


def _types(types, exp, role):
    return set(types[(types["experiment"] == exp) & (types["role"] == role)]["cancer_type"])


def test_split_types_structure():
    tcga, met = _cohorts()
    with warnings.catch_warnings():
        warnings.simplefilter("error", bulk.BulkWarning)
        types, samples = bulk.split_types(tcga, met, seed=1)
    assert list(types.columns) == ["experiment", "cancer_type", "role", "cohort", "n_train",
                                   "n_validation", "n_test", "rank", "n_types_requested", "n_types"]
    t19 = types[types["experiment"] == "tcga19"]
    assert (t19.loc[t19["role"] == "train", ["n_types_requested", "n_types"]] == [19, 19]).all().all()
    assert (t19.loc[t19["role"] == "test", ["n_types_requested", "n_types"]] == [10, 10]).all().all()
    assert types.loc[(types["experiment"] == "met500") & (types["role"] == "test"), "n_types_requested"].isna().all()
    assert list(samples.columns) == ["experiment", "sample_id", "cohort", "cancer_type", "split", "patient"]
    assert types["experiment"].unique().tolist() == ["tcga9", "tcga14", "tcga19", "met500", "cnn_primary_to_met"]
    tr9, tr14, tr19 = (_types(types, e, "train") for e in ("tcga9", "tcga14", "tcga19"))
    assert tr9 == set(ONLY)
    assert tr14 == set(ONLY) | set(SHARED[:5])  # SHARED is in descending TCGA count order
    assert tr19 == set(ONLY) | set(SHARED[:10])
    assert tr9 < tr14 < tr19
    test = set(SHARED[10:])
    for e in ("tcga9", "tcga14", "tcga19"):
        assert _types(types, e, "test") == test
        assert not _types(types, e, "train") & _types(types, e, "test")
    assert _types(types, "met500", "train") == set(SHARED[:10])
    assert _types(types, "met500", "test") == set(SHARED[10:])
    assert _types(types, "cnn_primary_to_met", "train") == set(SHARED[:10])
    assert _types(types, "cnn_primary_to_met", "test") == set(SHARED[:10])
    ranks = types[types["experiment"] == "tcga19"].set_index("cancer_type")["rank"]
    assert ranks["S00"] == 1 and ranks["S19"] == 20 and pd.isna(ranks["T0"])

    # TCGA test types: their TCGA samples 50/50 into validation/test, per type, disjoint
    s19 = samples[samples["experiment"] == "tcga19"]
    for t in test:
        st = s19[s19["cancer_type"] == t]
        n = (100 - 4 * SHARED.index(t))
        assert st["split"].value_counts().to_dict() == {"validation": n // 2, "test": n - n // 2}
        assert st["sample_id"].is_unique
        assert (st["cohort"] == "TCGA").all()
    assert (s19[s19["cancer_type"].isin(tr19)]["split"] == "train").all()
    assert len(s19) == 9 * 30 + sum(100 - 4 * i for i in range(20))
    # same test split in every TCGA training set
    key = ["sample_id", "split"]
    tests = [samples[(samples["experiment"] == e) & samples["cancer_type"].isin(test)][key]
             .sort_values("sample_id").reset_index(drop=True) for e in ("tcga9", "tcga14", "tcga19")]
    pd.testing.assert_frame_equal(tests[0], tests[1])
    pd.testing.assert_frame_equal(tests[0], tests[2])
    # MET500 experiment: MET500 samples only; test types split validation/test
    sm = samples[samples["experiment"] == "met500"]
    assert (sm["cohort"] == "MET500").all()
    assert set(sm[sm["split"] == "train"]["cancer_type"]) == set(SHARED[:10])
    assert set(sm[sm["split"] != "train"]["cancer_type"]) == set(SHARED[10:])
    assert len(sm) == len(met)
    # CNN: TCGA train, MET500 test, same types
    sc = samples[samples["experiment"] == "cnn_primary_to_met"]
    assert set(sc[sc["split"] == "train"]["cohort"]) == {"TCGA"}
    assert set(sc[sc["split"] == "test"]["cohort"]) == {"MET500"}
    assert set(sc["split"]) == {"train", "test"}


def test_split_types_deterministic_and_order_independent():
    tcga, met = _cohorts()
    t1, s1 = bulk.split_types(tcga, met, seed=7)
    t2, s2 = bulk.split_types(tcga, met, seed=7)
    pd.testing.assert_frame_equal(s1, s2)
    pd.testing.assert_frame_equal(t1, t2)
    tcga_sh, met_sh = _cohorts(shuffle_seed=3)
    _, s3 = bulk.split_types(tcga_sh, met_sh, seed=7)
    key = ["experiment", "sample_id"]
    pd.testing.assert_frame_equal(s1.sort_values(key).reset_index(drop=True),
                                  s3.sort_values(key).reset_index(drop=True))
    _, s4 = bulk.split_types(tcga, met, seed=8)
    assert not s4.sort_values(key).reset_index(drop=True).equals(s1.sort_values(key).reset_index(drop=True))


def test_split_types_ties_broken_by_name():
    counts = {**{t: 30 for t in ONLY}, **{s: 50 for s in SHARED}}
    tcga, met = _cohorts(tcga_counts=counts)
    types, _ = bulk.split_types(tcga, met, seed=0)
    assert _types(types, "tcga14", "train") - set(ONLY) == set(sorted(SHARED)[:5])
    assert _types(types, "tcga9", "test") == set(sorted(SHARED)[10:])


def test_split_types_small_type_drop_and_error():
    counts = {**{t: 30 for t in ONLY}, **{s: 100 - 4 * i for i, s in enumerate(SHARED)}}
    counts["S19"] = 3  # lowest-ranked shared type: 1 validation + 2 test samples
    tcga, met = _cohorts(tcga_counts=counts)
    with pytest.warns(bulk.BulkWarning) as rec:
        types, samples = bulk.split_types(tcga, met, seed=0)
    msgs = [str(r.message) for r in rec]
    for exp in ("tcga9", "tcga14", "tcga19"):
        assert any(f"'{exp}': cancer type 'S19' has 1 TCGA patient(s) (1 sample(s)) in split 'validation'" in m
                   for m in msgs)
    assert "S19" not in _types(types, "tcga9", "test")
    assert len(_types(types, "tcga9", "test")) == 9
    assert "S19" not in set(samples[samples["experiment"] == "tcga19"]["cancer_type"])
    assert "S19" in _types(types, "met500", "test")  # its MET500 samples are enough there
    with pytest.raises(InputError) as e:
        bulk.split_types(tcga, met, seed=0, small_type_policy="error")
    assert_names(e, "cancer type 'S19'", "1 TCGA patient(s)", "validation", "min_samples=2")


def test_split_types_small_met500_type():
    met_counts = {s: 10 for s in SHARED}
    met_counts["S03"] = 1  # a MET500 training type with 1 sample: no same-type pair
    tcga, met = _cohorts(met_counts=met_counts)
    with pytest.warns(bulk.BulkWarning) as rec:
        types, _ = bulk.split_types(tcga, met, seed=0)
    msgs = [str(r.message) for r in rec]
    assert any("'met500': cancer type 'S03' has 1 MET500 patient(s) (1 sample(s)) in split 'train'" in m for m in msgs)
    assert "S03" not in _types(types, "met500", "train")
    assert "S03" not in _types(types, "cnn_primary_to_met", "train")
    assert "S03" in _types(types, "tcga19", "train")


def test_split_types_too_few_shared_types():
    shared = SHARED[:12]
    tcga, met = _cohorts(tcga_counts={**{t: 30 for t in ONLY}, **{s: 100 - 4 * i for i, s in enumerate(shared)}},
                         met_counts={s: 10 for s in shared})
    # impossible_requests: error (default) -- one line naming the config key, never a silent reduction
    with pytest.raises(InputError) as e:
        bulk.split_types(tcga, met, seed=0)
    assert_names(e, "config key 'splits.training_sets.tcga14'", "5 shared types requested", "only 2",
                 "impossible_requests: reduce")
    with pytest.warns(bulk.BulkWarning) as rec:
        types, _ = bulk.split_types(tcga, met, seed=0, impossible="reduce")
    msgs = " | ".join(str(r.message) for r in rec)
    assert "training set 'tcga14': 5 shared types requested but only 2" in msgs
    assert "training set 'tcga19': 10 shared types requested but only 2" in msgs
    assert _types(types, "tcga14", "train") == _types(types, "tcga19", "train")
    assert _types(types, "tcga19", "train") == set(ONLY) | set(shared[:2])
    assert _types(types, "tcga19", "test") == set(shared[2:])
    assert not _types(types, "tcga19", "train") & _types(types, "tcga19", "test")
    # the reduction is written into the types table
    t19 = types[(types["experiment"] == "tcga19") & (types["role"] == "train")]
    assert (t19["n_types_requested"] == len(ONLY) + 10).all() and (t19["n_types"] == len(ONLY) + 2).all()


def test_split_types_n_test_types_above_shared_types():
    """Issue 15: splits.n_test_types: 30 with 20 shared types used to give exit 0, 20 test types and
    tcga9/14/19 silently the same experiment."""
    tcga, met = _cohorts()
    with pytest.raises(InputError) as e:
        bulk.split_types(tcga, met, seed=0, n_test_types=30)
    assert_names(e, "config key 'splits.n_test_types'", "only 20 cancer types occur in both cohorts",
                 "30 test types requested")
    with pytest.warns(bulk.BulkWarning, match="splits.n_test_types"):
        types, _ = bulk.split_types(tcga, met, seed=0, n_test_types=30, impossible="reduce")
    test = types[(types["experiment"] == "tcga9") & (types["role"] == "test")]
    assert (test["n_types_requested"] == 30).all() and (test["n_types"] == 20).all()
    assert _types(types, "tcga9", "train") == _types(types, "tcga19", "train") == set(ONLY)
    with pytest.raises(InputError, match="impossible_requests"):
        bulk.split_types(tcga, met, seed=0, impossible="silently")


def test_split_types_test_type_requirements():
    """N-way requests above an experiment's test types (known only from the data, e.g. MET500's)
    stop split_types naming the config key; reduce warns (the consuming rule records it)."""
    tcga, met = _cohorts()  # met500: 10 training + 10 test types
    req = {"met500": [("evaluation.n_way", 12, "12-way evaluation (run 'met500')")],
           "tcga19": [("siamese.val_n_way", 10, "10-way Siamese validation of 'tcga19'")]}
    with pytest.raises(InputError) as e:
        bulk.split_types(tcga, met, seed=0, requirements=req)
    assert_names(e, "config key 'evaluation.n_way'", "12-way evaluation (run 'met500') needs 12 test types",
                 "experiment 'met500' has 10")
    with pytest.warns(bulk.BulkWarning, match="evaluation.n_way.*will use 10"):
        bulk.split_types(tcga, met, seed=0, requirements=req, impossible="reduce")
    with warnings.catch_warnings():
        warnings.simplefilter("error", bulk.BulkWarning)
        bulk.split_types(tcga, met, seed=0, requirements={"met500": [("evaluation.n_way", 10, "10-way")]})


def test_split_types_met500_only_type_warns_and_parameters():
    tcga, met = _cohorts()
    extra = ad.AnnData(X=np.zeros((3, 1), dtype=np.float32),
                       obs=pd.DataFrame({"cohort": "MET500", "cancer_type": "NEPC", "patient": ["x1", "x2", "x3"]},
                                        index=["x1", "x2", "x3"]))
    met2 = ad.concat([met, extra])
    with pytest.warns(bulk.BulkWarning, match="absent from TCGA are not used: 'NEPC'"):
        types, _ = bulk.split_types(tcga, met2, seed=0)
    assert "NEPC" not in set(types["cancer_type"])
    for kwargs, field in [({"validation_fraction": 1.0}, "validation_fraction"),
                          ({"small_type_policy": "skip"}, "small_type_policy"),
                          ({"n_test_types": 1}, "n_test_types"),
                          ({"training_sets": {"met500": 3}}, "training_sets")]:
        with pytest.raises(InputError, match=field):
            bulk.split_types(tcga, met, seed=0, **kwargs)


def test_split_types_validation_fraction():
    tcga, met = _cohorts()
    _, samples = bulk.split_types(tcga, met, seed=0, validation_fraction=0.25)
    st = samples[(samples["experiment"] == "tcga9") & (samples["cancer_type"] == "S10")]  # 60 samples
    assert st["split"].value_counts().to_dict() == {"validation": 15, "test": 45}


def test_read_clinical_lenient(tmp_path):
    p = write_text(tmp_path / "clin.tsv", "sample\tsample_type.samples\n"
                   "TCGA-OR-A5J1-01A\tPrimary Tumor\n"
                   "TCGA-OR-A5J2-01A\t\n"                       # empty: ignored
                   "TCGA-OR-A5J3-01A\tPrimary Tumor\n"
                   "TCGA-OR-A5J3-01A\tMetastatic\n")            # conflict: first kept, warned
    with pytest.warns(bulk.BulkWarning, match=r"clin\.tsv: 1 sample\(s\) listed with different"):
        s = tcga.read_clinical(p)
    assert s.to_dict() == {"TCGA-OR-A5J1-01A": "Primary Tumor", "TCGA-OR-A5J3-01A": "Primary Tumor"}
