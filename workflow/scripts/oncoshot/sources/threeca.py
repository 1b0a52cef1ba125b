"""3CA (Curated Cancer Cell Atlas, Weizmann) studies as they are published (SPEC §3.1;
``docs/REAL_FORMATS.md``, section 3CA).

One study is one folder (an extracted ``Data_<Author><Year>_<Tissue>.tar.gz``, plus the extracted
``Meta-data_<Study>.tar.gz`` when the study has one). :func:`find_layout` recognises, under that
folder, at any depth:

* **flat** or **nested**: one folder holding a matrix, a cell table and a gene list (the study
  root, ``Data_Kim2020_Lung/``, or one folder down, ``Breast/`` of Gao2021_Breast);
* **multi-technology**: several sibling folders, each with its own matrix, cell table and gene
  list (Neftel2019_Brain: ``SmartSeq2/`` + a 10x folder, or ``Group1/`` + ``Group2/``). Each folder is
  one *technology*, labelled with the folder's name. A gene list alone in the folder above them is
  used by the technology folders that have none.

File names are matched case-insensitively: the matrix ``[normalized_]Exp_data_{UMIcounts,TPM}[_10X]
.mtx[.gz]`` (genes × cells Matrix Market; the unit is ``UMI`` or ``TPM``), the cell table
``Cells[_10X].{csv,txt,tsv}[.gz]`` (comma-, tab- or space-separated, decided from its header line;
R's ``write.table`` row names are tolerated), the gene list ``Genes[_10X].txt[.gz]`` (one symbol a
line; symbols wrapped in quotes are unquoted, with a warning saying how many). Sample metadata is
``Meta-data.csv``, ``Meta-data_<Study>.csv`` or the older ``Samples.csv`` (comma- or tab-separated,
keyed by ``sample``), found anywhere in the folder, i.e. in the data archive or the metadata
archive. A folder with two matrices, no matrix, no cell table…, data files in folders that are not
siblings, or two different metadata tables: one :class:`~oncoshot.errors.InputError` naming the
folder and the files seen.

:func:`read_study` reads every technology (or the ones a study's ``technologies`` config key picks)
and concatenates them: ``obs["technology"]`` is the technology folder's name (``"all"`` for a
single-folder study; a ``technology`` column of the cell table or the metadata is kept as
``technology_reported``); the genes are the union over technologies, in first-seen order, a gene a
technology did not measure counts 0 for its cells (warning with the counts); when two
technologies share a cell name, every cell name is prefixed ``<technology>:`` (warning), so names
stay unique; ``uns["units"]`` maps technology → unit and ``uns["unit"]`` is the common unit or
``"mixed"``.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from ..errors import InputError
from ..singlecell import SingleCellWarning, sum_duplicated_genes
from ..tables import check_file, examples, is_gzip, open_binary, read_table, require_columns, unquote

__all__ = [
    "SINGLE_TECHNOLOGY",
    "REQUIRED_CELL_COLUMNS",
    "TechnologyFiles",
    "StudyLayout",
    "parse_study_folder",
    "classify",
    "find_layout",
    "read_genes",
    "read_cells",
    "read_metadata",
    "read_technology",
    "read_study",
]

LOG = logging.getLogger("oncoshot.sources.threeca")

#: the technology label of a study whose files sit in one folder
SINGLE_TECHNOLOGY = "all"
REQUIRED_CELL_COLUMNS = ("cell_name", "sample", "cell_type")

_MATRIX = re.compile(r"^(?:normalized_)?exp_data_(umicounts|tpm)(?:_10x)?\.mtx(?:\.gz)?$", re.I)
_CELLS = re.compile(r"^cells(?:_10x)?\.(?:csv|txt|tsv)(?:\.gz)?$", re.I)
_GENES = re.compile(r"^genes(?:_10x)?\.txt(?:\.gz)?$", re.I)
_METADATA = re.compile(r"^(?:meta-?data(?:_.+)?|samples)\.(?:csv|tsv|txt)$", re.I)
_UNITS = {"umicounts": "UMI", "tpm": "TPM"}
_ROLES = ("matrix", "cells", "genes")
_ROLE_NAMES = {
    "matrix": "expression matrix (Exp_data_UMIcounts.mtx, Exp_data_TPM.mtx, _10X / .gz variants)",
    "cells": "cell table (Cells.csv, Cells.txt, Cells_10X.txt)",
    "genes": "gene list (Genes.txt, Genes_10X.txt)",
}


def _warn(message: str) -> None:
    """A :class:`SingleCellWarning` (the workflow's runtime sends warnings to the rule's log)."""
    warnings.warn(message, SingleCellWarning, stacklevel=3)


def parse_study_folder(folder: str | os.PathLike) -> tuple[str, str]:
    """``(study, tissue)`` from a folder name ``Data_<Author><Year>_<Tissue>``.

    The study is the name without its ``Data_`` prefix (``"Kim2020_Lung"``: unique even when one
    paper ships several tissues); the tissue is the text after the last ``_`` (``"Head and Neck"``,
    ``"Liver-Biliary"``). A name without ``_`` gives the whole name for both.
    """
    name = Path(folder).name
    study = name[5:] if name.startswith("Data_") and len(name) > 5 else name
    tissue = study.rsplit("_", 1)[-1] if "_" in study else study
    return study, tissue


def classify(name: str) -> str | None:
    """The role of a 3CA file from its name: ``matrix``, ``cells``, ``genes``, ``metadata`` or None."""
    if _MATRIX.match(name):
        return "matrix"
    if _CELLS.match(name):
        return "cells"
    if _GENES.match(name):
        return "genes"
    if _METADATA.match(name):
        return "metadata"
    return None


@dataclass(frozen=True)
class TechnologyFiles:
    """The three files of one technology (or of a single-folder study)."""

    technology: str
    folder: Path
    matrix: Path
    cells: Path
    genes: Path
    unit: str


@dataclass(frozen=True)
class StudyLayout:
    """What :func:`find_layout` found: ``kind`` is ``flat``, ``nested`` or ``multi-technology``."""

    root: Path
    kind: str
    technologies: tuple[TechnologyFiles, ...]
    metadata: Path | None

    @property
    def names(self) -> list[str]:
        return [t.technology for t in self.technologies]


def _ignored(rel: Path) -> bool:
    """Hidden files and macOS resource forks that zips made on a Mac carry."""
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.parts)


def _files_of(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def find_layout(root: str | os.PathLike) -> StudyLayout:
    """The 3CA layout under ``root`` (see the module docstring); InputError when ambiguous."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, None, "study folder not found")
    data: dict[Path, dict[str, list[Path]]] = {}
    metadata: list[Path] = []
    seen: list[str] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if _ignored(rel) or not path.is_file():
            continue
        seen.append(rel.as_posix())
        role = classify(path.name)
        if role == "metadata":
            metadata.append(path)
        elif role is not None:
            data.setdefault(path.parent, {r: [] for r in _ROLES})[role].append(path)
    if not data:
        raise InputError(root, "expression matrix",
                         f"no 3CA study files found ({_ROLE_NAMES['matrix']}); files seen: "
                         f"{examples(seen, 10) if seen else 'none'}")
    # a gene list alone in the folder above the technology folders is shared by those without one
    shared_genes: dict[Path, Path] = {}
    matrix_folders = [f for f in data if data[f]["matrix"]]
    for folder in [f for f in data if not data[f]["matrix"]]:
        found = data[folder]
        below = [m for m in matrix_folders if m.parent == folder]
        if len(below) > 1 and not found["cells"] and len(found["genes"]) == 1:
            for m in below:
                shared_genes[m] = found["genes"][0]
            del data[folder]
    folders = sorted(data)
    if len(folders) > 1 and len({f.parent for f in folders}) != 1:
        shown = [f.relative_to(root).as_posix() or "." for f in folders]
        raise InputError(root, "layout",
                         f"3CA files in {len(folders)} folders that are not sibling technology folders "
                         f"of one study: {shown}; expected one folder, or one sub-folder per technology")
    techs = []
    for folder in folders:
        found = data[folder]
        if not found["genes"] and folder in shared_genes:
            found["genes"] = [shared_genes[folder]]
            LOG.info("%s: no gene list of its own; using %s", folder, shared_genes[folder])
        for role in _ROLES:
            if len(found[role]) != 1:
                what = "no" if not found[role] else f"{len(found[role])}"
                names = [p.name for p in found[role]]
                raise InputError(folder, role,
                                 f"{what} {_ROLE_NAMES[role]}{' ' + str(names) if names else ''} "
                                 f"(need exactly one); files in the folder: {_files_of(folder)}")
        matrix = found["matrix"][0]
        unit = _UNITS[_MATRIX.match(matrix.name).group(1).lower()]
        name = folder.name if len(folders) > 1 else SINGLE_TECHNOLOGY
        techs.append(TechnologyFiles(name, folder, matrix, found["cells"][0], found["genes"][0], unit))
    if len(folders) > 1:
        kind = "multi-technology"
    else:  # the study root, or the archive's own top folder (Data_<Study>/) inside it, is flat
        top = folders[0]
        flat = top == root or (top.parent == root and (top.name == root.name or top.name.lower().startswith("data_")))
        kind = "flat" if flat else "nested"
    return StudyLayout(root, kind, tuple(techs), _pick_metadata(metadata, root))


