"""Channels against real receivers: SMTP on loopback (aiosmtpd), an HTTP webhook receiver,
letter and call-list files; retries with backoff; a worker killed mid-run."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest
from tests.interact.conftest import add_crowd, add_person
from tests.interact.sinks import SmtpSink, WebhookReceiver, free_port

from xrm.exceptions import InputError
from xrm.interact import (
    CallListTransport,
    Campaign,
    Channel,
    LetterFileTransport,
    Offer,
    SmtpTransport,
    Template,
    WebhookTransport,
    deliver_outbox,
    has_consent,
    record_call_outcomes,
    record_consent,
    run_campaigns,
    sign_webhook,
    verify_webhook,
)
from xrm.store import Store

T0 = datetime(2026, 3, 2, 10, 0)  # 11:00 in Berlin: outside quiet hours


def _people(store, n, channel="email", purpose="marketing"):
    if n > 20:
        add_crowd(store, "p", n, channels=(channel,), purpose=purpose)
        return
    for i in range(n):
        add_person(store, f"p{i:04d}", email=f"p{i:04d}@example.com", phone=f"+49170{i:07d}")
        record_consent(
            store, f"p{i:04d}", channel, purpose, "granted", source="form", at=T0 - timedelta(days=1)
        )


def _campaign(channel="email", n=None, **kw):
    return Campaign(
        f"{channel}-camp",
        "Test",
        channel,
        Template(
            "Hallo {{ customer.first_name }}: {{ offer.name }} {{ track('https://shop.example.com/a') }}",
            subject="Angebot für {{ customer.first_name }}",
            html="<html><body><p>Hallo {{ customer.first_name }}</p></body></html>",
        ),
        audience="SELECT user_id AS customer FROM records",
        control_share=0.0,
        offer=Offer("o1", "10% Rabatt", 5.0),
        **kw,
    )


def test_smtp_delivery_bounce_and_headers(store, tmp_path):
    _people(store, 3)
    add_person(store, "p0003", email="nobody@example.com")
    record_consent(store, "p0003", "email", "marketing", "granted", source="form", at=T0 - timedelta(days=1))
    run_campaigns(store, [_campaign()], now=T0)
    with SmtpSink(tmp_path / "smtp.log", refuse={"nobody@example.com"}) as sink:
        channels = {
            "email": Channel(
                "email",
                SmtpTransport("127.0.0.1", sink.port, starttls=False, mail_from="Shop <news@shop.example>"),
            )
        }
        report = deliver_outbox(store, channels, now=T0)
    assert (report.sent, report.bounced) == (3, 1)
    msg = sink.messages[0]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"].startswith("<https://xrm.example.com/t/u/")
    assert msg["Message-ID"].endswith("@shop.example>") and msg["Subject"] == "Angebot für Anna"
    html = msg.get_body(("html",)).get_content()
    assert "/t/o/" in html and html.index("/t/o/") < html.index("</body>")  # open pixel
    rows = dict(store.sql("SELECT status, count(*) FROM messages GROUP BY 1").fetchall())
    assert rows == {"sent": 3, "bounced": 1}
    events = dict(
        store.sql(
            "SELECT event, count(*) FROM events WHERE source = 'xrm.interact' "
            "AND event LIKE 'Email%' GROUP BY 1"
        ).fetchall()
    )
    assert events == {"Email Sent": 3, "Email Bounced": 1}


def test_smtp_down_retries_with_backoff(store, tmp_path):
    _people(store, 1)
    run_campaigns(store, [_campaign()], now=T0)
    port = free_port()  # nothing listens yet
    channels = {"email": Channel("email", SmtpTransport("127.0.0.1", port, starttls=False, timeout=2))}
    report = deliver_outbox(store, channels, now=T0, backoff_base=timedelta(minutes=1))
    assert report.retried == 1 and report.sent == 0
    nb = store.sql("SELECT status, not_before, attempts FROM messages").fetchall()[0]
    assert nb == ("retry", T0 + timedelta(minutes=1), 1)
    assert deliver_outbox(store, channels, now=T0 + timedelta(seconds=30)).retried == 0  # not due
    deliver_outbox(store, channels, now=T0 + timedelta(minutes=1))
    assert store.sql("SELECT not_before FROM messages").fetchall()[0][0] == T0 + timedelta(minutes=3)
    sink = SmtpSink(tmp_path / "late.log")
    sink.port = port
    from aiosmtpd.controller import Controller

    sink.controller = Controller(sink, hostname="127.0.0.1", port=port)
    with sink:
        assert deliver_outbox(store, channels, now=T0 + timedelta(minutes=3)).sent == 1
    assert store.sql("SELECT attempts, status FROM messages").fetchall() == [(3, "sent")]


def test_signed_webhook_sms_with_retry(store, isettings):
    _people(store, 4, channel="sms")
    run_campaigns(store, [_campaign("sms")], now=T0)
    secret = isettings.webhook_secret.get_secret_value()
    with WebhookReceiver(secret, fail_first=1) as rx:
        channels = {"sms": Channel("sms", WebhookTransport(rx.url, secret))}
        r1 = deliver_outbox(store, channels, now=T0)
        r2 = deliver_outbox(store, channels, now=T0 + timedelta(minutes=5))
        bad = WebhookTransport(rx.url, "wrong-secret-" + "z" * 30)
        ids = store.sql("SELECT message_id FROM messages LIMIT 1").fetchall()[0][0]
        from xrm.interact import Outbound

        assert bad.send(Outbound(ids, "p0000", "sms", "marketing", "+49")).status == "failed"
    assert (r1.sent, r1.retried, r2.sent) == (3, 1, 1)
    assert len(rx.received) == 4 and rx.rejected and "does not match" in rx.rejected[0]
    assert {m["to"] for m in rx.received} == {f"+49170{i:07d}" for i in range(4)}
    assert all(m["channel"] == "sms" and "Hallo Anna" in m["text"] for m in rx.received)


def test_webhook_signature_rules():
    body = b'{"a": 1}'
    header = sign_webhook("k" * 32, body, 1_700_000_000)
    verify_webhook("k" * 32, header, body, now=1_700_000_100)
    with pytest.raises(InputError, match="away from now"):
        verify_webhook("k" * 32, header, body, now=1_700_001_000)
    with pytest.raises(InputError, match="does not match"):
        verify_webhook("k" * 32, header, b'{"a": 2}', now=1_700_000_100)
    with pytest.raises(InputError, match="malformed"):
        verify_webhook("k" * 32, "v1=abc", body)


def test_letters_and_call_list_with_outcomes(store, tmp_path):
    for i in range(3):
        add_person(store, f"p{i:04d}", email=None, phone=f"+49170{i:07d}", first_name=f"F{i}")
        for ch in ("post", "phone"):
            record_consent(
                store, f"p{i:04d}", ch, "marketing", "granted", source="contract", at=T0 - timedelta(days=1)
            )
    letter, call = _campaign("post"), _campaign("phone")
    letter.campaign_id, call.campaign_id = "letter", "call"
    run_campaigns(store, [letter, call], now=T0)
    out = tmp_path / "files"
    channels = {
        "post": Channel("post", LetterFileTransport(out), 0.95),
        "phone": Channel("phone", CallListTransport(out), 2.5),
    }
    assert deliver_outbox(store, channels, now=T0).sent == 6
    store.sql("UPDATE messages SET status = 'sending'").fetchall()  # as if killed before commit
    assert deliver_outbox(store, channels, now=T0).sent == 6  # written again? no: ids dedupe
    letters = list(csv.DictReader(next(out.glob("letters-*.csv")).open()))
    calls_file = next(out.glob("calls-*.csv"))
    calls = list(csv.DictReader(calls_file.open()))
    assert len(letters) == 3 and len(calls) == 3
    assert {r["first_name"] for r in letters} == {"F0", "F1", "F2"} and letters[0]["postcode"] == "10115"
    # The call centre fills in outcomes; they come back as events, do-not-call revokes consent.
    calls[0]["outcome"], calls[1]["outcome"] = "accepted", "do_not_call"
    with calls_file.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(calls[0]))
        w.writeheader()
        w.writerows(calls)
    assert record_call_outcomes(store, calls_file, at=T0 + timedelta(hours=2)) == {
        "recorded": 2,
        "do_not_call": 1,
    }
    assert not has_consent(store, calls[1]["customer"], "phone", "marketing", at=T0 + timedelta(hours=3))
    calls[2]["outcome"] = "maybe"
    with calls_file.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(calls[0]))
        w.writeheader()
        w.writerows(calls)
    with pytest.raises(InputError, match=r"line 4: outcome = 'maybe'"):
        record_call_outcomes(store, calls_file)
    cost = store.sql("SELECT sum(cost) FROM messages").fetchall()[0][0]
    assert cost == pytest.approx(3 * 0.95 + 3 * 2.5)


WORKER = """
import json, sys
from xrm.config import Settings
from xrm.store import Store
from xrm.interact import Channel, SmtpTransport, deliver_outbox
store_path, port, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with Store.open(Settings(store_path=store_path, secret_key=secret, memory_limit="1GB", threads=1)) as store:
    channels = {"email": Channel("email", SmtpTransport("127.0.0.1", port, starttls=False))}
    report = deliver_outbox(store, channels, now=__import__("datetime").datetime(2026, 3, 2, 10, 0),
                            batch_size=50)
    print(json.dumps(report.as_dict()))
