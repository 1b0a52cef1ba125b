"""The demo generator: byte-reproducible output, the real file formats, and the planted structure.

The committed ``resources/demo`` is regenerated once into a temporary folder and compared byte by
byte; the other tests read the committed files (identical when the first test passes) and check
them with code that does not reuse the generator's own helpers.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse
from scipy.spatial.distance import cdist

from oncoshot import demo
from oncoshot.errors import InputError

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo"
BULK = DEMO / "bulk"
SCRNA = DEMO / "scrna"
TRUTH = DEMO / "truth"
HALLMARKS = ["IA", "TPI", "GIM", "SPS", "AID", "ERI", "RCD", "EGS", "DCE", "AIM"]
PROJECTS = (
    "ACC BLCA BRCA CESC CHOL COAD DLBC ESCA GBM HNSC KICH KIRC KIRP LAML LGG LIHC LUAD LUSC MESO OV "
    "PAAD PCPG PRAD READ SARC SKCM STAD TGCT THCA THYM UCEC UCS UVM"
).split()
MERGE = {"COAD": "COLO", "READ": "COLO", "KIRP": "KDNY", "KIRC": "KDNY", "KICH": "KDNY",
         "LUAD": "LUNG", "LUSC": "LUNG", "LIHC": "HCC"}  # fmt: skip
SHARED = set("ACC BLCA BRCA CHOL COLO ESCA HCC HNSC KDNY LUNG MESO OV PAAD PRAD SARC SKCM STAD THCA UCEC TGCT".split())
TCGA_ONLY = set("CESC DLBC GBM LAML LGG PCPG THYM UCS UVM".split())
STUDIES = ["Data_Demo2020_Breast", "Data_Demo2021_Brain", "Data_Demo2022_Breast"]
VERSIONED = re.compile(r"^(ENSG\d{11})\.(\d+)(_PAR_Y)?$")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    summary = demo.generate(out, seed=demo.DEFAULT_SEED)
    return out, summary


# ----------------------------------------------------------------------------- reproducibility


def test_regeneration_is_byte_identical(regenerated):
    out, _ = regenerated
    assert _files(DEMO), "resources/demo is empty: run python workflow/scripts/make_demo.py --out resources/demo"
    assert _files(out) == _files(DEMO)
    differ = [f for f in _files(DEMO) if _sha(DEMO / f) != _sha(out / f)]
    same_payload = [
        f for f in differ if f.endswith(".gz") and gzip.decompress((DEMO / f).read_bytes()) == gzip.decompress((out / f).read_bytes())
    ]
    assert not differ, f"differ from the committed demo: {differ} (gzip payload identical for {same_payload}: zlib differs?)"


def test_summary_matches_truth(regenerated):
    _, summary = regenerated
    truth = json.loads((TRUTH / "summary.json").read_text())
    for key in ("one_shot_6way_euclidean_all_filtered", "one_shot_6way_euclidean_marker_pool", "n_kept"):
        assert summary[key] == truth[key]
    assert summary["n_cells"] == truth["qc"]["cells"]
    assert sum(summary["files"].values()) == sum((DEMO / f).stat().st_size for f in summary["files"])


def test_another_seed_gives_other_data():
    a = demo._build_genes(np.random.default_rng(demo.DEFAULT_SEED))
    b = demo._build_genes(np.random.default_rng(demo.DEFAULT_SEED + 1))
    assert list(a["gene_id"]) != list(b["gene_id"])
    c = demo._build_genes(np.random.default_rng(demo.DEFAULT_SEED))
    assert a.equals(c)


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_bad_seed_is_rejected(tmp_path, seed):
    with pytest.raises(InputError, match="seed"):
        demo.generate(tmp_path, seed=seed)
    assert not any(tmp_path.iterdir())


def test_cli_reports_bad_seed(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    import make_demo

    assert make_demo.main(["--out", str(tmp_path / "d"), "--seed", "-3"]) == 2
    assert "seed" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_compression_is_deterministic_and_size_bounded():
    total = sum((DEMO / f).stat().st_size for f in _files(DEMO))
    assert total <= 10_000_000, f"resources/demo is {total} bytes"
    for f in _files(DEMO):
        if f.endswith(".gz"):
            head = (DEMO / f).read_bytes()[:10]
            assert head[:2] == b"\x1f\x8b"
            assert head[3] & 0x08 == 0, f"{f}: gzip header stores a file name"
            assert head[4:8] == b"\0\0\0\0", f"{f}: gzip header stores an mtime"


def test_sha256sums_cover_every_download():
    lines = (DEMO / "SHA256SUMS").read_text().splitlines()
    listed = {}
    for line in lines:
        digest, rel = line.split("  ", 1)
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
        listed[rel] = digest
    downloads = [f for f in _files(DEMO) if f.startswith(("bulk/", "scrna/"))]
    assert sorted(listed) == downloads
    assert len(downloads) == 33 * 2 + 1 + 2 + 3 + 1 + 1  # … + 3 study archives, Brain's Meta-data archive
    for rel, digest in listed.items():
        assert _sha(DEMO / rel) == digest, rel


# ----------------------------------------------------------------------------- bulk formats


@pytest.fixture(scope="module")
def tcga():
    """{project: genes × samples frame with versioned row ids} read straight from the files."""
    return {p: pd.read_csv(BULK / f"TCGA-{p}.star_fpkm.tsv.gz", sep="\t", index_col=0) for p in PROJECTS}


@pytest.fixture(scope="module")
def clinical():
    return {p: pd.read_csv(BULK / f"TCGA-{p}.clinical.tsv.gz", sep="\t") for p in PROJECTS}


@pytest.fixture(scope="module")
def met500():
    mx = pd.read_csv(BULK / "MET500_M.mx.log2.txt.gz", sep="\t", index_col=0)
    meta = pd.read_csv(BULK / "MET500_M.meta.plus.txt", sep="\t")
    return mx, meta


def test_tcga_matrices(tcga):
    rows = None
    for proj, df in tcga.items():
        with gzip.open(BULK / f"TCGA-{proj}.star_fpkm.tsv.gz", "rt") as fh:
            header = fh.readline().rstrip("\n").split("\t")
            first = fh.readline().rstrip("\n").split("\t")
        assert header[0] == "Ensembl_ID"
        assert all(re.fullmatch(r"\d+\.\d{4}", v) for v in first[1:]), "4 decimals"
        for barcode in df.columns:
            assert re.fullmatch(r"TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}-\d{2}[A-Z]", barcode), barcode
        assert df.columns.is_unique
        assert all(VERSIONED.match(i) for i in df.index)
        assert np.isfinite(df.to_numpy()).all() and (df.to_numpy() >= 0).all()
        if rows is None:
            rows = list(df.index)
        assert list(df.index) == rows, f"{proj}: rows differ between projects"
    ids = pd.Index(rows)
    par = ids[ids.str.endswith("_PAR_Y")]
    assert len(par) == 2
    stripped = ids.str.replace(r"\.\d+(_PAR_Y)?$", "", regex=True)
    assert stripped.duplicated().sum() == 2
    assert set(stripped[ids.isin(par)]) <= set(stripped[~ids.isin(par)])
    for proj, df in tcga.items():
        assert (df.loc[par] == 0).all().all()
    assert 2400 <= len(ids) <= 2600


def test_sample_codes_and_clinical(tcga, clinical):
    codes = {p: df.columns.str[13:15] for p, df in tcga.items()}
    assert set(codes["LAML"]) == {"03"}
    assert "06" in set(codes["SKCM"]) and (codes["SKCM"] == "06").sum() >= 3
    with_normals = [p for p, c in codes.items() if "11" in set(c)]
    assert len(with_normals) >= 5
    for p, c in codes.items():
        if p != "LAML":
            assert (c == "01").sum() >= 8
    kinds = {"01": "Primary Tumor", "03": "Primary Blood Derived Cancer - Peripheral Blood",
             "06": "Metastatic", "11": "Solid Tissue Normal", "02": "Recurrent Tumor", "10": "Blood Derived Normal"}  # fmt: skip
    for p, clin in clinical.items():
        assert {"sample", "sample_type.samples", "project_id.project"} < set(clin.columns)
        assert len(clin.columns) >= 4
        assert set(clin["project_id.project"]) == {f"TCGA-{p}"}
        assert set(tcga[p].columns) <= set(clin["sample"])
        for s, kind in zip(clin["sample"], clin["sample_type.samples"]):
            assert kinds[s[13:15]] == kind, s
    n_total = sum(df.shape[1] for df in tcga.values())
    assert 600 <= n_total <= 800


def test_probemap_covers_tcga_ids(tcga):
    pm = pd.read_csv(BULK / "gencode.v36.annotation.gtf.gene.probemap", sep="\t")
    assert list(pm.columns) == ["id", "gene", "chrom", "chromStart", "chromEnd", "strand"]
    assert pm["id"].is_unique
    assert set(pm["id"]) == set(tcga["ACC"].index)
    mt = pm[pm["gene"].str.startswith("MT-")]
    assert len(mt) == 13 and set(mt["chrom"]) == {"chrM"}
    assert set(pm.loc[pm["id"].str.endswith("_PAR_Y"), "chrom"]) == {"chrY"}
    assert (pm["chromEnd"] > pm["chromStart"]).all()
    others = pm[~pm["gene"].str.startswith("MT-")]["gene"]
    assert others.str.fullmatch(r"SYN\d{5}").all()


def test_met500_matrix_and_meta(tcga, met500):
    mx, meta = met500
    assert mx.index.name == "sample"
    # sequencing libraries: <patient>-<capt|poly>-SI_<n>-<flowcell>
    assert all(re.fullmatch(r"(MO|TP)_\d{4}-(capt|poly)-SI_\d{4}-[A-Z0-9]{5}(ANXX|ADXX|BCXX)", s) for s in mx.columns)
    assert mx.columns.is_unique
    assert all(re.fullmatch(r"ENS(G0|GR)\d{10}\.\d+", i) for i in mx.index)
    values = mx.to_numpy()
    assert np.isfinite(values).all()
    assert values.min() == pytest.approx(np.log2(0.001), abs=1e-4)  # FPKM 0
    with gzip.open(BULK / "MET500_M.mx.log2.txt.gz", "rt") as fh:
        assert fh.readline().split("\t")[0] == "sample"
        assert all(re.fullmatch(r"-?\d+\.\d{4}", v) for v in fh.readline().rstrip("\n").split("\t")[1:])
    v36 = {m.group(1): m.group(2) for m in map(VERSIONED.match, tcga["ACC"].index) if not m.group(3)}
    v23 = dict(i.split(".") for i in mx.index)
    shared = set(v36) & set(v23)
    assert shared and all(v36[g] != v23[g] for g in shared), "versions must differ between v36 and v23"
    assert 40 <= len(set(v23) - set(v36)) <= 60
    par_y = mx[mx.index.str.startswith("ENSGR")]
    assert len(par_y) == 2 and (par_y == round(np.log2(0.001), 4)).all().all()
    assert 80 <= len(set(v36) - set(v23)) <= 120
    assert list(meta.columns) == ["Sample_id", "sample_type", "sample_source", "dataset", "tissue", "cohort",
                                  "run.id", "idx", "test", "tc", "biopsy_tissue"]  # REAL_FORMATS.md
    assert set(meta["Sample_id"]) == set(mx.columns) and (meta["run.id"] == meta["Sample_id"]).all()
    assert set(meta["sample_type"]) == {"tumor"}
    assert meta["tc"].between(0.3, 0.8).all()
    assert {"MISC", "SCER"} <= set(meta["cohort"])
    assert meta["tissue"].isna().any() and meta["tissue"].notna().mean() > 0.8  # some primary sites empty
    # patients: sample_source = the id's part before -capt-/-poly-; about 3/4 have both libraries,
    # which share label, tissue, tumour content and biopsy site
    parsed = meta["Sample_id"].str.extract(r"^(?P<patient>.+?)-(?P<library>capt|poly)-")
    assert (parsed["patient"] == meta["sample_source"]).all()
    assert ((parsed["library"] == "poly") == (meta["test"] == "polyA")).all()
    per = meta.groupby("sample_source")
    assert (per[["cohort", "tc", "biopsy_tissue"]].nunique(dropna=False) == 1).all().all()
    n_lib = per.size()
    assert 250 <= len(n_lib) <= 320 and set(n_lib) == {1, 2}
    assert 0.65 <= (n_lib == 2).mean() <= 0.85
    both = n_lib.index[n_lib == 2]
    assert all(sorted(parsed.loc[meta["sample_source"] == p, "library"]) == ["capt", "poly"] for p in both[:20])
    assert meta["sample_source"].str.startswith("TP_").any()


def _merged_counts(tcga, met500):
    mx, meta = met500
    prim = {}
    for p, df in tcga.items():
        code = "03" if p == "LAML" else "01"
        t = MERGE.get(p, p)
        prim[t] = prim.get(t, 0) + int((df.columns.str[13:15] == code).sum())
    met = meta[~meta["cohort"].isin(["MISC", "SCER"])].drop_duplicates("sample_source")["cohort"].value_counts()
    return pd.Series(prim), met  # MET500: patients per type


def test_types_and_unique_ranking(tcga, met500):
    prim, met = _merged_counts(tcga, met500)
    assert len(prim) == 29 and set(prim.index) == SHARED | TCGA_ONLY
    assert set(met.index) == SHARED
    assert len(set(prim.index) & set(met.index)) == 20
    shared = prim[list(SHARED)].sort_values(ascending=False)
    assert shared.is_unique, "TCGA primary counts of shared types must not tie"
    assert shared.max() <= 45 and shared.min() >= 10
    low10 = shared.index[10:]
    assert (prim[low10] >= 6).all()
    assert (met[low10] >= 8).all()
    assert met.between(8, 24).all()
    assert prim[list(TCGA_ONLY)].between(15, 30).all()


# ----------------------------------------------------------------------------- planted bulk structure


def _harmonised(tcga, met500):
    """Independent harmonisation: strip versions, average duplicates, primaries, log2(FPKM+1)."""
    frames, labels = [], []
    for p, df in tcga.items():
        code = "03" if p == "LAML" else "01"
        keep = df.columns[df.columns.str[13:15] == code]
        frames.append(df[keep])
        labels += [MERGE.get(p, p)] * len(keep)
    t = pd.concat(frames, axis=1)
    t = t.groupby(t.index.str.replace(r"\.\d+(_PAR_Y)?$", "", regex=True)).mean().T
    mx, meta = met500
    m = mx.groupby(mx.index.str.replace(r"\.\d+$", "", regex=True)).mean().T
    m = np.log2((2.0**m - 0.001).clip(lower=0) + 1.0).clip(lower=0)
    return t, np.array(labels), m


def _kept(x: pd.DataFrame, thr: float = 0.8) -> set:
    mean, sd = x.mean(), x.std()
    return set(x.columns[~((mean < thr) & (sd < thr))])


@pytest.fixture(scope="module")
def filtered(tcga, met500):
    t, labels, m = _harmonised(tcga, met500)
    genes = sorted(_kept(t) & _kept(m))
    return t, labels, m, genes


def test_filter_matches_planted_roles(filtered):
    t, _, m, genes = filtered
    truth = pd.read_csv(TRUTH / "bulk_genes.tsv", sep="\t").set_index("gene_id")
    role = truth["role"]
    kt, km = _kept(t), _kept(m)
    assert kt == set(truth.index[truth["in_tcga"] & ~role.isin(["low_both", "low_tcga"])])
    ensgr = truth.index.str.startswith("ENSGR")  # gencode v23 PAR_Y twins, all FPKM 0
    assert km == set(truth.index[truth["in_met500"] & ~role.isin(["low_both", "low_met500"]) & ~ensgr])
    # some genes are low in one cohort only, so the intersection matters
    assert len(kt - km) >= 50 and len(km - kt) >= 50
    assert set(genes) == set(truth.index[truth["kept"]])
    assert set(role[role == "marker_pool"].index) <= set(genes)
    assert 0.45 <= role[truth["in_tcga"]].str.startswith("low_").mean() <= 0.55
    # a lower threshold keeps more genes (borderline low genes)
    assert len(_kept(t, 0.7) & _kept(m, 0.7)) > len(genes)


def _one_shot(x: np.ndarray, labels: np.ndarray, rng, n_way=6, n_tasks=2000) -> float:
    d = cdist(x, x, metric="euclidean")
    types = np.unique(labels)
    correct = 0
    for _ in range(n_tasks):
        chosen = rng.choice(types, size=n_way, replace=False)
        support = np.array([rng.choice(np.flatnonzero(labels == c)) for c in chosen])
        target = rng.integers(n_way)
        pool = np.flatnonzero(labels == chosen[target])
        query = rng.choice(pool[pool != support[target]])
        correct += chosen[np.argmin(d[query, support])] == chosen[target]
    return correct / n_tasks


def test_euclidean_1nn_is_mediocre_but_markers_separate(filtered, tcga, met500):
    t, labels, _, genes = filtered
    prim, _ = _merged_counts(tcga, met500)
    ranked = prim[list(SHARED)].sort_values(ascending=False).index
    test_types = list(ranked[10:])
    sel = np.isin(labels, test_types)
    truth = pd.read_csv(TRUTH / "bulk_genes.tsv", sep="\t")
    pool = sorted(set(truth.loc[truth["role"] == "marker_pool", "gene_id"]) & set(genes))
    rng = np.random.default_rng(12345)
    euclid = _one_shot(t.loc[sel, genes].to_numpy(), labels[sel], rng)
    marker = _one_shot(t.loc[sel, pool].to_numpy(), labels[sel], rng)
    assert 0.35 <= euclid <= 0.70, euclid
    assert marker >= 0.90, marker
    assert marker - euclid >= 0.25
    reported = json.loads((TRUTH / "summary.json").read_text())
    assert reported["test_types"] == test_types
    assert abs(reported["one_shot_6way_euclidean_all_filtered"] - euclid) < 0.05
    assert abs(reported["one_shot_6way_euclidean_marker_pool"] - marker) < 0.05
    readme = (TRUTH / "README.md").read_text()
    assert "simulated" in readme
    assert f"{100 * reported['one_shot_6way_euclidean_all_filtered']:.1f} %" in readme


def test_type_signatures_and_sample_truth(tcga, met500):
    sig = pd.read_csv(TRUTH / "type_signatures.tsv", sep="\t")
    truth = pd.read_csv(TRUTH / "bulk_genes.tsv", sep="\t").set_index("gene_id")
    assert set(sig["cancer_type"]) == SHARED | TCGA_ONLY
    assert (truth.loc[sig["gene_id"], "role"] == "marker_pool").all()
    pool = truth.index[truth["role"] == "marker_pool"]
    assert (sig.groupby("cancer_type").size() == len(pool)).all()  # every type moves every pool gene
    # low-rank: effect = activity(type, programme) × loading(gene), one programme per pool gene
    prog = pd.read_csv(TRUTH / "type_programmes.tsv", sep="\t").set_index("cancer_type")
    k = prog.shape[1]
    assert list(prog.columns) == [f"P{i + 1}" for i in range(k)] and set(prog.index) == set(sig["cancer_type"])
    assert (truth.loc[pool, "programme"].between(1, k)).all() and (truth.loc[pool, "loading"].abs() >= 0.5).all()
    assert (truth.loc[truth.index.difference(pool), "programme"] == 0).all()
    assert truth.loc[pool, "programme"].value_counts().between(len(pool) // k - 1, len(pool) // k + 1).all()
    g = truth.loc[sig["gene_id"]]
    expected = prog.to_numpy()[prog.index.get_indexer(sig["cancer_type"]), g["programme"].to_numpy() - 1] * g["loading"].to_numpy()
    assert np.abs(sig["effect"].to_numpy() - expected).max() <= 0.006
    eff = sig.pivot(index="cancer_type", columns="gene_id", values="effect")
    assert np.linalg.matrix_rank(eff.to_numpy(), tol=0.5) == k
    # the 19 and 14 training types of tcga19 and tcga14 span the programme space, so the unseen test
    # types are combinations of programmes seen in training (tcga9's 9 types cannot span it)
    prim, _ = _merged_counts(tcga, met500)
    ranked = list(prim[list(SHARED)].sort_values(ascending=False).index)
    assert np.linalg.matrix_rank(prog.loc[sorted(TCGA_ONLY | set(ranked[:10]))].to_numpy()) == k
    assert k <= 14 and np.linalg.matrix_rank(prog.loc[sorted(TCGA_ONLY | set(ranked[:5]))].to_numpy()) == k
    samples = pd.read_csv(TRUTH / "bulk_samples.tsv", sep="\t")
    in_files = {s for df in tcga.values() for s in df.columns} | set(met500[0].columns)
    assert set(samples.loc[samples["in_matrix"], "sample_id"]) == in_files
    kept = samples[samples["cohort"].eq("TCGA") & samples["kept"]]
    assert (kept["sample_code"].str[:2] == np.where(kept["project"] == "TCGA-LAML", "03", "01")).all()
    met = samples[samples["cohort"] == "MET500"]
    prim = samples[samples["cohort"].eq("TCGA") & samples["kept"]]
    assert met["purity"].mean() < prim["purity"].mean()
    assert met["AIM"].mean() > prim["AIM"].mean() + 0.1
    assert samples[HALLMARKS].stack().between(0, 1).all()


# ----------------------------------------------------------------------------- single cells


# The real 3CA quirks the demo carries (docs/REAL_FORMATS.md), as file paths inside each archive;
# read below with plain tarfile / pandas / scipy code, independent of oncoshot.sources.threeca.
LAYOUT = {
    "Data_Demo2020_Breast": {"all": ("Data_Demo2020_Breast/Exp_data_UMIcounts.mtx", "Data_Demo2020_Breast/Cells.csv",
                                     "Data_Demo2020_Breast/Genes.txt")},
    "Data_Demo2021_Brain": {
        "SmartSeq2": ("Data_Demo2021_Brain/SmartSeq2/exp_data_TPM.mtx", "Data_Demo2021_Brain/SmartSeq2/Cells.csv",
                      "Data_Demo2021_Brain/SmartSeq2/genes.txt"),
        "Group1": ("Data_Demo2021_Brain/Group1/Exp_data_UMIcounts_10X.mtx", "Data_Demo2021_Brain/Group1/Cells_10X.txt",
                   "Data_Demo2021_Brain/Group1/Genes_10X.txt")},
    "Data_Demo2022_Breast": {"all": ("Data_Demo2022_Breast/Breast/Exp_data_UMIcounts.mtx",
                                     "Data_Demo2022_Breast/Breast/Cells.csv", "Data_Demo2022_Breast/Breast/Genes.txt")},
}
METADATA = {"Data_Demo2020_Breast": ("Data_Demo2020_Breast.tar.gz", "Data_Demo2020_Breast/Meta-data.csv"),
            "Data_Demo2021_Brain": ("Meta-data_Demo2021_Brain.tar.gz", "Meta-data_Demo2021_Brain.csv")}


def _archive(path: Path):
    with tarfile.open(path, "r:gz") as tar:
        members = tar.getmembers()
        files = {m.name: tar.extractfile(m).read() for m in members if m.isfile()}
    return members, files


@pytest.fixture(scope="module")
def studies():
    return {name: _archive(SCRNA / f"{name}.tar.gz") for name in STUDIES}


def test_tar_members_safe_and_complete(studies):
    for name, (members, files) in studies.items():
        names = [m.name for m in members]
        if name == "Data_Demo2020_Breast":  # the harmless root member of 3CA folder downloads
            assert members[0].isdir() and members[0].name in ("", "/")
            members, names = members[1:], names[1:]
        assert names == sorted(names)
        assert names[0] == name and members[0].isdir()
        for m in members:
            assert not m.name.startswith("/") and ".." not in Path(m.name).parts
            assert m.name == name or m.name.startswith(name + "/")
            assert m.isfile() or m.isdir()
            assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")
            assert m.mtime == members[0].mtime
        want = {f for tech in LAYOUT[name].values() for f in tech}
        if name in METADATA and METADATA[name][0] == f"{name}.tar.gz":
            want.add(METADATA[name][1])
        assert set(files) == want
    members, files = _archive(SCRNA / "Meta-data_Demo2021_Brain.tar.gz")
    assert [m.name for m in members] == ["Meta-data_Demo2021_Brain.csv"]


def _parse(files, name):
    """(genes × cells CSC over the study's genes, genes, cells with a technology column, metadata or
    None), concatenating the technologies by gene symbol (0 where a technology lacks a gene)."""
    parts = []
    for tech, (mtx_path, cells_path, genes_path) in LAYOUT[name].items():
        mtx = scipy.io.mmread(io.BytesIO(files[mtx_path])).tocsc()
        genes = [g.strip('"') for g in files[genes_path].decode().splitlines()]
        sep = r"\s+" if cells_path.endswith(".txt") else ","
        cells = pd.read_csv(io.BytesIO(files[cells_path]), sep=sep)
        cells["technology"] = tech
        parts.append((mtx, genes, cells))
    meta = None
    if name in METADATA:
        archive, path = METADATA[name]
        meta = pd.read_csv(io.BytesIO(_archive(SCRNA / archive)[1][path]))
    if len(parts) == 1:  # rows as in the file (a duplicated symbol stays two rows)
        return parts[0][0], parts[0][1], parts[0][2], meta
    union = list(dict.fromkeys(g for _, genes, _ in parts for g in genes))
    blocks = []
    for mtx, genes, _ in parts:
        full = np.zeros((len(union), mtx.shape[1]))
        dense = mtx.toarray()
        for i, g in enumerate(genes):
            full[union.index(g)] += dense[i]
        blocks.append(full)
    mtx = scipy.sparse.csc_matrix(np.hstack(blocks))
    cells = pd.concat([c for _, _, c in parts], ignore_index=True)
    return mtx, union, cells, meta


def test_study_formats(studies):
    sets = pd.read_csv(SCRNA / "hallmark_gene_sets.csv", dtype=str)
    hallmark_genes = set(sets.stack().dropna())
    n_cells, n_normal, lacking, duplicated = 0, 0, [], []
    for name, (_, files) in studies.items():
        for tech, (mtx_path, _, genes_path) in LAYOUT[name].items():
            head = files[mtx_path][:60].decode()
            field = "real" if tech == "SmartSeq2" else "integer"
            assert head.startswith(f"%%MatrixMarket matrix coordinate {field} general")
            raw = files[genes_path].decode().splitlines()
            quoted = name == "Data_Demo2022_Breast"
            assert all(g.startswith('"') and g.endswith('"') for g in raw) == quoted
            duplicated.append(len(raw) - len(set(raw)))
        mtx, genes, cells, meta = _parse(files, name)
        assert mtx.shape == (len(genes), len(cells))
        assert list(cells.columns) == ["cell_name", "sample", "cell_type", "complexity", "technology"]
        assert cells["cell_name"].is_unique
        assert (cells["complexity"].to_numpy() == (mtx > 0).sum(axis=0).A1).all()
        if meta is not None:
            assert list(meta.columns) == ["sample", "patient", "technology", "sample_primary_met", "source", "cancer_type"]
            assert "sample_type" not in meta.columns
            assert set(cells["sample"]) == set(meta["sample"])
            normal = meta[(meta["source"] == "Normal") | (meta["cancer_type"] == "Normal")]
            n_normal += len(normal)
            tumour = set(meta["sample"]) - set(normal["sample"])
        else:
            tumour = set(cells["sample"])
        assert 4 <= len(tumour) <= 5
        assert cells[cells["sample"].isin(tumour)].groupby("sample").size().between(300, 500).all()
        assert (cells["cell_type"] == "Malignant").mean() > 0.6
        assert sum(g.startswith("MT-") for g in set(genes)) == 13
        assert 1700 <= len(set(genes)) <= 1900
        n_cells += len(cells)
        lacking.append(len(hallmark_genes - set(genes)))
    assert n_normal == 1
    assert sorted(lacking) == [0, 0, 2]
    assert sorted(duplicated) == [0, 0, 0, 1]
    assert 5000 <= n_cells <= 8000
    # the multi-technology study: two technologies, SmartSeq2 lacks a few genes Group1 has
    _, files = studies["Data_Demo2021_Brain"]
    ss2 = set(files["Data_Demo2021_Brain/SmartSeq2/genes.txt"].decode().split())
    g1 = set(files["Data_Demo2021_Brain/Group1/Genes_10X.txt"].decode().split())
    assert ss2 < g1 and len(g1 - ss2) == 6
    _, _, cells, meta = _parse(files, "Data_Demo2021_Brain")
    assert cells.groupby("technology")["sample"].nunique().to_dict() == {"Group1": 3, "SmartSeq2": 2}
    assert dict(zip(meta["sample"], meta["technology"])) == {
        s: ("SmartSeq2" if t == "SmartSeq2" else "10x") for s, t in zip(cells["sample"], cells["technology"])}


def test_hallmark_gene_sets_format():
    text = (SCRNA / "hallmark_gene_sets.csv").read_text()
    assert text.splitlines()[0] == ",".join(HALLMARKS)
    sets = pd.read_csv(SCRNA / "hallmark_gene_sets.csv", dtype=str)
    sizes = sets.notna().sum()
    assert sizes.between(20, 40).all()
    for h in HALLMARKS:  # padding only at the end of a column
        col = sets[h]
        assert col.iloc[: sizes[h]].notna().all() and col.iloc[sizes[h] :].isna().all()
    truth = pd.read_csv(TRUTH / "bulk_genes.tsv", sep="\t")
    for h in HALLMARKS:
        assert set(sets[h].dropna()) == set(truth.loc[truth["role"] == f"hallmark_{h}", "symbol"])


def test_qc_failures_violate_thresholds(studies):
    truth = pd.read_csv(TRUTH / "cells.tsv", sep="\t", keep_default_na=False)
    seen = set()
    for name, (_, files) in studies.items():
        mtx, genes, cells, _ = _parse(files, name)
        n_genes = (mtx > 0).sum(axis=0).A1
        total = mtx.sum(axis=0).A1
        mt = np.array([g.startswith("MT-") for g in genes])
        mt_frac = mtx[mt].sum(axis=0).A1 / total
        t = truth[truth["study"] == name].set_index("cell_name").loc[cells["cell_name"]]
        reason = t["qc_fail_reason"].to_numpy()
        assert (mt_frac[reason == "mt_fraction"] > 0.15).all()
        assert (n_genes[reason == "low_genes"] < 200).all()
        assert (n_genes[reason == "high_genes"] > 1200).all()
        ok = reason == ""
        assert (mt_frac[ok] <= 0.15).all() and (n_genes[ok] >= 200).all() and (n_genes[ok] <= 1200).all()
        assert ok.mean() > 0.85
        seen |= set(reason[~ok])
        assert (t["cell_type"].to_numpy() == cells["cell_type"].to_numpy()).all()
        assert (t["technology"].to_numpy() == cells["technology"].to_numpy()).all()
    assert seen == {"mt_fraction", "low_genes", "high_genes"}


def test_hallmark_activity_is_visible_in_counts(studies):
    truth = pd.read_csv(TRUTH / "cells.tsv", sep="\t", keep_default_na=False)
    sets = pd.read_csv(SCRNA / "hallmark_gene_sets.csv", dtype=str)
    for name, (_, files) in studies.items():
        mtx, genes, cells, _ = _parse(files, name)
        t = truth[truth["study"] == name].set_index("cell_name").loc[cells["cell_name"]]
        assert (t.loc[~t["malignant"], HALLMARKS] == 0).all().all()
        ok = (t["malignant"] & (t["qc_fail_reason"] == "")).to_numpy()
        x = mtx[:, ok].toarray().astype(float)
        x /= x.sum(axis=0, keepdims=True)
        for h in HALLMARKS:
            rows = [i for i, g in enumerate(genes) if g in set(sets[h].dropna())]
            share = x[rows].sum(axis=0)
            active = t[h].to_numpy()[ok] == 1
            frac = t.loc[ok].groupby("sample")[h].mean()
            assert frac.between(0.05, 0.95).all(), (name, h)
            assert share[active].mean() > 2 * share[~active].mean(), (name, h)


# ----------------------------------------------------------------------------- patients


def test_twin_libraries_and_vials_are_near_duplicates(tcga, met500):
    mx, meta = met500
    x = np.log2((2.0 ** mx - 0.001).clip(lower=0) + 1.0).T  # libraries × genes, log2(FPKM+1)
    by_patient = meta.set_index("Sample_id")["sample_source"]
    label = meta.set_index("Sample_id")["cohort"]
    twins = [g.tolist() for _, g in meta.groupby("sample_source")["Sample_id"] if len(g) == 2]
    d_twin = np.array([np.linalg.norm(x.loc[a] - x.loc[b]) for a, b in twins])
    # nearest other-patient library of the same type, for the first library of each twin pair
    d_other = []
    for a, _ in twins[:40]:
        same = label.index[(label == label[a]) & (by_patient != by_patient[a])]
        d_other.append(np.linalg.norm(x.loc[same] - x.loc[a], axis=1).min())
    assert np.median(d_twin) < 0.5 * np.median(d_other)
    assert (d_twin[:40] < np.array(d_other)).all()  # a twin is closer than any other patient
    # TCGA: second vials -01B next to their -01A, in five projects
    pairs = [(p, b[:-1] + "A", b) for p, df in tcga.items() for b in df.columns if b.endswith("-01B")]
    assert sorted(p for p, *_ in pairs) == ["BRCA", "CESC", "LIHC", "MESO", "SARC"]
    for p, a, b in pairs:
        df = tcga[p]
        d_pair = np.linalg.norm(df[a] - df[b])
        d_rest = min(np.linalg.norm(df[a] - df[c]) for c in df.columns if c[:12] != a[:12] and c[13:15] == "01")
        assert d_pair < 0.5 * d_rest, p
    truth = pd.read_csv(TRUTH / "bulk_samples.tsv", sep="\t", keep_default_na=False)
    t_met = truth[truth["cohort"] == "MET500"].set_index("sample_id")
    assert (t_met.loc[meta["Sample_id"], "patient"].to_numpy() == meta["sample_source"].to_numpy()).all()
    kept = t_met[t_met["library_kept"]]
    assert kept["patient"].is_unique and set(kept["patient"]) == set(meta["sample_source"])
    assert (kept.loc[kept.index.isin([b for _, b in twins] + [a for a, _ in twins]), "library"] == "poly").all()
    t_tcga = truth[truth["cohort"] == "TCGA"]
    assert (t_tcga["patient"] == t_tcga["sample_id"].str[:12]).all()
