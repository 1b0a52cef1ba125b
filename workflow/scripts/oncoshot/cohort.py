"""Your own labelled cohort for the bulk branch (config ``cohorts``; README "Train on your own cohort").

A cohort is an expression matrix, a label table (sample → type, optional patient) and a split
policy. It becomes one experiment of the same name that pretraining, the Siamese network, the
one-shot evaluation, the markers and the prediction jobs use like the built-in TCGA experiments::

    read_cohort_expression ─► (orientation check) ─► read_cohort_labels ─► exclude genes
        ─► harmonised AnnData (every labelled sample)  ─► gene filter (optional) ─► min_samples
        ─► labelled AnnData ─► split_cohort (paper ranking or seeded random; 50/50 by patient)

Matrix conventions are the prediction job's (:mod:`oncoshot.predict`): ``.h5ad`` or text
(``.tsv``/``.txt``/``.csv``, optionally gzipped); ``orientation`` ``genes_x_samples`` (default
for text) or ``samples_x_genes`` (default for ``.h5ad``); ``gene_ids`` ``ensembl`` (versions
stripped; a duplicated id is an error) or ``symbol``; ``units`` one of
:data:`oncoshot.bulk.UNITS` (converted to log2(FPKM+1), counts to log2(CPM+1)) or ``as_is`` /
``zscore`` (the values are used as they are, e.g. cell lines z-scored upstream; only checked to
be finite).

Labels: a tab-separated table with a header. An empty label, or one listed in ``drop_labels``,
makes the sample *unlabelled*: it is dropped and counted. Matrix samples without a row in the
table are dropped and counted (warning); label rows whose sample is not in the matrix are counted
(warning) — unless *no* labelled sample is in the matrix, which is an error (with a hint when the
label ids are the matrix's row ids: wrong ``orientation``). A duplicated sample id, an empty
patient and a patient with two labels are errors naming the file and the column.

Every bad input raises :class:`oncoshot.errors.InputError` naming the file, the field and the
problem. Nothing here imports Snakemake.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd

from .bulk import UNITS, BulkWarning, PathLike, gene_filter_mask
from .bulk import val_test_halves  # the per-type split by patient, shared with the built-in experiments
from .errors import InputError
from .predict import AS_IS_UNITS, GENE_ID_TYPES, ORIENTATIONS, convert_units, harmonise_ids, read_expression
from .tables import examples as _examples
from .tables import read_table, require_columns

__all__ = [
    "AS_IS_UNITS",
    "COHORT_UNITS",
    "SPLIT_POLICIES",
    "TYPE_COLUMNS",
    "SAMPLE_COLUMNS",
    "LABEL_REPORT_COLUMNS",
    "convert_units",
    "read_cohort_expression",
    "read_cohort_labels",
    "excluded_genes",
    "build_cohort",
    "rank_types",
    "choose_unseen_types",
    "split_cohort",
]

#: every accepted ``units`` value → the unit recorded in ``uns["unit"]``.
COHORT_UNITS = {**UNITS, **AS_IS_UNITS}
SPLIT_POLICIES = ("paper", "random")
TYPE_COLUMNS = ["experiment", "cancer_type", "role", "cohort", "n_train", "n_validation", "n_test", "rank"]
SAMPLE_COLUMNS = ["experiment", "sample_id", "cohort", "cancer_type", "split", "patient"]
LABEL_REPORT_COLUMNS = ["cancer_type", "n_samples", "n_patients", "kept", "reason"]


def _warn(message: str) -> None:
    warnings.warn(message, BulkWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# Expression
# ---------------------------------------------------------------------------------------------
def read_cohort_expression(path: PathLike, units: str = "log2_fpkm1", gene_ids: str = "ensembl",
                           orientation: str | None = None) -> tuple[pd.DataFrame, str]:
    """A genes × samples float64 matrix with harmonised gene ids, in the cohort's working units:
    ``(df, recorded unit)``. Unknown ``units`` / ``gene_ids`` / ``orientation``, duplicated ids,
    non-numeric or missing values are errors naming the file."""
    if units not in COHORT_UNITS:
        raise InputError(path, "units", f"unknown units {units!r}; expected one of {sorted(COHORT_UNITS)}")
    if gene_ids not in GENE_ID_TYPES:
        raise InputError(path, "gene_ids", f"unknown value {gene_ids!r}; expected one of {GENE_ID_TYPES}")
    if orientation is not None and orientation not in ORIENTATIONS:
        raise InputError(path, "orientation", f"unknown value {orientation!r}; expected one of {ORIENTATIONS}")
    df = read_expression(path, orientation)
    dup = pd.Index(df.columns)[pd.Index(df.columns).duplicated()]
    if len(dup):
        raise InputError(path, "sample ids", f"duplicated sample ids: {_examples(sorted(set(dup)))}")
    df = harmonise_ids(df, path, gene_ids)
    return convert_units(df, units, path)


# ---------------------------------------------------------------------------------------------
# Labels and excluded genes
# ---------------------------------------------------------------------------------------------
def read_cohort_labels(path: PathLike, sample_column: str, label_column: str, patient_column: str | None = None,
                       drop_labels: Sequence[str] = ()) -> tuple[pd.DataFrame, dict]:
    """Labelled samples of a label table: DataFrame indexed by sample id with ``cancer_type`` and
    ``patient`` (the sample id when ``patient_column`` is None), and counts: ``n_rows``,
    ``n_unlabelled_empty``, ``n_unlabelled_dropped`` (label in ``drop_labels``, by label in
    ``dropped_by_label``), ``n_labelled``. See the module docstring for the errors."""
    df = read_table(path, "label table")
    cols = [sample_column, label_column] + ([patient_column] if patient_column else [])
    require_columns(df, path, cols, "label table")
    ids = df[sample_column]
    empty_id = np.flatnonzero(ids.isna().to_numpy() | (ids.fillna("").str.strip() == "").to_numpy())
    if len(empty_id):
        raise InputError(path, f"column {sample_column!r}, data row {empty_id[0] + 1}", "empty sample id")
    ids = ids.str.strip()
    dup = sorted(set(ids[ids.duplicated()]))
    if dup:
        raise InputError(path, f"column {sample_column!r}", f"{len(dup)} duplicated sample id(s): {_examples(dup)}; "
                         "list every sample once")
    label = df[label_column].fillna("").str.strip()
    drop = {str(x).strip() for x in drop_labels}
    is_empty = (label == "").to_numpy()
    is_dropped = label.isin(drop).to_numpy() & ~is_empty
    keep = ~is_empty & ~is_dropped
    counts = {"n_rows": int(len(df)), "n_unlabelled_empty": int(is_empty.sum()),
              "n_unlabelled_dropped": int(is_dropped.sum()), "n_labelled": int(keep.sum()),
              "dropped_by_label": {k: int(v) for k, v in label[is_dropped].value_counts().sort_index().items()}}
    out = pd.DataFrame({"cancer_type": label.to_numpy(dtype=object)}, index=pd.Index(ids.to_numpy(dtype=object),
                                                                                    name="sample_id"))
    if patient_column:
        pat = df[patient_column].fillna("").str.strip()
        bad = ids[keep & (pat == "").to_numpy()]
        if len(bad):
            raise InputError(path, f"column {patient_column!r}", f"empty patient for labelled sample(s) {_examples(bad)}")
        out["patient"] = pat.to_numpy(dtype=object)
    else:
        out["patient"] = out.index.to_numpy(dtype=object)
    out = out[keep]
    per = out.groupby("patient")["cancer_type"].nunique()
    mixed = sorted(per[per > 1].index)
    if mixed:
        sub = out[out["patient"] == mixed[0]]
        raise InputError(path, f"columns {patient_column!r}, {label_column!r}",
                         f"{len(mixed)} patient(s) have samples of different types, e.g. {mixed[0]!r} ("
                         + ", ".join(f"{s}: {t}" for s, t in zip(sub.index, sub["cancer_type"]))
                         + "); one patient has one type")
    return out, counts


def excluded_genes(path: PathLike, column: str, filter_column: str | None = None,
                   values: Sequence[str] = ()) -> list[str]:
    """Gene ids to drop from a table: ``column``'s values on the rows whose ``filter_column`` is one
    of ``values`` (compared as stripped strings), or every row when ``filter_column`` is None."""
    df = read_table(path, "gene table")
    require_columns(df, path, [column] + ([filter_column] if filter_column else []), "gene table")
    rows = df
    if filter_column:
        wanted = {str(v).strip() for v in values}
        rows = df[df[filter_column].fillna("").str.strip().isin(wanted)]
    genes = rows[column].dropna().astype(str).str.strip()
    return sorted(set(genes[genes != ""]))


# ---------------------------------------------------------------------------------------------
# The cohort's matrices
# ---------------------------------------------------------------------------------------------
def _orientation_hint(expr: pd.DataFrame, label_ids: Sequence[str], path: PathLike, orientation: str | None) -> None:
    in_cols = int(pd.Index(expr.columns).isin(label_ids).sum())
    in_rows = int(pd.Index(expr.index.astype(str)).isin(label_ids).sum())
    if in_cols == 0:
        hint = ""
        if in_rows:
            declared = orientation or "the default for this file type"
            hint = (f"; {in_rows} of the label table's sample ids are row ids of the matrix: is the orientation "
                    f"right (declared {declared}; genes_x_samples / samples_x_genes)?")
        raise InputError(path, "samples", f"none of the label table's {len(label_ids)} sample ids is a sample of "
                         f"the matrix (samples e.g. {_examples(list(expr.columns)[:3])}){hint}")
    if in_rows > in_cols:
        raise InputError(path, "orientation", f"only {in_cols} of the label table's sample ids are samples of the "
                         f"matrix but {in_rows} are its gene ids: is the orientation right "
                         "(genes_x_samples / samples_x_genes)?")


def build_cohort(name: str, expression: Mapping, labels: Mapping, *, exclude: Mapping | None = None,
                 gene_filter: bool = True, filter_threshold: float = 0.8, min_samples: int = 2,
                 log=None) -> tuple[ad.AnnData, ad.AnnData, pd.DataFrame, dict]:
    """Read and label a cohort (module docstring).

    ``expression``: ``path``, ``units``, ``gene_ids``, ``orientation``; ``labels``: ``path``,
    ``sample_column``, ``label_column``, ``patient_column`` (optional), ``drop_labels``;
    ``exclude``: ``path``, ``column``, optional ``filter: {column, values}``.

    Returns ``(harmonised, labelled, label report, counts)``: ``harmonised`` holds every labelled
    sample of the matrix on the genes left after ``exclude`` (samples × genes, genes sorted by id,
    ``obs`` ``cohort`` (= name), ``cancer_type``, ``patient``; ``var`` ``symbol``; ``uns`` ``unit``
    and ``patients`` (the counts :func:`oncoshot.bulk.patient_report` reads)); ``labelled`` is it
    after the gene filter (when ``gene_filter``) and without the types of fewer than
    ``min_samples`` samples. The label report has one row per type (``n_samples``, ``n_patients``,
    ``kept``, ``reason``).
    """
    say = log or (lambda msg: None)
    epath = expression["path"]
    expr, unit = read_cohort_expression(epath, expression.get("units", "log2_fpkm1"),
                                        expression.get("gene_ids", "ensembl"), expression.get("orientation"))
    say(f"{epath}: {expr.shape[0]} genes × {expr.shape[1]} samples, units {expression.get('units')} → {unit}")
    lpath = labels["path"]
    lab, counts = read_cohort_labels(lpath, labels.get("sample_column", "sample_id"), labels["label_column"],
                                     labels.get("patient_column"), labels.get("drop_labels") or ())
    all_ids = read_table(lpath, "label table")[labels.get("sample_column", "sample_id")].dropna().str.strip().tolist()
    _orientation_hint(expr, all_ids, epath, expression.get("orientation"))
    listed = set(all_ids)
    no_label_row = [s for s in expr.columns if s not in listed]
    labels_absent = [s for s in all_ids if s not in set(expr.columns)]
    counts.update(n_matrix_samples=int(expr.shape[1]), n_matrix_samples_without_label_row=len(no_label_row),
                  n_label_rows_without_sample=len(labels_absent))
    say(f"{lpath}: {counts['n_rows']} rows; {counts['n_labelled']} labelled, {counts['n_unlabelled_empty']} with an "
        f"empty label and {counts['n_unlabelled_dropped']} with a dropped label "
        f"({', '.join(f'{k}: {v}' for k, v in counts['dropped_by_label'].items()) or 'none'}) are unlabelled and dropped")
    if no_label_row:
        _warn(f"{epath}: {len(no_label_row)} sample(s) of the matrix have no row in the label table {lpath} and are "
              f"dropped: {_examples(no_label_row)}")
    if labels_absent:
        _warn(f"{lpath}: {len(labels_absent)} sample(s) of the label table are not in the matrix {epath}: "
              f"{_examples(labels_absent)}")
    lab = lab[lab.index.isin(expr.columns)]
    if lab.empty:
        raise InputError(lpath, f"column {labels['label_column']!r}", "no labelled sample of the matrix is left")

    n_genes_in = expr.shape[0]
    excluded: list[str] = []
    if exclude:
        flt = exclude.get("filter") or {}
        excluded = excluded_genes(exclude["path"], exclude["column"], flt.get("column"), flt.get("values") or ())
        unknown = [g for g in excluded if g not in set(expr.index)]
        expr = expr.loc[~expr.index.isin(excluded)]
        say(f"{exclude['path']}: {len(excluded)} genes excluded"
            + (f" ({flt.get('column')} in {list(flt.get('values') or [])})" if flt else "")
            + (f", {len(unknown)} of them not in the matrix" if unknown else "") + f"; {expr.shape[0]} genes left")
        if expr.shape[0] == 0:
            raise InputError(exclude["path"], exclude["column"], "every gene of the matrix is excluded")
    counts.update(n_genes_in=int(n_genes_in), n_genes_excluded=int(n_genes_in - expr.shape[0]))
    expr = expr.sort_index()
    X = expr[list(lab.index)].to_numpy(dtype=np.float32).T
    obs = pd.DataFrame({"cohort": name, "cancer_type": lab["cancer_type"].astype(str).to_numpy(),
                        "sample_type": "primary", "patient": lab["patient"].astype(str).to_numpy()},
                       index=pd.Index(lab.index.astype(str), name="sample_id"))
    var = pd.DataFrame({"symbol": expr.index.astype(str)}, index=pd.Index(expr.index.astype(str), name="gene_id"))
    per_patient = obs["patient"].value_counts()
    uns = {"unit": unit, "cohort": name, "gene_ids": expression.get("gene_ids", "ensembl"),
           "patients": {"cohort": name, "policy": f"column {labels['patient_column']}" if labels.get("patient_column")
                        else "sample (each sample its own patient)",
                        "n_samples_in": int(expr.shape[1]), "n_samples_dropped_non_primary": 0,
                        "n_libraries_dropped": 0, "n_samples_kept": int(len(obs)),
                        "n_patients": int(len(per_patient)),
                        "n_patients_with_several_samples": int((per_patient > 1).sum()),
                        "n_samples_of_such_patients": int(per_patient[per_patient > 1].sum())}}
    harmonised = ad.AnnData(X=np.ascontiguousarray(X), obs=obs, var=var, uns=uns)

    labelled = harmonised
    if gene_filter:
        keep = gene_filter_mask(harmonised.X, float(filter_threshold), list(harmonised.var_names), str(epath))
        say(f"gene filter (mean and sd < {filter_threshold}): {int(keep.sum())} of {len(keep)} genes kept")
        if not keep.any():
            raise InputError(epath, "genes", f"the gene filter (threshold {filter_threshold}) keeps no gene")
        labelled = labelled[:, keep].copy()
    counts["n_genes_kept"] = int(labelled.n_vars)
    n_per = obs["cancer_type"].value_counts()
    p_per = obs.groupby("cancer_type")["patient"].nunique()
    small = sorted(t for t, n in n_per.items() if n < int(min_samples))
    rows = [{"cancer_type": t, "n_samples": int(n_per[t]), "n_patients": int(p_per[t]), "kept": t not in small,
             "reason": f"fewer than min_samples={min_samples} samples" if t in small else ""}
            for t in sorted(n_per.index, key=lambda t: (-int(n_per[t]), t))]
    report = pd.DataFrame(rows, columns=LABEL_REPORT_COLUMNS)
    if small:
        say(f"{len(small)} type(s) with fewer than {min_samples} samples dropped ({int(n_per[small].sum())} samples): "
            + ", ".join(f"{t} ({int(n_per[t])})" for t in small))
    labelled = labelled[~labelled.obs["cancer_type"].isin(small).to_numpy()].copy()
    counts.update(n_types=int(labelled.obs["cancer_type"].nunique()), n_samples=int(labelled.n_obs))
    say(f"cohort {name}: {labelled.n_obs} samples of {labelled.obs['patient'].nunique()} patients in "
        f"{counts['n_types']} types, {labelled.n_vars} genes")
    return harmonised, labelled, report, counts


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------
def rank_types(cancer_types: Sequence[str]) -> list[str]:
    """Types by number of samples, descending; ties by name ascending (rank 1 = first)."""
    counts = pd.Series(list(cancer_types), dtype=object).astype(str).value_counts()
    return sorted(counts.index, key=lambda t: (-int(counts[t]), t))


def choose_unseen_types(cancer_types: Sequence[str], policy: str, n_test_types: int, seed: int,
                        source: str | None = None) -> list[str]:
    """The unseen (test) types. ``paper``: the ``n_test_types`` last of :func:`rank_types` (fewest
    samples; among equal counts the names sorting last). ``random``: ``n_test_types`` types drawn
    without replacement from the sorted types by ``numpy.random.default_rng(seed)``. Fewer than
    ``n_test_types + 2`` types is an error (training needs at least 2)."""
    ranked = rank_types(cancer_types)
    if policy not in SPLIT_POLICIES:
        raise InputError(source, "split.policy", f"unknown policy {policy!r}; expected one of {SPLIT_POLICIES}")
    if int(n_test_types) < 2:
        raise InputError(source, "split.n_test_types", f"{n_test_types!r}: one-shot tests need at least 2 types")
    if len(ranked) < int(n_test_types) + 2:
        raise InputError(source, "split.n_test_types",
                         f"{len(ranked)} types, fewer than n_test_types ({n_test_types}) + 2 training types")
    if policy == "paper":
        return sorted(ranked[len(ranked) - int(n_test_types):])
    rng = np.random.default_rng(int(seed))
    pool = sorted(ranked)
    return sorted(pool[i] for i in rng.choice(len(pool), size=int(n_test_types), replace=False))


def split_cohort(adata_or_obs, name: str, *, policy: str = "paper", n_test_types: int = 10,
                 validation_fraction: float = 0.5, seed: int, min_patients: int = 2,
                 small_type_policy: str = "drop", source: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Types and samples tables of the cohort's experiment ``name`` (the columns of the built-in
    ``split_types``). Training types: every sample ``train``; unseen types
    (:func:`choose_unseen_types`): their patients split per type into validation / test exactly as
    the built-in experiments (``oncoshot.bulk.val_test_halves``, seeded by ``(seed, crc32("<name>:<type>"))``;
    every patient on one side). A type with fewer than ``min_patients`` patients in one of its
    splits is dropped with a warning (``small_type_policy: drop``) or an error; fewer than 2
    training or 2 unseen types left is an error."""
    obs = adata_or_obs.obs if isinstance(adata_or_obs, ad.AnnData) else adata_or_obs
    if not (0 < float(validation_fraction) < 1):
        raise InputError(source, "split.validation_fraction", f"{validation_fraction!r} must be strictly between 0 and 1")
    if small_type_policy not in ("drop", "error"):
        raise InputError(source, "small_type_policy", f"unknown policy {small_type_policy!r}; expected drop or error")
    types = obs["cancer_type"].astype(str)
    patient = obs["patient"].astype(str) if "patient" in obs.columns else pd.Series(obs.index.astype(str), index=obs.index)
    patient.index = obs.index.astype(str)
    ranked = rank_types(types)
    rank = {t: i + 1 for i, t in enumerate(ranked)}
    unseen = set(choose_unseen_types(types, policy, n_test_types, seed, source))
    ids_of = {t: sorted(obs.index[(types == t).to_numpy()].astype(str)) for t in ranked}
    plan = {}
    for t in ranked:
        if t in unseen:
            val, test = val_test_halves(patient.loc[ids_of[t]], float(validation_fraction), int(seed), f"{name}:{t}")
            plan[t] = ("test", {"validation": val, "test": test})
        else:
            plan[t] = ("train", {"train": ids_of[t]})
    for t in list(plan):
        role, splits = plan[t]
        for split, ids in splits.items():
            n_pat = int(patient.loc[ids].nunique()) if ids else 0
            if n_pat < int(min_patients):
                msg = (f"cohort {name!r}: type {t!r} has {n_pat} patient(s) ({len(ids)} sample(s)) in split {split!r}, "
                       f"fewer than splits.min_samples={min_patients}")
                if small_type_policy == "error":
                    raise InputError(source, f"type {t!r}", msg)
                _warn(msg + "; type dropped")
                del plan[t]
                break
    n_train = sum(r == "train" for r, _ in plan.values())
    n_test = sum(r == "test" for r, _ in plan.values())
    if n_train < 2 or n_test < 2:
        raise InputError(source, f"cohort {name!r}", f"{n_train} training and {n_test} unseen type(s) left; at least "
                         "2 of each are needed")
    type_rows, sample_rows = [], []
    for t in ranked:
        if t not in plan:
            continue
        role, splits = plan[t]
        type_rows.append({"experiment": name, "cancer_type": t, "role": role, "cohort": name,
                          "n_train": len(splits.get("train", [])), "n_validation": len(splits.get("validation", [])),
                          "n_test": len(splits.get("test", [])), "rank": rank[t]})
        for split, ids in splits.items():
            sample_rows += [(name, s, name, t, split, patient.loc[s]) for s in ids]
    types_df = pd.DataFrame(type_rows, columns=TYPE_COLUMNS)
    types_df["rank"] = types_df["rank"].astype("Int64")
    samples = pd.DataFrame(sample_rows, columns=SAMPLE_COLUMNS)
    sides = samples[samples["split"] != "train"].groupby("patient")["split"].nunique()
    assert not (sides > 1).any(), f"internal error: cohort {name}: a patient on both sides"
    return types_df, samples
