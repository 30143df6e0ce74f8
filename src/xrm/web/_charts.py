"""Vega-Lite (and one Vega) chart specs, rendered in the browser by the bundled vega-embed.

    >>> spec = bar_chart([{"tier": "MVC", "n": 40}], "tier", "n", title="Tiers")
"""

from __future__ import annotations

from typing import Any

__all__ = ["bar_chart", "histogram", "line_chart", "neighbourhood_graph", "pyramid"]

_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier only: nothing is fetched
_COLOURS = ["#1f5f8b", "#3b8ea5", "#6fb1a0", "#f2a541", "#c94c4c"]
TIER_ORDER = ["MVC", "MGC", "normal", "BZ"]


def _base(title: str, values: list[dict[str, Any]], height: int = 220) -> dict[str, Any]:
    return {"$schema": _SCHEMA, "title": title, "data": {"values": values}, "width": "container",
            "height": height, "config": {"view": {"stroke": None}, "font": "system-ui, sans-serif"}}


def bar_chart(values: list[dict[str, Any]], x: str, y: str, *, title: str = "", x_title: str = "",
              y_title: str = "", sort: list[str] | None = None, horizontal: bool = False) -> dict[str, Any]:
    """Bars of ``y`` per ``x`` category."""
    cat = {"field": x, "type": "nominal", "title": x_title or x, "sort": sort or "-y",
           "axis": {"labelAngle": 0}}
    val = {"field": y, "type": "quantitative", "title": y_title or y}
    enc = {"y": cat, "x": val} if horizontal else {"x": cat, "y": val}
    if horizontal:
        cat["sort"] = sort or "-x"
    return {**_base(title, values), "mark": {"type": "bar", "color": _COLOURS[0], "tooltip": True},
            "encoding": enc}


def histogram(values: list[dict[str, Any]], field: str, *, title: str = "", x_title: str = "",
              y_title: str = "", bins: int = 30) -> dict[str, Any]:
    """A histogram of pre-binned values: rows ``{bin_start, bin_end, n}``."""
    del field, bins  # binned in SQL: the page ships counts, not 20,000 values
    return {**_base(title, values), "mark": {"type": "bar", "color": _COLOURS[1], "tooltip": True},
            "encoding": {"x": {"field": "bin_start", "bin": {"binned": True}, "type": "quantitative",
                               "title": x_title},
                         "x2": {"field": "bin_end"},
                         "y": {"field": "n", "type": "quantitative", "title": y_title}}}


def pyramid(values: list[dict[str, Any]], *, title: str = "", count_title: str = "") -> dict[str, Any]:
    """The customer pyramid: one centred bar per tier, MVC at the top, widths by customers."""
    rows = [{**v, "half": v["n"] / 2, "neg": -v["n"] / 2} for v in values]
    return {**_base(title, rows, height=200),
            "layer": [
                {"mark": {"type": "bar", "tooltip": True},
                 "encoding": {
                     "y": {"field": "tier", "type": "nominal", "sort": TIER_ORDER, "title": None},
                     "x": {"field": "neg", "type": "quantitative", "axis": None},
                     "x2": {"field": "half"},
                     "color": {"field": "tier", "type": "nominal", "sort": TIER_ORDER,
                               "scale": {"range": _COLOURS}, "legend": None},
                     "tooltip": [{"field": "tier"}, {"field": "n", "title": count_title},
                                 {"field": "clv", "format": ",.0f"}]}},
                {"mark": {"type": "text", "color": "white", "fontWeight": "bold"},
                 "encoding": {"y": {"field": "tier", "type": "nominal", "sort": TIER_ORDER},
                              "x": {"datum": 0, "type": "quantitative"},
                              "text": {"field": "label"}}},
            ]}


def line_chart(values: list[dict[str, Any]], x: str, y: str, *, colour: str | None = None,
               title: str = "", x_title: str = "", y_title: str = "") -> dict[str, Any]:
    enc: dict[str, Any] = {"x": {"field": x, "type": "temporal", "title": x_title},
                           "y": {"field": y, "type": "quantitative", "title": y_title}}
    if colour:
        enc["color"] = {"field": colour, "type": "nominal"}
    return {**_base(title, values), "mark": {"type": "line", "point": True, "tooltip": True},
            "encoding": enc}


def neighbourhood_graph(nodes: list[dict[str, Any]], links: list[dict[str, Any]], *,
                        width: int = 560, height: int = 400) -> dict[str, Any]:
    """A force-directed drawing (a Vega spec: Vega-Lite has no force layout). ``nodes``: id,
    label, group (0 = the chosen party); ``links``: source/target as node indices, rel_type."""
    return {
        "$schema": "https://vega.github.io/schema/vega/v5.json",
        "width": width, "height": height, "autosize": "none",
        "data": [{"name": "node-data", "values": nodes}, {"name": "link-data", "values": links}],
        "scales": [{"name": "colour", "type": "ordinal", "domain": [0, 1, 2], "range": _COLOURS}],
        "marks": [
            {"name": "nodes", "type": "symbol", "zindex": 1, "from": {"data": "node-data"},
             "encode": {"enter": {"fill": {"scale": "colour", "field": "group"}, "stroke": {"value": "white"},
                                  "size": {"signal": "datum.group === 0 ? 500 : 180"},
                                  "tooltip": {"field": "label"}}},
             "transform": [{"type": "force", "iterations": 300, "static": True,
                            # weak repulsion and short links keep a hub's 40 neighbours on the canvas
                            "forces": [{"force": "center", "x": width / 2, "y": height / 2},
                                       {"force": "collide", "radius": 9},
                                       {"force": "nbody", "strength": -20},
                                       {"force": "link", "links": "link-data", "distance": 40}]}]},
            {"type": "path", "from": {"data": "link-data"}, "interactive": False,
             "encode": {"update": {"stroke": {"value": "#9aa7b1"}, "strokeWidth": {"value": 1.2}}},
             "transform": [{"type": "linkpath", "shape": "line", "sourceX": "datum.source.x",
                            "sourceY": "datum.source.y", "targetX": "datum.target.x",
                            "targetY": "datum.target.y"}]},
            {"type": "text", "from": {"data": "nodes"}, "zindex": 2, "interactive": False,
             "encode": {"update": {"x": {"field": "x"}, "y": {"field": "y", "offset": -12},
                                   "text": {"field": "datum.label"}, "align": {"value": "center"},
                                   "fontSize": {"value": 10}, "fill": {"value": "#333"}}}},
        ],
    }
