"""Reading and validating the text tables every source shares (one place, no private reach-ins).

The readers of each real source (:mod:`oncoshot.sources`) and the prediction job use these:
:func:`check_file` (exists, not a folder), :func:`is_gzip` / :func:`open_binary` (gzip decided by
content, not by the suffix), :func:`read_table` (a tab- or comma-separated table with a header,
every cell a string, empty cells NaN, quoted header fields unquoted), :func:`require_columns`, and
:func:`examples` (the first few items of a list for an error message). Every problem is an
:class:`oncoshot.errors.InputError` naming the file, the field and the problem.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from .errors import InputError

__all__ = ["PathLike", "examples", "is_gzip", "open_binary", "check_file", "unquote", "read_table",
           "require_columns"]

PathLike = str | os.PathLike


def examples(items: Iterable, k: int = 5) -> str:
    """``'a', 'b', 'c' …`` — the first ``k`` items, quoted, with the total when there are more."""
    items = list(items)
    shown = ", ".join(repr(str(x)) for x in items[:k])
    return shown if len(items) <= k else f"{shown} … ({len(items)} in total)"


def is_gzip(path: PathLike) -> bool:
    """Whether the file starts with the gzip magic bytes (whatever its name)."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_binary(path: PathLike):
    """Open for reading bytes, decompressing gzip when the content is gzip."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def check_file(path: PathLike) -> Path:
    """``Path(path)`` when it is an existing file; otherwise an InputError naming it."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "file not found")
    if path.is_dir():
        raise InputError(path, None, "is a directory, expected a file")
    return path


def unquote(field: str) -> str:
    """``"TP53"`` or ``'TP53'`` → ``TP53`` (stripped; one matching pair of quotes removed)."""
    field = field.strip()
    if len(field) >= 2 and field[0] == field[-1] and field[0] in "\"'":
        return field[1:-1]
    return field


def read_table(path: PathLike, what: str, sep: str = "\t") -> pd.DataFrame:
    """A table with a header, every cell a string (empty cells → NaN only; gzip by content)."""
    path = check_file(path)
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                         compression="gzip" if is_gzip(path) else None)
    except pd.errors.EmptyDataError as exc:
        raise InputError(path, None, f"empty file (expected a {what} with a header)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, "rows", f"malformed {what}: {exc}".strip()) from exc
    if df.empty:
        raise InputError(path, "rows", f"no data rows in the {what}")
    df.columns = [unquote(str(c)) for c in df.columns]
    return df


def require_columns(df: pd.DataFrame, path: PathLike | None, columns: Sequence[str], what: str) -> None:
    """An InputError naming the first of ``columns`` missing from ``df`` and the columns present."""
    for c in columns:
        if c not in df.columns:
            raise InputError(path, f"column {c!r}", f"missing from the {what} (columns present: "
                             f"{examples(df.columns, 8)})")
