"""``python -m xrm.api --store FILE --port N``: the server without the CLI (tests, containers)."""

from __future__ import annotations

import argparse

from xrm.api._server import run_server
from xrm.config import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m xrm.api", description=__doc__)
    parser.add_argument("--store", default=None, help="store file (overrides XRM_STORE_PATH)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args()
    settings = load_settings(store_path=args.store)
    run_server(settings, args.host, args.port, log_level=args.log_level, access_log=args.access_log)


if __name__ == "__main__":
    main()
