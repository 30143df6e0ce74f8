"""Find a customer by any identifier or name; the Customer 360 page; export, erase, next best action."""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any

from fastapi import Response

from xrm.exceptions import InputError, NotYetImplemented
from xrm.web._audit import audit
from xrm.web._charts import neighbourhood_graph
from xrm.web._context import Ctx, page

__all__ = ["customer_360", "customer_erase", "customer_export", "customer_nba", "find_customers", "search",
           "warm_console"]

# Identifier types tried for a search, most specific first ('record' is a source record id).
SEARCH_TYPES = ("user_id", "account_id", "loyalty_card", "email", "phone", "anonymous_id", "record")
MAX_RESULTS = 50
# The 360 page's reads run side by side here (each on its own cursor); shared by all requests,
# so a burst of requests queues rather than starting threads without bound.
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="console-360")


def _identify(name: str) -> Any:
    """A public name of xrm.identify that may not be built yet in this checkout."""
    import xrm.identify

    found = getattr(xrm.identify, name, None)
    if found is None:
        raise NotYetImplemented(
            f"xrm.identify.{name} is not built yet (identify's golden records and review queue)"
        )
    return found


def find_customers(store: Any, query: str, limit: int = MAX_RESULTS) -> list[dict[str, Any]]:
    """Profiles matching ``query`` as a profile id, any identifier, or a name (all words must match
    a first or last name, by prefix, folded: 'mull' finds Müller). Each hit says how it matched."""
    from xrm.identify import IdentityRules, fold, lookup_profiles
    from xrm.interact._snapshot import read_snapshot

    q = query.strip()
    if not q:
        return []
    hits: dict[int, str] = {}
    if q.isdigit() and store.sql("SELECT 1 FROM profiles WHERE profile_id = ?", [int(q)]).fetchall():
        hits[int(q)] = "profile_id"
    rules = IdentityRules.for_settings(store.settings)
    for id_type in SEARCH_TYPES:
        try:
            found = lookup_profiles(store, id_type, q, rules)
        except (InputError, ValueError):
            continue
        for pid in found:
            hits.setdefault(int(pid), id_type)
    words = (fold(q) or "").split()
    with read_snapshot(store) as cur:
        if 0 < len(words) <= 3 and not any(w.isdigit() for w in words):
            for pid in _by_name(cur, words, limit):
                hits.setdefault(pid, "name")
        ids = list(hits)[:limit]
        if not ids:
            return []
        names, tiers = _names(cur, ids), _tiers(cur, ids)
    return [
        {"profile_id": pid, "matched_by": hits[pid], "first_name": names.get(pid, (None,) * 3)[0],
         "last_name": names.get(pid, (None,) * 3)[1], "email": names.get(pid, (None,) * 3)[2],
         "tier": tiers.get(pid, (None, None))[0], "clv": tiers.get(pid, (None, None))[1]}
        for pid in ids
    ]


def _by_name(cur: Any, words: list[str], limit: int) -> list[int]:
    """Profiles whose records match every word by prefix (first name, its canonical form, last name).

    The name keys are read in one pass over three short columns of normalized_records (DuckDB's
    indexes serve no prefix or range look-up); the records' profiles then by index."""
    conds = " AND ".join(
        "(first_name_key LIKE ? OR first_name_canon LIKE ? OR last_name_key LIKE ?)" for _ in words
    )
    params = [p for w in words for p in (w + "%",) * 3]
    records = [r for (r,) in cur.execute(
        f"SELECT record_id FROM normalized_records WHERE {conds}", params).fetchall()]
    if not records:
        return []
    found = {int(pid) for (pid,) in cur.execute(
        "SELECT profile_id FROM profile_records WHERE record_id IN (SELECT unnest(CAST(? AS VARCHAR[])))",
        [records]).fetchall()}
    return sorted(found)[:limit]


