"""bench_network re-runs only the metrics and libraries named, and says where the others are."""

from __future__ import annotations

import pytest

from bench import bench_network as bn


def test_chosen_names_aliases_and_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XRM_BENCH_NETWORK_METRICS", raising=False)
    assert bn._chosen("XRM_BENCH_NETWORK_METRICS", bn.METRICS, {}) == bn.METRICS
    monkeypatch.setenv("XRM_BENCH_NETWORK_METRICS", "coreness, build")
    assert bn._chosen("XRM_BENCH_NETWORK_METRICS", bn.METRICS, {"build": "build graph"}) == (
        "build graph", "coreness")
    monkeypatch.setenv("XRM_BENCH_NETWORK_METRICS", "pagerank,kcore")
    with pytest.raises(ValueError, match="'kcore' is not one of"):
        bn._chosen("XRM_BENCH_NETWORK_METRICS", bn.METRICS, {})


def test_run_of_two_metrics_keeps_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    # The cells' fresh processes take minutes on the loaded machine; this checks the table around
    # them, so each measured cell is a fixed one and the calls are recorded.
    calls: list[tuple[str, str]] = []

    def cell(lib: str, metric: str, path: object, runs: int, cap: int) -> bn.Cell:
        calls.append((lib, metric))
        return bn.Cell(bn._fmt(1.0, 2.0, 100.0), 1.0, 2.0)

    monkeypatch.setattr(bn, "_cell", cell)
    monkeypatch.setenv("XRM_BENCH_NETWORK_SIZES", "600")
    monkeypatch.setenv("XRM_BENCH_NETWORK_METRICS", "build,coreness")
    monkeypatch.setenv("XRM_BENCH_NETWORK_LIBRARIES", "xrm,networkit")
    body = bn.run(quick=True).body
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in body.splitlines()
            if line.startswith("| ") and not line.startswith("| metric")}
    assert set(rows) == set(bn.METRICS)
    for metric in ("build graph", "coreness"):
        cells = rows[metric].split(" | ")
        assert " s (CPU " in cells[1] and " s (CPU " in cells[2], rows[metric]  # xrm and networkit ran
        assert cells[3].startswith("not run")  # networkx left out
    assert rows["pagerank"].split(" | ")[1].startswith("not run")
    assert sorted(calls) == [("networkit", "build graph"), ("networkit", "coreness"),
                             ("xrm", "build graph"), ("xrm", "coreness")]
    assert "PageRank accuracy at 600 parties: not measured in this run" in body