def _pick_metadata(paths: list[Path], root: Path) -> Path | None:
    """One sample-metadata table: ``Meta-data*.csv`` wins over the older ``Samples.csv``; several
    tables of the same kind must be identical."""
    if not paths:
        return None
    current = [p for p in paths if not p.name.lower().startswith("samples.")]
    pool = current or paths
    if len({p.read_bytes() for p in pool}) > 1:
        raise InputError(root, "metadata",
                         f"{len(pool)} different sample-metadata tables "
                         f"{[p.relative_to(root).as_posix() for p in pool]}; keep one")
    if current and len(current) < len(paths):
        LOG.info("%s: using %s; the older %s ignored", root, pool[0].relative_to(root).as_posix(),
                 [p.relative_to(root).as_posix() for p in paths if p not in current])
    return pool[0]


# ---------------------------------------------------------------------------------------------
# the three files of a technology, and the metadata
# ---------------------------------------------------------------------------------------------


def _text(path: Path) -> str:
    try:
        with open_binary(check_file(path)) as fh:
            return fh.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not UTF-8 text: {exc}") from None
    except (OSError, EOFError) as exc:
        raise InputError(path, None, f"cannot read: {exc}") from None


def read_genes(path: str | os.PathLike) -> tuple[list[str], int]:
    """``(symbols, n_quoted)`` of a ``Genes.txt``: one symbol a line, no header; quoted symbols
    (``"TP53"``, as some studies write them) are unquoted, with a warning saying how many."""
    path = Path(path)
    lines = _text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(path, None, "no gene symbols")
    with_tab = [i + 1 for i, line in enumerate(lines) if "\t" in line]
    if with_tab:
        raise InputError(path, f"line {with_tab[0]}",
                         f"{len(with_tab)} line(s) with several tab-separated fields; expected one "
                         "gene symbol a line")
    genes = [unquote(line) for line in lines]
    empty = [i + 1 for i, g in enumerate(genes) if not g]
    if empty:
        raise InputError(path, f"line {empty[0]}", f"{len(empty)} empty gene symbol(s)")
    n_quoted = sum(line.strip() != g for line, g in zip(lines, genes))
    if n_quoted:
        example = next(line.strip() for line, g in zip(lines, genes) if line.strip() != g)
        _warn(f"{path}: {n_quoted} of {len(genes)} gene symbols were quoted (e.g. {example}); "
              "the quotes were removed")
    return genes, n_quoted


