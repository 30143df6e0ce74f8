"""P(alive) against the sample business's known drop-outs: a better ranking than recency alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from xrm.differentiate import build_purchase_summaries, build_value, dropout_ranking
from xrm.exceptions import InputError
from xrm.ingest import load_file
from xrm.sample import generate_sample
from xrm.store import Store


@pytest.fixture(scope="module")
def scored_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dropouts")
    generate_sample(out / "data", customers=1_500, seed=11, show_progress=False)
    with Store.open(out / "x.duckdb") as store:
        load_file(store, out / "data" / "events" / "orders.parquet", show_progress=False)
        build_purchase_summaries(store)
        build_value(store)
    return out / "x.duckdb", out / "data" / "truth"


def test_p_alive_ranks_dropouts_better_than_recency(scored_sample: tuple[Path, Path]) -> None:
    path, truth = scored_sample
    with Store.open(path, read_only=True) as store:
        got = dropout_ranking(store, truth)
    assert got["customers"] > 1_000 and 0 < got["dropped"] < got["customers"]
    # Both rankings carry signal; P(alive) adds how often each customer used to buy.
    assert got["auc_recency"] > 0.6
    assert got["auc_p_alive"] > got["auc_recency"]


def test_missing_truth_is_named(scored_sample: tuple[Path, Path], tmp_path: Path) -> None:
    path, _ = scored_sample
    with Store.open(path, read_only=True) as store, pytest.raises(InputError, match=r"persons\.parquet"):
        dropout_ranking(store, tmp_path)
