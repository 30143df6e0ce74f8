"""The hashed suppression list applied to a batch run's inputs, as Ibis expressions (DuckDB and Spark).

The store erases a re-loaded person in place (:func:`~xrm.interact.apply_suppressions`, DuckDB SQL
in one transaction).  A batch run reads its inputs from files it must not change, so here the same
people are found the same way and the run's copies of the inputs are de-identified instead:

1. who: records whose e-mail, user id, record id or phone (E.164, a Python UDF) hashes to a
   suppression entry, and events whose user id or anonymous id does;
2. their identifiers, followed a few hops as the store's erasure does (events' user, anonymous and
   previous ids; identify's profiles when the inputs hold ``identifiers``);
3. their events keep their place in aggregates without anything pointing at them (ids, traits,
   context and properties emptied), their records, identifiers and relationships go, and
   referral events naming them lose their properties.

Unlike the store's erasure, free text in other people's events that names the person is not
searched for (a pattern per person does not run as one set-based job); the store scrubs it when
the person is erased.

    >>> tables, summary = suppressed_inputs(engine.table_or_none, cache=engine.cache)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ibis

from xrm.interact._suppression import normalise
from xrm.network._derive_ibis import json_text

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["suppressed_inputs"]

Tables = Callable[[str], "ir.Table | None"]
ROUNDS = 3  # identifier hops followed, as the store's erasure does


@ibis.udf.scalar.python
def _e164(phone: str, region: str) -> str:
    """A phone number as the suppression list hashes it (E.164; Python's phonenumbers)."""
    return normalise("phone", phone, region=region)


def _hash(salt: str, kind: str, value: ir.StringValue) -> ir.StringValue:
    # sha256(salt || '|' || kind || '|' || normalised value), as hex: SHA256 / sha2(.., 256).
    return (ibis.literal(f"{salt}|{kind}|") + value).hexdigest("sha256")  # type: ignore[no-any-return]


def _hits(tables: Tables, sup: ir.Table, salt: str, region: str) -> ir.Table:
    """The customers (user id, or anonymous id without one) some suppression hash matches: ``v``."""
    hashes = sup.select(hash=sup.hash)
    parts: list[ir.Table] = []
    rec = tables("records")
    if rec is not None:
        r = rec.filter(rec.user_id.notnull())
        for kind, value in (("email", r.email.strip().lower()), ("customer", r.user_id.strip()),
                            ("record", r.record_id.strip())):
            parts.append(r.select(v=r.user_id.cast("string"), hash=_hash(salt, kind, value)))
        p = r.filter(r.phone.notnull())
        parts.append(p.select(v=p.user_id.cast("string"), hash=_hash(salt, "phone", _e164(p.phone, region))))
    ev = tables("events")
    assert ev is not None
    who = ibis.coalesce(ev.user_id, ev.anonymous_id).cast("string")
    parts.append(ev.filter(ev.user_id.notnull())
                 .select(v=who, hash=_hash(salt, "customer", ev.user_id.strip())))
    parts.append(ev.filter(ev.anonymous_id.notnull())
                 .select(v=who, hash=_hash(salt, "anonymous_id", ev.anonymous_id.strip())))
    found = ibis.union(*parts, distinct=False)
    found = found.semi_join(hashes, "hash")
    return found.filter(found.v.notnull()).select("v").distinct()


def _expand(tables: Tables, ids: ir.Table) -> ir.Table:
    """One hop: the ids of events and identify's profiles that share an id with ``ids`` (``v``)."""
    ev = tables("events")
    assert ev is not None
    linked = ev.filter(ev.user_id.isin(ids.v) | ev.anonymous_id.isin(ids.v) | ev.previous_id.isin(ids.v))
    parts = [ids.select(v=ids.v.cast("string"))]
    parts += [linked.select(v=linked[c].cast("string")) for c in ("user_id", "anonymous_id", "previous_id")]
    rec = tables("records")
    if rec is not None:
        mine = rec.filter(rec.user_id.isin(ids.v))
        parts += [mine.select(v=mine[c].cast("string")) for c in ("email", "phone", "record_id")]
    graph = tables("identifiers")
    if graph is not None:
        profiles = graph.filter(graph.id_value.isin(ids.v)).select("profile_id").distinct()
        same = graph.semi_join(profiles, "profile_id")
        parts.append(same.select(v=same.id_value.cast("string")))
    out = ibis.union(*parts, distinct=False)
    return out.filter(out.v.notnull() & (out.v.strip() != "")).distinct()


def suppressed_inputs(
    tables: Tables, *, cache: Callable[[ir.Table], ir.Table], release: Callable[..., None] | None = None,
    region: str = "DE",
) -> tuple[dict[str, ir.Table], dict[str, Any]]:
    """The inputs with suppressed people de-identified (only the tables that change) and a summary
    like the store's ``apply_suppressions``: ``{"re_erased": n, "rows": {table: n}}``.

    ``tables(name)`` gives an input or None; without ``suppressions`` and ``suppression_salt``
    inputs nothing is suppressed.  ``cache`` materialises the identifier set between hops.
    """
    sup, salt_t, ev = tables("suppressions"), tables("suppression_salt"), tables("events")
    if sup is None or salt_t is None or ev is None:
        return {}, {"re_erased": 0, "rows": {}, "suppressions": 0}
    n_sup = int(sup.count().to_pyarrow().as_py())
    salts = salt_t.limit(2).to_pyarrow().column("salt").to_pylist()
    if n_sup == 0 or len(salts) != 1:
        return {}, {"re_erased": 0, "rows": {}, "suppressions": n_sup}
    hits = cache(_hits(tables, sup, str(salts[0]), region))
    n_hits = int(hits.count().to_pyarrow().as_py())
    if n_hits == 0:
        return {}, {"re_erased": 0, "rows": {}, "suppressions": n_sup}
    ids, size = hits, n_hits
    for _ in range(ROUNDS):
        grown = cache(_expand(tables, ids))
        if release is not None and ids is not hits:
            release(ids)
        ids, before = grown, size
        size = int(ids.count().to_pyarrow().as_py())
        if size == before:  # no new identifier: the person's ids are complete
            break
    out: dict[str, ir.Table] = {}
    rows: dict[str, int] = {}
    theirs = (ev.user_id.isin(ids.v) | ev.anonymous_id.isin(ids.v) | ev.previous_id.isin(ids.v))
    theirs = theirs.fill_null(False)
    referrer = json_text(ev.properties, "referrer_user_id")
    names_them = (ev.type == "track") & (ev.event == "Referral Completed") & referrer.isin(ids.v)
    names_them = names_them.fill_null(False)
    null = ibis.null().cast("string")
    out["events"] = ev.mutate(
        user_id=ibis.ifelse(theirs, null, ev.user_id),
        anonymous_id=ibis.ifelse(theirs, null, ev.anonymous_id),
        previous_id=ibis.ifelse(theirs, null, ev.previous_id),
        traits=ibis.ifelse(theirs, null, ev.traits.cast("string")).cast(ev.traits.type()),
        context=ibis.ifelse(theirs, null, ev.context.cast("string")).cast(ev.context.type()),
        properties=ibis.ifelse(theirs | names_them, null, ev.properties.cast("string"))
        .cast(ev.properties.type()),
    )
    rows["events"] = int(ev.filter(theirs).count().to_pyarrow().as_py())
    graph = tables("identifiers")
    profiles = None
    if graph is not None:
        profiles = graph.filter(graph.id_value.isin(ids.v)).select("profile_id").distinct()
        out["identifiers"] = graph.anti_join(profiles, "profile_id")
        rows["identifiers"] = int(graph.semi_join(profiles, "profile_id").count().to_pyarrow().as_py())
        pr = tables("profile_records")
        if pr is not None:
            out["profile_records"] = pr.anti_join(profiles, "profile_id")
    rec = tables("records")
    if rec is not None:
        gone = (rec.user_id.isin(ids.v) | rec.record_id.isin(ids.v)).fill_null(False)  # NULL user ids stay
        out["records"] = rec.filter(~gone)
        rows["records"] = int(rec.filter(gone).count().to_pyarrow().as_py())
    rel = tables("relationships")
    if rel is not None:
        names = ids if profiles is None else ids.select(v=ids.v.cast("string")).union(
            profiles.select(v=profiles.profile_id.cast("string")))
        gone = (rel.src.isin(names.v) | rel.dst.isin(names.v)).fill_null(False)
        out["relationships"] = rel.filter(~gone)
        rows["relationships"] = int(rel.filter(gone).count().to_pyarrow().as_py())
    return out, {"re_erased": n_hits, "rows": rows, "suppressions": n_sup}

