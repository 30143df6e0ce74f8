"""Property: no message leaves without valid consent for its channel and purpose at send time.

Hypothesis draws consent histories (grants, denials, revocations, pending opt-ins, expiries;
through the API and as ingested `Consent Updated` events; some arriving only after the campaign
has queued its messages), campaigns on several channels and purposes, and delivery times. An
oracle written here, independent of xrm's SQL, decides validity; every message the transport
received must have had valid consent when it was sent, and every queued message that had valid
consent at its first delivery attempt must have gone.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.interact.conftest import add_event, add_person

from xrm.config import Settings
from xrm.interact import (
    Campaign,
    Channel,
    ContactPolicy,
    FakeTransport,
    Template,
    deliver_outbox,
    record_consent,
    run_campaigns,
)
from xrm.store import Store

T0 = datetime(2026, 6, 1, 9, 0)
PEOPLE = ("u0", "u1", "u2", "u3")
CHANNELS = ("email", "sms")
PURPOSES = ("marketing", "service")
NO_LIMITS = ContactPolicy(
    channel_caps={}, overall=__import__("xrm").interact.Caps(), quiet_start=time(0, 0), quiet_end=time(0, 0)
)

KEYS = [(c, ch, p) for c in PEOPLE for ch in CHANNELS for p in PURPOSES]
action = st.fixed_dictionaries(
    {
        "customer": st.sampled_from(PEOPLE),
        "channel": st.sampled_from(CHANNELS),
        "purpose": st.sampled_from(PURPOSES),
        "status": st.sampled_from(("granted", "granted", "denied", "revoked", "revoked", "pending")),
        "minute": st.integers(0, 300),
        "expires_after": st.sampled_from((None, None, 30, 90, 200)),
        "via_event": st.booleans(),
        "late": st.booleans(),  # arrives only after the campaign run
    }
)
campaign = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(CHANNELS),
        "purpose": st.sampled_from(PURPOSES),
        "audience": st.sets(st.sampled_from(PEOPLE), min_size=2),
        "control": st.sampled_from((0.0, 0.3)),
    }
)


def valid(history: list[dict], customer: str, channel: str, purpose: str, at: datetime) -> bool:
    rows = [
        a
        for a in history
        if (a["customer"], a["channel"], a["purpose"]) == (customer, channel, purpose) and a["at"] <= at
    ]
    if not rows:
        return False
    newest = max(a["at"] for a in rows)
    last = [a for a in rows if a["at"] == newest]
    if any(a["status"] != "granted" for a in last):
        return False
    return all(a["expires"] is None or a["expires"] > at for a in last)


def _apply(store: Store, a: dict) -> None:
    if a["via_event"] and a["status"] != "pending":
        props = {"channel": a["channel"], "purpose": a["purpose"], "granted": a["status"] == "granted"}
        if a["status"] == "granted" and a["expires"] is not None:
            props["expires_at"] = a["expires"].isoformat()
        add_event(store, "Consent Updated", a["customer"], a["at"], properties=props)
    else:
        record_consent(
            store,
            a["customer"],
            a["channel"],
            a["purpose"],
            a["status"],
            source="test",
            at=a["at"],
            expires_at=a["expires"] if a["status"] == "granted" else None,
        )


@pytest.mark.slow
def test_no_message_without_valid_consent(tmp_path):
    cfg = Settings(store_path=tmp_path / "p.duckdb", memory_limit="1GB", threads=1, secret_key="s" * 40)
    with Store.open(cfg) as store:
        for p in PEOPLE:
            add_person(store, p, email=f"{p}@example.com", phone="+4917012345" + p[-1])
        checked = {"sent": 0, "blocked": 0}

        # derandomize: the same draws on every run, so CI is stable; raise max_examples to hunt.
        @settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        @given(
            base=st.lists(
                st.tuples(
                    st.sampled_from((True, True, True, False)),
                    st.booleans(),
                    st.sampled_from((None, None, 150, 400)),
                ),
                min_size=len(KEYS),
                max_size=len(KEYS),
            ),
            actions=st.lists(action, max_size=16),
            campaigns=st.lists(campaign, min_size=1, max_size=3),
            run_minute=st.integers(60, 320),
            delays=st.lists(st.integers(0, 200), min_size=1, max_size=3),
        )
        def check(base, actions, campaigns, run_minute, delays):
            for table in (
                "consents",
                "messages",
                "campaign_members",
                "campaign_runs",
                "campaigns",
                "delivery_attempts",
                "events",
            ):
                store.sql(f"DELETE FROM {table}").fetchall()
            # Grants at the start for some keys, then random changes on top of them.
            history = [
                {
                    "customer": c,
                    "channel": ch,
                    "purpose": p,
                    "status": "granted",
                    "at": T0,
                    "expires": None if x is None else T0 + timedelta(minutes=x),
                    "via_event": ev,
                    "late": False,
                }
                for (c, ch, p), (given, ev, x) in zip(KEYS, base, strict=True)
                if given
            ]
            for a in actions:
                at = T0 + timedelta(minutes=a["minute"])
                expires = None if a["expires_after"] is None else at + timedelta(minutes=a["expires_after"])
                history.append({**a, "at": at, "expires": expires if a["status"] == "granted" else None})
            run_at = T0 + timedelta(minutes=run_minute)
            for a in history:
                if not a["late"]:
                    _apply(store, a)
            camps = [
                Campaign(
                    f"c{i}",
                    f"c{i}",
                    c["channel"],
                    Template("Hello {{ customer.first_name }}", subject="Hi"),
                    audience=sorted(c["audience"]),
                    purpose=c["purpose"],
                    control_share=c["control"],
                    seed=i,
                    priority=i,
                )
                for i, c in enumerate(campaigns)
            ]
            run_campaigns(store, camps, now=run_at, policy=NO_LIMITS)
            for a in history:
                if a["late"]:
                    _apply(store, a)
            fake = FakeTransport()
            channels = {ch: Channel(ch, fake) for ch in CHANNELS}
            at = run_at
            for delay in delays:
                at = at + timedelta(minutes=delay)
                pending = store.sql(
                    "SELECT message_id, customer, channel, purpose FROM messages WHERE status = 'queued'"
                ).fetchall()
                before = len(fake.sent)
                deliver_outbox(store, channels, now=at, policy=NO_LIMITS)
                went = {m.message_id for m in fake.sent[before:]}
                for m in fake.sent[before:]:
                    assert valid(history, m.customer, m.channel, m.purpose, at), (
                        f"{m.message_id} to {m.customer} on {m.channel}/{m.purpose} at {at} "
                        f"without valid consent; history: {history}"
                    )
                for mid, cust, ch, purpose in pending:
                    ok = valid(history, cust, ch, purpose, at)
                    assert (mid in went) == ok, f"{mid} {cust} {ch}/{purpose} at {at}: valid={ok}"
                    checked["sent" if ok else "blocked"] += 1

        check()
        # The draws exercised both sides of the rule.
        assert checked["sent"] >= 20 and checked["blocked"] >= 10, checked
