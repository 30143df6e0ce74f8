"""Trust: the fault tests and the fuzzers, run once, with what each offered, kept, lost and sent.

Runs ``tests/faults`` (real processes killed with SIGKILL, a full disk, damaged files) and
``tests/fuzz`` (schemathesis against the OpenAPI of every endpoint, hypothesis properties,
malformed files) in a child pytest, collects the figures each fault test records
(``FAULT_FIGURES_FILE``) and the fuzzer's request count, and writes them as tables. These are
the tests ``make test`` runs; here their counts are kept.

    python -m bench --only trust
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._harness import ROOT, Section, machine_line

__all__ = ["run"]

_COLUMNS = {  # figure -> column title, in the order the tables show them
    "events_offered": "events offered",
    "events_acknowledged": "acknowledged",
    "events_acknowledged_before_backup": "acknowledged before backup",
    "events_stored": "stored",
    "events_in_backup": "in backup",
    "events_lost": "lost",
    "events_duplicated": "duplicated",
    "messages_due": "messages due",
    "smtp_receipts": "SMTP receipts",
    "sent_twice": "sent twice",
    "distinct_message_ids": "distinct Message-IDs",
    "dropped": "dropped",
}


def run(quick: bool = False) -> Section:
    with tempfile.TemporaryDirectory(prefix="xrm-bench-trust-") as tmp:
        figures_file = Path(tmp) / "figures.jsonl"
        env = {**os.environ, "FAULT_FIGURES_FILE": str(figures_file)}
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
             "tests/faults", "tests/fuzz"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False,
        )
        seconds = time.perf_counter() - start
        rows = [json.loads(x) for x in figures_file.read_text().splitlines()] if figures_file.exists() else []
    summary = next((x for x in reversed(out.stdout.splitlines()) if re.search(r"\d+ (passed|failed)", x)), "")
    fuzz = re.search(r"schemathesis: (\d+) requests over (\d+) operations; 2xx seen on (\d+)", out.stdout)
    lines = [
        f"`pytest tests/faults tests/fuzz`, one run: **{summary.strip('= ')}** in {seconds:.0f} s "
        f"(exit code {out.returncode}).",
        "",
    ]
    if fuzz:
        lines += [f"Fuzzing the OpenAPI of every endpoint (schemathesis, valid and invalid requests): "
                  f"{int(fuzz.group(1)):,} requests over {fuzz.group(2)} operations, success answers "
                  f"on {fuzz.group(3)}; failures (a 5xx, or an error not in the one JSON shape): "
                  f"{'0' if out.returncode == 0 else 'see the summary above'}.", ""]
    if rows:
        cols = [c for c in _COLUMNS if any(c in r for r in rows)]
        others = sorted({k for r in rows for k in r} - set(cols) - {"test"})
        lines += ["| fault test | " + " | ".join(_COLUMNS[c] for c in cols) + " | other figures |",
                  "|---|" + "---:|" * len(cols) + "---|"]
        for r in rows:
            rest = ", ".join(f"{k} {r[k]}" for k in others if k in r)
            lines.append(f"| {r['test']} | " + " | ".join(str(r.get(c, "")) for c in cols) + f" | {rest} |")
        lines.append("")
    if out.returncode != 0:
        lines += ["Failures (end of the output):", "", "```", out.stdout[-3000:], "```", ""]
    lines += [
        "Target (issue 10): lost 0, duplicated 0, sent twice 0, fuzz failures 0. Delivery is "
        "at-least-once: a worker killed after the SMTP server accepted a message but before it was "
        "marked sent sends it again with the same Message-ID (receivers de-duplicate on it); "
        "counted by Message-ID nothing is sent twice or dropped (docs/store.md).",
        "",
        f"Machine: {machine_line()}.",
    ]
    return Section("Trust: fault tests and fuzzing", "\n".join(lines))
