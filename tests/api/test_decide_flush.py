"""The decision log's flushes and the gate's settle window (issue 6: the open loop's tail).

Each flush is a commit: it moves the write stamp, and every decision in the SETTLE_S after it
waits for a store read. So the flusher writes seldom (FLUSH_EVERY_S, FLUSH_ROWS), early only
inside a window another commit has opened, and ends the window with its own read.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from xrm.api import _decide
from xrm.api._decide import FLUSH_EVERY_S, SETTLE_S, _file_stamp, _State
from xrm.config import Settings
from xrm.interact import record_consent
from xrm.store import Store

from .test_decide_api import _shop
from .test_decide_tail import _email, _offers


def test_the_log_is_written_when_due_or_inside_another_commits_window(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _shop(api_settings)
    monkeypatch.setattr(_decide, "CHORES_EVERY_S", 3600.0)  # the chores are run by hand below
    with Store.open(api_settings) as store:
        state = _State(store)

        async def scenario() -> None:
            try:
                assert await _offers(state, _email("u6")) == set()  # no consent yet
                await asyncio.sleep(SETTLE_S * 1.5)
                await state.fresh()
                decider = state.decider
                assert decider is not None and decider.pending and state.gate.current()
                stamp = _file_stamp(store.path)
                assert not state._chores()  # not due, nothing else committed: no commit, settled
                assert decider.pending and _file_stamp(store.path) == stamp

                record_consent(store, "u6", "email", "marketing", "granted", source="console")
                assert state._chores()  # inside the consent's window: flushed, not settled yet
                assert decider.pending == 0 and state.audit.pending == 0
                assert "espresso" in await _offers(state, _email("u6"))  # the consent is seen
                time.sleep(SETTLE_S)
                state._settle()
                assert state.gate.current()  # the next decision reads nothing

                await _offers(state, _email("u6"))
                assert not state._chores() and decider.pending  # written at most FLUSH_EVERY_S after
                state._flushed_at -= FLUSH_EVERY_S
                state._chores()
                assert decider.pending == 0
                n = store.sql("SELECT count(*) FROM api_audit WHERE action = 'profile.decide'").fetchall()
                assert n == [(3,)]
            finally:
                await state.close()

        asyncio.run(scenario())


def test_the_flusher_ends_the_settle_window_itself(api_settings: Settings,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """After its own commit the flusher reads again SETTLE_S later: a decision arriving after
    the window finds the gate settled and waits for no read."""
    _shop(api_settings)
    monkeypatch.setattr(_decide, "CHORES_EVERY_S", 0.05)
    monkeypatch.setattr(_decide, "FLUSH_EVERY_S", 0.0)  # a flush at every look
    with Store.open(api_settings) as store:
        state = _State(store)

        async def scenario() -> None:
            try:
                await _offers(state, _email("u0"))
                deadline = time.monotonic() + 10
                while state.decider is not None and state.decider.pending and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                assert state.decider is not None and not state.decider.pending
                monkeypatch.setattr(_decide, "CHORES_EVERY_S", 3600.0)  # no further flush
                await asyncio.sleep(SETTLE_S * 3)  # the flusher's settling read has run
                assert state.gate.current()
            finally:
                await state.close()

        asyncio.run(scenario())
