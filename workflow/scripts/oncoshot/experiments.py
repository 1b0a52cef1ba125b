"""Glue between the split tables and the models: select samples, hold out, save/load model files.

Model files are ``.pt`` dictionaries of plain types and tensors (loadable with
``torch.load(..., weights_only=True)``): ``format``, ``kind`` ("cnn" or "siamese"),
``state_dict``, ``genes`` (Ensembl ids, the model's input order), ``classes`` (CNN output order),
``distance`` (Siamese), ``experiment``, ``init``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .io import atomic_path

MODEL_FORMAT = "oncoshot-model-v1"


def select_samples(cohorts: Mapping[str, "object"], samples: pd.DataFrame, experiment: str,
                   split: str | Sequence[str], source: str = "samples.tsv", *, with_patients: bool = False):
    """Expression matrix, labels and sample ids of ``experiment``'s samples in ``split``.

    ``cohorts`` maps the split table's cohort names (``TCGA``, ``MET500``) to AnnData objects with
    the same genes in the same order. Returns ``(X float32 [n, G], labels str [n], ids [n])`` in
    the split table's order; with ``with_patients=True`` also ``patients [n]`` (the split table's
    ``patient`` column as ``<cohort>:<patient>``, the groups of
    :func:`oncoshot.oneshot.make_tasks`), and a table without that column is an error naming it.
    """
    splits = [split] if isinstance(split, str) else list(split)
    sel = samples[(samples["experiment"] == experiment) & samples["split"].isin(splits)]
    if sel.empty:
        raise InputError(source, "experiment/split",
                         f"no samples for experiment {experiment!r} in split(s) {splits}")
    if with_patients and "patient" not in samples.columns:
        raise InputError(source, "column 'patient'", "missing from the split table (made by an older "
                         "split_types): re-run split_types so that tasks can keep patients apart")
    genes = None
    blocks, labels, ids, patients = [], [], [], []
    for cohort, grp in sel.groupby("cohort", sort=False):
        if cohort not in cohorts:
            raise InputError(source, "cohort", f"unknown cohort {cohort!r} (have {sorted(cohorts)})")
        adata = cohorts[cohort]
        if genes is None:
            genes = list(adata.var_names)
        elif list(adata.var_names) != genes:
            raise InputError(None, "var_names", f"cohort {cohort} genes differ from the other cohort's")
        missing = set(grp["sample_id"]) - set(adata.obs_names)
        if missing:
            raise InputError(source, "sample_id",
                             f"{len(missing)} {cohort} samples not in the matrix, e.g. {sorted(missing)[:3]}")
        sub = adata[list(grp["sample_id"])]
        X = sub.X.toarray() if hasattr(sub.X, "toarray") else np.asarray(sub.X)
        blocks.append(X.astype(np.float32, copy=False))
        labels.extend(grp["cancer_type"].astype(str))
        ids.extend(grp["sample_id"].astype(str))
        if with_patients:
            patients.extend(f"{cohort}:{p}" for p in grp["patient"].astype(str))
    if with_patients:
        return np.vstack(blocks), np.asarray(labels), np.asarray(ids), np.asarray(patients)
    return np.vstack(blocks), np.asarray(labels), np.asarray(ids)


def stratified_holdout(labels: Sequence[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices per label into (train, holdout); every label with >= 2 samples gives at least
    one holdout sample when ``fraction`` > 0 and keeps at least one training sample."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, hold = [], []
    for lab in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == lab)
        idx = idx[rng.permutation(len(idx))]
        n_hold = int(round(len(idx) * fraction)) if fraction > 0 else 0
        if fraction > 0 and len(idx) >= 2:
            n_hold = min(max(n_hold, 1), len(idx) - 1)
        else:
            n_hold = 0
        hold.extend(idx[:n_hold].tolist())
        train.extend(idx[n_hold:].tolist())
    return np.sort(np.asarray(train, dtype=int)), np.sort(np.asarray(hold, dtype=int))


def save_model(path: str | os.PathLike, *, kind: str, state_dict: dict, genes: Sequence[str],
               classes: Sequence[str] = (), **meta) -> None:
    """Write a model file atomically (see module docstring)."""
    import torch

    obj = {"format": MODEL_FORMAT, "kind": kind, "state_dict": state_dict,
           "genes": [str(g) for g in genes], "classes": [str(c) for c in classes]}
    obj.update(meta)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_model(path: str | os.PathLike, kind: str | None = None) -> dict:
    """Read a model file with ``weights_only=True``; checks the format and, if given, the kind."""
    import torch

    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "model file does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, None, f"not a readable model file ({exc})") from exc
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise InputError(path, "format", f"expected {MODEL_FORMAT!r}")
    if kind is not None and obj.get("kind") != kind:
        raise InputError(path, "kind", f"expected a {kind} model, found {obj.get('kind')!r}")
    return obj


def load_siamese(path: str | os.PathLike, device=None, genes: Sequence[str] | None = None):
    """``(SiameseNet in eval mode on device, model genes, model file dict)`` from a file written by
    ``train_siamese`` (:func:`load_model`, ``weights_only=True``). With ``genes`` (the columns of
    the matrix the model will see), a different gene list is an error naming the file."""
    import torch

    from .models import SiameseNet

    obj = load_model(path, kind="siamese")
    if genes is not None and list(obj["genes"]) != list(genes):
        raise InputError(path, "genes", "the model's gene list differs from the matrix's")
    model = SiameseNet(len(obj["genes"]), distance=obj.get("distance", "sq"), head=obj.get("head", "paper"))
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as exc:
        raise InputError(path, "state_dict", f"does not fit the model ({exc})") from exc
    model.to(torch.device(device) if device is not None else torch.device("cpu")).eval()
    return model, list(obj["genes"]), obj


def load_scorer(path: str | os.PathLike, device=None, genes: Sequence[str] | None = None):
    """A pair scorer from a model file: a Siamese net (kind ``siamese``, :func:`load_siamese`) or a
    whitened-cosine metric (kind ``metric``, :mod:`oncoshot.metric`). Both have the same scoring
    interface (``embed``, ``head_logits``, ``head_from_embeddings``); returns ``(module in eval
    mode on device, model genes, model file dict)``."""
    import torch

    obj = load_model(path)
    if obj.get("kind") == "siamese":
        return load_siamese(path, device, genes)
    if obj.get("kind") != "metric":
        raise InputError(path, "kind", f"expected a siamese or metric model, found {obj.get('kind')!r}")
    from .metric import load_state

    if genes is not None and list(obj["genes"]) != list(genes):
        raise InputError(path, "genes", "the model's gene list differs from the matrix's")
    try:
        model = load_state(obj["state_dict"], len(obj["genes"]))
    except (RuntimeError, KeyError) as exc:
        raise InputError(path, "state_dict", f"does not fit the metric ({exc})") from exc
    model.to(torch.device(device) if device is not None else torch.device("cpu")).eval()
    return model, list(obj["genes"]), obj


SPLIT_COLUMNS = ("experiment", "sample_id", "cohort", "cancer_type", "split", "patient")


def load_cohorts(tcga: str | os.PathLike, met500: str | os.PathLike, samples: str | os.PathLike):
    """The two labelled cohorts keyed as in the split table (``TCGA``, ``MET500``) and the samples
    table of ``split_types``: ``(cohorts, samples)``."""
    from .io import read_h5ad, read_tsv

    cohorts = {"TCGA": read_h5ad(tcga), "MET500": read_h5ad(met500)}
    return cohorts, read_tsv(samples, required=SPLIT_COLUMNS)


def load_experiment_inputs(inputs):
    """The matrices and split table of a rule's inputs, whichever experiment they belong to:
    ``(cohorts, samples)`` as :func:`load_cohorts`. Built-in experiments have inputs ``tcga``,
    ``met500`` and ``samples`` (``results/bulk/splits/samples.tsv``); a user's cohort (config
    ``cohorts``) has ``cohort`` (its labelled matrix) and ``samples`` (its own split table), keyed
    by the split table's ``cohort`` value (the cohort's name)."""
    from .io import read_h5ad, read_tsv

    cohort = inputs.get("cohort") if hasattr(inputs, "get") else None
    if not cohort:
        return load_cohorts(inputs.tcga, inputs.met500, inputs.samples)
    samples = read_tsv(inputs.samples, required=SPLIT_COLUMNS)
    names = sorted(set(samples["cohort"].astype(str)))
    if len(names) != 1:
        raise InputError(inputs.samples, "column 'cohort'", f"a cohort's split table names one cohort, found {names}")
    return {names[0]: read_h5ad(cohort)}, samples


def cohort_model_meta(cohorts) -> dict:
    """Model-file entries of a user's cohort (``gene_ids``: ensembl | symbol, ``unit``: the values'
    units) that the prediction job checks its files against; {} for the built-in experiments."""
    uns = next(iter(cohorts.values())).uns
    if "cohort" not in uns:
        return {}
    return {"gene_ids": str(uns.get("gene_ids", "ensembl")), "unit": str(uns.get("unit", ""))}


def matrix_genes(cohorts) -> list[str]:
    """The gene ids (model input order) shared by the matrices of :func:`load_experiment_inputs`."""
    return list(next(iter(cohorts.values())).var_names)
