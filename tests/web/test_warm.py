"""The server reads the console's shared list (the most popular products) when it starts, so that no
customer's page waits for it (at 1M customers the read took 0.5-3 s inside the first such page)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tests.api.live import serve_in_thread

from xrm.config import Settings


def test_the_server_reads_the_popular_products_when_it_starts(sample_store_file: Path,
                                                              tmp_path: Path) -> None:
    from xrm.customize import recommend_for
    from xrm.web import _customers as c

    path = tmp_path / "sample.duckdb"
    shutil.copy(sample_store_file, path)
    where = (str(path), 5)
    assert where not in c._POPULAR
    for live in serve_in_thread(Settings(store_path=path, memory_limit="1GB", threads=1)):
        deadline = time.monotonic() + 60
        while where not in c._POPULAR and time.monotonic() < deadline:  # no console request made
            time.sleep(0.05)
        assert where in c._POPULAR, "the server did not read the popular products at start"
        popular = c._POPULAR[where][2]
        assert popular and popular == recommend_for(live.app.state.store, "no-such-customer", k=5)
