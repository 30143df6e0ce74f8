"""Channels and their transports: SMTP e-mail, signed webhooks, letter print files, call lists.

A :class:`Channel` is a consent channel (``email``, ``sms`` ...), a transport that carries its
messages, and a cost per contact (which Customize weighs against an offer's value). Unit tests give
a channel a :class:`FakeTransport`; integration tests a real SMTP server or HTTP receiver.

    >>> email = Channel("email", SmtpTransport("localhost", 8025, starttls=False), cost=0.001)
"""

from __future__ import annotations

import contextlib
import csv
import email.policy
import hashlib
import hmac
import json
import smtplib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any, Protocol

from xrm.exceptions import InputError

__all__ = [
    "DEFAULT_COSTS",
    "CallListTransport",
    "Channel",
    "FakeTransport",
    "LetterFileTransport",
    "Outbound",
    "SendResult",
    "SmtpTransport",
    "Transport",
    "WebhookTransport",
    "default_channels",
    "sign_webhook",
    "verify_webhook",
]

# Cost per contact in the store's currency (typical German list prices, 2026): what Customize
# subtracts from an offer's expected value on that channel.
DEFAULT_COSTS = {
    "email": 0.001,
    "push": 0.0005,
    "webhook": 0.0,
    "sms": 0.075,
    "post": 0.95,
    "phone": 2.50,
}


@dataclass(frozen=True)
class Outbound:
    """A message as a transport sees it; ``message_id`` is its idempotency key."""

    message_id: str
    customer: str
    channel: str
    purpose: str
    address: str
    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    attempt: int = 1


@dataclass(frozen=True)
class SendResult:
    """``sent``; ``retry`` (temporary: try again later); ``failed`` or ``bounced`` (for good)."""

    status: str
    detail: str = ""


class Transport(Protocol):
    def open(self) -> None: ...
    def send(self, message: Outbound) -> SendResult: ...
    def close(self) -> None: ...


@dataclass
class Channel:
    name: str
    transport: Transport
    cost: float = 0.0


class FakeTransport:
    """Keeps what it is given (for unit tests); ``fail`` maps a message id to a result to return."""

    def __init__(self, fail: Mapping[str, SendResult] | None = None) -> None:
        self.sent: list[Outbound] = []
        self.fail = dict(fail or {})

    def open(self) -> None:
        pass

    def send(self, message: Outbound) -> SendResult:
        if message.message_id in self.fail:
            return self.fail[message.message_id]
        self.sent.append(message)
        return SendResult("sent")

    def close(self) -> None:
        pass


class SmtpTransport:
    """E-mail over SMTP (smtplib): STARTTLS and AUTH as configured; one connection per batch.

    The Message-ID header is ``<message_id@domain>`` on every attempt, so a receiver can drop a
    copy re-sent after a worker was killed between the server's 250 and the store's commit.
    """

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        starttls: bool = True,
        user: str | None = None,
        password: str | None = None,
        mail_from: str = "xrm <noreply@example.com>",
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.starttls = host, port, starttls
        self.user, self.password, self.mail_from, self.timeout = user, password, mail_from, timeout
        self.domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
        self._smtp: smtplib.SMTP | None = None

    def open(self) -> None:
        """Nothing yet: the connection is made by the first send, where a refusal is a retry."""

    def _connect(self) -> None:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.starttls:
            smtp.starttls()
            smtp.ehlo()
        if self.user:
            smtp.login(self.user, self.password or "")
        self._smtp = smtp

    def message_id_header(self, message_id: str) -> str:
        return f"<{message_id}@{self.domain}>"

    def build(self, m: Outbound) -> EmailMessage:
        # Lines up to RFC 5322's 998 characters: a long List-Unsubscribe URL must stay one raw
        # URL (the default policy would fold it into RFC 2047 encoded words).
        msg = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
        msg["From"] = self.mail_from
        msg["To"] = m.address
        msg["Subject"] = m.subject or ""
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = self.message_id_header(m.message_id)
        for key, value in m.headers.items():
            msg[key] = value
        msg.set_content(m.body_text or "")
        if m.body_html:
            msg.add_alternative(m.body_html, subtype="html")
        return msg

    def send(self, message: Outbound) -> SendResult:
        try:
            if self._smtp is None:
                self._connect()
            assert self._smtp is not None
            refused = self._smtp.send_message(self.build(message))
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            kind = "bounced" if 500 <= code < 600 else "retry"
            return SendResult(kind, f"{code} {text.decode(errors='replace')}")
        except smtplib.SMTPResponseException as exc:
            self.close()
            kind = "failed" if 500 <= exc.smtp_code < 600 else "retry"
            err = exc.smtp_error
            said = err.decode(errors="replace") if isinstance(err, bytes) else str(err)
            return SendResult(kind, f"{exc.smtp_code} {said}")
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            return SendResult("retry", f"{type(exc).__name__}: {exc}")
        if refused:
            return SendResult("bounced", str(refused))
        return SendResult("sent", f"250 to {self.host}:{self.port}")

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None


