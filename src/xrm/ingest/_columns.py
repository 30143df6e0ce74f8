"""Which source column fills which xrm field, checked against the file's header."""

from __future__ import annotations

from collections.abc import Iterable

from xrm.exceptions import MappingError
from xrm.ingest._files import FileFacts
from xrm.ingest._mapping import Mapping

__all__ = ["resolve_columns"]


def resolve_columns(
    facts: FileFacts,
    mapping: Mapping,
    fields: Iterable[str],
    aliases: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, str]:
    """Field -> source column: the mapping's ``[columns]``, else a column named like the field
    (or one of its ``aliases``, e.g. Segment's ``userId``). A mapped column the file lacks is a
    :class:`MappingError` naming every missing column and the columns the file has."""
    present = set(facts.columns)
    missing = sorted(
        (name, col) for name, col in mapping.columns.items() if col not in present
    )
    if missing:
        shown = ", ".join(facts.columns[:40]) + (" ..." if len(facts.columns) > 40 else "")
        lines = "\n".join(f"  columns.{f} = {c!r}: no such column in the file" for f, c in missing)
        hint = ""
        if len(facts.columns) == 1 and facts.format == "csv":
            hint = (
                f"\nThe file has one column only: is the delimiter right (read as "
                f"{facts.delimiter!r})? Set delimiter in the mapping."
            )
        raise MappingError(
            f"mapping {mapping.origin} does not fit {facts.path}:\n{lines}\n"
            f"The file's columns are: {shown}.{hint}\nFix the column names in [columns]."
        )
    resolved: dict[str, str] = {}
    for field in fields:
        if field in mapping.columns:
            resolved[field] = mapping.columns[field]
            continue
        if field in mapping.constants:
            continue
        for candidate in (field, *(aliases or {}).get(field, ())):
            if candidate in present:
                resolved[field] = candidate
                break
    return resolved
