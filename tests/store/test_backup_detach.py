"""A backup is handed out only once DuckDB has closed it.

Found by the API fuzz test: DETACH returns at once while another cursor's transaction has seen the
attached backup (any catalogue query does), and DuckDB writes the file's checkpoint only when that
transaction ends — a backup streamed before then was cut short ("Response content longer than
Content-Length")."""

from __future__ import annotations

import threading
import time

import duckdb

from xrm.store._backup import _wait_closed


def test_wait_closed_returns_after_the_deferred_checkpoint(tmp_path):
    con = duckdb.connect(str(tmp_path / "main.duckdb"))
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(100000)")
    part = tmp_path / "part.duckdb"
    copier, other = con.cursor(), con.cursor()
    copier.execute(f"ATTACH '{part}' AS p")
    copier.execute("CREATE TABLE p.t AS SELECT * FROM main.t")
    other.execute("BEGIN")
    other.execute("SELECT * FROM duckdb_tables()").fetchall()  # sees the attached database
    copier.execute("DETACH p")
    size_at_detach = part.stat().st_size

    def end_later() -> None:
        time.sleep(0.3)
        other.execute("COMMIT")

    ender = threading.Thread(target=end_later)
    ender.start()
    started = time.monotonic()
    _wait_closed(part)
    waited = time.monotonic() - started
    ender.join()
    assert waited >= 0.25  # it waited for the other transaction, not just for DETACH
    final = part.stat().st_size
    assert final > size_at_detach  # the checkpoint came after DETACH returned
    time.sleep(0.2)
    assert part.stat().st_size == final  # and nothing more is written once it is closed
    check = duckdb.connect(str(part), read_only=True)
    assert check.execute("SELECT count(*) FROM t").fetchall() == [(100000,)]
    check.close()
    con.close()


def test_wait_closed_is_immediate_for_a_closed_file(tmp_path):
    f = tmp_path / "x.duckdb"
    duckdb.connect(str(f)).close()
    started = time.monotonic()
    _wait_closed(f)
    assert time.monotonic() - started < 0.5
