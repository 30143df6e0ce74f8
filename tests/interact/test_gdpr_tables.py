"""The GDPR export reads every table by the columns that name a person: a row for the person in each
table comes back, a row for someone else in the same table does not."""

from __future__ import annotations

import json
from typing import Any

from xrm.interact import export_profile
from xrm.interact._gdpr import KEYED, NOT_PERSONAL, SCANNED
from xrm.store import Store

USER, OTHER = "cust-zora", "cust-otto"
# The value a column of each kind holds, for the person and for someone else.
VALUES: dict[str, tuple[Any, Any]] = {
    "key": (USER, OTHER), "profile": (4242, 999), "record": ("crm:zora", "crm:otto"),
    "event": ("ev-zora", "ev-otto"), "outbox": ("msg-zora", "msg-otto"),
    "decision": ("dec-zora", "dec-otto"), "handle": ("@zora", "@otto"),
}
# Columns that tie a row to a person through another table (the export follows them).
LINKS: dict[str, dict[str, str]] = {
    "events": {"user_id": "key"}, "messages": {"message_id": "outbox"},
    "decisions": {"decision_id": "decision"}, "handles": {"handle": "handle"},
}


def _columns(store: Store) -> dict[str, list[tuple[str, str, bool]]]:
    out: dict[str, list[tuple[str, str, bool]]] = {}
    for t, c, dt, nullable in store.sql(
        "SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND table_name IN (SELECT table_name FROM duckdb_tables()) "
        "ORDER BY table_name, column_index"
    ).fetchall():
        out.setdefault(t, []).append((c, dt, nullable))
    return out


def _filler(dt: str, n: int) -> Any:
    """A value of type ``dt`` unique to row ``n`` (no primary key clashes), naming nobody."""
    if dt.endswith("[]"):
        return []
    return {"VARCHAR": f"filler-{n}", "JSON": "{}", "BOOLEAN": False, "DOUBLE": 0.5,
            "TIMESTAMP": "2026-01-01 00:00:00", "DATE": "2026-01-01"}.get(dt, n)


def _insert(
    store: Store, table: str, cols: list[tuple[str, str, bool]], values: dict[str, Any], n: int
) -> None:
    row = [values[c] if c in values else (None if nullable else _filler(dt, n)) for c, dt, nullable in cols]
    marks = ", ".join("?" for _ in cols)
    store.sql(f'INSERT INTO "{table}" VALUES ({marks})', row).fetchall()


def test_every_table_is_classified(store: Store) -> None:
    """A new table must say how the export finds a person in it (or that it holds nobody)."""
    tables = _columns(store)
    groups = [set(KEYED), set(SCANNED), set(NOT_PERSONAL)]
    unclassified = sorted(set(tables) - set().union(*groups))
    assert not unclassified, (
        f"tables {unclassified} are not classified for the GDPR export: add each to KEYED (the "
        f"columns that name a person), SCANNED or NOT_PERSONAL in src/xrm/interact/_gdpr.py")
    assert all(not (a & b) for i, a in enumerate(groups) for b in groups[i + 1:])
    for table, keyed in KEYED.items():
        names = {c for c, _, _ in tables.get(table, [])}
        assert names, f"KEYED names table {table!r}, which the store does not have"
        assert {c for c, _ in keyed} <= names, (table, keyed)


def test_export_has_each_tables_rows_for_the_person_and_no_one_elses(store: Store) -> None:
    tables = _columns(store)
    n = 0
    for who in (0, 1):
        for table, keyed in KEYED.items():
            values = {c: VALUES[kind][who] for c, kind in keyed}
            values |= {c: VALUES[kind][who] for c, kind in LINKS.get(table, {}).items()}
            n += 1
            _insert(store, table, tables[table], values, n)
        for table in SCANNED:
            text = next(c for c, dt, _ in tables[table] if dt in ("VARCHAR", "JSON"))
            dt = dict((c, d) for c, d, _ in tables[table])[text]
            name = (USER, OTHER)[who]
            n += 1
            _insert(store, table, tables[table],
                    {text: json.dumps({"customer": name}) if dt == "JSON" else f"asked by {name}"}, n)
    store.sql("CREATE TABLE scratch_unclassified (note VARCHAR)").fetchall()
    store.sql("INSERT INTO scratch_unclassified VALUES ('call cust-zora back'), ('call cust-otto')"
              ).fetchall()

    got = export_profile(store, USER)
    assert got["identifiers"]["profile_ids"] == [4242]
    exported = got["tables"]
    missing = sorted((set(KEYED) | set(SCANNED)) - set(exported))
    assert not missing, f"the export has no rows of {missing}"
    for table, keyed in KEYED.items():
        rows = exported[table]
        assert len(rows) == 1, (table, rows)
        for column, kind in keyed:
            assert rows[0][column] == VALUES[kind][0], (table, column, rows[0])
    for table in SCANNED:
        text = json.dumps(exported[table])
        assert USER in text and OTHER not in text, (table, exported[table])
    assert exported["scratch_unclassified"] == [{"note": "call cust-zora back"}]
    assert not set(exported) & NOT_PERSONAL
