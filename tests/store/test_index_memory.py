"""What DuckDB 2.0 does with an index's memory, as the server's memory design assumes it (docs/api.md,
"Memory under load"): point look-ups load index buffers that a checkpoint does not free and that
only a DETACH of the database releases, and a DETACH while another cursor is inside a transaction
is deferred, so the file cannot be attached again until that transaction ends. When DuckDB makes
indexes buffer-managed (duckdb PR #17758 and its sequels) these fail, and the design can change.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest


def _art_mb(cur: duckdb.DuckDBPyConnection) -> float:
    rows = cur.execute("SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'ART_INDEX'").fetchall()
    return sum(r[0] for r in rows) / 2**20


@pytest.fixture()
def indexed(tmp_path: Path) -> Path:
    path = tmp_path / "ix.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE events AS SELECT 'm-' || range AS message_id, "
                "'visitor-' || (hash(range) % 20000) AS user_id FROM range(200000)")
    con.execute("CREATE INDEX events_user_id ON events (user_id)")
    con.close()
    return path


def _read(cur: duckdb.DuckDBPyConnection, n: int = 300) -> None:
    for i in range(n):
        key = f"visitor-{i * 61 % 20000}"
        cur.execute("SELECT message_id FROM events WHERE user_id = ?", [key]).fetchall()


def test_lookups_pin_index_buffers_that_a_checkpoint_keeps_and_detach_frees(indexed: Path) -> None:
    con = duckdb.connect(":memory:", config={"threads": 1})
    con.execute(f"ATTACH '{indexed}' AS s")
    reader, admin = con.cursor(), con.cursor()
    reader.execute("USE s")
    assert _art_mb(admin) == 0  # indexes load lazily
    _read(reader)
    loaded = _art_mb(admin)
    assert loaded > 1
    admin.execute("CHECKPOINT s")
    assert _art_mb(admin) == loaded  # nothing changed: nothing freed
    admin.execute("DETACH s")
    admin.execute(f"ATTACH '{indexed}' AS s")
    assert _art_mb(admin) == 0
    _read(reader, 3)  # an idle cursor that USEd the database works on the re-attached one
    assert 0 < _art_mb(admin) < loaded
    con.close()


def test_detach_beside_an_open_transaction_is_deferred_and_blocks_attaching_again(indexed: Path) -> None:
    con = duckdb.connect(":memory:", config={"threads": 1})
    con.execute(f"ATTACH '{indexed}' AS s")
    reader, admin = con.cursor(), con.cursor()
    reader.execute("USE s")
    reader.execute("BEGIN TRANSACTION")
    _read(reader, 3)
    admin.execute("DETACH s")  # no error: the database lives on while the transaction holds it
    with pytest.raises(duckdb.Error, match="already attached"):
        admin.execute(f"ATTACH '{indexed}' AS s")
    _read(reader, 3)  # ... and the transaction still reads it
    reader.execute("COMMIT")
    admin.execute(f"ATTACH '{indexed}' AS s")  # once it ended
    _read(reader, 3)
    con.close()
