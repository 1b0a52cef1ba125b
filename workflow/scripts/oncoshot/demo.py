"""Deterministic generator of the embedded demo cohort: simulated data in the real file formats.

``generate(outdir, seed)`` writes, under ``outdir``:

- ``bulk/``: 33 GDC-hub TCGA matrices (``TCGA-<PROJ>.star_fpkm.tsv.gz``, log2(FPKM+1)) with their
  clinical tables, the gencode v36 probe map, and the MET500 matrix (log2(FPKM+0.001), gencode v23
  versions) with its metadata (SPEC §1.1);
- ``scrna/``: three 3CA study archives (``Data_<Author><Year>_<Tissue>.tar.gz``, SPEC §3.1) in the
  real layouts (flat with a ``/`` root member and ``Meta-data.csv``; one sub-folder per technology
  with a separate ``Meta-data_<Study>.tar.gz``; nested with quoted gene symbols) and the hallmark
  gene sets in OncoMark's one-column-per-hallmark CSV format;
- ``truth/``: the planted ground truth (gene roles, type signatures, sample and cell tables, measured
  summary numbers, README);
- ``SHA256SUMS``: sha256 of every file the workflow reads as a download.

Everything is drawn from ``numpy.random.default_rng(seed)`` in a fixed order, and every file is
written byte-reproducibly (gzip with mtime 0 and no file name, tar with sorted members, fixed mtime
and uid/gid 0), so the same seed gives byte-identical files. The data are simulated; gene symbols are
synthetic (``SYN00001`` …) except the 13 mitochondrial genes (``MT-ND1`` …).

The planted structure (SPEC §4) makes one-shot typing non-trivial: tumour purity, proliferation and a
sequencing batch move several hundred genes by large amounts in every type and mislead Euclidean
1-NN, while each merged type has a signature on a shared pool of 300 marker genes; 1-NN restricted
to that pool is nearly perfect. The two numbers are measured on the written files and reported.

The type signatures are low-rank: every type is a mixture of ``N_PROGRAMMES`` lineage programmes
shared by all types (each pool gene belongs to one programme). The training types span the same
programme space as the unseen test types, so the metric a Siamese network learns on the training
types (programme differences count, purity / proliferation / batch do not) transfers to the unseen
types. An earlier version gave each type its own random 25 pool genes: 19 training types then
cover only part of the pool, each gene informs one or two types, and the network memorised the
training types' genes (train loss → 0, unseen-type accuracy no better than 1-NN).

The single cells draw from their own random stream (``default_rng([seed, 1])``), so tuning the
bulk simulation does not change them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

DEFAULT_SEED = 20211
FILTER_THRESHOLD = 0.8  # SPEC §1.3
MT_FRACTION_MAX = 0.15  # SPEC §3.2
MIN_GENES = 200  # SPEC §3.2
MAX_GENES_DEMO = 1200  # detected-gene ceiling the demo config uses (the real default is 6,000)
TAR_MTIME = 1609459200  # 2021-01-01T00:00:00Z, fixed so archives are byte-reproducible

HALLMARKS = ("IA", "TPI", "GIM", "SPS", "AID", "ERI", "RCD", "EGS", "DCE", "AIM")

PROJECTS = (
    "ACC", "BLCA", "BRCA", "CESC", "CHOL", "COAD", "DLBC", "ESCA", "GBM", "HNSC", "KICH",
    "KIRC", "KIRP", "LAML", "LGG", "LIHC", "LUAD", "LUSC", "MESO", "OV", "PAAD", "PCPG",
    "PRAD", "READ", "SARC", "SKCM", "STAD", "TGCT", "THCA", "THYM", "UCEC", "UCS", "UVM",
)  # fmt: skip
MERGE = {
    "COAD": "COLO", "READ": "COLO", "KIRP": "KDNY", "KIRC": "KDNY", "KICH": "KDNY",
    "LUAD": "LUNG", "LUSC": "LUNG", "LIHC": "HCC",
}  # fmt: skip
# Shared types in descending order of TCGA primary count (strictly distinct counts: unique ranking).
SHARED_PRIMARY = {
    "BRCA": 40, "LUNG": 38, "KDNY": 36, "COLO": 34, "UCEC": 32, "HNSC": 30, "THCA": 28,
    "PRAD": 27, "BLCA": 26, "OV": 25, "STAD": 24, "HCC": 22, "SARC": 20, "PAAD": 19,
    "ESCA": 18, "TGCT": 17, "SKCM": 16, "MESO": 14, "ACC": 13, "CHOL": 12,
}  # fmt: skip
TCGA_ONLY_PRIMARY = {
    "CESC": 24, "DLBC": 15, "GBM": 22, "LAML": 20, "LGG": 26, "PCPG": 18, "THYM": 16,
    "UCS": 15, "UVM": 17,
}  # fmt: skip
# Merged types made of several projects: primaries per project.
PROJECT_SPLIT = {
    "LUNG": {"LUAD": 20, "LUSC": 18},
    "KDNY": {"KIRC": 16, "KIRP": 12, "KICH": 8},
    "COLO": {"COAD": 24, "READ": 10},
    "HCC": {"LIHC": 22},
}
MET500_COUNTS = {
    "BRCA": 24, "PRAD": 22, "SARC": 20, "LUNG": 18, "COLO": 16, "BLCA": 16, "KDNY": 14,
    "SKCM": 14, "PAAD": 14, "CHOL": 12, "HCC": 12, "THCA": 10, "HNSC": 10, "ESCA": 10, "STAD": 10,
    "ACC": 10, "OV": 10, "MESO": 8, "UCEC": 8, "TGCT": 8, "MISC": 5, "SCER": 4,
}  # fmt: skip
MET500_DROPPED = ("MISC", "SCER")
# MET500 sample ids are sequencing libraries ``<patient>-<capt|poly>-SI_<n>-<flowcell>``; the counts
# above are patients. About three quarters of the patients have a capture and a poly-A library of
# the same biopsy (near-duplicates: the same latent profile + LIBRARY_NOISE_SD); the others have one
# library. A fifth of the patients are ``TP_*`` rather than ``MO_*``, as in the real ids.
MET500_BOTH_LIBRARIES = 0.75
MET500_TP_FRACTION = 0.2
LIBRARY_NOISE_SD = 0.15  # log2 units, genes with reads only (a gene without reads stays at 0)
MET500_TISSUE = {
    "BRCA": "breast", "PRAD": "prostate", "SARC": "soft_tissue", "LUNG": "lung", "COLO": "colon",
    "BLCA": "bladder", "KDNY": "kidney", "SKCM": "skin", "PAAD": "pancreas", "CHOL": "bile_duct",
    "HCC": "liver", "THCA": "thyroid", "HNSC": "head_neck", "ESCA": "esophagus", "STAD": "stomach",
    "ACC": "adrenal", "OV": "ovary", "MESO": "pleura", "UCEC": "uterus", "TGCT": "testis", "MISC": "",
    "SCER": "",
}  # fmt: skip
# TCGA patients with a second primary vial (``-01B`` beside ``-01A``), per project: chosen so that
# the ranking of the shared types by TCGA primary samples does not change (HCC 23 < STAD 24, SARC
# 21 < HCC, MESO 15 < SKCM 16); LIHC, SARC and MESO are test types, BRCA and CESC training types.
SECOND_VIALS = {"BRCA": 1, "CESC": 1, "LIHC": 1, "SARC": 1, "MESO": 1}
# Non-primary samples the workflow must drop (sample code → GDC sample type).
NORMALS = {"BRCA": 4, "KIRC": 3, "LUAD": 3, "THCA": 3, "PRAD": 2, "LIHC": 3, "COAD": 2, "HNSC": 2, "STAD": 2}
METASTATIC = {"SKCM": 6}
RECURRENT = {"GBM": 1, "LGG": 1}
CLINICAL_ONLY = ("BRCA", "OV", "UCEC")  # one 10A blood-normal row in the clinical table only
SAMPLE_TYPES = {
    "01": "Primary Tumor",
    "02": "Recurrent Tumor",
    "03": "Primary Blood Derived Cancer - Peripheral Blood",
    "06": "Metastatic",
    "10": "Blood Derived Normal",
    "11": "Solid Tissue Normal",
}
BLOOD_PROJECTS = ("LAML",)

MT_SYMBOLS = (
    "MT-ND1", "MT-ND2", "MT-CO1", "MT-CO2", "MT-ATP8", "MT-ATP6", "MT-CO3", "MT-ND3",
    "MT-ND4L", "MT-ND4", "MT-ND5", "MT-ND6", "MT-CYB",
)  # fmt: skip
SITES = ("liver", "lymph_node", "bone", "lung", "brain", "soft_tissue")
SITE_PROBS = (0.30, 0.25, 0.15, 0.12, 0.08, 0.10)

# Gene universe (v36 genes; MET500 adds MET500-only ids).
N_V36 = 2500
N_MET_ONLY = 50  # 2 of them ENSGR (PAR_Y in gencode v23 style), 48 synthetic
N_TCGA_ONLY = 100
N_PAR_Y = 2
ROLE_SIZES = {
    "low_both": 1000,  # about half the genes fail the filter: ~1,250 kept keep the CNN cheap on 2 cores
    "low_tcga": 90,
    "low_met500": 90,
    "marker_pool": 300,
    "purity": 200,
    "proliferation": 120,
    "batch": 150,
    "site": 15 * len(SITES),
}
# Type signatures: every merged type is a mixture of a few lineage programmes shared by all types
# (epithelial, squamous, neural, mesenchymal, …). Each marker-pool gene belongs to one programme
# with a fixed loading; a type's effect on a gene = its programme activity × the gene's loading.
# Because the 19 training types span the same programme space as the unseen test types, a metric
# learned on the training types transfers (with type-specific random gene sets it did not: the
# Siamese net memorised the training types' genes and failed on unseen types).
N_PROGRAMMES = 12
PROGRAMME_SD = 1.0  # activity of a programme in a type ~ N(0, PROGRAMME_SD)
PROGRAMME_LOADING = (0.6, 1.0)  # |loading| of a pool gene on its programme (random sign)
SC_SIGNATURE_SIZE = 25  # malignant single cells express their type's 25 strongest pool genes

# What the workflow measured on this demo (not recomputed by the generator: training takes minutes).
# Filled in from results/evaluation/ after `snakemake --cores 2` with config/config.yaml; CPU runs
# with the same seed are deterministic.
WORKFLOW_MEASURED = """
`snakemake --cores 2` with `config/config.yaml` (pretrain: 30 epochs, batch 32, Adam lr 5e-4,
patience 10, 15 % held out; siamese: distance sq, 80 iterations of 128 pairs, lr 1e-4, validation
every 20 iterations on 300 10-way tasks, best weights kept; seed 20211; CPU, 2 threads).
Accuracy on 2,000 N-way one-shot tasks over the test types' test samples (the same tasks for every
method; tasks never pair two samples of one patient; `results/evaluation/oneshot_results.tsv`).
TCGA runs: 10 unseen types, 92 test samples of 89 patients (three `-01A`/`-01B` pairs); MET500 runs:
10 unseen types, 59 metastatic test libraries of 59 patients (one library per patient).