def sign_webhook(secret: str, body: bytes, timestamp: int) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` (the Stripe scheme)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_webhook(
    secret: str, header: str, body: bytes, *, tolerance: int = 300, now: float | None = None
) -> None:
    """Check an ``X-Xrm-Signature`` header; :class:`InputError` saying what is wrong."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise InputError(
            f"X-Xrm-Signature = {header!r} is malformed (expected 't=<unix time>,v1=<hex>')"
        ) from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise InputError(
            f"X-Xrm-Signature timestamp {ts} is {abs(current - ts):.0f} s away from now (more "
            f"than {tolerance} s): a replay, or the clocks differ"
        )
    want = sign_webhook(secret, body, ts).split("v1=")[1]
    if not hmac.compare_digest(want, given):
        raise InputError("X-Xrm-Signature does not match the body (wrong webhook_secret?)")


class WebhookTransport:
    """POSTs each message as JSON, signed (``X-Xrm-Signature``) and with ``Idempotency-Key``.

    2xx is sent; 408, 429 and 5xx or a network error are retried; other 4xx fail for good.
    """

    def __init__(
        self, url: str, secret: str, *, timeout: float = 10.0, client: Any = None
    ) -> None:
        self.url, self.secret, self.timeout = url, secret, timeout
        self._client = client
        self._own = client is None

    def open(self) -> None:
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=self.timeout)

    def payload(self, m: Outbound) -> bytes:
        body = {
            "message_id": m.message_id,
            "customer": m.customer,
            "channel": m.channel,
            "purpose": m.purpose,
            "to": m.address,
            "subject": m.subject,
            "text": m.body_text,
            "fields": m.fields,
            "attempt": m.attempt,
        }
        return json.dumps(body, ensure_ascii=False, sort_keys=True).encode()

    def send(self, message: Outbound) -> SendResult:
        import httpx

        if self._client is None:
            self.open()
        body = self.payload(message)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.message_id,
            "X-Xrm-Signature": sign_webhook(self.secret, body, int(time.time())),
        }
        try:
            resp = self._client.post(self.url, content=body, headers=headers)  # type: ignore[union-attr]
        except httpx.HTTPError as exc:
            return SendResult("retry", f"{type(exc).__name__}: {exc}")
        if 200 <= resp.status_code < 300:
            return SendResult("sent", f"HTTP {resp.status_code}")
        kind = "retry" if resp.status_code in (408, 429) or resp.status_code >= 500 else "failed"
        return SendResult(kind, f"HTTP {resp.status_code}: {resp.text[:200]}")

    def close(self) -> None:
        if self._own and self._client is not None:
            self._client.close()
            self._client = None


class _CsvFileTransport:
    """Appends one CSV row per message to a dated file; a message id already there is not added
    again, so a re-run after a killed worker writes each letter or call once."""

    prefix = "file"
    columns: tuple[str, ...] = ()

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._seen: dict[Path, set[str]] = {}

    def path_for(self, moment: datetime) -> Path:
        return self.directory / f"{self.prefix}-{moment:%Y%m%d}.csv"

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def _ids(self, path: Path) -> set[str]:
        if path not in self._seen:
            ids: set[str] = set()
            if path.exists():
                with path.open(newline="", encoding="utf-8") as fh:
                    ids = {row["message_id"] for row in csv.DictReader(fh)}
            self._seen[path] = ids
        return self._seen[path]

    def row(self, m: Outbound) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, message: Outbound) -> SendResult:
        self.open()
        path = self.path_for(datetime.now(UTC))
        ids = self._ids(path)
        if message.message_id in ids:
            return SendResult("sent", f"already in {path}")
        new = not path.exists()
        with path.open("a", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(self.row(message))
            fh.flush()
        ids.add(message.message_id)
        return SendResult("sent", f"written to {path}")

    def close(self) -> None:
        self._seen.clear()


class LetterFileTransport(_CsvFileTransport):
    """Letters as a CSV print file with the personalised fields, for a letter shop's mail merge."""

    prefix = "letters"
    columns = (
        "message_id", "customer", "title", "first_name", "last_name", "organisation", "street",
        "house_number", "postcode", "city", "country", "subject", "body_text", "offer_id",
    )

    def row(self, m: Outbound) -> dict[str, Any]:
        address = json.loads(m.address) if m.address.startswith("{") else {}
        return {**address, "message_id": m.message_id, "customer": m.customer,
                "subject": m.subject, "body_text": m.body_text,
                "offer_id": m.fields.get("offer_id")}


class CallListTransport(_CsvFileTransport):
    """A call list for the call centre; outcomes come back with ``record_call_outcomes``."""

    prefix = "calls"
    columns = (
        "message_id", "customer", "first_name", "last_name", "phone", "subject", "script",
        "offer_id", "outcome",
    )

    def row(self, m: Outbound) -> dict[str, Any]:
        return {"message_id": m.message_id, "customer": m.customer,
                "first_name": m.fields.get("first_name"), "last_name": m.fields.get("last_name"),
                "phone": m.address, "subject": m.subject, "script": m.body_text,
                "offer_id": m.fields.get("offer_id"), "outcome": ""}


def default_channels(settings: Any) -> dict[str, Channel]:
    """The channels the settings configure (SMTP e-mail, webhooks that have a URL, letters, calls)."""
    from xrm.interact._tokens import secret_of

    def secret(name: str) -> str | None:
        v = getattr(settings, name, None)
        return v.get_secret_value() if v is not None else None

    channels = {
        "email": Channel(
            "email",
            SmtpTransport(
                settings.smtp_host, settings.smtp_port, starttls=settings.smtp_starttls,
                user=settings.smtp_user, password=secret("smtp_password"),
                mail_from=settings.mail_from,
            ),
            DEFAULT_COSTS["email"],
        ),
        "post": Channel("post", LetterFileTransport(settings.outbox_dir), DEFAULT_COSTS["post"]),
        "phone": Channel("phone", CallListTransport(settings.outbox_dir), DEFAULT_COSTS["phone"]),
    }
    for name, url in (("sms", settings.sms_webhook_url), ("push", settings.push_webhook_url)):
        if url:
            channels[name] = Channel(
                name, WebhookTransport(url, secret_of(settings, "webhook_secret")),
                DEFAULT_COSTS[name],
            )
    return channels
