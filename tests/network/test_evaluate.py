"""Derived referrals and households against the sample business's truth: precision and recall."""

from __future__ import annotations

from pathlib import Path

import pytest

from xrm.exceptions import InputError
from xrm.identify._evaluate import load_sample_records
from xrm.ingest import load_file
from xrm.network import derive_relationships, score_relationships
from xrm.sample import generate_sample
from xrm.store import Store


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("net-truth")
    generate_sample(out / "data", customers=1_000, seed=5, show_progress=False)
    with Store.open(out / "x.duckdb") as store:
        load_sample_records(store, out / "data")
        load_file(store, out / "data" / "events" / "referrals.jsonl", show_progress=False)
        derive_relationships(store)
    return out / "x.duckdb", out / "data" / "truth"


def test_referrals_and_households_are_found(derived: tuple[Path, Path]) -> None:
    path, truth = derived
    with Store.open(path, read_only=True) as store:
        got = score_relationships(store, truth)
    assert got["identity"] == "user_id" and got["parties_with_person"] == got["parties"]
    ref, house = got["referred"], got["household"]
    assert ref["true"] > 10 and ref["precision"] == 1.0 and ref["recall"] == 1.0
    assert got["referrers"]["recall"] == 1.0
    # Shared addresses: every derived pair lives together; a few true pairs are missed where a
    # member's records carry an old address or none.
    assert house["true"] > 100 and house["precision"] > 0.97 and house["recall"] > 0.85
    assert house["same_person"] > 0  # one person's two user ids, before identify merges them


def test_missing_truth_is_named(derived: tuple[Path, Path], tmp_path: Path) -> None:
    path, _ = derived
    with Store.open(path, read_only=True) as store, pytest.raises(InputError, match="no ground truth"):
        score_relationships(store, tmp_path)