| run (model → test types) | N | Siamese | 1-NN Euclidean | 1-NN Pearson | CNN-feature cosine |
|---|---|---|---|---|---|
| tcga9 | 6 | 95.7 % | 44.7 % | 45.5 % | 85.7 % |
|  | 8 | 93.8 % | 37.0 % | 38.0 % | 82.7 % |
|  | 10 | 91.8 % | 32.4 % | 33.5 % | 80.3 % |
| tcga14 | 6 | 97.5 % | 44.7 % | 45.5 % | 95.2 % |
|  | 8 | 96.2 % | 37.0 % | 38.0 % | 93.0 % |
|  | 10 | 95.3 % | 32.4 % | 33.5 % | 90.5 % |
| tcga19 | 6 | 97.2 % | 44.7 % | 45.5 % | 93.0 % |
|  | 8 | 96.7 % | 37.0 % | 38.0 % | 91.6 % |
|  | 10 | 95.3 % | 32.4 % | 33.5 % | 89.9 % |
| tcga19_scratch | 6 | 93.2 % | 44.7 % | 45.5 % | 93.0 % |
|  | 8 | 90.9 % | 37.0 % | 38.0 % | 91.6 % |
|  | 10 | 89.3 % | 32.4 % | 33.5 % | 89.9 % |
| met500 | 6 | 83.8 % | 45.2 % | 47.0 % | 62.5 % |
|  | 8 | 81.3 % | 39.6 % | 41.6 % | 56.9 % |
|  | 10 | 80.3 % | 34.8 % | 36.5 % | 54.9 % |
| tcga19_on_met500 | 6 | 93.7 % | 45.2 % | 47.0 % | 91.3 % |
|  | 8 | 91.1 % | 39.6 % | 41.6 % | 87.3 % |
|  | 10 | 89.8 % | 34.8 % | 36.5 % | 85.2 % |

Validation accuracy (10-way) peaks early and then falls while the training loss keeps dropping
(the network starts to memorise the training types): best iteration 40 for tcga19 and tcga14
(98.0 % / 96.3 %; 75 % / 71 % at iteration 100 of a longer run), 60 for tcga9, 80 for met500 (86.0 %); from
scratch the Siamese net needs 80 iterations to reach 91 %. The best-validation weights are the
output. The sentences below were measured on the previous demo version (one sample per patient,
before the MET500 libraries and TCGA vials were added). The 1D-CNN trained on the 10 top shared primary types
classifies the 148 MET500 samples of those types with 100.0 % accuracy (95 % CI 97.5–100 %; paper
83.33 %). The same library code with training seeds 1 and 7 gave 6-way Siamese accuracies of
98.3–98.6 % (tcga19), 98.2–98.7 % (tcga14) and 88.1–90.7 % (met500), and 99.3 % for the
primary → metastatic CNN.

