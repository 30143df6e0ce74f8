"""Network charts as image files (SVG or PNG), drawn offline: a party's neighbourhood and the
communities of the latest analysis.

The neighbourhood is the console's drawing (:func:`xrm.web._charts.neighbourhood_graph`, a Vega
force layout); the communities chart draws the largest communities as circles sized by members,
joined by the ties between them. Both are rendered by vl-convert (Vega in an embedded JavaScript
runtime, shipped in the wheel), with ``allowed_base_urls=[]``: nothing is fetched.

    >>> write_chart(neighbourhood_spec(store, "u17", steps=2), Path("u17.svg"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xrm.exceptions import EngineUnavailable, InputError
from xrm.store import Store

__all__ = ["FORMATS", "communities_spec", "neighbourhood_spec", "write_chart"]

FORMATS = (".svg", ".png")
_COLOURS = ["#c94c4c", "#1f5f8b", "#3b8ea5", "#6fb1a0", "#f2a541"]
_PADDING = {"top": 34, "left": 8, "right": 8, "bottom": 8}


def neighbourhood_spec(
    store: Store, party_id: str, *, steps: int = 1, types: Sequence[str] | None = None, limit: int = 60
) -> dict[str, Any]:
    """The party (group 0), its neighbours one step away (group 1) and farther ones (group 2)."""
    from xrm.network._query import neighbourhood
    from xrm.web._charts import neighbourhood_graph

    hood = neighbourhood(store, party_id, steps=steps, types=types, limit=limit)
    index = {n["party_id"]: i for i, n in enumerate(hood["nodes"])}
    nodes = [{"id": n["party_id"], "label": n["name"] or n["party_id"], "group": min(n["distance"], 2)}
             for n in hood["nodes"]]
    links = [{"source": index[e["src"]], "target": index[e["dst"]], "rel_type": e["rel_type"]}
             for e in hood["edges"]]
    size = 420 + 8 * min(len(nodes), 60)
    spec = neighbourhood_graph(nodes, links, width=size, height=int(size * 0.75))
    spec["title"] = {"text": f"{party_id}: {len(nodes) - 1} parties within {steps} step(s)"
                             + (" (cut at the limit)" if hood["truncated"] else ""), "fontSize": 13}
    spec["background"] = "white"
    spec["padding"] = _PADDING  # room for the title above the drawing
    return spec


def communities_spec(store: Store, *, top: int = 20) -> dict[str, Any]:
    """The ``top`` largest communities as circles (area ~ members), lines for the ties between
    them (width ~ ties); laid out by igraph (Fruchterman-Reingold, seeded) so a file is the same
    every time."""
    import random

    import igraph as ig

    from xrm.network._query import communities_summary

    if not 1 <= top <= 200:
        raise InputError(f"--top {top}: use 1 to 200")
    largest = communities_summary(store, limit=top)["largest"]
    ids = [int(c["community"]) for c in largest]
    between = store.sql("""
        WITH c AS (SELECT party_id, community FROM network_traits
                   WHERE community IN (SELECT unnest($ids::BIGINT[])))
        SELECT least(a.community, b.community) AS x, greatest(a.community, b.community) AS y, count(*) AS ties
        FROM relationships r JOIN c a ON a.party_id = r.src JOIN c b ON b.party_id = r.dst
        WHERE a.community <> b.community GROUP BY 1, 2 ORDER BY 1, 2
    """, {"ids": ids}).fetchall()
    pos = {c: i for i, c in enumerate(ids)}
    g = ig.Graph(n=len(ids), edges=[(pos[x], pos[y]) for x, y, _ in between])
    rng_state = random.getstate()
    ig.set_random_number_generator(random.Random(7))
    try:
        layout = g.layout_fruchterman_reingold(weights=[float(t) for *_, t in between] or None)
    finally:
        ig.set_random_number_generator(random)
        random.setstate(rng_state)
    width, height, pad = 640, 480, 50
    xs, ys = [p[0] for p in layout], [p[1] for p in layout]

    def scale(v: float, lo: float, hi: float, span: int) -> float:
        return pad + (span - 2 * pad) * ((v - lo) / (hi - lo) if hi > lo else 0.5)

    nodes = [{"id": c["community"], "members": int(c["members"]), "leader": c["leader"],
              "label": f"{c['community']} ({int(c['members']):,})",
              "x": scale(xs[i], min(xs), max(xs), width), "y": scale(ys[i], min(ys), max(ys), height)}
             for i, c in enumerate(largest)]
    links = [{"x1": nodes[pos[x]]["x"], "y1": nodes[pos[x]]["y"], "x2": nodes[pos[y]]["x"],
              "y2": nodes[pos[y]]["y"], "ties": int(t)} for x, y, t in between]
    biggest = max((n["members"] for n in nodes), default=1)
    return {
        "$schema": "https://vega.github.io/schema/vega/v5.json",  # an identifier: nothing is fetched
        "width": width, "height": height, "padding": _PADDING, "autosize": "none", "background": "white",
        "title": {"text": f"The {len(nodes)} largest communities (members) and the ties between them",
                  "fontSize": 13},
        "data": [{"name": "nodes", "values": nodes}, {"name": "links", "values": links}],
        "scales": [
            {"name": "area", "type": "sqrt", "domain": [0, biggest], "range": [0, 2400]},
            {"name": "stroke", "type": "sqrt", "domain": [0, max((lk["ties"] for lk in links), default=1)],
             "range": [0.5, 6]},
        ],
        "marks": [
            {"type": "rule", "from": {"data": "links"}, "encode": {"enter": {
                "x": {"field": "x1"}, "y": {"field": "y1"}, "x2": {"field": "x2"}, "y2": {"field": "y2"},
                "stroke": {"value": "#9aa7b1"}, "strokeWidth": {"scale": "stroke", "field": "ties"}}}},
            {"name": "communities", "type": "symbol", "from": {"data": "nodes"}, "encode": {"enter": {
                "x": {"field": "x"}, "y": {"field": "y"}, "size": {"scale": "area", "field": "members"},
                "fill": {"value": _COLOURS[1]},
                "stroke": {"value": "white"}}}},
            {"type": "text", "from": {"data": "nodes"}, "encode": {"enter": {
                "x": {"field": "x"}, "y": {"field": "y", "offset": -14}, "text": {"field": "label"},
                "align": {"value": "center"}, "fontSize": {"value": 10}, "fill": {"value": "#333"}}}},
        ],
    }


def write_chart(spec: dict[str, Any], out: Path, *, scale: float = 2.0) -> Path:
    """Render a Vega spec to ``out``: SVG or PNG by the file's suffix."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        got = out.suffix or "no suffix"
        raise InputError(f"--out {out}: the file must end in .svg or .png (got {got!r})")
    try:
        import vl_convert as vlc
    except ImportError as exc:
        raise EngineUnavailable("charts need vl-convert-python: pip install 'vl-convert-python>=1.6'") \
            from exc
    if suffix == ".svg":
        out.write_text(vlc.vega_to_svg(spec, allowed_base_urls=[]), encoding="utf-8")
    else:
        out.write_bytes(vlc.vega_to_png(spec, scale=scale, allowed_base_urls=[]))
    return out
