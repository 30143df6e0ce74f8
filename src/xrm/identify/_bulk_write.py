"""Filling an empty output table: the rows first, its key and indexes built after the COMMIT.

DuckDB keeps a primary key and every index up row by row for an INSERT, however large, and a
transaction's new rows meet them again at COMMIT, even when the key was added to the new rows in
the same transaction; it builds a key over committed rows several times faster (docs/loading.md,
"Loading into an empty store"; docs/scale.md, session 8: 3M text keys, 13.0 CPU s inserted keyed,
8.3 keyed in the same transaction, 6.1 keyed after the COMMIT). A first identity run writes every
output whole into empty tables (``event_profiles``: one row per event, keyed by the text
``message_id``; issue 9: at 300k customers the run's COMMIT alone took 233 s wall). So
:func:`fill_empty` drops an empty table, creates it again without its key and indexes and fills
it, in the caller's transaction, noting what to build in ``__xrm_identify_keys`` (committed with
the rows); :func:`build_keys`, in a transaction of its own after that COMMIT, adds the keys and
indexes and clears the note: the same columns, constraints, rows and indexes as an INSERT gives.
A run killed between the two leaves the note, and the next run builds the keys first.

Only empty tables take this path: a later run writes only what changed into the keyed table, and
a concurrent writer (the event API) never has its rows dropped. Between the two COMMITs of a first
run the tables are readable but have no key (the event API's ``INSERT OR REPLACE`` waits for it).
"""

from __future__ import annotations

import json
import re
from typing import Any

from xrm.store._catalog import index_sql, table_exists

__all__ = ["PENDING", "build_keys", "fill_empty"]

PENDING = "__xrm_identify_keys"
# `message_id VARCHAR PRIMARY KEY` (one column) or `, PRIMARY KEY(id_type, id_value));` (several).
_COLUMN_KEY = re.compile(r"\b(\w+) (\w+) PRIMARY KEY\b")
_TABLE_KEY = re.compile(r", PRIMARY KEY\(([^()]*)\)\);$")


def _bare(ddl: str) -> tuple[str, str | None] | None:
    """``(the DDL without its primary key, the key's columns)``; None if its form is not known."""
    m = _TABLE_KEY.search(ddl)
    if m:
        bare, key = ddl[: m.start()] + ");", m.group(1)
    elif m := _COLUMN_KEY.search(ddl):
        bare, key = ddl[: m.start()] + f"{m.group(1)} {m.group(2)} NOT NULL" + ddl[m.end():], m.group(1)
    else:
        bare, key = ddl, None
    if re.search(r"\b(PRIMARY KEY|UNIQUE|REFERENCES|CHECK)\b", bare):
        return None  # another constraint this module would have to rebuild: keep the INSERT
    return bare, key


def fill_empty(cur: Any, table: str, columns: str, source: str) -> bool:
    """``INSERT INTO table (columns) SELECT columns FROM source`` for an empty ``table``, its key
    and indexes left to :func:`build_keys`; False (nothing done) if ``table`` holds rows.

        >>> fill_empty(cur, "event_profiles", "message_id, profile_id", "ep_new")  # doctest: +SKIP
        True
    """
    if cur.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchall()[0][0]:
        return False
    (ddl,), = cur.execute(
        "SELECT sql FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?", [table]
    ).fetchall()
    parts = _bare(ddl)
    if parts is None:
        cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {source}")
        return True
    bare, key = parts
    indexes = index_sql(cur, table)
    cur.execute(f"CREATE TABLE IF NOT EXISTS {PENDING} (table_name VARCHAR, key VARCHAR, indexes JSON)")
    cur.execute(f"INSERT INTO {PENDING} VALUES (?, ?, ?)", [table, key, json.dumps(indexes)])
    cur.execute(f"DROP TABLE {table}")
    cur.execute(bare)
    cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {source}")
    return True


def build_keys(store: Any) -> int:
    """Add the keys and indexes :func:`fill_empty` left (one transaction); returns the tables keyed."""
    cur = store.con.cursor()
    try:
        if not table_exists(cur, PENDING):
            return 0
        cur.execute("BEGIN TRANSACTION")
        try:
            rows = cur.execute(f"SELECT table_name, key, indexes FROM {PENDING} ORDER BY ALL").fetchall()
            for table, key, indexes in rows:
                if key:
                    cur.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({key})")
                for sql in json.loads(indexes):
                    cur.execute(sql)
            cur.execute(f"DROP TABLE {PENDING}")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return len(rows)
    finally:
        cur.close()
