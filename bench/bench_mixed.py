"""Mixed load: ingestion, decisions and profile reads on one `xrm serve` for 10 minutes (60 s --quick).

The sample business (``xrm demo --no-serve``, 2,000 customers, offers added) is served by a real
``xrm serve`` process (bench/_harness.serve). A load generator in a separate process (this module
run as a script: asyncio + httpx, keep-alive connections) keeps a fixed number of clients of each
kind busy, closed loop (each sends its next request when the last is answered), so the figures are
what the server does with all three at once on the machine it has:

- ingestion: POST /v1/batch, 50 Segment calls each (track, page, identify; unique messageIds),
  with a write key, from a fixed population of returning visitors (``XRM_BENCH_MIXED_VISITORS``,
  default 5,000) and a share of calls from visitors never seen before (``XRM_BENCH_MIXED_NEW``,
  default 0.01; 1 is the new-visitor-only load of sessions 3 and 4);
- decisions: POST /v1/decide for known customers (userId, e-mail, profileId) and unknown
  visitors, on email and web placements, with a read key;
- profile reads: GET /v1/profiles/{id} (audited, with a purpose), with the same read key.

The working set is bounded so that "no growth" can be shown: the warm-up sends every returning
visitor once (and lasts at least 60 s, 5 s with --quick), the event writer's identifier caches are
sized to fill with the population (``api_writer_cache`` = 5 x the population: a full map is emptied
and refills), and the server's DuckDB memory_limit is fixed (``XRM_BENCH_MIXED_MEMORY_LIMIT``, 1GB).
What still grows by design: the events themselves (the store, DuckDB's indexes, whose buffers a
look-up keeps in memory: reported as ART_INDEX against the indexes' size) and /v1/decide's identity
graph with each new visitor (up to 200,000 entries per map).

Reported per kind: requests answered, per second, p50/p99, errors by status or exception (must
be 0). (An open loop at fixed rates was tried first: on the shared 2 cores, loaded 10x over by
other work, no rate worth measuring was sustained and the client's backlog drowned the figures.) The
server's memory is sampled from inside it every 10 s (bench/_memprobe.py): RSS and its parts.
Growth verdict (:func:`verdict`), after the warm-up: the least-squares slope over the run's second
half under 1 MB/min and the mean of the last minute within 5% of the first minute's (20 s windows
with --quick), judged for RSS and for RSS less DuckDB's own accounting (the server's part, which
the data does not grow). Afterwards the store is opened: every acknowledged event must be stored.

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
import uuid
from pathlib import Path
from typing import Any

from bench._harness import ROOT, Section, machine_line, serve

__all__ = ["run", "verdict"]

CUSTOMERS = 2_000
PER_BATCH = 50
CLIENTS = {"ingest": 2, "decide": 4, "read": 2}  # concurrent closed-loop clients, each kind
SAMPLE_S = float(os.environ.get("XRM_MEMPROBE_S", "10"))  # longer for tracemalloc runs (slow snapshots)
VISITORS = int(os.environ.get("XRM_BENCH_MIXED_VISITORS", "5000"))  # the returning population
NEW = float(os.environ.get("XRM_BENCH_MIXED_NEW", "0.01"))  # share of calls from a new visitor
# "sequential" (mix-<batch>-<n>) or "uuid": random, as Segment's libraries make them. Random ids load
# the whole of the message-id keys' index into memory on every few inserts (docs/api.md, session 11).
IDS = os.environ.get("XRM_BENCH_MIXED_IDS", "sequential")
if IDS not in ("sequential", "uuid"):
    raise SystemExit(f"XRM_BENCH_MIXED_IDS={IDS!r}: use sequential or uuid")
# The verdict's rule: growth after warm-up is "none" when both hold.
MAX_SLOPE = 1.0  # MB/min, least squares over the run's second half
MAX_RISE = 0.05  # last window's mean against the first window's after warm-up


_IDS_SAID = {"sequential": "nearly sequential (`mix-<batch>-<n>`)",
             "uuid": "random (uuid4, as Segment's libraries make them; XRM_BENCH_MIXED_IDS=uuid)"}


# -- the load generator (a separate process) ---------------------------------------------------

def _batch(r: int, rng: random.Random) -> bytes:
    """Batch ``r``: the first ``VISITORS / PER_BATCH`` go through the population in order (the
    warm-up sees everyone once); later ones draw returning visitors at random, and new ones."""
    calls = []
    cover = r * PER_BATCH < VISITORS
    for e in range(PER_BATCH):
        if cover:
            who: int | str = (r * PER_BATCH + e) % VISITORS
        else:
            who = f"n{r}-{e}" if rng.random() < NEW else rng.randrange(VISITORS)
        mid = str(uuid.UUID(int=rng.getrandbits(128), version=4)) if IDS == "uuid" else f"mix-{r}-{e}"
        ev: dict[str, Any] = {"messageId": mid, "userId": f"visitor-{who}",
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

    cover = -(-VISITORS // PER_BATCH)  # batches that see every returning visitor once

    def busy(until: float, record: bool) -> bool:
        return time.perf_counter() < until or (not record and counter["ingest"] < cover)

    async def client_loop(client: httpx.AsyncClient, kind: str, until: float, record: bool) -> None:
        while busy(until, record):
            await one(client, kind, record)

    async def phase(client: httpx.AsyncClient, until: float, record: bool) -> None:
        await asyncio.gather(*(client_loop(client, kind, until, record)
                               for kind, n in CLIENTS.items() for _ in range(n)))

    total = sum(CLIENTS.values())
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=total)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        began = time.perf_counter()
        await phase(client, began + warmup, False)
        start = time.perf_counter()
        await phase(client, start + seconds, True)
        elapsed = time.perf_counter() - start
    out: dict[str, Any] = {"seconds": elapsed, "warmup": start - began, "started_at": time.time() - elapsed,
                           "acked_events": acked[0], "kinds": {}}
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


def _events(store: Path) -> tuple[int, float]:
    """The events in the store, and the store's indexes (MB, :func:`bench._memprobe.index_mb`)."""
    from bench._memprobe import index_mb
    from xrm.store import Store

    with Store.open(store, read_only=True) as s:
        n = int(s.sql("SELECT count(*) FROM events").fetchall()[0][0])
        return n, index_mb(s.con.cursor())


