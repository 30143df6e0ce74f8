"""Shared fixtures: real DuckDB files in a temporary folder; one Spark session per test run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xrm.config import Settings
from xrm.store import Store


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's xrm.toml or XRM_* variables."""
    import os

    for key in list(os.environ):
        if key.startswith("XRM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XRM_CONFIG", str(tmp_path / "no-such-xrm.toml"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(store_path=tmp_path / "xrm.duckdb", memory_limit="2GB", threads=2)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings) as s:
        yield s


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session for the whole run (it takes ~30 s to start)."""
    if shutil.which("java") is None:
        pytest.skip("Spark tests need Java 17 on PATH (apt-get install openjdk-17-jre-headless)")
    from xrm.store import spark_session

    session = spark_session("local[2]", app_name="xrm-tests")
    yield session
    session.stop()
