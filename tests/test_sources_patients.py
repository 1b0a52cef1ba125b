"""Patients in the real bulk sources, on fixtures written by hand from ../shared/docs/REAL_FORMATS.md
(independent of the demo generator): TCGA GDC-hub ``star_fpkm`` + ``clinical.tsv`` + probe map with a
``-01A``/``-01B`` pair, and the MET500 matrix + ``M.meta.plus.txt`` with twin libraries. Then the
patient-disjoint splits (:func:`oncoshot.bulk.split_types`) and the patient report."""

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

LOG2_0001 = -9.9658  # log2(0.001) as MET500 writes it (4 decimals)


def _write(path: Path, text: str, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def _names(exc, *parts):
    msg = str(exc.value)
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"


# ---------------------------------------------------------------------------------------------
# TCGA (GDC hub)
# ---------------------------------------------------------------------------------------------

PROBEMAP = (
    "id\tgene\tchrom\tchromStart\tchromEnd\tstrand\n"
    "ENSG00000223972.5\tDDX11L1\tchr1\t11869\t14409\t+\n"
    "ENSG00000000003.15\tTSPAN6\tchrX\t100627108\t100639991\t-\n"
    "ENSG00000000005.6\tTNMD\tchrX\t100584936\t100599885\t+\n"
    "ENSG00000182378.14\tPLCXD1\tchrX\t276322\t303356\t+\n"
    "ENSG00000182378.14_PAR_Y\tPLCXD1\tchrY\t276322\t303356\t+\n"
)
ACC_BARCODES = ["TCGA-OR-A5J1-01A", "TCGA-OR-A5J1-01B", "TCGA-OR-A5J2-01A", "TCGA-OR-A5J3-01A",
                "TCGA-OR-A5J3-11A", "TCGA-OR-A5J5-06A"]
BRCA_BARCODES = ["TCGA-A1-A0SB-01A", "TCGA-A1-A0SD-01A", "TCGA-A1-A0SD-02A", "TCGA-A1-A0SE-01A"]
GENES = ["ENSG00000223972.5", "ENSG00000000003.15", "ENSG00000000005.6", "ENSG00000182378.14",
         "ENSG00000182378.14_PAR_Y"]


def _star_fpkm(path: Path, barcodes, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    vals = np.round(rng.uniform(0.0, 8.0, (len(GENES), len(barcodes))), 6)
    vals[-1] = 0.0  # the GDC pipeline masks the chrY PAR: PAR_Y rows are all 0
    lines = ["\t".join(["Ensembl_ID", *barcodes])]
    lines += ["\t".join([g, *(repr(float(v)) for v in row)]) for g, row in zip(GENES, vals)]
    return _write(path, "\n".join(lines) + "\n", gz=True)


def _clinical(path: Path, barcodes, project: str) -> Path:
    names = {"01": "Primary Tumor", "02": "Recurrent Tumor", "06": "Metastatic", "11": "Solid Tissue Normal",
             "10": "Blood Derived Normal"}
    header = ["sample", "submitter_id", "sample_type.samples", "sample_type_id.samples", "tissue_type.samples",
              "project_id.project", "primary_site", "disease_type", "age_at_index.demographic"]
    rows = ["\t".join(header)]
    for b in [*barcodes, barcodes[0][:12] + "-10A"]:  # a blood normal without RNA-seq
        code = b[13:15]
        rows.append("\t".join([b, b[:12], names[code], code, "Normal" if code in ("10", "11") else "Tumor",
                               f"TCGA-{project}", "Adrenal gland", "Adrenal Cortical Carcinoma", "58"]))
    return _write(path, "\n".join(rows) + "\n", gz=True)


@pytest.fixture
def tcga_files(tmp_path):
    pm = _write(tmp_path / "gencode.v36.annotation.gtf.gene.probemap", PROBEMAP)
    mats = {"ACC": _star_fpkm(tmp_path / "TCGA-ACC.star_fpkm.tsv.gz", ACC_BARCODES, 1),
            "BRCA": _star_fpkm(tmp_path / "TCGA-BRCA.star_fpkm.tsv.gz", BRCA_BARCODES, 2)}
    clin = {"ACC": _clinical(tmp_path / "TCGA-ACC.clinical.tsv.gz", ACC_BARCODES, "ACC"),
            "BRCA": _clinical(tmp_path / "TCGA-BRCA.clinical.tsv.gz", BRCA_BARCODES, "BRCA")}
    return mats, clin, pm


def test_tcga_patient_helpers():
    assert tcga.patient_id("TCGA-OR-A5J1-01A") == "TCGA-OR-A5J1"
    assert tcga.patient_id("TCGA-OR-A5J1-01B-11R-A29S-07") == "TCGA-OR-A5J1"  # aliquot barcode
    assert tcga.sample_code("TCGA-OR-A5J1-01B") == "01"
    with pytest.raises(InputError) as e:
        tcga.patient_id("MO_1437-poly-SI_9666-C5N0MANXX", source="x.tsv")
    _names(e, "x.tsv", "sample 'MO_1437-poly-SI_9666-C5N0MANXX'", "not a TCGA barcode")


def test_tcga_patients_from_real_format_files(tcga_files):
    mats, clin, pm = tcga_files
    with pytest.warns(bulk.BulkWarning, match="non-primary"):
        a = tcga.harmonise_tcga(mats, pm, clinical=clin)
    want = {"TCGA-OR-A5J1-01A": "TCGA-OR-A5J1", "TCGA-OR-A5J1-01B": "TCGA-OR-A5J1",
            "TCGA-OR-A5J2-01A": "TCGA-OR-A5J2", "TCGA-OR-A5J3-01A": "TCGA-OR-A5J3",
            "TCGA-A1-A0SB-01A": "TCGA-A1-A0SB", "TCGA-A1-A0SD-01A": "TCGA-A1-A0SD",
            "TCGA-A1-A0SE-01A": "TCGA-A1-A0SE"}
    assert a.obs["patient"].to_dict() == want
    assert a.var_names.tolist() == ["ENSG00000000003", "ENSG00000000005", "ENSG00000182378", "ENSG00000223972"]
    assert a.var["symbol"].tolist() == ["TSPAN6", "TNMD", "PLCXD1", "DDX11L1"]
    assert a.uns["patients"] == {
        "cohort": "TCGA", "policy": "all primary samples kept; patient = first 12 barcode characters",
        "n_samples_in": 10, "n_samples_kept": 7, "n_samples_dropped_non_primary": 3, "n_libraries_dropped": 0,
        "n_patients": 6, "n_patients_with_several_samples": 1, "n_samples_of_such_patients": 2}


def test_tcga_more_sample_codes_group_by_patient(tcga_files):
    mats, _, pm = tcga_files
    a = tcga.harmonise_tcga({"BRCA": mats["BRCA"]}, pm, primary_codes=("01", "02"))
    assert a.obs.loc["TCGA-A1-A0SD-02A", "patient"] == a.obs.loc["TCGA-A1-A0SD-01A", "patient"] == "TCGA-A1-A0SD"
    assert a.uns["patients"]["n_patients_with_several_samples"] == 1


# ---------------------------------------------------------------------------------------------
# MET500 (UCSC Xena public hub)
# ---------------------------------------------------------------------------------------------

META_HEADER = ["Sample_id", "sample_type", "sample_source", "dataset", "tissue", "cohort", "run.id", "idx", "test",
               "tc", "biopsy_tissue"]
# library, patient, label, test column: 3 patients with both libraries, one capture-only, one poly-only
LIBRARIES = [
    ("MO_1437-poly-SI_9666-C5N0MANXX", "MO_1437", "BRCA", "polyA"),
    ("MO_1437-capt-SI_5936-H09HYADXX", "MO_1437", "BRCA", "capture"),
    ("TP_2018-capt-SI_5937-H09HYADXX", "TP_2018", "PRAD", "capture"),
    ("TP_2018-poly-SI_9667-C5N0MANXX", "TP_2018", "PRAD", "polyA"),
    ("MO_1012-capt-SI_1111-HAAAAADXX", "MO_1012", "SARC", "capture"),
    ("MO_1100-poly-SI_2222-CBBBBANXX", "MO_1100", "SARC", "polyA"),
    ("MO_1200-capt-SI_3333-HCCCCADXX", "MO_1200", "MISC", "capture"),
    ("MO_1200-poly-SI_4444-CDDDDANXX", "MO_1200", "MISC", "polyA"),
]
V23 = ["ENSG00000000003.14", "ENSG00000000005.5", "ENSG00000182378.10", "ENSGR0000182378.10"]


def _met_matrix(path: Path, libraries) -> Path:
    rng = np.random.default_rng(5)
    vals = np.round(np.log2(rng.uniform(0.0, 50.0, (len(V23), len(libraries))) + 0.001), 4)
    vals[1, 0] = LOG2_0001  # FPKM 0 as written by MET500
    vals[3] = LOG2_0001  # PAR_Y copy: no reads
    lines = ["\t".join(["sample", *libraries])]
    lines += ["\t".join([g, *(f"{v:.4f}" for v in row)]) for g, row in zip(V23, vals)]
    return _write(path, "\n".join(lines) + "\n", gz=True)


def _met_meta(path: Path, rows, drop_column: str | None = None) -> Path:
    cols = [c for c in META_HEADER if c != drop_column]
    lines = ["\t".join(cols)]
    for i, (lib, patient, label, test) in enumerate(rows, start=1):
        rec = {"Sample_id": lib, "sample_type": "tumor", "sample_source": patient, "dataset": "MET500",
               "tissue": "" if label == "MISC" else "breast", "cohort": label, "run.id": lib, "idx": str(i),
               "test": test, "tc": "0.55", "biopsy_tissue": "liver"}
        lines.append("\t".join(rec[c] for c in cols))
    return _write(path, "\n".join(lines) + "\n")


@pytest.fixture
def met_files(tmp_path):
    libs = [r[0] for r in LIBRARIES]
    return _met_matrix(tmp_path / "M.mx.log2.txt.gz", libs), _met_meta(tmp_path / "M.meta.plus.txt", LIBRARIES)


def test_parse_library_id():
    assert met500.parse_library_id("MO_1437-poly-SI_9666-C5N0MANXX") == ("MO_1437", "poly")
    assert met500.parse_library_id("TP_2018-capt-SI_5936-H09HYADXX") == ("TP_2018", "capt")
    assert met500.parse_library_id("MO_1437") == (None, None)


def test_met500_one_library_per_patient_poly_preferred(met_files):
    mx, meta = met_files
    with warnings.catch_warnings():
        warnings.simplefilter("error", bulk.BulkWarning)
        a = met500.harmonise_met500(mx, meta, None)
    assert sorted(a.obs_names) == sorted(["MO_1437-poly-SI_9666-C5N0MANXX", "TP_2018-poly-SI_9667-C5N0MANXX",
                                          "MO_1012-capt-SI_1111-HAAAAADXX", "MO_1100-poly-SI_2222-CBBBBANXX",
                                          "MO_1200-poly-SI_4444-CDDDDANXX"])
    assert a.obs["patient"].is_unique
    assert a.obs.loc["MO_1012-capt-SI_1111-HAAAAADXX", ["patient", "library"]].tolist() == ["MO_1012", "capt"]
    assert a.obs.loc["TP_2018-poly-SI_9667-C5N0MANXX", "cancer_type"] == "PRAD"
    info = a.uns["patients"]
    assert (info["n_samples_in"], info["n_samples_kept"], info["n_libraries_dropped"]) == (8, 5, 3)
    assert (info["n_patients"], info["n_patients_with_several_samples"], info["n_samples_of_such_patients"]) == (5, 3, 6)
    assert info["n_patients_with_several_kept"] == 0
    lib = a.uns["libraries"].set_index("sample_id")
    assert list(a.uns["libraries"].columns) == met500.LIBRARY_COLUMNS and len(lib) == 8
    assert not lib.loc["MO_1437-capt-SI_5936-H09HYADXX", "kept"]
    assert "keeps MO_1437-poly-SI_9666-C5N0MANXX" in lib.loc["MO_1437-capt-SI_5936-H09HYADXX", "reason"]
    # values: log2(FPKM+0.001) → log2(FPKM+1), floor → 0, from the raw file
    raw = pd.read_csv(mx, sep="\t", index_col=0)
    x = pd.DataFrame(a.X, index=a.obs_names, columns=a.var_names)
    want = np.log2(np.clip(2.0 ** raw.loc["ENSG00000000003.14", "MO_1100-poly-SI_2222-CBBBBANXX"] - 0.001, 0, None) + 1)
    assert x.loc["MO_1100-poly-SI_2222-CBBBBANXX", "ENSG00000000003"] == pytest.approx(want, rel=1e-6)
    assert x.loc["MO_1437-poly-SI_9666-C5N0MANXX", "ENSG00000000005"] == 0.0
    assert "ENSGR0000182378" not in a.var_names  # PAR_Y copy of a present X gene: dropped


def test_met500_preference_and_all(met_files):
    mx, meta = met_files
    a = met500.harmonise_met500(mx, meta, None, prefer_library=("capt", "poly"))
    assert sorted(a.obs["library"]) == ["capt"] * 4 + ["poly"]  # MO_1100 has only a poly-A library
    b = met500.harmonise_met500(mx, meta, None, libraries="all")
    assert b.n_obs == 8 and b.uns["patients"]["n_libraries_dropped"] == 0
    assert b.obs.groupby("patient").size().to_dict() == {"MO_1012": 1, "MO_1100": 1, "MO_1200": 2, "MO_1437": 2,
                                                         "TP_2018": 2}
    assert b.uns["patients"]["n_patients_with_several_kept"] == 3
    # the library type from a metadata column instead of the id
    c = met500.harmonise_met500(mx, meta, None, library_column="test", prefer_library=("capture", "polya"))
    assert set(c.obs["library"]) == {"capture", "polya"}
    assert c.obs.loc["MO_1437-capt-SI_5936-H09HYADXX", "library"] == "capture"


def test_met500_missing_patient_column(tmp_path):
    libs = [r[0] for r in LIBRARIES]
    mx = _met_matrix(tmp_path / "M.mx.log2.txt.gz", libs)
    meta = _met_meta(tmp_path / "M.meta.plus.txt", LIBRARIES, drop_column="sample_source")
    with pytest.raises(InputError) as e:
        met500.harmonise_met500(mx, meta, None)
    _names(e, "M.meta.plus.txt", "column 'sample_source'", "missing", "patient_policy")
    a = met500.harmonise_met500(mx, meta, None, patient_policy="from_id")
    assert sorted(a.obs["patient"]) == ["MO_1012", "MO_1100", "MO_1200", "MO_1437", "TP_2018"]
    assert "patient_policy from_id" in a.uns["patients"]["policy"]
    with pytest.warns(bulk.BulkWarning, match="every library is treated as its own patient"):
        b = met500.harmonise_met500(mx, meta, None, patient_policy="sample")
    assert b.n_obs == 8 and (b.obs["patient"] == b.obs_names).all()
    # from_id with an id that has no -capt-/-poly- part
    rows = LIBRARIES[:2] + [("MO_9999", "MO_9999", "BRCA", "polyA")]
    mx2 = _met_matrix(tmp_path / "m2.txt.gz", [r[0] for r in rows])
    meta2 = _met_meta(tmp_path / "meta2.txt", rows, drop_column="sample_source")
    with pytest.raises(InputError) as e:
        met500.harmonise_met500(mx2, meta2, None, patient_policy="from_id")
    _names(e, "meta2.txt", "column 'Sample_id'", "'MO_9999'")


def test_met500_bad_patients(tmp_path):
    libs = [r[0] for r in LIBRARIES]
    mx = _met_matrix(tmp_path / "M.mx.log2.txt.gz", libs)
    conflict = [r if r[0] != "MO_1437-capt-SI_5936-H09HYADXX" else (*r[:2], "PRAD", r[3]) for r in LIBRARIES]
    meta = _met_meta(tmp_path / "conflict.txt", conflict)
    with pytest.raises(InputError) as e:
        met500.harmonise_met500(mx, meta, None)
    _names(e, "conflict.txt", "column 'cohort'", "different labels", "'MO_1437'",
           "MO_1437-capt-SI_5936-H09HYADXX: PRAD", "MO_1437-poly-SI_9666-C5N0MANXX: BRCA")
    with pytest.raises(InputError, match="conflict.txt"):  # with every library kept too
        met500.harmonise_met500(mx, meta, None, libraries="all")
    empty = [r if r[0] != "MO_1012-capt-SI_1111-HAAAAADXX" else (r[0], "", *r[2:]) for r in LIBRARIES]
    meta = _met_meta(tmp_path / "empty.txt", empty)
    with pytest.raises(InputError) as e:
        met500.harmonise_met500(mx, meta, None)
    _names(e, "empty.txt", "column 'sample_source'", "empty patient", "MO_1012-capt-SI_1111-HAAAAADXX")
    meta = _met_meta(tmp_path / "ok.txt", LIBRARIES)
    with pytest.raises(InputError, match="library_column"):
        met500.harmonise_met500(mx, meta, None, library_column="library_type")
    for kwargs, field in [({"libraries": "best"}, "met500.libraries"), ({"prefer_library": ()}, "met500.prefer_library"),
                          ({"patient_policy": "guess"}, "met500.patient_policy")]:
        with pytest.raises(InputError, match=field):
            met500.harmonise_met500(mx, meta, None, **kwargs)


# ---------------------------------------------------------------------------------------------
# patient-disjoint splits and the report
# ---------------------------------------------------------------------------------------------

ONLY = [f"T{i}" for i in range(9)]
SHARED = [f"S{i:02d}" for i in range(20)]


def _cohort(name: str, counts: dict[str, int], twins_every: int, seed: int) -> ad.AnnData:
    """``counts`` patients per type; every ``twins_every``-th patient has 2 samples, every
    (3·twins_every)-th 3 (TCGA vials or MET500 libraries)."""
    rng = np.random.default_rng(seed)
    ids, types, patients = [], [], []
    for t, n in counts.items():
        for p in range(n):
            k = 3 if p % (3 * twins_every) == 0 else 2 if p % twins_every == 0 else 1
            for v in range(k):
                ids.append(f"{name}-{t}-{p}-{v}")
                types.append(t)
                patients.append(f"{name}-{t}-{p}")
    order = rng.permutation(len(ids))
    obs = pd.DataFrame({"cohort": name, "cancer_type": np.array(types)[order], "patient": np.array(patients)[order]},
                       index=np.array(ids)[order])
    a = ad.AnnData(X=np.zeros((len(obs), 1), np.float32), obs=obs)
    per = obs["patient"].value_counts()
    a.uns["patients"] = {"cohort": name, "policy": "test", "n_samples_in": len(obs), "n_samples_kept": len(obs),
                         "n_samples_dropped_non_primary": 0, "n_libraries_dropped": 0, "n_patients": len(per),
                         "n_patients_with_several_samples": int((per > 1).sum()),
                         "n_samples_of_such_patients": int(per[per > 1].sum())}
    return a


@pytest.fixture(scope="module")
def twin_cohorts():
    tcga_counts = {**{t: 30 for t in ONLY}, **{s: 100 - 4 * i for i, s in enumerate(SHARED)}}
    met_counts = {s: 10 + i % 3 for i, s in enumerate(SHARED)}
    return _cohort("TCGA", tcga_counts, 4, 1), _cohort("MET500", met_counts, 2, 2)


def test_splits_keep_patients_together(twin_cohorts):
    tc, mc = twin_cohorts
    types, samples = bulk.split_types(tc, mc, seed=3)
    assert "patient" in samples.columns
    truth = pd.concat([tc.obs, mc.obs])["patient"]
    assert (samples["patient"].to_numpy() == truth.loc[samples["sample_id"]].to_numpy()).all()
    # independent check: per experiment and cohort, every patient in exactly one split
    n_splits = samples.groupby(["experiment", "cohort", "patient"])["split"].nunique()
    assert (n_splits == 1).all()
    # every sample of a test type is placed, and the validation fraction counts patients
    for exp, cohort, obs in (("tcga19", "TCGA", tc.obs), ("met500", "MET500", mc.obs)):
        s = samples[samples["experiment"] == exp]
        for t in set(s.loc[s["split"] != "train", "cancer_type"]):
            st = s[s["cancer_type"] == t]
            assert set(st["sample_id"]) == set(obs.index[obs["cancer_type"] == t])
            n_pat = obs.loc[obs["cancer_type"] == t, "patient"].nunique()
            assert st.loc[st["split"] == "validation", "patient"].nunique() == n_pat // 2
    # the same seed gives the same split; twins really exist on the test side
    _, again = bulk.split_types(tc, mc, seed=3)
    pd.testing.assert_frame_equal(samples, again)
    test_side = samples[(samples["experiment"] == "met500") & (samples["split"] == "test")]
    assert test_side.groupby("patient").size().max() >= 2
    report = bulk.patient_report({"TCGA": tc, "MET500": mc}, samples)
    assert list(report.columns) == bulk.PATIENT_REPORT_COLUMNS
    assert report["n_patients_on_both_sides"].tolist() == [0, 0]
    assert report.set_index("cohort").loc["MET500", "n_patients_with_several_samples_after_labels"] == \
        int((mc.obs["patient"].value_counts() > 1).sum())
    # the report's independent count catches a leak
    leaked = samples.copy()
    i = leaked.index[(leaked["experiment"] == "met500") & (leaked["split"] == "test")][0]
    twin = leaked.index[(leaked["experiment"] == "met500") & (leaked["split"] == "validation")][0]
    leaked.loc[i, "patient"] = leaked.loc[twin, "patient"]
    assert bulk.patient_report({"MET500": mc}, leaked)["n_patients_on_both_sides"].tolist() == [1]


def test_splits_count_patients_for_small_types():
    tcga_counts = {**{t: 30 for t in ONLY}, **{s: 100 - 4 * i for i, s in enumerate(SHARED)}}
    tc = _cohort("TCGA", tcga_counts, 1000, 1)
    mc = _cohort("MET500", {s: 10 for s in SHARED}, 1000, 2)
    # S03 (a MET500 training type): all 12 libraries of one patient → no pair of two patients
    obs = mc.obs.copy()
    obs.loc[obs["cancer_type"] == "S03", "patient"] = "one-patient"
    mc2 = ad.AnnData(X=np.zeros((len(obs), 1), np.float32), obs=obs)
    with pytest.warns(bulk.BulkWarning) as rec:
        types, _ = bulk.split_types(tc, mc2, seed=0)
    msgs = [str(r.message) for r in rec]
    assert any("'met500': cancer type 'S03' has 1 MET500 patient(s) (12 sample(s)) in split 'train'" in m for m in msgs)
    assert "S03" not in set(types.loc[types["experiment"] == "met500", "cancer_type"])


def test_splits_reject_patient_with_two_types(twin_cohorts):
    tc, mc = twin_cohorts
    obs = mc.obs.copy()
    a, b = obs.index[obs["cancer_type"] == "S00"][0], obs.index[obs["cancer_type"] == "S01"][0]
    obs.loc[b, "patient"] = obs.loc[a, "patient"]
    bad = ad.AnnData(X=np.zeros((len(obs), 1), np.float32), obs=obs)
    with pytest.raises(InputError) as e:
        bulk.split_types(tc, bad, seed=0)
    _names(e, "met500", "obs columns 'patient', 'cancer_type'", "different cancer types", repr(obs.loc[a, "patient"]))