Wall time per job on a lightly loaded 2-core machine: pretraining 4.5–8.1 s, Siamese training
10.2–11.6 s, one-shot evaluation 3.4–4.4 s; the bulk branch from the downloads to the summary in about
2 minutes. Timings grow several-fold when other jobs share the two cores.
"""
N_TCGA_BATCHES = 4
# Amplitudes of the planted bulk programmes (log2 units), tuned so that Euclidean 1-NN is mediocre.
PURITY_AMP = (4.0, 6.0)  # × 2·share·(1 − purity)
PROLIFERATION_AMP = (0.8, 1.5)  # × z score
BATCH_SD = 1.3
NOISE_SD = (0.3, 0.6)
BULK_DECIMALS = 1  # latent log2(FPKM+1) rounded to 0.1 (written with 4 decimals) to keep files small

# Single-cell studies: (folder, tissue, bulk type whose up-signature malignant cells express,
# tumour samples, normal sample?, role).
STUDIES = (
    ("Data_Demo2020_Breast", "Breast", "BRCA", 5, True, "training"),
    ("Data_Demo2021_Brain", "Brain", "GBM", 5, False, "training"),
    ("Data_Demo2022_Breast", "Breast", "BRCA", 4, False, "validation"),
)
N_SC_GENES = 1800
STUDY_MISSING_HALLMARK_GENES = "Data_Demo2021_Brain"  # lacks 2 hallmark genes
STUDY_DUPLICATED_SYMBOL = "Data_Demo2022_Breast"  # has one symbol twice in Genes.txt
# The real 3CA quirks (docs/REAL_FORMATS.md), one study each:
# - Data_Demo2020_Breast: flat, Meta-data.csv inside the data archive (normal sample marked by
#   source / cancer_type = "Normal"), and the tar.gz carries a harmless "/" root member;
# - Data_Demo2021_Brain: one sub-folder per technology (Neftel2019-like): SmartSeq2/ (TPM,
#   lower-case names, Cells.csv) for the first SC_SMARTSEQ2_SAMPLES samples, Group1/ (UMI, _10X
#   names, space-separated Cells_10X.txt) for the others; SmartSeq2 lacks SC_SMARTSEQ2_MISSING
#   background genes; its metadata is a separate Meta-data_Demo2021_Brain.tar.gz;
# - Data_Demo2022_Breast: nested one folder down (Breast/), every symbol of Genes.txt quoted, no
#   sample metadata at all.
STUDY_ROOT_MEMBER = "Data_Demo2020_Breast"
STUDY_MULTI_TECHNOLOGY = "Data_Demo2021_Brain"
STUDY_NESTED_QUOTED = "Data_Demo2022_Breast"
NESTED_FOLDER = "Breast"
SC_SMARTSEQ2_SAMPLES = 2
SC_SMARTSEQ2_MISSING = 6
TECHNOLOGIES = ("SmartSeq2", "Group1")
NONMALIGNANT_TYPES = {
    "Breast": ("T_cell", "Macrophage", "Fibroblast", "Endothelial"),
    "Brain": ("Macrophage", "Oligodendrocyte", "T_cell"),
}
NORMAL_TYPES = ("Epithelial", "Fibroblast", "Endothelial", "T_cell")
HALLMARK_FOLD = 4.0  # active hallmark: its genes × 4 in the cell's expression proportions
# UMIs per cell: log-normal (sd 0.3) around SC_LIB_MEDIAN, clipped to SC_LIB_RANGE; modest so that the
# archives stay small (a typical cell detects ~300 genes, every passing cell 215–700).
SC_LIB_MEDIAN = 420.0
SC_LIB_RANGE = (340.0, 1100.0)
SC_MIN_GENES_PASSING = MIN_GENES + 15  # passing cells are redrawn with a larger library below this
SC_DOUBLET_LIB = (4000.0, 6000.0)  # doublets detect > 1,300 genes

DOWNLOADED_GLOBS = ("bulk/*", "scrna/*")


# ----------------------------------------------------------------------------- byte-exact writers


def _gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as fh:
        fh.write(data)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _tsv(df: pd.DataFrame, float_format: str | None = None, sep: str = "\t") -> bytes:
    return df.to_csv(sep=sep, index=False, float_format=float_format, lineterminator="\n").encode()


def _tar_gz(files: dict[str, bytes], root_member: bool = False) -> bytes:
    """A .tar.gz of ``files`` (archive path → bytes) with a member for every folder: sorted
    members, fixed mtime, uid/gid 0, no user names; ``root_member`` adds the harmless ``/`` entry
    that 3CA folder downloads carry (REAL_FORMATS.md)."""
    folders = sorted({"/".join(name.split("/")[:k]) for name in files for k in range(1, name.count("/") + 1)})
    members = sorted([(f, None) for f in folders] + [(n, files[n]) for n in files])
    if root_member:
        members.insert(0, ("/", None))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = TAR_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return _gzip_bytes(raw.getvalue())


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- genes


def _unique_ints(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    return np.sort(rng.choice(np.arange(low, high), size=n, replace=False))


def _build_genes(rng: np.random.Generator) -> pd.DataFrame:
    """The bulk gene universe: v36 genes (with roles) plus MET500-only genes."""
    n_all = N_V36 + N_MET_ONLY - 2  # the 2 ENSGR rows are added from the PAR genes below
    numbers = rng.permutation(_unique_ints(rng, n_all, 1000, 290000))
    ids = np.array([f"ENSG{n:011d}" for n in numbers])
    genes = pd.DataFrame({"gene_id": ids})
    genes["in_tcga"] = np.arange(n_all) < N_V36
    genes["in_met500"] = True

    # roles of the v36 genes: the first 13 (in permuted order) are the MT genes (background)
    v36 = np.arange(N_V36)
    role = np.array(["background"] * n_all, dtype=object)
    order = rng.permutation(v36[len(MT_SYMBOLS) :])
    pos = 0
    for name, size in ROLE_SIZES.items():
        role[order[pos : pos + size]] = name
        pos += size
    hallmark_sizes = rng.integers(20, 41, size=len(HALLMARKS))
    for code, size in zip(HALLMARKS, hallmark_sizes):
        role[order[pos : pos + size]] = f"hallmark_{code}"
        pos += size
    genes["role"] = role
    # site genes: 15 per site
    site = np.array([""] * n_all, dtype=object)
    site_idx = np.flatnonzero(role == "site")
    for k, s in enumerate(SITES):
        site[site_idx[k * 15 : (k + 1) * 15]] = s
    genes["site"] = site

    # symbols: MT genes real, everything else synthetic, in random order
    symbols = np.array([""] * n_all, dtype=object)
    symbols[: len(MT_SYMBOLS)] = MT_SYMBOLS
    other = np.arange(len(MT_SYMBOLS), n_all)
    syn = rng.permutation(len(other)) + 1
    symbols[other] = [f"SYN{k:05d}" for k in syn]
    genes["symbol"] = symbols

    # TCGA-only genes (absent from MET500): from background and low_both
    bg = np.flatnonzero((role == "background") & (np.arange(n_all) >= len(MT_SYMBOLS)) & genes["in_tcga"].to_numpy())
    lowb = np.flatnonzero(role == "low_both")
    absent = np.concatenate([rng.choice(bg, 40, replace=False), rng.choice(lowb, N_TCGA_ONLY - 40, replace=False)])
    genes.loc[absent, "in_met500"] = False

    # versions: v36 = v23 + k (k ≥ 1) for genes in both; MET500-only genes only have v23
    v23 = rng.integers(1, 16, size=n_all)
    genes["version_v36"] = np.where(genes["in_tcga"], v23 + rng.integers(1, 5, size=n_all), 0)
    genes["version_v23"] = np.where(genes["in_met500"], v23, 0)

    # chromosomes and coordinates (MT genes on chrM)
    chroms = np.array([f"chr{c}" for c in list(range(1, 23)) + ["X"]])
    genes["chrom"] = rng.choice(chroms, size=n_all)
    genes.loc[: len(MT_SYMBOLS) - 1, "chrom"] = "chrM"
    genes["start"] = rng.integers(10_000, 150_000_000, size=n_all)
    genes.loc[: len(MT_SYMBOLS) - 1, "start"] = np.sort(rng.integers(500, 16000, size=len(MT_SYMBOLS)))
    length = rng.integers(500, 120_000, size=n_all)
    length[: len(MT_SYMBOLS)] = rng.integers(200, 1800, size=len(MT_SYMBOLS))
    genes["end"] = genes["start"] + length
    genes["strand"] = rng.choice(np.array(["+", "-"]), size=n_all)
    genes["par_y"] = False
    # two background chrX genes in PAR1 with a _PAR_Y twin in gencode v36 (and ENSGR in v23)
    par = rng.choice(np.flatnonzero((role == "background") & genes["in_tcga"].to_numpy() & genes["in_met500"].to_numpy() & (np.arange(n_all) >= len(MT_SYMBOLS))), N_PAR_Y, replace=False)
    genes.loc[par, "chrom"] = "chrX"
    genes.loc[par, "start"] = rng.integers(300_000, 2_700_000, size=N_PAR_Y)
    genes.loc[par, "end"] = genes.loc[par, "start"] + rng.integers(2_000, 50_000, size=N_PAR_Y)
    genes.loc[par, "par_y"] = True
    ensgr = genes.loc[par].copy()
    ensgr["gene_id"] = [g.replace("ENSG0", "ENSGR", 1) for g in ensgr["gene_id"]]
    ensgr["in_tcga"] = False
    ensgr["par_y"] = False
    ensgr["role"] = "background"
    ensgr["version_v36"] = 0
    ensgr["version_v23"] = rng.integers(1, 10, size=N_PAR_Y)
    ensgr["chrom"] = "chrY"
    return pd.concat([genes, ensgr], ignore_index=True)


# ----------------------------------------------------------------------------- bulk samples


_ALNUM = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))


def _code(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(_ALNUM, size=n))


def _build_bulk_samples(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    used_tss: set[str] = set()
    used_participants: set[str] = set()
    primaries: dict[str, int] = {}
    for merged, n in {**SHARED_PRIMARY, **TCGA_ONLY_PRIMARY}.items():
        primaries.update(PROJECT_SPLIT.get(merged, {merged: n}))
    for proj in PROJECTS:
        tss = []
        while len(tss) < 3:
            t = _code(rng, 2)
            if t not in used_tss:
                used_tss.add(t)
                tss.append(t)
        n_prim = primaries[proj]
        extra = [("11", NORMALS.get(proj, 0)), ("06", METASTATIC.get(proj, 0)), ("02", RECURRENT.get(proj, 0))]
        participants = []
        while len(participants) < n_prim + sum(n for code, n in extra if code != "11"):
            p = _code(rng, 4)
            if p not in used_participants:
                used_participants.add(p)
                participants.append(f"TCGA-{rng.choice(tss)}-{p}")
        prim_code = "03" if proj in BLOOD_PROJECTS else "01"
        entries = [(participants[i], prim_code) for i in range(n_prim)]
        k = n_prim
        for code, n in extra:
            if code == "11":  # matched normals of some primary patients
                for i in rng.choice(n_prim, size=n, replace=False):
                    entries.append((participants[i], "11"))
            else:
                for _ in range(n):
                    entries.append((participants[k], code))
                    k += 1
        for part, code in entries:
            rows.append(
                {
                    "sample_id": f"{part}-{code}A",
                    "cohort": "TCGA",
                    "project": f"TCGA-{proj}",
                    "cancer_type": MERGE.get(proj, proj),
                    "sample_code": f"{code}A",
                    "sample_type": SAMPLE_TYPES[code],
                    "kept": code == prim_code,
                    "in_matrix": True,
                }
            )
        if proj in CLINICAL_ONLY:
            rows.append(
                {
                    "sample_id": f"{participants[0]}-10A",
                    "cohort": "TCGA",
                    "project": f"TCGA-{proj}",
                    "cancer_type": MERGE.get(proj, proj),
                    "sample_code": "10A",
                    "sample_type": SAMPLE_TYPES["10"],
                    "kept": False,
                    "in_matrix": False,
                }
            )
    met_ids = rng.permutation(_unique_ints(rng, sum(MET500_COUNTS.values()), 1000, 1800))
    i = 0
    for label, n in MET500_COUNTS.items():
        for _ in range(n):
            rows.append(
                {
                    "sample_id": f"MO_{met_ids[i]}",
                    "cohort": "MET500",
                    "project": label,
                    "cancer_type": label,
                    "sample_code": "",
                    "sample_type": "Metastatic",
                    "kept": label not in MET500_DROPPED,
                    "in_matrix": True,
                }
            )
            i += 1
    s = pd.DataFrame(rows)
    n = len(s)
    tcga = (s["cohort"] == "TCGA").to_numpy()
    met = ~tcga
    s["purity"] = np.where(tcga, 0.40 + 0.55 * rng.beta(4.0, 2.5, n), 0.30 + 0.50 * rng.beta(2.5, 2.5, n))
    normal = s["sample_code"].str.startswith(("10", "11")).to_numpy()
    s.loc[normal, "purity"] = 0.0
    s["purity"] = s["purity"].round(3)
    s["immune_share"] = rng.uniform(0.3, 0.7, n).round(3)  # of the non-tumour fraction
    s["proliferation"] = (rng.normal(0.0, 1.0, n) + np.where(met, 0.3, 0.0) - np.where(normal, 1.5, 0.0)).round(3)
    s["batch"] = np.where(tcga, np.array([f"plate{k + 1}" for k in rng.integers(0, N_TCGA_BATCHES, n)]), "MET500")
    s["biopsy_tissue"] = np.where(met, rng.choice(np.array(SITES), size=n, p=SITE_PROBS), "")
    # hallmark activities in [0, 1]: per type a mean, per sample a Beta draw; metastases: higher AIM
    types = sorted(set(s["cancer_type"]))
    means = {t: rng.uniform(0.2, 0.7, len(HALLMARKS)) for t in types}
    kappa = 8.0
    for j, code in enumerate(HALLMARKS):
        m = np.array([means[t][j] for t in s["cancer_type"]])
        if code == "AIM":
            m = np.where(met | s["sample_code"].eq("06A").to_numpy(), np.minimum(m + 0.25, 0.95), m)
        m = np.where(normal, 0.1, m)
        s[code] = rng.beta(m * kappa, (1 - m) * kappa).round(3)
    return s


def _flowcell(rng: np.random.Generator) -> str:
    return _code(rng, 5) + str(rng.choice(np.array(["ANXX", "ADXX", "BCXX"])))


def _add_libraries_and_vials(rng: np.random.Generator, samples: pd.DataFrame, y: np.ndarray
                             ) -> tuple[pd.DataFrame, np.ndarray]:
    """Patients as in the real sources: MET500 libraries and second TCGA vials.

    ``samples`` is the table of :func:`_build_bulk_samples` (one MET500 sample per patient, one
    primary per TCGA patient) and ``y`` its latent values (rows = the ``in_matrix`` rows). MET500
    patients become ``MO_<n>`` / ``TP_<n>`` with libraries ``<patient>-<poly|capt>-SI_<n>-<flowcell>``:
    ``MET500_BOTH_LIBRARIES`` of them have both (the poly-A library keeps the patient's latent
    profile, the capture library is the profile + library noise), the others one library (a capture
    library alone gets the noise too). ``SECOND_VIALS`` TCGA patients get a ``-01B`` vial (profile +
    noise). New rows are appended at the end of ``samples`` and of ``y``; columns ``patient``,
    ``library`` (poly / capt; empty for TCGA), ``library_kept`` (the library the workflow keeps with
    ``met500.libraries: one_per_patient``, poly-A preferred; true for TCGA) and ``tissue`` (MET500
    primary site, empty for some) are added; MET500 ``kept`` = ``library_kept`` and a kept label.
    Draws only from ``rng`` (the bulk libraries' own stream).
    """
    s = samples.copy()
    y = y.copy()
    s["patient"] = np.where(s["cohort"] == "TCGA", s["sample_id"].str[:12], "")
    s["library"] = ""
    s["library_kept"] = True
    s["tissue"] = ""
    row_of = {idx: r for r, idx in enumerate(np.flatnonzero(s["in_matrix"].to_numpy()))}
    new_rows, new_y = [], []

    def noisy(r: int) -> np.ndarray:
        base = y[r]
        out = base + rng.normal(0.0, LIBRARY_NOISE_SD, base.shape) * (base > 0)
        return np.round(np.maximum(out, 0.0), BULK_DECIMALS) + 0.0

    for proj, n in SECOND_VIALS.items():
        cand = s.index[(s["project"] == f"TCGA-{proj}") & s["kept"] & s["in_matrix"]].to_numpy()
        for i in np.sort(rng.choice(cand, size=n, replace=False)):
            row = s.loc[i].copy()
            row["sample_id"] = row["sample_id"][:-1] + "B"
            row["sample_code"] = row["sample_code"][:-1] + "B"
            new_rows.append(row)
            new_y.append(noisy(row_of[i]))
    met = np.flatnonzero((s["cohort"] == "MET500").to_numpy())
    n = len(met)
    order = rng.permutation(n)
    kind = np.empty(n, dtype=object)
    n_both = int(round(MET500_BOTH_LIBRARIES * n))
    kind[order[:n_both]] = "both"
    kind[order[n_both:]] = np.where(rng.random(n - n_both) < 0.5, "poly", "capt")
    tp = rng.random(n) < MET500_TP_FRACTION
    blank_tissue = rng.random(n) < 0.08
    si = rng.choice(np.arange(1000, 10000), size=2 * n, replace=False)
    k = 0
    for j, i in enumerate(met):
        patient = f"{'TP' if tp[j] else 'MO'}_{s.at[i, 'sample_id'].split('_')[1]}"
        label = s.at[i, "cancer_type"]
        tissue = "" if blank_tissue[j] else MET500_TISSUE[label]
        libs = ["poly", "capt"] if kind[j] == "both" else [kind[j]]
        for m, lib in enumerate(libs):
            lib_id = f"{patient}-{lib}-SI_{si[k]}-{_flowcell(rng)}"
            k += 1
            if m == 0:  # the patient's row becomes its first library
                s.at[i, "sample_id"] = lib_id
                s.at[i, "patient"] = patient
                s.at[i, "library"] = lib
                s.at[i, "tissue"] = tissue
                if lib == "capt":  # a capture library alone: profile + library noise
                    y[row_of[i]] = noisy(row_of[i])
            else:
                row = s.loc[i].copy()
                row["sample_id"] = lib_id
                row["library"] = lib
                row["library_kept"] = False  # poly-A preferred
                row["kept"] = False
                new_rows.append(row)
                new_y.append(noisy(row_of[i]))
    out = pd.concat([s, pd.DataFrame(new_rows)], ignore_index=True)
    for col in ("kept", "in_matrix", "library_kept"):
        out[col] = out[col].astype(bool)
    return out, np.vstack([y, np.array(new_y)])


# ----------------------------------------------------------------------------- bulk expression


def _type_signatures(rng: np.random.Generator, genes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Low-rank type signatures on the marker pool (see ``N_PROGRAMMES``).

    Sets ``genes["programme"]`` (1 … N_PROGRAMMES for pool genes, 0 elsewhere) and
    ``genes["loading"]``; returns ``(sig, activity)``: ``sig`` one row per type and pool gene
    (``cancer_type, gene_index, programme, effect`` with effect = activity × loading, rounded to
    0.01), ``activity`` types × programmes.
    """
    pool = np.flatnonzero(genes["role"].to_numpy() == "marker_pool")
    types = sorted(set(SHARED_PRIMARY) | set(TCGA_ONLY_PRIMARY))
    # balanced programme sizes (300 pool genes → 25 per programme), in random gene order
    programme = np.zeros(len(genes), dtype=int)
    programme[pool] = rng.permutation(np.arange(len(pool)) % N_PROGRAMMES) + 1
    loading = np.zeros(len(genes))
    loading[pool] = rng.choice(np.array([-1.0, 1.0]), len(pool)) * rng.uniform(*PROGRAMME_LOADING, len(pool))
    genes["programme"] = programme
    genes["loading"] = np.round(loading, 3)
    activity = pd.DataFrame(rng.normal(0.0, PROGRAMME_SD, (len(types), N_PROGRAMMES)).round(3), index=types,
                            columns=[f"P{k + 1}" for k in range(N_PROGRAMMES)])
    rows = []
    for t in types:
        eff = activity.loc[t].to_numpy()[programme[pool] - 1] * genes["loading"].to_numpy()[pool]
        for g, e in zip(pool, eff):
            rows.append({"cancer_type": t, "gene_index": g, "programme": programme[g], "effect": round(float(e), 2)})
    sig = pd.DataFrame(rows)
    sig["gene_id"] = genes["gene_id"].to_numpy()[sig["gene_index"]]
    sig["symbol"] = genes["symbol"].to_numpy()[sig["gene_index"]]
    return sig, activity


def sc_signature(sig: pd.DataFrame, cancer_type: str, size: int = SC_SIGNATURE_SIZE) -> pd.DataFrame:
    """The ``size`` pool genes with the largest |effect| of a type (ties: lower gene index first):
    the programme its malignant single cells express."""
    t = sig[sig["cancer_type"] == cancer_type].sort_values("gene_index", kind="mergesort")
    order = np.argsort(-t["effect"].abs().to_numpy(), kind="mergesort")[:size]
    return t.iloc[np.sort(order)]


def _simulate_bulk(rng: np.random.Generator, genes: pd.DataFrame, samples: pd.DataFrame, sig: pd.DataFrame) -> np.ndarray:
    """Latent log2(FPKM+1) values, samples × genes (rounded to BULK_DECIMALS, ≥ 0)."""
    n_g = len(genes)
    role = genes["role"].to_numpy()
    s = samples[samples["in_matrix"]].reset_index(drop=True)
    n_s = len(s)
    met = (s["cohort"] == "MET500").to_numpy()
    low = np.char.startswith(role.astype(str), "low_")

    base_t = rng.uniform(1.5, 7.0, n_g)
    base_t[role == "marker_pool"] = rng.uniform(3.5, 7.0, (role == "marker_pool").sum())
    base_t[role == "site"] = rng.uniform(1.5, 2.5, (role == "site").sum())
    base_t[role == "batch"] = rng.uniform(4.5, 8.0, (role == "batch").sum())  # far above 0: shifts are not clipped
    low_level = rng.uniform(-0.9, 0.45, n_g)  # mostly zeros after clipping, as real low genes
    border = rng.random(n_g) < 0.04  # a few low genes close to the threshold (latent mean 0.70–0.75)
    low_level[border] = rng.uniform(0.70, 0.75, border.sum())
    base_m = np.maximum(base_t + rng.normal(0.0, 0.4, n_g), 1.2)  # MET500 protocol shift
    base_m[role == "low_tcga"] = rng.uniform(2.0, 5.0, (role == "low_tcga").sum())
    for r, target in (("low_both", "both"), ("low_tcga", "tcga"), ("low_met500", "met")):
        idx = role == r
        if target in ("both", "tcga"):
            base_t[idx] = low_level[idx]
        if target in ("both", "met"):
            base_m[idx] = low_level[idx]
    noise_sd = rng.uniform(*NOISE_SD, n_g)
    noise_sd[low] = rng.uniform(0.12, 0.3, low.sum())

    y = np.where(met[:, None], base_m[None, :], base_t[None, :])
    y = y + rng.normal(0.0, 1.0, (n_s, n_g)) * noise_sd[None, :]

    purity = s["purity"].to_numpy()
    # type signatures, attenuated by purity
    att = 0.4 + 0.6 * purity
    types = s["cancer_type"].to_numpy()
    for t, grp in sig.groupby("cancer_type"):
        rows = np.flatnonzero(types == t)
        if len(rows):
            y[np.ix_(rows, grp["gene_index"].to_numpy())] += att[rows, None] * grp["effect"].to_numpy()[None, :]
    # purity programme: immune and stromal halves, ∝ (1 − purity)
    pur_idx = np.flatnonzero(role == "purity")
    immune = pur_idx[: len(pur_idx) // 2]
    stromal = pur_idx[len(pur_idx) // 2 :]
    share = s["immune_share"].to_numpy()
    amp = rng.uniform(*PURITY_AMP, n_g)
    y[:, immune] += (2 * share * (1 - purity))[:, None] * amp[None, immune]
    y[:, stromal] += (2 * (1 - share) * (1 - purity))[:, None] * amp[None, stromal]
    # proliferation
    pro_idx = np.flatnonzero(role == "proliferation")
    y[:, pro_idx] += s["proliferation"].to_numpy()[:, None] * rng.uniform(*PROLIFERATION_AMP, len(pro_idx))[None, :]
    # sequencing batch
    bat_idx = np.flatnonzero(role == "batch")
    batches = sorted(set(s["batch"]))
    shifts = {b: rng.normal(0.0, BATCH_SD, len(bat_idx)) for b in batches}
    for b in batches:
        rows = np.flatnonzero(s["batch"].to_numpy() == b)
        y[np.ix_(rows, bat_idx)] += shifts[b][None, :]
    # metastatic site: normal tissue of the biopsy site, ∝ non-tumour content
    site_amp = rng.uniform(2.5, 4.0, n_g)
    site_of = genes["site"].to_numpy()
    for st in SITES:
        g_idx = np.flatnonzero(site_of == st)
        rows = np.flatnonzero(s["biopsy_tissue"].to_numpy() == st)
        y[np.ix_(rows, g_idx)] += (0.5 + (1 - purity[rows]))[:, None] * site_amp[None, g_idx]
    # hallmark programmes
    hm_amp = rng.uniform(1.5, 2.5, n_g)
    for code in HALLMARKS:
        g_idx = np.flatnonzero(role == f"hallmark_{code}")
        y[:, g_idx] += s[code].to_numpy()[:, None] * hm_amp[None, g_idx]
    y = np.maximum(y, 0.0)
    y[:, genes["gene_id"].str.startswith("ENSGR").to_numpy()] = 0.0  # PAR_Y twins carry no reads
    return np.round(y, BULK_DECIMALS) + 0.0


def _met500_values(y: np.ndarray) -> np.ndarray:
    """log2(FPKM+1) → log2(FPKM+0.001), 4 decimals (FPKM 0 → log2(0.001))."""
    fpkm = np.maximum(np.exp2(y) - 1.0, 0.0)
    return np.round(np.log2(fpkm + 0.001), 4) + 0.0


def met500_to_log2_fpkm1(v: np.ndarray) -> np.ndarray:
    """SPEC §1.2: log2(x+0.001) → log2(x+1), clipped at 0 (4-decimal rounding of log2(0.001))."""
    return np.maximum(np.log2(np.maximum(np.exp2(v) - 0.001, 0.0) + 1.0), 0.0)


# ----------------------------------------------------------------------------- measurement


def gene_filter(x: np.ndarray, threshold: float = FILTER_THRESHOLD) -> np.ndarray:
    """SPEC §1.3 for one cohort (samples × genes): keep unless mean AND sd are both < threshold."""
    mean = x.mean(axis=0)
    sd = x.std(axis=0, ddof=1)
    return ~((mean < threshold) & (sd < threshold))


def one_shot_1nn(x: np.ndarray, labels: np.ndarray, n_way: int = 6, n_tasks: int = 2000, seed: int = 0) -> float:
    """Accuracy of Euclidean 1-NN on random N-way one-shot tasks (SPEC §2.3)."""
    rng = np.random.default_rng(seed)
    sq = (x * x).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))
    types = np.array(sorted(set(labels)))
    members = {t: np.flatnonzero(labels == t) for t in types}
    correct = 0
    for _ in range(n_tasks):
        chosen = rng.choice(types, n_way, replace=False)
        support = np.array([rng.choice(members[t]) for t in chosen])
        k = rng.integers(n_way)
        candidates = members[chosen[k]][members[chosen[k]] != support[k]]
        q = rng.choice(candidates)
        correct += int(np.argmin(d[q, support]) == k)
    return correct / n_tasks


def _measure_bulk(genes: pd.DataFrame, samples: pd.DataFrame, y: np.ndarray, met_vals: np.ndarray) -> dict:
    """Filter the cohorts as the workflow does, then the two 1-NN accuracies on the test types."""
    s = samples[samples["in_matrix"]].reset_index(drop=True)
    tcga_rows = np.flatnonzero((s["cohort"] == "TCGA") & s["kept"])
    met_rows = np.flatnonzero(s["cohort"] == "MET500")
    in_t = genes["in_tcga"].to_numpy()
    in_m = genes["in_met500"].to_numpy()
    xt = y[tcga_rows]
    xm = met500_to_log2_fpkm1(met_vals[met_rows])
    keep_t = gene_filter(xt) & in_t
    keep_m = gene_filter(xm) & in_m
    # PAR_Y twins (all 0) may be dropped or averaged with their X copy (halving it): the filter
    # outcome must not depend on that choice
    par = genes["par_y"].to_numpy()
    for x, keep in ((xt, keep_t), (xm, keep_m)):
        halved = x.copy()
        halved[:, par] /= 2.0
        if ((gene_filter(halved) & keep) != keep).any():
            raise AssertionError("the filter outcome of a PAR gene depends on the PAR_Y policy")
    kept = keep_t & keep_m
    ranked = list(SHARED_PRIMARY)  # descending TCGA primary count
    test_types = ranked[10:]
    lab = s["cancer_type"].to_numpy()[tcga_rows]
    sel = np.isin(lab, test_types)
    pool = (genes["role"].to_numpy() == "marker_pool") & kept
    euclid = one_shot_1nn(xt[sel][:, kept], lab[sel], seed=1)
    marker = one_shot_1nn(xt[sel][:, pool], lab[sel], seed=1)
    keep07 = gene_filter(xt, 0.7) & in_t & gene_filter(xm, 0.7) & in_m
    return {
        "kept_tcga": keep_t,
        "kept_met500": keep_m,
        "kept": kept,
        "n_kept_tcga": int(keep_t.sum()),
        "n_kept_met500": int(keep_m.sum()),
        "n_kept": int(kept.sum()),
        "n_kept_at_0.7": int(keep07.sum()),
        "test_types": test_types,
        "n_test_samples": int(sel.sum()),
        "one_shot_6way_euclidean_all_filtered": euclid,
        "one_shot_6way_euclidean_marker_pool": marker,
        "n_marker_pool_kept": int(pool.sum()),
    }


# ----------------------------------------------------------------------------- bulk files


def _write_bulk(out: Path, genes: pd.DataFrame, samples: pd.DataFrame, y: np.ndarray, met_vals: np.ndarray, rng) -> None:
    bulk = out / "bulk"
    s = samples[samples["in_matrix"]].reset_index(drop=True)
    # TCGA rows sorted by versioned id (as in the GDC STAR files; PAR_Y twins right after their X copy);
    # the probe map is in genome order (chrom, start), as the gencode GTF
    tg = genes[genes["in_tcga"]].copy()
    tg["row_id"] = tg["gene_id"] + "." + tg["version_v36"].astype(str)
    par = tg[tg["par_y"]].copy()
    par["row_id"] = par["row_id"] + "_PAR_Y"
    par["chrom"] = "chrY"
    tg["is_par_twin"] = False
    par["is_par_twin"] = True
    rows = pd.concat([tg, par])
    chrom_rank = {f"chr{c}": i for i, c in enumerate(list(range(1, 23)) + ["X", "Y", "M"])}
    rows["chrom_rank"] = rows["chrom"].map(chrom_rank)
    rows = rows.sort_values(["chrom_rank", "start", "row_id"], kind="mergesort")
    probemap = pd.DataFrame(
        {
            "id": rows["row_id"].to_numpy(),
            "gene": rows["symbol"].to_numpy(),
            "chrom": rows["chrom"].to_numpy(),
            "chromStart": rows["start"].to_numpy(),
            "chromEnd": rows["end"].to_numpy(),
            "strand": rows["strand"].to_numpy(),
        }
    )
    _write(bulk / "gencode.v36.annotation.gtf.gene.probemap", _tsv(probemap))
    rows = rows.sort_values("row_id", kind="mergesort")
    gidx = rows.index.to_numpy()  # positions in `genes` (default RangeIndex)
    twin = rows["is_par_twin"].to_numpy()

    for proj in PROJECTS:
        idx = np.flatnonzero((s["project"] == f"TCGA-{proj}").to_numpy())
        idx = idx[rng.permutation(len(idx))]
        vals = y[idx][:, gidx].T.copy()
        vals[twin, :] = 0.0  # PAR_Y twins carry no reads
        df = pd.DataFrame(vals, columns=s["sample_id"].to_numpy()[idx])
        df.insert(0, "Ensembl_ID", rows["row_id"].to_numpy())
        _write(bulk / f"TCGA-{proj}.star_fpkm.tsv.gz", _gzip_bytes(_tsv(df, "%.4f")))
        clin = samples[samples["project"] == f"TCGA-{proj}"].sort_values("sample_id")
        age = rng.integers(25, 86, len(clin))
        cdf = pd.DataFrame(
            {
                "sample": clin["sample_id"].to_numpy(),
                "submitter_id": clin["sample_id"].str[:12].to_numpy(),
                "sample_type_id.samples": clin["sample_code"].str[:2].to_numpy(),
                "sample_type.samples": clin["sample_type"].to_numpy(),
                "project_id.project": clin["project"].to_numpy(),
                "age_at_index.demographic": age,
            }
        )
        _write(bulk / f"TCGA-{proj}.clinical.tsv.gz", _gzip_bytes(_tsv(cdf)))

    # MET500: v23 versions, rows in random order, samples in random order
    mg = genes[genes["in_met500"]]
    m_rows = mg.index.to_numpy()[rng.permutation(len(mg))]
    met_idx = np.flatnonzero((s["cohort"] == "MET500").to_numpy())
    met_idx = met_idx[rng.permutation(len(met_idx))]
    df = pd.DataFrame(met_vals[met_idx][:, m_rows].T, columns=s["sample_id"].to_numpy()[met_idx])
    df.insert(0, "sample", (genes.loc[m_rows, "gene_id"] + "." + genes.loc[m_rows, "version_v23"].astype(str)).to_numpy())
    _write(bulk / "MET500_M.mx.log2.txt.gz", _gzip_bytes(_tsv(df, "%.4f")))
    meta = s.iloc[np.sort(met_idx)].sort_values("sample_id")
    mdf = pd.DataFrame(
        {
            "Sample_id": meta["sample_id"].to_numpy(),
            "sample_type": "tumor",
            "sample_source": meta["patient"].to_numpy(),
            "dataset": "MET500",
            "tissue": meta["tissue"].to_numpy(),
            "cohort": meta["project"].to_numpy(),
            "run.id": meta["sample_id"].to_numpy(),
            "idx": np.arange(1, len(meta) + 1),
            "test": meta["library"].map({"poly": "polyA", "capt": "capture"}).to_numpy(),
            "tc": meta["purity"].round(2).to_numpy(),
            "biopsy_tissue": meta["biopsy_tissue"].to_numpy(),
        }
    )
    _write(bulk / "MET500_M.meta.plus.txt", _tsv(mdf, "%.2f"))


# ----------------------------------------------------------------------------- single cells


def _sc_universe(rng: np.random.Generator, genes: pd.DataFrame) -> np.ndarray:
    """Indices (into ``genes``) of the ~1,800 symbols the single-cell studies share with the bulk."""
    role = genes["role"].to_numpy()
    v36 = genes["in_tcga"].to_numpy()
    must = np.flatnonzero(v36 & (np.char.startswith(role.astype(str), "hallmark_") | (role == "marker_pool")))
    mt = np.arange(len(MT_SYMBOLS))
    purity = np.flatnonzero(role == "purity")[:160]
    prolif = np.flatnonzero(role == "proliferation")[:80]
    chosen = set(must) | set(mt) | set(purity) | set(prolif)
    rest = np.array(sorted(set(np.flatnonzero(v36 & ~genes["par_y"].to_numpy())) - chosen))
    extra = rng.choice(rest, N_SC_GENES - len(chosen), replace=False)
    return np.sort(np.array(sorted(chosen | set(extra))))


def _simulate_study(rng, study, genes, universe, sig, sets_idx):
    folder, tissue, bulk_type, n_tumour, has_normal, _role = study
    role = genes["role"].to_numpy()
    sym = genes["symbol"].to_numpy()
    g_idx = universe.copy()
    if folder == STUDY_MISSING_HALLMARK_GENES:
        hm = np.flatnonzero(np.char.startswith(role[g_idx].astype(str), "hallmark_"))
        g_idx = np.delete(g_idx, rng.choice(hm, 2, replace=False))
    n_g = len(g_idx)
    pos = {g: k for k, g in enumerate(g_idx)}
    is_mt = np.isin(g_idx, np.arange(len(MT_SYMBOLS)))
    mt_w = rng.dirichlet(np.full(is_mt.sum(), 5.0))

    mu = rng.normal(0.0, 1.15, n_g)
    hm_cols = {code: np.array([pos[g] for g in sets_idx[code] if g in pos]) for code in HALLMARKS}
    for cols in hm_cols.values():
        mu[cols] += 0.6
    mu += rng.normal(0.0, 0.15, n_g)  # study effect
    # malignant programme: the up-signature of the tissue's bulk type
    tsig = sc_signature(sig, bulk_type)
    mal = np.zeros(n_g)
    for g, e in zip(tsig["gene_index"], tsig["effect"]):
        if g in pos:
            mal[pos[g]] = e * np.log(2.0) * 0.8
    # non-malignant programmes: markers from the purity (immune/stromal) genes and background
    purity_cols = np.array([pos[g] for g in np.flatnonzero(role == "purity") if g in pos])
    other_cols = np.flatnonzero(~is_mt & (mal == 0))
    cell_programme = {}
    for ct in sorted(set(NONMALIGNANT_TYPES[tissue]) | set(NORMAL_TYPES)):
        src = purity_cols if ct in ("T_cell", "Macrophage", "Fibroblast", "Endothelial", "B_cell") else other_cols
        prog = np.zeros(n_g)
        prog[rng.choice(src, 20, replace=False)] = 2.5
        cell_programme[ct] = prog

    code = {"Breast": "BR", "Brain": "BN"}[tissue] + folder[9:11]
    samples = [(f"{code}_P{k + 1}", f"P{k + 1}", "Tumour") for k in range(n_tumour)]
    if has_normal:
        samples.append((f"{code}_P1N", "P1", "Normal"))
    cell_rows, blocks = [], []
    for sample, patient, stype in samples:
        n = int(rng.integers(310, 461)) if stype == "Tumour" else 200
        patient_eff = np.zeros(n_g)
        patient_eff[rng.choice(np.flatnonzero(~is_mt), 150, replace=False)] = rng.normal(0.0, 0.5, 150)
        p_active = rng.uniform(0.2, 0.8, len(HALLMARKS))
        if stype == "Tumour":
            frac_mal = rng.uniform(0.7, 0.9)
            types = np.where(rng.random(n) < frac_mal, "Malignant", rng.choice(np.array(NONMALIGNANT_TYPES[tissue]), n))
        else:
            types = rng.choice(np.array(NORMAL_TYPES), n)
        malignant = types == "Malignant"
        active = (rng.random((n, len(HALLMARKS))) < p_active[None, :]) & malignant[:, None]
        # QC failures planted among the tumour cells
        fail = np.array([""] * n, dtype=object)
        if stype == "Tumour":
            k = rng.permutation(n)
            n_mt, n_low, n_dbl = int(rng.integers(8, 15)), int(rng.integers(8, 15)), int(rng.integers(3, 6))
            fail[k[:n_mt]] = "mt_fraction"
            fail[k[n_mt : n_mt + n_low]] = "low_genes"
            fail[k[n_mt + n_low : n_mt + n_low + n_dbl]] = "high_genes"
            # doublets are annotated as malignant (no hallmark activity recorded: QC removes them)
            types[k[n_mt + n_low : n_mt + n_low + n_dbl]] = "Malignant"
            malignant = types == "Malignant"
            active &= malignant[:, None]
        logits = np.tile(mu + patient_eff, (n, 1))
        logits[malignant] += mal
        for ct, prog in cell_programme.items():
            logits[types == ct] += prog
        for j, code_h in enumerate(HALLMARKS):
            cols = hm_cols[code_h]
            if len(cols):
                logits[np.ix_(active[:, j], cols)] += np.log(HALLMARK_FOLD)
        logits[:, is_mt] = -np.inf
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        dbl = fail == "high_genes"
        if dbl.any():
            partner = rng.permutation(p[~dbl])[: dbl.sum()]
            p[dbl] = 0.55 * (0.5 * p[dbl] + 0.5 * partner) + 0.45 * (~is_mt) / (~is_mt).sum()
        f_mt = rng.uniform(0.01, 0.07, n)
        f_mt[fail == "low_genes"] = rng.uniform(0.005, 0.03, (fail == "low_genes").sum())
        f_mt[fail == "mt_fraction"] = rng.uniform(0.25, 0.45, (fail == "mt_fraction").sum())
        p = p * (1 - f_mt)[:, None]
        p[:, is_mt] = f_mt[:, None] * mt_w[None, :]
        lib = np.exp(rng.normal(np.log(SC_LIB_MEDIAN), 0.3, n)).clip(*SC_LIB_RANGE)
        lib[fail == "low_genes"] = rng.uniform(60, 190, (fail == "low_genes").sum())
        lib[dbl] = rng.uniform(*SC_DOUBLET_LIB, dbl.sum())
        counts = rng.poisson(p * lib[:, None])
        good = fail == ""
        for _ in range(50):  # keep passing cells clear of the 200-gene threshold
            redo = good & ((counts > 0).sum(axis=1) < SC_MIN_GENES_PASSING)
            if not redo.any():
                break
            lib[redo] *= 1.2
            counts[redo] = rng.poisson(p[redo] * lib[redo, None])
        if (fail == "low_genes").any():  # a low-library cell cannot detect ≥ 200 genes
            assert ((counts[fail == "low_genes"] > 0).sum(axis=1) < MIN_GENES).all()
        barcodes = set()
        names = []
        while len(names) < n:
            b = "".join(rng.choice(np.array(list("ACGT")), 16))
            if b not in barcodes:
                barcodes.add(b)
                names.append(f"{sample}_{b}")
        for i in range(n):
            cell_rows.append(
                {
                    "study": folder,
                    "cell_name": names[i],
                    "sample": sample,
                    "patient": patient,
                    "sample_type": stype,
                    "cell_type": types[i],
                    "malignant": bool(malignant[i]),
                    "planted_qc_fail": fail[i],
                    **{h: int(active[i, j]) for j, h in enumerate(HALLMARKS)},
                }
            )
        blocks.append(counts.astype(np.int64))
    counts = np.vstack(blocks)  # cells × genes
    cells = pd.DataFrame(cell_rows)
    # cell order: shuffled within the study
    order = rng.permutation(len(cells))
    cells = cells.iloc[order].reset_index(drop=True)
    counts = counts[order]
    symbols = list(sym[g_idx])
    if folder == STUDY_DUPLICATED_SYMBOL:
        # a second row for a background symbol, as when two Ensembl ids share a symbol
        bgc = np.flatnonzero(role[g_idx] == "background")
        dup = int(rng.choice(bgc[~is_mt[bgc]]))
        extra = rng.poisson(0.05, len(cells))[:, None]
        counts = np.hstack([counts, extra])
        symbols.append(symbols[dup])
    # gene order of the file: sorted symbols for breast studies, random for brain
    if tissue == "Brain":
        gorder = rng.permutation(len(symbols))
    else:
        gorder = np.argsort(np.array(symbols), kind="mergesort")
    counts = counts[:, gorder]
    symbols = [symbols[k] for k in gorder]
    return cells, counts, symbols


def _mtx_bytes(counts: np.ndarray) -> bytes:
    """genes × cells MatrixMarket coordinate integer, entries in column (cell) order."""
    cells_idx, gene_idx = np.nonzero(counts)  # row-major over cells × genes = column-major over genes × cells
    vals = counts[cells_idx, gene_idx]
    head = (
        "%%MatrixMarket matrix coordinate integer general\n%\n"
        f"{counts.shape[1]} {counts.shape[0]} {len(vals)}\n"
    )
    body = pd.DataFrame({"i": gene_idx + 1, "j": cells_idx + 1, "v": vals}).to_csv(
        sep=" ", header=False, index=False, lineterminator="\n"
    )
    return (head + body).encode()


def _mtx_tpm_bytes(counts: np.ndarray) -> bytes:
    """genes × cells MatrixMarket coordinate real: counts per million of each cell (as full-length
    protocols ship, ``exp_data_TPM.mtx``), 6 significant digits: the ranks within a cell, the
    detected genes and the MT fraction equal those of the counts."""
    cells_idx, gene_idx = np.nonzero(counts)
    total = counts.sum(axis=1).astype(np.float64)
    vals = counts[cells_idx, gene_idx] / total[cells_idx] * 1e6
    head = (
        "%%MatrixMarket matrix coordinate real general\n%\n"
        f"{counts.shape[1]} {counts.shape[0]} {len(vals)}\n"
    )
    body = "".join(f"{i} {j} {v:.6g}\n" for i, j, v in zip(gene_idx + 1, cells_idx + 1, vals))
    return (head + body).encode()


def _cells_space_separated(df: pd.DataFrame) -> bytes:
    """R ``write.table`` style: space-separated, every field quoted (3CA's ``Cells_10X.txt``)."""
    lines = [" ".join(f'"{c}"' for c in df.columns)]
    lines += [" ".join(f'"{v}"' for v in row) for row in df.astype(str).itertuples(index=False)]
    return ("\n".join(lines) + "\n").encode()


def _study_files(folder: str, cells: pd.DataFrame, counts: np.ndarray, symbols: list[str],
                 role: np.ndarray) -> tuple[dict[str, dict[str, bytes]], np.ndarray]:
    """The archive(s) of one study in its real-style layout: ``{archive file name: {path: bytes}}``,
    and the counts as the files hold them (the technology a gene is missing from reads 0)."""
    cells_csv = pd.DataFrame({"cell_name": cells["cell_name"], "sample": cells["sample"],
                              "cell_type": cells["cell_type"], "complexity": (counts > 0).sum(axis=1)})
    genes_txt = ("\n".join(symbols) + "\n").encode()
    meta = cells[["sample", "patient", "sample_type"]].drop_duplicates().sort_values("sample")
    normal = (meta["sample_type"] == "Normal").to_numpy()
    tumour_type = {"Breast": "Breast Carcinoma", "Brain": "Glioblastoma"}[cells["tissue"].iloc[0]]
    metadata = pd.DataFrame({"sample": meta["sample"], "patient": meta["patient"],
                             "technology": "", "sample_primary_met": np.where(normal, "normal", "primary"),
                             "source": np.where(normal, "Normal", "Tumor"),
                             "cancer_type": np.where(normal, "Normal", tumour_type)})
    if folder == STUDY_ROOT_MEMBER:
        metadata["technology"] = "10x"
        files = {f"{folder}/Exp_data_UMIcounts.mtx": _mtx_bytes(counts), f"{folder}/Cells.csv": _tsv(cells_csv, sep=","),
                 f"{folder}/Genes.txt": genes_txt, f"{folder}/Meta-data.csv": _tsv(metadata, sep=",")}
        return {f"{folder}.tar.gz": files}, counts
    if folder == STUDY_NESTED_QUOTED:
        quoted = "".join(f'"{g}"\n' for g in symbols).encode()
        sub = f"{folder}/{NESTED_FOLDER}"
        files = {f"{sub}/Exp_data_UMIcounts.mtx": _mtx_bytes(counts), f"{sub}/Cells.csv": _tsv(cells_csv, sep=","),
                 f"{sub}/Genes.txt": quoted}
        return {f"{folder}.tar.gz": files}, counts
    assert folder == STUDY_MULTI_TECHNOLOGY
    samples = sorted(cells["sample"].unique())
    tech = np.where(cells["sample"].isin(samples[:SC_SMARTSEQ2_SAMPLES]), TECHNOLOGIES[0], TECHNOLOGIES[1])
    # SmartSeq2 misses the first few background genes of the file (deterministic, no random draw)
    absent = [k for k in range(len(symbols)) if role[k] == "background"][:SC_SMARTSEQ2_MISSING]
    counts = counts.copy()
    counts[np.ix_(tech == TECHNOLOGIES[0], absent)] = 0
    ss2, g1 = tech == TECHNOLOGIES[0], tech == TECHNOLOGIES[1]
    ss2_genes = sorted(k for k in range(len(symbols)) if k not in set(absent))
    ss2_genes = sorted(ss2_genes, key=lambda k: symbols[k])  # another gene order than Group1
    cells_csv["complexity"] = (counts > 0).sum(axis=1)
    files = {
        f"{folder}/{TECHNOLOGIES[0]}/exp_data_TPM.mtx": _mtx_tpm_bytes(counts[ss2][:, ss2_genes]),
        f"{folder}/{TECHNOLOGIES[0]}/Cells.csv": _tsv(cells_csv[ss2], sep=","),
        f"{folder}/{TECHNOLOGIES[0]}/genes.txt": ("\n".join(symbols[k] for k in ss2_genes) + "\n").encode(),
        f"{folder}/{TECHNOLOGIES[1]}/Exp_data_UMIcounts_10X.mtx": _mtx_bytes(counts[g1]),
        f"{folder}/{TECHNOLOGIES[1]}/Cells_10X.txt": _cells_space_separated(cells_csv[g1]),
        f"{folder}/{TECHNOLOGIES[1]}/Genes_10X.txt": genes_txt,
    }
    metadata["technology"] = np.where(metadata["sample"].isin(samples[:SC_SMARTSEQ2_SAMPLES]), "SmartSeq2", "10x")
    study = folder[len("Data_"):]
    meta_files = {f"Meta-data_{study}.csv": _tsv(metadata, sep=",")}
    return {f"{folder}.tar.gz": files, f"Meta-data_{study}.tar.gz": meta_files}, counts


def _hallmark_csv(sets: dict[str, list[str]]) -> bytes:
    n = max(len(v) for v in sets.values())
    df = pd.DataFrame({h: sets[h] + [""] * (n - len(sets[h])) for h in HALLMARKS})
    return _tsv(df, sep=",")


def _write_scrna(out: Path, rng, genes, sig) -> tuple[pd.DataFrame, np.ndarray]:
    """The hallmark gene sets and the three study archives; returns the cell truth and the gene universe."""
    role = genes["role"].to_numpy()
    sets_idx = {h: list(rng.permutation(np.flatnonzero(role == f"hallmark_{h}"))) for h in HALLMARKS}
    sets = {h: [genes.at[g, "symbol"] for g in sets_idx[h]] for h in HALLMARKS}
    _write(out / "scrna" / "hallmark_gene_sets.csv", _hallmark_csv(sets))
    universe = _sc_universe(rng, genes)
    all_cells = []
    sym_role = dict(zip(genes["symbol"], genes["role"]))
    for study in STUDIES:
        cells, counts, symbols = _simulate_study(rng, study, genes, universe, sig, sets_idx)
        folder = study[0]
        cells["tissue"] = study[1]
        archives, counts = _study_files(folder, cells, counts, symbols,
                                        np.array([sym_role[g] for g in symbols]))
        cells["technology"] = "all"
        if folder == STUDY_MULTI_TECHNOLOGY:
            first = sorted(cells["sample"].unique())[:SC_SMARTSEQ2_SAMPLES]
            cells["technology"] = np.where(cells["sample"].isin(first), TECHNOLOGIES[0], TECHNOLOGIES[1])
        n_genes = (counts > 0).sum(axis=1)
        mt = np.char.startswith(np.array(symbols), "MT-")
        mt_frac = counts[:, mt].sum(axis=1) / np.maximum(counts.sum(axis=1), 1)
        cells["n_genes"] = n_genes
        cells["mt_fraction"] = np.round(mt_frac, 3)
        reason = np.where(
            mt_frac > MT_FRACTION_MAX,
            "mt_fraction",
            np.where(n_genes < MIN_GENES, "low_genes", np.where(n_genes > MAX_GENES_DEMO, "high_genes", "")),
        )
        if not (reason == cells["planted_qc_fail"].to_numpy()).all():
            bad = cells.loc[reason != cells["planted_qc_fail"].to_numpy(), ["cell_name", "planted_qc_fail"]]
            raise AssertionError(f"{folder}: QC outcome differs from the planted failures:\n{bad.head()}")
        cells["qc_fail_reason"] = reason
        for name, files in archives.items():
            _write(out / "scrna" / name, _tar_gz(files, root_member=folder == STUDY_ROOT_MEMBER and name == f"{folder}.tar.gz"))
        all_cells.append(cells)
    allc = pd.concat(all_cells, ignore_index=True)
    cols = ["study", "cell_name", "sample", "technology", "sample_type", "cell_type", "malignant",
            "n_genes", "mt_fraction", "qc_fail_reason", *HALLMARKS]  # fmt: skip
    return allc[cols], universe


# ----------------------------------------------------------------------------- driver


def generate(outdir: str | Path, seed: int = DEFAULT_SEED) -> dict:
    """Write the demo cohort under ``outdir``; return a summary (counts, measured numbers, files)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(None, "seed", f"must be a non-negative integer, got {seed!r}")
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise InputError(out, None, "output path exists and is not a directory")
    rng = np.random.default_rng(int(seed))
    genes = _build_genes(rng)
    samples = _build_bulk_samples(rng)
    sig, activity = _type_signatures(rng, genes)
    y = _simulate_bulk(rng, genes, samples, sig)
    met_vals = _met500_values(y)
    measured = _measure_bulk(genes, samples, y, met_vals)  # one sample per patient
    _check_planted_filter(genes, measured)
    # patients as in the real sources (MET500 twin libraries, TCGA 01B vials): their own stream, so
    # that the profiles above (and the single cells below) do not change
    samples, y = _add_libraries_and_vials(np.random.default_rng([int(seed), 2]), samples, y)
    met_vals = _met500_values(y)
    _check_planted_filter(genes, _measure_bulk(genes, samples, y, met_vals))  # every library in the files
    _write_bulk(out, genes, samples, y, met_vals, rng)
    # the single cells draw from their own stream: tuning the bulk simulation does not change them
    cells, universe = _write_scrna(out, np.random.default_rng([int(seed), 1]), genes, sig)

    in_sc = np.zeros(len(genes), dtype=bool)
    in_sc[universe] = True
    _write_truth(out, genes, samples, sig, activity, cells, measured, in_sc, seed)
    files = _write_checksums(out)
    summary = {
        "seed": int(seed),
        "outdir": str(out),
        "n_tcga_samples": int(((samples["cohort"] == "TCGA") & samples["in_matrix"]).sum()),
        "n_tcga_primary": int(((samples["cohort"] == "TCGA") & samples["kept"]).sum()),
        "n_met500_samples": int((samples["cohort"] == "MET500").sum()),
        "n_met500_patients": int(samples.loc[samples["cohort"] == "MET500", "patient"].nunique()),
        "n_met500_patients_with_two_libraries": int(
            (samples.loc[samples["cohort"] == "MET500"].groupby("patient").size() > 1).sum()),
        "n_tcga_second_vials": int(samples["sample_code"].eq("01B").sum()),
        "n_tcga_genes": int(genes["in_tcga"].sum()),
        "n_met500_genes": int(genes["in_met500"].sum()),
        "n_cells": int(len(cells)),
        **{k: v for k, v in measured.items() if not k.startswith("kept")},
        "files": files,
    }
    return summary


def _check_planted_filter(genes: pd.DataFrame, m: dict) -> None:
    role = genes["role"].to_numpy()
    in_t, in_m = genes["in_tcga"].to_numpy(), genes["in_met500"].to_numpy()
    low_t = np.isin(role, ["low_both", "low_tcga"])
    low_m = np.isin(role, ["low_both", "low_met500"])
    problems = []
    if (m["kept_tcga"] != (in_t & ~low_t)).any():
        problems.append("TCGA filter outcome differs from the planted low genes")
    ensgr = genes["gene_id"].str.startswith("ENSGR").to_numpy()  # all-zero PAR_Y twins
    if (m["kept_met500"] != (in_m & ~low_m & ~ensgr)).any():
        problems.append("MET500 filter outcome differs from the planted low genes")
    if m["n_kept_at_0.7"] <= m["n_kept"]:
        problems.append("no borderline gene: threshold 0.7 keeps no more genes than 0.8")
    if problems:
        raise AssertionError("; ".join(problems))


def _write_truth(out, genes, samples, sig, activity, cells, measured, in_sc, seed) -> None:
    t = out / "truth"
    g = genes.copy()
    g["in_scrna"] = in_sc
    g["kept_tcga"] = measured["kept_tcga"]
    g["kept_met500"] = measured["kept_met500"]
    g["kept"] = measured["kept"]
    gt = g[["gene_id", "symbol", "role", "site", "programme", "loading", "in_tcga", "in_met500", "in_scrna",
            "kept_tcga", "kept_met500", "kept"]]
    gt = gt.sort_values("gene_id")
    _write(t / "bulk_genes.tsv", _tsv(gt))
    st = sig[["cancer_type", "gene_id", "symbol", "programme", "effect"]].sort_values(["cancer_type", "gene_id"])
    _write(t / "type_signatures.tsv", _tsv(st, "%.2f"))
    _write(t / "type_programmes.tsv", _tsv(activity.rename_axis("cancer_type").reset_index(), "%.3f"))
    cols = ["sample_id", "cohort", "project", "cancer_type", "sample_code", "sample_type", "kept", "in_matrix",
            "patient", "library", "library_kept", "purity", "immune_share", "proliferation", "batch", "biopsy_tissue", *HALLMARKS]  # fmt: skip
    _write(t / "bulk_samples.tsv", _tsv(samples[cols], "%.3f"))
    _write(t / "cells.tsv", _tsv(cells))
    summary = {
        "seed": int(seed),
        "filter_threshold": FILTER_THRESHOLD,
        "test_types": measured["test_types"],
        "n_test_samples": measured["n_test_samples"],
        "n_kept_tcga": measured["n_kept_tcga"],
        "n_kept_met500": measured["n_kept_met500"],
        "n_kept": measured["n_kept"],
        "n_kept_at_0.7": measured["n_kept_at_0.7"],
        "n_marker_pool_kept": measured["n_marker_pool_kept"],
        "one_shot_6way_euclidean_all_filtered": measured["one_shot_6way_euclidean_all_filtered"],
        "one_shot_6way_euclidean_marker_pool": measured["one_shot_6way_euclidean_marker_pool"],
        "qc": {
            "mt_fraction_max": MT_FRACTION_MAX,
            "min_genes": MIN_GENES,
            "max_genes": MAX_GENES_DEMO,
            "cells": int(len(cells)),
            "fail": {k: int(v) for k, v in cells["qc_fail_reason"].replace("", "pass").value_counts().sort_index().items()},
        },
    }
    _write(t / "summary.json", (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode())
    _write(t / "README.md", _readme(genes, samples, cells, measured, seed).encode())


def _write_checksums(out: Path) -> dict:
    files = sorted({p for pat in DOWNLOADED_GLOBS for p in out.glob(pat) if p.is_file()})
    lines = [f"{sha256(p)}  {p.relative_to(out).as_posix()}" for p in files]
    _write(out / "SHA256SUMS", ("\n".join(lines) + "\n").encode())
    return {p.relative_to(out).as_posix(): p.stat().st_size for p in files}


def _readme(genes, samples, cells, m, seed) -> str:
    role_counts = genes[genes["in_tcga"]]["role"].value_counts()
    hm = "\n".join(f"| {r} | {n} |" for r, n in sorted(role_counts.items()))
    qc = cells["qc_fail_reason"].replace("", "pass").value_counts().sort_index()
    qc_lines = "\n".join(f"| {k} | {v} |" for k, v in qc.items())
    per_study = cells.groupby("study").size()
    study_lines = "\n".join(f"| {k} | {v} |" for k, v in per_study.items())
    return f"""# Demo cohort — ground truth

**All data under `resources/demo/` are simulated.** They were written by
`python workflow/scripts/make_demo.py --out resources/demo --seed {seed}`
(library: `workflow/scripts/oncoshot/demo.py`). The same seed gives byte-identical files
(`tests/test_demo.py` checks this). Nothing here is patient data; gene ids are synthetic Ensembl-like
ids and symbols are synthetic (`SYN00001` …), except the 13 mitochondrial genes (`MT-ND1` …), whose
symbols are real so that the `MT-*` QC rule applies.

## Files the workflow reads (their sha256 are in `../SHA256SUMS`)

| file | format |
|---|---|
| `bulk/TCGA-<PROJ>.star_fpkm.tsv.gz` (33) | GDC hub: genes × samples, `Ensembl_ID` + barcodes (columns in random order), log2(FPKM+1) written with 4 decimals (values rounded to {10.0 ** -BULK_DECIMALS:g} to keep the files small), gencode v36 versioned ids sorted as text; 2 `_PAR_Y` rows (all 0, as in the GDC files) right after their X copy |
| `bulk/TCGA-<PROJ>.clinical.tsv.gz` (33) | `sample`, `submitter_id` (the patient), `sample_type_id.samples`, `sample_type.samples`, `project_id.project`, `age_at_index.demographic` (extra); rows sorted by barcode; BRCA, OV and UCEC list one `10A` blood-normal sample that has no expression column (as real clinical tables do) |
| `bulk/gencode.v36.annotation.gtf.gene.probemap` | `id gene chrom chromStart chromEnd strand` for every TCGA row id, in genome order (PAR_Y twins on chrY, MT genes on chrM) |
| `bulk/MET500_M.mx.log2.txt.gz` | genes × libraries, `sample` + library ids `<patient>-<poly or capt>-SI_<n>-<flowcell>` (e.g. `MO_1437-poly-SI_9666-C5N0MANXX`), log2(FPKM+0.001) (FPKM 0 → -9.9658), gencode v23 versions (every shared gene has a different version than in v36), rows and columns in random order; 50 ids absent from v36 (2 are `ENSGR…` PAR_Y twins of v36 genes, all FPKM 0), 100 v36 genes absent |
| `bulk/MET500_M.meta.plus.txt` | the real columns: `Sample_id` (library), `sample_type` (`tumor`), `sample_source` (the patient), `dataset`, `tissue` (primary site; empty for some), `cohort` (the label), `run.id` (= the library id), `idx` (row number), `test` (`polyA` / `capture`), `tc` (tumour content), `biopsy_tissue`; the values of `dataset`, `idx` and `test` are simulated guesses |
| `scrna/Data_<Author><Year>_<Tissue>.tar.gz` (3) | one 3CA study each, with the real quirks (docs/REAL_FORMATS.md): `Data_Demo2020_Breast/` flat, `Exp_data_UMIcounts.mtx` (genes × cells, coordinate integer), `Cells.csv`, `Genes.txt`, `Meta-data.csv` (normal sample marked `source` = `cancer_type` = `Normal`, no `sample_type` column), the tar carrying a `/` root member; `Data_Demo2021_Brain/` one sub-folder per technology, `SmartSeq2/{{exp_data_TPM.mtx, Cells.csv, genes.txt}}` (samples BN21_P1–P2, counts per million, {SC_SMARTSEQ2_MISSING} background genes absent, genes sorted) and `Group1/{{Exp_data_UMIcounts_10X.mtx, Cells_10X.txt (space-separated, quoted), Genes_10X.txt}}` (P3–P5); `Data_Demo2022_Breast/Breast/` nested one folder down, every symbol of `Genes.txt` in double quotes, no sample metadata |
| `scrna/Meta-data_Demo2021_Brain.tar.gz` | the Brain study's separate metadata archive: `Meta-data_Demo2021_Brain.csv` (`sample`, `patient`, `technology`, `sample_primary_met`, `source`, `cancer_type`) |
| `scrna/hallmark_gene_sets.csv` | OncoMark format: one column per hallmark (IA … AIM), padded with empty cells |

Note: `log2(0.001)` written with 4 decimals is -9.9658, slightly below the exact value, so the
conversion `log2(2**x - 0.001 + 1)` gives about -2e-8 for FPKM 0: clip at 0.

## Bulk samples (`bulk_samples.tsv`)

TCGA: {int(((samples.cohort == 'TCGA') & samples.in_matrix).sum())} samples in the matrices, {int(((samples.cohort == 'TCGA') & samples.kept).sum())} primaries (`kept`: code 01, and 03 for LAML);
the others are `11A` solid-tissue normals (BRCA KIRC LUAD THCA PRAD LIHC COAD HNSC STAD), `06A` metastases
(SKCM) and `02A` recurrences (GBM, LGG), which the workflow must drop; {int(samples.sample_code.eq('01B').sum())} patients have a
second primary vial `-01B` (BRCA, CESC, LIHC, SARC, MESO; profile + library noise) that the splits and
tasks keep with its `-01A` (column `patient` = the first 12 barcode characters). MET500:
{int((samples.cohort == 'MET500').sum())} sequencing libraries of {samples.loc[samples.cohort == 'MET500', 'patient'].nunique()} patients (`patient` = `sample_source`); {int((samples[samples.cohort == 'MET500'].groupby('patient').size() > 1).sum())} patients have a
poly-A and a capture library of the same biopsy (the poly-A library carries the patient's latent profile,
the capture library the profile + N(0, {LIBRARY_NOISE_SD:g}) on every expressed gene; a capture library alone gets
the noise too). `library_kept`: the library the workflow keeps with `met500.libraries: one_per_patient`
(poly-A preferred). MISC and SCER are dropped downstream; MET500 `kept` = `library_kept` and a kept label. Per sample: `purity` (TCGA 0.40–0.95, MET500
0.30–0.80, normals 0), `immune_share` (immune part of the non-tumour fraction), `proliferation`
(z score), `batch` (TCGA sequencing plate), `biopsy_tissue` (MET500) and the ten hallmark activities
(0–1; per type a mean, per sample a Beta draw; metastatic samples have AIM raised by 0.25).

Merged labels (SPEC §1.4): COAD, READ → COLO; KIRP, KIRC, KICH → KDNY; LUAD, LUSC → LUNG; LIHC → HCC.
Shared types, in descending order of TCGA primaries (all counts distinct):
{", ".join(f"{k} {v}" for k, v in SHARED_PRIMARY.items())}.
TCGA-only: {", ".join(f"{k} {v}" for k, v in TCGA_ONLY_PRIMARY.items())}.
MET500 (patients): {", ".join(f"{k} {v}" for k, v in MET500_COUNTS.items())}.

## Bulk genes (`bulk_genes.tsv`, `type_signatures.tsv`, `type_programmes.tsv`)

Latent values are log2(FPKM+1) = base + signature × (0.4 + 0.6·purity) + purity programme
+ proliferation + batch + site + hallmarks + noise, clipped at 0, rounded to {10.0 ** -BULK_DECIMALS:g}. Roles (v36 genes):

| role | genes |
|---|---|
{hm}

- `low_*`: mean and sd both < 0.8 in TCGA (`low_tcga`), in MET500 (`low_met500`) or in both, so the
  SPEC §1.3 filter drops them; a few sit just under the threshold (latent mean 0.70–0.75): with a
  threshold of 0.7 the intersection keeps {m["n_kept_at_0.7"]} genes instead of {m["n_kept"]}. `kept_tcga`, `kept_met500` and `kept` are the filter outcome
  measured on the files; they equal the planted roles, whether PAR_Y twins are dropped or averaged.
- `marker_pool`: the type signatures, low-rank. The 300 pool genes form {N_PROGRAMMES} lineage programmes of
  {300 // N_PROGRAMMES} genes (`programme` 1–{N_PROGRAMMES} in `bulk_genes.tsv`, with a `loading` ±{PROGRAMME_LOADING[0]:g}–{PROGRAMME_LOADING[1]:g});
  each merged type has an activity N(0, {PROGRAMME_SD:g}²) per programme (`type_programmes.tsv`), and
  its effect on a pool gene is activity × loading (log2; every type moves every pool gene,
  `type_signatures.tsv`). All 29 types are mixtures of the same programmes, so a distance learned
  on the training types applies to the unseen test types (the premise of CancerSiamese). The 19
  and 14 training types of tcga19 and tcga14 span the programme space; the 9 of tcga9 and the 10 of
  the MET500 model cannot (one reason why these transfer less well).
- `purity`: immune and stromal halves, + a·2·(1−purity)·share (immune) or ·(1−share) (stromal),
  a ∈ {PURITY_AMP[0]:g}–{PURITY_AMP[1]:g}; `proliferation`: ±{PROLIFERATION_AMP[0]:g}–{PROLIFERATION_AMP[1]:g} per unit z;
  `batch`: a shift N(0, {BATCH_SD:g}) per TCGA plate (MET500 one more); `site`: 15 genes per biopsy
  site (liver, lymph_node, bone, lung, brain, soft_tissue), + 2.5–4 × (1.5 − purity) in MET500
  samples of that site. Every gene has noise N(0, {NOISE_SD[0]:g}–{NOISE_SD[1]:g}); MET500 adds a per-gene
  protocol shift N(0, 0.4).
- `hallmark_<CODE>`: the hallmark gene sets (`scrna/hallmark_gene_sets.csv`), +1.5–2.5 × activity.
- `in_scrna`: the symbol is one of the ~1,800 genes of the single-cell studies.

## Measured: Euclidean 1-NN one-shot, 6-way

On the TCGA primaries of the 10 lowest-ranked shared types, one vial per patient ({", ".join(m["test_types"])};
{m["n_test_samples"]} samples), after the 0.8 filter and intersection ({m["n_kept"]} genes; TCGA keeps
{m["n_kept_tcga"]}, MET500 {m["n_kept_met500"]}), 2,000 random 6-way one-shot tasks:

| genes | accuracy |
|---|---|
| all filtered genes ({m["n_kept"]}) | {100 * m["one_shot_6way_euclidean_all_filtered"]:.1f} % |
| marker pool only ({m["n_marker_pool_kept"]}) | {100 * m["one_shot_6way_euclidean_marker_pool"]:.1f} % |

Chance is 16.7 %. The gap is the point of the demo: purity, proliferation and batch dominate the
Euclidean distance; the type signal lives in the marker pool. `tests/test_demo.py` recomputes both
numbers independently from the files.

## Measured: CancerSiamese on the demo (workflow)

{WORKFLOW_MEASURED.strip()}

## Single cells (`cells.tsv`)

Three 3CA studies: Data_Demo2020_Breast (training; one `Normal` sample, P1N, marked in its
`Meta-data.csv` the real way), Data_Demo2021_Brain (training; two technologies, `technology` column
here; lacks 2 hallmark genes; genes in random order), Data_Demo2022_Breast (held-out validation; one
symbol appears twice in `Genes.txt`, every symbol quoted; no metadata, so the QC summary says
`no metadata`). `n_genes` and `mt_fraction` are measured on the counts as the files hold them
(the genes SmartSeq2 lacks count 0). Cells per study:

| study | cells |
|---|---|
{study_lines}

Malignant cells express the up/down programme of their tissue's bulk type (BRCA, GBM): the
{SC_SIGNATURE_SIZE} pool genes with the largest |effect| in `type_signatures.tsv`, × 2^(0.8·effect).
Malignant cells carry a binary activity per hallmark (columns IA … AIM; probability per patient
0.2–0.8); an active hallmark multiplies its genes' expression ×{HALLMARK_FOLD:g}. Non-malignant cells
(T_cell, Macrophage, Fibroblast, Endothelial, Oligodendrocyte, Epithelial) have 0 everywhere and
express cell-type markers from the bulk purity genes. Planted QC failures (`qc_fail_reason`,
recomputed from the counts): `mt_fraction` (> 15 % MT counts), `low_genes` (< 200 detected genes),
`high_genes` (doublets, > {MAX_GENES_DEMO} detected genes: the demo config sets max genes to
{MAX_GENES_DEMO}; every passing cell has fewer). `n_genes` and `mt_fraction` are measured on the counts.
A failing cell is listed under the first rule it breaks, in this order: mt_fraction, low_genes,
high_genes. Passing cells detect {int(cells.loc[cells.qc_fail_reason == "", "n_genes"].min())}–{int(cells.loc[cells.qc_fail_reason == "", "n_genes"].max())} genes and have
at most {100 * cells.loc[cells.qc_fail_reason == "", "mt_fraction"].max():.1f} % MT counts. With 310–460 cells per tumour sample, the demo config should use
far fewer than 200 cells per synthetic bulk profile (SPEC §3.5).

| QC outcome | cells |
|---|---|
{qc_lines}
"""
