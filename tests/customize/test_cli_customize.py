from __future__ import annotations

import json

import typer
from customize_helpers import T0, days, write_orders
from typer.testing import CliRunner

import xrm.customize
from xrm.cli._customize import offers_app
from xrm.cli._output import CliState
from xrm.store import Store

runner = CliRunner()


def _app(store_path):
    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = CliState({"store_path": store_path})

    app.add_typer(offers_app, name="offers")
    return app


def test_load_list_build_recommend_nba_respond(tmp_path, settings):
    with Store.open(settings) as store:
        write_orders(store, [(f"u{c}", f"o{c}-{b}", T0 + days(30 * b), ["beans", "milk"][: 1 + c % 2])
                             for c in range(6) for b in range(3)], {"beans": "espresso beans"})
    offers = tmp_path / "offers.toml"
    offers.write_text('[[offer]]\noffer_id = "espresso"\nkind = "product"\nname = "Beans"\n'
                      'product_ids = ["beans"]\nvalue = 4.1\n')
    app = _app(settings.store_path)
    out = runner.invoke(app, ["offers", "load", str(offers), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {"file": str(offers), "offers": 1}
    listed = json.loads(runner.invoke(app, ["offers", "list", "--json"]).stdout)
    assert [o["offer_id"] for o in listed] == ["espresso"]
    built = json.loads(runner.invoke(app, ["offers", "build", "--json"]).stdout)
    assert built["customers"] == 6
    recs = json.loads(runner.invoke(app, ["offers", "recommend", "u0", "--json"]).stdout)
    assert recs[0]["product_id"] == "beans" and "espresso beans" in recs[0]["reason"]
    out = runner.invoke(app, ["offers", "nba", "u0", "--channel", "web", "--explore", "0", "--json"])
    decision = json.loads(out.stdout)
    assert decision["offers"][0]["offer_id"] == "espresso"
    out = runner.invoke(app, ["offers", "respond", decision["decision_id"], "espresso", "click", "--json"])
    assert out.exit_code == 0, out.output


def test_bad_file_is_a_clean_error(tmp_path, settings):
    bad = tmp_path / "o.csv"
    bad.write_text("offer_id,kind,name,value\na,gadget,A,1\n")
    out = runner.invoke(_app(settings.store_path), ["offers", "load", str(bad), "--json"])
    assert out.exit_code == 1
    assert "o.csv line 2: 'kind' = 'gadget'" in json.loads(out.stdout)["message"]


def test_public_surface():
    assert sorted(xrm.customize.__all__) == sorted(
        n for n in dir(xrm.customize) if not n.startswith("_") and n not in {"annotations"}
    )
