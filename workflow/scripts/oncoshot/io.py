"""Atomic reading and writing of the workflow's interchange files (AnnData .h5ad, TSV)."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .errors import InputError

if TYPE_CHECKING:  # pandas is imported where it is used: a download job never needs it
    import pandas as pd


def current_umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_default_mode(path: str | os.PathLike, directory: bool | None = None) -> None:
    """Give ``path`` the mode a plain ``open()`` / ``mkdir()`` would under the user's umask
    (``0o666`` / ``0o777`` less the umask). Temporary files and folders (``mkstemp``,
    ``mkdtemp``) are private (0600 / 0700), so a file written through one and renamed into place
    would otherwise be unreadable by colleagues on a shared results folder."""
    path = Path(path)
    if directory is None:
        directory = path.is_dir()
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        give_default_mode(tmp_path, directory=False)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_h5ad(adata, path: str | os.PathLike) -> None:
    """Write an AnnData atomically (compressed)."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression="gzip")


def read_h5ad(path: str | os.PathLike):
    """Read an AnnData; a missing or unreadable file is an InputError naming it."""
    import anndata as ad

    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "file does not exist")
    try:
        return ad.read_h5ad(path)
    except Exception as exc:  # h5py raises several types for corrupt files
        raise InputError(path, None, f"not a readable .h5ad file ({exc})") from exc


def write_tsv(df: pd.DataFrame, path: str | os.PathLike, index: bool = False) -> None:
    """Write a tab-separated table atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=index)


def read_tsv(path: str | os.PathLike, required: tuple[str, ...] = (), **kwargs) -> pd.DataFrame:
    """Read a TSV and check that the ``required`` columns are present."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "file does not exist")
    import pandas as pd

    df = pd.read_csv(path, sep="\t", **kwargs)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(path, ", ".join(missing), f"required column(s) missing; found {list(df.columns)}")
    return df
