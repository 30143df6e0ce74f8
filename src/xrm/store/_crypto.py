"""Encryption at rest: every DuckDB file of the store opened through one function that knows the key.

With ``store_encryption_key`` set (``XRM_STORE_ENCRYPTION_KEY``), the store file is a DuckDB
encrypted database (AES-256-GCM, DuckDB >= 1.4): every block, the write-ahead log and the spill
files are encrypted, only the file's first plain header (magic bytes, version, salt) is not.
DuckDB opens such a file only by ``ATTACH 'file' (ENCRYPTION_KEY '...')``, so with a key the
connection is an in-memory one with the store attached under the name DuckDB would have given it
(the file's stem) and made the default (``USE``) on the connection *and on every cursor made from
it* (DuckDB starts each cursor in the in-memory catalog, so :class:`CatalogConnection` hands out
cursors that ``USE`` the store first): SQL, Ibis and the API's cursors see the same catalog as with
a plain file.

Whole-file encryption covers the fields marked as personal (e-mail, phone, name, address) and
everything derived from them, so xrm has no per-field encryption (docs/store.md says why). Writing
needs DuckDB's OpenSSL module (the ``httpfs`` extension); DuckDB's built-in mbedtls only reads
encrypted files, and writes them only when told to (``store_encryption_unsafe_crypto``), which
DuckDB calls not securely encrypted (its nonces do not come from a cryptographic random generator).
httpfs is taken, in this order, from DuckDB's extension folder (``INSTALL httpfs`` on a machine with
internet access) or from the ``duckdb-extension-httpfs`` Python package (``pip install
'xrm[encryption]'``, no network at run time), which ships DuckDB's signed binary for one DuckDB
version: DuckDB checks the signature when it loads it.

    >>> con = connect_file(Path("xrm.duckdb"), key="a key of 16+ chars")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import duckdb

from xrm.exceptions import StoreBusy, StoreError, StoreKeyError

if TYPE_CHECKING:
    from xrm.config import Settings

__all__ = ["connect_file", "crypto_module", "is_encrypted", "secure_writing_available", "store_key"]

_RESERVED = {"memory", "system", "temp", "main"}


def store_key(settings: Settings) -> str | None:
    """The store's encryption key from the settings (None: a plain store)."""
    secret: Any = settings.store_encryption_key
    if secret is None:
        return None
    value = secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
    return value or None  # a str from model_copy(update=...), which skips validation


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def catalog_name(path: Path) -> str:
    """The catalog name DuckDB gives a file it opens directly (its stem), kept for attached ones."""
    stem = Path(path).name.split(".")[0] or "xrm"
    return stem if stem.lower() not in _RESERVED else f"{stem}_store"


def packaged_httpfs() -> Path | None:
    """DuckDB's httpfs binary for the running DuckDB from the ``duckdb-extension-httpfs`` package
    (None when the package is not installed or holds another DuckDB version's binary)."""
    spec = importlib.util.find_spec("duckdb_extension_httpfs")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
        if path.is_file():
            return path
    return None


def crypto_module(con: duckdb.DuckDBPyConnection) -> str:
    """Which module writes encrypted files on ``con``: 'openssl' (httpfs loaded) or 'mbedtls'."""
    row = con.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchall()
    return "openssl" if row and row[0][0] else "mbedtls"


def secure_writing_available() -> bool:
    """Whether this process can write encrypted stores with OpenSSL (no unsafe opt-in needed)."""
    con = duckdb.connect()
    try:
        return _load_httpfs(con)
    finally:
        con.close()


def _load_httpfs(con: duckdb.DuckDBPyConnection) -> bool:
    """Load httpfs into ``con`` from DuckDB's extension folder or the Python package; never from the
    network (LOAD of an extension not installed would try to download it)."""
    row = con.execute(
        "SELECT installed, loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
    ).fetchall()
    if row and row[0][1]:
        return True
    if row and row[0][0]:
        try:
            con.execute("LOAD httpfs")
            return True
        except duckdb.Error:
            pass
    packaged = packaged_httpfs()
    if packaged is not None:
        try:  # DuckDB checks the binary's signature (allow_unsigned_extensions stays false)
            con.execute(f"LOAD {_quote(str(packaged))}")
            return True
        except duckdb.Error as exc:
            raise StoreError(
                f"DuckDB refused its httpfs extension from the duckdb-extension-httpfs package "
                f"({packaged}): {str(exc).splitlines()[0]}; reinstall it (pip install --force-reinstall "
                f"'xrm[encryption]') or unset store_encryption_key"
            ) from None
    return False


