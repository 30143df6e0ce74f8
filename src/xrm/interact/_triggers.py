"""Triggers of triggered campaigns: who should hear from us now, and why (the trigger key).

A campaign fires once per trigger key and customer: a basket left (the `Product Added` event's
id), a P(alive) drop (the trait and the cool-down period), a renewal (its due date).

    >>> AbandonedBasket(wait=timedelta(hours=1)).fire(cur, now)  # doctest: +SKIP
    [('u1', 'basket:9f2c...')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import duckdb

from xrm.exceptions import InputError

__all__ = ["AbandonedBasket", "DueWithin", "SqlTrigger", "TraitBelow", "TraitChanged", "Trigger"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _ident(value: str, what: str) -> str:
    if not _IDENT.fullmatch(value):
        raise InputError(f"{what} = {value!r} is not a plain SQL name (letters, digits, _)")
    return value


def _columns(cur: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


class Trigger(Protocol):
    def fire(self, cur: duckdb.DuckDBPyConnection, now: datetime) -> list[tuple[str, str]]: ...
    def as_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AbandonedBasket:
    """`Product Added` with no `Order Completed` by the same customer within ``wait`` after it.

    Fires for the customer's newest such event at least ``wait`` old and at most ``lookback``.
    """

    wait: timedelta = timedelta(minutes=60)
    lookback: timedelta = timedelta(days=3)
    added: str = "Product Added"
    completed: str = "Order Completed"

    def fire(self, cur: duckdb.DuckDBPyConnection, now: datetime) -> list[tuple[str, str]]:
        rows = cur.execute(
            """
            SELECT a.user_id, arg_max(a.message_id, a.ts)
            FROM events a
            WHERE a.type = 'track' AND a.event = ? AND a.user_id IS NOT NULL
              AND a.ts <= ? - ? AND a.ts > ? - ?
              AND NOT EXISTS (
                  SELECT 1 FROM events o
                  WHERE o.type = 'track' AND o.event = ? AND o.user_id = a.user_id
                    AND o.ts >= a.ts AND o.ts <= ?)
            GROUP BY 1
            """,
            [self.added, now, self.wait, now, self.lookback, self.completed, now],
        ).fetchall()
        return [(str(u), f"basket:{mid}") for u, mid in rows]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "abandoned_basket", "wait_minutes": self.wait.total_seconds() / 60,
                "lookback_days": self.lookback.total_seconds() / 86400,
                "added": self.added, "completed": self.completed}


@dataclass(frozen=True)
class TraitBelow:
    """A trait (e.g. Differentiate's ``p_alive``) below ``threshold``; fires again at most once
    per ``cooldown_days`` while it stays low.

    Reads ``table``: long form (columns ``trait`` and ``value``) or wide (a column named as the
    trait), keyed by ``key_column``.
    """

    threshold: float
    trait: str = "p_alive"
    table: str = "traits"
    key_column: str = "customer"
    cooldown_days: int = 90

    def fire(self, cur: duckdb.DuckDBPyConnection, now: datetime) -> list[tuple[str, str]]:
        table = _ident(self.table, "table")
        key = _ident(self.key_column, "key_column")
        cols = _columns(cur, table)
        if not cols:
            raise InputError(
                f"trigger {self.trait} < {self.threshold}: table {table!r} does not exist yet; "
                "run the pipeline (Differentiate writes the traits) or name another table"
            )
        if key not in cols:
            raise InputError(
                f"trigger on {table}: no column {key!r} (columns: {', '.join(cols)}); set key_column"
            )
        if "trait" in cols and "value" in cols:
            sql = (f"SELECT {key}, min(value) FROM {table} WHERE trait = ? GROUP BY 1 "
                   "HAVING min(value) < ?")
            params: list[Any] = [self.trait, self.threshold]
        elif self.trait in cols:
            trait = _ident(self.trait, "trait")
            sql = f"SELECT {key}, min({trait}) FROM {table} GROUP BY 1 HAVING min({trait}) < ?"
            params = [self.threshold]
        else:
            raise InputError(
                f"trigger on {table}: no trait {self.trait!r} (neither a column of that name nor "
                f"trait/value columns; columns: {', '.join(cols)})"
            )
        period = int(now.timestamp() // 86400) // max(self.cooldown_days, 1)
        return [(str(c), f"{self.trait}<{self.threshold}:{period}")
                for c, _ in cur.execute(sql, params).fetchall() if c is not None]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "trait_below", "trait": self.trait, "threshold": self.threshold,
                "table": self.table, "key_column": self.key_column,
                "cooldown_days": self.cooldown_days}


@dataclass(frozen=True)
class TraitChanged:
    """A trait changed at a scoring run (Differentiate's ``trait_changes``): a tier moved, or
    P(alive) crossed the churn alert threshold. Fires once per change, within ``lookback``.

    ``trait``: ``tier`` or ``p_alive``; ``direction``: ``down``, ``up`` or None (either);
    ``to``: only changes to this value (e.g. ``"BZ"``), or None.
    """

    trait: str = "p_alive"
    direction: str | None = "down"
    to: str | None = None
    lookback: timedelta = timedelta(days=14)

    def fire(self, cur: duckdb.DuckDBPyConnection, now: datetime) -> list[tuple[str, str]]:
        if self.direction not in (None, "up", "down"):
            raise InputError(
                f"trigger on {self.trait} changes: direction = {self.direction!r}; use up or down"
            )
        if not _columns(cur, "trait_changes"):
            raise InputError(
                "trigger on trait changes: table 'trait_changes' does not exist; open the store with "
                "this xrm to upgrade it, then run the value step"
            )
        rows = cur.execute(
            "SELECT customer_id, run_id FROM trait_changes WHERE trait = ? AND changed_at <= ? "
            "AND changed_at > ? AND (? IS NULL OR direction = ?) AND (? IS NULL OR new_value = ?)",
            [self.trait, now, now - self.lookback, self.direction, self.direction, self.to, self.to],
        ).fetchall()
        return [(str(c), f"{self.trait}:{run}") for c, run in rows]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "trait_changed", "trait": self.trait, "direction": self.direction, "to": self.to,
                "lookback_days": self.lookback.total_seconds() / 86400}


@dataclass(frozen=True)
class DueWithin:
    """A date (a subscription's renewal, a contract's end) falls within the next ``days``."""

    table: str
    date_column: str
    days: int = 7
    key_column: str = "customer"

    def fire(self, cur: duckdb.DuckDBPyConnection, now: datetime) -> list[tuple[str, str]]:
        table, key = _ident(self.table, "table"), _ident(self.key_column, "key_column")
        col = _ident(self.date_column, "date_column")
        if not _columns(cur, table):
            raise InputError(f"trigger due within {self.days} days: table {table!r} does not exist")
        rows = cur.execute(
            f"SELECT {key}, CAST({col} AS DATE) FROM {table} "
            f"WHERE CAST({col} AS DATE) BETWEEN CAST(? AS DATE) AND CAST(? AS DATE) "
            f"AND {key} IS NOT NULL",
            [now, now + timedelta(days=self.days)],
        ).fetchall()
        return [(str(c), f"{col}={d.isoformat()}") for c, d in rows]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "due_within", "table": self.table, "date_column": self.date_column,
                "days": self.days, "key_column": self.key_column}


@dataclass(frozen=True)
class SqlTrigger:
    """Any rule as SQL returning ``customer`` and ``trigger_key`` columns; ``?`` is now."""

    sql: str

    def fire(self, cur: duckdb.DuckDBPyConnection, now: datetime) -> list[tuple[str, str]]:
        params = [now] * self.sql.count("?")
        try:
            res = cur.execute(self.sql, params)
        except duckdb.Error as exc:
            raise InputError(f"trigger SQL failed: {str(exc).splitlines()[0]}; SQL: {self.sql}") from None
        names = [d[0] for d in res.description or []]
        rows = res.fetchall()
        if names[:2] != ["customer", "trigger_key"]:
            raise InputError(
                f"trigger SQL must return columns customer, trigger_key (it returned {names})"
            )
        return [(str(r[0]), str(r[1])) for r in rows if r[0] is not None]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "sql", "sql": self.sql}


def trigger_from_dict(d: dict[str, Any]) -> Trigger:
    kind = d.get("kind")
    if kind == "abandoned_basket":
        return AbandonedBasket(
            wait=timedelta(minutes=float(d.get("wait_minutes", 60))),
            lookback=timedelta(days=float(d.get("lookback_days", 3))),
            added=d.get("added", "Product Added"), completed=d.get("completed", "Order Completed"),
        )
    if kind == "trait_below":
        return TraitBelow(float(d["threshold"]), d.get("trait", "p_alive"), d.get("table", "traits"),
                          d.get("key_column", "customer"), int(d.get("cooldown_days", 90)))
    if kind == "trait_changed":
        return TraitChanged(d.get("trait", "p_alive"), d.get("direction", "down"), d.get("to"),
                            timedelta(days=float(d.get("lookback_days", 14))))
    if kind == "due_within":
        return DueWithin(d["table"], d["date_column"], int(d.get("days", 7)),
                         d.get("key_column", "customer"))
    if kind == "sql":
        return SqlTrigger(d["sql"])
    raise InputError(
        f"trigger kind = {kind!r} is not known; use abandoned_basket, trait_below, trait_changed, "
        "due_within or sql"
    )
