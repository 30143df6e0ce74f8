"""Run the API with the console on uvicorn: ``python tests/web/serve_console.py STORE PORT``.

The tests compose the app here (xrm.api and xrm.web are siblings; neither imports the other), so
the end-to-end tests drive a real server process over a real store file.
"""

from __future__ import annotations

import sys


def main() -> None:
    import uvicorn

    from xrm.api import create_app
    from xrm.config import Settings
    from xrm.web import console_router

    store, port = sys.argv[1], int(sys.argv[2])
    settings = Settings(store_path=store, memory_limit="1GB", threads=2)
    app = create_app(settings)
    if not any(getattr(r, "path", "").startswith("/console") for r in app.routes):
        app.include_router(console_router(settings))
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning")


if __name__ == "__main__":
    main()