def _names(cur: Any, ids: list[int]) -> dict[int, tuple[Any, Any, Any]]:
    """First name, last name and e-mail of each profile (any of its records' that has one)."""
    recs = cur.execute(
        "SELECT record_id, profile_id FROM profile_records WHERE profile_id IN (SELECT unnest(?))", [ids]
    ).fetchall()
    owner = dict(recs)
    out: dict[int, list[Any]] = {}
    for rid, first, last, email in cur.execute(
        "SELECT record_id, first_name, last_name, email FROM normalized_records "
        "WHERE record_id IN (SELECT unnest(CAST(? AS VARCHAR[]))) ORDER BY record_id",
        [sorted(owner)],
    ).fetchall():
        got = out.setdefault(int(owner[rid]), [None, None, None])
        for i, value in enumerate((first, last, email)):
            if got[i] is None:
                got[i] = value
    return {pid: (v[0], v[1], v[2]) for pid, v in out.items()}


def _tiers(cur: Any, ids: list[int]) -> dict[int, tuple[Any, Any]]:
    """Tier (of the most valuable key) and total CLV per profile: its value rows are keyed by its id
    or, before identity ran, by its user ids. Look-ups by index; joined here."""
    keys: dict[str, set[int]] = {}
    for pid in ids:
        keys.setdefault(str(pid), set()).add(pid)
    for t, value, pid in cur.execute(
        "SELECT id_type, id_value, profile_id FROM identifiers WHERE profile_id IN (SELECT unnest(?))", [ids]
    ).fetchall():
        if t == "user_id":
            keys.setdefault(value, set()).add(int(pid))
    rows: dict[int, list[tuple[Any, Any]]] = {}
    for key, tier, clv in cur.execute(
        "SELECT customer_id, tier, clv FROM customer_value WHERE customer_id IN (SELECT unnest(?))",
        [sorted(keys)],
    ).fetchall():
        for pid in keys[key]:
            rows.setdefault(pid, []).append((tier, clv))
    out: dict[int, tuple[Any, Any]] = {}
    for pid, vals in rows.items():
        valued = [(clv, tier) for tier, clv in vals if clv is not None]
        out[pid] = (max(valued, key=lambda v: v[0])[1] if valued else None,
                    sum(v[0] for v in valued) if valued else None)
    return out


@page("view")
def search(ctx: Ctx) -> Response:
    q = ctx.query.get("q", "").strip()
    results = find_customers(ctx.store, q) if q else []
    if len(results) == 1 and ctx.query.get("list") != "1":
        return ctx.redirect(f"/customers/{results[0]['profile_id']}")
    return ctx.render("customers.html", q=q, results=results)


def _keys(store: Any, pid: int) -> list[str]:
    """The profile's customer keys (user ids), the most valuable first.

    Two look-ups by index, filtered and sorted here: a filter on id_type beside profile_id, or a
    join, turns DuckDB's look-up of identifiers by profile into a read of the whole table."""
    seen = {v: n for t, v, n in store.sql(
        "SELECT id_type, id_value, n_seen FROM identifiers WHERE profile_id = ?", [pid]).fetchall()
        if t == "user_id"}
    if not seen:
        return []
    spend = dict(store.sql(
        "SELECT customer_id, total_spend FROM purchase_summaries WHERE customer_id IN (SELECT unnest(?))",
        [sorted(seen)]).fetchall())

    def order(key: str) -> tuple[Any, ...]:  # total spend desc, then n_seen desc, nulls last; then id
        s, n = spend.get(key), seen[key]
        return (s is None, -(s or 0), n is None, -(n or 0), key)

    return sorted(seen, key=order)


# The most popular products (what a customer without recommendations is shown) read the whole
# purchase_cycles table (0.4 s CPU at 300k customers): kept per store file and k, read again when the
# table's row count changes or after a minute. Not personal: the same list for everyone.
_POPULAR: dict[tuple[str, int], tuple[float, int, list[dict[str, Any]]]] = {}
_POPULAR_TTL_S = 60.0


