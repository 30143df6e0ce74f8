"""Fault-test plumbing: clients that retry until acknowledged, the `xrm` command, figures.

Each fault test records what it offered, what was acknowledged and what the store holds afterwards
(``record_figures``); with ``FAULT_FIGURES_FILE=path`` set the figures are appended there as JSON
lines (for BENCHMARKS.md's trust section), and they are printed either way (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

KEY = "wk_fault_1234"
ENV = {
    "XRM_WRITE_KEYS": json.dumps({KEY: "faults"}),
    "XRM_MEMORY_LIMIT": "1GB",
    "XRM_THREADS": "1",
}


def xrm(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `xrm` command (the console script next to this Python)."""
    exe = Path(sys.executable).with_name("xrm")
    return subprocess.run(
        [str(exe), *args], env={**os.environ, **(env or {})}, capture_output=True, text=True,
        timeout=timeout,
    )


class Senders:
    """``n`` threads sending numbered batches to /v1/batch, each retried until the server says 200.

    ``offered`` holds every event some request carried; ``acked`` those in a 200 answer."""

    def __init__(self, url: str, n: int = 3, batches: int = 30, per_batch: int = 40,
                 pause: float = 0.0) -> None:
        self.url, self.n, self.batches, self.per_batch, self.pause = url, n, batches, per_batch, pause
        self.offered: set[str] = set()
        self.acked: set[str] = set()
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._send, args=(k,), daemon=True) for k in range(n)]

    def body(self, k: int, b: int) -> dict[str, Any]:
        return {"batch": [
            {"type": "track", "event": "Product Viewed", "messageId": f"s{k}-b{b}-e{e}",
             "userId": f"user-{(k * 7 + b * 3 + e) % 50}", "timestamp": "2024-05-01T12:00:00Z",
             "properties": {"b": b, "e": e}}
            for e in range(self.per_batch)
        ]}

    def _send(self, k: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10, auth=(KEY, "")) as http:
            for b in range(self.batches):
                if self.stopping.is_set():
                    return
                body = self.body(k, b)
                ids = [e["messageId"] for e in body["batch"]]
                with self.lock:
                    self.offered.update(ids)
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if http.post("/v1/batch", json=body).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        self.failures.append(f"sender {k} batch {b} never acknowledged")
                        return
                    time.sleep(0.05)
                with self.lock:
                    self.acked.update(ids)
                if self.pause:
                    time.sleep(self.pause)

    def start(self) -> Senders:
        for t in self.threads:
            t.start()
        return self

    def wait_acked(self, count: int, timeout: float = 30) -> set[str]:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            assert time.monotonic() < deadline, f"only {len(self.acked)} of {count} events acknowledged"
            assert not self.failures, self.failures
            time.sleep(0.01)
        with self.lock:
            return set(self.acked)

    def stop(self) -> None:
        """Send no new batch; the one in flight is still retried until acknowledged."""
        self.stopping.set()

    def join(self, timeout: float = 60) -> None:
        for t in self.threads:
            t.join(timeout=timeout)
        assert not any(t.is_alive() for t in self.threads), "a sender did not finish"
        assert not self.failures, self.failures


@pytest.fixture
def record_figures(request: pytest.FixtureRequest) -> Callable[..., dict[str, Any]]:
    def record(**figures: Any) -> dict[str, Any]:
        row = {"test": request.node.name, **figures}
        line = json.dumps(row, sort_keys=False)
        print(f"\nFIGURES {line}")
        target = os.environ.get("FAULT_FIGURES_FILE")
        if target:
            with open(target, "a") as fh:
                fh.write(line + "\n")
        return row

    return record
