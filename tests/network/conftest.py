"""A small business in a real store: orders, a referral, a shared address, posts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xrm.store import Store


def add_order(store: Store, mid: str, user: str, revenue: float, products: list[str], ts: str) -> None:
    store.sql(
        "INSERT INTO events (message_id, type, event, user_id, ts, revenue, order_id) "
        "VALUES (?, 'track', 'Order Completed', ?, ?, ?, ?)",
        [mid, user, ts, revenue, f"o-{mid}"],
    )
    for i, p in enumerate(products):
        store.sql(
            "INSERT INTO order_lines (message_id, line_no, product_id, price, quantity) "
            "VALUES (?, ?, ?, 1, 1)",
            [mid, i, p],
        )


def add_referral(store: Store, mid: str, referrer: str, friend: str, ts: str) -> None:
    store.sql(
        "INSERT INTO events (message_id, type, event, user_id, ts, properties) "
        "VALUES (?, 'track', 'Referral Completed', ?, ?, ?)",
        [mid, friend, ts, json.dumps({"referrer_user_id": referrer})],
    )


def add_record(
    store: Store, rid: str, user: str | None, street: str, number: str | None, postcode: str
) -> None:
    store.sql(
        "INSERT INTO records (record_id, source, source_key, user_id, street, house_number, postcode, "
        "updated_at) "
        "VALUES (?, 'shop', ?, ?, ?, ?, ?, TIMESTAMP '2024-01-01')",
        [rid, rid, user, street, number, postcode],
    )


@pytest.fixture
def business(store: Store, tmp_path: Path) -> Store:
    """u1 referred u2 and u3; u2 and u4 share an address; u1 and u5 buy the same rare product."""
    add_order(store, "m1", "u1", 100.0, ["espresso-rare", "filter"], "2024-01-02T10:00:00")
    add_order(store, "m2", "u2", 50.0, ["filter"], "2024-02-01T10:00:00")
    add_order(store, "m3", "u3", 30.0, ["filter"], "2024-02-03T10:00:00")
    add_order(store, "m4", "u4", 20.0, ["tea"], "2024-02-04T10:00:00")
    add_order(store, "m5", "u5", 10.0, ["espresso-rare"], "2024-02-05T10:00:00")
    add_referral(store, "r1", "u1", "u2", "2024-02-01T09:00:00")
    add_referral(store, "r2", "u1", "u3", "2024-02-03T09:00:00")
    add_record(store, "shop:2", "u2", "Hauptstraße 12a", None, "1067")
    add_record(store, "shop:4", "u4", "Hauptstr.", "12 A", "01067")
    add_record(store, "shop:1", "u1", "Bahnhofstr. 3", None, "10115")
    store.sql(
        "INSERT INTO events (message_id, type, user_id, ts, traits) VALUES ('i1', 'identify', 'u1', "
        "TIMESTAMP '2024-01-01', ?)",
        [json.dumps({"instagram": "@Anna_K"})],
    )
    return store
