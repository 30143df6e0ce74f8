"""Sample: a realistic, seeded sample business with ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xrm.exceptions import NotYetImplemented

__all__ = ["generate_sample"]


def generate_sample(
    out_dir: Path, *, customers: int = 20_000, seed: int = 42, show_progress: bool = True
) -> dict[str, Any]:
    raise NotYetImplemented("the sample business is not built yet (issue 2)")
