"""Find a customer by any identifier or name; the Customer 360 page; export, erase, next best action."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from fastapi import Response

from xrm.exceptions import InputError, NotYetImplemented
from xrm.web._audit import audit
from xrm.web._charts import neighbourhood_graph
from xrm.web._context import Ctx, page

__all__ = ["customer_360", "customer_erase", "customer_export", "customer_nba", "find_customers", "search"]

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
    if 0 < len(words) <= 3 and not any(w.isdigit() for w in words):
        conds = " AND ".join(
            "(n.first_name_key LIKE ? OR n.first_name_canon LIKE ? OR n.last_name_key LIKE ?)" for _ in words
        )
        params = [p for w in words for p in (w + "%",) * 3]
        for (pid,) in store.sql(
            "SELECT DISTINCT r.profile_id FROM normalized_records n "
            f"JOIN profile_records r USING (record_id) WHERE {conds} ORDER BY 1 LIMIT {int(limit)}",
            params,
        ).fetchall():
            hits.setdefault(int(pid), "name")
    ids = list(hits)[:limit]
    if not ids:
        return []
    names = {
        pid: (first, last, email)
        for pid, first, last, email in store.sql(
            """
            SELECT r.profile_id, arg_max(n.first_name, n.first_name IS NOT NULL),
                   arg_max(n.last_name, n.last_name IS NOT NULL), arg_max(n.email, n.email IS NOT NULL)
            FROM profile_records r JOIN normalized_records n USING (record_id)
            WHERE r.profile_id IN (SELECT unnest(?)) GROUP BY 1
            """,
            [ids],
        ).fetchall()
    }
    tiers = {
        pid: (tier, clv)
        for pid, tier, clv in store.sql(
            """
            WITH hit AS (SELECT DISTINCT unnest(?) AS profile_id),
            -- a profile's value rows are keyed by its id or, before identity ran, by its user ids;
            -- equi-joins on the keys (an OR in the join condition made a nested loop: minutes)
            k AS (SELECT profile_id, CAST(profile_id AS VARCHAR) AS customer_id FROM hit
                  UNION SELECT i.profile_id, i.id_value FROM identifiers i JOIN hit USING (profile_id)
                  WHERE i.id_type = 'user_id')
            SELECT k.profile_id, arg_max(v.tier, v.clv), sum(v.clv)
            FROM k JOIN customer_value v USING (customer_id) GROUP BY 1
            """,
            [ids],
        ).fetchall()
    }
    return [
        {"profile_id": pid, "matched_by": hits[pid], "first_name": names.get(pid, (None,) * 3)[0],
         "last_name": names.get(pid, (None,) * 3)[1], "email": names.get(pid, (None,) * 3)[2],
         "tier": tiers.get(pid, (None, None))[0], "clv": tiers.get(pid, (None, None))[1]}
        for pid in ids
    ]


@page("view")
def search(ctx: Ctx) -> Response:
    q = ctx.query.get("q", "").strip()
    results = find_customers(ctx.store, q) if q else []
    if len(results) == 1 and ctx.query.get("list") != "1":
        return ctx.redirect(f"/customers/{results[0]['profile_id']}")
    return ctx.render("customers.html", q=q, results=results)


def _keys(store: Any, pid: int) -> list[str]:
    """The profile's customer keys (user ids), the most valuable first."""
    return [r[0] for r in store.sql(
        """
        SELECT i.id_value FROM identifiers i LEFT JOIN purchase_summaries v ON v.customer_id = i.id_value
        WHERE i.profile_id = ? AND i.id_type = 'user_id'
        ORDER BY v.total_spend DESC NULLS LAST, i.n_seen DESC NULLS LAST, i.id_value
        """,
        [pid],
    ).fetchall()]


def _rec_key(store: Any, keys: list[str]) -> str:
    found = store.sql("SELECT customer FROM recommendations WHERE customer IN (SELECT unnest(?)) LIMIT 1",
                      [keys]).fetchall()
    return str(found[0][0]) if found else keys[0]


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
    value = _rows(store, "SELECT * FROM customer_value WHERE customer_id IN (SELECT unnest(?)) "
                  "ORDER BY historic_spend DESC", [trait_keys])
    needs = _rows(store, """
        SELECT n.*, s.description AS segment FROM customer_needs n
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
    from xrm.customize import recommend_for
    from xrm.identify import explain_profile
    from xrm.interact import active_profile, current_consents, timeline

    requested, pid = pid, active_profile(store, pid)
    pool = _POOL
    # the slowest first, so they start first; those keyed by the profile id before its keys are read
    later_timeline = pool.submit(timeline, store, pid, limit=50, cursor=cursor)
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
    later_recs = pool.submit(lambda: recommend_for(store, _rec_key(store, trait_keys), k=5))
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
    from xrm.interact import export_profile

    pid = _pid(ctx)
    keys = _keys(ctx.store, pid)
    if not keys:
        raise InputError(f"profile {pid} has no customer key (user id) to export by")
    data = {"profile_id": pid, "exported_at": datetime.now(UTC).isoformat(),
            "customers": {k: export_profile(ctx.store, k) for k in keys}}
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
