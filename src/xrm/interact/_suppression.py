"""One-way hashed suppression: erased people are never contacted or re-created again.

An entry is ``sha256(salt || '|' || kind || '|' || normalised value)`` with a random per-store
salt (table ``suppression_salt``), so the list holds no address, yet a known address can be
checked against it. E-mails are lower-cased and trimmed, phones put in E.164, ids trimmed: the
e-mail, customer and id hashes can be computed in SQL too (``sha256(...)`` in DuckDB).

    >>> is_suppressed(store, email="Anna@Example.com")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import duckdb

__all__ = ["KINDS", "hash_identifier", "is_suppressed", "normalise", "salt", "suppress"]

KINDS = ("customer", "email", "phone", "anonymous_id", "record")


def normalise(kind: str, value: str, *, region: str = "DE") -> str:
    """The form an identifier is hashed in (e-mail lower-cased, phone E.164, others trimmed)."""
    text = str(value).strip()
    if kind == "email":
        return text.lower()
    if kind == "phone":
        import phonenumbers

        try:
            parsed = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return "".join(ch for ch in text if ch.isdigit() or ch == "+")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return text


def salt(cur: duckdb.DuckDBPyConnection) -> str:
    rows = cur.execute("SELECT salt FROM suppression_salt").fetchall()
    return str(rows[0][0])


def hash_identifier(salt_value: str, kind: str, value: str, *, region: str = "DE") -> str:
    norm = normalise(kind, value, region=region)
    return hashlib.sha256(f"{salt_value}|{kind}|{norm}".encode()).hexdigest()


def suppress(
    cur: duckdb.DuckDBPyConnection,
    identifiers: Mapping[str, Iterable[str]],
    *,
    reason: str,
    at: datetime,
    region: str = "DE",
) -> int:
    """Add hashes of ``{kind: values}``; returns how many were new."""
    s = salt(cur)
    rows = {
        hash_identifier(s, kind, v, region=region): kind
        for kind, values in identifiers.items()
        for v in values
        if v is not None and str(v).strip()
    }
    if not rows:
        return 0
    existing = {
        r[0]
        for r in cur.execute(
            "SELECT hash FROM suppressions WHERE hash IN (SELECT unnest(?))", [list(rows)]
        ).fetchall()
    }
    new = [(h, k, reason, at) for h, k in rows.items() if h not in existing]
    if new:
        cur.executemany("INSERT INTO suppressions VALUES (?, ?, ?, ?)", new)
    return len(new)


def suppressed_hashes(cur: duckdb.DuckDBPyConnection, hashes: Iterable[str]) -> set[str]:
    wanted = sorted(set(hashes))
    if not wanted:
        return set()
    rows = cur.execute(
        "SELECT hash FROM suppressions WHERE hash IN (SELECT unnest(?))", [wanted]
    ).fetchall()
    return {r[0] for r in rows}


def is_suppressed(store: Any, **identifiers: str | None) -> bool:
    """Whether any given identifier (``customer=``, ``email=``, ``phone=`` ...) is suppressed."""
    cur = store.con.cursor()
    try:
        s = salt(cur)
        region = store.settings.default_region
        hashes = [
            hash_identifier(s, kind, v, region=region)
            for kind, v in identifiers.items()
            if v is not None
        ]
        return bool(suppressed_hashes(cur, hashes))
    finally:
        cur.close()
