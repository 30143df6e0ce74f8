"""What keeps identify's decisions and cost flat as data grows (issues 3 and 9): the match
probability's prior does not shrink with the file, training runs on a capped uniform sample,
a trained model is reused while the data's shape holds, and the clustering's edit-distance
shortcut agrees with the full Damerau-Levenshtein table."""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import pytest

from xrm.identify import IdentityRules, link_records, load_sample_records
from xrm.identify._conflicts import damerau_levenshtein, within_edits
from xrm.identify._linkage_model import packaged_parameters
from xrm.identify._records import normalize_records
from xrm.sample import generate_sample
from xrm.store import Store

BIRTH = dt.date(1961, 4, 3)


def _hans(seed: Any) -> None:
    seed.record("crm:1", first_name="Johannes", last_name="Müller", birth_date=BIRTH,
                street="Hauptstraße", house_number="12", postcode="10115", city="Berlin",
                updated_at=dt.datetime(2022, 1, 1))
    seed.record("loyalty:1", first_name="Hans", last_name="Mueller", birth_date=BIRTH,
                street="Hauptstr. 12", postcode="10115", city="Berlin", loyalty_card="L1")


def _others(seed: Any, n: int) -> None:
    """Strangers sharing nothing with Hans or each other (no block pairs them)."""
    for i in range(n):
        seed.record(f"shop:{i}", first_name=f"Vorname{i:03d}", last_name=f"Nachname{i:03d}",
                    birth_date=BIRTH + dt.timedelta(days=400 + 3 * i), postcode=f"{20000 + i}")


def _pair(store: Store) -> tuple[float, float]:
    (row,) = store.sql("SELECT match_weight, match_probability FROM linkage_pairs "
                       "WHERE record_a = 'crm:1' AND record_b = 'loyalty:1'").fetchall()
    return float(row[0]), float(row[1])


def test_the_prior_does_not_shrink_with_the_file(store: Store, seed: Any) -> None:
    """With the prior per random pair, 40 more strangers cut it (λ ∝ 1/(n-1)) and took bits off
    every pair's weight; above prior_max_records the file's size no longer moves it.
    (Term frequencies still move a pair's weight: 'mueller' is rarer among 42 records than 2.)"""
    rules = IdentityRules.from_mapping({"linkage": {"prior_max_records": 2, "prior_records_ratio": 100}})
    _hans(seed)
    normalize_records(store, rules)
    small = link_records(store, rules, train=False)
    _others(seed, 40)
    normalize_records(store, rules)
    big = link_records(store, rules, train=False)
    prior = "probability_two_random_records_match"
    assert big[prior] == pytest.approx(small[prior], rel=1e-12)
    weight_capped = _pair(store)[0]
    # The old behaviour is what prior_max_records >= n gives: the larger file scores lower.
    wide = link_records(store, IdentityRules.from_mapping({"linkage": {"prior_max_records": 10_000}}),
                        train=False)
    ppr = packaged_parameters()["pairs_per_record"]
    assert wide[prior] == pytest.approx(2 * ppr / 41, rel=1e-9)  # 42 records, the per-pair prior

    def logit2(p: float) -> float:
        return math.log2(p / (1 - p))

    shift = logit2(big[prior]) - logit2(wide[prior])
    assert shift > 4 and _pair(store)[0] == pytest.approx(weight_capped - shift, abs=1e-6)
    # In a file much larger than prior_max_records, the prior's size grows as n / ratio: 42 / 10.
    grown = link_records(store, IdentityRules.from_mapping(
        {"linkage": {"prior_max_records": 2, "prior_records_ratio": 10}}), train=False)
    assert grown[prior] == pytest.approx(2 * ppr / 3, rel=1e-9)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: Any) -> Any:
    out = tmp_path_factory.mktemp("sample")
    generate_sample(out, customers=600, seed=5, show_progress=False)
    return out


def test_training_on_a_sample_and_reusing_the_model(store: Store, sample: Any) -> None:
    load_sample_records(store, sample)
    n = store.count("records")
    cap = n // 2
    quick = {"min_train_records": 500, "u_max_pairs": 1e5, "em_max_pairs": 1e5, "train_max_records": cap}
    rules = IdentityRules.from_mapping({"linkage": quick})
    normalize_records(store, rules)
    first = link_records(store, rules)
    assert first["model"] == "trained", first["weight_problems"]
    params = _params(store, 1)
    # About half the records (a seeded hash), and expected partners per record for all of them.
    assert 0.4 * n < params["trained_records"] < 0.6 * n
    lam = params["probability_two_random_records_match"]
    assert params["pairs_per_record"] == pytest.approx(lam * (n - 1) / 2)
    # Same data: the stored model is reused, not retrained, and scores the same pairs.
    second = link_records(store, rules)
    assert second["model"] == "reused (model 1, same shape)"
    assert _params(store, 2) == params and second["pairs"] == first["pairs"]
    assert second["train_seconds"] < first["train_seconds"]
    # Another shape (a quarter of the records gone): trained again.
    store.sql("DELETE FROM records WHERE hash(record_id) % 4 = 0")
    normalize_records(store, rules)
    assert link_records(store, rules)["model"] == "trained"


def _params(store: Store, model_id: int) -> dict[str, Any]:
    import json

    (text,), = store.sql("SELECT CAST(parameters AS VARCHAR) FROM linkage_models WHERE model_id = ?",
                         [model_id]).fetchall()
    return dict(json.loads(text))


def test_within_edits_agrees_with_damerau_levenshtein() -> None:
    rng = random.Random(7)
    alphabet = "0123-ab"
    for _ in range(20_000):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        b = list(a)
        for _ in range(rng.randint(0, 3)):
            op = rng.randint(0, 3)
            if op == 0 and b:
                b[rng.randrange(len(b))] = rng.choice(alphabet)
            elif op == 1:
                b.insert(rng.randint(0, len(b)), rng.choice(alphabet))
            elif op == 2 and b:
                b.pop(rng.randrange(len(b)))
            elif op == 3 and len(b) > 1:
                i = rng.randrange(len(b) - 1)
                b[i], b[i + 1] = b[i + 1], b[i]
        other = "".join(b)
        d = damerau_levenshtein(a, other)
        for k in (0, 1, 2):
            assert within_edits(a, other, k) == (d <= k), (a, other, k)
