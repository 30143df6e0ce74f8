"""Interact fixtures: a real store file with people in `records` and a secret for signed links."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from xrm.config import Settings
from xrm.store import Store

SECRET = "test-secret-" + "x" * 40


@pytest.fixture
def isettings(tmp_path: Path) -> Settings:
    return Settings(
        store_path=tmp_path / "xrm.duckdb",
        memory_limit="1GB",
        threads=1,
        secret_key=SECRET,
        webhook_secret="hook-secret-" + "y" * 40,
        public_base_url="https://xrm.example.com",
        outbox_dir=tmp_path / "outbox",
    )


@pytest.fixture
def store(isettings: Settings) -> Iterator[Store]:
    with Store.open(isettings) as s:
        yield s


def add_person(
    store: Store,
    user_id: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    first_name: str = "Anna",
    last_name: str = "Beispiel",
    source: str = "shop",
    timezone: str | None = None,
    street: str | None = "Hauptstr.",
    postcode: str | None = "10115",
    city: str | None = "Berlin",
) -> None:
    extra = {"timezone": timezone} if timezone else None
    store.sql(
        "INSERT INTO records (record_id, source, source_key, first_name, last_name, email, phone, "
        "street, house_number, postcode, city, country, user_id, updated_at, extra) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, '1', ?, ?, 'DE', ?, TIMESTAMP '2026-01-01', ?)",
        [
            f"{source}:{user_id}",
            source,
            user_id,
            first_name,
            last_name,
            email,
            phone,
            street,
            postcode,
            city,
            user_id,
            json.dumps(extra) if extra else None,
        ],
    ).fetchall()


def add_event(
    store: Store,
    event: str,
    user_id: str | None,
    ts: datetime,
    *,
    properties: dict[str, Any] | None = None,
    anonymous_id: str | None = None,
    context: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
    revenue: float | None = None,
    type_: str = "track",
) -> str:
    mid = str(uuid.uuid4())
    store.sql(
        "INSERT INTO events (message_id, type, event, user_id, anonymous_id, ts, source, properties, "
        "context, traits, revenue, order_id) VALUES (?, ?, ?, ?, ?, ?, 'test', ?, ?, ?, ?, ?)",
        [
            mid,
            type_,
            event,
            user_id,
            anonymous_id,
            ts,
            json.dumps(properties or {}),
            json.dumps(context) if context else None,
            json.dumps(traits) if traits else None,
            revenue,
            (properties or {}).get("order_id"),
        ],
    ).fetchall()
    return mid


def add_crowd(
    store: Store,
    prefix: str,
    n: int,
    *,
    channels: tuple[str, ...] = ("email",),
    purpose: str = "marketing",
    granted_at: datetime | None = None,
) -> list[str]:
    """``n`` people with e-mail and phone, granted consent on ``channels``: bulk, for speed."""
    ids = [f"{prefix}{i:04d}" for i in range(n)]
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO records (record_id, source, source_key, first_name, last_name, email, "
            "phone, street, house_number, postcode, city, country, user_id, updated_at) VALUES "
            "(?, 'shop', ?, ?, 'Beispiel', ?, ?, 'Hauptstr.', '1', '10115', 'Berlin', 'DE', ?, "
            "TIMESTAMP '2026-01-01')",
            [(f"shop:{c}", c, f"N{i}", f"{c}@example.com", f"+49170{i:07d}", c) for i, c in enumerate(ids)],
        )
        tx.executemany(
            "INSERT INTO consents (customer, channel, purpose, status, source, given_at) "
            "VALUES (?, ?, ?, 'granted', 'bulk test', ?)",
            [(c, ch, purpose, granted_at or datetime(2026, 1, 1)) for c in ids for ch in channels],
        )
    return ids
