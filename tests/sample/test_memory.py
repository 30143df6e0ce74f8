"""Chunked generation keeps memory flat: five chunks peak no higher than one chunk."""

from __future__ import annotations

import json
import subprocess
import sys

_SCRIPT = """
import json, resource, sys
from pathlib import Path
import numpy, pyarrow, pyarrow.parquet  # loaded before the baseline, as they are for any run
from xrm.sample import generate_sample
customers, chunk, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
generate_sample(out, customers=customers, seed=1, show_progress=False, chunk_size=chunk)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (after - before) / 1024}))
"""


def _peak_growth_mb(customers: int, chunk: int, out) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(customers), str(chunk), str(out)],
        capture_output=True, text=True, check=True, timeout=120,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["growth_mb"])


def test_memory_is_bounded_by_the_chunk_not_the_total(tmp_path):
    one = _peak_growth_mb(2_500, 2_500, tmp_path / "one")
    five = _peak_growth_mb(12_500, 2_500, tmp_path / "five")
    # five times the customers, same chunk: the peak may grow only by what is remembered across
    # chunks (e-mail addresses given out) and allocator slack, not five-fold
    assert five < one * 1.5 + 40, (one, five)
    assert one < 400, one
