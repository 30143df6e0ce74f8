"""Real receivers on loopback: an SMTP server (aiosmtpd) and an HTTP webhook receiver."""

from __future__ import annotations

import email.policy
import json
import socket
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from xrm.exceptions import InputError
from xrm.interact import verify_webhook


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """aiosmtpd on 127.0.0.1; appends each accepted message's Message-ID to a file (fsync'd),
    so receipts survive and can be counted across client restarts."""

    def __init__(self, log: Path, *, refuse: set[str] | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.log = log
        self.refuse = refuse or set()
        self.messages: list[Any] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(msg)
        with self.log.open("a") as fh:
            fh.write(f"{msg['Message-ID']}\t{msg['To']}\n")
            fh.flush()
        return "250 Message accepted"

    def ids(self) -> list[str]:
        if not self.log.exists():
            return []
        return [line.split("\t")[0] for line in self.log.read_text().splitlines() if line]

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class WebhookReceiver:
    """http.server in a thread: verifies X-Xrm-Signature, dedupes by Idempotency-Key."""

    def __init__(self, secret: str, *, fail_first: int = 0) -> None:
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.rejected: list[str] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    verify_webhook(receiver.secret, self.headers["X-Xrm-Signature"], body)
                except InputError as exc:
                    receiver.rejected.append(str(exc))
                    self.send_response(401)
                    self.end_headers()
                    return
                key = self.headers["Idempotency-Key"]
                receiver.keys.append(key)
                if key not in {r["message_id"] for r in receiver.received}:
                    receiver.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