def enable_writing(con: duckdb.DuckDBPyConnection, *, unsafe: bool) -> None:
    """Let ``con`` write encrypted files: DuckDB's OpenSSL module (httpfs, installed or from the
    duckdb-extension-httpfs package), else the built-in mbedtls only when ``unsafe``
    (store_encryption_unsafe_crypto) allows it."""
    if _load_httpfs(con):
        return
    if unsafe:
        con.execute("SET force_mbedtls_unsafe = true")
        return
    raise StoreError(
        f"writing an encrypted store needs DuckDB's OpenSSL crypto module, from its httpfs extension, "
        f"which is not installed for DuckDB {duckdb.__version__}. Either pip install 'xrm[encryption]' "
        f"(the duckdb-extension-httpfs package: DuckDB's signed binary, no network at run time; it "
        f"exists for DuckDB 1.5.5 and pins DuckDB to it), or install it once on a machine with internet "
        f"access (python -c \"import duckdb; duckdb.sql('INSTALL httpfs')\") or copy "
        f"httpfs.duckdb_extension into ~/.duckdb/extensions/v{duckdb.__version__}/<platform>/; or set "
        f"store_encryption_unsafe_crypto = true (XRM_STORE_ENCRYPTION_UNSAFE_CRYPTO=1) to let DuckDB's "
        f"built-in mbedtls write it, which DuckDB calls not securely encrypted (tests only)"
    )


def connect_file(
    path: Path,
    *,
    key: str | None = None,
    read_only: bool = False,
    config: dict[str, Any] | None = None,
    unsafe_crypto: bool = False,
    attached: bool = False,
) -> duckdb.DuckDBPyConnection:
    """A connection whose default catalog is the DuckDB file ``path``, decrypted with ``key``.

    An encrypted file, or any with ``attached``, is ATTACHed to an in-memory database (a
    :class:`CatalogConnection`), which can let go of it and take it up again
    (:meth:`~CatalogConnection.reattach`).

    Raises :class:`StoreKeyError` for an encrypted file without a key or with the wrong one, and
    for a plain file given a key; :class:`StoreBusy` when another process holds the file."""
    path = Path(path)
    if key is None and not attached:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.Error as exc:
            raise explain(path, exc, key) from None
    con = duckdb.connect(":memory:", config=config or {})
    try:
        if key is not None and not read_only:
            enable_writing(con, unsafe=unsafe_crypto)
        elif key is not None:
            _load_httpfs(con)  # reading needs no OpenSSL, but decrypts faster with it
        alias = catalog_name(path)
        flags = [f"ENCRYPTION_KEY {_quote(key)}"] if key is not None else []
        flags += ["READ_ONLY"] if read_only else []
        attach = f"ATTACH {_quote(str(path))} AS {_ident(alias)}"
        attach += f" ({', '.join(flags)})" if flags else ""
        con.execute(attach)
        con.execute(f"USE {_ident(alias)}")
        if key is not None:
            con.execute("SET temp_file_encryption = true")  # spill files too (DuckDB's key, per process)
    except duckdb.Error as exc:
        con.close()
        raise explain(path, exc, key) from None
    except BaseException:
        con.close()
        raise
    return cast(duckdb.DuckDBPyConnection, CatalogConnection(con, alias, attach))