def run(quick: bool) -> Section:
    from bench.bench_decide import _identities, make_store

    seconds, warmup = (60.0, 5.0) if quick else (600.0, 60.0)
    seconds = float(os.environ.get("XRM_BENCH_MIXED_S", seconds))  # diagnosis runs of a few minutes
    window = 20.0 if seconds < 180 else 60.0
    # DuckDB's whole memory: reached in the run, so that what the server holds is seen to stop at it.
    # Index buffers are not evicted, so it must hold them: the writer releases them past the budget
    # below (api_index_memory_mb; session 8, before releases: 36 errors in 10 minutes at 128MB).
    limit = os.environ.get("XRM_BENCH_MIXED_MEMORY_LIMIT", "256MB")
    index_budget = os.environ.get("XRM_BENCH_MIXED_INDEX_MB", "32")
    # The writer's maps fill with the population in the warm-up (3 identifiers each); /v1/decide's
    # graph, sized alike, fills with the new visitors within minutes (it held about 10k a map at start).
    cache = 5 * VISITORS
    folder = Path(tempfile.mkdtemp(prefix="xrm-bench-mixed-"))
    try:
        t0 = time.perf_counter()
        store = make_store(folder, CUSTOMERS)
        built = time.perf_counter() - t0
        bodies = _identities(store, 5_000)
        pids = sorted({int(b["profileId"]) for b in bodies if "profileId" in b})
        (folder / "load.json").write_text(json.dumps({"bodies": bodies, "pids": pids}), encoding="utf-8")
        write, read = _keys(store)
        events_before, indexes_before = _events(store)  # the sample business's own
        load_before = os.getloadavg()
        probe = folder / "memory.jsonl"
        env = {"XRM_MEMORY_LIMIT": limit, "XRM_THREADS": "1", "XRM_MEMPROBE_S": str(SAMPLE_S),
               "XRM_API_WRITER_CACHE": str(cache), "XRM_API_DECIDE_CACHE": str(cache),
               "XRM_API_INDEX_MEMORY_MB": index_budget}
        exits: list[tuple[float, int]] = []  # a server that exits is started again (a supervisor's part)
        with serve(store, env, launcher=[sys.executable, "-m", "bench._memprobe", str(probe)],
                   exits=exits) as url:
            out = subprocess.run(
                [sys.executable, "-m", "bench.bench_mixed", url, str(seconds), str(warmup), write, read,
                 str(folder / "load.json")],
                cwd=ROOT, capture_output=True, text=True, timeout=seconds + warmup + 600, check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"load generator failed:\n{out.stderr[-3000:]}")
            result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            result["writer"] = _healthz(url)["writer"]  # (since the last start, after a restart)
            result["exits"] = [(at - result["started_at"], status) for at, status in exits]
        load_after = os.getloadavg()
        samples = _samples(probe, result["started_at"], result["seconds"])
        if os.environ.get("XRM_BENCH_MIXED_PROBE_OUT") and probe.exists():  # the raw samples, kept
            shutil.copy(probe, os.environ["XRM_BENCH_MIXED_PROBE_OUT"])
        stored, indexes_after = _events(store)
        stored -= events_before  # the bench's (the ids it sends are new, so no retry hides a loss)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Section("Mixed load (xrm serve: ingestion + decisions + profile reads)",
                   _report(result, samples, stored, seconds, window, built, load_before, load_after,
                           limit, cache, (indexes_before, indexes_after), float(index_budget)))


