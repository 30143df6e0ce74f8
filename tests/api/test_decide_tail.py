"""The decide path's tail: no store read on the event loop, reads after a commit shared, keys cached.

At 500 requests/s a request arrives every 2 ms; anything the loop waits for (a catalogue read
after a commit, the key ring's look-ups every 5 s) holds up every request behind it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from xrm.api._auth import KeyRing, Principal
from xrm.api._decide import SETTLE_S, DecideRequest, Gate, _State, answer
from xrm.api._keys import create_key
from xrm.config import Settings
from xrm.interact import record_consent
from xrm.store import Store

from .test_decide_api import _shop

READER = Principal("k-test", "decider", "read", "api", float("inf"), 1)


def _email(user: str) -> DecideRequest:
    return DecideRequest.model_validate({"userId": user, "context": {"channel": "email"}})


async def _offers(state: _State, body: DecideRequest) -> set[str]:
    import orjson

    got = orjson.loads(await answer(state, READER, body, None, "/v1/decide"))
    return {o["offerId"] for o in got["offers"]}


def test_reads_after_a_commit_run_off_the_loop_are_shared_and_see_the_write(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consent committed by another path decides every request that arrives after it; the store
    is read on the gate's thread, once for a crowd of requests, never on the loop's."""
    _shop(api_settings)
    readers: list[str] = []
    real = Gate._sync

    def spied(gate: Gate, cur: Any) -> None:
        readers.append(threading.current_thread().name)
        real(gate, cur)

    monkeypatch.setattr(Gate, "_sync", spied)
    with Store.open(api_settings) as store:
        state = _State(store)

        async def scenario() -> None:
            try:
                assert await _offers(state, _email("u6")) == set()  # no consent: loads graph and decider
                await asyncio.sleep(SETTLE_S * 1.5)
                await state.fresh()  # a read began SETTLE_S after the stamp moved: settled
                assert state.gate.current()
                readers.clear()
                record_consent(store, "u6", "email", "marketing", "granted", source="console")
                assert not state.gate.current()
                crowd = await asyncio.gather(*(_offers(state, _email("u6")) for _ in range(30)))
                assert all("espresso" in offers for offers in crowd)  # every one saw the consent
                assert readers and set(readers) <= {"xrm-gate_0"}, readers  # never the loop's thread
                assert len(readers) < 10, len(readers)  # 30 requests, a few shared reads
                record_consent(store, "u6", "email", "marketing", "revoked", source="console")
                assert await _offers(state, _email("u6")) == set()
            finally:
                await state.close()

        asyncio.run(scenario())
    assert "MainThread" not in readers


def test_a_failed_read_fails_the_requests_waiting_for_it(api_settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A read that raises is not taken for a fresh gate: each waiting request gets the error."""
    _shop(api_settings)
    with Store.open(api_settings) as store:
        state = _State(store)

        def broken(gate: Gate, cur: Any) -> None:
            raise RuntimeError("disk gone")

        async def scenario() -> None:
            try:
                monkeypatch.setattr(Gate, "_sync", broken)
                got = await asyncio.gather(*(state.fresh() for _ in range(3)), return_exceptions=True)
                assert all(isinstance(g, RuntimeError) for g in got), got
                assert not state.gate.current()
            finally:
                await state.close()

        asyncio.run(scenario())


def test_the_key_ring_says_when_authorize_would_read_the_store(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decide fast path warms the ring on a worker thread when ``cached`` says a look-up is due;
    then ``authorize`` answers from memory (no query) until CACHE_S has passed."""
    from xrm.api import _auth

    with Store.open(api_settings) as store:
        token = str(create_key(store, "decider", "read")[1])
        ring = KeyRing(api_settings.model_copy(update={"write_keys": {}}))
        ring.store = store
        assert not ring.cached(token)
        ring.warm(token)
        assert ring.cached(token)

        def no_query(*_: Any) -> Any:
            raise AssertionError("authorize read the store")

        monkeypatch.setattr(_auth, "verify_token", no_query)
        monkeypatch.setattr(_auth, "key_count", no_query)
        assert ring.authorize(token, "read").name == "decider"
        assert not ring.cached("xrm_other_token")  # another caller's key: not looked up yet
        later = time.monotonic() + _auth.CACHE_S + 1
        monkeypatch.setattr(_auth, "time", SimpleNamespace(monotonic=lambda: later))
        assert not ring.cached(token)  # expired: the next request reads it again, off the loop


_FIRST_FLUSH = """
import asyncio, gc, sys
from xrm.api._decide import _State
from xrm.config import Settings
from xrm.store import Store

gc.collect(); gc.freeze()  # as the server does at start-up (xrm.api._server)
frozen = gc.get_freeze_count()
with Store.open(Settings(store_path=sys.argv[1], memory_limit="1GB", threads=1)) as store:
    state = _State(store)

    async def main() -> None:
        decider = await state.get()
        assert gc.get_freeze_count() > frozen, "what the decider loaded is not frozen"
        before = set(sys.modules)
        decider.decide("u0", "web", k=2)
        assert decider.flush() == 1
        late = sorted({m.split(".")[0] for m in set(sys.modules) - before})
        assert not late, f"the first flush imported {late}"
        await state.close()

    asyncio.run(main())
print("ok")
"""


def test_the_first_flush_imports_nothing_and_the_loaded_decider_is_frozen(api_settings: Settings) -> None:
    """The first flush used to import pyarrow and, at its first conversion, pandas (0.2 to 1 s of
    CPU holding the GIL) while requests arrived; now the decider's build runs the writer once."""
    import subprocess
    import sys

    _shop(api_settings)
    out = subprocess.run([sys.executable, "-c", _FIRST_FLUSH, str(api_settings.store_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr.split("nanobind")[0][-3000:]
