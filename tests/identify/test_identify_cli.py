"""`xrm identify ...` on a real store file (the sub-app alone; the lead mounts it on `xrm`)."""

from __future__ import annotations

import datetime as dt
import json

import typer
from typer.testing import CliRunner

from xrm.cli._identify import identify_app
from xrm.cli._output import CliState
from xrm.store import Store


def _app(settings) -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _cb(ctx: typer.Context) -> None:
        ctx.obj = CliState({"store_path": settings.store_path, "memory_limit": "2GB", "threads": 2})

    root.add_typer(identify_app, name="identify")
    return root


def test_identify_cli_end_to_end(settings):
    with Store.open(settings) as store:
        for rid, first, card in (("crm:1", "Johannes", None), ("loyalty:1", "Hans", "L1")):
            store.sql(
                "INSERT INTO records (record_id, source, source_key, first_name, last_name, birth_date, "
                "street, house_number, postcode, loyalty_card, updated_at) VALUES (?, ?, ?, ?, 'Müller', "
                "?, 'Hauptstr.', '12', '10115', ?, ?)",
                [rid, rid.split(":")[0], rid.split(":")[1], first, dt.date(1961, 4, 3), card,
                 dt.datetime(2023, 1, 1)],
            )
    app, run = _app(settings), CliRunner()
    out = run.invoke(app, ["identify", "resolve", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["probabilistic_links"] == 1
    out = run.invoke(app, ["identify", "explain", "loyalty_card:L1"])
    assert out.exit_code == 0 and "probabilistic: match weight" in out.output
    out = run.invoke(app, ["identify", "golden", "crm:1", "--json"])
    assert json.loads(out.output)["attributes"]["last_name"]["value"] == "Müller"
    out = run.invoke(app, ["identify", "review", "reject", "crm:1", "loyalty:1", "--reason", "two men",
                           "--json"])
    assert json.loads(out.output)["decision"] == "rejected"
    out = run.invoke(app, ["identify", "review", "list", "--status", "rejected", "--json"])
    assert [i["reason"] for i in json.loads(out.output)] == ["two men"]
    out = run.invoke(app, ["identify", "golden", "nobody@web.de", "--json"])
    assert out.exit_code == 1 and json.loads(out.output)["error"] == "NotFound"
