"""Encryption at rest without the unsafe flag: DuckDB writes the store with OpenSSL from its httpfs
extension, taken from DuckDB's extension folder or from the ``duckdb-extension-httpfs`` package
(``pip install 'xrm[encryption]'``), never downloaded at run time.

The package exists for DuckDB 1.5.5 only (none for 2.0.0 yet), so where neither source is present
the OpenSSL test is skipped and says so; the refusal of a binary DuckDB cannot verify runs
everywhere: it is DuckDB's own signature check on a real LOAD."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

from xrm.config import Settings
from xrm.exceptions import StoreError, StoreKeyError
from xrm.store import Store
from xrm.store._crypto import crypto_module, packaged_httpfs, secure_writing_available

KEY = "correct horse battery staple 42"
EMAIL = "olga.openssl@example.org"


def _strict(settings: Settings, key: str = KEY) -> Settings:
    """Encrypted, with the unsafe mbedtls opt-in off: only a secure crypto module may write."""
    return settings.model_copy(update={"store_encryption_key": key, "store_encryption_unsafe_crypto": False})


@pytest.mark.skipif(not secure_writing_available(),
                    reason=f"no httpfs for DuckDB {duckdb.__version__} (pip install 'xrm[encryption]' "
                           f"needs DuckDB 1.5.5)")
def test_openssl_writes_the_store_without_the_unsafe_flag(settings: Settings) -> None:
    with Store.open(_strict(settings)) as store:
        assert crypto_module(store.con) == "openssl"
        store.sql("CREATE TABLE people (email VARCHAR, n INTEGER)").fetchall()
        store.sql("INSERT INTO people SELECT ?, range FROM range(5000)", [EMAIL]).fetchall()
        wal = Path(f"{settings.store_path}.wal")
        assert wal.exists() and EMAIL.encode() not in wal.read_bytes()
    raw = settings.store_path.read_bytes()
    assert EMAIL.encode() not in raw and len(raw) > 100_000
    with pytest.raises(StoreKeyError, match="encrypted with another key"):
        Store.open(_strict(settings, "a wrong key, long enough"))
    with pytest.raises(StoreKeyError, match="is encrypted: set XRM_STORE_ENCRYPTION_KEY"):
        Store.open(settings)
    with Store.open(_strict(settings)) as store:
        assert store.sql("SELECT count(*), min(email) FROM people").fetchall() == [(5000, EMAIL)]


def test_a_packaged_binary_duckdb_cannot_verify_is_refused(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A duckdb-extension-httpfs package whose binary is not DuckDB's signed one (tampered, or
    foreign): DuckDB's signature check refuses it and the store is not written."""
    con = duckdb.connect()
    installed = con.execute(
        "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
    ).fetchall()
    con.close()
    if installed and installed[0][0]:
        pytest.skip("httpfs is installed in DuckDB's extension folder: it is used before any package")
    if packaged_httpfs() is not None:
        pytest.skip("the real duckdb-extension-httpfs is installed: it would shadow the tampered one")
    pkg = tmp_path / "site" / "duckdb_extension_httpfs"
    binary = pkg / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    binary.parent.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    binary.write_bytes(b"\x7fELF" + bytes(range(256)) * 64)  # not DuckDB's signed build
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.modules.pop("duckdb_extension_httpfs", None)
    assert packaged_httpfs() == binary
    with pytest.raises(StoreError, match="DuckDB refused its httpfs extension") as err:
        Store.open(_strict(settings))
    assert KEY not in str(err.value)
    assert not settings.store_path.exists()
