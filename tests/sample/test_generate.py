"""The sample business: determinism, scale, manifest, and ground truth consistent with the files."""

from __future__ import annotations

import csv
import hashlib
import json
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy.special import hyp2f1

import xrm.sample
from xrm.exceptions import ConfigError
from xrm.sample import SampleParams, generate_sample

RECORD_FIELDS = {
    "source_key", "party_kind", "title", "first_name", "last_name", "organisation", "birth_date",
    "gender", "email", "phone", "street", "house_number", "postcode", "city", "country",
    "loyalty_card", "account_id", "user_id", "updated_at",
}


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_public_surface():
    assert set(xrm.sample.__all__) == {
        "CHUNK_SIZE", "EVENT_FILES", "Behaviour", "Coverage", "NoiseRates", "SampleParams", "generate_sample"
    }


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 3), (b, 3), (c, 4)):
        generate_sample(out, customers=800, seed=seed, show_progress=False, chunk_size=500)
    da, db, dc = _digests(a), _digests(b), _digests(c)
    assert len(da) >= 20 and da == db
    changed = {k for k in da if da[k] != dc.get(k) and not k.startswith("mappings/")}
    assert len(changed) >= len(da) - len([k for k in da if k.startswith("mappings/")])


def test_sizes_scale_with_customers(tmp_path, small_sample):
    _, big = small_sample
    small = generate_sample(tmp_path, customers=3_000, seed=7, show_progress=False, chunk_size=3_000)
    for f_small, f_big in zip(small["files"], big["files"], strict=True):
        assert f_small["path"] == f_big["path"]
        if f_small["path"].endswith("referrals.jsonl"):
            continue  # small counts: too noisy for a ratio
        ratio = f_big["rows"] / f_small["rows"]
        assert 1.7 < ratio < 2.3, (f_small["path"], ratio)
    assert 1.8 < big["events"] / small["events"] < 2.2


def test_manifest_lists_every_file_with_a_mapping_or_kind(small_sample):
    out, manifest = small_sample
    on_disk = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == manifest
    assert manifest["name"] == "xrm sample business" and manifest["customers"] == 6_000
    assert manifest["seed"] == 7
    for entry in manifest["files"]:
        assert (out / entry["path"]).is_file(), entry
        assert ("mapping" in entry) != ("kind" in entry)
        if "mapping" in entry:
            assert (out / entry["mapping"]).is_file()
        else:
            assert entry["kind"] == "events"
    assert {e["path"] for e in manifest["files"]} >= {"events/orders.parquet", "events/subscriptions.jsonl"}
    assert [s["path"] for s in manifest["social"]] == ["social/posts.jsonl"]
    for path in manifest["truth"].values():
        assert (out / path).is_file()
    # about 50 events per customer
    assert 40 < manifest["events"] / manifest["customers"] < 60


def _read_source(out: Path, entry: dict) -> tuple[list[str], list[dict[str, str]]]:
    mapping = tomllib.loads((out / entry["mapping"]).read_text(encoding="utf-8"))
    path = out / entry["path"]
    if mapping["format"] == "parquet":
        table = pq.read_table(path)
        return table.column_names, table.to_pylist()
    with path.open(encoding=mapping["encoding"], newline="") as handle:
        reader = csv.DictReader(handle, delimiter=mapping["delimiter"])
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_mappings_are_valid_and_name_real_columns(small_sample):
    out, manifest = small_sample
    for entry in manifest["files"]:
        if "mapping" not in entry:
            continue
        mapping = tomllib.loads((out / entry["mapping"]).read_text(encoding="utf-8"))
        assert mapping["kind"] == "records"
        assert set(mapping["columns"]) <= RECORD_FIELDS
        assert "source_key" in mapping["columns"]
        header, rows = _read_source(out, entry)
        assert set(mapping["columns"].values()) <= set(header), entry["path"]
        assert len(rows) == entry["rows"]


