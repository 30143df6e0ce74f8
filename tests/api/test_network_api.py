"""The network over HTTP against the real app (uvicorn in a thread, a real DuckDB file): a party's
traits, its neighbourhood (checked against networkx's breadth-first search on the same rows),
influencers, communities, Return on Network; keys, scopes and the audit of personal reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import networkx as nx
import pytest

from xrm.config import Settings
from xrm.network import analyse_network, load_parties, load_relationships, return_on_network
from xrm.store import Store

from .live import KEY, Live, bearer, serve_in_thread

# Two groups of six who follow each other, a bridge between them, a hub everyone follows, a
# referral chain hanging off the hub and a party with no relationship.
_A = [f"a{i}" for i in range(6)]
_B = [f"b{i}" for i in range(6)]
_RELS: list[tuple[str, str, str]] = [
    *[(x, y, "follows") for g in (_A, _B) for i, x in enumerate(g) for y in g[i + 1:]],
    ("a0", "b0", "colleague"),
    *[(x, "hub", "follows") for x in _A + _B],
    ("hub", "r1", "referred"),
    ("r1", "r2", "referred"),
]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One analysed store and server for the module (reads only); each test makes its own key and
    reads the audit rows of that key."""
    tmp_path = tmp_path_factory.mktemp("network-api")
    settings = Settings(store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1,
                        write_keys={KEY: "webshop"})
    rels = tmp_path / "relationships.csv"
    rels.write_text("src,dst,rel_type\n" + "".join(f"{s},{d},{t}\n" for s, d, t in _RELS), encoding="utf-8")
    parties = tmp_path / "parties.csv"
    parties.write_text("party_id,kind,roles,name\nhub,organisation,media,Kaffee Blog\n"
                       "loner,person,prospect,\n", encoding="utf-8")
    with Store.open(settings) as store:
        assert load_relationships(store, rels).rows_loaded == len(_RELS)
        load_parties(store, parties)
        analyse_network(store)
    yield from serve_in_thread(settings)


def _bfs(steps: int, types: set[str] | None = None) -> dict[str, int]:
    g = nx.Graph()
    g.add_edges_from((s, d) for s, d, t in _RELS if types is None or t in types)
    return dict(nx.single_source_shortest_path_length(g, "a1", cutoff=steps))


def test_party_traits_need_a_read_key_and_are_audited(net: Live) -> None:
    assert net.client.get("/v1/network/parties/hub").status_code == 401
    assert net.client.get("/v1/network/parties/hub", headers=bearer(KEY)).status_code == 403
    reader = bearer(net.new_key("traits", "read"))
    r = net.client.get("/v1/network/parties/hub", headers={**reader, "X-Xrm-Purpose": "campaign planning"})
    assert r.status_code == 200, r.text
    hub = r.json()
    (pagerank, community), = net.rows("SELECT pagerank, community FROM network_traits WHERE party_id = 'hub'")
    assert hub["pagerank"] == pytest.approx(pagerank) and hub["community"] == community
    assert hub["pagerank_rank"] == 1 and hub["network_role"] == "influencer"
    assert hub["kind"] == "organisation" and hub["roles"] == ["media"] and hub["name"] == "Kaffee Blog"
    by_type = {t["rel_type"]: t for t in hub["relationships"]}
    assert by_type["follows"]["incoming"] == 12 and by_type["referred"]["outgoing"] == 1
    assert net.client.get("/v1/network/parties/loner", headers=reader).json()["network_role"] == "isolated"
    missing = net.client.get("/v1/network/parties/nobody", headers=reader)
    assert missing.status_code == 404 and "xrm network analyse" in missing.json()["message"]
    audit = net.rows("SELECT action, target, purpose FROM api_audit WHERE action = 'network.party.read' "
                     "AND key_name = 'traits' ORDER BY audit_id")
    assert audit[0] == ("network.party.read", "hub", "campaign planning")
    assert [a[1] for a in audit] == ["hub", "loner", "nobody"]