def _healthz(url: str, wait: float = 120) -> dict[str, Any]:
    """/healthz, waiting for a server the bench's supervisor is starting again."""
    import httpx

    deadline = time.monotonic() + wait
    while True:
        try:
            got = httpx.get(url + "/healthz", timeout=30)
            if got.status_code == 200:
                return dict(got.json())
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            return {"writer": {}}
        time.sleep(1)


def _samples(probe: Path, started: float, until: float = float("inf")) -> list[dict[str, Any]]:
    """The server's memory samples (bench/_memprobe.py), ``t`` in seconds from the end of the
    warm-up (negative during it), up to ``until`` (the load's end: later ones see the server shut
    down, its store closing)."""
    rows = []
    for line in probe.read_text(encoding="utf-8").splitlines() if probe.exists() else []:
        row = json.loads(line)
        if "rss" in row and row["at"] - started <= until:
            rows.append(row | {"t": row["at"] - started})
    return rows


def _component(row: dict[str, Any]) -> dict[str, float]:
    """The memory figures of one sample that the report follows (MB, except counts)."""
    duck, mal, py = row.get("duckdb", {}), row.get("malloc", {}), row.get("py", {})
    nan, caches = float("nan"), row.get("caches", {})
    return {"RSS": row["rss"], "anon": row.get("anon", nan), "DuckDB": duck.get("total", nan),
            # indexes' buffers, never evicted: bounded by the indexes' size (index_mb), not by time
            "ART": duck["by_tag"].get("ART_INDEX", 0.0) if "by_tag" in duck else nan,
            "RSS less DuckDB": row["rss"] - duck.get("total", nan),
            "store": duck["blocks"] * duck["block_size"] / 2**20 if "blocks" in duck else nan,
            "WAL": duck.get("wal", nan),
            "malloc used": mal.get("used", nan), "malloc free": mal.get("free", nan),
            # Anonymous memory neither glibc's heap nor DuckDB's accounting holds: Python's own
            # arenas (pymalloc maps them directly), memory jemalloc keeps for DuckDB, thread stacks.
            "other": (row.get("anon", nan) - mal.get("used", nan) - mal.get("free", nan)
                      - duck.get("total", nan)),
            "Python blocks (k)": py.get("blocks", 0) / 1000,
            "writer caches (k)": sum(v for k, v in caches.items() if k.startswith("IdentifierCache")) / 1000,
            "decide graph (k)": sum(v for k, v in caches.items() if k.startswith("Identities")) / 1000}


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute (nan for fewer than 3); points
    without a value (nan: a sample that could not read DuckDB, e.g. at shutdown) are left out."""
    points = [(t, v) for t, v in points if v == v]
    if len(points) < 3:
        return float("nan")
    mx = statistics.mean(t for t, _ in points)
    my = statistics.mean(v for _, v in points)
    den = sum((t - mx) ** 2 for t, _ in points)
    return 60 * sum((t - mx) * (v - my) for t, v in points) / den if den else float("nan")


def _memory_table(samples: list[dict[str, Any]], seconds: float) -> tuple[str, float]:
    """Per-component memory at about seven points of the run and each one's slope over its second
    half; returns the table and the RSS slope (MB/min)."""
    comps = [(row["t"], _component(row)) for row in samples if row["t"] >= 0]
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


def verdict(points: list[tuple[float, float]], seconds: float, window: float) -> tuple[bool, str]:
    """Whether memory (``(t, MB)`` after the warm-up, t from 0 to ``seconds``) did not grow: the
    least-squares slope over the second half under :data:`MAX_SLOPE` MB/min, and the mean of the
    last ``window`` seconds within :data:`MAX_RISE` of the first ``window``'s. Also the figures."""
    points = [(t, v) for t, v in points if v == v]
    first = [v for t, v in points if 0 <= t <= window]
    last = [v for t, v in points if t >= seconds - window]
    half = slope([(t, v) for t, v in points if t >= seconds / 2])
    if not first or not last or half != half:
        return False, "not enough samples"
    begin, end = statistics.mean(first), statistics.mean(last)
    rise = end / begin - 1
    return half < MAX_SLOPE and rise <= MAX_RISE, (
        f"{begin:.0f} MB in the first {window:.0f} s, {end:.0f} MB in the last ({rise:+.1%}), "
        f"slope over the 2nd half {half:+.2f} MB/min")


