"""Relationships derived from data already in the store.

* referral events (``Referral Completed``, ``properties.referrer_user_id``) -> ``referred``
* records at one normalised address (street + house number + postcode) -> ``household``
* customers buying the same rare product (top-k partners each) -> ``co-purchased``
* replies and mentions in conversation posts -> ``replied-to`` / ``mentions``

Parties are keyed by the Segment ``userId`` of events and records (``identity="user_id"``).  With
``identity="profile"`` they are keyed by identify's profiles (``identifiers``, ``profile_records``),
so a person's web-shop and loyalty records are one party; ``"auto"`` picks profiles when identify
has resolved any.

    >>> from xrm.network import derive_relationships
    >>> derive_relationships(store)  # doctest: +SKIP
    {'identity': 'user_id', 'referred': 812, 'household': 2310, ...}
"""

from __future__ import annotations

from typing import Any

from xrm.exceptions import InputError
from xrm.store import Store

__all__ = ["IDENTITY_MODES", "derive_relationships", "identity_mode", "party_map_cte"]

IDENTITY_MODES = ("auto", "user_id", "profile")
DERIVED_RULES = ("referred", "household", "co-purchased", "replied-to", "mentions")
_HANDLE_TRAITS = ("twitter", "instagram", "facebook", "tiktok", "mastodon", "linkedin", "handle")


def identity_mode(store: Store, identity: str = "auto") -> str:
    """'user_id' or 'profile': the key parties go by (``auto``: profiles once identify has run)."""
    if identity not in IDENTITY_MODES:
        raise InputError(f"identity = {identity!r} is not known; use one of {', '.join(IDENTITY_MODES)}")
    if identity != "auto":
        if identity == "profile" and "profile_records" not in store.tables():
            raise InputError("identity = 'profile' needs identify's tables; run identity resolution first")
        return identity
    if "profile_records" not in store.tables():
        return "user_id"
    row = store.sql("SELECT count(*) FROM profile_records").fetchall()
    return "profile" if row[0][0] else "user_id"


def party_map_cte(mode: str) -> str:
    """CTEs ``up(user_id, party_id)`` and ``rp(record_id, party_id)`` for the identity mode."""
    if mode == "profile":
        return (
            "up AS (SELECT id_value AS user_id, CAST(profile_id AS VARCHAR) AS party_id "
            "FROM identifiers WHERE id_type = 'user_id'), "
            "rp AS (SELECT record_id, CAST(profile_id AS VARCHAR) AS party_id FROM profile_records)"
        )
    return (
        "up AS (SELECT NULL::VARCHAR AS user_id, NULL::VARCHAR AS party_id WHERE false), "
        "rp AS (SELECT record_id, user_id AS party_id FROM records WHERE user_id IS NOT NULL)"
    )


# Street key: folded (ß -> ss, umlauts -> ae/oe/ue), 'strasse'/'str.' -> 'str', letters and
# digits only; the house number taken from the street field when it has no column of its own.
_HOUSE_TAIL = r"[\s,]+(\d+\s*[a-zA-Z]?(\s*[-/]\s*\d+\s*[a-zA-Z]?)?)\s*$"
_ADDRESS_SQL = rf"""
SELECT rp.party_id, r.updated_at,
       regexp_replace(replace(replace(replace(replace(replace(replace(
           lower(trim(regexp_replace(r.street, '{_HOUSE_TAIL}', ''))),
           'ß', 'ss'), 'ä', 'ae'), 'ö', 'oe'), 'ü', 'ue'), 'strasse', 'str'), 'str.', 'str'),
           '[^a-z0-9]', '', 'g') AS street_key,
       lower(regexp_replace(coalesce(nullif(trim(r.house_number), ''),
           regexp_extract(r.street, '{_HOUSE_TAIL}', 1)), '\s', '', 'g')) AS house,
       lpad(regexp_replace(r.postcode, '\D', '', 'g'), 5, '0') AS postcode
FROM records r JOIN rp ON rp.record_id = r.record_id
WHERE r.street IS NOT NULL AND r.postcode IS NOT NULL
"""


def _referred(mode: str) -> str:
    return f"""
    WITH {party_map_cte(mode)},
    e AS (SELECT json_extract_string(properties, '$.referrer_user_id') AS ref, user_id, ts, message_id
          FROM events WHERE type = 'track' AND event = 'Referral Completed')
    SELECT coalesce(a.party_id, e.ref) AS src, coalesce(b.party_id, e.user_id) AS dst, 'referred',
           count(*)::DOUBLE, min(e.ts), 'derived', 'events:Referral Completed', min(e.message_id)
    FROM e LEFT JOIN up a ON a.user_id = e.ref LEFT JOIN up b ON b.user_id = e.user_id
    WHERE e.ref IS NOT NULL AND e.ref <> '' AND e.user_id IS NOT NULL
      AND coalesce(a.party_id, e.ref) <> coalesce(b.party_id, e.user_id)
    GROUP BY 1, 2
    """


