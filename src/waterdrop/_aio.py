"""Awaiting a DeliveryHandle from asyncio without blocking a thread."""

from __future__ import annotations

import asyncio
from typing import Any


def _settle(future: asyncio.Future[Any], handle: Any) -> None:
    if future.done():  # cancelled while the delivery was on its way
        return
    report = handle.report()
    if report.error is not None:
        future.set_exception(report.error)
    else:
        future.set_result(report)


async def await_handle(handle: Any) -> Any:
    """Resolve ``handle`` on the running loop: the poller wakes the loop, no thread waits."""
    if not handle.pending:
        return handle.wait(raise_response_error=True)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def done(h: Any) -> None:
        try:
            loop.call_soon_threadsafe(_settle, future, h)
        except RuntimeError:  # the loop is closed; nobody is waiting any more
            pass

    handle.add_done_callback(done)
    return await future
