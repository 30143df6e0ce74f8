"""Encryption at rest: a real encrypted DuckDB store file holds no personal data in clear (nor does
its WAL or its backups), opens with its key and is refused clearly without it, converts both ways,
and runs the whole pipeline.

DuckDB writes encrypted files with OpenSSL from its httpfs extension; where that is not installed
(CI machines reach no extension repository) the tests let DuckDB's built-in mbedtls write them
(``store_encryption_unsafe_crypto``): the file format, the key checks and the absence of clear
text are the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xrm.cli import app
from xrm.config import Settings, load_settings
from xrm.exceptions import ConfigError, StoreError, StoreKeyError
from xrm.store import Store, backup_store, restore_store, verify_backup
from xrm.store._crypto import secure_writing_available
from xrm.store._store import remove_stale_temp_files

KEY = "correct horse battery staple 42"
OTHER = "another key, also long enough"
EMAIL = b"erin.probe@example.org"
runner = CliRunner()


def _enc(settings: Settings, key: str = KEY) -> Settings:
    return settings.model_copy(
        update={"store_encryption_key": key, "store_encryption_unsafe_crypto": True}
    )


def _fill(store: Store, rows: int = 2_000) -> None:
    store.sql("CREATE TABLE probe (email VARCHAR, n INTEGER)").fetchall()
    store.sql(
        "INSERT INTO probe SELECT ? , range FROM range(?)", [EMAIL.decode(), rows]
    ).fetchall()


def _holds(path: Path, needle: bytes = EMAIL) -> bool:
    return needle in path.read_bytes()


def test_file_and_wal_hold_no_clear_text(settings: Settings) -> None:
    plain = settings.model_copy(update={"store_path": settings.store_path.with_name("plain.duckdb")})
    for s, encrypted in ((plain, False), (_enc(settings), True)):
        with Store.open(s) as store:
            _fill(store)
            wal = Path(f"{s.store_path}.wal")
            assert wal.exists()  # the rows are in the WAL, not yet checkpointed
            assert _holds(wal) is not encrypted
        assert _holds(Path(s.store_path)) is not encrypted  # the check finds clear text when it is there
    with Store.open(_enc(settings)) as store:
        assert store.count("probe") == 2_000
        assert store.sql("SELECT DISTINCT email FROM probe").fetchall() == [(EMAIL.decode(),)]


def test_opens_only_with_its_key(settings: Settings) -> None:
    with Store.open(_enc(settings)) as store:
        _fill(store, 10)
    with pytest.raises(StoreKeyError, match="is encrypted: set XRM_STORE_ENCRYPTION_KEY"):
        Store.open(settings)
    with pytest.raises(StoreKeyError, match="encrypted with another key") as wrong:
        Store.open(_enc(settings, OTHER))
    assert OTHER not in str(wrong.value)
    with pytest.raises(StoreKeyError, match="encrypted"):
        Store.open(settings, read_only=True)
    with Store.open(_enc(settings), read_only=True) as store:  # read-only needs no writing crypto
        assert store.count("probe") == 10

    code, out = _cli(settings.store_path, "info")  # the CLI: one clear line, no DuckDB trace
    assert code == 1 and "XRM_STORE_ENCRYPTION_KEY" in out and "Traceback" not in out

    plain = settings.store_path.with_name("plain.duckdb")
    Store.open(plain).close()
    with pytest.raises(StoreKeyError, match=r"not encrypted.*xrm store encrypt"):
        Store.open(_enc(settings.model_copy(update={"store_path": plain})))


def test_writing_needs_a_secure_crypto_module_or_the_unsafe_opt_in(settings: Settings) -> None:
    if secure_writing_available():
        pytest.skip("httpfs is installed: DuckDB writes encrypted files with OpenSSL here")
    strict = _enc(settings).model_copy(update={"store_encryption_unsafe_crypto": False})
    with pytest.raises(StoreError, match="httpfs") as err:
        Store.open(strict)
    assert KEY not in str(err.value)
    assert not settings.store_path.exists()


def test_key_rules_and_no_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XRM_STORE_ENCRYPTION_KEY", "short-secret")
    with pytest.raises(ConfigError, match="shorter than 16") as err:
        load_settings()
    assert "short-secret" not in str(err.value)
    monkeypatch.setenv("XRM_STORE_ENCRYPTION_KEY", "")
    assert load_settings().store_encryption_key is None


def _cli(store: Path, *args: str, key: str | None = None) -> tuple[int, str]:
    env = {"XRM_STORE_ENCRYPTION_UNSAFE_CRYPTO": "1"}
    if key:
        env["XRM_STORE_ENCRYPTION_KEY"] = key
    result = runner.invoke(app, ["--store", str(store), *args], env=env)
    return result.exit_code, result.output


def test_store_encrypt_and_decrypt_commands(settings: Settings) -> None:
    with Store.open(settings) as store:
        _fill(store, 500)
    path = settings.store_path
    code, out = _cli(path, "store", "encrypt")
    assert code == 1 and "needs the key" in out
    code, out = _cli(path, "store", "encrypt", "--json", key=KEY)
    assert code == 0, out
    assert json.loads(out)["encrypted"] is True
    assert not _holds(path) and not Path(f"{path}.wal").exists()
    code, out = _cli(path, "store", "encrypt", key=KEY)
    assert code == 1 and "encrypted already" in out
    code, out = _cli(path, "info", "--json", key=KEY)
    assert code == 0 and json.loads(out)["tables"]["probe"] == 500
    code, out = _cli(path, "store", "decrypt", key=KEY)
    assert code == 0, out
    assert _holds(path)
    with Store.open(settings) as store:
        assert store.count("probe") == 500


def test_backups_of_an_encrypted_store_stay_encrypted(settings: Settings, tmp_path: Path) -> None:
    enc = _enc(settings)
    with Store.open(enc) as store:
        _fill(store, 300)
        with pytest.raises(StoreKeyError, match="so must its backup"):
            backup_store(store.con, tmp_path / "nokey.duckdb")
        info = backup_store(store.con, tmp_path / "b.duckdb", key=store.encryption_key)  # the server's way
    assert info.encrypted and not _holds(tmp_path / "b.duckdb")
    assert not list(tmp_path.glob(".b.duckdb.*"))
    with pytest.raises(StoreKeyError, match=r"backup .* is encrypted: set XRM_STORE_ENCRYPTION_KEY"):
        verify_backup(tmp_path / "b.duckdb")
    with pytest.raises(StoreKeyError, match="another key"):
        verify_backup(tmp_path / "b.duckdb", key=OTHER)
    assert verify_backup(tmp_path / "b.duckdb", key=KEY).tables["probe"] == 300

    code, out = _cli(settings.store_path, "backup", str(tmp_path / "c.duckdb"), "--json", key=KEY)
    assert code == 0, out
    assert json.loads(out)["encrypted"] is True and not _holds(tmp_path / "c.duckdb")
    target = tmp_path / "r" / "xrm.duckdb"
    code, out = _cli(target, "restore", str(tmp_path / "c.duckdb"), key=KEY)
    assert code == 0, out
    assert not _holds(target)
    with Store.open(_enc(settings.model_copy(update={"store_path": target}))) as store:
        assert store.count("probe") == 300

    # A plain backup restored where a key is set comes out encrypted.
    plain = settings.model_copy(update={"store_path": tmp_path / "plain.duckdb"})
    with Store.open(plain) as store:
        _fill(store, 20)
        backup_store(store.con, tmp_path / "p.duckdb")
    assert _holds(tmp_path / "p.duckdb")
    restore_store(tmp_path / "p.duckdb", tmp_path / "pe.duckdb", key=KEY, unsafe_crypto=True)
    assert not _holds(tmp_path / "pe.duckdb")
    with Store.open(_enc(settings.model_copy(update={"store_path": tmp_path / "pe.duckdb"}))) as store:
        assert store.count("probe") == 20


def test_stale_backup_files_are_removed_at_open(settings: Settings, tmp_path: Path) -> None:
    Store.open(settings).close()
    name = settings.store_path.name
    stale = [tmp_path / f".{name}.backup-1a2b3c4d", tmp_path / f".{name}.backup-1a2b3c4d.wal",
             tmp_path / f".{name}.rewrite-00ff00ff"]
    for f in stale:
        f.write_bytes(b"left by a killed backup")
    keep = [tmp_path / ".other.duckdb.backup-1a2b3c4d", tmp_path / "notes.txt"]
    for f in keep:
        f.write_bytes(b"not ours")
    with Store.open(settings, read_only=True):  # a reader holds no lock: it removes nothing
        assert all(f.exists() for f in stale)
    with Store.open(settings):
        pass
    assert not any(f.exists() for f in stale) and all(f.exists() for f in keep)
    assert remove_stale_temp_files(settings.store_path) == []


def test_pipeline_runs_on_an_encrypted_store(tmp_path: Path) -> None:
    from xrm.ingest import load_manifest
    from xrm.pipeline import run_pipeline
    from xrm.sample import generate_sample

    generate_sample(tmp_path / "sample", customers=200, seed=3, show_progress=False)
    settings = Settings(store_path=tmp_path / "enc.duckdb", memory_limit="1GB", threads=2,
                        store_encryption_key=KEY, store_encryption_unsafe_crypto=True)  # type: ignore[arg-type]
    with Store.open(settings) as store:
        load_manifest(store, tmp_path / "sample" / "manifest.json", show_progress=False)
        results = run_pipeline(store)
        assert {r.step: r.status for r in results if r.status == "failed"} == {}
        assert store.count("events") > 0 and store.count("profiles") > 0
        columns = store.sql(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = "
            "current_database() AND column_name ILIKE '%email%' AND data_type = 'VARCHAR'"
        ).fetchall()
        emails: set[str] = set()
        for table, column in columns:
            emails |= {v for (v,) in store.sql(
                f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" LIKE \'%@%\' LIMIT 100'
            ).fetchall()}
    assert len(emails) >= 50  # the store holds the sample's addresses (read through the key) ...
    data = Path(settings.store_path).read_bytes()
    assert [e for e in emails if e.encode() in data] == []  # ... and none of them in clear


def test_server_on_an_encrypted_store_ingests_and_backs_up_encrypted(tmp_path: Path) -> None:
    """The real app (uvicorn in a thread) on an encrypted store: events in, WAL and the backup it
    streams hold no address in clear, the backup verifies with the key only."""
    from tests.api.live import KEY as WRITE_KEY
    from tests.api.live import bearer, serve_in_thread

    settings = Settings(store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1,
                        write_keys={WRITE_KEY: "webshop"}, store_encryption_key=KEY,  # type: ignore[arg-type]
                        store_encryption_unsafe_crypto=True)
    email = "server.probe@example.org"
    for live in serve_in_thread(settings):
        batch = {"batch": [{"type": "identify", "userId": f"u{i}", "messageId": f"m{i}",
                            "traits": {"email": email}} for i in range(50)]}
        assert live.client.post("/v1/batch", json=batch, auth=(WRITE_KEY, "")).status_code == 200
        assert live.rows("SELECT count(*) FROM events")[0][0] == 50
        wal = Path(f"{settings.store_path}.wal")
        assert wal.exists() and email.encode() not in wal.read_bytes()
        admin = live.new_key("ops", "admin")
        r = live.client.post("/v1/admin/backup", headers=bearer(admin))
        assert r.status_code == 200, r.text
        (tmp_path / "b.duckdb").write_bytes(r.content)
    assert email.encode() not in (tmp_path / "b.duckdb").read_bytes()
    assert email.encode() not in settings.store_path.read_bytes()
    with pytest.raises(StoreKeyError):
        verify_backup(tmp_path / "b.duckdb")
    assert verify_backup(tmp_path / "b.duckdb", key=KEY).tables["events"] == 50
