"""Fixtures of the API tests: settings with a write key, a live server in a thread, a read key, and
an event writer opened on a fresh store (its tests call its thread's methods from their own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from xrm.api._writer import EventWriter
from xrm.config import Settings
from xrm.store import Store

from ._writer_support import store_settings
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


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[EventWriter]:
    """An event writer opened on this thread: the tests call ``_write_group`` as its thread would."""
    store = Store.open(store_settings(tmp_path / "xrm.duckdb"))
    w = EventWriter(store)
    w._open()
    try:
        yield w
    finally:
        w._close()
        store.close()
