"""Helpers for identify tests: write records and events straight into a real store."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest


class Seed:
    def __init__(self, store: Any) -> None:
        self.store = store

    def record(self, record_id: str, **cols: Any) -> None:
        source, key = record_id.split(":", 1)
        cols.setdefault("updated_at", dt.datetime(2023, 1, 1))
        names = ["record_id", "source", "source_key", *cols]
        values = [record_id, source, key, *cols.values()]
        self.store.sql(
            f"INSERT INTO records ({', '.join(names)}) VALUES ({', '.join('?' * len(values))})",
            values,
        )

    def event(self, message_id: str, ts: str, type: str = "track", **cols: Any) -> None:
        for k in ("traits", "context", "properties"):
            if k in cols:
                cols[k] = json.dumps(cols[k])
        names = ["message_id", "type", "ts", *cols]
        values = [message_id, type, ts, *cols.values()]
        self.store.sql(
            f"INSERT INTO events ({', '.join(names)}) VALUES ({', '.join('?' * len(values))})",
            values,
        )

    def profile_of(self, record_id: str) -> int:
        rows = self.store.sql(
            "SELECT profile_id FROM profile_records WHERE record_id = ?", [record_id]
        ).fetchall()
        assert rows, f"record {record_id} has no profile"
        return int(rows[0][0])

    def event_profile(self, message_id: str) -> int:
        rows = self.store.sql(
            "SELECT profile_id FROM event_profiles WHERE message_id = ?", [message_id]
        ).fetchall()
        assert rows, f"event {message_id} has no profile"
        return int(rows[0][0])


@pytest.fixture
def seed(store: Any) -> Seed:
    return Seed(store)
