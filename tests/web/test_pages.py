"""Every page renders for every role, on an empty store and on the sample business; the pages
show what the capabilities compute; every word has both languages; assets are served locally."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from xrm.config import Settings
from xrm.store import Store

from .conftest import ROLES, console_app, csrf_of, login, test_client

PAGES = ("/console/", "/console/customers?q=anna", "/console/segments", "/console/campaigns",
         "/console/network", "/console/quality")
WEB = Path(__file__).resolve().parents[2] / "src" / "xrm" / "web"


@pytest.mark.parametrize("role", ROLES)
def test_every_page_renders_on_an_empty_store(client: Any, role: str) -> None:
    login(client, role)
    for url in PAGES:
        r = client.get(url, follow_redirects=False)
        assert r.status_code == 200, (url, r.text[:500])
        assert "Server-Timing" in r.headers and "default-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/console/customers/12345").status_code == 404


def test_pages_show_what_the_capabilities_compute(sample_store: Settings) -> None:
    from xrm.identify import lookup_profiles

    with Store.open(sample_store) as store:
        active = store.sql("SELECT count(*) FROM profiles WHERE status = 'active'").fetchall()[0][0]
        user_id, email = store.sql(
            "SELECT user_id, email FROM normalized_records WHERE user_id IS NOT NULL AND email IS NOT NULL "
            "ORDER BY record_id LIMIT 1").fetchall()[0]
        pid = lookup_profiles(store, "user_id", user_id)[0]
        tier = store.sql("SELECT tier FROM customer_value WHERE customer_id IN (?, ?)",
                         [user_id, str(pid)]).fetchall()
        n_segments = store.count("needs_segments")
    with test_client(console_app(sample_store)) as c:
        login(c, "viewer")
        overview = c.get("/console/").text
        assert f'id="kpi-profiles">{active:,}<' in overview
        r = c.get(f"/console/customers?q={user_id}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/console/customers/{pid}"
        page = c.get(r.headers["location"]).text
        assert user_id in page and (not tier or f"tier-{tier[0][0]}" in page)
        assert "Decide next best action" not in page and "Export all data" not in page  # viewer
        hits = c.get(f"/console/customers?q={email}&list=1").text
        assert f'/console/customers/{pid}"' in hits
        assert c.get("/console/segments").text.count("<tr><td>") >= n_segments


def test_admin_exports_and_marketer_launches(sample_store: Settings) -> None:
    with Store.open(sample_store) as store:
        pid, user_id = store.sql(
            "SELECT profile_id, id_value FROM identifiers WHERE id_type = 'user_id' ORDER BY 1, 2 LIMIT 1"
        ).fetchall()[0]
    with test_client(console_app(sample_store)) as c:
        login(c, "marketer")
        token = csrf_of(c.get("/console/campaigns").text)
        form = {"csrf": token, "campaign_id": "gold", "name": "Gold", "channel": "email",
                "purpose": "marketing", "audience": "tier", "tier": "MVC", "subject": "Hi",
                "text": "Hallo {{ customer.first_name | default('') }} {{ unsubscribe_url }}",
                "offer_id": "o1", "offer_name": "Gift", "offer_value": "3", "control_share": "0.2"}
        r = c.post("/console/campaigns", data=form, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/campaigns/gold")
        bad = c.post("/console/campaigns", data={**form, "campaign_id": "Bad Id", "audience": "sql"})
        text = html.unescape(bad.text)
        assert bad.status_code == 400 and "id = 'bad id'" in text and "audience = 'sql'" in text
        r = c.post("/console/campaigns/gold/launch", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 303
        export = c.get(f"/console/customers/{pid}/export")
        assert export.status_code == 200 and user_id in export.text
        assert "attachment" in export.headers["content-disposition"]
        detail = c.get("/console/campaigns/gold").text
        assert "Results" in detail and "Lift in conversion" in detail
    with Store.open(sample_store) as store:
        runs = store.sql("SELECT dry_run, audience FROM campaign_runs WHERE campaign_id = 'gold'").fetchall()
        # the MVC customers' user ids (value is keyed by profile id, or by user id before identity)
        mvc = store.sql("""
            SELECT count(DISTINCT i.id_value) FROM identifiers i, customer_value v
            WHERE i.id_type = 'user_id' AND v.tier = 'MVC'
              AND v.customer_id IN (i.id_value, CAST(i.profile_id AS VARCHAR))""").fetchall()[0][0]
        assert runs == [(False, mvc)]
        actions = [r[0] for r in store.sql("SELECT action FROM console_audit ORDER BY audit_id").fetchall()]
        assert actions == ["launch", "export"]


def test_every_text_has_both_languages_and_every_key_used_exists() -> None:
    from xrm.web._i18n import TEXTS, translate

    assert all(len(pair) == 2 and all(pair) for pair in TEXTS.values())
    used = set()
    for path in (WEB / "templates").glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']""", path.read_text(encoding="utf-8")))
    for path in WEB.glob("*.py"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']""", path.read_text(encoding="utf-8")))
    # keys built from a prefix in the templates
    used = {k for k in used if not k.endswith(".")}
    used |= {f"role.{r}" for r in ROLES}
    used |= {f"campaigns.audience.{a}" for a in ("email_list", "tier", "segment")}
    used |= {"campaigns.trigger.winback", "campaigns.trigger.basket"}
    missing = sorted(k for k in used if k not in TEXTS)
    assert not missing, f"texts without a translation entry: {missing}"
    assert translate("de", "nav.overview") == "Überblick" and translate("en", "nav.overview") == "Overview"


def test_assets_are_served_from_the_package(client: Any) -> None:
    for name in ("vendor/vega.min.js", "vendor/vega-lite.min.js", "vendor/vega-embed.min.js",
                 "console.js", "console.css"):
        r = client.get(f"/console/static/{name}")
        assert r.status_code == 200 and len(r.content) > 100, name
        again = client.get(f"/console/static/{name}", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304
    assert client.get("/console/static/../_users.py").status_code == 404
    assert client.get("/console/static/%2e%2e/_users.py").status_code == 404
    for name in ("vega", "vega-lite", "vega-embed"):
        assert "Redistribution" in (WEB / "static" / "vendor" / f"LICENSE-{name}.txt").read_text()
    login(client, "viewer")
    page = client.get("/console/").text
    assert not re.search(r"""(src|href)=["']https?://""", page), "pages must load nothing from outside"


def test_public_surface() -> None:
    import xrm.web

    assert sorted(xrm.web.__all__) == sorted(dir(xrm.web))
    for name in xrm.web.__all__:
        assert getattr(xrm.web, name) is not None
