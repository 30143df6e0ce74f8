"""Fixtures of the API tests: settings with a write key, a live server in a thread, a read key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from xrm.config import Settings

from .live import KEY, Live, bearer, serve_in_thread


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return Settings(
        store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1, write_keys={KEY: "webshop"}
    )


@pytest.fixture
def live(api_settings: Settings) -> Iterator[Live]:
    yield from serve_in_thread(api_settings)


@pytest.fixture
def reader(live: Live) -> dict[str, str]:
    """Headers with a stored key of scope read: profiles and the timeline need one."""
    return bearer(live.new_key("reader", "read"))
