"""Event API throughput: /v1/batch driven from a separate process for 60 s (10 s with --quick).

The server (`python -m xrm.api`, one uvicorn process owning a fresh store) and the load generator
(this module run as a script: bench/_ingest_load.py, a raw HTTP/1.1 client on uvloop; each
request a gzip-compressed batch of 100 Segment calls with unique messageIds, built before the
timed run; either N keep-alive connections in a closed loop, or an open loop offering a fixed
rate) are separate processes on the same machine, so they share its cores. Every 200 means
committed and resolved to a profile. The visitors come back:
20,000 people, each with one userId and anonymousId; some identify calls carry an e-mail.

Target (issue 5): 10,000 events/s sustained on 2 cores with p99 under 100 ms. RudderStack
publishes about 2,700 events/s on 8 cores.

Shorter A/B runs: ``XRM_BENCH_INGEST_ROWS`` picks the rows (comma-separated: ``16`` a closed loop
of 16 connections, ``3000r`` an open loop offering 3,000 events/s), ``XRM_BENCH_INGEST_SECONDS``
the measured span.

    XRM_BENCH_INGEST_ROWS=10000r XRM_BENCH_INGEST_SECONDS=30 python -m bench --only ingest_api
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

__all__ = ["plan", "run"]

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


# Requests built beforehand for a closed loop: enough for this many events/s over the whole run
# (session 6's best was 10,432); one that runs out is an error, not a silent reuse of messageIds.
CLOSED_MAX_RATE = 30_000
MEASURING = "@@MEASURING@@"  # the generator's line when its measured span starts
AUTH = "Basic YmVuY2g6"  # "bench:" (the open server accepts any key)


def _requests(url: str, count: int) -> list[bytes]:
    """``count`` whole requests (head and gzip body), every messageId unique (request r: ``r{r}-e{k}``)."""
    from bench._ingest_load import build_requests

    templates = [t.encode() for t in _templates()]
    mark = MARK.encode()
    bodies = (templates[r % TEMPLATES].replace(mark, str(r).encode()) for r in range(count))
    return build_requests(url, "/v1/batch", list(bodies), auth=AUTH)


async def _load(url: str, seconds: float, connections: int, warmup: float, rate: float = 0) -> dict[str, Any]:
    """A closed loop of ``connections`` clients, or (``rate`` > 0) an open loop offering ``rate``
    events/s; the requests are built first, outside the generator's measured CPU (``build_s``).

    A closed loop of N connections measures saturation: its latency is N x 100 events / events per
    second (Little's law), so at 16 connections p99 under 100 ms would need 16,000 events/s. The
    target (10,000 events/s sustained with p99 under 100 ms) is a latency at a given rate: the open
    loop offers that rate and times each request from when it was due (no coordinated omission)."""
    import math

    from bench._ingest_load import closed_loop, open_loop

    cpu0 = time.process_time()
    count = math.ceil((seconds + warmup) * (rate or CLOSED_MAX_RATE) / PER_BATCH) + 1
    requests = _requests(url, count)
    build = time.process_time() - cpu0
    def measuring() -> None:  # the parent reads the server's CPU clock from here on
        print(MEASURING, flush=True)

    if rate:
        r = await open_loop(url, requests, rate_rps=rate / PER_BATCH, seconds=seconds, warmup=warmup,
                            events_per_request=PER_BATCH, on_measure=measuring)
    else:
        r = await closed_loop(url, requests, connections=connections, seconds=seconds, warmup=warmup,
                              events_per_request=PER_BATCH, on_measure=measuring)
    r["build_s"] = build
    r["request_bytes"] = sum(map(len, requests)) / len(requests)
    return r


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
        # The server's CPU over the generator's measured span only (not start-up, the building of
        # the requests, or the warm-up).
        assert load.stdout is not None
        cpu0 = None
        try:
            for line in load.stdout:
                if line.strip() == MEASURING:
                    cpu0 = _cpu_s(pid)
                    break
            out, _ = load.communicate(timeout=seconds + warmup + 300)
        finally:
            if load.poll() is None:
                load.kill()
        if load.returncode or cpu0 is None:
            raise RuntimeError(f"the load generator failed (exit {load.returncode})")
        cpu = _cpu_s(pid) - cpu0
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
    "| load | load 1 min | events/s answered | requests | p50 ms | p95 ms | p99 ms | errors "
    "| events/commit | server CPU µs/event | load gen. CPU µs/event | resolved known/new/1-by-1 "
    "| stored/resolved |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
)


# The target's rate (events/s) and the open-loop rows: half of it, and it.
RATE = 10_000
RATES = (5_000, RATE)
CONNECTIONS = (4, 16, 32)


def _row(label: str, load: float, r: dict[str, Any]) -> str:
    w, n = r["writer"], max(r["events"], 1)
    return (
        f"| {label} | {load:.1f} | {r['events_per_s']:,.0f} | {r['requests']:,} | "
        f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} | "
        f"{w['mean_group_events']:,.0f} | {1e6 * r['server_cpu_s'] / n:.0f} | "
        f"{1e6 * r['loadgen_cpu_s'] / n:.1f} | "
        f"{w['resolved_known']:,} / {w['resolved_new']:,} / {w['resolved_one_by_one']:,} | "
        f"{r['stored']:,} / {r['resolved']:,} |"
    )


def _met(r: dict[str, Any]) -> bool:
    """The target: the offered RATE answered (99.5% of it, every due request 200) at p99 < 100 ms."""
    return (r["events_per_s"] >= RATE * 0.995 and r["p99_ms"] < 100 and not r["errors"]
            and r["requests"] == r["due_measured"])


def plan(quick: bool, env: dict[str, str]) -> tuple[float, float, list[tuple[int, float]]]:
    """(seconds, warm-up, rows): each row (connections, 0) or (0, events/s offered)."""
    seconds, warmup = (10.0, 2.0) if quick else (60.0, 5.0)
    seconds = float(env.get("XRM_BENCH_INGEST_SECONDS", seconds))
    rows = [(c, 0.0) for c in (CONNECTIONS[:2] if quick else CONNECTIONS)]
    rows += [(0, float(rate)) for rate in RATES]
    if picked := [x.strip() for x in env.get("XRM_BENCH_INGEST_ROWS", "").split(",") if x.strip()]:
        rows = [(0, float(x[:-1])) if x.endswith("r") else (int(x), 0.0) for x in picked]
    return seconds, warmup, rows


def run(quick: bool) -> Section:
    seconds, warmup, rows_planned = plan(quick, dict(os.environ))
    rows, met, ceilings, fold_notes = [], [], [], []
    for connections, rate in rows_planned:
        label = f"{rate:,.0f}/s offered" if rate else f"{connections} conn."
        load = os.getloadavg()[0]
        r = _one_run(seconds, connections, warmup, rate)
        w = r["writer"]
        cks = w.get("checkpoints", 0)
        fold_notes.append(f"{label}: {w.get('folds', 0)} folds, "
                          f"{1000 * w.get('fold_seconds', 0.0):,.0f} ms in all, beside the commits; "
                          f"slowest group writes {w.get('slowest_ms', [])} ms; {cks} checkpoints, "
                          f"{1000 * w.get('checkpoint_seconds', 0.0) / max(cks, 1):,.0f} ms each on average, "
                          f"the slowest {w.get('slowest_checkpoints_ms', [])} ms; "
                          f"{w.get('detours', 0)} with a detour: {w.get('events_landed', 0):,} events "
                          f"landed in {w.get('groups_landed', 0):,} groups, moved in "
                          f"{w.get('landing_moves', 0)} moves")
        if rate == RATE and _met(r):
            met.append(label)
        per_event = (r["server_cpu_s"] + r["loadgen_cpu_s"]) / max(r["events"], 1)
        ceilings.append(f"{label}: {2 / per_event:,.0f} events/s" if per_event else "")
        rows.append(_row(label, load, r))
    folds = "; ".join(fold_notes)
    size = r["request_bytes"]
    body = f"""
Machine: {machine_line()}. Server (DuckDB threads = 1) and load generator share these cores.

Each request: POST /v1/batch with {PER_BATCH} calls (track, page, identify), about 32 KB of JSON
sent gzip-compressed as Segment's clients do ({size:,.0f} bytes on the wire with its head); answered
200 only after a commit: the group commit that holds its events and their profiles or, while
the store is being checkpointed, the landing file's (api_checkpoint_detour; docs/api.md). Load generator:
bench/_ingest_load.py, a raw HTTP/1.1 client on uvloop in its own process, every request's bytes
built before the run (messageIds unique), keep-alive connections (open loop: up to 64, opened as
needed), one callback per answer; its CPU is counted over the measured span only. Measured for
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
and the writer checkpoints between groups at 32 MiB of log (about 0.6 MB per 1,000 events, so at
10,000 events/s one every ~5 s; every commit waits for it, and the requests queued meanwhile:
the checkpoint times above), or in smaller steps with `api_checkpoint_step_mib`.
Per statement in process, docs/api.md ("Throughput").
"""
    return Section("Event API ingestion (xrm serve, /v1/batch)", body)


if __name__ == "__main__":
    import uvloop  # uvicorn[standard] brings it: a cheaper event loop for the generator too

    target, secs, conns, warm = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    offered = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    print(json.dumps(uvloop.run(_load(target, secs, conns, warm, offered))))
