"""Return on Network as Markdown or HTML tables, and ``build_network`` for the pipeline.

>>> from xrm.network import build_network
>>> build_network(store)["relationships"]  # doctest: +SKIP
{'co-purchased': 40210, 'household': 2310, 'referred': 812}
"""

from __future__ import annotations

import html
from typing import Any

from xrm.network._analyse import analyse_network
from xrm.network._derive import derive_relationships
from xrm.store import Store

__all__ = ["build_network", "ron_html", "ron_markdown"]

_COLS = ("value", "cost", "net", "return")


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:,.2f}" if isinstance(v, float) else str(v)


def _tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    cur = report["currency"]
    t = report["total"]
    return [
        (f"Return on Network ({cur})", ["", *_COLS], [["all relationships", *(_fmt(t[c]) for c in _COLS)]]),
        (
            "By relationship type",
            ["type", "relationships", *_COLS],
            [
                [r["rel_type"], _fmt(r["relationships"]), *(_fmt(r[c]) for c in _COLS)]
                for r in report["by_type"]
            ],
        ),
        (
            "By community (credited party's community)",
            ["community", "parties", *_COLS],
            [
                [_fmt(r["community"]), _fmt(r["parties"]), *(_fmt(r[c]) for c in _COLS)]
                for r in report["by_community"]
            ],
        ),
    ]


def ron_markdown(report: dict[str, Any]) -> str:
    """The :func:`return_on_network` report as Markdown tables."""
    out: list[str] = []
    for title, head, rows in _tables(report):
        out += [
            f"### {title}",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|",
        ]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        out.append("")
    return "\n".join(out)


def ron_html(report: dict[str, Any]) -> str:
    """The :func:`return_on_network` report as a self-contained HTML page."""
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Return on Network</title>",
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px}td{text-align:right}"
        "td:first-child{text-align:left}</style>",
    ]
    for title, head, rows in _tables(report):
        parts.append(
            f"<h3>{html.escape(title)}</h3><table><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + "</tr>"
        )
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    return "\n".join(parts)


def build_network(store: Store, *, identity: str = "auto") -> dict[str, Any]:
    """Pipeline step: derive relationships from the store's data, then analyse the network."""
    derived = derive_relationships(store, identity=identity)
    summary = analyse_network(store, identity=identity)
    return {
        "identity": summary["identity"],
        "derived": {k: v for k, v in derived.items() if k != "identity"},
        "relationships": summary["relationships"],
        "parties": summary["parties"],
        "communities": summary["communities"],
        "value_through_network": summary["value_through_network"],
    }
