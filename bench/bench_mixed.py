"""Mixed load: ingestion, decisions and profile reads on one `xrm serve` for 10 minutes (60 s --quick).

The sample business (``xrm demo --no-serve``, 2,000 customers, offers added) is served by a real
``xrm serve`` process (bench/_harness.serve). A load generator in a separate process (this module
run as a script: asyncio + httpx, keep-alive connections) keeps a fixed number of clients of each
kind busy, closed loop (each sends its next request when the last is answered), so the figures are
what the server does with all three at once on the machine it has:

- ingestion: POST /v1/batch, 50 Segment calls each (track, page, identify; unique messageIds),
  with a write key;
- decisions: POST /v1/decide for known customers (userId, e-mail, profileId) and unknown
  visitors, on email and web placements, with a read key;
- profile reads: GET /v1/profiles/{id} (audited, with a purpose), with the same read key.

Reported per kind: requests answered, per second, p50/p99, errors by status or exception (must
be 0). (An open loop at fixed rates was tried first: on the shared 2 cores, loaded 10x over by
other work, no rate worth measuring was sustained and the client's backlog drowned the figures.) The
server's resident memory (VmRSS) is sampled every 10 s; growth is the mean of the last minute
against the first (last and first 20 s with --quick). Afterwards the store is opened: every
acknowledged event must be stored.

    python -m bench --only mixed [--quick]
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._harness import ROOT, Section, machine_line, serve

__all__ = ["run"]

CUSTOMERS = 2_000
PER_BATCH = 50
CLIENTS = {"ingest": 2, "decide": 4, "read": 2}  # concurrent closed-loop clients, each kind
SAMPLE_S = 10.0
# Distinct visitors the batches draw from. The server's identifier caches (bounded, 200,000 entries
# each) fill as new visitors arrive: a smaller pool fills them early, separating that growth.
VISITORS = int(os.environ.get("XRM_BENCH_MIXED_VISITORS", "50000"))


# -- the load generator (a separate process) ---------------------------------------------------

def _batch(r: int, rng: random.Random) -> bytes:
    calls = []
    for e in range(PER_BATCH):
        who = rng.randrange(VISITORS)
        ev: dict[str, Any] = {"messageId": f"mix-{r}-{e}", "userId": f"visitor-{who}",
                              "anonymousId": f"anon-{who}", "timestamp": "2024-05-01T12:00:00.000Z"}
        if e % 10 == 0:
            ev |= {"type": "identify", "traits": {"email": f"besucher{who}@beispiel-mail.de"}}
        elif e % 3 == 0:
            ev |= {"type": "page", "name": "Kaffee", "properties": {"url": "https://shop.example/kaffee"}}
        else:
            ev |= {"type": "track", "event": "Product Viewed", "properties": {"sku": f"K-{e}", "price": 4.5}}
        calls.append(ev)
    return json.dumps({"batch": calls}, separators=(",", ":")).encode()


async def _drive(url: str, seconds: float, warmup: float, write: str, read: str,
                 bodies: list[dict[str, Any]], pids: list[int]) -> dict[str, Any]:
    import asyncio

    import httpx

    rng = random.Random(11)
    decide_bodies = [json.dumps(b).encode() for b in bodies]
    stats: dict[str, dict[str, Any]] = {k: {"lat": [], "errors": {}, "sent": 0} for k in CLIENTS}
    acked = [0]
    counter = {k: 0 for k in CLIENTS}
    json_ct = {"content-type": "application/json"}
    read_h = {"authorization": f"Bearer {read}", "x-xrm-purpose": "bench mixed load"}
    write_h = {**json_ct, "authorization": f"Bearer {write}"}

    def request(kind: str, i: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        if kind == "ingest":
            return "POST", "/v1/batch", _batch(i, rng), write_h
        if kind == "decide":
            return "POST", "/v1/decide", decide_bodies[i % len(decide_bodies)], {**json_ct, **read_h}
        return "GET", f"/v1/profiles/{pids[i % len(pids)]}", None, read_h

    async def one(client: httpx.AsyncClient, kind: str, record: bool) -> None:
        s = stats[kind]
        method, path, body, headers = request(kind, counter[kind])
        counter[kind] += 1
        t = time.perf_counter()
        try:
            r = await client.request(method, path, content=body, headers=headers)
            code = str(r.status_code)
        except httpx.HTTPError as exc:
            code = type(exc).__name__
        if code == "200" and kind == "ingest":
            acked[0] += PER_BATCH
        if not record:
            return
        s["sent"] += 1
        if code == "200":
            s["lat"].append((time.perf_counter() - t) * 1000)
        else:
            s["errors"][code] = s["errors"].get(code, 0) + 1

    async def client_loop(client: httpx.AsyncClient, kind: str, until: float, record: bool) -> None:
        while time.perf_counter() < until:
            await one(client, kind, record)

    async def phase(client: httpx.AsyncClient, until: float, record: bool) -> None:
        await asyncio.gather(*(client_loop(client, kind, until, record)
                               for kind, n in CLIENTS.items() for _ in range(n)))

    total = sum(CLIENTS.values())
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=total)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await phase(client, time.perf_counter() + warmup, False)
        start = time.perf_counter()
        await phase(client, start + seconds, True)
        elapsed = time.perf_counter() - start
    out: dict[str, Any] = {"seconds": elapsed, "acked_events": acked[0], "kinds": {}}
    for kind, s in stats.items():
        lat = sorted(s["lat"])

        def pct(q: float, lat: list[float] = lat) -> float:
            return lat[min(len(lat) - 1, int(len(lat) * q))] if lat else float("nan")

        out["kinds"][kind] = {"sent": s["sent"], "ok": len(lat), "per_s": len(lat) / elapsed, "p50": pct(0.5),
                              "p99": pct(0.99), "max": lat[-1] if lat else float("nan"),
                              "errors": s["errors"]}
    return out


# -- the benchmark (this process: store, server, memory samples) -------------------------------

def _keys(store: Path) -> tuple[str, str]:
    from xrm.api._keys import create_key
    from xrm.store import Store

    with Store.open(store) as s:
        return (create_key(s, "bench-mixed-write", "write", rate_per_s=1e6, burst=10**6)[1],
                create_key(s, "bench-mixed-read", "read", rate_per_s=1e6, burst=10**6)[1])


def _events(store: Path) -> int:
    from xrm.store import Store

    with Store.open(store, read_only=True) as s:
        return int(s.sql("SELECT count(*) FROM events WHERE message_id LIKE 'mix-%'").fetchall()[0][0])


def run(quick: bool) -> Section:
    from bench.bench_decide import _identities, make_store

    seconds, warmup = (60.0, 5.0) if quick else (600.0, 10.0)
    seconds = float(os.environ.get("XRM_BENCH_MIXED_S", seconds))  # diagnosis runs of a few minutes
    window = 20.0 if seconds < 180 else 60.0
    limit = os.environ.get("XRM_BENCH_MIXED_MEMORY_LIMIT", "2GB")
    folder = Path(tempfile.mkdtemp(prefix="xrm-bench-mixed-"))
    try:
        t0 = time.perf_counter()
        store = make_store(folder, CUSTOMERS)
        built = time.perf_counter() - t0
        bodies = _identities(store, 5_000)
        pids = sorted({int(b["profileId"]) for b in bodies if "profileId" in b})
        (folder / "load.json").write_text(json.dumps({"bodies": bodies, "pids": pids}), encoding="utf-8")
        write, read = _keys(store)
        load_before = os.getloadavg()
        probe = folder / "memory.jsonl"
        env = {"XRM_MEMORY_LIMIT": limit, "XRM_THREADS": "1", "XRM_MEMPROBE_S": str(SAMPLE_S)}
        with serve(store, env, launcher=[sys.executable, "-m", "bench._memprobe", str(probe)]) as url:
            began = time.time()
            out = subprocess.run(
                [sys.executable, "-m", "bench.bench_mixed", url, str(seconds), str(warmup), write, read,
                 str(folder / "load.json")],
                cwd=ROOT, capture_output=True, text=True, timeout=seconds + warmup + 600, check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"load generator failed:\n{out.stderr[-3000:]}")
            result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        load_after = os.getloadavg()
        samples = _samples(probe, began)
        if os.environ.get("XRM_BENCH_MIXED_PROBE_OUT") and probe.exists():  # the raw samples, kept
            shutil.copy(probe, os.environ["XRM_BENCH_MIXED_PROBE_OUT"])
        stored = _events(store)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Section("Mixed load (xrm serve: ingestion + decisions + profile reads)",
                   _report(result, samples, stored, seconds, warmup, window, built, load_before, load_after,
                           limit))


def _samples(probe: Path, began: float) -> list[dict[str, Any]]:
    """The server's memory samples (bench/_memprobe.py), ``t`` in seconds from the load's start."""
    rows = []
    for line in probe.read_text(encoding="utf-8").splitlines() if probe.exists() else []:
        row = json.loads(line)
        if "rss" in row and row["at"] >= began:
            rows.append(row | {"t": row["at"] - began})
    return rows


def _component(row: dict[str, Any]) -> dict[str, float]:
    """The memory figures of one sample that the report follows (MB, except counts)."""
    duck, mal, py = row.get("duckdb", {}), row.get("malloc", {}), row.get("py", {})
    nan, caches = float("nan"), row.get("caches", {})
    return {"RSS": row["rss"], "anon": row.get("anon", nan), "DuckDB": duck.get("total", nan),
            "store": duck["blocks"] * duck["block_size"] / 2**20 if "blocks" in duck else nan,
            "malloc used": mal.get("used", nan), "malloc free": mal.get("free", nan),
            "Python blocks (k)": py.get("blocks", 0) / 1000,
            "writer caches (k)": sum(v for k, v in caches.items() if k.startswith("IdentifierCache")) / 1000,
            "decide graph (k)": sum(v for k, v in caches.items() if k.startswith("Identities")) / 1000}


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute (nan for fewer than 3)."""
    if len(points) < 3:
        return float("nan")
    mx = statistics.mean(t for t, _ in points)
    my = statistics.mean(v for _, v in points)
    den = sum((t - mx) ** 2 for t, _ in points)
    return 60 * sum((t - mx) * (v - my) for t, v in points) / den if den else float("nan")


