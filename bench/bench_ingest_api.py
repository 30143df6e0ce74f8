"""Event API throughput: /v1/batch driven from a separate process for 60 s (10 s with --quick).

The server (`python -m xrm.api`, one uvicorn process owning a fresh store) and the load generator
(this module run as a script: asyncio + httpx, each request a batch of 100 Segment calls with
unique messageIds; either N keep-alive connections in a closed loop, or an open loop offering a
fixed rate) are separate processes on the same machine, so they share its cores. Every 200 means
committed and resolved to a profile. The visitors come back:
20,000 people, each with one userId and anonymousId; some identify calls carry an e-mail.

Target (issue 5): 10,000 events/s sustained on 2 cores with p99 under 100 ms. RudderStack
publishes about 2,700 events/s on 8 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._harness import ROOT, Section, machine_line, serve

__all__ = ["run"]

PER_BATCH = 100
PEOPLE = 20_000
TEMPLATES = 200
MARK = "@@R@@"


def _templates() -> list[str]:
    """Request bodies with a placeholder for the request number (so every messageId is unique)."""
    out = []
    for k in range(TEMPLATES):
        batch = []
        for e in range(PER_BATCH):
            who = (k * 7919 + e * 104_729) % PEOPLE
            ev: dict[str, Any] = {
                "messageId": f"r{MARK}-e{e}", "userId": f"user-{who}", "anonymousId": f"anon-{who}",
                "timestamp": "2024-05-01T12:00:00.000Z",
                "context": {"ip": "10.1.2.3", "locale": "de-DE",
                            "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Firefox/120.0"},
            }
            if e % 10 == 0:
                ev |= {"type": "identify", "traits": {"email": f"kunde{who}@beispiel-mail.de"}}
            elif e % 3 == 0:
                ev |= {"type": "page", "name": "Kaffee", "properties": {"url": "https://shop.example/kaffee"}}
            else:
                ev |= {"type": "track", "event": "Product Viewed",
                       "properties": {"sku": f"K-{e}", "price": 4.5, "category": "Kaffee"}}
            batch.append(ev)
        out.append(json.dumps({"batch": batch}, separators=(",", ":")))
    return out


async def _load(url: str, seconds: float, connections: int, warmup: float) -> dict[str, Any]:
    import asyncio

    import httpx

    templates = _templates()
    latencies: list[float] = []
    counter = {"next": 0, "events": 0, "errors": 0}
    headers = {"content-type": "application/json", "authorization": "Basic YmVuY2g6"}  # bench:

    async def worker(client: httpx.AsyncClient, until: float, record: bool) -> None:
        while time.perf_counter() < until:
            r = counter["next"]
            counter["next"] += 1
            body = templates[r % TEMPLATES].replace(MARK, str(r)).encode()
            t = time.perf_counter()
            try:
                resp = await client.post("/v1/batch", content=body, headers=headers)
                ok = resp.status_code == 200
            except httpx.HTTPError:
                ok = False
            if record:
                if ok:
                    latencies.append(time.perf_counter() - t)
                    counter["events"] += PER_BATCH
                else:
                    counter["errors"] += 1

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        if warmup:
            end = time.perf_counter() + warmup
            await asyncio.gather(*(worker(client, end, False) for _ in range(connections)))
        start, cpu = time.perf_counter(), time.process_time()
        end = start + seconds
        await asyncio.gather(*(worker(client, end, True) for _ in range(connections)))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    latencies.sort()

    def pct(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000

    return {
        "seconds": elapsed, "requests": len(latencies), "events": counter["events"],
        "errors": counter["errors"], "events_per_s": counter["events"] / elapsed,
        "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "sent_total": counter["next"],
        "loadgen_cpu_s": cpu,
    }


async def _load_rate(url: str, seconds: float, rate: float, warmup: float) -> dict[str, Any]:
    """Open loop: requests sent on a fixed schedule (``rate`` events/s offered), whatever the answers.

    A closed loop of N connections measures saturation: its latency is N x 100 events / events per
    second (Little's law), so at 16 connections p99 under 100 ms would need 16,000 events/s. The
    target (10,000 events/s sustained with p99 under 100 ms) is a latency at a given rate: this
    loop offers that rate and times each request from when it was due, not from when it went out,
    so a server (or generator) that falls behind is charged the wait (no coordinated omission)."""
    import asyncio

    import httpx

    templates = _templates()
    latencies: list[float] = []
    counter = {"events": 0, "errors": 0, "late": 0, "due": 0}
    headers = {"content-type": "application/json", "authorization": "Basic YmVuY2g6"}
    interval = PER_BATCH / rate
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one(r: int, due: float, record: bool) -> None:
            body = templates[r % TEMPLATES].replace(MARK, str(r)).encode()
            try:
                ok = (await client.post("/v1/batch", content=body, headers=headers)).status_code == 200
            except httpx.HTTPError:
                ok = False
            if record:
                if ok:
                    latencies.append(time.perf_counter() - due)
                    counter["events"] += PER_BATCH
                else:
                    counter["errors"] += 1

        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        measured, cpu, r = start + warmup, None, 0
        end = measured + seconds
        while True:
            due = start + r * interval
            if due >= end:
                break
            if cpu is None and due >= measured:
                cpu = time.process_time()
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -interval:
                counter["late"] += 1  # the generator itself was behind schedule (charged as latency)
            counter["due"] += due >= measured
            t = asyncio.create_task(one(r, due, due >= measured))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            r += 1
        # A server that cannot keep up would leave a backlog to drain for minutes: wait 10 s at
        # most, and count what is still unanswered then as errors.
        _, pending = await asyncio.wait(tasks, timeout=10) if tasks else (set(), set())
        for t in pending:
            t.cancel()
        counter["errors"] += len(pending)
        elapsed = time.perf_counter() - measured  # the schedule's span, then the last answers
        cpu = time.process_time() - (cpu or 0.0)
    latencies.sort()

    def pct(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000

    return {
        "seconds": elapsed, "requests": len(latencies), "events": counter["events"],
        "errors": counter["errors"], "events_per_s": counter["events"] / seconds,  # over the schedule
        "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "max_ms": pct(1.0),
        "sent_total": r, "due_measured": counter["due"], "loadgen_cpu_s": cpu,
        "generator_late": counter["late"],
    }


def _server_pid() -> int:
    """The ``python -m xrm.api`` child of this process (started by ``serve``)."""
    me = str(os.getpid())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2:].split()[1] == me and b"xrm.api" in cmd:
            return int(pid)
    raise RuntimeError("the xrm serve process was not found")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads (DuckDB's too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _one_run(seconds: float, connections: int, warmup: float, rate: float = 0) -> dict[str, Any]:
    """One fresh server and store; ``connections`` in a closed loop, or ``rate`` events/s offered."""
    import httpx

    folder = Path(tempfile.mkdtemp(prefix="xrm-bench-api-"))
    store = folder / "xrm.duckdb"
    # One DuckDB thread: the writer issues small statements, and the two cores are shared with
    # the HTTP side and the load generator (measured: about 20% more events/s than the default).
    with serve(store, {"XRM_MEMORY_LIMIT": "2GB", "XRM_THREADS": "1"}) as url:
        pid = _server_pid()
        load = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_ingest_api", url, str(seconds), str(connections),
             str(warmup), str(rate)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        # The server's CPU over the measured span only (after start-up and the warm-up).
        time.sleep(warmup)
        cpu0 = _cpu_s(pid)
        try:
            out, _ = load.communicate(timeout=seconds + warmup + 300)
        finally:
            if load.poll() is None:
                load.kill()
        cpu = _cpu_s(pid) - cpu0
        if load.returncode:
            raise RuntimeError(f"the load generator failed (exit {load.returncode})")
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        result["server_cpu_s"] = cpu
        result["writer"] = httpx.get(url + "/healthz", timeout=10).json()["writer"]
    from xrm.store import Store

    with Store.open(store) as s:
        stored = s.count("events")
        resolved = s.count("event_profiles")
    result["stored"], result["resolved"] = stored, resolved
    return result


_HEADER = (
    "| load | load 1 min | events/s | requests | p50 ms | p95 ms | p99 ms | errors | events/commit "
    "| server CPU µs/event | load gen. CPU µs/event | resolved known/new/1-by-1 | stored/resolved |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
)


# Offered rate of the open-loop row (events/s): the target's rate.
RATE = 10_000


def run(quick: bool) -> Section:
    seconds, warmup = (10.0, 2.0) if quick else (60.0, 5.0)
    rows, met, ceilings, fold_notes = [], [], [], []
    for connections, rate in [(4, 0), (16, 0), *([] if quick else [(32, 0)]), (0, RATE)]:
        label = f"{rate:,}/s offered" if rate else f"{connections} conn."
        load = os.getloadavg()[0]
        r = _one_run(seconds, connections, warmup, rate)
        w = r["writer"]
        fold_notes.append(f"{label}: {w.get('folds', 0)} folds, "
                          f"{1000 * w.get('fold_seconds', 0.0):,.0f} ms in all, beside the commits; "
                          f"slowest group writes {w.get('slowest_ms', [])} ms")
        answered = r["requests"] == r["due_measured"] if rate else True
        if r["events_per_s"] >= RATE * 0.995 and r["p99_ms"] < 100 and not r["errors"] and answered:
            met.append(label)
        per_event = (r["server_cpu_s"] + r["loadgen_cpu_s"]) / max(r["events"], 1)
        ceilings.append(f"{label}: {2 / per_event:,.0f} events/s" if per_event else "")
        rows.append(
            f"| {label} | {load:.1f} | {r['events_per_s']:,.0f} | {r['requests']:,} | "
            f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} | "
            f"{w['mean_group_events']:,.0f} | "
            f"{1e6 * r['server_cpu_s'] / max(r['events'], 1):.0f} | "
            f"{1e6 * r['loadgen_cpu_s'] / max(r['events'], 1):.0f} | "
            f"{w['resolved_known']:,} / {w['resolved_new']:,} / {w['resolved_one_by_one']:,} | "
            f"{r['stored']:,} / {r['resolved']:,} |"
        )
    folds = "; ".join(fold_notes)
    body = f"""
Machine: {machine_line()}. Server (DuckDB threads = 1) and load generator share these cores.

Each request: POST /v1/batch with {PER_BATCH} calls (track, page, identify), about 40 KB; answered
200 only after the group commit that holds its events and their profiles. Measured for
{seconds:.0f} s after a {warmup:.0f} s warm-up. "N conn.": a closed loop of N connections, each
sending its next request when the last is answered (saturation: by Little's law its latency is
N x {PER_BATCH} / events per second, so 16 connections under 100 ms would need 16,000 events/s).
"{RATE:,}/s offered": an open loop, one request due every {1000 * PER_BATCH / RATE:.0f} ms whatever
the answers, each timed from when it was due (a server that falls behind is charged the wait;
unanswered 10 s after the schedule ends counts as an error): the target's rate and latency at once.

{_HEADER}
{chr(10).join(rows)}

CPU per event: the server process (all threads, over the measured span) and the load generator,
from their CPU clocks, so these figures depend far less than events/s on what else the machine
runs. Two cores of their own would carry at most 2 CPU-seconds / (server + load generator CPU
per event): {"; ".join(ceilings)} (an upper bound derived from CPU time, not a measurement;
the writer is one thread, so it is also bounded by one core).

Verdict: {f"target met ({', '.join(met)})" if met else
          "**target not met** in any row (see the table for the gap)"}: {RATE:,} events/s (at
least 99.5% of it, all answered 200) with p99 under 100 ms.

Target (issue 5): 10,000 events/s on 2 cores with p99 < 100 ms. Plainly valid events skip the
loader's validation SQL (checked in Python, every column taken from the text by one
json_transform); identifiers' profiles are remembered by the writer. Where the time goes: the
writer (one thread) runs seven statements per group commit (BEGIN, events, a look-up that checks
the remembered owners, identity links, event profiles, an append of the counters seen to
identity_activity, COMMIT), each with a fixed cost whatever the number of events in it, so
throughput grows with concurrency (larger group commits) while latency grows with it too: with N
connections of 100 events each in flight, p50 is about N x 100 / events per second. The counters
(identifiers' n_seen and last_seen, profiles' updated_at, evidence) are folded in every 5-30 s
on a thread of their own beside the commits, not updated in place by every commit ({folds}).
messageId de-duplication needs no look-up (a plain INSERT; a retry fails it on the key and the
group is written again, asking),
and DuckDB checkpoints at 128 MiB of log rather than 16 (a checkpoint stalls every request of
its commit: at 10,000 events/s one every ~20 s; the slowest group writes above show them).
Per statement in process, docs/api.md ("Throughput").
"""
    return Section("Event API ingestion (xrm serve, /v1/batch)", body)


if __name__ == "__main__":
    import asyncio

    target, secs, conns, warm = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    offered = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    print(json.dumps(asyncio.run(_load_rate(target, secs, offered, warm) if offered
                                 else _load(target, secs, conns, warm))))
