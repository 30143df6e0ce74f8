from __future__ import annotations

import json
from datetime import datetime, timedelta

import typer
from tests.interact.conftest import SECRET, add_crowd, add_event
from tests.interact.sinks import SmtpSink
from typer.testing import CliRunner

import xrm.interact
from xrm.cli._interact import campaign_app, consent_app, gdpr_app
from xrm.cli._output import CliState
from xrm.interact import run_demo_campaigns

T0 = datetime(2026, 3, 2, 10, 0)


def _app(store_path):
    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = CliState({"store_path": store_path, "secret_key": SECRET})

    app.add_typer(consent_app, name="consent")
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(gdpr_app, name="gdpr")
    return app


def _shop(store):
    ids = add_crowd(store, "d", 30, granted_at=T0 - timedelta(days=30))
    for i, c in enumerate(ids):
        if i % 3 == 0:
            add_event(store, "Order Completed", c, T0 - timedelta(days=5), revenue=30.0)
        if i % 5 == 0:
            add_event(store, "Product Added", c, T0 - timedelta(hours=3))
    add_event(store, "Page Viewed", "d0001", T0, type_="page")  # the newest event
    return ids


def test_demo_dry_run_and_through_a_smtp_sink(store, tmp_path):
    _shop(store)
    dry = run_demo_campaigns(store)
    assert dry["dry_run"] and dry["now"] == (T0 + timedelta(hours=1)).isoformat()
    outcomes = {c["campaign_id"]: c["outcomes"] for c in dry["campaigns"]}
    assert sum(outcomes["demo-trigger"].values()) == 6 and sum(outcomes["demo-batch"].values()) == 30
    assert store.count("messages") == 0
    with SmtpSink(tmp_path / "demo.log") as sink:
        sent = run_demo_campaigns(store, smtp_host="127.0.0.1", smtp_port=sink.port)
    queued = sum(c["outcomes"].get("queued", 0) for c in sent["campaigns"])
    assert sent["delivery"]["sent"] == queued == len(sink.ids()) > 0
    assert {r["campaign_id"] for r in sent["results"]} == {"demo-trigger", "demo-batch"}


def test_cli_consent_campaign_gdpr(isettings, tmp_path):
    from xrm.store import Store

    with Store.open(isettings) as store:
        _shop(store)
    runner = CliRunner()
    app = _app(isettings.store_path)
    r = runner.invoke(
        app,
        [
            "consent",
            "set",
            "d0002",
            "--channel",
            "sms",
            "--purpose",
            "marketing",
            "--status",
            "granted",
            "--source",
            "cli",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["status"] == "granted"
    r = runner.invoke(app, ["consent", "show", "d0002", "--json"])
    assert {(c["channel"], c["valid"]) for c in json.loads(r.output)} == {("email", True), ("sms", True)}
    r = runner.invoke(
        app,
        [
            "consent",
            "set",
            "d0002",
            "--channel",
            "fax",
            "--purpose",
            "x",
            "--status",
            "granted",
            "--source",
            "cli",
            "--json",
        ],
    )
    assert r.exit_code == 1 and "channel = 'fax'" in json.loads(r.output)["message"]
    camp = tmp_path / "c.toml"
    camp.write_text(
        'id = "cli"\nchannel = "email"\naudience = "SELECT user_id AS customer FROM records"\n'
        'control_share = 0.0\n[template]\nsubject = "Hi {{ customer.first_name }}"\n'
        'text = "Hallo {{ customer.first_name }}"\n'
    )
    r = runner.invoke(app, ["campaign", "preview", str(camp), "d0003", "--json"])
    assert json.loads(r.output)["subject"] == "Hi N3"
    r = runner.invoke(app, ["campaign", "run", str(camp), "--json"])
    assert json.loads(r.output)[0]["outcomes"] == {"queued": 30}
    r = runner.invoke(app, ["campaign", "results", "cli", "--json"])
    assert json.loads(r.output)["members"] == {"target": 30, "control": 0}
    r = runner.invoke(app, ["gdpr", "export", "d0003", "--json"])
    assert json.loads(r.output)["identifiers"]["emails"] == ["d0003@example.com"]
    r = runner.invoke(app, ["gdpr", "erase", "d0003", "--reason", "test", "--yes", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["rows"]["records"] == 1


def test_public_surface():
    assert sorted(xrm.interact.__all__) == sorted(
        n
        for n in dir(xrm.interact)
        if not n.startswith("_")
        and n not in {"annotations"}
        and not isinstance(getattr(xrm.interact, n), type(xrm))
    )
    for name in (
        "record_consent",
        "erase_profile",
        "export_profile",
        "run_campaigns",
        "deliver_outbox",
        "campaign_results",
        "run_demo_campaigns",
        "consent_eligibility",
    ):
        assert name in xrm.interact.__all__