def _separator(path: Path, header: str) -> str:
    """Comma for ``.csv`` (tab if its header has tabs and no comma); for ``.txt`` / ``.tsv``: tab when
    the header has a tab, comma when it has commas and no space, otherwise runs of spaces."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "\t" if "\t" in header and "," not in header else ","
    if "\t" in header:
        return "\t"
    if "," in header and " " not in header:
        return ","
    return r"\s+"


def _read_delimited(path: Path, what: str) -> pd.DataFrame:
    text = _text(path)
    header = text.split("\n", 1)[0]
    sep = _separator(path, header)
    table = read_table(path, what, sep=sep)
    if not isinstance(table.index, pd.RangeIndex):
        # R write.table: the header has one field fewer than the rows (row names first)
        table.index = table.index.astype(str)
        if "cell_name" in table.columns or what != "cell table":
            LOG.info("%s: first column without a header (R row names) dropped", path)
            table = table.reset_index(drop=True)
        else:
            LOG.info("%s: first column without a header (R row names) used as cell_name", path)
            table = table.rename_axis("cell_name").reset_index()
    table.columns = [str(c).strip() for c in table.columns]
    return table


def read_cells(path: str | os.PathLike) -> pd.DataFrame:
    """A 3CA cell table: ``cell_name``, ``sample``, ``cell_type`` and any other columns (strings;
    names and samples stripped). Empty or duplicated cell names, empty samples: InputError."""
    path = Path(path)
    cells = _read_delimited(path, "cell table")
    require_columns(cells, path, REQUIRED_CELL_COLUMNS, "cell table")
    names = cells["cell_name"]
    if names.isna().any():
        row = int(np.flatnonzero(names.isna().to_numpy())[0]) + 2
        raise InputError(path, f"cell_name (line {row})", "empty cell name")
    names = names.str.strip()
    dup = names[names.duplicated()]
    if len(dup):
        raise InputError(path, "cell_name", f"{dup.nunique()} duplicated cell name(s), e.g. {dup.iloc[0]!r}")
    if cells["sample"].isna().any():
        row = int(np.flatnonzero(cells["sample"].isna().to_numpy())[0]) + 2
        raise InputError(path, f"sample (line {row})", "empty sample")
    cells["cell_name"] = names
    cells["sample"] = cells["sample"].str.strip()
    return cells


def read_metadata(path: str | os.PathLike) -> pd.DataFrame:
    """A 3CA sample table (``Meta-data*.csv`` / ``Samples.csv``): one row per ``sample``
    (stripped); rows repeated identically are kept once; a sample listed twice with different
    values is an InputError naming it and the columns that differ."""
    path = Path(path)
    table = _read_delimited(path, "sample metadata")
    require_columns(table, path, ["sample"], "sample metadata")
    if table["sample"].isna().any():
        row = int(np.flatnonzero(table["sample"].isna().to_numpy())[0]) + 2
        raise InputError(path, f"sample (line {row})", "empty sample")
    table["sample"] = table["sample"].str.strip()
    table = table.drop_duplicates()
    dup = table["sample"][table["sample"].duplicated()]
    if len(dup):
        rows = table[table["sample"] == dup.iloc[0]]
        differ = [c for c in table.columns if rows[c].nunique(dropna=False) > 1]
        raise InputError(path, "sample",
                         f"{dup.nunique()} sample(s) listed more than once with different values, "
                         f"e.g. {dup.iloc[0]!r} (columns that differ: {differ})")
    return table.reset_index(drop=True)


def _mm_header(path: Path) -> tuple[int, int, str]:
    """``(rows, columns, field)`` from a Matrix Market header (banner, comments, size line), read
    by hand: scipy's ``mminfo`` aborts the process on some open file objects."""
    with open_binary(path) as fh:
        banner = fh.readline().decode("utf-8", "replace").split()
        if len(banner) < 5 or banner[0].lower() != "%%matrixmarket" or banner[1].lower() != "matrix":
            raise InputError(path, "header", "not a Matrix Market file (the first line must start "
                             f"'%%MatrixMarket matrix', got {' '.join(banner)[:60]!r})")
        layout, field = banner[2].lower(), banner[3].lower()
        if layout not in ("coordinate", "array"):
            raise InputError(path, "header", f"unknown Matrix Market format {banner[2]!r}")
        for raw in fh:
            line = raw.decode("utf-8", "replace").strip()
            if line and not line.startswith("%"):
                break
        else:
            raise InputError(path, "header", "no size line")
    try:
        n_rows, n_cols = (int(v) for v in line.split()[:2])
    except ValueError:
        raise InputError(path, "header", f"malformed size line {line[:60]!r}") from None
    return n_rows, n_cols, field


