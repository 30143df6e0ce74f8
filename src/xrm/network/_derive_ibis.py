"""The derived relationships of :mod:`xrm.network._derive` as Ibis expressions (DuckDB and Spark).

The batch pipeline's ``relationships`` step runs these on any engine; the store's own derivation
(``derive_relationships``, DuckDB SQL with transactions) stays as it is.  The rules and their
results are the same, row for row (tests/scale/test_engines.py compares them):

* referral events -> ``referred``; one normalised address -> ``household``;
* customers sharing rare products (Adamic & Adar weights, top-k partners) -> ``co-purchased``;
* conversation replies and mentions -> ``replied-to`` / ``mentions``.

Parties are keyed as in the store: by ``user_id``, or by identify's profiles when the inputs hold
``identifiers`` and ``profile_records`` (``identity="auto"``).

    >>> rels, counts = derived_relationships(engine.table_or_none)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ibis

from xrm.exceptions import InputError
from xrm.network._derive import _HANDLE_TRAITS, _HOUSE_TAIL, DERIVED_RULES, IDENTITY_MODES

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["RELATIONSHIP_COLUMNS", "derived_relationships", "json_text"]

RELATIONSHIP_COLUMNS = ("src", "dst", "rel_type", "weight", "ts", "origin", "source", "evidence")
Tables = Callable[[str], "ir.Table | None"]


# SQL's TRIM and LPAD (spaces only; LPAD cuts a longer value), which both engines have by name:
# Ibis's strip() trims all whitespace and its lpad() never cuts, which would change the keys.
@ibis.udf.scalar.builtin(name="trim")
def _sql_trim(s: str) -> str:  # type: ignore[empty-body]
    """SQL TRIM (spaces)."""


@ibis.udf.scalar.builtin(name="lpad")
def _sql_lpad(s: str, n: int, pad: str) -> str:  # type: ignore[empty-body]
    """SQL LPAD."""


def json_text(col: ir.Value, key: str) -> ir.StringValue:
    """``json_extract_string(col, '$.key')`` on both engines: the value as text without quotes
    (Ibis's JSON unwrap is a Python UDF on Spark; this compiles to each engine's JSON path)."""
    return col.cast("json")[key].cast("string").re_replace(r'^"|"$', "").nullif("null")  # type: ignore[attr-defined,no-any-return]


def _party_maps(tables: Tables, mode: str) -> tuple[ir.Table, ir.Table]:
    """``up(user_id, party_id)`` and ``rp(record_id, party_id)`` for the identity mode."""
    if mode == "profile":
        ids, pr = tables("identifiers"), tables("profile_records")
        assert ids is not None and pr is not None
        ids = ids.filter(ids.id_type == "user_id")
        return (ids.select(user_id=ids.id_value, party_id=ids.profile_id.cast("string")),
                pr.select(pr.record_id, party_id=pr.profile_id.cast("string")))
    rec = tables("records")
    up = ibis.memtable({"user_id": [], "party_id": []}, schema={"user_id": "string", "party_id": "string"})
    if rec is None:
        rp = ibis.memtable({"record_id": [], "party_id": []},
                           schema={"record_id": "string", "party_id": "string"})
    else:
        rec = rec.filter(rec.user_id.notnull())
        rp = rec.select(rec.record_id, party_id=rec.user_id)
    return up, rp


def _mode(tables: Tables, identity: str) -> str:
    if identity not in IDENTITY_MODES:
        raise InputError(f"identity = {identity!r} is not known; use one of {', '.join(IDENTITY_MODES)}")
    have = tables("profile_records") is not None and tables("identifiers") is not None
    if identity == "profile" and not have:
        raise InputError("identity = 'profile' needs the identifiers and profile_records inputs "
                         "(identify's tables); run identity resolution first")
    if identity != "auto":
        return identity
    pr = tables("profile_records")
    return "profile" if have and pr is not None and int(pr.count().to_pyarrow().as_py()) else "user_id"


def _with_party(t: ir.Table, up: ir.Table, col: str, out: str) -> ir.Table:
    """``t`` with ``out = coalesce(up.party_id, t[col])`` (left join on the user id)."""
    u = up.select(_uid=up.user_id, _pid=up.party_id)
    j = t.left_join(u, t[col] == u._uid)
    return j.mutate(**{out: ibis.coalesce(j._pid, j[col])}).drop("_uid", "_pid")


def _rows(t: ir.Table, rule: str, source: str) -> ir.Table:
    """The relationship columns in their order, from ``s, d, w, ts, ev``."""
    return t.select(
        src=t.s.cast("string"), dst=t.d.cast("string"), rel_type=ibis.literal(rule),
        weight=t.w.cast("float64"), ts=t.ts.cast("timestamp"), origin=ibis.literal("derived"),
        source=ibis.literal(source), evidence=t.ev.cast("string"),
    )


def _handles(tables: Tables, up: ir.Table) -> ir.Table | None:
    """The ``handles`` table as the store has it after ``derive_handles``: file-loaded handles, and
    the latest user per handle told in identify calls' traits where no file names the handle."""
    ev = tables("events")
    assert ev is not None
    ident = ev.filter((ev.type == "identify") & ev.user_id.notnull())
    parts = []
    for trait in _HANDLE_TRAITS:
        h = json_text(ident.traits, trait)
        parts.append(ident.select(platform=ibis.literal("*" if trait == "handle" else trait), h=h,
                                  user_id=ident.user_id, ts=ident.ts).filter(lambda x: x.h.notnull()))
    x = ibis.union(*parts, distinct=False)
    x = x.filter(_sql_trim(x.h) != "")
    x = x.mutate(handle=ibis.literal("@") + _sql_trim(x.h).re_replace(r"^@+", "").lower())
    latest = x.group_by(["platform", "handle"]).aggregate(user_id=x.user_id.argmax(x.ts))
    derived = _with_party(latest, up, "user_id", "party_id")
    derived = derived.select(*[derived[c].cast("string").name(c) for c in ("platform", "handle", "party_id")])
    files = tables("handles")
    if files is None:
        return derived
    files = files.filter(files.source.isnull() | (files.source != "events:identify traits"))
    # Cast: the store's columns are NOT NULL, and a union needs equal types, nullability too.
    files = files.select(*[files[c].cast("string").name(c) for c in ("platform", "handle", "party_id")])
    new = derived.anti_join(files, ["platform", "handle"])
    return files.union(new, distinct=False)


