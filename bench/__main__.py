"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks, write BENCHMARKS.md.

Each ``bench/bench_*.py`` module has ``run(quick: bool) -> Section``; it runs xrm and its peer on
the same data in one run.  A failing benchmark is reported in the file, not hidden.
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback
from pathlib import Path

from bench._harness import ROOT, Section, machine_line


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names, e.g. load")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()

    names = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    if args.only:
        unknown = set(args.only) - set(names)
        if unknown:
            parser.error(f"unknown benchmark(s) {sorted(unknown)}; known: {names}")
        names = [n for n in names if n in args.only]

    sections: list[Section] = []
    for name in names:
        print(f"== bench {name} ==", flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            sections.append(module.run(args.quick))
        except Exception:
            sections.append(Section(name, "**failed**:\n\n```\n" + traceback.format_exc() + "```"))
        print(f"   {time.perf_counter() - start:.0f} s", flush=True)

    header = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`), or one section at a time (`--only NAME`): each",
        "section says the machine load of its own run. The last write:",
        f"{machine_line()}.",
        "Figures are medians of repeated runs, each in a fresh process; the spread is given where",
        "there was more than one run. The machine is shared and noisy: compare ratios, not seconds.",
        "",
    ]
    body = [f"## {s.title}\n\n{s.body.strip()}\n" for s in sections]
    if args.only and args.out.exists():
        # Keep the other benchmarks' sections from the previous full run.
        # A section run again keeps its place; a new one goes at the end.
        fresh = {s.title: b for s, b in zip(sections, body, strict=True)}
        old = args.out.read_text(encoding="utf-8").split("\n## ")[1:]
        kept = [fresh.pop(title) if (title := chunk.split("\n", 1)[0]) in fresh
                else f"## {chunk.strip()}\n" for chunk in old]
        body = kept + list(fresh.values())
    args.out.write_text("\n".join(header) + "\n" + "\n".join(body), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
