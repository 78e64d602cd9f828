"""The request span's status: an error only when the server failed (5xx), not for a refusal."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from bot.observability.access import access_middleware


async def boom(_request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


async def gone(_request: web.Request) -> web.Response:
    raise web.HTTPGone(text="moved on")


async def test_only_server_failures_make_an_error_span(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = web.Application(middlewares=[access_middleware(provider.get_tracer("t"))])
    app.router.add_get("/boom", boom)
    app.router.add_get("/gone", gone)
    client: TestClient = await aiohttp_client(app)
    for path, status in (("/nowhere", 404), ("/gone", 410), ("/boom", 500)):
        async with client.get(path) as response:
            assert response.status == status, path
    spans = {s.attributes["http.response.status_code"]: s for s in exporter.get_finished_spans()}
    assert set(spans) == {404, 410, 500}
    assert spans[404].status.status_code is StatusCode.UNSET and not spans[404].events
    assert spans[410].status.status_code is StatusCode.UNSET and not spans[410].events
    assert spans[500].status.status_code is StatusCode.ERROR
