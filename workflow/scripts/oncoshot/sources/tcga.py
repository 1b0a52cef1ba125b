"""TCGA from the UCSC Xena GDC hub (SPEC §1.1): expression matrices, clinical tables, probe map,
barcodes, sample codes and patients.

Files (``../shared/docs/REAL_FORMATS.md``): ``TCGA-<PROJ>.star_fpkm.tsv.gz`` (genes × samples,
first header field ``Ensembl_ID``, 16-character sample barcodes ``TCGA-XX-XXXX-NNV``, gencode v36
versioned ids with ``_PAR_Y`` copies, log2(FPKM+1)); ``TCGA-<PROJ>.clinical.tsv.gz`` (one row per
sample: ``sample``, ``submitter_id`` = patient, ``sample_type.samples`` …) and
``gencode.v36.annotation.gtf.gene.probemap`` (``id gene chrom chromStart chromEnd strand``).

Patients: a TCGA patient (participant) is the first 12 barcode characters (``TCGA-XX-XXXX``);
one patient may have several samples (vials ``-01A`` / ``-01B``, recurrences ``-02``, normals
``-11`` …). :func:`harmonise_tcga` writes it to ``obs["patient"]`` so that the splits and the
one-shot tasks keep every patient on one side (:func:`oncoshot.bulk.split_types`,
:func:`oncoshot.oneshot.make_tasks`).

Every bad input raises :class:`oncoshot.errors.InputError` naming the file, the field and the
problem; recoverable oddities warn with :class:`oncoshot.bulk.BulkWarning`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd

from ..bulk import (UNITS, PathLike, build_adata, read_prepared, strip_version, to_log2_fpkm1,
                    warn as _warn)
from ..errors import InputError
from ..tables import check_file, examples, read_table, require_columns

__all__ = [
    "SAMPLE_TYPE_NAMES",
    "PATIENT_LENGTH",
    "read_probemap",
    "probemap_series",
    "read_clinical",
    "check_clinical",
    "sample_code",
    "patient_id",
    "is_primary",
    "harmonise_tcga",
]

#: GDC sample type code → the name used by ``sample_type.samples`` in the Xena clinical files.
SAMPLE_TYPE_NAMES: dict[str, str] = {
    "01": "Primary Tumor",
    "02": "Recurrent Tumor",
    "03": "Primary Blood Derived Cancer - Peripheral Blood",
    "04": "Recurrent Blood Derived Cancer - Bone Marrow",
    "05": "Additional - New Primary",
    "06": "Metastatic",
    "07": "Additional Metastatic",
    "08": "Human Tumor Original Cells",
    "09": "Primary Blood Derived Cancer - Bone Marrow",
    "10": "Blood Derived Normal",
    "11": "Solid Tissue Normal",
    "12": "Buccal Cell Normal",
    "13": "EBV Immortalized Normal",
    "14": "Bone Marrow Normal",
    "15": "sample type 15",
    "16": "sample type 16",
    "20": "Control Analyte",
    "40": "Recurrent Blood Derived Cancer - Peripheral Blood",
    "50": "Cell Lines",
    "60": "Primary Xenograft Tissue",
    "61": "Cell Line Derived Xenograft Tissue",
}

#: length of the patient (participant) part of a barcode: ``TCGA-XX-XXXX``.
PATIENT_LENGTH = 12

_BARCODE = re.compile(r"^TCGA-[A-Za-z0-9]{2}-[A-Za-z0-9]{4}-(\d{2})")

def read_probemap(path: PathLike) -> pd.Series:
    """Read a Xena probe map (``id gene chrom chromStart chromEnd strand``) → Series
    unversioned gene id → symbol (name ``symbol``).

    ``_PAR_Y`` ids collapse onto their X id; when an id appears more than once the first symbol
    is kept. Rows with an empty symbol are ignored. Raises :class:`InputError` for a missing or
    empty file and missing ``id``/``gene`` columns.
    """
    path = check_file(path)
    df = read_table(path, "probe map")
    require_columns(df, path, ("id", "gene"), "probe map")
    df = df.dropna(subset=["id", "gene"])
    ids = strip_version(df["id"].to_numpy())
    s = pd.Series(df["gene"].to_numpy(dtype=object), index=pd.Index(ids, name="gene_id"), name="symbol")
    return s[~s.index.duplicated(keep="first")]



def probemap_series(probemap: PathLike | pd.Series | None) -> pd.Series | None:
    """A probe map given as a path (read with :func:`read_probemap`), a Series, or ``None``."""
    if probemap is None or isinstance(probemap, pd.Series):
        return probemap
    return read_probemap(probemap)


def read_clinical(path: PathLike, sample_column: str = "sample", type_column: str = "sample_type.samples") -> pd.Series:
    """Read a GDC-hub ``TCGA-<PROJ>.clinical.tsv.gz`` → Series sample barcode → sample type name.

    Only used for a consistency check, so it is lenient where
    :func:`oncoshot.bulk.read_sample_table` is
    strict: rows with an empty sample or sample type are ignored, and a sample listed with
    different types keeps the first with a warning. Missing columns are still an error.
    """
    path = check_file(path)
    df = read_table(path, "clinical table")
    require_columns(df, path, (sample_column, type_column), "clinical table")
    df = df[[sample_column, type_column]].dropna().drop_duplicates()
    dup = df[sample_column][df[sample_column].duplicated()]
    if len(dup):
        _warn(f"{path}: {dup.nunique()} sample(s) listed with different {type_column!r}; the first is used: "
              f"{examples(sorted(set(dup)))}")
        df = df[~df[sample_column].duplicated()]
    return pd.Series(df[type_column].to_numpy(dtype=object),
                     index=pd.Index(df[sample_column].to_numpy(dtype=object), name="sample"), name=type_column)



def check_clinical(samples: Sequence[str], codes: Sequence[str], clinical: pd.Series,
                   path: PathLike) -> int:
    """Warn when ``sample_type.samples`` disagrees with the barcode code; returns the count."""
    clin = clinical.copy()
    clin.index = [str(i)[:16] for i in clin.index]
    clin = clin[~clin.index.duplicated()]
    bad = []
    for s, code in zip(samples, codes):
        key = str(s)[:16]
        if key not in clin.index or code not in SAMPLE_TYPE_NAMES:
            continue
        if str(clin[key]).strip().lower() != SAMPLE_TYPE_NAMES[code].lower():
            bad.append(f"{s} (clinical {clin[key]!r}, barcode code {code} = {SAMPLE_TYPE_NAMES[code]!r})")
    if bad:
        _warn(f"{path}: column 'sample_type.samples' disagrees with the barcode sample code for "
              f"{len(bad)} sample(s): {'; '.join(bad[:3])}{' …' if len(bad) > 3 else ''}; "
              "the barcode decides")
    return len(bad)


def sample_code(barcode: str, source: PathLike | None = None) -> str:
    """TCGA sample type code = characters 14–15 of the barcode (``TCGA-OR-A5J1-01A`` → ``"01"``).

    Works on sample (16-character) and aliquot (28-character) barcodes. Raises
    :class:`InputError` (naming ``source`` and the sample) when ``barcode`` is not a TCGA barcode.
    """
    m = _BARCODE.match(str(barcode))
    if not m:
        raise InputError(source, f"sample {barcode!r}",
                         "not a TCGA barcode (expected TCGA-XX-XXXX-NN…, sample code = characters 14-15)")
    return m.group(1)



def patient_id(barcode: str, source: PathLike | None = None) -> str:
    """TCGA patient (participant) = the first 12 barcode characters
    (``TCGA-OR-A5J1-01A`` → ``TCGA-OR-A5J1``; aliquot barcodes as well).

    Raises :class:`InputError` (naming ``source`` and the sample) when ``barcode`` is not a TCGA
    barcode, as :func:`sample_code` does.
    """
    sample_code(barcode, source)
    return str(barcode)[:PATIENT_LENGTH]


def is_primary(barcode: str, project: str, primary_codes: Sequence[str] = ("01",),
               blood_projects: Sequence[str] = ("LAML",), blood_codes: Sequence[str] = ("03",),
               source: PathLike | None = None) -> bool:
    """Whether a TCGA sample is a primary tumour (SPEC §1.2).

    Solid projects: sample code in ``primary_codes`` (01). Blood projects (``blood_projects``,
    LAML): code in ``blood_codes`` (03, primary blood-derived) or in ``primary_codes``.
    Metastatic (06), normal (10, 11, …) and other codes are not primary.
    """
    code = sample_code(barcode, source)
    if project in set(blood_projects):
        return code in set(blood_codes) | set(primary_codes)
    return code in set(primary_codes)



def harmonise_tcga(
    matrices: Mapping[str, PathLike],
    probemap: PathLike | pd.Series | None = None,
    unit: str = "log2_fpkm1",
    clinical: Mapping[str, PathLike] | None = None,
    primary_codes: Sequence[str] = ("01",),
    blood_projects: Sequence[str] = ("LAML",),
    blood_codes: Sequence[str] = ("03",),
    on_gene_mismatch: str = "error",
    par_y: str = "drop",
) -> ad.AnnData:
    """Harmonise TCGA project matrices into one samples × genes AnnData in log2(FPKM+1).

    ``matrices``: project (e.g. ``"ACC"``) → genes × samples matrix (Xena GDC
    ``TCGA-<PROJ>.star_fpkm.tsv.gz``, or the RNAsum counts format with ``unit="counts"``).
    ``probemap``: Xena probe map path or a Series from :func:`read_probemap`; ``None`` → the
    symbol is the gene id. ``clinical``: optional project → ``TCGA-<PROJ>.clinical.tsv.gz``;
    its ``sample_type.samples`` is compared with the barcode code (matched on the 16-character
    sample barcode), disagreements warn and the barcode decides. A clinical project that is not
    in ``matrices`` is an error.

    Steps per project: :func:`read_matrix` → :func:`harmonise_gene_ids` (``par_y``) →
    :func:`collapse_duplicates` → primary selection (:func:`is_primary`; a project without any
    primary sample is an error). Then the gene sets are aligned: ``on_gene_mismatch="error"``
    (default) raises naming the first project whose unversioned ids differ from the first
    project's, with the counts; ``"intersect"`` keeps the ids shared by all projects and warns
    per project with the number dropped. Then :func:`to_log2_fpkm1` per project on the aligned
    genes — for ``"counts"`` the CPM library size is therefore the sum over the shared genes, so
    that every project is normalised on the same gene set. A barcode present in two projects is
    an error.

    Returns AnnData (float32), obs index = barcode as written in the file, obs columns
    ``cohort`` ("TCGA"), ``project``, ``cancer_type`` (= project, before label merging),
    ``sample_type`` ("primary"), ``sample_code``, ``patient`` (:func:`patient_id`: first 12
    barcode characters; a patient may have several primary samples, e.g. vials 01A and 01B); var index = unversioned Ensembl id (sorted),
    ``var["symbol"]``; uns: ``unit`` (recorded), ``source_unit``, and per project
    ``n_duplicate_ids``, ``n_dropped_non_primary``, ``n_par_y_dropped``,
    ``n_genes_dropped_mismatch``, ``n_clinical_disagreements``, and ``patients`` (the counts of the
    patient report: ``n_samples_in``, ``n_samples_kept``, ``n_patients``,
    ``n_patients_with_several_samples`` …; see :func:`oncoshot.bulk.patient_report`).
    """
    if not matrices:
        raise InputError(None, "matrices", "no TCGA project given")
    if unit not in UNITS:
        raise InputError(None, "unit", f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")
    if on_gene_mismatch not in ("error", "intersect"):
        raise InputError(None, "on_gene_mismatch", f"unknown option {on_gene_mismatch!r}; expected 'error' or 'intersect'")
    clinical = dict(clinical or {})
    for project, path in clinical.items():
        if project not in matrices:
            raise InputError(path, "project", f"clinical file given for project {project!r}, "
                             "which has no expression matrix")
    pm = probemap_series(probemap)
    frames: dict[str, pd.DataFrame] = {}
    n_dup: dict[str, int] = {}
    n_par: dict[str, int] = {}
    n_drop: dict[str, int] = {}
    n_clin: dict[str, int] = {}
    codes_by_project: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for project, path in matrices.items():
        project = str(project)
        df, n_dup[project], n_par[project] = read_prepared(path, par_y)
        codes = [sample_code(s, path) for s in df.columns]
        if project in clinical:
            n_clin[project] = check_clinical(list(df.columns), codes, read_clinical(clinical[project]), clinical[project])
        keep = np.array([is_primary(s, project, primary_codes, blood_projects, blood_codes, path) for s in df.columns])
        n_drop[project] = int((~keep).sum())
        if not keep.any():
            raise InputError(path, "samples", f"no primary tumour sample in project {project!r} "
                             f"(sample codes found: {sorted(set(codes))})")
        if n_drop[project]:
            dropped = pd.Series(codes)[~keep].value_counts().sort_index()
            _warn(f"{path}: {n_drop[project]} non-primary sample(s) of {project} dropped "
                  f"(sample codes {', '.join(f'{c}: {n}' for c, n in dropped.items())})")
        df = df.loc[:, keep].astype(np.float32)  # halves memory for the full TCGA (≈10k samples)
        for s in df.columns:
            if s in owner:
                raise InputError(path, f"sample {s!r}", f"duplicated barcode: also in project {owner[s]!r} "
                                 f"({matrices[owner[s]]})")
            owner[s] = project
        frames[project] = df
        codes_by_project[project] = [c for c, k in zip(codes, keep) if k]

    projects = list(frames)
    id_sets = {p: frozenset(frames[p].index) for p in projects}
    # the reference gene set is the one most projects share (ties: the first project's), so that the
    # error names the file that differs, not whichever project happens to come first
    counts: dict[frozenset, int] = {}
    for p in projects:
        counts[id_sets[p]] = counts.get(id_sets[p], 0) + 1
    ref_ids = max(counts, key=lambda ids: (counts[ids], ids == id_sets[projects[0]]))
    ref = next(p for p in projects if id_sets[p] == ref_ids)
    common = set(ref_ids)
    for p in projects:
        ids = id_sets[p]
        if ids != ref_ids:
            only_p, only_ref = len(ids - ref_ids), len(ref_ids - ids)
            if on_gene_mismatch == "error":
                shared_by = (f"the {counts[ref_ids]} projects that agree ({examples([q for q in projects if id_sets[q] == ref_ids], 5)})"
                             if counts[ref_ids] > 1 else f"project {ref} ({matrices[ref]}; with two projects either may be the odd one)")
                dup = (f"; this file had {n_dup[p]} duplicated gene id(s) after removing versions (averaged): "
                       "a duplicated id that replaced another id looks like this" if n_dup[p] else "")
                raise InputError(matrices[p], "genes",
                                 f"project {p}: {only_p + only_ref} gene ids differ from {shared_by} "
                                 f"({only_p} only in {p}, {only_ref} missing from {p}, e.g. "
                                 f"{examples(sorted(ids ^ ref_ids), 3)}){dup}; fix the file, or set the config "
                                 "key tcga.on_gene_mismatch: intersect to keep the ids shared by every project")
        common &= ids
    if not common:
        raise InputError(None, "genes", f"no gene id shared by all TCGA projects ({', '.join(projects)})")
    genes = pd.Index(sorted(common), name="gene_id")
    n_mismatch = {p: int(len(frames[p]) - len(genes)) for p in projects}
    for p in projects:
        if n_mismatch[p]:
            _warn(f"{matrices[p]}: {n_mismatch[p]} gene ids of project {p} are not in every TCGA "
                  f"project and were dropped ({len(genes)} shared ids kept)")

    X = np.empty((sum(f.shape[1] for f in frames.values()), len(genes)), dtype=np.float32)
    obs_parts, row = [], 0
    recorded = UNITS[unit]
    for p in projects:
        conv, recorded = to_log2_fpkm1(frames[p].loc[genes], unit, matrices[p])
        X[row:row + conv.shape[1]] = conv.to_numpy(dtype=np.float32).T
        row += conv.shape[1]
        obs_parts.append(pd.DataFrame({
            "cohort": "TCGA", "project": p, "cancer_type": p, "sample_type": "primary",
            "sample_code": codes_by_project[p],
            "patient": [patient_id(s, matrices[p]) for s in conv.columns]}, index=conv.columns))
        del frames[p]
    obs = pd.concat(obs_parts)
    uns = {
        "unit": recorded, "source_unit": unit, "par_y": par_y, "on_gene_mismatch": on_gene_mismatch,
        "n_duplicate_ids": n_dup, "n_dropped_non_primary": n_drop, "n_par_y_dropped": n_par,
        "n_genes_dropped_mismatch": n_mismatch, "n_clinical_disagreements": n_clin,
    }
    n_patients = int(obs["patient"].nunique())
    per_patient = obs["patient"].value_counts()
    uns["patients"] = {
        "cohort": "TCGA", "policy": "all primary samples kept; patient = first 12 barcode characters",
        "n_samples_in": int(sum(n_drop.values()) + len(obs)), "n_samples_kept": int(len(obs)),
        "n_samples_dropped_non_primary": int(sum(n_drop.values())), "n_libraries_dropped": 0,
        "n_patients": n_patients, "n_patients_with_several_samples": int((per_patient > 1).sum()),
        "n_samples_of_such_patients": int(per_patient[per_patient > 1].sum()),
    }
    return build_adata(X, obs, genes, pm, uns)
