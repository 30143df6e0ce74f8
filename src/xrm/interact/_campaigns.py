"""Campaigns: triggered and one-to-one batch, each with a seeded control group.

A run finds its customers (the trigger's, or the audience's), keeps those with valid consent
and an address who are not suppressed, gives each their own offer, lets the contact policy
arbitrate between campaigns, holds out the control group, and writes the decisions and the
messages in one transaction (the transactional outbox). ``dry_run=True`` writes nothing.

    >>> c = Campaign("welcome", "Welcome", "email", Template("Hi {{ customer.first_name }}"),
    ...              audience="SELECT user_id AS customer FROM records")
    >>> runs = run_campaigns(store, [c], dry_run=True)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from xrm.exceptions import InputError
from xrm.interact._channels import DEFAULT_COSTS
from xrm.interact._clock import utc
from xrm.interact._consent import CHANNELS, PURPOSES, sync_consents
from xrm.interact._contacts import Contact, load_contacts
from xrm.interact._gate import Candidate, permission
from xrm.interact._policy import ContactPolicy, Wish, arbitrate, contact_counts
from xrm.interact._templates import Template
from xrm.interact._tracking import links_for
from xrm.interact._triggers import Trigger, trigger_from_dict

__all__ = ["Campaign", "CampaignRun", "Offer", "campaign_from_dict", "preview", "run_campaigns"]


@dataclass(frozen=True)
class Offer:
    """What a message offers; ``value`` is its expected margin (arbitration by value uses it)."""

    offer_id: str
    name: str
    value: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"offer_id": self.offer_id, "name": self.name, "value": self.value, **self.fields}


OfferFn = Callable[[Contact], Offer | None]


@dataclass
class Campaign:
    """A campaign: who (``audience`` SQL/Ibis table with a ``customer`` column, or a ``trigger``),
    on which channel and for which consent purpose, with which template and offer.

    ``offer_fn(contact) -> Offer | None`` gives each customer their own offer (e.g. Customize's
    next-best offer); without it every customer gets ``offer``. ``customer_key`` says what the
    customers are: a ``records`` column (``user_id``) or ``profile_id`` (Identify's profiles, as
    Differentiate's ``customer_value`` is keyed); None takes ``run_campaigns``' ``key_column``.
    """

    campaign_id: str
    name: str
    channel: str
    template: Template
    audience: Any = None
    trigger: Trigger | None = None
    purpose: str = "marketing"
    offer: Offer | None = None
    offer_fn: OfferFn | None = None
    control_share: float = 0.1
    seed: int = 0
    priority: int = 0
    customer_key: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.channel not in CHANNELS:
            problems.append(f"channel = {self.channel!r} (expected one of {', '.join(CHANNELS)})")
        if self.purpose not in PURPOSES:
            problems.append(f"purpose = {self.purpose!r} (expected one of {', '.join(PURPOSES)})")
        if not 0 <= self.control_share < 1:
            problems.append(f"control_share = {self.control_share!r} (expected 0 <= share < 1)")
        if (self.audience is None) == (self.trigger is None):
            problems.append("give exactly one of audience (batch) or trigger (triggered)")
        if self.channel == "email" and not self.template.subject:
            problems.append("an e-mail template needs a subject")
        if problems:
            raise InputError(f"campaign {self.campaign_id!r}: " + "; ".join(problems))
        self.template.check()

    @property
    def kind(self) -> str:
        return "triggered" if self.trigger is not None else "batch"

    def definition(self) -> dict[str, Any]:
        audience = self.audience if isinstance(self.audience, str) else None
        if self.audience is not None and audience is None:
            audience = "(Ibis expression or list; not stored)"
        return {
            "template": self.template.as_dict(),
            "audience": audience,
            "trigger": self.trigger.as_dict() if self.trigger else None,
            "offer": self.offer.as_dict() if self.offer else None,
            "offer_fn": getattr(self.offer_fn, "__qualname__", None),
            "customer_key": self.customer_key,
        }

    def candidates(self, store: Any, cur: duckdb.DuckDBPyConnection, at: datetime) -> dict[str, str | None]:
        """customer -> trigger key (None for batch campaigns)."""
        if self.trigger is not None:
            fired = self.trigger.fire(cur, at)
            done = {
                (r[0], r[1])
                for r in cur.execute(
                    "SELECT customer, trigger_key FROM campaign_members WHERE campaign_id = ? "
                    "AND trigger_key IS NOT NULL",
                    [self.campaign_id],
                ).fetchall()
            }
            return {c: k for c, k in fired if (c, k) not in done}
        return {c: None for c in _audience(store, cur, self)}


def _audience(store: Any, cur: duckdb.DuckDBPyConnection, c: Campaign) -> list[str]:
    aud = c.audience
    if isinstance(aud, list | tuple | set | frozenset):
        return sorted({str(x) for x in aud})
    if isinstance(aud, str):
        try:
            res = cur.execute(aud)
        except duckdb.Error as exc:
            raise InputError(
                f"campaign {c.campaign_id!r}: audience SQL failed: {str(exc).splitlines()[0]}"
            ) from None
        names = [d[0] for d in res.description or []]
        rows = res.fetchall()
        if "customer" not in names:
            raise InputError(
                f"campaign {c.campaign_id!r}: audience SQL must return a column named customer "
                f"(it returned {names}); e.g. SELECT user_id AS customer FROM ..."
            )
        i = names.index("customer")
        return sorted({str(r[i]) for r in rows if r[i] is not None})
    if hasattr(aud, "columns") and hasattr(aud, "execute"):  # an Ibis table expression
        if "customer" not in aud.columns:
            raise InputError(
                f"campaign {c.campaign_id!r}: audience expression has no column customer "
                f"(columns: {list(aud.columns)})"
            )
        sql = store.ibis.compile(aud.select("customer"))
        return sorted({str(r[0]) for r in cur.execute(str(sql)).fetchall() if r[0] is not None})
    raise InputError(f"campaign {c.campaign_id!r}: audience must be SQL, an Ibis table or a list")


def in_control(campaign: Campaign, customer: str) -> bool:
    """Seeded hold-out: a stable hash of (seed, campaign, customer) below the control share."""
    digest = hashlib.sha256(f"{campaign.seed}|{campaign.campaign_id}|{customer}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < campaign.control_share


@dataclass
class CampaignRun:
    run_id: str
    campaign_id: str
    kind: str
    dry_run: bool
    started_at: datetime
    audience: int
    outcomes: dict[str, int]
    messages: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would be sent

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["started_at"] = self.started_at.isoformat()
        return d


def _context(campaign: Campaign, contact: Contact, offer: Offer | None, links: Any,
             at: datetime) -> dict[str, Any]:
    return {
        "customer": contact.as_dict(),
        "offer": offer.as_dict() if offer else {},
        "campaign": {"id": campaign.campaign_id, "name": campaign.name},
        "track": links.track,
        "unsubscribe_url": links.unsubscribe_url,
        "now": at,
    }


def _render(store: Any, campaign: Campaign, contact: Contact, offer: Offer | None,
            message_id: str, at: datetime) -> tuple[Any, Any]:
    links = links_for(store.settings, message_id, contact.customer, campaign.channel,
                      campaign.purpose, campaign.campaign_id, at)
    rendered = campaign.template.render(
        _context(campaign, contact, offer, links, at),
        pixel_url=links.pixel_url if campaign.channel == "email" else None,
    )
    return rendered, links


def run_campaigns(
    store: Any,
    campaigns: Sequence[Campaign],
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    policy: ContactPolicy | None = None,
    key_column: str = "user_id",
    costs: dict[str, float] | None = None,
    keep_previews: int = 5,
) -> list[CampaignRun]:
    """Run campaigns together (the contact policy arbitrates between them); see module doc."""
    at = utc(now)
    policy = policy or ContactPolicy(default_timezone=store.settings.default_timezone)
    costs = {**DEFAULT_COSTS, **(costs or {})}
    ids = [c.campaign_id for c in campaigns]
    if len(set(ids)) != len(ids):
        raise InputError(f"run_campaigns: campaign ids repeat: {ids}")
    with store.transaction() as tx:
        sync_consents(tx)
        wanted = {c.campaign_id: c.candidates(store, tx, at) for c in campaigns}
    everyone = {cust for cands in wanted.values() for cust in cands}
    keys = {c.campaign_id: c.customer_key or key_column for c in campaigns}
    # Contacts per key kind: a user id and a profile id may be spelled alike.
    by_kind = {
        kind: load_contacts(store, {cust for c in campaigns if keys[c.campaign_id] == kind
                                    for cust in wanted[c.campaign_id]}, key_column=kind)
        for kind in set(keys.values())
    }
    cur = store.con.cursor()
    try:
        cands = [
            Candidate(f"{c.campaign_id}\x00{cust}", cust, c.channel, c.purpose,
                      (by_kind[keys[c.campaign_id]].get(cust) or Contact(cust))
                      .address_for(c.channel), keys[c.campaign_id])
            for c in campaigns for cust in wanted[c.campaign_id]
        ]
        verdicts = permission(cur, cands, at, region=store.settings.default_region, sync=False)
        counts = contact_counts(cur, everyone, at)
    finally:
        cur.close()
    outcome: dict[tuple[str, str], str] = {}
    offers: dict[tuple[str, str], Offer | None] = {}
    wishes = []
    by_id = {c.campaign_id: c for c in campaigns}
    for cand in cands:
        cid, cust = cand.key.split("\x00", 1)
        c = by_id[cid]
        if verdicts[cand.key] != "ok":
            outcome[(cid, cust)] = verdicts[cand.key]
            continue
        contact = by_kind[keys[cid]].get(cust) or Contact(cust)
        offer = c.offer_fn(contact) if c.offer_fn else c.offer
        offers[(cid, cust)] = offer
        if c.offer_fn and offer is None:
            outcome[(cid, cust)] = "no_offer"
            continue
        wishes.append(Wish(cid, cust, c.channel, c.priority, offer.value if offer else 0.0))
    marketing = [w for w in wishes if by_id[w.campaign_id].purpose != "service"
                 or not policy.service_exempt]
    arbitrate(marketing, counts, policy)
    capped = {id(w) for w in marketing if not w.admitted}
    for w in wishes:
        if id(w) in capped:
            outcome[(w.campaign_id, w.customer)] = w.reason
        elif in_control(by_id[w.campaign_id], w.customer):
            outcome[(w.campaign_id, w.customer)] = "control"
        else:
            outcome[(w.campaign_id, w.customer)] = "dry_run" if dry_run else "queued"

    runs: list[CampaignRun] = []
    members: list[tuple[Any, ...]] = []
    messages: list[tuple[Any, ...]] = []
    for c in campaigns:
        run = CampaignRun(uuid.uuid4().hex, c.campaign_id, c.kind, dry_run, at,
                          len(wanted[c.campaign_id]), {})
        tally: Counter[str] = Counter()
        for cust, trigger_key in sorted(wanted[c.campaign_id].items()):
            result = outcome[(c.campaign_id, cust)]
            tally[result] += 1
            offer = offers.get((c.campaign_id, cust))
            group = {"control": "control", "queued": "target", "dry_run": "target"}.get(result)
            message_id = None
            if result in ("queued", "dry_run"):
                contact = by_kind[keys[c.campaign_id]].get(cust) or Contact(cust)
                message_id = uuid.uuid4().hex
                rendered, _ = _render(store, c, contact, offer, message_id, at)
                address = contact.address_for(c.channel)
                tz = contact.timezone or policy.default_timezone
                not_before = (at if c.purpose == "service" and policy.service_exempt
                              else policy.next_allowed(at, tz, c.channel))
                fields = {**(offer.as_dict() if offer else {}),
                          "first_name": contact.first_name, "last_name": contact.last_name}
                if dry_run:
                    if len(run.messages) < keep_previews:
                        run.messages.append({"customer": cust, "to": address,
                                             "subject": rendered.subject, "text": rendered.text,
                                             "not_before": not_before.isoformat()})
                    message_id = None
                else:
                    messages.append((
                        message_id, c.campaign_id, run.run_id, cust, c.channel, c.purpose, address,
                        tz, rendered.subject, rendered.text, rendered.html, json.dumps(fields,
                                                                                       default=str),
                        offer.offer_id if offer else None, costs.get(c.channel, 0.0), not_before, at,
                        keys[c.campaign_id],
                    ))
            members.append((c.campaign_id, run.run_id, cust, trigger_key, group, result,
                            offer.offer_id if offer else None, offer.value if offer else None, at,
                            message_id))
        run.outcomes = dict(sorted(tally.items()))
        runs.append(run)
    if dry_run:
        return runs
    # The transactional outbox: decisions and messages are committed together, or neither.
    with store.transaction() as tx:
        for c, run in zip(campaigns, runs, strict=True):
            tx.execute(
                "INSERT INTO campaigns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (campaign_id) DO UPDATE SET name = excluded.name, kind = excluded.kind, "
                "channel = excluded.channel, purpose = excluded.purpose, priority = excluded.priority, "
                "control_share = excluded.control_share, seed = excluded.seed, "
                "definition = excluded.definition, updated_at = excluded.updated_at",
                [c.campaign_id, c.name, c.kind, c.channel, c.purpose, c.priority, c.control_share,
                 c.seed, json.dumps(c.definition(), default=str), at, at],
            )
            tx.execute(
                "INSERT INTO campaign_runs VALUES (?, ?, ?, ?, ?, ?)",
                [run.run_id, c.campaign_id, at, False, run.audience, json.dumps(run.outcomes)],
            )
        if members:
            tx.executemany("INSERT INTO campaign_members VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           members)
        if messages:
            tx.executemany(
                "INSERT INTO messages (message_id, campaign_id, run_id, customer, channel, purpose, "
                "address, timezone, subject, body_text, body_html, fields, offer_id, cost, status, "
                "not_before, created_at, customer_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, 'queued', ?, ?, ?)",
                messages,
            )
    return runs


def preview(
    store: Any, campaign: Campaign, customer: str, *, now: datetime | None = None,
    key_column: str = "user_id",
) -> dict[str, Any]:
    """What ``customer`` would get from ``campaign`` now, and whether it could be sent."""
    at = utc(now)
    key_column = campaign.customer_key or key_column
    contact = load_contacts(store, [customer], key_column=key_column).get(customer)
    if contact is None:
        raise InputError(
            f"preview: no record has {key_column} = {customer!r}; name a customer in the store"
        )
    with store.transaction() as tx:
        verdict = permission(tx, [Candidate(customer, customer, campaign.channel, campaign.purpose,
                                            contact.address_for(campaign.channel), key_column)], at,
                             region=store.settings.default_region)[customer]
    offer = campaign.offer_fn(contact) if campaign.offer_fn else campaign.offer
    rendered, links = _render(store, campaign, contact, offer, "preview-" + uuid.uuid4().hex, at)
    return {
        "customer": customer, "campaign_id": campaign.campaign_id, "channel": campaign.channel,
        "to": contact.address_for(campaign.channel), "permission": verdict,
        "control_group": in_control(campaign, customer),
        "offer": offer.as_dict() if offer else None, "subject": rendered.subject,
        "text": rendered.text, "html": rendered.html,
        "headers": links.list_unsubscribe_headers() if campaign.channel == "email" else {},
    }


def campaign_from_dict(d: dict[str, Any]) -> Campaign:
    """A campaign from a TOML/JSON definition (``[template]``, ``audience`` or ``[trigger]``,
    ``[offer]``); what a file can say, without Python functions."""
    try:
        t = d["template"]
        offer = d.get("offer")
        return Campaign(
            campaign_id=d["id"], name=d.get("name", d["id"]), channel=d["channel"],
            template=Template(text=t["text"], subject=t.get("subject"), html=t.get("html"),
                              name=f"campaign {d['id']} template"),
            audience=d.get("audience"),
            trigger=trigger_from_dict(d["trigger"]) if d.get("trigger") else None,
            purpose=d.get("purpose", "marketing"),
            offer=Offer(offer["offer_id"], offer.get("name", offer["offer_id"]),
                        float(offer.get("value", 0.0)),
                        {k: v for k, v in offer.items() if k not in ("offer_id", "name", "value")})
            if offer else None,
            control_share=float(d.get("control_share", 0.1)), seed=int(d.get("seed", 0)),
            priority=int(d.get("priority", 0)), customer_key=d.get("customer_key"),
        )
    except KeyError as exc:
        raise InputError(
            f"campaign definition: missing {exc.args[0]!r} (needed: id, channel, template.text, "
            "and audience or trigger)"
        ) from None
