"""Offers: what can be put in front of a customer, read from TOML, CSV or JSON files.

    >>> offers = read_offers("offers.toml")  # doctest: +SKIP
    >>> add_offers(store, offers)            # doctest: +SKIP

Every problem of a file is gathered into one :class:`~xrm.exceptions.InputError` naming the file,
the line, the field, the value, the rule and the fix; nothing is stored from a file with problems.
"""

from __future__ import annotations

import csv
import json
import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

from xrm.exceptions import InputError
from xrm.store import Store

__all__ = [
    "OFFER_KINDS",
    "Offer",
    "add_offers",
    "get_offer",
    "list_offers",
    "load_offers",
    "read_offers",
    "remove_offer",
]

OFFER_KINDS = ("product", "bundle", "content", "service")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_LIST_FIELDS = ("product_ids", "channels", "segments", "tiers")
_REQUIRED = ("offer_id", "kind", "name", "value")


@dataclass(frozen=True)
class Offer:
    """One offer and its eligibility rules; an empty rule list means "no restriction".

    >>> Offer("espresso", "product", "Espresso beans 1 kg", value=4.10, product_ids=("P12",)).kind
    'product'
    """

    offer_id: str
    kind: str
    name: str
    value: float
    cost: float = 0.0
    category: str | None = None
    product_ids: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    consent_purpose: str | None = "marketing"
    exclude_owned: bool = False
    stock: int | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    base_rate: float = 0.05
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in _LIST_FIELDS:
            data[name] = list(data[name])
        return data


_FIELDS = {f.name for f in fields(Offer)}
_FIELD_LIST = ", ".join(f.name for f in fields(Offer) if f.name != "source")


# -- parsing one raw mapping -----------------------------------------------------------------


def _as_list(raw: Any) -> tuple[str, ...]:
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        # CSV cells hold lists separated by '|' (commas would clash with the CSV itself).
        return tuple(p.strip() for p in raw.split("|") if p.strip())
    if isinstance(raw, list | tuple):
        if not all(isinstance(x, str | int) for x in raw):
            raise ValueError("is not a list of strings")
        return tuple(str(x).strip() for x in raw if str(x).strip())
    raise ValueError("is not a list (use [\"a\", \"b\"], or a|b in CSV)")