def test_every_record_maps_to_a_person(small_sample):
    out, manifest = small_sample
    truth = pq.read_table(out / "truth/record_person.parquet").to_pylist()
    persons = set(pq.read_table(out / "truth/persons.parquet")["person_id"].to_pylist())
    by_record = {(t["source"], t["source_key"]): t["person_id"] for t in truth}
    assert len(by_record) == len(truth)  # record keys are unique
    assert set(by_record.values()) <= persons
    seen = 0
    for entry in manifest["files"]:
        if "mapping" not in entry:
            continue
        mapping = tomllib.loads((out / entry["mapping"]).read_text(encoding="utf-8"))
        key = mapping["columns"]["source_key"]
        _, rows = _read_source(out, entry)
        for row in rows:
            assert (mapping["source"], row[key]) in by_record
        seen += len(rows)
    assert seen == len(truth)
    # everyone is known to at least one source system
    assert set(by_record.values()) == persons


def test_duplicates_across_and_within_sources_at_configured_rates(small_sample):
    out, _ = small_sample
    cov = SampleParams().coverage
    rp = pq.read_table(out / "truth/record_person.parquet").to_pandas()
    persons = pq.read_table(out / "truth/persons.parquet").to_pandas()
    n = len(persons)
    per_source = rp.groupby(["person_id", "source"]).size().unstack(fill_value=0)
    both = ((per_source["webshop"] > 0) & (per_source["loyalty"] > 0)).sum() / n
    omni = 1 - cov.online_only - cov.store_only
    assert abs(both - omni) < 0.04
    online = (persons.online_share > 0).sum()
    two_accounts = (per_source["webshop"] == 2).sum() / online
    assert abs(two_accounts - cov.second_account) < 0.015
    crm = (per_source["crm"] > 0).sum() / n
    assert abs(crm - cov.crm) < 0.03
    assert (per_source.sum(axis=1) >= 2).mean() > 0.5  # most people are duplicated somewhere


def test_noise_shows_in_the_loyalty_file(small_sample):
    out, manifest = small_sample
    entry = next(e for e in manifest["files"] if e["path"] == "sources/loyalty_cards.csv")
    _, rows = _read_source(out, entry)
    truth = pq.read_table(out / "truth/record_person.parquet").to_pylist()
    rp = {r["source_key"]: r["person_id"] for r in truth}
    persons = {p["person_id"]: p for p in pq.read_table(out / "truth/persons.parquet").to_pylist()}
    differ = sum(persons[rp[r["kartennr"]]]["last_name"] != r["nachname"] for r in rows) / len(rows)
    first_differ = sum(persons[rp[r["kartennr"]]]["first_name"] != r["vorname"] for r in rows) / len(rows)
    # typos, transliteration and maiden names; nicknames and typos
    assert 0.08 < differ < 0.6 and 0.1 < first_differ < 0.5
    assert any("ue" in r["nachname"] or "ss" in r["nachname"] for r in rows)


