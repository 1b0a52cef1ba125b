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


@pytest.fixture
def one_torch_thread():
    """Torch on one CPU thread for the test (reproducible and not oversubscribed); restored after."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
