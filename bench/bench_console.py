"""The console's page speed: server time of every GET page on the sample business, through a real
``xrm serve`` process (uvicorn) and a logged-in ``httpx`` client.

The store is the sample business (``xrm sample``, ``xrm load``, ``xrm pipeline``): 2,000 customers
with ``--quick``, 20,000 otherwise; ``XRM_BENCH_CONSOLE_STORE=path`` reuses a store built before
(copied first: the bench adds a console user and the server writes). Each page is requested once
to warm up, then ``N`` times; the figure is the ``Server-Timing: app;dur=`` header (the console's
own time, from the request to the rendered page) and, beside it, ``cpu;dur=`` (the server process's
CPU time meanwhile: requests go one at a time, so it is the request's, and a loaded machine changes
it least), ``read;desc`` (the MB the server process read from files meanwhile: the store blocks a
first visit loads, which no machine load changes) and the client's wall time. Customer
360 is timed for 20 active profiles drawn with a fixed seed, each one cold (first visit) and warm.
The issue's target: every page under 300 ms server time on the 20,000-customer sample; Customer 360
under 300 ms on a 1M-customer store.

A large store: ``XRM_BENCH_CONSOLE_GROW=N`` copies the sample store's customers N times over with new
ids (bench/_grow.py; 32 for about 1M active profiles from the 20,000-customer sample) and times
Customer 360, the search by e-mail and the GDPR export on it; ``XRM_BENCH_CONSOLE_LARGE=path``
reuses a large store built before (copied first; how much of the copy the OS page cache holds is
reported, from ``fincore``). The build, CLI and server run with DuckDB's
memory_limit ``XRM_MEMORY_LIMIT`` (3GB unless set).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._grow import grow_store
from bench._harness import ROOT, Section, machine_line, serve

__all__ = ["run"]

TARGET_MS = 300.0
PASSWORD = "bench console password 1"
USER = "bench"
N_CUSTOMERS = 20
SEED = 8
# DuckDB's memory for the CLI and the server (the 1M store's indexes must not take the box's memory)
ENV = {"XRM_MEMORY_LIMIT": os.environ.get("XRM_MEMORY_LIMIT", "3GB")}


def _xrm(*args: str, store: Path | None = None) -> None:
    exe = str(Path(sys.executable).with_name("xrm"))
    argv = [exe, *(["--store", str(store)] if store else []), *args]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False,
                         env={**os.environ, **ENV})
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({out.returncode}):\n"
                           f"{out.stderr[-3000:]}{out.stdout[-2000:]}")


def _build_store(tmp: Path, customers: int) -> tuple[Path, str]:
    given = os.environ.get("XRM_BENCH_CONSOLE_STORE")
    path = tmp / "xrm.duckdb"
    if given:
        shutil.copy(given, path)
        return path, f"reused {given} (copied)"
    start = time.perf_counter()
    _xrm("sample", "--out", str(tmp / "sample"), "--customers", str(customers), "--seed", "42")
    _xrm("load", str(tmp / "sample" / "manifest.json"), store=path)
    _xrm("pipeline", store=path)
    return path, f"built with `xrm sample --customers {customers:,}`, `xrm load`, `xrm pipeline` " \
                 f"in {time.perf_counter() - start:.0f} s"


def _pick(path: Path) -> dict[str, Any]:
    """Customers to open and search terms, read before the server owns the store."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        pids = [r[0] for r in con.sql(
            "SELECT profile_id FROM profiles WHERE status = 'active' ORDER BY profile_id").fetchall()]
        events = con.sql("SELECT count(*) FROM events").fetchall()[0][0]
        rng = random.Random(SEED)
        chosen = rng.sample(pids, min(N_CUSTOMERS, len(pids)))
        email = con.sql("SELECT email FROM normalized_records WHERE email IS NOT NULL "
                        "ORDER BY record_id LIMIT 1 OFFSET 17").fetchall()
        name = con.sql("SELECT last_name FROM normalized_records WHERE last_name IS NOT NULL "
                       "ORDER BY record_id LIMIT 1 OFFSET 23").fetchall()
        cids = [r[0] for r in con.sql("SELECT campaign_id FROM console_campaigns LIMIT 1").fetchall()]
        # the export is by customer key (user id): the chosen that have one
        keyed = sorted(int(p) for (p,) in con.execute(
            "SELECT DISTINCT profile_id FROM identifiers WHERE id_type = 'user_id' "
            "AND profile_id IN (SELECT unnest(?))", [chosen]).fetchall())
    finally:
        con.close()
    return {"pids": chosen, "profiles": len(pids), "events": events,
            "email": email[0][0] if email else "x@example.com", "name": name[0][0] if name else "Müller",
            "campaigns": cids, "keyed": keyed or chosen[:1]}