def _referred(tables: Tables, up: ir.Table) -> ir.Table:
    ev = tables("events")
    assert ev is not None
    e = ev.filter((ev.type == "track") & (ev.event == "Referral Completed"))
    e = e.select(ref=json_text(e.properties, "referrer_user_id"), user_id=e.user_id, ts=e.ts,
                 message_id=e.message_id)
    e = e.filter(e.ref.notnull() & (e.ref != "") & e.user_id.notnull())
    e = _with_party(_with_party(e, up, "ref", "s"), up, "user_id", "d")
    e = e.filter(e.s != e.d)
    g = e.group_by(["s", "d"]).aggregate(w=e.count(), ts=e.ts.min(), ev=e.message_id.min())
    return _rows(g, "referred", "events:Referral Completed")


def _household(tables: Tables, rp: ir.Table, max_members: int) -> ir.Table | None:
    rec = tables("records")
    if rec is None:
        return None
    r = rec.filter(rec.street.notnull() & rec.postcode.notnull())
    r = r.join(rp, "record_id")
    street = _sql_trim(r.street.re_replace(_HOUSE_TAIL, "")).lower()
    for a, b in (("ß", "ss"), ("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("strasse", "str"), ("str.", "str")):
        street = street.replace(a, b)
    house_col = ibis.coalesce(_sql_trim(r.house_number).nullif(""), r.street.re_extract(_HOUSE_TAIL, 1))
    addr = r.select(
        party_id=r.party_id, updated_at=r.updated_at,
        street_key=street.re_replace("[^a-z0-9]", ""),
        house=house_col.re_replace(r"\s", "").lower(),
        postcode=_sql_lpad(r.postcode.re_replace(r"\D", ""), 5, "0"),
    )
    addr = addr.filter((addr.street_key != "") & (addr.house != "") & (addr.postcode.length() == 5))
    keyed = addr.select(addr.party_id, k=addr.street_key + "|" + addr.house + "|" + addr.postcode,
                        updated_at=addr.updated_at).distinct()
    sizes = keyed.group_by("k").aggregate(n=keyed.party_id.nunique())
    sizes = sizes.filter((sizes.n >= 2) & (sizes.n <= max_members)).select("k")
    a = keyed.semi_join(sizes, "k")
    b = keyed.select(k2=keyed.k, p2=keyed.party_id, u2=keyed.updated_at)
    j = a.join(b, (a.k == b.k2) & (a.party_id < b.p2))
    g = j.group_by(s=j.party_id, d=j.p2).aggregate(
        w=ibis.literal(1.0), ts=ibis.greatest(j.updated_at, j.u2).max(), ev=j.k.min()
    )
    return _rows(g, "household", "records:address")


def _co_purchased(tables: Tables, up: ir.Table, top_k: int, max_buyers: int) -> ir.Table | None:
    # Adamic & Adar (2003, Social Networks 25(3), eq. 1): a shared product bought by n customers
    # counts 1 / ln(n), so rare products say more about taste than best-sellers.
    ev, ol = tables("events"), tables("order_lines")
    if ol is None:
        return None
    assert ev is not None
    e = ev.filter(ev.user_id.notnull()).select("message_id", "user_id", "ts")
    lines = ol.select(ol.message_id, product=ibis.coalesce(ol.product_id, ol.sku))
    lines = lines.filter(lines.product.notnull())
    j = _with_party(lines.join(e, "message_id"), up, "user_id", "party")
    buys = j.select("party", "product", "ts").distinct()
    b1 = buys.group_by(["party", "product"]).aggregate(ts=buys.ts.max())
    rare = b1.group_by("product").aggregate(n=b1.count())
    rare = rare.filter((rare.n >= 2) & (rare.n <= max_buyers))
    a = b1.join(rare, "product")
    b = b1.select(p2=b1.party, pr2=b1.product, t2=b1.ts)
    pj = a.join(b, (a.product == b.pr2) & (a.party < b.p2))
    pairs = pj.group_by(s=pj.party, d=pj.p2).aggregate(
        w=(1.0 / pj.n.cast("float64").ln()).sum(), ts=ibis.greatest(pj.ts, pj.t2).max(), ev=pj.product.min()
    )
    ends = pairs.select(me=pairs.s, s=pairs.s, d=pairs.d, w=pairs.w).union(
        pairs.select(me=pairs.d, s=pairs.s, d=pairs.d, w=pairs.w), distinct=False
    )
    rk = ibis.row_number().over(group_by=ends.me, order_by=[ends.w.desc(), ends.s, ends.d])
    keep = ends.mutate(rk=rk).filter(lambda t: t.rk < top_k).select("s", "d").distinct()
    return _rows(pairs.semi_join(keep, ["s", "d"]), "co-purchased", "order_lines:rare products")


def _party_of_handle(t: ir.Table, handles: ir.Table | None, handle: str, platform: str, out: str) -> ir.Table:
    """``t`` with ``out``: the handle's party (this platform's, else any platform's) or the handle."""
    if handles is None:
        return t.mutate(**{out: t[handle]})
    h1 = handles.select(_pl1=handles.platform, _h1=handles.handle, _p1=handles.party_id)
    h2 = handles.filter(handles.platform == "*").select(_h2=handles.handle, _p2=handles.party_id)
    j = t.left_join(h1, (t[platform] == h1._pl1) & (t[handle] == h1._h1))
    j = j.left_join(h2, j[handle] == h2._h2)
    return j.mutate(**{out: ibis.coalesce(j._p1, j._p2, j[handle])}).drop("_pl1", "_h1", "_p1", "_h2", "_p2")


def _conversations(tables: Tables, handles: ir.Table | None) -> tuple[ir.Table | None, ir.Table | None]:
    posts = tables("posts")
    if posts is None:
        return None, None
    ap = _party_of_handle(
        posts.select("post_id", "platform", "author_handle", "reply_to", "mentions", "ts"),
        handles, "author_handle", "platform", "party",
    )
    o = ap.select(o_post=ap.post_id, o_party=ap.party)
    r = ap.join(o, ap.reply_to == o.o_post)
    r = r.filter(r.party != r.o_party)
    replies = r.group_by(s=r.party, d=r.o_party).aggregate(w=r.count(), ts=r.ts.max(), ev=r.post_id.min())
    # A reply names the author it answers; that is a reply, not a mention of its own.
    m = ap.filter(ap.mentions.notnull())
    m = m.select("party", "platform", "ts", "post_id", "reply_to", handle=m.mentions.unnest())
    t = _party_of_handle(m, handles, "handle", "platform", "target")
    op = posts.select(o_id=posts.post_id, o_author=posts.author_handle)
    t = t.left_join(op, t.reply_to == op.o_id)
    t = t.filter((t.party != t.target) & (t.o_author.isnull() | (t.o_author != t.handle)))
    mentions = t.group_by(s=t.party, d=t.target).aggregate(w=t.count(), ts=t.ts.max(), ev=t.post_id.min())
    return _rows(replies, "replied-to", "posts:replies"), _rows(mentions, "mentions", "posts:mentions")


def derived_relationships(
    tables: Tables,
    *,
    identity: str = "auto",
    rules: tuple[str, ...] = DERIVED_RULES,
    co_purchase_top_k: int = 5,
    rare_max_buyers: int = 50,
    household_max_members: int = 8,
) -> tuple[ir.Table, dict[str, Any]]:
    """The ``relationships`` table after derivation: the inputs' own (file-loaded) relationships and
    the derived ones by the named ``rules``, as one expression; and the identity mode used.

    ``tables(name)`` gives an input table or None where the inputs have none (posts, handles ...).
    """
    unknown = [r for r in rules if r not in DERIVED_RULES]
    if unknown:
        raise InputError(f"rules {unknown} are not known; derivable: {', '.join(DERIVED_RULES)}")
    if co_purchase_top_k < 1 or rare_max_buyers < 2 or household_max_members < 2:
        raise InputError(
            "co_purchase_top_k must be >= 1, rare_max_buyers >= 2 and household_max_members >= 2"
        )
    if tables("events") is None:
        raise InputError("the relationships step needs the events input")
    mode = _mode(tables, identity)
    up, rp = _party_maps(tables, mode)
    handles = _handles(tables, up)
    talk = {"replied-to", "mentions"} & set(rules)
    replies, mentions = _conversations(tables, handles) if talk else (None, None)
    built: dict[str, ir.Table | None] = {
        "referred": _referred(tables, up) if "referred" in rules else None,
        "household": _household(tables, rp, household_max_members) if "household" in rules else None,
        "co-purchased": (_co_purchased(tables, up, co_purchase_top_k, rare_max_buyers)
                         if "co-purchased" in rules else None),
        "replied-to": replies if "replied-to" in rules else None,
        "mentions": mentions if "mentions" in rules else None,
    }
    parts = [built[r] for r in rules if built[r] is not None]
    kept = tables("relationships")
    if kept is not None:  # file-loaded rows stay; derived rows of the chosen rules are replaced
        kept = kept.filter((kept.origin != "derived") | ~kept.rel_type.isin(list(rules)))
        parts.insert(0, kept.select(
            *[(kept[c].cast("float64") if c == "weight" else kept[c].cast("timestamp") if c == "ts"
               else kept[c].cast("string")).name(c) for c in RELATIONSHIP_COLUMNS]))
    if not parts:
        raise InputError("no relationship rule has inputs to derive from")
    rels = parts[0] if len(parts) == 1 else ibis.union(*[p for p in parts if p is not None], distinct=False)
    return rels, {"identity": mode}
