"""`make demo`'s campaigns: one triggered (abandoned basket) and one batch campaign on the sample
business, in dry run or through an SMTP server (a local sink), with their results.

    >>> run_demo_campaigns(store)  # doctest: +SKIP
    {'now': ..., 'campaigns': [...], 'delivery': None, 'results': []}
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from xrm.interact._campaigns import Campaign, Offer, run_campaigns
from xrm.interact._channels import Channel, SmtpTransport
from xrm.interact._clock import utc
from xrm.interact._consent import sync_consents
from xrm.interact._outbox import deliver_outbox
from xrm.interact._results import campaign_results
from xrm.interact._templates import Template
from xrm.interact._triggers import AbandonedBasket, TraitBelow

__all__ = ["demo_campaigns", "run_demo_campaigns"]

_BASKET = Template(
    subject="{{ customer.first_name | default('Hallo', true) }}, Ihr Warenkorb wartet",
    text=(
        "Hallo {{ customer.first_name | default('', true) }},\n\nSie haben etwas in Ihrem Warenkorb "
        "gelassen. Mit {{ offer.name }} ist es heute noch günstiger:\n"
        "{{ track('https://shop.example.com/cart') }}\n\nAbmelden: {{ unsubscribe_url }}\n"
    ),
    html=(
        "<html><body><p>Hallo {{ customer.first_name | default('', true) }},</p><p>Ihr Warenkorb wartet"
        " &ndash; mit {{ offer.name }}: <a href=\"{{ track('https://shop.example.com/cart') }}\">"
        "zum Warenkorb</a></p></body></html>"
    ),
    name="demo basket template",
)
_WINBACK = Template(
    subject="{{ customer.first_name | default('Hallo', true) }}, wir vermissen Sie",
    text=(
        "Hallo {{ customer.first_name | default('', true) }},\n\nlange nicht gesehen! {{ offer.name }} "
        "für Ihre nächste Bestellung: {{ track('https://shop.example.com/') }}\n\n"
        "Abmelden: {{ unsubscribe_url }}\n"
    ),
    name="demo win-back template",
)
_BATCH = Template(
    subject="{{ customer.first_name | default('Hallo', true) }}, {{ offer.name }} für Sie",
    text=(
        "Hallo {{ customer.first_name | default('', true) }},\n\n{{ offer.name }}: "
        "{{ track('https://shop.example.com/abo') }}\n\nAbmelden: {{ unsubscribe_url }}\n"
    ),
    name="demo batch template",
)


def demo_campaigns(store: Any = None) -> list[Campaign]:
    """The two demo campaigns (fixed offers: Customize's next-best offer plugs in as offer_fn).

    Triggered: a win-back when Differentiate's P(alive) is below 0.3 (table ``customer_value``)
    if the store has it, else an abandoned basket. Batch: the e-mail list (everyone who ever
    gave e-mail marketing consent; the gate keeps those whose consent is valid now).
    """
    has_value = store is not None and bool(store.sql(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'customer_value' "
        "AND column_name = 'p_alive'").fetchall()) and store.count("customer_value") > 0
    trigger: Any = (
        TraitBelow(0.3, "p_alive", "customer_value", "customer_id") if has_value
        else AbandonedBasket(wait=timedelta(hours=1), lookback=timedelta(days=7))
    )
    return [
        Campaign("demo-trigger", "Win back (P(alive) < 0.3)" if has_value
                 else "Abandoned basket (1 h)", "email", _BASKET if not has_value else _WINBACK,
                 trigger=trigger, offer=Offer("welcome-back", "Gratisversand", 4.0),
                 control_share=0.1, seed=1, priority=10,
                 # customer_value is keyed by Identify profile (pipeline's _BY_PROFILE).
                 customer_key="profile_id" if has_value else None),
        Campaign("demo-batch", "Coffee subscription for the e-mail list", "email", _BATCH,
                 audience=("SELECT DISTINCT customer FROM consents "
                           "WHERE channel = 'email' AND purpose = 'marketing'"),
                 offer=Offer("abo-10", "10 % auf das Kaffee-Abo", 6.0), control_share=0.2,
                 seed=2, priority=5),
    ]


def run_demo_campaigns(
    store: Any,
    *,
    now: datetime | None = None,
    smtp_host: str | None = None,
    smtp_port: int = 25,
    dry_run: bool | None = None,
) -> dict[str, Any]:
    """Run the demo campaigns; without ``smtp_host`` a dry run (nothing written or sent).

    ``now`` defaults to an hour after the newest event, so the sample's baskets can fire.
    """
    dry = smtp_host is None if dry_run is None else dry_run
    if now is None:
        newest = store.sql("SELECT max(ts) FROM events").fetchall()[0][0]
        now = (newest + timedelta(hours=1)) if newest else utc()
    at = utc(now)
    original = store.settings
    if original.secret_key is None:
        # Links need a secret; the demo makes a throwaway one (its links will not verify later).
        store.settings = original.model_copy(update={"secret_key": secrets.token_urlsafe(40)})
    try:
        with store.transaction() as tx:
            sync_consents(tx)  # the batch audience reads the consent list
        runs = run_campaigns(store, demo_campaigns(store), now=at, dry_run=dry)
        delivery = None
        results = []
        if not dry and smtp_host is not None:
            channels = {"email": Channel("email", SmtpTransport(smtp_host, smtp_port, starttls=False,
                                                                mail_from=store.settings.mail_from))}
            # The worker runs when the last message is due (quiet hours may defer them to
            # the morning in the customer's time zone).
            due = store.sql("SELECT max(not_before) FROM messages WHERE run_id IN "
                            "(SELECT unnest(?))", [[r.run_id for r in runs]]).fetchall()[0][0]
            delivery = deliver_outbox(store, channels, now=max(at, due or at)).as_dict()
            results = [campaign_results(store, r.campaign_id) for r in runs]
    finally:
        store.settings = original
    return {"now": at.isoformat(), "dry_run": dry,
            "campaigns": [r.as_dict() for r in runs], "delivery": delivery, "results": results}