"""


@pytest.mark.slow
def test_killed_worker_sends_each_message_once(isettings, tmp_path):
    n = 240
    with Store.open(isettings) as store:
        _people(store, n)
        run_campaigns(store, [_campaign()], now=T0)
        ids = {r[0] for r in store.sql("SELECT message_id FROM messages").fetchall()}
    assert len(ids) == n
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "XRM_CONFIG": str(tmp_path / "none.toml")}
    args = [
        sys.executable,
        str(script),
        str(isettings.store_path),
        "0",
        isettings.secret_key.get_secret_value(),
    ]
    kills, reports, in_doubt = 0, [], set()
    with SmtpSink(tmp_path / "sink.log") as sink:
        args[3] = str(sink.port)
        for kill_at in (60, 150):
            proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 60
            while len(sink.ids()) < kill_at and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            os.kill(proc.pid, signal.SIGKILL)  # mid-run, no clean-up
            proc.wait()
            kills += 1
            with Store.open(isettings) as store:  # what the restart will find unconfirmed
                in_doubt |= {
                    r[0]
                    for r in store.sql("SELECT message_id FROM messages WHERE status = 'sending'").fetchall()
                }
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=True)
        reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
        received = sink.ids()
    distinct = {r.strip("<>").split("@")[0] for r in received}
    assert distinct == ids, "a message was dropped"  # none dropped
    duplicates = len(received) - len(distinct)
    # The kill is timed into the worst moment (the sink has just accepted a message, the worker
    # has not yet stored `sent`). Only such in-doubt messages are sent again, with the same
    # Message-ID, so a receiver that keys on it delivers each message exactly once.
    twice = {i for i in distinct if sum(r.startswith(f"<{i}@") for r in received) > 1}
    assert twice <= in_doubt and duplicates <= kills
    assert len({r for r in received}) == n  # deduplicated by Message-ID: each exactly once
    with Store.open(isettings) as store:
        assert store.sql("SELECT status, count(*) FROM messages GROUP BY 1").fetchall() == [("sent", n)]
        unknown = store.sql("SELECT count(*) FROM delivery_attempts WHERE outcome = 'unknown'").fetchall()
    assert unknown[0][0] >= 1  # the restart saw in-doubt messages and said so
    print(f"killed {kills}x; {n} messages, {len(received)} receipts, {duplicates} duplicates")
