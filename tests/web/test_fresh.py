"""The fast paths read the same truth as before: search hits carry the profile's tier and CLV (summed
over its profile id and user ids), and the 360 page, now read in parallel, shows a consent change on
the very next request (nothing personal is cached)."""

from __future__ import annotations

from typing import Any

from xrm.config import Settings
from xrm.store import Store

from .conftest import console_app, login, test_client


def test_search_hits_carry_tier_and_clv_of_all_the_profiles_keys(sample_store: Settings) -> None:
    from xrm.web._customers import find_customers

    with Store.open(sample_store) as store:
        pid, user_id, email = store.sql("""
            SELECT i.profile_id, i.id_value, n.email FROM identifiers i
            JOIN profile_records r USING (profile_id) JOIN normalized_records n USING (record_id)
            JOIN customer_value v ON v.customer_id IN (i.id_value, CAST(i.profile_id AS VARCHAR))
            WHERE i.id_type = 'user_id' AND n.email IS NOT NULL ORDER BY v.clv DESC LIMIT 1
        """).fetchall()[0]
        keys = [str(pid), *(r[0] for r in store.sql(
            "SELECT id_value FROM identifiers WHERE profile_id = ? AND id_type = 'user_id'", [pid]
        ).fetchall())]
        tier, clv = store.sql("SELECT arg_max(tier, clv), sum(clv) FROM customer_value "
                              "WHERE customer_id IN (SELECT unnest(?))", [keys]).fetchall()[0]
        hits = {h["profile_id"]: h for h in find_customers(store, email)}
        assert hits[pid]["tier"] == tier and abs(hits[pid]["clv"] - clv) < 1e-9
        assert find_customers(store, user_id)[0]["matched_by"] == "user_id"


def test_customer_360_shows_a_consent_change_at_once(sample_store: Settings) -> None:
    from xrm.interact import record_consent

    with Store.open(sample_store) as store:
        pid, user_id = store.sql("SELECT profile_id, id_value FROM identifiers WHERE id_type = 'user_id' "
                                 "ORDER BY profile_id LIMIT 1").fetchall()[0]
    with test_client(console_app(sample_store)) as c:
        login(c, "viewer")
        url = f"/console/customers/{pid}"
        assert c.get(url).status_code == 200  # a first visit, so anything cacheable would be cached
        app_store: Any = c.app.state.store  # type: ignore[attr-defined]
        for status in ("granted", "revoked"):
            record_consent(app_store, user_id, "push", "service", status, source="console-test")
            page = c.get(url).text
            section = page[page.index('id="consents"'):]
            section = section[:section.index("</section>")]
            assert f'<td>push</td><td>service</td><td class="consent-{status}">' in section, status