def _as_float(raw: Any, *, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(raw, bool):
        raise ValueError("is not a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError("is not a number (e.g. 4.10)") from None
    if not math.isfinite(value):
        raise ValueError("is not a finite number")
    if minimum is not None and value < minimum:
        raise ValueError(f"is below {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"is above {maximum}")
    return value


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0", ""):
        return False
    raise ValueError("is not true or false")


def _as_date(raw: Any) -> date | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise ValueError("is not a date (expected YYYY-MM-DD)") from None


def _as_stock(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    value = _as_float(raw, minimum=0)
    if value != int(value):
        raise ValueError("is not a whole number")
    return int(value)


def _parse_one(raw: dict[str, Any], where: str, source: str | None) -> tuple[Offer | None, list[str]]:
    """One mapping -> an Offer, or the list of its problems (each a full sentence)."""
    problems: list[str] = []
    unknown = sorted(k for k in raw if k not in _FIELDS or k == "source")
    for key in unknown:
        problems.append(f"{where}: unknown field {key!r}; known fields: {_FIELD_LIST}")
    for key in _REQUIRED:
        if raw.get(key) in (None, ""):
            problems.append(f"{where}: {key!r} is missing; every offer needs {', '.join(_REQUIRED)}")
    values: dict[str, Any] = {"source": source}

    def take(name: str, convert: Any, rule: str = "") -> None:
        if name not in raw or raw[name] is None:
            return
        try:
            values[name] = convert(raw[name])
        except ValueError as exc:
            fix = f"; {rule}" if rule else ""
            problems.append(f"{where}: {name!r} = {raw[name]!r} {exc}{fix}")

    def text(value: Any) -> str:
        return str(value).strip()

    def ident(value: Any) -> str:
        value = text(value)
        if not _ID.fullmatch(value):
            raise ValueError("is not an offer id")
        return value

    def kind(value: Any) -> str:
        value = text(value).lower()
        if value not in OFFER_KINDS:
            raise ValueError(f"is not one of {', '.join(OFFER_KINDS)}")
        return value

    def optional_text(value: Any) -> str | None:
        return text(value) or None

    if raw.get("offer_id") not in (None, ""):
        take("offer_id", ident, "use letters, digits and _ . : - (up to 128)")
    if raw.get("kind") not in (None, ""):
        take("kind", kind)
    if raw.get("name") not in (None, ""):
        take("name", text)
    if raw.get("value") not in (None, ""):
        take("value", lambda v: _as_float(v), "value is the margin earned if the customer responds")
    take("cost", lambda v: _as_float(v, minimum=0), "cost is what making the offer costs, >= 0")
    take("category", optional_text)
    take("consent_purpose", optional_text)
    for name in _LIST_FIELDS:
        take(name, _as_list)
    take("exclude_owned", _as_bool)
    take("stock", _as_stock, "stock is a whole number >= 0, or empty for unlimited")
    take("valid_from", _as_date)
    take("valid_to", _as_date)
    take("base_rate", lambda v: _as_float(v, minimum=1e-6, maximum=1 - 1e-6),
         "base_rate is the prior response rate, strictly between 0 and 1")
    vf, vt = values.get("valid_from"), values.get("valid_to")
    if vf and vt and vt < vf:
        problems.append(f"{where}: 'valid_to' = '{vt}' is before 'valid_from' = '{vf}'; swap them")
    if values.get("kind") in ("product", "bundle") and not values.get("product_ids"):
        problems.append(
            f"{where}: a {values['kind']} offer needs 'product_ids' (the products it sells); "
            f"add them, or make it kind 'content' or 'service'"
        )
    if problems:
        return None, problems
    return Offer(**values), []


# -- reading files ----------------------------------------------------------------------------


def _toml_records(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}); fix the syntax and load again") from None
    items = data.get("offer")
    if not isinstance(items, list) or set(data) - {"offer"}:
        raise InputError(
            f"{path}: expected a list of [[offer]] tables and nothing else at the top level "
            f"(found keys: {', '.join(sorted(data)) or 'none'})"
        )
    # tomllib keeps no positions: the n-th [[offer]] header is the n-th offer.
    header_lines = [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == "[[offer]]"]
    out = []
    for n, item in enumerate(items):
        line = header_lines[n] if n < len(header_lines) else None
        out.append((f"{path} line {line}" if line else f"{path} offer #{n + 1}", item))
    return out


def _json_records(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg}); fix the syntax") from None
    items = data.get("offers") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a JSON list of offers, or {{\"offers\": [...]}}")
    # Find where each object starts so problems name a line.
    starts: list[int] = []
    decoder = json.JSONDecoder()
    pos = text.find("[", text.find('"offers"') if isinstance(data, dict) else 0) + 1
    while len(starts) < len(items):
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        starts.append(text.count("\n", 0, pos) + 1)
        _, pos = decoder.raw_decode(text, pos)
    out = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(f"{path} line {starts[n]}: offer #{n + 1} is not an object {{...}}")
        out.append((f"{path} line {starts[n]}", item))
    return out


def _csv_records(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    out = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise InputError(f"{path} line {line}: more cells than header columns; quote cells with commas")
        # An empty cell means "not given", as if the column were absent.
        out.append((f"{path} line {line}", {k.strip(): v for k, v in row.items() if k and v != ""}))
    return out


def read_offers(path: str | Path) -> list[Offer]:
    """Read offers from a ``.toml``, ``.csv`` or ``.json`` file; all problems raised together."""
    path = Path(path)
    readers = {".toml": _toml_records, ".json": _json_records, ".csv": _csv_records}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"{path}: offers are read from .toml, .csv or .json files, not {path.suffix!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    offers: list[Offer] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for where, raw in reader(path, text):
        offer, found = _parse_one(raw, where, path.name)
        problems += found
        if offer is None:
            continue
        if offer.offer_id in seen:
            problems.append(
                f"{where}: 'offer_id' = {offer.offer_id!r} is also used at {seen[offer.offer_id]}; "
                f"offer ids must be unique"
            )
            continue
        seen[offer.offer_id] = where
        offers.append(offer)
    if problems:
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise InputError(f"{len(problems)} problem(s) in {path}; nothing was loaded:\n  {shown}{more}")
    return offers


# -- the offers table ---------------------------------------------------------------------------

_COLUMNS = [f.name for f in fields(Offer)]


def add_offers(store: Store, offers: Iterable[Offer]) -> int:
    """Insert or replace offers (matched by ``offer_id``); returns how many were written."""
    rows = [tuple(o.as_dict()[c] for c in _COLUMNS) for o in offers]
    if not rows:
        return 0
    cols = ", ".join(_COLUMNS)
    marks = ", ".join("?" for _ in _COLUMNS)
    with store.transaction() as tx:
        tx.executemany(f"INSERT OR REPLACE INTO offers ({cols}) VALUES ({marks})", rows)
    return len(rows)


def load_offers(store: Store, path: str | Path) -> int:
    """Read a file of offers and store them (all or nothing)."""
    return add_offers(store, read_offers(path))


def _row_to_offer(row: Sequence[Any]) -> Offer:
    data = dict(zip(_COLUMNS, row, strict=True))
    for name in _LIST_FIELDS:
        data[name] = tuple(data[name] or ())
    return Offer(**data)


def list_offers(store: Store) -> list[Offer]:
    """Every stored offer, ordered by id."""
    cols = ", ".join(_COLUMNS)
    return [_row_to_offer(r) for r in store.sql(f"SELECT {cols} FROM offers ORDER BY offer_id").fetchall()]


def get_offer(store: Store, offer_id: str) -> Offer:
    cols = ", ".join(_COLUMNS)
    rows = store.sql(f"SELECT {cols} FROM offers WHERE offer_id = ?", [offer_id]).fetchall()
    if not rows:
        raise InputError(f"no offer {offer_id!r}; `xrm offers list` shows the stored offers")
    return _row_to_offer(rows[0])


def remove_offer(store: Store, offer_id: str) -> None:
    """Delete one offer (its past decisions stay in the log)."""
    get_offer(store, offer_id)
    store.sql("DELETE FROM offers WHERE offer_id = ?", [offer_id]).fetchall()
    store.sql("DELETE FROM bandit_state WHERE offer_id = ?", [offer_id]).fetchall()

