"""No personal data in the logs: real flows at DEBUG, every record searched for the test people.

The flows: `xrm load` of customer records with e-mails, phones and names; `xrm identify resolve`
(Splink logs at DEBUG); a real server (uvicorn in a thread, access log on, DEBUG) taking an
identify call with an e-mail and a phone, a profile lookup by e-mail in the query string (the
access log writes it), and error paths (a bad batch quoting the e-mail, an unknown id type).
Every captured record, with its exception text, must hold none of the people's e-mails (plain or
URL-encoded), phone digits or surnames.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.live import free_port, wait_until_up
from typer.testing import CliRunner

from xrm._redact import install_redaction, redact
from xrm.api import create_app
from xrm.cli import app as cli
from xrm.config import Settings

PEOPLE = [
    ("c1", "Wilhelmina", "Quastenberg", "wilhelmina.quastenberg@example-mail.de", "+49 30 98765432"),
    ("c2", "Bartholomäus", "Zwiebelkorn", "b.zwiebelkorn@example-mail.de", "0171 5556667"),
]
MAPPING = """
kind = "records"
source = "crm"
[columns]
source_key = "id"
first_name = "first"
last_name = "last"
email = "email"
phone = "phone"
"""


def _secrets() -> list[str]:
    out = []
    for _, first, last, email, phone in PEOPLE:
        out += [first, last, email, email.replace("@", "%40"), re.sub(r"\D", "", phone)[-7:]]
    return out


def _leaks(records: list[logging.LogRecord]) -> list[str]:
    found = []
    for r in records:
        text = logging.Formatter().format(r)
        flat = re.sub(r"[\s/()\-]", "", text)  # phone digits with any separators
        for s in _secrets():
            if s in text or (s.isdigit() and s in flat):
                found.append(f"{r.name}: {s!r} in {text[:300]!r}")
    return found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    import uvicorn

    store = tmp_path / "xrm.duckdb"
    csv = tmp_path / "crm.csv"
    rows = "".join(",".join(p) + "\n" for p in PEOPLE)
    csv.write_text("id,first,last,email,phone\n" + rows, encoding="utf-8")
    (tmp_path / "crm.toml").write_text(MAPPING, encoding="utf-8")
    runner = CliRunner()
    mapping = str(tmp_path / "crm.toml")
    out = runner.invoke(cli, ["--store", str(store), "load", str(csv), "--mapping", mapping])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["--store", str(store), "identify", "resolve"])
    assert out.exit_code == 0, out.output
    token = "wk_logs_1"
    made = runner.invoke(cli, ["--store", str(store), "keys", "create", "logs", "--scope", "admin", "--json"])
    if made.exit_code == 0:
        import json

        token = json.loads(made.stdout)["token"]
    settings = Settings(store_path=store, memory_limit="512MB", threads=1, write_keys={"wk_logs_1": "web"})
    port = free_port()
    # log_config=None: uvicorn's loggers propagate to the root, where the test captures them
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="debug", access_log=True, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url)
    yield url, token, store
    server.should_exit = True
    thread.join(timeout=30)


def test_real_flows_log_no_personal_data(
    server: tuple[str, str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    url, token, _ = server
    caplog.set_level(logging.DEBUG)
    _, first, last, email, phone = PEOPLE[0]
    with httpx.Client(base_url=url, auth=(token, ""), timeout=30) as http:
        ok = http.post("/v1/identify", json={"userId": "u-c1", "traits": {
            "email": email, "phone": phone, "firstName": first, "lastName": last}})
        assert ok.status_code == 200, ok.text
        http.get("/v1/profiles", params={"id_type": "email", "id_value": email})
        bad = http.post("/v1/batch", json={"batch": [{"type": "track", "traits": {"email": email}}]})
        assert bad.status_code == 400
        assert http.get("/v1/profiles", params={"id_type": "e-mail", "id_value": email}).status_code == 400
    runner = CliRunner()
    runner.invoke(cli, ["--store", "/nonexistent/dir/x.duckdb", "identify", "explain", f"email:{email}"])
    lookups = [r for r in caplog.records if r.name == "uvicorn.access" and "/v1/profiles" in r.getMessage()]
    assert lookups, "the access log was captured (it carries the lookup's query string)"
    assert not _leaks(caplog.records), "\n".join(_leaks(caplog.records))


def test_redaction_masks_messages_args_and_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    log = logging.getLogger("xrm.test")
    _, first, last, email, phone = PEOPLE[1]
    with caplog.at_level(logging.DEBUG, logger="xrm.test"):
        log.info("mail to %s, phone %s, record %r", email, phone, {"first_name": first, "last_name": last})
        try:
            raise ValueError(f"constraint failed for email = '{email}'")
        except ValueError:
            log.exception("write failed")
    assert not _leaks(caplog.records), "\n".join(_leaks(caplog.records))
    text = caplog.text
    assert "[email]" in text and "[phone]" in text and "[name]" in text
    harmless = "2024-05-01 12:00:03, 20,000 rows, order 1234567"
    assert redact(harmless) == harmless