def _read_matrix(files: TechnologyFiles, n_genes: int, n_cells: int) -> sp.csr_matrix:
    """cells × genes CSR float32 of a genes × cells Matrix Market file (gzip by content)."""
    path = files.matrix
    try:
        n_rows, n_cols, field = _mm_header(path)
    except (OSError, EOFError) as exc:
        raise InputError(path, "header", f"cannot read: {exc}") from None
    if n_rows != n_genes:
        raise InputError(path, "rows", f"{n_rows} rows but {n_genes} genes in {files.genes.name} "
                         "(3CA matrices are genes × cells)")
    if n_cols != n_cells:
        raise InputError(path, "columns", f"{n_cols} columns but {n_cells} cells in {files.cells.name}")
    if field == "complex":
        raise InputError(path, "header", "complex values are not expression values")
    try:
        if is_gzip(path):
            with gzip.open(path, "rb") as fh:
                M = scipy.io.mmread(fh)
        else:
            M = scipy.io.mmread(str(path))
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(path, None, f"cannot read Matrix Market body: {exc}") from None
    X = sp.csr_matrix(sp.coo_matrix(M).T, dtype=np.float32)
    X.sum_duplicates()
    if X.nnz:
        if not np.isfinite(X.data).all():
            raise InputError(path, "values", f"{int((~np.isfinite(X.data)).sum())} non-finite value(s)")
        if X.data.min() < 0:
            raise InputError(path, "values",
                             f"{int((X.data < 0).sum())} negative value(s); expression must be ≥ 0")
    X.eliminate_zeros()
    return X


