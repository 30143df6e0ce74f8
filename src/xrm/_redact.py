"""Personal data never reaches a log in clear: e-mails, phone numbers and names are masked.

Logs are copied, shipped and kept far longer than the store's data, and a GDPR erase cannot reach
them; so xrm masks personal data when a log record is *made*, for every logger in the process
(xrm's, uvicorn's access log with its query strings, Splink's, DuckDB errors quoted in
exceptions), whatever handler later writes it. The CLI and the server install it at start-up.

    >>> install_redaction()
    >>> redact("sent to anna.schmidt@web.de, tel. +49 30 1234567, first_name='Anna'")
    "sent to [email], tel. [phone], first_name='[name]'"
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

__all__ = ["install_redaction", "redact"]

# local@domain, also URL-encoded (%40) as it appears in access-log query strings
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# a phone: '+' or a leading 0, then 6+ more digits with spaces, '/', '-', '.', '(' or ')' between;
# dates (2024-05-01), amounts and ids starting 1-9 are left alone
_PHONE = re.compile(r"(?<![\w.])(?:\+|%2B|00?)(?:[\s/().\-]{0,2}\d){6,16}(?!\w)")
# a value given for a name-like field: first_name='Anna', "last_name": "Schmidt", name=Anna
_NAME_KEYS = r"first_?name|last_?name|full_?name|given_?name|family_?name|name|street|address\d?|birth_?date"
_NAMED = re.compile(
    rf"""(?P<key>["']?\b(?:{_NAME_KEYS})\b["']?\s*[:=]\s*)(?:(?P<q>["'])(?P<quoted>.*?)(?P=q)|(?P<bare>[^\s,;&)}}\]]+))""",
    re.IGNORECASE,
)
_MARK = "_xrm_redacted"


def _named(m: re.Match[str]) -> str:
    if m.group("q"):
        return f"{m.group('key')}{m.group('q')}[name]{m.group('q')}"
    return f"{m.group('key')}[name]"


def redact(text: str) -> str:
    """``text`` with e-mail addresses, phone numbers and values of name fields masked."""
    text = _EMAIL.sub("[email]", text)
    text = _PHONE.sub("[phone]", text)
    return _NAMED.sub(_named, text)


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep what can be shown, masked
        message = f"{record.msg!s} {record.args!r}"
    record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install_redaction() -> None:
    """Mask personal data in every log record made from now on, in this process (idempotent)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, _MARK, False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _redact_record(record)
        return record

    setattr(make, _MARK, True)
    logging.setLogRecordFactory(make)
