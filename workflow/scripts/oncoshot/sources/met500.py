"""MET500 from the UCSC Xena public hub (SPEC §1.1): expression matrix, metadata, patients and
sequencing libraries.

Files (``../shared/docs/REAL_FORMATS.md``): ``M.mx.log2.txt.gz`` (genes × samples, first header
field ``sample``, gencode v23 versioned ids, log2(FPKM+0.001)) and ``M.meta.plus.txt``
(tab-separated: ``Sample_id``, ``sample_type``, ``sample_source``, ``dataset``, ``tissue``,
``cohort``, ``run.id``, ``idx``, ``test``, ``tc``, ``biopsy_tissue``).

**Samples are sequencing libraries, not patients.** A library id reads
``<patient>-<capt|poly>-SI_<n>-<flowcell>`` (``MO_1437-poly-SI_9666-C5N0MANXX``); the metadata
column ``sample_source`` names the patient. About 372 of ~500 patients have an exome-capture
(``capt``) and a poly-A (``poly``) library of the same biopsy: near-duplicates that must never sit
on both sides of a split or serve as query and support of one task. Policy (config ``met500:``):

* ``patient_column`` (default ``sample_source``): the metadata column naming the patient. When the
  column is missing, ``patient_policy`` decides: ``error`` (default) raises an InputError naming the
  file and the column; ``from_id`` takes the patient from the library id (the part before
  ``-capt-`` / ``-poly-``; an id without that part is an error); ``sample`` makes every library its
  own patient, with a warning that twin libraries may then leak.
* ``library_column`` (default none: parsed from the id): the column giving the library type.
* ``libraries``: ``one_per_patient`` (default) keeps one library per patient, chosen by
  ``prefer_library`` (default ``[poly, capt]``: poly-A first; a type not in the list ranks after
  those in it; ties → the smallest library id); ``all`` keeps every library (patients still keep
  all their libraries on one side of every split, and tasks never pair two of them).
* A patient whose libraries carry different labels is an error naming the metadata file, the label
  column, the patient and its libraries.

:func:`harmonise_met500` writes ``obs["patient"]`` and ``obs["library"]`` and keeps the per-library
decisions in ``uns["libraries"]`` and the counts in ``uns["patients"]``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd

from ..bulk import UNITS, BulkWarning, PathLike, build_adata, read_prepared, to_log2_fpkm1
from ..errors import InputError
from ..tables import check_file, examples, read_table, require_columns
from .tcga import probemap_series

__all__ = [
    "LIBRARY_ID",
    "PATIENT_POLICIES",
    "LIBRARY_POLICIES",
    "LIBRARY_COLUMNS",
    "parse_library_id",
    "read_met500_metadata",
    "select_libraries",
    "harmonise_met500",
]

#: ``<patient>-<capt|poly>-…``: the patient and the library type of a MET500 library id.
LIBRARY_ID = re.compile(r"^(?P<patient>[^-]+(?:-[^-]+)*?)-(?P<library>capt|poly)(?:-|$)", re.IGNORECASE)
PATIENT_POLICIES = ("error", "from_id", "sample")
LIBRARY_POLICIES = ("one_per_patient", "all")
#: columns of the per-library table (``uns["libraries"]``, ``met500_libraries.tsv``).
LIBRARY_COLUMNS = ["sample_id", "patient", "library", "label", "kept", "reason"]


def _warn(message: str) -> None:
    warnings.warn(message, BulkWarning, stacklevel=3)


def parse_library_id(sample_id: str) -> tuple[str | None, str | None]:
    """``MO_1437-poly-SI_9666-C5N0MANXX`` → ``("MO_1437", "poly")``; ``(None, None)`` when the id
    has no ``-capt-`` / ``-poly-`` part. The library type is returned in lower case."""
    m = LIBRARY_ID.match(str(sample_id))
    if not m:
        return None, None
    return m.group("patient"), m.group("library").lower()


def read_met500_metadata(path: PathLike, sample_column: str = "Sample_id", label_column: str = "cohort",
                         patient_column: str = "sample_source", library_column: str | None = None,
                         patient_policy: str = "error") -> pd.DataFrame:
    """Read ``M.meta.plus.txt`` → DataFrame indexed by library id (name ``sample``) with columns
    ``label``, ``patient``, ``library`` (``capt``, ``poly``, another type in lower case, or ``""``
    when unknown).

    Raises :class:`InputError` naming the file and the column for: a missing sample, label or
    (with ``patient_policy="error"``) patient column; a missing ``library_column`` when one is
    given; an empty sample id, label or patient; a library listed twice with different label or
    patient (identical repeats are merged); with ``patient_policy="from_id"``, a library id without
    a ``-capt-`` / ``-poly-`` part.
    """
    if patient_policy not in PATIENT_POLICIES:
        raise InputError(None, "met500.patient_policy",
                         f"unknown policy {patient_policy!r}; expected one of {list(PATIENT_POLICIES)}")
    path = check_file(path)
    df = read_table(path, "MET500 metadata")
    require_columns(df, path, (sample_column, label_column), "MET500 metadata")
    if library_column is not None:
        require_columns(df, path, (library_column,), "MET500 metadata (met500.library_column)")
    empty = np.flatnonzero(df[sample_column].isna().to_numpy())
    if len(empty):
        raise InputError(path, f"column {sample_column!r}, data row {empty[0] + 1}", "empty sample id")
    ids = df[sample_column].astype(str).str.strip()
    no_label = ids[df[label_column].isna().to_numpy()]
    if len(no_label):
        raise InputError(path, f"column {label_column!r}", f"empty label for sample(s) {examples(no_label)}")
    parsed = [parse_library_id(s) for s in ids]
    if patient_column in df.columns:
        no_patient = ids[df[patient_column].isna().to_numpy()]
        if len(no_patient):
            raise InputError(path, f"column {patient_column!r}",
                             f"empty patient for sample(s) {examples(no_patient)}")
        patient = df[patient_column].astype(str).str.strip()
    elif patient_policy == "error":
        raise InputError(path, f"column {patient_column!r}",
                         "missing from the MET500 metadata: it names the patient of each sequencing library "
                         "(MET500 sample ids are libraries, often two per patient) "
                         f"(columns present: {examples(df.columns, 8)}); set met500.patient_column to the "
                         "column that does, or met500.patient_policy to 'from_id' (patient = the part of the "
                         "library id before -capt-/-poly-) or 'sample' (every library its own patient)")
    elif patient_policy == "from_id":
        bad = [s for s, (p, _) in zip(ids, parsed) if p is None]
        if bad:
            raise InputError(path, f"column {sample_column!r}",
                             f"no patient column {patient_column!r} and {len(bad)} library id(s) without a "
                             f"'-capt-'/'-poly-' part to take the patient from: {examples(bad)}")
        patient = pd.Series([p for p, _ in parsed], index=df.index)
    else:  # "sample"
        _warn(f"{path}: no column {patient_column!r}: every library is treated as its own patient "
              "(met500.patient_policy='sample'); twin libraries of one patient may then leak across splits")
        patient = ids.copy()
    if library_column is not None:
        library = df[library_column].fillna("").astype(str).str.strip().str.lower()
    else:
        library = pd.Series([lib or "" for _, lib in parsed], index=df.index)
    out = pd.DataFrame({"sample": ids.to_numpy(), "label": df[label_column].astype(str).str.strip().to_numpy(),
                        "patient": patient.to_numpy(), "library": library.to_numpy()}).drop_duplicates()
    dup = out["sample"][out["sample"].duplicated()]
    if len(dup):
        raise InputError(path, f"column {sample_column!r}",
                         f"sample(s) listed with different {label_column!r}, patient or library: "
                         f"{examples(sorted(set(dup)))}")
    out = out.set_index("sample")
    out.attrs["patient_source"] = (f"column {patient_column}" if patient_column in df.columns
                                   else f"patient_policy {patient_policy}")
    return out


def select_libraries(meta: pd.DataFrame, libraries: str = "one_per_patient",
                     prefer_library: Sequence[str] = ("poly", "capt"), source: PathLike | None = None,
                     label_column: str = "cohort") -> pd.DataFrame:
    """Which libraries to keep (module docstring).

    ``meta``: :func:`read_met500_metadata` rows (index = library id; ``label``, ``patient``,
    ``library``). Returns the per-library table, one row per library sorted by patient then
    library id, columns :data:`LIBRARY_COLUMNS` (``kept`` bool, ``reason`` says why a library was
    dropped or which one was kept). Raises :class:`InputError` naming ``source`` (the metadata
    file) and ``label_column`` for a patient whose libraries carry different labels, and for an
    unknown ``libraries`` policy or an empty / repetitive ``prefer_library``.
    """
    if libraries not in LIBRARY_POLICIES:
        raise InputError(None, "met500.libraries", f"unknown policy {libraries!r}; expected one of {list(LIBRARY_POLICIES)}")
    prefer = [str(p).strip().lower() for p in prefer_library]
    if not prefer or len(set(prefer)) != len(prefer) or "" in prefer:
        raise InputError(None, "met500.prefer_library",
                         f"{list(prefer_library)!r}: give a non-empty list of distinct library types, e.g. [poly, capt]")
    t = meta.reset_index().rename(columns={meta.index.name or "index": "sample_id"})
    labels_per_patient = t.groupby("patient")["label"].nunique()
    conflict = labels_per_patient[labels_per_patient > 1].index
    if len(conflict):
        shown = []
        for p in sorted(conflict)[:3]:
            sub = t[t["patient"] == p].sort_values("sample_id")
            shown.append(f"{p!r} (" + ", ".join(f"{s}: {lab}" for s, lab in zip(sub["sample_id"], sub["label"])) + ")")
        raise InputError(source, f"column {label_column!r}",
                         f"{len(conflict)} patient(s) whose libraries carry different labels: {'; '.join(shown)}"
                         f"{' …' if len(conflict) > 3 else ''}; one patient has one cancer type: fix the metadata")
    rank = {lib: i for i, lib in enumerate(prefer)}
    t["rank"] = [rank.get(lib, len(prefer)) for lib in t["library"]]
    t = t.sort_values(["patient", "rank", "sample_id"], kind="mergesort").reset_index(drop=True)
    first = ~t["patient"].duplicated()
    if libraries == "all":
        t["kept"] = True
        t["reason"] = np.where(t.groupby("patient")["sample_id"].transform("size") > 1,
                               "kept (met500.libraries: all; the patient's libraries stay on one side of every split)",
                               "kept (only library of the patient)")
    else:
        t["kept"] = first.to_numpy()
        chosen = t.loc[first, ["patient", "sample_id", "library"]].set_index("patient")
        n_lib = t.groupby("patient")["sample_id"].transform("size").to_numpy()
        reasons = []
        for p, s, kept, n in zip(t["patient"], t["sample_id"], t["kept"], n_lib):
            if n == 1:
                reasons.append("kept (only library of the patient)")
            elif kept:
                reasons.append(f"kept (one library per patient; preference {prefer})")
            else:
                c = chosen.loc[p]
                reasons.append(f"dropped: patient {p} keeps {c['sample_id']} "
                               f"({c['library'] or 'unknown type'}; preference {prefer})")
        t["reason"] = reasons
    t["library"] = t["library"].astype(str)
    return t[LIBRARY_COLUMNS]


def harmonise_met500(
    matrix: PathLike,
    metadata: PathLike,
    probemap: PathLike | pd.Series | None = None,
    unit: str = "log2_fpkm0.001",
    sample_column: str = "Sample_id",
    label_column: str = "cohort",
    par_y: str = "drop",
    patient_column: str = "sample_source",
    library_column: str | None = None,
    patient_policy: str = "error",
    libraries: str = "one_per_patient",
    prefer_library: Sequence[str] = ("poly", "capt"),
) -> ad.AnnData:
    """Harmonise the MET500 matrix (Xena ``M.mx.log2.txt.gz``) into samples × genes log2(FPKM+1),
    one library per patient by default (module docstring).

    ``metadata`` (``M.meta.plus.txt``, read with :func:`read_met500_metadata`) gives each
    library's label in ``label_column``, its patient in ``patient_column`` and its library type
    (``library_column``, or parsed from the id). ``sample_column`` holds the library ids, matched
    exactly to the matrix header. A matrix sample absent from the metadata is an error naming the
    samples; metadata samples without expression are dropped with a warning. Libraries:
    :func:`select_libraries` (``libraries``, ``prefer_library``) on the libraries of the matrix.
    Gene ids: :func:`oncoshot.bulk.harmonise_gene_ids` (``par_y``; gencode v23 ``ENSGR…`` PAR ids
    included) → :func:`oncoshot.bulk.collapse_duplicates` → sorted.

    Returns AnnData (float32) with obs ``cohort`` ("MET500"), ``cancer_type`` (= label, before
    merging), ``sample_type`` ("metastatic"), ``patient``, ``library``; var as in
    :func:`oncoshot.sources.tcga.harmonise_tcga`; uns ``unit``, ``source_unit``,
    ``n_duplicate_ids``, ``n_par_y_dropped``, ``n_metadata_without_expression``, ``libraries``
    (the per-library table of :func:`select_libraries`, every library of the matrix) and
    ``patients`` (counts: ``n_samples_in`` libraries in the matrix, ``n_samples_kept``,
    ``n_libraries_dropped``, ``n_patients``, ``n_patients_with_several_samples`` (before the
    selection), ``n_patients_with_several_kept`` …).
    """
    if unit not in UNITS:
        raise InputError(None, "unit", f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")
    pm = probemap_series(probemap)
    meta = read_met500_metadata(metadata, sample_column, label_column, patient_column, library_column, patient_policy)
    df, n_dup, n_par = read_prepared(matrix, par_y)
    missing = [s for s in df.columns if s not in meta.index]
    if missing:
        raise InputError(metadata, f"column {sample_column!r}",
                         f"{len(missing)} sample(s) of the expression matrix {matrix} have no metadata row: "
                         f"{examples(missing)}")
    extra = meta.index.difference(df.columns)
    if len(extra):
        _warn(f"{metadata}: {len(extra)} metadata sample(s) have no expression in {matrix} and were dropped: "
              f"{examples(sorted(extra))}")
    table = select_libraries(meta.loc[list(df.columns)], libraries, prefer_library, source=metadata,
                             label_column=label_column)
    kept = set(table.loc[table["kept"], "sample_id"])
    df = df[[s for s in df.columns if s in kept]]
    df = df.loc[sorted(df.index)]
    conv, recorded = to_log2_fpkm1(df, unit, matrix)
    m = meta.loc[list(conv.columns)]
    obs = pd.DataFrame({"cohort": "MET500", "cancer_type": m["label"].to_numpy(dtype=object),
                        "sample_type": "metastatic", "patient": m["patient"].to_numpy(dtype=object),
                        "library": m["library"].to_numpy(dtype=object)}, index=conv.columns)
    n_lib = table.groupby("patient").size()
    n_kept = table[table["kept"]].groupby("patient").size()
    patients = {
        "cohort": "MET500",
        "policy": (f"libraries={libraries}, prefer_library={list(prefer_library)}; patient from "
                   f"{meta.attrs.get('patient_source', 'column ' + patient_column)}"),
        "n_samples_in": int(len(table)), "n_samples_kept": int(table["kept"].sum()),
        "n_samples_dropped_non_primary": 0, "n_libraries_dropped": int((~table["kept"]).sum()),
        "n_patients": int(len(n_lib)), "n_patients_with_several_samples": int((n_lib > 1).sum()),
        "n_samples_of_such_patients": int(n_lib[n_lib > 1].sum()),
        "n_patients_with_several_kept": int((n_kept > 1).sum()),
    }
    uns = {"unit": recorded, "source_unit": unit, "par_y": par_y, "n_duplicate_ids": int(n_dup),
           "n_par_y_dropped": int(n_par), "n_metadata_without_expression": int(len(extra)),
           "libraries": table.astype({"kept": bool}).reset_index(drop=True), "patients": patients}
    return build_adata(conv.to_numpy(dtype=np.float32).T, obs, pd.Index(conv.index, name="gene_id"), pm, uns)