def _recommendations(store: Any, keys: list[str], k: int = 5) -> list[dict[str, Any]]:
    """``recommend_for`` of the first key that has recommendations: one look-up by customer for all
    keys, sorted here (an ORDER BY rank LIMIT k on the scan made DuckDB read the whole table)."""
    from xrm.customize import recommend_for

    found: dict[str, list[dict[str, Any]]] = {}
    for row in _rows(store, "SELECT customer, product_id, rank, score, reason FROM recommendations "
                            "WHERE customer IN (SELECT unnest(?))", [keys]):
        found.setdefault(str(row.pop("customer")), []).append(row)
    for key in keys:
        if key in found:
            return sorted(found[key], key=lambda r: r["rank"])[:k]
    where = (str(store.settings.store_path), k)
    first = _POPULAR_FIRST.get(where)
    if first is not None:  # read since the server started (warm_console): wait rather than read twice
        wait([first])
    (n,), = store.sql("SELECT count(*) FROM purchase_cycles").fetchall()
    now = time.monotonic()
    cached = _POPULAR.get(where)
    if cached and cached[1] == n:
        if now - cached[0] >= _POPULAR_TTL_S and where not in _POPULAR_REFRESHING:
            # stale: this page shows the list read a minute ago, and a worker reads it again (a
            # page that waited for the read took a second at 1M customers: the slow tail)
            _POPULAR_REFRESHING.add(where)
            _POOL.submit(_refresh_popular, store, keys[0], k, where, n)
        return [dict(r) for r in cached[2]]
    popular: list[dict[str, Any]] = recommend_for(store, keys[0], k=k)
    _POPULAR[where] = (now, n, popular)
    return [dict(r) for r in popular]


_POPULAR_REFRESHING: set[tuple[str, int]] = set()
_POPULAR_FIRST: dict[tuple[str, int], Future[None]] = {}


# Server start's read (warm_console), beside the requests.
_WARM = ThreadPoolExecutor(max_workers=1, thread_name_prefix="console-warm")


def warm_console(store: Any, k: int = 5) -> Future[None]:
    """Read the most popular products in a worker, at server start (the caller waits for the future
    before it closes the store). Without it the first Customer 360 of a customer with no
    recommendations read them inside the page: 0.5-3 s at 1M customers, a first visit's slowest.

    (A warm-up 360 page and export of one customer was tried too: the next 19 first visits at 1M read
    as much as without it, 650 vs 655 MB; the index levels a page loads are mostly the person's own.)"""
    where = (str(store.settings.store_path), k)
    if where not in _POPULAR_FIRST:
        _POPULAR_FIRST[where] = _WARM.submit(_first_popular, store, k, where)
    return _POPULAR_FIRST[where]


def _first_popular(store: Any, k: int, where: tuple[str, int]) -> None:
    from xrm.customize import recommend_for

    # Urgent: a page may wait for this read (xrm.store._gate: a release of index memory waits for it).
    with store.gate.shared(urgent=True):
        (n,), = store.sql("SELECT count(*) FROM purchase_cycles").fetchall()
        # recommend_for of the empty key (no customer's: ingest rejects an empty id): the most popular
        _POPULAR[where] = (time.monotonic(), n, recommend_for(store, "", k=k))


def _refresh_popular(store: Any, key: str, k: int, where: tuple[str, int], n: int) -> None:
    from xrm.customize import recommend_for

    try:
        with store.gate.shared():  # after the page was answered: a release of index memory goes first
            _POPULAR[where] = (time.monotonic(), n, recommend_for(store, key, k=k))
    finally:
        _POPULAR_REFRESHING.discard(where)


