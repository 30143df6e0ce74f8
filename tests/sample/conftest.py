"""One small sample business per test module run (drawing it takes a few seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from xrm.sample import generate_sample


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """6,000 customers in two chunks, so chunk boundaries are exercised too."""
    out = tmp_path_factory.mktemp("sample")
    manifest = generate_sample(out, customers=6_000, seed=7, show_progress=False, chunk_size=3_000)
    return out, manifest
