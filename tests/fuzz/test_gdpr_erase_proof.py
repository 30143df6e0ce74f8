"""Proof of erasure: after `xrm gdpr erase`, the person is nowhere: no table, no column, no file.

The sample business goes through the real pipeline (`xrm demo --no-serve`: sample files, load,
identify, value, needs, network ...). One person with records in several sources is erased by the
CLI. Before erasing, their identifiers are gathered from everything Identify linked to them (all
their records, e-mails, phones in every written form, ids, full name; a street is shared
with neighbours, so it is not one); afterwards every
column of every table (information_schema, all types cast to text, JSON included) and every file
under the store's folder is searched for each of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xrm.cli import app as cli
from xrm.config import Settings
from xrm.identify import normalize_phone
from xrm.store import Store

pytestmark = pytest.mark.timeout(300)


def _needles(store: Store) -> tuple[str, list[str]]:
    """The person to erase (a user id whose profile has the most records) and what identifies them."""
    (pid, user), = store.sql(
        "SELECT pr.profile_id, any_value(r.user_id) FROM profile_records pr JOIN records r USING (record_id) "
        "GROUP BY 1 HAVING count(r.user_id) = 1 AND count(r.phone) > 0 AND count(r.email) > 0 "
        "ORDER BY count(*) DESC, 1 LIMIT 1"
    ).fetchall()
    rows = store.sql(
        "SELECT r.record_id, r.source_key, r.email, r.phone, r.first_name, r.last_name, "
        "r.account_id, r.loyalty_card FROM records r JOIN profile_records pr USING (record_id) "
        "WHERE pr.profile_id = ?", [pid]
    ).fetchall()
    needles: set[str] = {user}
    for rid, key, email, phone, first, last, acc, card in rows:
        needles |= {v for v in (rid, email, acc, card) if v}
        if phone:
            needles.add(phone)
            e164, _ = normalize_phone(phone, "DE")
            if e164:
                needles |= {e164, e164.replace("+49", "0")}
        if first and last:
            needles.add(f"{first} {last}")
        if key and len(key) >= 6:
            needles.add(key)
    needles |= {v for (v,) in store.sql(
        "SELECT id_value FROM identifiers WHERE profile_id = ? AND id_type IN ('anonymous_id', 'user_id')",
        [pid]).fetchall()}
    return user, sorted(needles)


def _table_hits(store: Store, needles: list[str]) -> list[str]:
    cols: dict[str, list[str]] = {}
    for table, col in store.sql(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "ORDER BY table_name, ordinal_position"
    ).fetchall():
        cols.setdefault(table, []).append(col)
    hits = []
    for table, names in cols.items():
        text = "lower(concat_ws(' | ', " + ", ".join(f'CAST("{c}" AS VARCHAR)' for c in names) + "))"
        for needle in needles:
            (n,), = store.sql(f'SELECT count(*) FROM "{table}" WHERE contains({text}, ?)',
                              [needle.lower()]).fetchall()
            if n:
                hits.append(f"{table}: {n} row(s) hold {needle!r}")
    return hits


def _file_hits(folder: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes().lower()
        for needle in needles:
            if needle.lower().encode() in data:
                hits.append(f"{path.name}: holds {needle!r}")
    return hits


def test_erased_person_is_in_no_table_and_no_file(tmp_path: Path) -> None:
    home = tmp_path / "xrm"  # the store's folder: everything xrm writes; sample input files apart
    home.mkdir()
    store_path = home / "xrm.duckdb"
    runner = CliRunner()
    out = runner.invoke(cli, ["--store", str(store_path), "demo", "--dir", str(tmp_path / "input"),
                              "--customers", "40", "--no-serve", "--json"])
    assert out.exit_code == 0, out.output[-3000:]
    settings = Settings(store_path=store_path, memory_limit="1GB", threads=1)
    with Store.open(settings) as store:
        user, needles = _needles(store)
        assert len(needles) >= 5 and _table_hits(store, needles), "the person is there before"
    out = runner.invoke(cli, ["--store", str(store_path), "gdpr", "erase", user, "--reason", "art. 17 #1",
                              "--yes", "--json"])
    assert out.exit_code == 0, out.output[-3000:]
    assert json.loads(out.stdout)["customer"] == user
    with Store.open(settings) as store:
        table_hits = _table_hits(store, needles)
    file_hits = _file_hits(home, needles)
    assert not table_hits and not file_hits, "\n".join(
        [f"erased {user}; still found:", *table_hits, *file_hits]
    )
    assert re.fullmatch(r"\S+", user)
