"""Message templates: Jinja2 (sandboxed, strict) with personalisation and tracked links.

In a template: ``{{ customer.first_name }}``, ``{{ offer.name }}``, ``{{ track('https://...') }}``
(a click-tracked link), ``{{ unsubscribe_url }}``; HTML bodies get the open pixel appended.

    >>> Template(subject="Hi {{ customer.first_name }}", text="...").render({...})  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from xrm.exceptions import InputError

__all__ = ["Rendered", "Template"]


@cache
def _envs() -> tuple[Any, Any]:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    text = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    html = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)
    return text, html


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


@dataclass(frozen=True)
class Template:
    """``subject``, plain ``text`` and optional ``html``, each a Jinja2 template."""

    text: str
    subject: str | None = None
    html: str | None = None
    name: str = "template"

    def check(self) -> None:
        """Compile every part now, so a syntax error is found when the campaign is defined."""
        from jinja2 import TemplateSyntaxError

        text_env, html_env = _envs()
        for part, source, env in self._parts(text_env, html_env):
            try:
                env.from_string(source)
            except TemplateSyntaxError as exc:
                raise InputError(
                    f"{self.name} {part} line {exc.lineno}: {exc.message}; fix the Jinja2 syntax"
                ) from None

    def _parts(self, text_env: Any, html_env: Any) -> list[tuple[str, str, Any]]:
        parts = [("text", self.text, text_env)]
        if self.subject is not None:
            parts.append(("subject", self.subject, text_env))
        if self.html is not None:
            parts.append(("html", self.html, html_env))
        return parts

    def render(self, context: dict[str, Any], *, pixel_url: str | None = None) -> Rendered:
        """Render every part; :class:`InputError` names the part, line and missing variable."""
        from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError

        text_env, html_env = _envs()
        out: dict[str, str] = {}
        for part, source, env in self._parts(text_env, html_env):
            try:
                out[part] = env.from_string(source).render(**context)
            except TemplateSyntaxError as exc:
                raise InputError(
                    f"{self.name} {part} line {exc.lineno}: {exc.message}; fix the Jinja2 syntax"
                ) from None
            except UndefinedError as exc:
                known = ", ".join(sorted(context))
                raise InputError(
                    f"{self.name} {part}: {exc.message} for customer "
                    f"{context.get('customer', {}).get('customer')!r}; use a variable that exists "
                    f"(top level: {known}) or a default: {{{{ x | default('') }}}}"
                ) from None
            except TemplateError as exc:
                raise InputError(f"{self.name} {part}: {exc}") from None
        html = out.get("html")
        if html is not None and pixel_url:
            pixel = f'<img src="{pixel_url}" width="1" height="1" alt="" style="display:none">'
            html = html.replace("</body>", pixel + "</body>") if "</body>" in html else html + pixel
        subject = out.get("subject")
        return Rendered(subject.strip() if subject is not None else None, out["text"], html)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "text": self.text, "html": self.html}
