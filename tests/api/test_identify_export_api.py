"""GET /v1/identify/records.csv and .parquet against the real app (uvicorn, real DuckDB file)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xrm.config import Settings
from xrm.identify import resolve_identities

from .live import KEY, Live, bearer, serve_in_thread


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    settings = Settings(store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1,
                        write_keys={KEY: "webshop"})
    yield from serve_in_thread(settings)


def _seed(live: Live) -> None:
    store = live.app.state.store
    for rid, first, card in (("crm:1", "Johannes", None), ("loyalty:1", "Hans", "L1")):
        store.sql(
            "INSERT INTO records (record_id, source, source_key, first_name, last_name, birth_date, street, "
            "house_number, postcode, loyalty_card, updated_at) VALUES (?, ?, ?, ?, 'Müller', ?, 'Hauptstr.', "
            "'12', '10115', ?, ?)",
            [rid, *rid.split(":"), first, dt.date(1961, 4, 3), card, dt.datetime(2023, 1, 1)],
        )
    store.sql("INSERT INTO records (record_id, source, source_key, first_name, updated_at) VALUES "
              "('crm:2', 'crm', '2', 'Eva', TIMESTAMP '2023-01-01')")


def test_export_needs_admin_is_audited_and_reads_back(live: Live, tmp_path: Path) -> None:
    _seed(live)
    admin = bearer(live.new_key("auditor", "admin"))
    assert live.client.get("/v1/identify/records.csv").status_code == 401
    reader = bearer(live.new_key("r", "read"))
    assert live.client.get("/v1/identify/records.csv", headers=reader).status_code == 403
    r = live.client.get("/v1/identify/records.csv", headers=admin)
    assert r.status_code == 404 and "xrm identify resolve" in r.json()["message"]  # nothing resolved yet

    resolve_identities(live.app.state.store)
    r = live.client.get("/v1/identify/records.csv", headers={**admin, "X-Xrm-Purpose": "quarterly audit"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "xrm-records.csv" in r.headers["content-disposition"] and r.headers["x-xrm-records"] == "3"
    rows = {row["record_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert rows["crm:1"]["profile_id"] == rows["loyalty:1"]["profile_id"] != rows["crm:2"]["profile_id"]
    assert rows["crm:1"]["joined_by"] == "probabilistic" and rows["crm:2"]["joined_by"] == "alone"

    r = live.client.get("/v1/identify/records.parquet", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
    (tmp_path / "got.parquet").write_bytes(r.content)
    table = pq.read_table(tmp_path / "got.parquet")
    assert table.num_rows == 3 and "match_weight" in table.column_names

    audits = live.rows("SELECT action, target, purpose FROM api_audit "
                       "WHERE action = 'identify.records.export' ORDER BY audit_id")
    assert [(t, p) for _, t, p in audits] == [("csv", None), ("csv", "quarterly audit"), ("parquet", None)]
    store_dir = Path(live.app.state.store.path).parent
    assert not [p for p in store_dir.iterdir() if ".records-" in p.name]  # temporary files removed
