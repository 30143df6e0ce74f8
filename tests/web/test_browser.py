"""End to end: a real `uvicorn` server over a sample-business store, driven by Debian's Chromium
through Playwright. Logs in, finds a customer, reads their 360 page, decides an identity match,
creates and dry-runs a campaign, switches language; screenshots of each page go to
tests/web/screenshots/. Needs /usr/bin/chromium (scripts/ensure_chromium.sh installs it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from xrm.config import Settings
from xrm.store import Store

from .conftest import PASSWORD, SAMPLE_IDENTIFY, SECRET

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason="needs Debian's chromium: run scripts/ensure_chromium.sh"),
]


@dataclass
class Expected:
    pid: int
    email: str
    first_name: str
    user_id: str
    clv: float
    newest_entry: str
    audience: int


def _expected(settings: Settings) -> Expected:
    """What the pages must show, read from the store with the capabilities' own functions."""
    from xrm.identify import lookup_profiles
    from xrm.interact import timeline

    with Store.open(settings) as store:
        candidates = store.sql("""
            SELECT i.profile_id, n.email, n.first_name, i.id_value, v.clv
            FROM identifiers i   -- value is keyed by profile id (or by user id before identity runs)
            JOIN customer_value v ON v.customer_id IN (i.id_value, CAST(i.profile_id AS VARCHAR))
            JOIN profile_records r ON r.profile_id = i.profile_id
            JOIN normalized_records n ON n.record_id = r.record_id
            WHERE i.id_type = 'user_id' AND n.email IS NOT NULL AND n.first_name IS NOT NULL
              AND (SELECT count(*) FROM identifiers j WHERE j.profile_id = i.profile_id
                   AND j.id_type = 'user_id') = 1
            ORDER BY v.clv DESC, i.profile_id LIMIT 200
        """).fetchall()
        # one whose e-mail finds only this profile, so the search opens the 360 page at once
        pid, email, first, user_id, clv = next(
            c for c in candidates if lookup_profiles(store, "email", c[1]) == [c[0]])
        newest = timeline(store, pid, limit=1).items[0]
        audience = store.sql("SELECT count(DISTINCT customer) FROM consents WHERE channel = 'email' "
                             "AND purpose = 'marketing'").fetchall()[0][0]
    return Expected(pid, email, first, user_id, clv, newest.name or newest.type, audience)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop the server (it writes what is queued and closes the store)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture
def want(sample_store: Settings) -> Expected:
    return _expected(sample_store)


@pytest.fixture
def server(sample_store: Settings, want: Expected, tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("serve_console.py")), str(sample_store.store_path),
         str(port)],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "XRM_IDENTIFY": json.dumps(SAMPLE_IDENTIFY), "XRM_SECRET_KEY": SECRET},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/console/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + (tmp_path / "server.log").read_text())
            time.sleep(0.3)
        yield Server(base, proc)
    finally:
        Server(base, proc).stop()
        log.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _charts_drawn(page: Any) -> None:
    charts = page.locator(".chart[data-spec]")
    for i in range(charts.count()):
        charts.nth(i).locator("svg").first.wait_for(timeout=15_000)
        assert charts.nth(i).get_attribute("data-rendered") == "1"


