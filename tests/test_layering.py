"""Imports flow one way, downward (ARCHITECTURE.md): a capability never imports a room above it."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "xrm"

# Higher rank = higher room. A module may import its own room or rooms of strictly lower rank.
RANK = {
    "exceptions": 0,
    "config": 1,
    "store": 2,
    "ingest": 3,
    "sample": 3,
    "identify": 4,
    "differentiate": 5,
    "customize": 6,
    "network": 6,
    "interact": 7,
    "pipeline": 8,
    "web": 9,  # the console; the API mounts it, the CLI manages its users
    "api": 10,
    "cli": 11,
}


def _room(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "xrm" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_imports_flow_downward():
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent)
        own = rel.parts[1].removesuffix(".py")
        if own not in RANK:
            continue
        for line, module in _imports(path):
            target = _room(module)
            if target is None or target == own or target not in RANK:
                continue
            if RANK[target] >= RANK[own]:
                problems.append(f"{rel}:{line} imports {module} ({own} may not import {target})")
    assert not problems, "upward or sideways imports:\n" + "\n".join(problems)


def test_every_room_is_ranked():
    rooms = {p.name.removesuffix(".py") for p in SRC.iterdir() if not p.name.startswith("_")}
    rooms.discard("py.typed")
    assert rooms <= set(RANK), f"rooms without a rank in test_layering: {rooms - set(RANK)}"
