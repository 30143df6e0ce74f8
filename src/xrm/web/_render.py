"""Jinja2 templates of the console (autoescaped), with number and date formats per language.

    >>> html = render_page("overview.html", lang="de", data={...})  # doctest: +SKIP
"""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from xrm.web._i18n import translate

__all__ = ["TEMPLATES", "environment", "fmt_number", "render_page"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


def fmt_number(value: Any, digits: int = 0, lang: str = "en") -> str:
    """``1234.5 -> '1,234.5'`` (en) or ``'1.234,5'`` (de); '–' for None."""
    if value is None:
        return "–"
    try:
        text = f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)
    if lang == "de":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def _fmt_time(value: Any, lang: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M" if lang == "de" else "%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y" if lang == "de" else "%Y-%m-%d")
    return str(value)


@cache
def environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["compact_json"] = lambda v: json.dumps(v, ensure_ascii=False, default=str, sort_keys=True)
    return env


def render_page(template: str, *, lang: str, data: dict[str, Any]) -> str:
    """Render ``template`` with ``data``, the language's ``t()`` and the number/time filters."""

    def t(key: str, **values: Any) -> str:
        return translate(lang, key, **values)

    def num(value: Any, digits: int = 0) -> str:
        return fmt_number(value, digits, lang)

    def pct(value: Any, digits: int = 0) -> str:
        return "–" if value is None else fmt_number(100 * float(value), digits, lang) + " %"

    def money(value: Any) -> str:
        return "–" if value is None else fmt_number(value, 2, lang) + " " + data.get("currency", "EUR")

    def when(value: Any) -> str:
        return _fmt_time(value, lang)

    return str(environment().get_template(template).render(
        t=t, num=num, pct=pct, money=money, when=when, lang=lang, **data
    ))