def _rows(store: Any, sql: str, params: Any) -> list[dict[str, Any]]:
    cur = store.sql(sql, params)
    cols = [d[0] for d in cur.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


# A party's relationships either way: two index look-ups (src, dst) instead of an OR, which DuckDB
# answers with a scan of the whole table; a loop (src = dst) counted once. Materialised, so that
# `src <> $p` is not pushed into the look-up by dst (a second filter: DuckDB then scans instead).
_MINE = """
    WITH into_p AS MATERIALIZED (SELECT * FROM relationships WHERE dst = $p)
    SELECT * FROM relationships WHERE src = $p
    UNION ALL SELECT * FROM into_p WHERE src <> $p
"""


def _network(store: Any, pid: int) -> dict[str, Any]:
    party = str(pid)
    traits = _rows(store, "SELECT * FROM network_traits WHERE party_id = ?", [party])
    rels = _rows(store, f"""
        SELECT CASE WHEN src = $p THEN dst ELSE src END AS other, rel_type,
               CASE WHEN src = $p THEN 'out' ELSE 'in' END AS direction, weight, ts
        FROM ({_MINE}) ORDER BY weight DESC, ts DESC NULLS LAST LIMIT 30
    """, {"p": party})
    return {"traits": traits[0] if traits else None, "neighbours": rels}


def neighbourhood(store: Any, party: str, t: Any) -> dict[str, Any] | None:
    """Nodes and links around ``party`` (its neighbours and the links among them), as a Vega spec."""
    rels = store.sql(f"""
        WITH mine AS MATERIALIZED ({_MINE}),
        n AS MATERIALIZED (SELECT CASE WHEN src = $p THEN dst ELSE src END AS other FROM mine LIMIT 40),
        -- the neighbours' own links: looked up by src (an index), then kept if dst is one too
        out AS MATERIALIZED (SELECT src, dst, rel_type FROM relationships WHERE src IN (SELECT other FROM n))
        SELECT DISTINCT src, dst, rel_type FROM (
            SELECT src, dst, rel_type FROM mine
            UNION ALL
            SELECT src, dst, rel_type FROM out WHERE dst IN (SELECT other FROM n)
        ) LIMIT 200
    """, {"p": party}).fetchall()
    if not rels:
        return None
    ids = [party, *sorted({x for s, d, _ in rels for x in (s, d)} - {party})]
    index = {p: i for i, p in enumerate(ids)}
    nodes = [{"id": p, "label": p, "group": 0 if p == party else 1} for p in ids]
    links = [{"source": index[s], "target": index[d], "rel_type": r} for s, d, r in rels]
    return neighbourhood_graph(nodes, links)


def _value_and_needs(store: Any, trait_keys: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The columns the page shows (7 of 15 and of 11): on a first visit each column of a row is a block
    read from the file (rows of one person lie apart)."""
    value = _rows(store, "SELECT customer_id, tier, clv, p_alive, share_of_wallet, historic_spend, "
                  "expected_purchases FROM customer_value WHERE customer_id IN (SELECT unnest(?)) "
                  "ORDER BY historic_spend DESC", [trait_keys])
    needs = _rows(store, """
        SELECT n.customer_id, n.spend, n.segment_id, n.category_shares, n.online_share, n.app_share,
               n.price_index, s.description AS segment FROM customer_needs n
        LEFT JOIN needs_segments s USING (segment_id)
        WHERE n.customer_id IN (SELECT unnest(?)) ORDER BY n.spend DESC
    """, [trait_keys])
    for row in needs:
        shares = json.loads(row["category_shares"]) if row.get("category_shares") else {}
        row["category_shares"] = sorted(shares.items(), key=lambda kv: -kv[1])
    return value, needs


def _ids(store: Any, pid: int) -> dict[str, Any]:
    return {
        "identifiers": _rows(store, "SELECT id_type, id_value, n_seen FROM identifiers "
                             "WHERE profile_id = ? ORDER BY id_type, id_value", [pid]),
        "evidence": _rows(store, "SELECT id_type, id_value, n_seen FROM profile_evidence "
                          "WHERE profile_id = ? ORDER BY id_type, id_value", [pid]),
        "events": store.sql("SELECT count(*) FROM event_profiles WHERE profile_id = ?",
                            [pid]).fetchall()[0][0],
    }


def _golden(store: Any, pid: int) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] | None = _identify("golden_record")(store, pid)
    except NotYetImplemented:
        found = None
    return found


def customer_data(store: Any, pid: int, cursor: str | None = None) -> dict[str, Any]:
    """Everything the 360 page shows, read fresh on every request (consents and events show at once).

    The reads are independent: each runs in a worker on its own cursor, so the page takes about as
    long as the slowest (the timeline or "why one person"), not as long as all of them in a row."""
    from xrm.identify import explain_profile
    from xrm.interact import active_profile, current_consents, timeline

    requested, pid = pid, active_profile(store, pid)
    pool = _POOL
    # the slowest first, so they start first; those keyed by the profile id before its keys are read
    # brief: the page shows an event's time, kind, name, channel, source and revenue (fewer columns read)
    later_timeline = pool.submit(timeline, store, pid, limit=50, cursor=cursor, brief=True)
    later_explain = pool.submit(explain_profile, store, pid)
    later_ids = pool.submit(_ids, store, pid)
    later_golden = pool.submit(_golden, store, pid)
    later_network = pool.submit(_network, store, pid)
    later_graph = pool.submit(neighbourhood, store, str(pid), None)
    keys = _keys(store, pid)
    # Value, needs and recommendations are keyed by profile id (or by user id before identity
    # has run); consents, exports and decisions by user id.
    trait_keys = [str(pid), *keys]
    later_consents = pool.submit(lambda: [(k, current_consents(store, k)) for k in keys])
    later_recs = pool.submit(_recommendations, store, trait_keys, 5)
    later_value = pool.submit(_value_and_needs, store, trait_keys)
    consents = []
    for key, in_force in later_consents.result():
        for (channel, purpose), c in sorted(in_force.items()):
            consents.append({"customer": key, "channel": channel, "purpose": purpose, "status": c.status,
                             "given_at": c.given_at, "expires_at": c.expires_at, "source": c.source})
    value, needs = later_value.result()
    page = later_timeline.result()
    return {
        "pid": pid, "requested": requested, "customer_keys": keys, "golden": later_golden.result(),
        **later_ids.result(),
        "explain": later_explain.result().to_dict(), "value": value, "needs": needs,
        "consents": consents, "timeline": [i.as_dict() for i in page.items],
        "next_cursor": page.next_cursor,
        "recommendations": later_recs.result(),
        "network": later_network.result(), "graph": later_graph.result(),
    }


def _pid(ctx: Ctx) -> int:
    raw = ctx.param("pid")
    if not raw.isdigit():
        raise InputError(f"profile id {raw!r} is not a number; find the customer with the search box")
    return int(raw)


def _show(ctx: Ctx, pid: int, **extra: Any) -> Response:
    data = customer_data(ctx.store, pid, ctx.query.get("cursor"))
    if data["pid"] != pid:  # merged into another profile: show that one
        return ctx.redirect(f"/customers/{data['pid']}")
    graph = data.pop("graph")
    return ctx.render("customer.html", c=data, charts={"graph": graph} if graph else {}, **extra)


@page("view")
def customer_360(ctx: Ctx) -> Response:
    return _show(ctx, _pid(ctx))


@page("decide")
def customer_nba(ctx: Ctx) -> Response:
    from xrm.customize import next_best_actions

    pid = _pid(ctx)
    keys = _keys(ctx.store, pid)
    if not keys:
        raise InputError(f"profile {pid} has no customer key (user id); offers are decided per customer key")
    decision = next_best_actions(ctx.store, keys[0], "email", k=3, explore=0.0)
    assert ctx.user is not None
    audit(ctx.store, ctx.user.username, "nba", keys[0], {"decision_id": decision.decision_id})
    return _show(ctx, pid, decision=decision.as_dict())


@page("export")
def customer_export(ctx: Ctx) -> Response:
    from xrm.interact import export_profiles

    pid = _pid(ctx)
    keys = _keys(ctx.store, pid)
    if not keys:
        raise InputError(f"profile {pid} has no customer key (user id) to export by")
    # one read of the store for all the profile's keys (they lead to the same identifiers)
    data = {"profile_id": pid, "exported_at": datetime.now(UTC).isoformat(),
            "customers": export_profiles(ctx.store, keys)}
    assert ctx.user is not None
    audit(ctx.store, ctx.user.username, "export", str(pid), {"keys": keys})
    body = json.dumps(data, ensure_ascii=False, indent=1, default=str)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="xrm-profile-{pid}.json"'})


@page("erase")
def customer_erase(ctx: Ctx) -> Response:
    from xrm.interact import erase_profile

    pid = _pid(ctx)
    reason = ctx.form.get("reason", "").strip()
    if not reason:
        raise InputError("erase: give a reason (e.g. the request's reference); it is kept with the erasure")
    keys = _keys(ctx.store, pid)
    if not keys:
        raise InputError(f"profile {pid} has no customer key (user id) to erase by")
    changed = 0
    for key in keys:
        result = erase_profile(ctx.store, key, reason)
        changed += sum(int(v) for v in result.get("rows", {}).values())
    assert ctx.user is not None
    audit(ctx.store, ctx.user.username, "erase", str(pid), {"keys": keys, "reason": reason})
    return ctx.redirect("/customers", flash=ctx.t("customer.erased", n=changed))
