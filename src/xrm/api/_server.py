"""Run the app on uvicorn: one process (it owns the store), httptools and uvloop where installed.

    >>> run_server(Settings(store_path="demo/xrm.duckdb"), port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

from xrm.config import Settings

__all__ = ["run_server"]


def run_server(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve until interrupted; SIGINT / SIGTERM write what is queued, then close the store. Exits
    with status 3 once DuckDB has invalidated the store (``xrm.api._store_loss``)."""
    import gc
    import sys
    import threading

    import uvicorn

    from xrm.api._app import create_app
    from xrm.api._malloc import limit_arenas, start_trimming
    from xrm.api._store_loss import EXIT_STORE_LOST, LOST_EXIT_S

    # Freed memory back to the system, not kept in glibc's heaps while RSS climbs (_malloc.py).
    limit_arenas(2)
    start_trimming()
    # Each /v1/batch request parses hundreds of JSON objects, so with the default thresholds the
    # collector runs several times a request and now and then walks every object of the writer's
    # identifier caches: about a tenth of the server's CPU under load (bench ingest_api). Collect
    # less often, and never scan what start-up loaded (modules, settings).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
    # The event loop answers; background threads (the decision-log flusher, the decide gate's reads,
    # the event writer) run Python between their queries. With the default 5 ms switch interval
    # the loop waited up to 5 ms for the GIL each time, with a decide request due every 2 ms.
    sys.setswitchinterval(0.001)

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=1,  # DuckDB allows one writing process: the server is it
        loop="uvloop",  # uvicorn[standard]: a faster event loop and HTTP parser
        http="httptools",
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=10,
    ))
    # A lost store (DuckDB invalidated it) stops the server like a signal would; the exit status
    # then tells a supervisor to start it again (_store_loss.py). A shutdown step that hangs on the
    # lost store (seen once under the mixed bench: the process stayed, its port closed, for minutes)
    # must not keep it from being started again: past LOST_EXIT_S the process ends regardless.
    def stop_after_loss() -> None:
        server.should_exit = True
        deadline = threading.Timer(LOST_EXIT_S, _exit_now)
        deadline.daemon = True  # (it also covers the interpreter's exit: thread pools are joined then)
        deadline.start()

    app.state.stop_server = stop_after_loss
    server.run()
    store = getattr(app.state, "store", None)
    if store is not None and store.lost is not None:
        sys.exit(EXIT_STORE_LOST)


def _exit_now() -> None:
    import os
    import sys

    from xrm.api._store_loss import EXIT_STORE_LOST, LOST_EXIT_S

    sys.stderr.write(f"the store was lost and the shutdown did not end within {LOST_EXIT_S:g} s: "
                     f"exiting with status {EXIT_STORE_LOST} now\n")
    sys.stderr.flush()
    os._exit(EXIT_STORE_LOST)