@pytest.mark.parametrize(("steps", "types"), [(1, None), (2, None), (3, None), (2, ["follows"])])
def test_neighbourhood_is_the_breadth_first_search(net: Live, steps: int, types: list[str] | None) -> None:
    name = f"hood-{steps}-{'-'.join(types or [])}"
    reader = bearer(net.new_key(name, "read"))
    params: dict[str, Any] = {"steps": steps, "type": types or []}
    got = net.client.get("/v1/network/parties/a1/neighbourhood", params=params, headers=reader).json()
    want = _bfs(steps, set(types) if types else None)
    assert {n["party_id"]: n["distance"] for n in got["nodes"]} == want
    assert not got["truncated"]
    inside = set(want)
    expected_edges = sorted((s, d, t) for s, d, t in _RELS
                            if s in inside and d in inside and (types is None or t in types))
    assert sorted((e["src"], e["dst"], e["rel_type"]) for e in got["edges"]) == expected_edges
    assert net.rows("SELECT target FROM api_audit WHERE action = 'network.neighbourhood.read' "
                    "AND key_name = ?", [name]) == [("a1",)]


def test_neighbourhood_limit_and_bad_input(net: Live) -> None:
    reader = bearer(net.new_key("limits", "read"))
    url = "/v1/network/parties/a1/neighbourhood"
    cut = net.client.get(url, params={"steps": 2, "limit": 4}, headers=reader).json()
    assert cut["truncated"] and len(cut["nodes"]) == 4
    assert [n["distance"] for n in cut["nodes"]] == [0, 1, 1, 1]  # the party, then the nearest
    bad = net.client.get(url, params={"type": "likes"}, headers=reader)
    message = bad.json()["message"]
    assert bad.status_code == 400 and "'likes'" in message and "follows" in message
    assert net.client.get(url, params={"steps": 9}, headers=reader).status_code == 400


def test_influencers_and_communities(net: Live) -> None:
    reader = bearer(net.new_key("influencers", "read"))
    ranked = [r[0] for r in net.rows("SELECT party_id FROM network_traits ORDER BY pagerank DESC NULLS LAST, "
                                     "party_id LIMIT 5")]
    top = net.client.get("/v1/network/influencers", params={"limit": 5}, headers=reader).json()
    assert [r["party_id"] for r in top["influencers"]] == ranked and ranked[0] == "hub"
    by_bt = net.client.get("/v1/network/influencers", params={"by": "betweenness", "limit": 1},
                           headers=reader).json()["influencers"]
    (best,), = net.rows("SELECT party_id FROM network_traits ORDER BY betweenness DESC NULLS LAST, party_id "
                        "LIMIT 1")
    assert by_bt[0]["party_id"] == best
    odd = net.client.get("/v1/network/influencers", params={"by": "shoe_size"}, headers=reader)
    assert odd.status_code == 400 and "pagerank" in odd.json()["message"]
    (target,), = net.rows("SELECT target FROM api_audit WHERE action = 'network.influencers.read' "
                          "AND key_name = 'influencers' ORDER BY audit_id LIMIT 1")
    assert target == ",".join(ranked)

    comms = net.client.get("/v1/network/communities", headers=reader).json()
    sizes = dict(net.rows("SELECT community, count(*) FROM network_traits WHERE community IS NOT NULL "
                          "GROUP BY 1"))
    assert comms["communities"] == len(sizes) and comms["members"] == sum(sizes.values())
    assert {c["community"]: c["members"] for c in comms["largest"]} == sizes
    assert [c["members"] for c in comms["largest"]] == sorted(sizes.values(), reverse=True)
    first = net.client.get("/v1/network/influencers", params={"community": comms["largest"][0]["community"]},
                           headers=reader).json()["influencers"]
    assert len(first) == min(20, comms["largest"][0]["members"])
    assert first[0]["party_id"] == comms["largest"][0]["leader"]


def test_return_on_network_is_the_report(net: Live) -> None:
    reader = bearer(net.new_key("ron", "read"))
    got = net.client.get("/v1/network/return-on-network", headers=reader)
    assert got.status_code == 200, got.text
    want = json.loads(json.dumps(return_on_network(net.app.state.store)))
    assert got.json() == want and {t["rel_type"] for t in want["by_type"]} >= {"referred"}


def test_before_any_analysis_the_reads_say_what_to_run(live: Live, reader: dict[str, str]) -> None:
    for path in ("/v1/network/influencers", "/v1/network/communities", "/v1/network/return-on-network",
                 "/v1/network/parties/x"):
        r = live.client.get(path, headers=reader)
        assert r.status_code == 404 and "xrm network analyse" in r.json()["message"], (path, r.text)
    paths = live.client.get("/openapi.json").json()["paths"]
    for p in ("/v1/network/parties/{party_id}", "/v1/network/parties/{party_id}/neighbourhood",
              "/v1/network/influencers", "/v1/network/communities", "/v1/network/return-on-network"):
        assert "get" in paths[p], p
