"""A web application's lifespan: the producer opens at startup, serves requests that produce
(awaited and fire-and-forget), and closes at shutdown with everything delivered."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.asyncio.conftest import read_back
from waterdrop import Status, aio

pytestmark = pytest.mark.asyncio


async def test_lifespan_as_an_async_context_manager(cluster, topic):
    class App:
        producer: aio.Producer

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        async with aio.Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
            app.producer = producer
            yield

    async def request(app: App, n: int) -> int:
        if n % 2:
            report = await app.producer.produce_sync(topic=topic, payload=b"%d" % n)
            return report.offset
        app.producer.produce_async(topic=topic, payload=b"%d" % n)  # fire and forget
        return -1

    app = App()
    fired: list[Any] = []
    async with lifespan(app):
        assert app.producer.status is Status.CONNECTED
        awaited = await asyncio.gather(*(request(app, n) for n in range(200)))
        fired = [app.producer.produce_async(topic=topic, payload=b"late") for _ in range(50)]
    assert app.producer.status is Status.CLOSED
    assert all(not h.pending and h.error is None for h in fired)  # delivered by the close
    assert sorted(o for o in awaited if o >= 0) == sorted(set(o for o in awaited if o >= 0))
    messages = await asyncio.to_thread(read_back, cluster.bootstrap_servers, topic, 250)
    assert len(messages) == 250


async def test_fastapi_lifespan(cluster, topic):
    fastapi = pytest.importorskip("fastapi")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with aio.Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
            app.state.producer = producer
            yield

    app = fastapi.FastAPI(lifespan=lifespan)

    @app.post("/orders/{order_id}")
    async def create_order(order_id: int) -> dict[str, int]:
        report = await app.state.producer.produce_sync(
            topic=topic, payload=json.dumps({"order": order_id}), key=str(order_id))
        return {"offset": report.offset}

    @app.post("/events")
    async def event() -> dict[str, bool]:
        app.state.producer.produce_async(topic=topic, payload=b"event")  # not awaited
        return {"queued": True}

    async with _asgi_lifespan(app):
        responses = await asyncio.gather(
            *(_post(app, f"/orders/{n}") for n in range(20)),
            *(_post(app, "/events") for _ in range(20)),
        )
        producer = app.state.producer
        assert producer.status is Status.CONNECTED
    assert producer.status is Status.CLOSED
    assert [status for status, _ in responses] == [200] * 40
    offsets = sorted(body["offset"] for _, body in responses[:20])
    assert len(set(offsets)) == 20
    messages = await asyncio.to_thread(read_back, cluster.bootstrap_servers, topic, 40)
    assert len(messages) == 40  # the fire-and-forget ones were delivered by the shutdown


# --- a minimal ASGI server: the lifespan protocol and one HTTP request ---------------------------


@contextlib.asynccontextmanager
async def _asgi_lifespan(app: Any) -> AsyncIterator[None]:
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    assert (await from_app.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
        await task


async def _post(app: Any, path: str) -> tuple[int, Any]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": [(b"host", b"test")], "client": ("test", 1),
        "server": ("test", 80),
    }
    sent: list[dict[str, Any]] = []
    body_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the response is built
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)
