"""What each relationship type costs to keep and how much value it carries (Return on Network).

Defaults ship in ``network.toml`` beside this module; a file of the same shape overrides them.

    >>> from xrm.network import RelationshipEconomics
    >>> RelationshipEconomics.load().cost["referred"]
    10.0
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from xrm.exceptions import ConfigError
from xrm.network._types import REL_TYPES

__all__ = ["RelationshipEconomics"]


@dataclass(frozen=True)
class RelationshipEconomics:
    """Cost per relationship and attribution rate per relationship type."""

    cost: dict[str, float] = field(default_factory=dict)
    attribution: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | str | None = None) -> RelationshipEconomics:
        """The shipped defaults, overridden type by type by the TOML file at ``path``."""
        text = resources.files("xrm.network").joinpath("network.toml").read_text(encoding="utf-8")
        econ = cls._parse(tomllib.loads(text), "xrm/network/network.toml")
        if path is None:
            return econ
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"{p}: relationship economics file not found; pass an existing TOML file"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc}); see docs/network.md for the shape") from None
        mine = cls._parse(data, str(p))
        return cls({**econ.cost, **mine.cost}, {**econ.attribution, **mine.attribution})

    @classmethod
    def _parse(cls, data: dict[str, Any], origin: str) -> RelationshipEconomics:
        problems: list[str] = []
        cost: dict[str, float] = {}
        attribution: dict[str, float] = {}
        types = data.get("types", {})
        if not isinstance(types, dict):
            raise ConfigError(f"{origin}: [types] must be a table of relationship types")
        for name, spec in types.items():
            if name not in REL_TYPES:
                problems.append(f"  [types.{name}]: unknown relationship type; known: {', '.join(REL_TYPES)}")
                continue
            for key, target in (("cost", cost), ("attribution", attribution)):
                if key not in spec:
                    continue
                value = spec[key]
                if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                    problems.append(f"  types.{name}.{key} = {value!r}: must be a number >= 0")
                    continue
                target[name] = float(value)
            for key in set(spec) - {"cost", "attribution"}:
                problems.append(f"  types.{name}.{key}: unknown key; use cost and attribution")
        if problems:
            raise ConfigError(f"{origin}: invalid relationship economics:\n" + "\n".join(problems))
        return cls(cost, attribution)