def test_customer_manager_day(server: Server, browser: Any, sample_store: Settings, want: Expected) -> None:
    base = server.url
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    outside: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:")) else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda d: d.accept())

    # log in (as the marketer, English)
    page.goto(f"{base}/console/")
    assert "/console/login" in page.url
    _shot(page, "01-login")
    page.fill("input[name=username]", "marketer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#kpi-profiles")
    _charts_drawn(page)
    _shot(page, "02-overview")

    # search by e-mail: one hit opens the 360 page
    page.fill("header input[name=q]", want.email)
    page.press("header input[name=q]", "Enter")
    page.wait_for_url(f"**/console/customers/{want.pid}")
    assert want.first_name in page.inner_text("#customer-name")
    assert page.inner_text("#value-clv") == f"{want.clv:,.2f} EUR"
    first_entry = page.locator("table.timeline tbody tr").first.locator("td.tl-name").inner_text()
    assert first_entry.strip() == want.newest_entry
    assert page.locator("table.timeline tbody tr").count() > 1
    _charts_drawn(page)
    _shot(page, "03-customer-360")

    # search by name lists the customers
    page.goto(f"{base}/console/customers?q={want.first_name}&list=1")
    assert page.locator("#results tbody tr").count() >= 1
    _shot(page, "04-search")

    # the identity review queue: accept the first proposed match
    page.goto(f"{base}/console/quality")
    item = page.locator("tr.review-item").first
    pair = (item.get_attribute("data-a"), item.get_attribute("data-b"))
    _shot(page, "05-quality")
    item.locator("button.accept").click()
    page.wait_for_selector(".flash")
    assert "Decision saved" in page.inner_text(".flash")
    assert page.locator(f'tr.review-item[data-a="{pair[0]}"][data-b="{pair[1]}"]').count() == 0

    # create a campaign, preview it for the customer, dry-run it
    page.goto(f"{base}/console/campaigns")
    page.fill("input[name=campaign_id]", "spring-e2e")
    page.fill("input[name=name]", "Spring coffee")
    page.check("input[name=audience][value=email_list]")
    page.click("#new-campaign button[type=submit]")
    page.wait_for_url("**/console/campaigns/spring-e2e*")
    assert "Spring coffee" in page.inner_text("#campaign-name")
    page.fill("#preview-form input[name=customer]", want.user_id)
    page.click("#preview-form button[type=submit]")
    assert "Hello" in page.inner_text("#preview-text")
    page.click("#dry-run")
    page.wait_for_selector("#dry-run-result")
    assert f"{want.audience:,} customers" in page.inner_text("#dry-run-result")
    _shot(page, "06-campaign-dry-run")

    for name, path in (("07-segments", "/segments"), ("08-network", "/network"),
                       ("09-campaigns", "/campaigns")):
        page.goto(f"{base}/console{path}")
        _charts_drawn(page)
        _shot(page, name)

    # switch language: German from now on, for this user
    page.goto(f"{base}/console/")
    page.click("form.lang button[value=de]")
    page.wait_for_selector("html[lang=de]")
    assert "Überblick" in page.inner_text("header nav")
    _shot(page, "10-overview-de")
    page.reload()
    assert "Überblick" in page.inner_text("header nav")

    assert not outside, f"requests left the server: {outside[:5]}"
    assert not errors, f"browser console errors: {errors[:5]}"
    context.close()

    # what the browser did is in the store
    server.stop()
    with Store.open(sample_store) as store:
        decided = store.sql("SELECT status, decided_by FROM review_queue WHERE record_a = ? AND record_b = ?",
                            list(pair)).fetchall()
        assert decided == [("accepted", "marketer")]
        assert store.sql("SELECT created_by FROM console_campaigns WHERE campaign_id = 'spring-e2e'"
                         ).fetchall() == [("marketer",)]
        assert store.sql("SELECT lang FROM console_users WHERE username = 'marketer'").fetchall() == [("de",)]
        assert not store.sql("SELECT 1 FROM campaign_runs WHERE campaign_id = 'spring-e2e'").fetchall()


def test_viewer_is_refused(server: Server, browser: Any) -> None:
    """A viewer sees no decision buttons, and a direct POST with a valid token is refused."""
    base = server.url
    page = browser.new_page()
    page.goto(f"{base}/console/login")
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/console/quality")
    assert page.locator("tr.review-item button.accept").count() == 0
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    r = page.request.post(f"{base}/console/quality/review",
                          form={"csrf": token or "", "record_a": "a", "record_b": "b",
                                "decision": "accepted"})
    assert r.status == 403
    page.close()
