"""One small sample business for the engine suite, loaded into a DuckDB store and exported as
Parquet (the inputs both engines read), made once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from xrm.config import Settings
from xrm.store import Store

ENGINE_TABLES = ("events", "order_lines", "relationships", "records", "handles", "identifiers",
                 "profile_records", "posts")


def _add_posts(store: Store) -> None:
    """A small conversation (the sample has none): a reply, mentions, one handle linked by traits."""
    linked = store.sql(
        "SELECT '@' || lower(ltrim(trim(json_extract_string(traits, '$.twitter')), '@')) FROM events "
        "WHERE type = 'identify' AND json_extract_string(traits, '$.twitter') IS NOT NULL "
        "ORDER BY message_id LIMIT 1").fetchall()[0][0]
    rows = [
        ("p1", "twitter", "@anna", None, None, "2024-03-01 10:00:00"),
        ("p2", "twitter", "@ben", "p1", ["@anna", "@carl"], "2024-03-01 11:00:00"),
        ("p3", "twitter", "@carl", None, ["@ben", linked], "2024-03-02 09:00:00"),
        ("p4", "instagram", linked, "p3", ["@carl", "@anna"], "2024-03-03 09:00:00"),
        ("p5", "twitter", "@ben", "p3", None, "2024-03-04 09:00:00"),
    ]
    for post_id, platform, author, reply_to, mentions, ts in rows:
        store.sql("INSERT INTO posts (post_id, platform, author_handle, text, reply_to, mentions, ts, "
                  "source) VALUES (?, ?, ?, 'text', ?, ?, ?, 'test')",
                  [post_id, platform, author, reply_to, mentions, ts]).fetchall()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "not_yet(engine, step): a pipeline step the engine does not run yet; the test asserts that it "
        "raises NotYetImplemented naming the step and the engine",
    )


@pytest.fixture(scope="session")
def engine_inputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path]]:
    """300 customers (and a few conversation posts): loaded, identities resolved and relationships
    derived on DuckDB, then the engine inputs written as Parquet under ``source``."""
    from xrm.ingest import load_manifest
    from xrm.pipeline import run_pipeline
    from xrm.sample import generate_sample

    root = tmp_path_factory.mktemp("engines")
    generate_sample(root / "sample", customers=300, seed=3, show_progress=False)
    settings = Settings(store_path=root / "xrm.duckdb", memory_limit="1GB", threads=2,
                        identify={"linkage": {"enabled": False}})
    with Store.open(settings) as store:
        load_manifest(store, root / "sample" / "manifest.json", show_progress=False)
        _add_posts(store)
        run_pipeline(store, steps=("identities", "network"))
        source = root / "source"
        source.mkdir()
        for table in ENGINE_TABLES:
            store.sql(f"COPY {table} TO '{source / table}.parquet' (FORMAT parquet)").fetchall()
        yield store, source
