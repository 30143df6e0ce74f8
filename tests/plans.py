"""What DuckDB's plan of a statement reads: the tests that prove a look-up is a look-up use it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def table_scans(cur: Any, sql: str, params: Any, out: Path) -> list[tuple[str, str]]:
    """(table, scan type) of every TABLE_SCAN in the profiled plan of ``sql``, run on ``cur``;
    the profile goes to ``out`` and is removed."""
    cur.execute("PRAGMA enable_profiling = 'json'")
    cur.execute(f"PRAGMA profiling_output = '{out}'")
    try:
        (cur.execute(sql, params) if params is not None else cur.execute(sql)).fetchall()
    finally:
        cur.execute("PRAGMA disable_profiling")
    found: list[tuple[str, str]] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("type") == "TABLE_SCAN":
            info = node.get("extra_info", {})
            found.append((str(info.get("Table", "")).rsplit(".", 1)[-1], str(info.get("Type", ""))))
        for child in node.get("children", []):
            walk(child)

    if not out.exists():  # DuckDB wrote no profile (a statement it does not profile)
        return [("?", "no profile")]
    profile = json.loads(out.read_text())
    # DuckDB 2.0 lists the plan under "operator"; 1.5 (the `encryption` extra's) makes the root the plan.
    for node in profile.get("operator", [profile]):
        walk(node)
    out.unlink()
    return found
