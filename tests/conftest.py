"""Shared fixtures: repository paths and the real data in ../shared/real (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "real"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """``../shared/real``; tests that use it are skipped when it is absent."""
    if not (REAL / "PROVENANCE.md").exists():
        pytest.skip("../shared/real is absent: real-data test skipped")
    return REAL
