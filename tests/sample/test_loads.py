"""Contract with the loader: every file of the sample loads through its mapping, nothing rejected."""

from __future__ import annotations

from xrm.ingest import load_manifest
from xrm.sample import generate_sample


def test_the_sample_loads_without_rejects(tmp_path, store):
    manifest = generate_sample(tmp_path / "s", customers=400, seed=11, show_progress=False)
    loaded = load_manifest(store, tmp_path / "s" / "manifest.json", show_progress=False)
    reports = [r.as_dict() for r in loaded]
    assert [r["rows_rejected"] for r in reports] == [0] * len(manifest["files"])
    assert [r["rows_loaded"] for r in reports] == [f["rows"] for f in manifest["files"]]
    records = sum(f["rows"] for f in manifest["files"] if "mapping" in f)
    assert store.sql("SELECT count(*) FROM records").fetchall()[0][0] == records
    assert store.sql("SELECT count(*) FROM events").fetchall()[0][0] == manifest["events"]
    # German formats arrive typed: cp1252 umlauts, dd.mm.yyyy birth dates, postcodes keep their zero
    rows = store.sql(
        "SELECT count(*) FILTER (WHERE birth_date IS NOT NULL), count(*) FILTER (WHERE postcode LIKE '0%'), "
        "count(*) FILTER (WHERE regexp_matches(last_name, '[äöüß]')) FROM records WHERE source = 'loyalty'"
    ).fetchall()[0]
    assert rows[0] > 0 and rows[1] > 0 and rows[2] > 0
