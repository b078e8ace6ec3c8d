"""Outside a running loop: a loop closed under pending awaits, no loop at all."""

from __future__ import annotations

import asyncio

import pytest

from waterdrop import _aio, _core


async def _await(handle):
    return await handle


def test_a_closed_loop_with_pending_awaits_does_not_break_the_poller():
    handle = _core.pending_handle("t")
    loop = asyncio.new_event_loop()

    async def start():
        return asyncio.ensure_future(_await(handle))

    task = loop.run_until_complete(start())
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    handle._resolve(0, 1, None)  # the waker finds the loop closed: nothing raised
    assert not task.done()
    assert handle.wait(1000).offset == 1


def test_await_without_a_running_loop_raises():
    with pytest.raises(RuntimeError):
        _aio.await_handle(_core.pending_handle("t"))
