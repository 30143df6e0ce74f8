"""Malformed files of every supported format through `xrm load`: a clear refusal or good rows kept.

Each file goes through the real CLI (in-process, `--json`) into a real store. Whatever the damage
(truncated Parquet, binary garbage or bad UTF-8 in a CSV, the wrong delimiter, broken JSON lines,
an empty file, a header only, a huge field), the outcome is one of two: the file is refused with a
message naming it and nothing of it is stored, or it is loaded with every bad row set aside in
``rejected_rows`` with its line and reason. Never a traceback, never half a file. Hypothesis then
throws random bytes at each format for the same promise.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xrm.cli import app
from xrm.config import Settings
from xrm.store import Store

MAPPING = """
kind = "records"
source = "crm"
delimiter = ","
[columns]
source_key = "id"
first_name = "first"
last_name = "last"
email = "email"
"""
HEADER = "id,first,last,email\n"
GOOD = "1,Anna,Schmidt,anna@example.org\n2,Ben,Meyer,ben@example.org\n"
EVENT = {"type": "track", "event": "Viewed", "userId": "u1", "messageId": "m{}",
         "timestamp": "2024-05-01T10:00:00Z"}


def _event(i: int) -> str:
    return json.dumps({**EVENT, "messageId": f"m{i}"})


def _parquet(rows: int = 200) -> bytes:
    table = pa.table({"id": [str(i) for i in range(rows)], "first": ["Anna"] * rows,
                      "last": ["Schmidt"] * rows, "email": [f"a{i}@example.org" for i in range(rows)]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=50)
    return sink.getvalue()


FULL_PARQUET = _parquet()
# name -> (file bytes, uses the records mapping)
CASES: dict[str, tuple[bytes, bool]] = {
    "empty.csv": (b"", True),
    "header_only.csv": (HEADER.encode(), True),
    "garbage_line.csv": ((HEADER + GOOD).encode() + b"3,\x00\x01\xff\xfe,\x00,x\n", True),
    "all_binary.csv": (bytes(range(256)) * 40, True),
    "bad_utf8.csv": ((HEADER + GOOD).encode() + b"3,J\xc3\x28rgen,B\xff,j@example.org\n", True),
    "semicolons.csv": (HEADER.replace(",", ";").encode() + GOOD.replace(",", ";").encode(), True),
    "ragged.csv": ((HEADER + GOOD + "3,Cem,Kaya,c@example.org,extra,fields\n4,Dana\n").encode(), True),
    "unclosed_quote.csv": ((HEADER + GOOD + '3,"Eva,Roth,e@example.org\n').encode(), True),
    "huge_field.csv": ((HEADER + GOOD + "3," + "x" * 3_000_000 + ",Long,l@example.org\n").encode(), True),
    "truncated.parquet": (FULL_PARQUET[: len(FULL_PARQUET) // 2], True),
    "tail_cut.parquet": (FULL_PARQUET[:-20], True),
    "not_parquet.parquet": ((HEADER + GOOD).encode(), True),
    "empty.parquet": (b"", True),
    "empty.jsonl": (b"", False),
    "broken_lines.jsonl": ((_event(1) + "\n" + '{"type": "track", "userId"\n' + _event(2) + "\n"
                            + "[1, 2]\n" + "not json at all\n" + _event(3) + "\n").encode(), False),
    "bad_utf8.jsonl": ((_event(1) + "\n").encode() + b'{"type": "track", "userId": "\xff\xfe"}\n'
                       + (_event(2) + "\n").encode(), False),
    "cut_mid_line.jsonl": ((_event(1) + "\n" + _event(2)[:30]).encode(), False),
    "huge_line.jsonl": ((_event(1) + "\n" + json.dumps({**EVENT, "messageId": "big", "properties":
                         {"blob": "y" * 3_000_000}}) + "\n").encode(), False),
}


def _load(folder: Path, name: str, data: bytes, with_mapping: bool) -> tuple[Any, Path]:
    path = folder / name
    path.write_bytes(data)
    store = folder / "xrm.duckdb"
    args = ["--store", str(store), "load", str(path), "--json"]
    if with_mapping:
        (folder / "crm.toml").write_text(MAPPING, encoding="utf-8")
        args += ["--mapping", str(folder / "crm.toml")]
    return CliRunner().invoke(app, args), store


def _check(result: Any, store_path: Path, name: str) -> dict[str, Any]:
    """The promise, whatever the file: returns the file's one result."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        pytest.fail(f"{name}: traceback instead of a clear error:\n"
                    + "".join(traceback.format_exception(result.exception)))
    assert result.exit_code in (0, 1), (name, result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output, result.output[-2000:]
    out = json.loads(result.stdout)
    (one,) = out if isinstance(out, list) else [out]
    with Store.open(Settings(store_path=store_path, memory_limit="512MB", threads=1)) as store:
        stored = store.count("records") + store.count("events")
        rejected = store.sql("SELECT line, reason FROM rejected_rows").fetchall()
        loads = store.count("loads")
    if one.get("status") == "refused" or result.exit_code == 1:
        assert result.exit_code == 1 and one.get("status") in ("refused", None), one
        message = one.get("message") or one.get("error") or ""
        assert name in message, f"the refusal names the file: {message}"
        assert (stored, loads) == (0, 0), f"{name}: refused, yet {stored} rows / {loads} loads stored"
    else:
        assert one["status"] == "loaded", one
        assert one["rows_loaded"] + one["rows_duplicate"] + one["rows_rejected"] == one["rows_read"], one
        assert stored == one["rows_loaded"], (stored, one)
        assert len(rejected) == one["rows_rejected"], (rejected, one)
        assert all(reason for _, reason in rejected)
        assert all(line is not None for line, _ in rejected), "each rejected row names its line"
    return dict(one)


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_file_is_refused_clearly_or_loads_its_good_rows(name: str, tmp_path: Path) -> None:
    data, with_mapping = CASES[name]
    result, store = _load(tmp_path, name, data, with_mapping)
    one = _check(result, store, name)
    if name == "semicolons.csv":
        assert "delimiter" in one["message"], one["message"]  # the fix is named
    if name == "bad_utf8.csv" and one.get("status") == "loaded" and not one["rows_rejected"]:
        assert one["encoding"] != "utf-8", one  # read as another encoding, and said so
        return
    if name in ("garbage_line.csv", "bad_utf8.csv", "ragged.csv", "broken_lines.jsonl", "bad_utf8.jsonl",
                "cut_mid_line.jsonl") and one.get("status") == "loaded":
        assert one["rows_loaded"] >= 1 and one["rows_rejected"] >= 1, one  # good rows kept, bad set aside


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "xrm.duckdb"
    Store.open(Settings(store_path=path, memory_limit="512MB", threads=1)).close()
    return path


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck),
          phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(
    suffix=st.sampled_from([".csv", ".jsonl", ".parquet"]),
    head=st.sampled_from([b"", HEADER.encode(), (_event(1) + "\n").encode(), FULL_PARQUET[:400]]),
    noise=st.binary(max_size=600),
)
def test_random_bytes_never_give_a_traceback(template: Path, suffix: str, head: bytes, noise: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        shutil.copyfile(template, Path(folder) / "xrm.duckdb")
        name = f"fuzz{suffix}"
        result, store = _load(Path(folder), name, head + noise, suffix != ".jsonl")
        _check(result, store, name)
