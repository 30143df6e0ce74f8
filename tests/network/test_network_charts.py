"""`xrm network chart ...` end to end on a store file: real SVG and PNG files, drawn offline, with
as many nodes as the neighbourhood (networkx's breadth-first search) and the communities hold."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import pytest
import typer
from typer.testing import CliRunner

from xrm.cli._app import _global
from xrm.cli._network import network_app

runner = CliRunner()
_SVG = "{http://www.w3.org/2000/svg}"
# Two triangles joined by c-d, and a tail d-e-f.
_RELS = [("a", "b", "follows"), ("b", "c", "follows"), ("a", "c", "mentions"), ("c", "d", "colleague"),
         ("d", "e", "referred"), ("e", "f", "follows"), ("g", "h", "follows"), ("h", "i", "follows")]


def _app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(_global)
    app.add_typer(network_app, name="network")
    return app


@pytest.fixture
def analysed(tmp_path: Path) -> Path:
    store = tmp_path / "net.duckdb"
    rels = tmp_path / "rels.csv"
    rels.write_text("src,dst,rel_type\n" + "".join(f"{s},{d},{t}\n" for s, d, t in _RELS), encoding="utf-8")
    for args in (["load-relationships", str(rels)], ["analyse", "--no-derive"]):
        r = runner.invoke(_app(), ["--store", str(store), "network", *args, "--json"])
        assert r.exit_code == 0, r.output
    return store


def _marks(svg: Path) -> dict[str, int]:
    """Items per mark of a Vega SVG: {'mark-symbol': nodes, 'mark-path' or 'mark-rule': lines}."""
    root = ET.parse(svg).getroot()
    assert root.tag == f"{_SVG}svg"
    out: dict[str, int] = {}
    for g in root.iter(f"{_SVG}g"):
        cls = (g.get("class") or "").split()
        if "role-mark" in cls:
            out[cls[0]] = out.get(cls[0], 0) + len(list(g))
    return out


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_neighbourhood_svg_and_png(analysed: Path, tmp_path: Path) -> None:
    g = nx.Graph([(s, d) for s, d, _ in _RELS])
    for steps in (1, 2):
        out = tmp_path / f"c{steps}.svg"
        r = runner.invoke(_app(), ["--store", str(analysed), "network", "chart", "neighbourhood", "c",
                                   "--steps", str(steps), "--out", str(out), "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["out"] == str(out)
        near = set(nx.single_source_shortest_path_length(g, "c", cutoff=steps))
        marks = _marks(out)
        assert marks["mark-symbol"] == len(near)  # one circle per party
        assert marks["mark-path"] == g.subgraph(near).number_of_edges()  # one line per tie
    png = tmp_path / "c.png"
    r = runner.invoke(_app(), ["--store", str(analysed), "network", "chart", "neighbourhood", "c",
                               "--out", str(png)])
    assert r.exit_code == 0, r.output
    width, height = _png_size(png)
    assert width > 400 and height > 300


def test_communities_svg_and_png(analysed: Path, tmp_path: Path) -> None:
    import duckdb

    with duckdb.connect(str(analysed), read_only=True) as con:
        (communities,), = con.execute("SELECT count(DISTINCT community) FROM network_traits").fetchall()
    assert communities >= 2  # {a,b,c,d,e,f} and {g,h,i} at least
    out = tmp_path / "communities.svg"
    r = runner.invoke(_app(), ["--store", str(analysed), "network", "chart", "communities",
                               "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert _marks(out)["mark-symbol"] == communities
    out = tmp_path / "top1.png"
    r = runner.invoke(_app(), ["--store", str(analysed), "network", "chart", "communities", "--top", "1",
                               "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert _png_size(out)[0] > 400


def test_chart_errors_are_clean(analysed: Path, tmp_path: Path) -> None:
    def run(*args: str) -> dict[str, str]:
        r = runner.invoke(_app(), ["--store", str(analysed), "network", "chart", *args, "--json"])
        assert r.exit_code == 1, r.output
        return dict(json.loads(r.stdout))

    bad = run("neighbourhood", "c", "--out", str(tmp_path / "c.jpg"))
    assert bad["error"] == "InputError" and ".svg or .png" in bad["message"]
    assert run("neighbourhood", "nobody", "--out", str(tmp_path / "n.svg"))["error"] == "NotFound"
    likes = run("neighbourhood", "c", "--type", "likes", "--out", str(tmp_path / "n.svg"))
    assert "'likes'" in likes["message"]
    assert not (tmp_path / "n.svg").exists()