def _household(mode: str, max_members: int) -> str:
    return f"""
    WITH {party_map_cte(mode)},
    addr AS ({_ADDRESS_SQL}),
    keyed AS (SELECT DISTINCT party_id, street_key || '|' || house || '|' || postcode AS k, updated_at
              FROM addr WHERE street_key <> '' AND house <> '' AND length(postcode) = 5),
    sizes AS (SELECT k FROM keyed GROUP BY k HAVING count(DISTINCT party_id) BETWEEN 2 AND {max_members})
    SELECT a.party_id, b.party_id, 'household', 1.0, max(greatest(a.updated_at, b.updated_at)),
           'derived', 'records:address', min(a.k)
    FROM keyed a JOIN keyed b ON a.k = b.k AND a.party_id < b.party_id
    WHERE a.k IN (SELECT k FROM sizes)
    GROUP BY 1, 2
    """


def _co_purchased(mode: str, top_k: int, max_buyers: int) -> str:
    # Adamic & Adar (2003, Social Networks 25(3), eq. 1): a shared product bought by n customers
    # counts 1 / ln(n), so rare products say more about taste than best-sellers.
    return f"""
    WITH {party_map_cte(mode)},
    buys AS (SELECT DISTINCT coalesce(up.party_id, e.user_id) AS party,
                    coalesce(ol.product_id, ol.sku) AS product, e.ts
             FROM order_lines ol JOIN events e ON e.message_id = ol.message_id
             LEFT JOIN up ON up.user_id = e.user_id
             WHERE e.user_id IS NOT NULL AND coalesce(ol.product_id, ol.sku) IS NOT NULL),
    b1 AS (SELECT party, product, max(ts) AS ts FROM buys GROUP BY 1, 2),
    rare AS (SELECT product, count(*) AS n FROM b1 GROUP BY product
             HAVING count(*) BETWEEN 2 AND {max_buyers}),
    pairs AS (SELECT a.party AS s, b.party AS d, sum(1.0 / ln(r.n)) AS w,
                     max(greatest(a.ts, b.ts)) AS ts, min(a.product) AS ex
              FROM b1 a JOIN rare r ON r.product = a.product
              JOIN b1 b ON b.product = a.product AND a.party < b.party
              GROUP BY 1, 2),
    ends AS (SELECT s AS me, s, d, w FROM pairs UNION ALL SELECT d AS me, s, d, w FROM pairs),
    ranked AS (SELECT s, d, row_number() OVER (PARTITION BY me ORDER BY w DESC, s, d) AS rk FROM ends),
    keep AS (SELECT DISTINCT s, d FROM ranked WHERE rk <= {top_k})
    SELECT p.s, p.d, 'co-purchased', p.w, p.ts, 'derived', 'order_lines:rare products', p.ex
    FROM pairs p JOIN keep USING (s, d)
    """


def _author_cte() -> str:
    # A post's author as a party: a linked handle (this platform first, then any) or the handle.
    return """
    ap AS (SELECT p.post_id, p.platform, p.author_handle, p.reply_to, p.mentions, p.ts,
                  coalesce(h1.party_id, h2.party_id, p.author_handle) AS party
           FROM posts p
           LEFT JOIN handles h1 ON h1.platform = p.platform AND h1.handle = p.author_handle
           LEFT JOIN handles h2 ON h2.platform = '*' AND h2.handle = p.author_handle)
    """


def _handle_party(alias: str, handle_expr: str, platform_expr: str) -> str:
    return (
        f"LEFT JOIN handles {alias}1 ON {alias}1.platform = {platform_expr} "
        f"AND {alias}1.handle = {handle_expr} "
        f"LEFT JOIN handles {alias}2 ON {alias}2.platform = '*' AND {alias}2.handle = {handle_expr}"
    )


def _replied_to() -> str:
    return f"""
    WITH {_author_cte()}
    SELECT r.party, o.party, 'replied-to', count(*)::DOUBLE, max(r.ts), 'derived', 'posts:replies',
           min(r.post_id)
    FROM ap r JOIN ap o ON o.post_id = r.reply_to
    WHERE r.party <> o.party
    GROUP BY 1, 2
    """


def _mentions() -> str:
    # A reply names the author it answers; that is a reply, not a mention of its own.
    return f"""
    WITH {_author_cte()},
    m AS (SELECT ap.party, ap.platform, ap.ts, ap.post_id, ap.reply_to, unnest(ap.mentions) AS handle
          FROM ap WHERE ap.mentions IS NOT NULL),
    t AS (SELECT m.*, coalesce(h1.party_id, h2.party_id, m.handle) AS target
          FROM m {_handle_party("h", "m.handle", "m.platform")})
    SELECT t.party, t.target, 'mentions', count(*)::DOUBLE, max(t.ts), 'derived', 'posts:mentions',
           min(t.post_id)
    FROM t LEFT JOIN posts o ON o.post_id = t.reply_to
    WHERE t.party <> t.target AND (o.author_handle IS NULL OR o.author_handle <> t.handle)
    GROUP BY 1, 2
    """


