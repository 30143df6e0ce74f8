"""Ground truth for evaluation: who each person really is, and which records and identifiers
are theirs.  Written to ``truth/`` and never loaded into the store.

    >>> tables = truth_tables(people, beh, orders, keys, devices, theta)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from xrm.sample._behaviour import Behaviour, Orders
from xrm.sample._keys import Keys
from xrm.sample._lifecycle import referral_code
from xrm.sample._people import NULL, People
from xrm.sample._web import Devices

__all__ = ["USER_ID_TRUTH_TYPES", "truth_tables"]

# The identifier types of truth/identifier_person.parquet that belong to one person each and are
# what the sample's events carry as userId: the way from a scored customer back to its person.
USER_ID_TRUTH_TYPES = ("account_id", "loyalty_card", "subscriber_id", "crm_id")

_TS = pa.timestamp("ms", tz="UTC")


def _e164(numbers: np.ndarray) -> np.ndarray:
    return np.array([None if x is None else f"+49{x[0]}{x[1]}" for x in numbers], dtype=object)


def _ts(ms: np.ndarray) -> pa.Array:
    ms = np.asarray(ms, dtype=np.int64)
    return pa.array(ms, type=_TS, mask=ms < 0)


def _hh_id(household: np.ndarray) -> list[str]:
    return [f"H{h:08d}" for h in household]


def truth_tables(
    people: People, beh: Behaviour, orders: Orders, keys: Keys, devices: Devices, theta: np.ndarray
) -> dict[str, pa.Table]:
    pid = people.person_id
    n = len(people)
    mobile = _e164(people.mobile)
    landline = _e164(people.landline)
    referred_by = np.where(beh.referrer >= 0, pid[np.maximum(beh.referrer, 0)], NULL)
    n_orders = np.bincount(orders.person, minlength=n)
    persons = pa.table({
        "person_id": pa.array(pid, pa.string()),
        "household_id": pa.array(_hh_id(people.household), pa.string()),
        "gender": pa.array(people.gender, pa.string()),
        "title": pa.array(people.title, pa.string()),
        "first_name": pa.array(people.first_name, pa.string()),
        "last_name": pa.array(people.last_name, pa.string()),
        "maiden_name": pa.array(people.maiden_name, pa.string()),
        "birth_date": pa.array(people.birth.astype("datetime64[D]"), pa.date32()),
        "email": pa.array(people.email, pa.string()),
        "mobile": pa.array(mobile, pa.string()),
        "street": pa.array(people.street, pa.string()),
        "house_number": pa.array(people.house_number, pa.string()),
        "postcode": pa.array(people.postcode, pa.string()),
        "city": pa.array(people.city, pa.string()),
        "moved": pa.array(people.moved, pa.bool_()),
        "social_handle": pa.array(people.handle, pa.string()),
        "social_platform": pa.array(people.platform, pa.string()),
        "acquired_at": _ts(orders.first_ms),
        "online_share": pa.array(beh.online_share),
        "lambda_per_week": pa.array(beh.lam),
        "p_dropout": pa.array(beh.p),
        "dropout_at": _ts(orders.dropout_ms),
        "n_orders": pa.array(n_orders, pa.int64()),
        "n_repeat": pa.array(orders.n_repeat, pa.int64()),
        "spend_mean": pa.array(beh.spend_mean),
        "subscription_theta": pa.array(theta, mask=np.isnan(theta)),
        "referred_by": pa.array(referred_by, pa.string()),
    })

    rows: list[tuple[str, object, str, bool]] = []

    def add(kind: str, values: np.ndarray, shared: np.ndarray | bool = False) -> None:
        shared_arr = np.broadcast_to(np.asarray(shared), (n,))
        for i in np.flatnonzero(values != None).tolist():  # noqa: E711
            rows.append((kind, values[i], pid[i], bool(shared_arr[i])))

    lower = np.vectorize(lambda s: None if s is None else s.lower(), otypes=[object])
    add("email", lower(people.email))
    used_alt = (keys.account2 != None) | (keys.subscriber2 != None)  # noqa: E711
    add("email", lower(np.where(used_alt, people.alt_email, NULL)))
    add("email", lower(people.family_email), True)
    add("phone", mobile)
    add("phone", landline, people.household_size > 1)
    for kind, values in (("account_id", keys.account), ("account_id", keys.account2),  # USER_ID_TRUTH_TYPES
                         ("loyalty_card", keys.card), ("loyalty_card", keys.card2),
                         ("subscriber_id", keys.subscriber), ("subscriber_id", keys.subscriber2),
                         ("crm_id", keys.crm)):
        add(kind, values)
    for col in range(devices.own.shape[1]):
        add("anonymous_id", devices.own[:, col])
    add("anonymous_id", devices.shared, True)
    for platform in ("twitter", "instagram"):
        add(platform, np.where(people.platform == platform, people.handle, NULL))
    identifiers = pa.table({
        "identifier_type": pa.array([r[0] for r in rows], pa.string()),
        "value": pa.array([r[1] for r in rows], pa.string()),
        "person_id": pa.array([r[2] for r in rows], pa.string()),
        "shared": pa.array([r[3] for r in rows], pa.bool_()),
    })

    heads = np.flatnonzero(people.member == 0)
    tablet = np.full(n, None, dtype=object)
    for i in np.flatnonzero(devices.shared != None):  # noqa: E711
        tablet[i] = devices.shared[i]
    hh_tablet: dict[int, str] = {}
    for i in np.flatnonzero(tablet != None):  # noqa: E711
        hh_tablet.setdefault(people.household[i], tablet[i])
    households = pa.table({
        "household_id": pa.array(_hh_id(people.household[heads]), pa.string()),
        "size": pa.array(people.household_size[heads], pa.int64()),
        "street": pa.array(people.street[heads], pa.string()),
        "house_number": pa.array(people.house_number[heads], pa.string()),
        "postcode": pa.array(people.postcode[heads], pa.string()),
        "city": pa.array(people.city[heads], pa.string()),
        "family_email": pa.array(people.family_email[heads], pa.string()),
        "landline": pa.array(landline[heads], pa.string()),
        "shared_device": pa.array([hh_tablet.get(h) for h in people.household[heads]], pa.string()),
    })

    referred = np.flatnonzero(beh.referrer >= 0)
    referrals = pa.table({
        "referrer_person_id": pa.array(pid[beh.referrer[referred]], pa.string()),
        "referred_person_id": pa.array(pid[referred], pa.string()),
        "referred_at": _ts(beh.t0[referred] // 1000 * 1000),
        "referral_code": pa.array(referral_code(people.gidx[beh.referrer[referred]]), pa.string()),
    })
    return {"persons": persons, "identifier_person": identifiers, "households": households,
            "referrals": referrals}
