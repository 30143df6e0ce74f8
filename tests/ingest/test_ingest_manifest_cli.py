from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import xrm.ingest
from xrm.cli import app
from xrm.exceptions import InputError
from xrm.ingest import load_manifest, read_manifest

runner = CliRunner()

EVENT = {"type": "identify", "userId": "u1", "messageId": "m1", "timestamp": "2024-05-01T10:00:00Z"}


def _delivery(root):
    (root / "sources").mkdir()
    (root / "mappings").mkdir()
    (root / "events").mkdir()
    (root / "sources" / "webshop.csv").write_text(
        "id,first,born\n1,Ann,1980-01-02\n2,Bo,not a date\n3,Cy,1990-03-04\n", encoding="utf-8"
    )
    (root / "mappings" / "webshop.toml").write_text(
        'kind = "records"\nsource = "webshop"\n[columns]\nsource_key = "id"\nfirst_name = "first"\n'
        'birth_date = "born"\n',
        encoding="utf-8",
    )
    (root / "events" / "web.jsonl").write_text(json.dumps(EVENT) + "\n", encoding="utf-8")
    manifest = root / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "customers": 3,
                "files": [
                    {"path": "sources/webshop.csv", "mapping": "mappings/webshop.toml"},
                    {"path": "events/web.jsonl", "kind": "events"},
                ],
            }
        ),
        encoding="utf-8",
    )
    return manifest


def test_manifest_loads_every_file_with_paths_relative_to_it(store, tmp_path):
    reports = load_manifest(store, _delivery(tmp_path), show_progress=False)
    assert [(r.kind, r.source, r.rows_loaded, r.rows_rejected) for r in reports] == [
        ("records", "webshop", 2, 1),
        ("events", "web.jsonl", 1, 0),
    ]
    assert all(set(r.as_dict()) >= {"file", "rows_read", "rows_per_second", "rejects"} for r in reports)
    again = load_manifest(store, tmp_path / "manifest.json", show_progress=False)
    assert [r.status for r in again] == ["already loaded", "already loaded"]
    assert store.count("records") == 2 and store.count("events") == 1


def test_manifest_problems_are_reported_together_before_loading(store, tmp_path):
    manifest = tmp_path / "manifest.json"
    (tmp_path / "m.toml").write_text('kind = "recordz"\n', encoding="utf-8")
    manifest.write_text(
        json.dumps(
            {"files": [{"path": "missing.csv", "mapping": "m.toml"}, {"path": "x.csv", "kind": "people"},
                       {"pth": "typo.csv"}]}
        )
    )
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(InputError) as err:
        read_manifest(manifest)
    text = str(err.value)
    assert "nothing was loaded" in text
    for expected in ["files[0].path", "missing.csv does not exist", "files[0].mapping", "kind = 'recordz'",
                     "files[1].kind = 'people'", 'files[2]: must be an object with a "path"']:
        assert expected in text, expected
    assert store.count("loads") == 0


def test_cli_load_json_with_rejects_exits_0(tmp_path):
    manifest = _delivery(tmp_path)
    db = tmp_path / "cli.duckdb"
    result = runner.invoke(
        app,
        ["--store", str(db), "load", str(tmp_path / "sources" / "webshop.csv"),
         "--mapping", str(tmp_path / "mappings" / "webshop.toml"), "--json"],
    )
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    assert (report["rows_loaded"], report["rows_rejected"]) == (2, 1)
    assert report["rejects"][0]["line"] == 3 and "not a date" in report["rejects"][0]["reason"]
    # A manifest argument loads its files; the one already loaded is skipped.
    result = runner.invoke(app, ["--store", str(db), "load", str(manifest), "--json"])
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in json.loads(result.stdout)] == ["already loaded", "loaded"]


def test_cli_refused_file_exits_1_and_loads_the_others(tmp_path):
    good = tmp_path / "ok.jsonl"
    good.write_text(json.dumps(EVENT) + "\n", encoding="utf-8")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    db = tmp_path / "cli.duckdb"
    result = runner.invoke(app, ["--store", str(db), "load", str(empty), str(good), "--json"])
    assert result.exit_code == 1
    refused, loaded = json.loads(result.stdout)
    assert refused["status"] == "refused" and "is empty (0 bytes)" in refused["message"]
    assert loaded["status"] == "loaded" and loaded["rows_loaded"] == 1


def test_cli_human_output_shows_summary_and_first_reasons(tmp_path):
    _delivery(tmp_path)
    result = runner.invoke(
        app,
        ["--store", str(tmp_path / "h.duckdb"), "load", str(tmp_path / "sources" / "webshop.csv"),
         "-m", str(tmp_path / "mappings" / "webshop.toml")],
    )
    assert result.exit_code == 0, result.output
    assert "3 read, 2 loaded, 0 duplicate, 1 rejected" in result.output
    assert "line 3: birth_date 'not a date'" in result.output


def test_public_surface():
    assert set(xrm.ingest.__all__) == {
        "DEFAULT_DATE_FORMATS", "EVENT_FIELDS", "RECORD_FIELDS", "LoadProgress", "LoadReport", "Mapping",
        "ProgressCallback", "RejectedRow", "is_manifest", "load_file", "load_manifest", "read_manifest",
        "read_mapping", "EventProblem", "stage_events", "staged_ids", "insert_staged_events",
        "drop_staged",
    }
    assert all(hasattr(xrm.ingest, name) for name in xrm.ingest.__all__)