def read_technology(files: TechnologyFiles) -> ad.AnnData:
    """One technology's cells × genes AnnData: ``obs`` = the cell table (indexed by
    ``cell_name``), ``var`` = the symbols (duplicates summed with a warning), ``uns``: ``unit``,
    ``source``, ``n_duplicated_genes``, ``n_quoted_genes``."""
    genes, n_quoted = read_genes(files.genes)
    cells = read_cells(files.cells)
    X = _read_matrix(files, len(genes), len(cells))
    X, genes, n_dup = sum_duplicated_genes(X, genes, files.genes)
    obs = cells.set_index("cell_name", drop=True)
    obs.index.name = None
    a = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes, dtype=object)))
    a.uns.update(unit=files.unit, source=str(files.matrix), n_duplicated_genes=int(n_dup),
                 n_quoted_genes=int(n_quoted))
    return a


# ---------------------------------------------------------------------------------------------
# a whole study
# ---------------------------------------------------------------------------------------------


def _gene_union(parts: dict[str, ad.AnnData], study: str) -> tuple[list[str], dict[str, sp.csr_matrix], dict[str, int]]:
    union: list[str] = []
    seen: set[str] = set()
    for a in parts.values():
        for g in a.var_names:
            if g not in seen:
                seen.add(g)
                union.append(g)
    index = pd.Index(union)
    matrices, missing = {}, {}
    for tech, a in parts.items():
        X = a.X.tocsr()
        cols = index.get_indexer(a.var_names)
        matrices[tech] = sp.csr_matrix((X.data, cols[X.indices], X.indptr), shape=(a.n_obs, len(union)))
        matrices[tech].sort_indices()
        missing[tech] = len(union) - a.n_vars
        if missing[tech]:
            absent = index.difference(a.var_names, sort=False)
            _warn(f"{study}: technology {tech!r} lacks {missing[tech]} of the study's {len(union)} genes "
                  f"(e.g. {examples(absent, 3)}); they count as 0 for its {a.n_obs} cells")
    return union, matrices, missing


def _merge_metadata(obs: pd.DataFrame, path: Path) -> pd.DataFrame:
    samples = read_metadata(path)
    if "technology" in samples.columns:
        samples = samples.rename(columns={"technology": "technology_reported"})
    extra = [c for c in samples.columns if c != "sample" and c not in obs.columns]
    unmatched = sorted(set(obs["sample"]) - set(samples["sample"]))
    if unmatched:
        _warn(f"{path}: {len(unmatched)} sample(s) of the cell table not listed (their metadata "
              f"columns are empty), e.g. {unmatched[0]!r}")
    LOG.info("%s: %d samples; columns merged by 'sample': %s", path, len(samples), extra)
    if not extra:
        return obs
    merged = samples.set_index("sample")[extra].reindex(obs["sample"].to_numpy())
    merged.index = obs.index
    return pd.concat([obs, merged], axis=1)


