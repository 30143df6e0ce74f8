"""Who a customer is and how to reach them, read from ingest's ``records``.

The customer key is a column of ``records`` (``user_id`` by default: the id the shop uses as the
Segment userId), or ``profile_id``: an Identify profile, reached through all its records, with
its golden record's e-mail and phone where Identify built one.

    >>> contacts = load_contacts(store, ["u1"])  # doctest: +SKIP
    >>> contacts["u1"].email
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from xrm.exceptions import InputError

__all__ = ["Contact", "load_contacts"]

_FIELDS = (
    "title", "first_name", "last_name", "organisation", "email", "phone",
    "street", "house_number", "postcode", "city", "country",
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Contact:
    """A customer's newest known name and addresses (each field from the newest record having it)."""

    customer: str
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    organisation: str | None = None
    email: str | None = None
    phone: str | None = None
    street: str | None = None
    house_number: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None
    timezone: str | None = None
    push_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def address_for(self, channel: str) -> str | None:
        """Where a message on ``channel`` goes (None: this customer cannot be reached there)."""
        if channel == "email":
            return self.email
        if channel in ("sms", "phone"):
            return self.phone
        if channel == "push":
            return self.push_token
        if channel == "webhook":
            return self.customer
        if channel == "post":
            if not (self.street and self.postcode and self.city):
                return None
            return json.dumps(
                {k: getattr(self, k) for k in ("title", "first_name", "last_name", "organisation",
                                               "street", "house_number", "postcode", "city",
                                               "country")},
                ensure_ascii=False,
            )
        return None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_contacts(
    store: Any, customers: Iterable[str] | None = None, *, key_column: str = "user_id"
) -> dict[str, Contact]:
    """Contacts of ``customers`` (all when None), keyed by customer."""
    if not _IDENT.fullmatch(key_column):
        raise InputError(f"key_column = {key_column!r} is not a column name of records")
    wanted = None if customers is None else sorted(set(customers))
    if wanted is not None and not wanted:
        return {}
    picks = ",\n".join(
        f"arg_max({c}, coalesce(updated_at, TIMESTAMP '1970-01-01')) FILTER (WHERE {c} IS NOT NULL)"
        f" AS {c}"
        for c in _FIELDS
    )
    extra = (
        "arg_max(extra, coalesce(updated_at, TIMESTAMP '1970-01-01')) FILTER (WHERE extra IS NOT NULL)"
    )
    by_profile = key_column == "profile_id"
    source = "records"
    if by_profile:
        source = ("(SELECT r.*, CAST(pr.profile_id AS VARCHAR) AS profile_id FROM records r "
                  "JOIN profile_records pr USING (record_id))")
    where = f"{key_column} IS NOT NULL"
    params: list[Any] = []
    if wanted is not None:
        where += f" AND {key_column} IN (SELECT unnest(?))"
        params.append(wanted)
    rows = store.sql(
        f"SELECT {key_column}, {picks}, {extra} FROM {source} WHERE {where} GROUP BY 1", params
    ).fetchall()
    golden = _golden_addresses(store, wanted) if by_profile else {}
    out = {}
    for row in rows:
        values = dict(zip(_FIELDS, row[1:-1], strict=True))
        extra_json = json.loads(row[-1]) if row[-1] else {}
        if not isinstance(extra_json, dict):
            extra_json = {}
        fields = {k: (str(v) if v is not None else None) for k, v in values.items()}
        fields.update(golden.get(str(row[0]), {}))
        out[str(row[0])] = Contact(
            customer=str(row[0]),
            timezone=extra_json.get("timezone"),
            push_token=extra_json.get("push_token"),
            extra=extra_json,
            **fields,
        )
    return out


def _golden_addresses(store: Any, wanted: list[str] | None) -> dict[str, dict[str, str]]:
    """Profile -> the golden record's e-mail and phone (Identify's survivorship picked them)."""
    params: list[Any] = []
    where = "attribute IN ('email', 'phone') AND value IS NOT NULL"
    if wanted is not None:
        where += " AND CAST(profile_id AS VARCHAR) IN (SELECT unnest(?))"
        params.append(wanted)
    out: dict[str, dict[str, str]] = {}
    for pid, attribute, value in store.sql(
        f"SELECT CAST(profile_id AS VARCHAR), attribute, value FROM golden_records WHERE {where}",
        params,
    ).fetchall():
        out.setdefault(pid, {})[attribute] = value
    return out