def _memory_table(samples: list[dict[str, Any]], seconds: float) -> tuple[str, float]:
    """Per-component memory at about seven points of the run and each one's slope over its second
    half; returns the table and the RSS slope (MB/min)."""
    comps = [(row["t"], _component(row)) for row in samples]
    names = list(comps[0][1])
    marks = [seconds * i / 6 for i in range(7)]
    picked = []
    for mark in marks:
        picked.append(min(comps, key=lambda c: abs(c[0] - mark)))
    head = "| at s | " + " | ".join(names) + " |"
    rule = "|---:|" + "---:|" * len(names)
    rows = [f"| {t:.0f} | " + " | ".join(f"{c[n]:,.0f}" for n in names) + " |" for t, c in picked]
    half = [(t, c) for t, c in comps if t >= seconds / 2]
    slopes = {n: slope([(t, c[n]) for t, c in half]) for n in names}
    rows.append("| MB/min, 2nd half | " + " | ".join(f"{slopes[n]:+.2f}" for n in names) + " |")
    return "\n".join([head, rule, *rows]), slopes["RSS"]


def _report(r: dict[str, Any], samples: list[dict[str, Any]], stored: int, seconds: float,
            warmup: float, window: float, built: float, before: tuple[float, ...],
            after: tuple[float, ...], limit: str = "2GB") -> str:
    names = {"ingest": f"ingestion (POST /v1/batch, {PER_BATCH} calls)",
             "decide": "decisions (POST /v1/decide)", "read": "profile reads (GET /v1/profiles/{id})"}
    rows, errors = [], 0
    for kind, k in r["kinds"].items():
        errs = sum(k["errors"].values())
        errors += errs
        rows.append(f"| {names[kind]} | {CLIENTS[kind]} | {k['sent']:,} | {k['ok']:,} | {k['per_s']:,.1f} | "
                    f"{k['p50']:.1f} | {k['p99']:.1f} | {k['max']:.0f} | {errs} "
                    f"{json.dumps(k['errors']) if errs else ''} |")
    # From the first sample after the warm-up: the server reads its decision caches and DuckDB its
    # indexes on the first requests (start-up, not growth).
    settled = warmup + SAMPLE_S
    first = [m["rss"] for m in samples if settled <= m["t"] <= settled + window]
    last = [m["rss"] for m in samples if m["t"] >= samples[-1]["t"] - window] if samples else []
    growth = (statistics.mean(last) - statistics.mean(first)) if first and last else float("nan")
    rss = ", ".join(f"{m['rss']:.0f}" for m in samples)
    table, rss_slope = _memory_table(samples, seconds) if samples else ("(no samples)", float("nan"))
    visitors = f"; batches from {VISITORS:,} distinct visitors" if VISITORS != 50_000 else ""
    acked = r["acked_events"]
    lost = max(0, acked - stored)
    verdict = []
    verdict.append("errors: none" if errors == 0 else f"**errors: {errors}** (target 0)")
    ingested = r["kinds"]["ingest"]["per_s"] * PER_BATCH
    verdict.append(f"{ingested:,.0f} events/s ingested alongside the decisions and reads")
    verdict.append("no acknowledged event lost" if lost == 0 else f"**{lost:,} acknowledged events lost**")
    verdict.append(
        f"server memory {statistics.mean(first):.0f} MB in the first {window:.0f} s after "
        f"{settled:.0f} s (warm-up and first loads), "
        f"{statistics.mean(last):.0f} MB in the last {window:.0f} s ({growth:+.0f} MB); "
        f"RSS slope over the second half {rss_slope:+.2f} MB/min" if first and last
        else "server memory not sampled"
    )
    return f"""
Machine: {machine_line()}; 1-min load average {before[0]:.1f} before the run, {after[0]:.1f} after
(the machine is shared with other work: latencies are upper bounds). One run of {seconds:.0f} s after
a {warmup:.0f} s warm-up{visitors}. Server: one `xrm serve` process (uvicorn, DuckDB threads = 1, memory_limit
{limit}) on the sample business ({CUSTOMERS:,} customers, made and through the pipeline in {built:.0f} s,
with offers); load generator: a separate process on the same cores, closed loop with the clients
below (each sends its next request when the last is answered; reads and decisions with a read key,
profile reads audited), latency per request.

| kind | clients | sent | answered 200 | per s | p50 ms | p99 ms | max ms | errors |
|---|---:|---:|---:|---:|---:|---:|---:|---|
{chr(10).join(rows)}

Events acknowledged (200, warm-up included): {acked:,}; stored afterwards: {stored:,}; lost: {lost:,}.
Server resident memory (VmRSS, MB) every {SAMPLE_S:.0f} s: {rss}.

Server memory by component (sampled inside the server by bench/_memprobe.py; MB unless said):
RSS and its anonymous part; DuckDB's own accounting (`duckdb_memory()`: buffer pool, indexes,
catalog); the store file's blocks; glibc malloc's bytes in use and kept free inside its heap;
Python's allocated blocks; entries (thousands) in the event writer's identifier caches (bounded at
200,000 per dict) and in the identity graph /v1/decide holds in memory (bounded at 200,000 entries
per map since session 5). Last row: the least-squares slope of each over the run's second half.

{table}

Verdict: {"; ".join(verdict)}.

Batches and profile reads are answered only after a commit (the events; the read's audit row),
decisions before their log is written (in groups, every second): on a machine this loaded the first
two wait for commits of seconds, decisions do not. Memory: growth is reported, not judged. What
grows by design (docs/api.md, "Memory under load"): DuckDB's buffer pool follows the store, which
grows with every batch, up to memory_limit; the event writer's identifier caches fill up to 200,000
entries per dict as new visitors arrive; so does /v1/decide's identity graph, up to 200,000 entries
per map (least recently used dropped first). A rise while those rise does not show a leak; a rise
with all of them flat would.
"""


if __name__ == "__main__":
    import asyncio

    target, secs, warm, wkey, rkey, load_file = sys.argv[1:7]
    data = json.loads(Path(load_file).read_text(encoding="utf-8"))
    print(json.dumps(asyncio.run(_drive(target, float(secs), float(warm), wkey, rkey, data["bodies"],
                                        data["pids"]))))