class CatalogConnection:
    """A DuckDB connection whose cursors start in the attached store's catalog, not in ``memory``.

    Everything else is the wrapped connection's (attribute access is passed through), so code that
    takes a ``DuckDBPyConnection`` (Ibis's ``from_connection``, ``store.con.cursor()`` in every
    capability) works unchanged."""

    # Seconds to wait before each try to attach the file again after a DETACH (about 9 s in all).
    ATTACH_WAITS = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0)

    def __init__(self, con: duckdb.DuckDBPyConnection, catalog: str, attach: str) -> None:
        self._con = con
        self._catalog = catalog
        self._use = f"USE {_ident(catalog)}"
        self._attach = attach  # the ATTACH statement, key included: never logged

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self._con.cursor()
        cur.execute(self._use)
        return cur

    def reattach(self) -> None:
        """DETACH the file and ATTACH it again under the same name: DuckDB writes out and frees what
        it holds of it, the index buffers included, which nothing else frees (docs/api.md, "Memory
        under load"). The DETACH checkpoints the file first. Cursors that USE the catalog work on
        afterwards; but the caller must make sure no transaction is open on the file (a DETACH beside
        one is deferred, and the ATTACH then fails): :class:`xrm.store._gate.StoreGate`."""
        admin = self._con.cursor()  # starts in the in-memory catalog: the one it may detach from
        try:
            admin.execute(f"DETACH {_ident(self._catalog)}")
            for wait in self.ATTACH_WAITS:  # a deferred DETACH (a holder that did not take the
                time.sleep(wait)  # gate) ends with its transaction
                try:
                    admin.execute(self._attach)
                    return
                except duckdb.Error as exc:
                    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    if "already attached" not in text and "handle conflict" not in text:
                        break
            # The statement holds the key: the error names neither.
            raise StoreError(
                f"the store {self._catalog!r} could not be attached again after its index memory was "
                f"released ({text.replace(self._attach, 'ATTACH ...')}); restart the server"
            )
        finally:
            admin.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def __enter__(self) -> CatalogConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self._con.close()


def attach_options(key: str | None) -> str:
    """The ``(ENCRYPTION_KEY ...)`` clause of an ATTACH for a file written with ``key`` ('' without)."""
    return f" (ENCRYPTION_KEY {_quote(key)})" if key is not None else ""


def is_encrypted(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> bool:
    """Whether the catalog ``catalog`` (default: the current one) of ``con`` is an encrypted file."""
    row = con.execute(
        "SELECT encrypted FROM duckdb_databases() WHERE database_name = coalesce(?, current_database())",
        [catalog],
    ).fetchall()
    return bool(row and row[0][0])


def explain(path: Path, exc: duckdb.Error, key: str | None) -> StoreError:
    """A clear error for a failed open; never DuckDB's trace, never the key."""
    text = str(exc).strip()
    if key:
        text = text.replace(key, "***")
    low = text.lower()
    if "without a key" in low:
        return StoreKeyError(
            f"the store {path} is encrypted: set XRM_STORE_ENCRYPTION_KEY (store_encryption_key in "
            f"xrm.toml) to the key it was encrypted with"
        )
    if "wrong encryption key" in low:
        return StoreKeyError(
            f"the store {path} is encrypted with another key: the store_encryption_key set "
            f"(XRM_STORE_ENCRYPTION_KEY) does not open it; set the key it was encrypted with"
        )
    if "is not encrypted" in low:
        return StoreKeyError(
            f"the store {path} is not encrypted, but store_encryption_key (XRM_STORE_ENCRYPTION_KEY) is "
            f"set: encrypt it with `xrm store encrypt`, or unset the key"
        )
    if "crypto module" in low:
        return StoreError(f"cannot write the encrypted store {path}: {text.splitlines()[0]}")
    if "already attached" in low or "file handle conflict" in low:
        return StoreBusy(f"store {path} is already open in this process; use the open Store")
    from xrm.store._store import _damage, _explain_open_error

    # DuckDB 1.5 finds a torn or rotten file when it connects; 2.0 when the catalogue is first read.
    # A file that is no DuckDB file at all is "not an xrm store", not a damaged one.
    damaged = None if "not a valid duckdb" in low else _damage(path, duckdb.Error(text))
    return damaged or _explain_open_error(path, duckdb.Error(text))


def scrub(text: str, key: str | None) -> str:
    """``text`` with the key blanked out (error messages may quote a statement)."""
    return re.sub(re.escape(key), "***", text) if key else text