def read_study(
    folder: str | os.PathLike,
    tissue: str | None = None,
    study: str | None = None,
    technologies: list[str] | None = None,
) -> ad.AnnData:
    """Read one 3CA study folder (any layout of :func:`find_layout`) into a cells × genes AnnData.

    Parameters
    ----------
    folder
        The study folder (the extracted archives).
    tissue, study
        Override the values parsed from the folder name (:func:`parse_study_folder`).
    technologies
        Technology folders to read (all when None or empty); a name not present is an
        InputError listing those present (single-folder studies have one, ``"all"``).

    Returns
    -------
    AnnData with ``X`` CSR float32 (cells × genes, genes = union over technologies); ``obs``
    indexed by cell name with every column of the cell table (strings), the metadata columns not
    already there (merged by ``sample``), ``technology``, ``study`` and ``tissue``; ``uns``:
    ``unit`` (common unit or ``"mixed"``), ``units`` / ``sources`` / ``genes_missing``
    (technology → unit / matrix file / genes it lacks), ``layout``, ``technologies``, ``study``,
    ``tissue``, ``source`` (the matrix files, ``;``-joined), ``metadata`` (the table read, or ``""``),
    ``n_duplicated_genes``, ``n_quoted_genes`` (summed over technologies).
    """
    layout = find_layout(folder)
    root = layout.root
    parsed_study, parsed_tissue = parse_study_folder(root)
    study = parsed_study if study is None else str(study)
    tissue = parsed_tissue if tissue is None else str(tissue)
    chosen = list(layout.technologies)
    if technologies:
        unknown = [t for t in technologies if t not in layout.names]
        if unknown:
            raise InputError(root, "technologies",
                             f"{unknown} not in the study; technologies present: {layout.names}")
        chosen = [t for t in layout.technologies if t.technology in technologies]
    LOG.info("%s: %s layout; technologies %s (reading %s); metadata %s", study, layout.kind, layout.names,
             [t.technology for t in chosen],
             layout.metadata.relative_to(root).as_posix() if layout.metadata else "none")

    parts = {t.technology: read_technology(t) for t in chosen}
    for t in chosen:
        a = parts[t.technology]
        LOG.info("%s: technology %r: %d cells × %d genes (%s) from %s", study, t.technology, a.n_obs, a.n_vars,
                 t.unit, t.matrix.relative_to(root).as_posix())
    genes, matrices, missing = _gene_union(parts, study)

    names = {tech: list(a.obs_names) for tech, a in parts.items()}
    all_names = pd.Index([n for v in names.values() for n in v])
    if len(parts) > 1 and all_names.has_duplicates:
        n_shared = int(all_names.duplicated().sum())
        _warn(f"{study}: {n_shared} cell name(s) occur in more than one technology (e.g. "
              f"{all_names[all_names.duplicated()][0]!r}); every cell name is prefixed '<technology>:'")
        names = {tech: [f"{tech}:{n}" for n in v] for tech, v in names.items()}

    frames = []
    for tech, a in parts.items():
        o = a.obs.copy()
        if "technology" in o.columns:
            o = o.rename(columns={"technology": "technology_reported"})
        o.index = pd.Index(names[tech], dtype=object)
        o["technology"] = tech
        frames.append(o)
    obs = pd.concat(frames, axis=0, join="outer", sort=False)
    if layout.metadata is not None:
        obs = _merge_metadata(obs, layout.metadata)
    else:
        LOG.info("%s: no sample metadata (Meta-data*.csv / Samples.csv) in %s", study, root)
    obs["study"] = study
    obs["tissue"] = tissue
    for col in obs.columns:
        obs[col] = obs[col].astype(object)
    X = sp.vstack([matrices[t] for t in parts], format="csr", dtype=np.float32)

    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes, dtype=object)))
    units = {t: a.uns["unit"] for t, a in parts.items()}
    adata.uns.update(
        unit=next(iter(units.values())) if len(set(units.values())) == 1 else "mixed",
        units=units,
        sources={t: a.uns["source"] for t, a in parts.items()},
        genes_missing={t: int(n) for t, n in missing.items()},
        layout=layout.kind,
        technologies=list(parts),
        study=study,
        tissue=tissue,
        source=";".join(a.uns["source"] for a in parts.values()),
        metadata=str(layout.metadata) if layout.metadata is not None else "",
        n_duplicated_genes=int(sum(a.uns["n_duplicated_genes"] for a in parts.values())),
        n_quoted_genes=int(sum(a.uns["n_quoted_genes"] for a in parts.values())),
    )
    return adata