def _server_ms(response: Any, metric: str = "app") -> float:
    found = re.search(metric + r";dur=([0-9.]+)", response.headers.get("server-timing", ""))
    if not found:
        raise RuntimeError(f"{response.request.url}: no Server-Timing {metric} "
                           f"(status {response.status_code})")
    return float(found.group(1))


def _read_mb(response: Any) -> float:
    """MB the server process read from files during the request (``read;desc`` of Server-Timing: the
    store blocks a first visit loads, whether from the OS cache or the disk); -1 where not given."""
    found = re.search(r'read;desc="([0-9.]+) MB"', response.headers.get("server-timing", ""))
    return float(found.group(1)) if found else -1.0


Timed = tuple[list[float], list[float], list[float], list[float]]  # server ms, wall ms, CPU ms, MB read


def _login(client: Any) -> None:
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    if not token:
        raise RuntimeError("no CSRF field on the login form")
    done = client.post("/console/login", data={"username": USER, "password": PASSWORD,
                                               "csrf": token.group(1)})
    if "xrm_session" not in client.cookies:
        raise RuntimeError(f"login failed: {done.status_code} {done.text[:300]}")


def _time(client: Any, url: str, n: int) -> Timed:
    server, wall, cpu, read = [], [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(url)
        elapsed = 1000 * (time.perf_counter() - t0)
        if r.status_code not in (200, 303):
            raise RuntimeError(f"GET {url}: {r.status_code}\n{r.text[:1000]}")
        server.append(_server_ms(r))
        cpu.append(_server_ms(r, "cpu"))
        read.append(_read_mb(r))
        wall.append(elapsed)
    return server, wall, cpu, read


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


Row = tuple[str, list[float], list[float], list[float], list[float]]  # page, then as Timed


def measure(path: Path, n: int, *, lists: bool = True) -> tuple[list[Row], dict[str, Any]]:
    """Start ``xrm serve`` on ``path``, log in, time every GET page; rows of (page, server ms, wall ms).

    ``lists=False``: only the pages about one customer (search by e-mail, Customer 360, export)."""
    import httpx

    picked = _pick(path)
    _xrm("users", "add", USER, "--role", "admin", "--lang", "en", "--password", PASSWORD, store=path)
    rows: list[Row] = []
    with serve(path, ENV, ready="/console/login") as base, \
            httpx.Client(base_url=base, timeout=120, follow_redirects=False) as client:
        _login(client)
        pages = [
            ("login form", "/console/login"),
            ("overview", "/console/"),
            ("customers (empty search)", "/console/customers"),
            ("search by e-mail", f"/console/customers?q={httpx.QueryParams({'q': picked['email']})['q']}"
             "&list=1"),
            ("search by name", f"/console/customers?q={picked['name']}&list=1"),
            ("segments", "/console/segments"),
            ("campaigns", "/console/campaigns"),
            *(("campaign detail", f"/console/campaigns/{c}") for c in picked["campaigns"][:1]),
            ("network", "/console/network"),
            ("data quality", "/console/quality"),
        ]
        if not lists:
            pages = [p for p in pages if p[0] == "search by e-mail"]
        for label, url in pages:
            _time(client, url, 1)  # warm-up
            rows.append((label, *_time(client, url, n)))
        cold: Timed = ([], [], [], [])
        warm: Timed = ([], [], [], [])
        for pid in picked["pids"]:
            for into, times in ((cold, 1), (warm, max(1, n // 5))):
                for acc, got in zip(into, _time(client, f"/console/customers/{pid}", times), strict=True):
                    acc += got
        rows.append((f"Customer 360, {len(picked['pids'])} customers, first visit", *cold))
        rows.append((f"Customer 360, {len(picked['pids'])} customers, again", *warm))
        export: Timed = ([], [], [], [])
        for pid in picked["keyed"]:  # each once: one customer's export is not asked for twice in a row
            for acc, got in zip(export, _time(client, f"/console/customers/{pid}/export", 1), strict=True):
                acc += got
        rows.append((f"GDPR export download (JSON), {len(picked['keyed'])} customers", *export))
    return rows, picked


def table(rows: list[Row]) -> list[str]:
    lines = ["| page | requests | server median ms | server p95 ms | server CPU median ms | wall median ms "
             "| MB read median / max | target 300 ms |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for label, server, wall, cpu, read in rows:
        med, p95 = statistics.median(server), _p95(server)
        verdict = "met" if p95 < TARGET_MS else (
            f"**NOT met** (median {med - TARGET_MS:+.0f} ms)" if med >= TARGET_MS
            else f"median met, **p95 NOT met** (+{p95 - TARGET_MS:.0f} ms)")
        mb = f"{statistics.median(read):.1f} / {max(read):.1f}" if min(read) >= 0 else "–"
        lines.append(f"| {label} | {len(server)} | {med:.0f} | {p95:.0f} | {statistics.median(cpu):.0f} "
                     f"| {statistics.median(wall):.0f} | {mb} | {verdict} |")
    return lines


def _large(tmp: Path, small: Path, n: int) -> list[str]:
    """The large store's lines of the section, or none when no large store was asked for."""
    given, times = os.environ.get("XRM_BENCH_CONSOLE_LARGE"), os.environ.get("XRM_BENCH_CONSOLE_GROW")
    if not given and not times:
        return []
    path = tmp / "large.duckdb"
    if given:
        shutil.copy(given, path)
        how = f"reused {given} (copied)"
    else:
        how = grow_store(small, path, int(times or 0), memory_limit=ENV["XRM_MEMORY_LIMIT"])
    cached = _cached(path)
    load_before = os.getloadavg()[0]
    rows, picked = measure(path, n, lists=False)
    load_after = os.getloadavg()[0]
    return [
        "",
        f"**Large store**: {how}; {picked['profiles']:,} active profiles, {picked['events']:,} events; "
        f"{cached}. The pages about one customer, timed as above:",
        "",
        *table(rows),
        "",
        f"Load average {load_before:.1f} before / {load_after:.1f} after.",
    ]


def _cached(path: Path) -> str:
    """How much of the store file the OS page cache held before the timed requests (util-linux
    ``fincore``): a first visit reads its blocks from there, or from the disk."""
    fincore = shutil.which("fincore")
    if not fincore:
        return "how much of it the OS cache held: not known (no `fincore`)"
    out = subprocess.run([fincore, "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=False)
    held = out.stdout.strip()
    if out.returncode != 0 or not held.isdigit():
        return f"how much of it the OS cache held: not known (fincore: {out.stderr.strip()[:100]})"
    return (f"the OS page cache held {int(held) / 2**30:.1f} of its {path.stat().st_size / 2**30:.1f} GiB "
            f"before the timed requests (`fincore`)")


def run(quick: bool) -> Section:
    customers = 2_000 if quick else 20_000
    n = 5 if quick else int(os.environ.get("XRM_BENCH_CONSOLE_N", "20"))
    with tempfile.TemporaryDirectory(prefix="xrm-bench-console-") as tmp:
        path, how = _build_store(Path(tmp), customers)
        pristine = Path(tmp) / "pristine.duckdb"  # before the bench's user and the server's writes
        if os.environ.get("XRM_BENCH_CONSOLE_GROW"):
            shutil.copy(path, pristine)
        load_before = os.getloadavg()[0]
        rows, picked = measure(path, n)
        load_after = os.getloadavg()[0]
        large = _large(Path(tmp), pristine, n)
    body = [
        f"Store: {how}; {picked['profiles']:,} active profiles, {picked['events']:,} events. "
        f"A real `xrm serve` process (uvicorn, one worker) and an `httpx` client logged in as an admin "
        f"through the login form. Each page: one warm-up request, then {n} timed; Customer 360: "
        f"{len(picked['pids'])} active profiles drawn with seed {SEED}, each once on first visit and "
        f"then again ×{max(1, n // 5)}; the GDPR export: each of those with a customer key, once. "
        f"*Server* = the `Server-Timing` header (the console's time from "
        f"request to rendered page); *server CPU* = the server process's CPU time meanwhile (all threads; "
        f"requests are sent one at a time), which a loaded machine changes least; *wall* = the client's, "
        f"with HTTP and the event loop; *MB read* = what the server process read from files meanwhile "
        f"(the `read` entry of `Server-Timing`: the store's blocks a request loads, from the OS cache or "
        f"the disk; no machine load changes it).",
        "",
        *table(rows),
        "",
        f"Load average {load_before:.1f} before / {load_after:.1f} after the timed requests "
        f"(a shared 2-core machine: other work ran beside it). Machine: {machine_line()}.",
        *large,
    ]
    return Section("Console page speed", "\n".join(body))


if __name__ == "__main__":
    section = run("--quick" in sys.argv)
    print(section.body)
