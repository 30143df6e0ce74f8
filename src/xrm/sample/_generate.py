"""`generate_sample`: the whole sample business, chunk by chunk, with a manifest.

Customers are drawn in chunks (100,000 by default); each chunk has its own random stream
(``default_rng([seed, chunk])``) and is written before the next is drawn, so memory stays flat
at any size and the same seed gives byte-identical files.

    >>> manifest = generate_sample(Path("sample"), customers=20_000, seed=42)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from xrm.exceptions import ConfigError
from xrm.sample._behaviour import draw_behaviour, draw_orders
from xrm.sample._keys import assign_keys
from xrm.sample._lifecycle import referral_lines, subscription_lines
from xrm.sample._mappings import MAPPINGS
from xrm.sample._messaging import consent_events, email_events
from xrm.sample._orders import order_events
from xrm.sample._params import SampleParams
from xrm.sample._people import DAY_MS, UniqueNames, draw_people
from xrm.sample._records import LOYALTY_COLUMNS, NEWSLETTER_COLUMNS, WEBSHOP_COLUMNS, make_records
from xrm.sample._social import social_posts
from xrm.sample._truth import truth_tables
from xrm.sample._web import draw_devices, web_events
from xrm.sample._writers import Sink

__all__ = ["CHUNK_SIZE", "EVENT_FILES", "generate_sample"]

CHUNK_SIZE = 100_000
Progress = Callable[[int, int], None]

WEBSHOP = "sources/webshop_accounts.csv"
LOYALTY = "sources/loyalty_cards.csv"
NEWSLETTER = "sources/newsletter.csv"
CRM = "sources/crm_contacts.parquet"
EVENT_FILES = (
    "events/orders.parquet",
    "events/web.parquet",
    "events/email.parquet",
    "events/consent.parquet",
    "events/subscriptions.jsonl",
    "events/referrals.jsonl",
)
SOCIAL = "social/posts.jsonl"
TRUTH = ("persons", "record_person", "identifier_person", "households", "referrals")


def _check(customers: int, years: float, chunk_size: int) -> None:
    problems = []
    if not isinstance(customers, int) or customers < 1:
        problems.append(f"customers = {customers!r} must be a whole number of at least 1 (e.g. 20000)")
    if not (isinstance(years, int | float) and 0 < years <= 30 and math.isfinite(years)):
        problems.append(f"years = {years!r} must be more than 0 and at most 30 (e.g. 2.5)")
    if chunk_size < 1:
        problems.append(f"chunk_size = {chunk_size!r} must be at least 1 (default {CHUNK_SIZE})")
    if problems:
        raise ConfigError("the sample business cannot be made: " + "; ".join(problems))


def _rich_progress(total: int) -> tuple[Progress, Callable[[], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress("[bold]sample", BarColumn(), MofNCompleteColumn(), "customers", TimeElapsedColumn(),
                   TimeRemainingColumn(), transient=False)
    task = bar.add_task("sample", total=total)
    bar.start()
    return (lambda done, _total: bar.update(task, completed=done)), bar.stop


@dataclass
class _State:
    """What carries over from chunk to chunk: names given out, orders and posts numbered."""

    names: UniqueNames
    orders: int = 0
    posts: int = 0


def _write_chunk(
    sink: Sink,
    rng: np.random.Generator,
    state: _State,
    offset: int,
    n: int,
    params: SampleParams,
    start_ms: int,
    end_ms: int,
) -> None:
    """Draw ``n`` customers numbered from ``offset`` and append everything about them."""
    people = draw_people(rng, offset=offset, n=n, params=params, names=state.names, start_ms=start_ms)
    beh = draw_behaviour(rng, people, params, start_ms, end_ms)
    orders = draw_orders(rng, beh, params, end_ms)
    keys = assign_keys(rng, people, beh, params, start_ms, end_ms)
    devices = draw_devices(rng, people, keys, params)
    order_tables, rev1, rev2 = order_events(
        rng, keys, orders, devices, state.orders, end_ms, params.behaviour.refund_rate
    )
    state.orders += len(orders.person)
    sink.parquet("events/orders.parquet", *order_tables)
    del order_tables
    web = web_events(rng, beh, keys, devices, orders.dropout_ms, params, start_ms, end_ms)
    sink.parquet("events/web.parquet", *web)
    del web
    sink.parquet("events/email.parquet", *email_events(rng, keys, params, start_ms, end_ms))
    sink.parquet("events/consent.parquet", consent_events(rng, keys, end_ms))
    sub_lines, theta = subscription_lines(rng, people, beh, keys, params, end_ms)
    sink.lines("events/subscriptions.jsonl", sub_lines)
    sink.lines("events/referrals.jsonl", referral_lines(rng, people, beh, keys))
    posts = social_posts(rng, people, params, start_ms, end_ms, state.posts)
    state.posts += len(posts)
    sink.lines(SOCIAL, posts)
    recs = make_records(rng, people, keys, params, (rev1, rev2), end_ms)
    sink.csv(WEBSHOP, WEBSHOP_COLUMNS, recs.webshop)
    sink.csv(LOYALTY, LOYALTY_COLUMNS, recs.loyalty, encoding="cp1252", delimiter=";", newline="\r\n")
    sink.csv(NEWSLETTER, NEWSLETTER_COLUMNS, recs.newsletter)
    sink.parquet(CRM, recs.crm)
    sink.parquet("truth/record_person.parquet", recs.truth)
    for name, table in truth_tables(people, beh, orders, keys, devices, theta).items():
        sink.parquet(f"truth/{name}.parquet", table)


def generate_sample(
    out_dir: Path,
    *,
    customers: int = 20_000,
    seed: int = 42,
    show_progress: bool = True,
    start: date = date(2023, 1, 1),
    years: float = 2.5,
    params: SampleParams | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the sample business under ``out_dir`` and return its manifest (also manifest.json).

    ``progress(done, total)`` is called after each chunk; without it and with ``show_progress``
    a Rich progress bar is shown.
    """
    _check(customers, years, chunk_size)
    params = params or SampleParams()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start_ms = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    end_ms = start_ms + int(years * 365.25 * DAY_MS) // DAY_MS * DAY_MS
    stop: Callable[[], None] | None = None
    if progress is None and show_progress:
        progress, stop = _rich_progress(customers)
    # e-mail, second e-mail, family e-mail and handle: at most four names per customer
    state = _State(UniqueNames(capacity=4 * customers))
    try:
        with Sink(out_dir) as sink:
            for chunk, offset in enumerate(range(0, customers, chunk_size)):
                n = min(chunk_size, customers - offset)
                rng = np.random.default_rng([seed, chunk])
                _write_chunk(sink, rng, state, offset, n, params, start_ms, end_ms)
                if progress is not None:
                    progress(offset + n, customers)
            rows = dict(sink.rows)
    finally:
        if stop is not None:
            stop()

    for rel, text in MAPPINGS.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    files: list[dict[str, Any]] = [
        {"path": WEBSHOP, "mapping": "mappings/webshop_accounts.toml"},
        {"path": LOYALTY, "mapping": "mappings/loyalty_cards.toml"},
        {"path": NEWSLETTER, "mapping": "mappings/newsletter.toml"},
        {"path": CRM, "mapping": "mappings/crm_contacts.toml"},
    ] + [{"path": rel, "kind": "events"} for rel in EVENT_FILES]
    for entry in files:
        entry["rows"] = rows.get(entry["path"], 0)
    manifest = {
        "name": "xrm sample business",
        "customers": customers,
        "seed": seed,
        "start": start.isoformat(),
        "end": datetime.fromtimestamp(end_ms / 1000, UTC).date().isoformat(),
        "files": files,
        "social": [{"path": SOCIAL, "kind": "social", "rows": rows.get(SOCIAL, 0)}],
        "truth": {name: f"truth/{name}.parquet" for name in TRUTH},
        "events": sum(rows.get(rel, 0) for rel in EVENT_FILES),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    return manifest
