"""Error types with messages that name the file, the field and the problem."""

from __future__ import annotations

import os


class OncoShotError(Exception):
    """Base class of every error the library raises on purpose."""


class InputError(OncoShotError, ValueError):
    """Bad input: names the file (or object), the field (row, column, key) and the problem."""

    def __init__(self, path: str | os.PathLike | None, field: str | None, problem: str):
        self.path = None if path is None else str(path)
        self.field = field
        self.problem = problem
        parts = [p for p in (self.path, field) if p]
        super().__init__(": ".join(parts + [problem]))


class DownloadError(OncoShotError, OSError):
    """A download or extraction that failed; the message names the URL or file."""
