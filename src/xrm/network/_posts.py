"""Loading conversation posts (CSV/JSONL) with their language and lexicon sentiment.

Fields: post_id, author_handle, platform, text, timestamp (required); lang, reply_to, mentions
(a JSON list, or handles separated by spaces/commas in CSV; taken from the text when absent).

    >>> from xrm.network import load_posts
    >>> load_posts(store, "social/posts.jsonl").rows_loaded  # doctest: +SKIP
    5120
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from xrm.network._files import LoadReport, Problem, _list, _text, load_rows, normalise_handle, parse_timestamp
from xrm.network._load import insert_arrow
from xrm.network._sentiment import detect_language, sentiment
from xrm.store import Store

__all__ = ["load_posts"]

_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_.]{1,50})")
_POST_COLS = (
    "post_id",
    "platform",
    "author_handle",
    "text",
    "lang",
    "reply_to",
    "mentions",
    "ts",
    "sentiment",
    "source",
)


def _post_row(default_lang: str) -> Any:
    def validate(row: dict[str, Any], line: int, file: str) -> tuple[tuple[Any, ...] | None, list[Problem]]:
        problems: list[Problem] = []
        post_id = _text(row, "post_id", problems, line, required=True)
        author = _text(row, "author_handle", problems, line, required=True)
        platform = _text(row, "platform", problems, line, required=True)
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            problems.append(Problem(line, "text", text, "is missing or empty; a post needs its text"))
        raw_ts = row.get("timestamp", row.get("ts"))
        ts = parse_timestamp(raw_ts)
        if ts is None:
            problems.append(
                Problem(
                    line,
                    "timestamp",
                    raw_ts,
                    "is not a date-time (expected ISO 8601, e.g. 2025-03-01T12:00:00Z)",
                )
            )
        lang = row.get("lang")
        if lang is not None and str(lang).lower()[:2] not in ("de", "en"):
            problems.append(
                Problem(line, "lang", lang, "is not a supported language (de or en; leave empty to detect)")
            )
        if problems or post_id is None or author is None or platform is None or not isinstance(text, str):
            return None, problems
        mentions = [normalise_handle(m) for m in _list(row.get("mentions"))] or [
            normalise_handle(m) for m in _MENTION.findall(text)
        ]
        language = str(lang).lower()[:2] if lang else detect_language(text, default_lang)
        reply_to = row.get("reply_to")
        return (
            post_id,
            platform.lower(),
            normalise_handle(author),
            text,
            language,
            str(reply_to) if reply_to not in (None, "") else None,
            mentions,
            ts,
            sentiment(text, language),
            file,
        ), []

    return validate


def load_posts(store: Store, path: Path | str, *, default_lang: str = "de") -> LoadReport:
    """Posts and replies into ``posts`` (re-loading a post replaces it); bad rows are rejected."""
    return load_rows(
        store,
        path,
        "posts",
        _post_row(default_lang),
        key=lambda r: r[0],
        insert=lambda s, rows: insert_arrow(s, "posts", _POST_COLS, rows),
    )
