"""Identity resolution rules, as in Segment Unify: glue types, limits, priorities, blocked values.

    >>> from xrm.identify import IdentityRules
    >>> IdentityRules().rule("user_id").limit
    1
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from xrm.exceptions import ConfigError
from xrm.identify._golden import GoldenRules
from xrm.identify._linkage_settings import LinkageSettings

__all__ = ["RECORD_TYPE", "IdentifierRule", "IdentityRules"]

# Records are graph nodes of this type: unlimited, lowest priority, never configurable.
RECORD_TYPE = "record"


class IdentifierRule(BaseModel):
    """How one identifier type takes part in the identity graph."""

    model_config = {"extra": "forbid", "frozen": True}

    glue: bool = Field(
        description=(
            "True: the value belongs to one person, so two records or events sharing it are the "
            "same person (login, user id, loyalty card, cookie). False: evidence only (e-mail, "
            "phone shared inside a family); it feeds the fuzzy linkage, never joins on its own."
        )
    )
    limit: int = Field(
        default=0,
        ge=0,
        description="Most distinct values of this type one profile may hold; 0 = no limit.",
    )
    priority: int = Field(
        default=100,
        ge=1,
        description=(
            "1 = most trusted. An event's or record's highest-priority identifier decides its "
            "profile; lower-priority links are the ones dropped when a limit would be broken."
        ),
    )
    blocked: tuple[str, ...] = Field(
        default=(),
        description="Values of this type that are never identifiers (compared after normalising).",
    )
    blocked_patterns: tuple[str, ...] = Field(
        default=(),
        description="RE2 regular expressions; a fully matching value is blocked.",
    )


def _default_types() -> dict[str, IdentifierRule]:
    return {
        "user_id": IdentifierRule(glue=True, limit=1, priority=1),
        "account_id": IdentifierRule(glue=True, limit=1, priority=2),
        "loyalty_card": IdentifierRule(glue=True, limit=2, priority=3),
        "anonymous_id": IdentifierRule(glue=True, limit=20, priority=4),
        "email": IdentifierRule(
            glue=False,
            priority=5,
            blocked=(
                "test@test.com",
                "test@test.de",
                "test@example.com",
                "info@example.com",
                "noreply@example.com",
                "keine@angabe.de",
                "no@email.com",
            ),
            blocked_patterns=(r"(no-?reply|donotreply)@.*", r".*@(example|test)\.(com|de|org)"),
        ),
        "phone": IdentifierRule(glue=False, priority=6),
    }


class IdentityRules(BaseModel):
    """Every identity setting, with defaults that suit a retailer (see docs/identify.md)."""

    model_config = {"extra": "forbid", "frozen": True}

    types: dict[str, IdentifierRule] = Field(default_factory=_default_types)
    blocked_any: tuple[str, ...] = Field(
        default=("", "0", "-", "null", "none", "nan", "n/a", "na", "undefined", "unknown",
                 "anonymous", "test", "void", "abc123", "keine", "unbekannt"),
        description="Values blocked for every type (compared lower-cased).",
    )
    block_repeated_chars: bool = Field(
        default=True,
        description="Block values of 5 or more of one repeated character: 0000000, -----, xxxxx.",
    )
    default_region: str = Field(
        default="DE", description="Region for phone numbers without a country code."
    )
    email_provider_rules: bool = Field(
        default=False,
        description=(
            "Apply provider rules to e-mails: Gmail ignores dots and '+tags' in the local part "
            "and googlemail.com is gmail.com. Off by default: it changes what counts as equal."
        ),
    )
    event_trait_identifiers: dict[str, str] = Field(
        default_factory=lambda: {
            "email": "email",
            "phone": "phone",
            "loyalty_card": "loyalty_card",
            "account_id": "account_id",
        },
        description="Event trait name -> identifier type, read from traits of every event.",
    )
    linkage: LinkageSettings = Field(
        default_factory=LinkageSettings,
        description="Probabilistic record linkage (Splink): thresholds, training caps, cannot-link rules.",
    )
    golden: GoldenRules = Field(
        default_factory=GoldenRules,
        description="Golden records: the survivorship rule per attribute and the trust order of sources.",
    )

    @model_validator(mode="after")
    def _check(self) -> IdentityRules:
        if RECORD_TYPE in self.types:
            raise ValueError(f"identifier type {RECORD_TYPE!r} is reserved for source records")
        for name in ("user_id", "anonymous_id"):
            if name not in self.types:
                raise ValueError(f"identifier type {name!r} is required (Segment userId/anonymousId)")
        for trait, id_type in self.event_trait_identifiers.items():
            if id_type not in self.types:
                raise ValueError(
                    f"event_trait_identifiers[{trait!r}] = {id_type!r} is not a known identifier "
                    f"type; known: {', '.join(sorted(self.types))}"
                )
        return self

    def rule(self, id_type: str) -> IdentifierRule:
        if id_type == RECORD_TYPE:
            return IdentifierRule(glue=True, limit=0, priority=10_000)
        try:
            return self.types[id_type]
        except KeyError:
            raise ConfigError(
                f"identifier type {id_type!r} has no rule; known: {', '.join(sorted(self.types))}"
            ) from None

    @property
    def glue_types(self) -> list[str]:
        """Glue types by priority (most trusted first)."""
        return sorted((t for t, r in self.types.items() if r.glue), key=lambda t: self.types[t].priority)

    @property
    def evidence_types(self) -> list[str]:
        return sorted(t for t, r in self.types.items() if not r.glue)

    @classmethod
    def from_toml(cls, path: Path | str, *, default_region: str | None = None) -> IdentityRules:
        """Read the ``[identify]`` table of a TOML file; every key is optional."""
        path = Path(path)
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8")).get("identify", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read identity rules: {exc}") from None
        return cls.from_mapping(data, source=str(path), default_region=default_region)

    @classmethod
    def from_mapping(
        cls, data: dict[str, Any], *, source: str = "rules", default_region: str | None = None
    ) -> IdentityRules:
        """Rules from a dict shaped like the ``[identify]`` table; types merge onto the defaults."""
        data = dict(data)
        if default_region and "default_region" not in data:
            data["default_region"] = default_region
        if "types" in data:
            merged: dict[str, dict[str, Any]] = {k: v.model_dump() for k, v in _default_types().items()}
            for name, values in data["types"].items():
                merged[name] = {**merged.get(name, {}), **values}
            data["types"] = merged
        try:
            return cls(**data)
        except ValidationError as exc:
            problems = [
                f"  identify.{'.'.join(str(p) for p in e['loc'])} = {e.get('input')!r}: {e['msg']}"
                for e in exc.errors()
            ]
            raise ConfigError(
                f"{source}: invalid [identify] rules:\n" + "\n".join(problems)
                + "\nSee docs/identify.md for every rule and its default."
            ) from None

    @classmethod
    def for_settings(cls, settings: Any) -> IdentityRules:
        """Rules for a store's settings: its ``identify`` table if the settings carry one."""
        region = getattr(settings, "default_region", None) or "DE"
        table = getattr(settings, "identify", None)
        if isinstance(table, dict) and table:
            return cls.from_mapping(table, source="settings.identify", default_region=region)
        return cls(default_region=region)
