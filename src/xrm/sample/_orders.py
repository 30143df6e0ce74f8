"""`Order Completed` and `Order Refunded` events (Segment e-commerce spec) from drawn orders.

Online orders carry the web-shop account as userId and the shopper's device as anonymousId.
Store orders carry the loyalty card as userId, or, when the till only scanned the card into
the receipt, an anonymous receipt id with the card in ``context.traits.loyalty_card``.

    >>> tables, rev1, rev2 = order_events(rng, keys, orders, devices, 0, end_ms, 0.03)  # doctest: +SKIP
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xrm.sample._arrow import concat, event_table, money, take
from xrm.sample._behaviour import Orders
from xrm.sample._catalogue import CATEGORIES, PRODUCTS
from xrm.sample._keys import Keys
from xrm.sample._people import DAY_MS, NULL, scramble
from xrm.sample._web import Devices

__all__ = ["order_events"]

_LINE_HEAD = pa.array(
    [
        '{"product_id":' + json.dumps(pid)
        + ',"sku":"' + f"400638{i + 1:07d}"
        + '","name":' + json.dumps(name, ensure_ascii=False)
        + ',"category":' + json.dumps(CATEGORIES[cat], ensure_ascii=False)
        + ',"price":' + repr(price) + ',"quantity":'
        for i, (pid, name, cat, price) in enumerate(PRODUCTS)
    ]
)
_STORES = pa.array([f"F{i:03d}" for i in range(1, 61)])
_PLAIN = ("properties", "context", "anonymous_id")  # one per order: no use for a dictionary
_CONTEXT_WEB = '{"library":{"name":"analytics.js","version":"4.1.0"}}'
_CONTEXT_APP = '{"library":{"name":"analytics-ios","version":"4.5.0"},"app":{"name":"Kaffeekorb"}}'
_CONTEXT_POS = '{"library":{"name":"kasse-connector","version":"2.3.1"}}'


def _products_json(orders: Orders, lines: np.ndarray, per: np.ndarray, n: int) -> pa.Array:
    """``[{...},{...}]`` per order from the given lines (``per``: each line's output row)."""
    line_json = concat(
        take(_LINE_HEAD, orders.line_product[lines]), pa.array(orders.line_qty[lines]).cast(pa.string()), "}"
    )
    counts = np.bincount(per, minlength=n)
    offsets = pa.array(np.concatenate(([0], np.cumsum(counts))).astype(np.int32))
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, line_json), ",")
    return concat("[", joined, "]")


def order_events(
    rng: np.random.Generator,
    keys: Keys,
    orders: Orders,
    devices: Devices,
    order_offset: int,
    end_ms: int,
    refund_rate: float,
) -> tuple[list[pa.Table], np.ndarray, np.ndarray]:
    """The events table and each person's store revenue (cents) on card 1 and on card 2."""
    m = len(orders.person)
    pe = orders.person
    order_id = np.array([f"B{x:010d}" for x in scramble(order_offset + np.arange(m), 10)], dtype=object)
    online = orders.online

    second_acc = (keys.account2[pe] != None) & (orders.ts >= keys.account2_at[pe])  # noqa: E711
    second_acc &= rng.random(m) < 0.5
    on_card2 = (keys.card2[pe] != None) & (orders.ts >= keys.card2_at[pe])  # noqa: E711
    card = np.where(on_card2, keys.card2[pe], keys.card[pe])
    card_as_user = rng.random(m) < 0.7
    user = np.where(online, np.where(second_acc, keys.account2[pe], keys.account[pe]),
                    np.where(card_as_user, card, NULL))
    device_col = (rng.random(m) * devices.n_own[pe]).astype(np.int64)
    device = devices.own[pe, device_col]
    is_app = devices.own_app[pe, device_col]
    store_id = take(_STORES, rng.integers(0, len(_STORES), m))
    receipt = concat("pos-", store_id, "-", pa.array(order_id, type=pa.string()))
    anon = pc.if_else(pa.array(online), pa.array(device, type=pa.string()),
                      pc.if_else(pa.array(card_as_user), pa.nulls(m, pa.string()), receipt))
    ctx_pos_card = concat('{"library":{"name":"kasse-connector","version":"2.3.1"},'
                          '"traits":{"loyalty_card":"', pa.array(card, type=pa.string()), '"}}')
    context = pc.if_else(
        pa.array(online),
        pc.if_else(pa.array(is_app), _CONTEXT_APP, _CONTEXT_WEB),
        pc.if_else(pa.array(card_as_user), _CONTEXT_POS, ctx_pos_card),
    )
    products = _products_json(orders, np.arange(len(orders.line_order)), orders.line_order, m)
    oid = pa.array(order_id, type=pa.string())
    channel = pc.if_else(pa.array(online), '"online"', concat('"store","store_id":"', store_id, '"'))
    props = concat('{"order_id":"', oid, '","revenue":', money(orders.revenue_cents),
                   ',"currency":"EUR","channel":', channel, ',"products":', products, "}")
    completed = event_table(
        rng, orders.ts, _PLAIN, type="track", event="Order Completed",
        user_id=pa.array(user, type=pa.string()),
        anonymous_id=anon, properties=props, context=context, order_id=oid,
        revenue=orders.revenue_cents / 100.0, currency="EUR",
    )

    # A few orders come back: in full, or their first line only.
    ref = np.flatnonzero(rng.random(m) < refund_rate)
    ref_ts = orders.ts[ref] + (rng.uniform(1, 20, len(ref)) * DAY_MS).astype(np.int64) // 1000 * 1000
    keep = ref_ts < end_ms
    ref, ref_ts = ref[keep], ref_ts[keep]
    full = rng.random(len(ref)) < 0.6
    first_line = np.searchsorted(orders.line_order, ref)  # lines are grouped by order
    first_cents = (np.array([round(p[3] * 100) for p in PRODUCTS])[orders.line_product[first_line]]
                   * orders.line_qty[first_line])
    ref_cents = -np.where(full, orders.revenue_cents[ref], first_cents)
    is_ref_line = np.isin(orders.line_order, ref[full]) | np.isin(np.arange(len(orders.line_order)),
                                                                   first_line[~full])
    lines = np.flatnonzero(is_ref_line)
    per = np.searchsorted(ref, orders.line_order[lines])
    ref_products = _products_json(orders, lines, per, len(ref))
    ref_oid = oid.take(pa.array(ref))
    ref_props = concat('{"order_id":"', ref_oid, '","revenue":', money(ref_cents),
                       ',"currency":"EUR","products":', ref_products, "}")
    refunded = event_table(
        rng, ref_ts, _PLAIN, type="track", event="Order Refunded",
        user_id=pa.array(user[ref], type=pa.string()), anonymous_id=anon.take(pa.array(ref)),
        properties=ref_props, context=context.take(pa.array(ref)), order_id=ref_oid,
        revenue=ref_cents / 100.0, currency="EUR",
    )

    store_rev = np.where(online, 0, orders.revenue_cents)
    n = len(keys.account)
    rev1 = np.bincount(pe, weights=np.where(on_card2, 0, store_rev), minlength=n).astype(np.int64)
    rev2 = np.bincount(pe, weights=np.where(on_card2, store_rev, 0), minlength=n).astype(np.int64)
    return [completed, refunded], rev1, rev2
