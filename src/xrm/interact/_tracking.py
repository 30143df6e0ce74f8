"""Signed links in messages and what happens when they are followed: opens (pixel), clicks
(redirect), one-click unsubscribe (RFC 8058) and double opt-in confirmation.

These are plain functions of the store for the HTTP server to call: the endpoint verifies
nothing itself, it passes the token and gets back what to answer.

    >>> url = record_click(store, token)  # doctest: +SKIP  (then answer 302 to url)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from xrm.exceptions import InputError
from xrm.interact._clock import utc
from xrm.interact._consent import Consent, record_consent
from xrm.interact._events import CHANNEL_LABEL, TrackEvent, event_id, write_events
from xrm.interact._tokens import secret_of, sign_token, verify_token

__all__ = [
    "DoubleOptIn",
    "Links",
    "confirm_double_opt_in",
    "links_for",
    "record_call_outcomes",
    "record_click",
    "record_delivery",
    "record_open",
    "request_double_opt_in",
    "unsubscribe",
]

TRACKING_DAYS = 400  # open and click links keep working for about a year after sending


@dataclass(frozen=True)
class Links:
    """The signed links of one message."""

    base: str
    secret: str
    message_id: str
    customer: str
    channel: str
    purpose: str
    campaign_id: str | None
    expires_at: datetime

    def _payload(self) -> dict[str, Any]:
        return {"m": self.message_id, "c": self.customer, "ch": self.channel,
                "p": self.purpose, "k": self.campaign_id}

    @property
    def pixel_url(self) -> str:
        t = sign_token(self.secret, "open", self._payload(), expires_at=self.expires_at)
        return f"{self.base}/t/o/{t}.gif"

    def track(self, url: str) -> str:
        """A redirect link that records a click and goes on to ``url``."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise InputError(f"track({url!r}): only http and https links can be tracked")
        t = sign_token(self.secret, "click", {**self._payload(), "u": url},
                       expires_at=self.expires_at)
        return f"{self.base}/t/c/{t}"

    @property
    def unsubscribe_url(self) -> str:
        # No expiry: an unsubscribe link must keep working (RFC 8058, GDPR art. 7(3)).
        t = sign_token(self.secret, "unsubscribe", self._payload())
        return f"{self.base}/t/u/{t}"

    def list_unsubscribe_headers(self) -> dict[str, str]:
        """RFC 8058 one-click headers (the MTA must DKIM-sign them for mailbox providers)."""
        return {
            "List-Unsubscribe": f"<{self.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


def links_for(
    settings: Any, message_id: str, customer: str, channel: str, purpose: str,
    campaign_id: str | None, at: datetime,
) -> Links:
    return Links(
        settings.public_base_url.rstrip("/"), secret_of(settings), message_id, customer, channel,
        purpose, campaign_id, utc(at) + timedelta(days=TRACKING_DAYS),
    )


def _message_context(store: Any, payload: dict[str, Any]) -> dict[str, Any]:
    return {"message_id": payload["m"], "campaign_id": payload.get("k"),
            "channel": payload["ch"], "purpose": payload["p"]}


def record_open(
    store: Any, token: str, *, at: datetime | None = None, context: dict[str, Any] | None = None
) -> str:
    """Verify an open-pixel token and record `Email Opened`; returns the message id."""
    moment = utc(at)
    p = verify_token(secret_of(store.settings), token.removesuffix(".gif"), "open", now=moment)
    with store.transaction() as tx:
        write_events(tx, [TrackEvent(f"{CHANNEL_LABEL[p['ch']]} Opened", p["c"], moment,
                                     _message_context(store, p), context)])
    return str(p["m"])


def record_click(
    store: Any, token: str, *, at: datetime | None = None, context: dict[str, Any] | None = None
) -> str:
    """Verify a click token, record `Email Link Clicked`, return the URL to redirect to."""
    moment = utc(at)
    p = verify_token(secret_of(store.settings), token, "click", now=moment)
    with store.transaction() as tx:
        write_events(tx, [TrackEvent(f"{CHANNEL_LABEL[p['ch']]} Link Clicked", p["c"], moment,
                                     {**_message_context(store, p), "url": p["u"]}, context)])
    return str(p["u"])


def unsubscribe(
    store: Any, token: str, *, at: datetime | None = None, proof: dict[str, Any] | None = None
) -> Consent:
    """One-click unsubscribe: revoke the consent the message relied on, record `Unsubscribed`."""
    moment = utc(at)
    p = verify_token(secret_of(store.settings), token, "unsubscribe", now=moment)
    with store.transaction() as tx:
        consent = record_consent(
            store, p["c"], p["ch"], p["p"], "revoked", source="one-click unsubscribe", at=moment,
            proof={"message_id": p["m"], **(proof or {})}, cur=tx,
        )
        write_events(tx, [TrackEvent("Unsubscribed", p["c"], moment, _message_context(store, p),
                                     message_id=event_id("unsubscribed", p["m"]))])
    return consent


def record_delivery(
    store: Any, message_id: str, status: str, *, at: datetime | None = None, detail: str = ""
) -> None:
    """A delivery receipt (webhook callback, DSN): ``delivered`` or ``bounced``."""
    if status not in ("delivered", "bounced"):
        raise InputError(f"delivery status = {status!r}: expected 'delivered' or 'bounced'")
    moment = utc(at)
    rows = store.sql(
        "SELECT customer, channel, purpose, campaign_id FROM messages WHERE message_id = ?",
        [message_id],
    ).fetchall()
    if not rows:
        raise InputError(f"delivery receipt for message {message_id!r}: no such message")
    customer, channel, purpose, campaign_id = rows[0]
    with store.transaction() as tx:
        if status == "bounced":
            tx.execute("UPDATE messages SET status = 'bounced', last_error = ? WHERE message_id = ?",
                       [detail, message_id])
        write_events(tx, [TrackEvent(
            f"{CHANNEL_LABEL[channel]} {status.title()}", customer, moment,
            {"message_id": message_id, "campaign_id": campaign_id, "channel": channel,
             "purpose": purpose, "detail": detail},
            message_id=event_id(status, message_id),
        )])


@dataclass(frozen=True)
class DoubleOptIn:
    token: str
    url: str
    expires_at: datetime


def request_double_opt_in(
    store: Any,
    customer: str,
    email: str,
    *,
    source: str,
    purpose: str = "marketing",
    at: datetime | None = None,
    ttl: timedelta = timedelta(hours=48),
    proof: dict[str, Any] | None = None,
) -> DoubleOptIn:
    """Record a pending e-mail consent and make its confirmation link (signed, expiring).

    Send the link to ``email``; the person's request is the service consent for that one mail
    (recorded as a service consent that expires with the link).
    """
    moment = utc(at)
    expires = moment + ttl
    payload = {"c": customer, "e": email.strip().lower(), "p": purpose, "r": moment.isoformat()}
    token = sign_token(secret_of(store.settings), "double-opt-in", payload, expires_at=expires)
    with store.transaction() as tx:
        record_consent(store, customer, "email", purpose, "pending", source=source, at=moment,
                       proof={"email": payload["e"], **(proof or {})}, cur=tx)
        record_consent(store, customer, "email", "service", "granted",
                       source=f"double opt-in request ({source})", at=moment, expires_at=expires,
                       proof={"requested": purpose}, cur=tx)
    url = f"{store.settings.public_base_url.rstrip('/')}/consent/confirm?token={quote(token)}"
    return DoubleOptIn(token, url, expires)


def confirm_double_opt_in(
    store: Any, token: str, *, at: datetime | None = None, proof: dict[str, Any] | None = None
) -> Consent:
    """Verify a confirmation token (signature and expiry) and grant the e-mail consent."""
    moment = utc(at)
    p = verify_token(secret_of(store.settings), token, "double-opt-in", now=moment)
    return record_consent(
        store, p["c"], "email", p["p"], "granted", source="double opt-in", at=moment,
        proof={"email": p["e"], "requested_at": p["r"], "confirmed_at": moment.isoformat(),
               "method": "double opt-in", **(proof or {})},
    )


CALL_OUTCOMES = ("reached", "no_answer", "callback", "declined", "accepted", "do_not_call",
                 "wrong_number")


def record_call_outcomes(store: Any, path: Any, *, at: datetime | None = None) -> dict[str, Any]:
    """Read a call list the call centre filled in (column ``outcome``) and record each outcome
    as a `Call Completed` event; ``do_not_call`` revokes the phone consents. Rows without an
    outcome are skipped; bad outcomes are reported with their line, all at once."""
    import csv
    from pathlib import Path

    moment = utc(at)
    file = Path(path)
    problems, events, revoke = [], [], []
    with file.open(newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            outcome = (row.get("outcome") or "").strip().lower()
            if not outcome:
                continue
            if outcome not in CALL_OUTCOMES:
                problems.append(f"{file.name} line {line}: outcome = {outcome!r} (expected one of "
                                f"{', '.join(CALL_OUTCOMES)})")
                continue
            mid = row["message_id"]
            events.append(TrackEvent(
                "Call Completed", row["customer"], moment,
                {"message_id": mid, "outcome": outcome, "offer_id": row.get("offer_id") or None,
                 "note": row.get("note") or None, "channel": "phone"},
                message_id=event_id("call", mid, outcome),
            ))
            if outcome == "do_not_call":
                revoke.append((row["customer"], mid))
    if problems:
        raise InputError("call outcomes not recorded:\n" + "\n".join(problems)
                         + "\nFix the outcome column and load the file again.")
    with store.transaction() as tx:
        n = write_events(tx, events)
        for customer, mid in revoke:
            for purpose in ("marketing", "service"):
                record_consent(store, customer, "phone", purpose, "revoked",
                               source="call centre: do not call", at=moment,
                               proof={"message_id": mid, "file": file.name}, cur=tx)
    return {"recorded": n, "do_not_call": len(revoke)}
