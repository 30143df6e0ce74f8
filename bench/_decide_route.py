"""``python -m bench._decide_route --store FILE --port N``: ``python -m xrm.api`` with ``POST
/v1/decide`` served by its FastAPI route, the ASGI fast path (:mod:`xrm.api._decide_asgi`) passing
every request on: the decide bench's "before", measured in the same run as the fast path.
"""

from __future__ import annotations

import runpy
from typing import Any

from xrm.api._decide_asgi import DecideFastPath


async def _pass_on(self: DecideFastPath, scope: Any, receive: Any, send: Any) -> None:
    await self.app(scope, receive, send)


if __name__ == "__main__":
    DecideFastPath.__call__ = _pass_on  # type: ignore[method-assign]
    runpy.run_module("xrm.api", run_name="__main__", alter_sys=True)