def _art_line(comps: list[dict[str, float]], indexes: tuple[float, float]) -> str:
    """DuckDB's index buffers (ART_INDEX) at the start and end of the run against the store's
    indexes then: a share at or under 100% that follows the indexes is a cache bounded by the data
    (DuckDB 2.0 does not evict index buffers); more than the indexes would be a leak."""
    art = [c["ART"] for c in comps if c["ART"] == c["ART"]]
    if not art:
        return "ART_INDEX: no samples"
    begin, end, top = art[0], art[-1], max(art)

    def share(a: float, b: float) -> str:
        return f"{a / b:.0%}" if b == b and b > 0 else "n/a"

    return (f"ART_INDEX (DuckDB's index buffers) {begin:.0f} MB at the start, {end:.0f} MB at the end, "
            f"{top:.0f} MB at most; the store's indexes {indexes[0]:.0f} MB before the run, "
            f"{indexes[1]:.0f} MB after (ART_INDEX {share(begin, indexes[0])} of them at the start, "
            f"{share(end, indexes[1])} at the end, {share(top, indexes[1])} at most)")


def _report(r: dict[str, Any], samples: list[dict[str, Any]], stored: int, seconds: float,
            window: float, built: float, before: tuple[float, ...], after: tuple[float, ...],
            limit: str = "1GB", cache: int = 25_000,
            indexes: tuple[float, float] = (float("nan"), float("nan")), index_budget: float = 0.0) -> str:
    names = {"ingest": f"ingestion (POST /v1/batch, {PER_BATCH} calls)",
             "decide": "decisions (POST /v1/decide)", "read": "profile reads (GET /v1/profiles/{id})"}
    rows, errors = [], 0
    for kind, k in r["kinds"].items():
        errs = sum(k["errors"].values())
        errors += errs
        rows.append(f"| {names[kind]} | {CLIENTS[kind]} | {k['sent']:,} | {k['ok']:,} | {k['per_s']:,.1f} | "
                    f"{k['p50']:.1f} | {k['p99']:.1f} | {k['max']:.0f} | {errs} "
                    f"{json.dumps(k['errors']) if errs else ''} |")
    rss = ", ".join(f"{m['rss']:.0f}" for m in samples if m["t"] >= 0)
    warm = ", ".join(f"{m['rss']:.0f}" for m in samples if m["t"] < 0)
    table, _ = _memory_table(samples, seconds) if samples else ("(no samples)", float("nan"))
    acked = r["acked_events"]
    lost = max(0, acked - stored)
    comps = [(m["t"], _component(m)) for m in samples]
    rss_ok, rss_says = verdict([(t, c["RSS"]) for t, c in comps], seconds, window)
    own_ok, own_says = verdict([(t, c["RSS less DuckDB"]) for t, c in comps], seconds, window)
    said = []
    said.append("errors: none" if errors == 0 else f"**errors: {errors}** (target 0)")
    ingested = r["kinds"]["ingest"]["per_s"] * PER_BATCH
    said.append(f"{ingested:,.0f} events/s ingested alongside the decisions and reads")
    said.append("no acknowledged event lost" if lost == 0 else f"**{lost:,} acknowledged events lost**")
    for at, status in r.get("exits", []):
        why = " (the store lost: DuckDB invalidated it)" if status == 3 else ""
        said.append(f"**the server exited with status {status}{why} at {at:.0f} s** and was started again")
    said.append(f"memory growth {'none' if rss_ok else '**found**'} by RSS ({rss_says})")
    said.append(f"{'none' if own_ok else '**found**'} by RSS less DuckDB's own accounting ({own_says})")
    said.append(_art_line([c for t, c in comps if t >= 0], indexes))
    w = r.get("writer", {})
    last = ", ".join(f"{c['ms']:.0f} ms at {c['wal_mb']} MB of log" for c in w.get("last_checkpoints", []))
    ck = (f"The event writer's own checkpoints (between group commits; /healthz): {w.get('checkpoints', 0)} "
          f"in {w.get('checkpoint_seconds', 0):.1f} s in all, {w.get('checkpoints_skipped', 0)} skipped; "
          f"the last: {last or 'none'}. Slowest group writes {w.get('slowest_ms', [])} ms; "
          f"{w.get('groups', 0):,} groups, {w.get('folds', 0)} folds.")
    if index_budget:
        rel = ", ".join(f"{x['ms']:.0f} ms ({x['waited_ms']:.0f} waiting) at {x['index_mb']} MB of index "
                        f"buffers, {x['wal_mb']} MB of log" for x in w.get("last_releases", []))
        ck += (f" Releases of index memory (api_index_memory_mb {index_budget:g}: the store detached and "
               f"attached again instead of a checkpoint once the index buffers kept after one passed it): "
               f"{w.get('releases', 0)} in {w.get('release_seconds', 0):.1f} s in all, "
               f"{w.get('releases_skipped', 0)} given up (the store's users stayed); "
               f"the last: {rel or 'none'}.")
    duck = [c["DuckDB"] for t, c in comps if t >= 0 and c["DuckDB"] == c["DuckDB"]]
    if duck:
        said.append(f"DuckDB's own accounting {max(duck):.0f} MB at most against its memory_limit {limit}")
    return f"""
Machine: {machine_line()}; 1-min load average {before[0]:.1f} before the run, {after[0]:.1f} after
(the machine is shared with other work: latencies are upper bounds). One run of {seconds:.0f} s after
a {r["warmup"]:.0f} s warm-up. Server: one `xrm serve` process (uvicorn, DuckDB threads = 1,
memory_limit {limit}, api_writer_cache and api_decide_cache {cache:,}, api_index_memory_mb
{index_budget:g}) on the sample business ({CUSTOMERS:,} customers, made and through the pipeline in
{built:.0f} s, with offers). Batches from {VISITORS:,} returning visitors (all seen once in the warm-up)
and {NEW:.0%} of calls from new ones; message ids {_IDS_SAID[IDS]}.
Load generator: a separate process on the same cores, closed loop with the clients below
(each sends its next request when the last is answered;
reads and decisions with a read key, profile reads audited), latency per request. memory_limit is set low on
purpose, so that DuckDB reaches it within the run: reads and decisions then read evicted table blocks
again, and their rates are below those of a server given more memory (docs/api.md, "Memory under
load", session 10, compares 1GB).

| kind | clients | sent | answered 200 | per s | p50 ms | p99 ms | max ms | errors |
|---|---:|---:|---:|---:|---:|---:|---:|---|
{chr(10).join(rows)}

Events acknowledged (200, warm-up included): {acked:,}; stored afterwards: {stored:,}; lost: {lost:,}.
{ck}
Server resident memory (VmRSS, MB) every {SAMPLE_S:.0f} s: in the warm-up {warm}; after it {rss}.

Server memory by component (sampled inside the server by bench/_memprobe.py; MB unless said): RSS,
its anonymous part, DuckDB's own accounting (`duckdb_memory()`: buffer pool, indexes, catalog), its
index buffers (ART, the ART_INDEX tag) and RSS less DuckDB's accounting; the store file's blocks and
its write-ahead log; glibc malloc's bytes in use and kept free inside its heaps; the other anonymous
memory (Python's own arenas, which pymalloc maps directly, memory DuckDB's jemalloc keeps, thread
stacks); Python's allocated blocks (not counting what the server froze at start-up); entries
(thousands) in the event writer's identifier caches and in /v1/decide's identity graph (200,000 per
map). Last row: the least-squares slope of each over the run's second half.

{table}

Verdict (growth is none when the slope over the 2nd half is under {MAX_SLOPE:.0f} MB/min and the last
{window:.0f} s are within {MAX_RISE:.0%} of the first {window:.0f} s after the warm-up): {"; ".join(said)}.

Batches and profile reads are answered only after a commit (the events; the read's audit row),
decisions before their log is written (in groups): on a loaded machine the first two wait for
commits of seconds, decisions do not. What grows by design (docs/api.md, "Memory under load"):
the events: DuckDB holds what was committed since the last checkpoint in memory (its accounting,
`IN_MEMORY_TABLE`, and what its jemalloc keeps around it) until the event writer checkpoints (every
`api_checkpoint_s`, 60 s, or at 32 MiB of log; the WAL column), then writes it to the file's blocks;
its indexes grow with every event, and DuckDB 2.0 keeps every index buffer that a look-up (profile
reads) or an insert loaded until an insert changes it and a checkpoint writes it out, or the store is
detached (the ART column: the writer releases them once more than api_index_memory_mb stay after a
checkpoint); and /v1/decide's identity graph with each new visitor (up to 200,000 entries per map).
"""


if __name__ == "__main__":
    import asyncio

    target, secs, warm, wkey, rkey, load_file = sys.argv[1:7]
    data = json.loads(Path(load_file).read_text(encoding="utf-8"))
    print(json.dumps(asyncio.run(_drive(target, float(secs), float(warm), wkey, rkey, data["bodies"],
                                        data["pids"]))))
