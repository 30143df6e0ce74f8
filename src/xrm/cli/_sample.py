"""`xrm sample`: write the sample business (source files, events, ground truth, manifest)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from xrm.cli._output import console, emit, fail_cleanly, progress_bar

__all__ = ["sample"]


def sample(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the sample business into.")] = Path(
        "sample"
    ),
    customers: Annotated[int, typer.Option(help="Customers (ground-truth persons) to draw.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives byte-identical files.")] = 42,
    years: Annotated[float, typer.Option(help="Length of the history in years.")] = 2.5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Write the sample business's source files, events and ground truth, with a manifest."""
    with fail_cleanly(as_json):
        from xrm.sample import generate_sample

        began = time.perf_counter()
        with progress_bar(disable=as_json, unit="customers") as bar:
            task = bar.add_task("sample", total=customers, rate="")

            def advance(done: int, _total: int) -> None:
                rate = done / max(time.perf_counter() - began, 1e-9)
                bar.update(task, completed=done, rate=f"{rate:,.0f} customers/s")

            manifest = generate_sample(out, customers=customers, seed=seed, years=years, progress=advance)
        seconds = time.perf_counter() - began
        data = {
            "out": str(out),
            "seconds": round(seconds, 2),
            "customers_per_s": round(customers / seconds, 1),
            "events_per_s": round(manifest["events"] / seconds, 1),
            "manifest": manifest,
        }

        def render(d: dict[str, Any]) -> None:
            m = d["manifest"]
            console.print(
                f"wrote {m['customers']:,} customers and {m['events']:,} events to {d['out']} "
                f"in {d['seconds']:.1f} s ({d['customers_per_s']:,.0f} customers/s, "
                f"{d['events_per_s']:,.0f} events/s); manifest: {d['out']}/manifest.json",
                highlight=False,
            )

        emit(data, as_json, render)