def test_loyalty_csv_is_cp1252_with_semicolons_and_german_formats(small_sample):
    out, _ = small_sample
    raw = (out / "sources/loyalty_cards.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("cp1252")
    header, first = text.split("\r\n")[:2]
    assert header.split(";")[:3] == ["kartennr", "anrede", "vorname"]
    fields = dict(zip(header.split(";"), first.split(";"), strict=True))
    assert fields["ausgestellt_am"][2] == "." and fields["ausgestellt_am"][5] == "."
    assert "," in fields["umsatz_gesamt"]
    assert any(ch in text for ch in "äöüß")
    # the web shop is UTF-8 with commas and ISO dates
    web = (out / "sources/webshop_accounts.csv").read_text(encoding="utf-8").splitlines()
    assert web[0].startswith("account_id,email,")


def test_events_have_segment_shape(small_sample):
    out, manifest = small_sample
    ids: set[str] = set()
    total = 0
    start = np.datetime64("2023-01-01T00:00:00")
    end = np.datetime64(manifest["end"] + "T00:00:00")
    for entry in manifest["files"]:
        if entry.get("kind") != "events":
            continue
        path = out / entry["path"]
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            assert table.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
            assert table.schema.field("properties").type == pa.string()
            assert set(table["type"].unique().to_pylist()) <= {"track", "page", "screen", "identify"}
            who = pc.or_(pc.is_valid(table["user_id"]), pc.is_valid(table["anonymous_id"]))
            assert pc.all(who).as_py()
            track = table.filter(pc.equal(table["type"], "track"))
            assert pc.all(pc.is_valid(track["event"]), min_count=0).as_py()
            for row in table.slice(0, 3000).to_pylist():
                for col in ("properties", "traits", "context"):
                    if row[col] is not None:
                        json.loads(row[col])
            ts = table["timestamp"].to_numpy().astype("datetime64[ms]")
            assert ts.min() >= start - np.timedelta64(31, "D") and ts.max() < end
            ids.update(table["message_id"].to_pylist())
            total += table.num_rows
        else:
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            for row in rows:
                assert row["type"] == "track" and row["event"] and row["userId"]
                assert row["timestamp"].endswith("Z") and row["timestamp"] < manifest["end"]
            ids.update(r["messageId"] for r in rows)
            total += len(rows)
    assert len(ids) == total  # messageIds are unique across all files


def test_orders_follow_the_ecommerce_spec(small_sample):
    out, _ = small_sample
    orders = pq.read_table(out / "events/orders.parquet").to_pylist()
    events = {o["event"] for o in orders}
    assert events == {"Order Completed", "Order Refunded"}
    for o in orders[:3000]:
        props = json.loads(o["properties"])
        assert props["order_id"] == o["order_id"] and props["currency"] == "EUR"
        total = sum(p["price"] * p["quantity"] for p in props["products"])
        assert props["revenue"] == pytest.approx(o["revenue"])
        if o["event"] == "Order Completed":
            assert total == pytest.approx(o["revenue"]) and o["revenue"] > 0
            assert props["channel"] in {"online", "store"}
        else:
            assert o["revenue"] < 0 and total == pytest.approx(-o["revenue"])
        for p in props["products"]:
            assert {"product_id", "sku", "name", "category", "price", "quantity"} <= set(p)


def _identifier_owner(out: Path) -> dict[str, set[str]]:
    owners: dict[str, set[str]] = {}
    for row in pq.read_table(out / "truth/identifier_person.parquet").to_pylist():
        owners.setdefault(row["value"], set()).add(row["person_id"])
    return owners


def test_orders_per_person_match_truth_through_identifiers(small_sample):
    out, _ = small_sample
    owners = _identifier_owner(out)
    persons = pq.read_table(out / "truth/persons.parquet").to_pandas().set_index("person_id")
    counted: dict[str, int] = {}
    orders = pq.read_table(out / "events/orders.parquet").to_pylist()
    for o in orders:
        if o["event"] != "Order Completed":
            continue
        key = o["user_id"] or json.loads(o["context"])["traits"]["loyalty_card"]
        (person,) = owners[key]
        counted[person] = counted.get(person, 0) + 1
    observed = persons.index.map(lambda p: counted.get(p, 0))
    assert (observed.to_numpy() == persons["n_orders"].to_numpy()).all()
    assert (persons["n_orders"] >= 1).all()


def test_repeat_purchases_match_the_bgnbd_expectation(small_sample):
    """Mean repeat purchases vs E[X(T)] of BG/NBD (Fader, Hardie & Lee 2005, eq. 9)."""
    out, manifest = small_sample
    b = SampleParams().behaviour
    persons = pq.read_table(out / "truth/persons.parquet").to_pandas()
    end = np.datetime64(manifest["end"] + "T00:00:00", "ms")
    acquired = persons["acquired_at"].dt.tz_localize(None).to_numpy().astype("datetime64[ms]")
    t = (end - acquired).astype(np.int64) / (7 * 86_400_000)
    expected = (b.a + b.b - 1) / (b.a - 1) * (
        1 - (b.alpha / (b.alpha + t)) ** b.r * hyp2f1(b.r, b.b, b.a + b.b - 1, t / (b.alpha + t))
    )
    observed = persons["n_repeat"].to_numpy()
    se = observed.std() / np.sqrt(len(observed))
    assert abs(observed.mean() - expected.mean()) < 4 * se
    # dropouts happen only to people who bought again
    dropped = persons["dropout_at"].notna()
    assert (persons.loc[dropped, "n_repeat"] >= 1).all() and 0.2 < dropped.mean() < 0.7


def test_subscriptions_follow_sbg_churn(small_sample):
    out, _ = small_sample
    b = SampleParams().behaviour
    lines = (out / "events/subscriptions.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(x) for x in lines]
    started = [e for e in events if e["event"] == "Subscription Started"]
    cancelled = [e for e in events if e["event"] == "Subscription Cancelled"]
    assert started and cancelled
    # renewal after the first month: P(renew) = E[1 - θ] = β / (α + β) for those observed a month
    first_renewals = {e["properties"]["subscription_id"] for e in events
                      if e["event"] == "Subscription Renewed" and e["properties"]["period"] == 2}
    cancelled_first = {
        e["properties"]["subscription_id"] for e in cancelled if e["properties"]["periods"] == 1
    }
    decided = len(first_renewals) + len(cancelled_first)
    share = len(first_renewals) / decided
    assert abs(share - b.beta_sbg / (b.alpha_sbg + b.beta_sbg)) < 0.06


def test_identify_links_a_device_to_its_owner(small_sample):
    out, _ = small_sample
    owners = _identifier_owner(out)
    web = pq.read_table(out / "events/web.parquet", columns=["type", "user_id", "anonymous_id", "traits"])
    identifies = [r for r in web.to_pylist() if r["type"] == "identify"]
    assert identifies
    for r in identifies[:2000]:
        assert owners[r["user_id"]] <= owners[r["anonymous_id"]]
        assert "email" in json.loads(r["traits"])
    shared = pq.read_table(out / "truth/identifier_person.parquet").to_pandas()
    tablets = shared[(shared.identifier_type == "anonymous_id") & shared.shared]
    assert tablets.groupby("value").person_id.nunique().min() >= 2


def test_referrals_and_households_in_truth(small_sample):
    out, _ = small_sample
    referrals = pq.read_table(out / "truth/referrals.parquet").to_pylist()
    lines = (out / "events/referrals.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(x) for x in lines]
    assert len(referrals) == len(events) > 0
    owners = _identifier_owner(out)
    pairs = {(r["referrer_person_id"], r["referred_person_id"]) for r in referrals}
    for e in events:
        (referrer,) = owners[e["properties"]["referrer_user_id"]]
        (referred,) = owners[e["userId"]]
        assert (referrer, referred) in pairs
    households = pq.read_table(out / "truth/households.parquet").to_pandas()
    persons = pq.read_table(out / "truth/persons.parquet").to_pandas()
    assert households["size"].sum() == len(persons)
    assert set(persons.household_id) == set(households.household_id)


def test_social_authors_are_partly_customers(small_sample):
    out, _ = small_sample
    posts = [json.loads(x) for x in (out / "social/posts.jsonl").read_text(encoding="utf-8").splitlines()]
    handles = set(pq.read_table(out / "truth/persons.parquet")["social_handle"].drop_null().to_pylist())
    authors = {p["author_handle"] for p in posts}
    linked = len(authors & handles) / len(authors)
    assert 0.3 < linked < 0.9
    ids = {p["post_id"] for p in posts}
    assert len(ids) == len(posts)
    assert all(p["reply_to"] in ids for p in posts if p["reply_to"])
    assert {p["lang"] for p in posts} == {"de", "en"}


def test_bad_arguments_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"customers = 0 must be .* at least 1") as info:
        generate_sample(tmp_path, customers=0, years=-1, show_progress=False)
    assert "years = -1" in str(info.value)