def derive_handles(store: Store, mode: str) -> int:
    """Handles people told in identify calls (``traits.twitter`` ...) -> the ``handles`` table."""
    parts = [
        f"SELECT '{t}' AS platform, json_extract_string(traits, '$.{t}') AS h, user_id, ts FROM events "
        f"WHERE type = 'identify' AND user_id IS NOT NULL "
        f"AND json_extract_string(traits, '$.{t}') IS NOT NULL"
        for t in _HANDLE_TRAITS
    ]
    query = f"""
    INSERT OR IGNORE INTO handles (platform, handle, party_id, source)
    WITH {party_map_cte(mode)}, x AS ({" UNION ALL ".join(parts)}),
    latest AS (SELECT CASE WHEN platform = 'handle' THEN '*' ELSE platform END AS platform,
                      '@' || lower(ltrim(trim(h), '@')) AS handle, arg_max(user_id, ts) AS user_id
               FROM x WHERE trim(h) <> '' GROUP BY 1, 2)
    SELECT l.platform, l.handle, coalesce(up.party_id, l.user_id), 'events:identify traits'
    FROM latest l LEFT JOIN up ON up.user_id = l.user_id
    """
    with store.transaction() as tx:
        tx.execute("DELETE FROM handles WHERE source = 'events:identify traits'")
        tx.execute(query)
    return int(
        store.sql("SELECT count(*) FROM handles WHERE source = 'events:identify traits'").fetchall()[0][0]
    )


def derive_relationships(
    store: Store,
    *,
    identity: str = "auto",
    rules: tuple[str, ...] = DERIVED_RULES,
    co_purchase_top_k: int = 5,
    rare_max_buyers: int = 50,
    household_max_members: int = 8,
) -> dict[str, Any]:
    """Derive relationships by the named ``rules`` (replacing earlier derived rows); counts per rule.

    ``household_max_members`` skips addresses shared by more parties (a block of flats, a company
    address); ``rare_max_buyers`` and ``co_purchase_top_k`` keep co-purchase edges bounded.
    """
    unknown = [r for r in rules if r not in DERIVED_RULES]
    if unknown:
        raise InputError(f"rules {unknown} are not known; derivable: {', '.join(DERIVED_RULES)}")
    if co_purchase_top_k < 1 or rare_max_buyers < 2 or household_max_members < 2:
        raise InputError(
            "co_purchase_top_k must be >= 1, rare_max_buyers >= 2 and household_max_members >= 2"
        )
    mode = identity_mode(store, identity)
    derive_handles(store, mode)
    queries = {
        "referred": _referred(mode),
        "household": _household(mode, household_max_members),
        "co-purchased": _co_purchased(mode, co_purchase_top_k, rare_max_buyers),
        "replied-to": _replied_to(),
        "mentions": _mentions(),
    }
    counts: dict[str, Any] = {"identity": mode}
    for rule in rules:
        with store.transaction() as tx:
            tx.execute("DELETE FROM relationships WHERE origin = 'derived' AND rel_type = ?", [rule])
            tx.execute(
                "INSERT OR REPLACE INTO relationships "
                "(src, dst, rel_type, weight, ts, origin, source, evidence) " + queries[rule]
            )
        counts[rule] = int(
            store.sql(
                "SELECT count(*) FROM relationships WHERE origin = 'derived' AND rel_type = ?", [rule]
            ).fetchall()[0][0]
        )
    _derive_parties(store, mode)
    return counts


def _derive_parties(store: Store, mode: str) -> None:
    """Every relationship end and every buyer becomes a party (file-loaded parties are kept)."""
    with store.transaction() as tx:
        tx.execute("DELETE FROM parties WHERE origin = 'derived'")
        tx.execute(f"""
        INSERT OR IGNORE INTO parties (party_id, kind, roles, origin, source)
        WITH {party_map_cte(mode)},
        buyers AS (SELECT DISTINCT coalesce(up.party_id, e.user_id) AS party_id FROM events e
                   LEFT JOIN up ON up.user_id = e.user_id
                   WHERE e.event = 'Order Completed' AND e.user_id IS NOT NULL),
        ends AS (SELECT src AS party_id FROM relationships UNION SELECT dst FROM relationships),
        everyone AS (SELECT party_id FROM ends UNION SELECT party_id FROM buyers)
        SELECT e.party_id, 'person',
               CASE WHEN b.party_id IS NOT NULL THEN ['customer']
                    WHEN e.party_id LIKE '@%' THEN []::VARCHAR[] ELSE ['prospect'] END,
               'derived', 'relationships and orders'
        FROM everyone e LEFT JOIN buyers b ON b.party_id = e.party_id
        """)
