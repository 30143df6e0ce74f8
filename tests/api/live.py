"""Live servers for the API tests: uvicorn in a thread (fast) or in a child process (killable)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from xrm.api import create_app
from xrm.config import Settings

KEY = "wk_test_1234"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    url: str
    app: Any
    client: httpx.Client

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.app.state.store.sql(sql, params).fetchall()

    def new_key(self, name: str, scope: str, **options: Any) -> str:
        """A stored API key made in the running server's store (as POST /v1/keys does); its token."""
        from xrm.api._keys import create_key

        _, token = create_key(self.app.state.store, name, scope, **options)
        self.app.state.keys.invalidate()
        return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_until_up(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{err}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not come up in {timeout} s")


def serve_in_thread(settings: Settings) -> Iterator[Live]:
    import uvicorn

    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url)
    with httpx.Client(base_url=url, timeout=30) as client:
        yield Live(url, app, client)
    server.should_exit = True
    thread.join(timeout=30)


class ServerProcess:
    """`python -m xrm.api` in a child process: a real server to kill."""

    def __init__(self, store: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.store, self.port = store, port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        self.start_process()
        wait_until_up(self.url, self.proc)
        return self

    def start_process(self) -> None:
        """Start it without waiting (the caller waits, with its own timeout)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xrm.api", "--store", str(self.store), "--port", str(self.port),
             "--log-level", "warning"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
