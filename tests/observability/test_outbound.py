"""Outbound calls as an operator sees them: a WARNING with status and Retry-After when an
attempt fails or is throttled, a DEBUG line when it works, CLIENT spans, the call and 429
metrics; an SMTP send watched the same way."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.trace import SpanKind

from bot.observability.observer import EngineObserver
from bot.observability.outbound import outbound_tracing, teams_target
from tests.observability.recorded import Recorded


async def test_outbound_attempts_are_logged_counted_and_traced(
        caplog: pytest.LogCaptureFixture) -> None:
    async def throttled(_request: web.Request) -> web.Response:
        return web.json_response({}, status=429, headers={"Retry-After": "2"})

    async def sent(_request: web.Request) -> web.Response:
        return web.json_response({"id": "1"}, status=201)

    app = web.Application()
    app.router.add_post("/v3/conversations/{conversation}/activities", throttled)
    app.router.add_post("/v1.0/chats", sent)
    recorded = Recorded()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    caplog.set_level(logging.DEBUG, logger="bot.outbound")
    try:
        async with aiohttp.ClientSession(trace_configs=[
                outbound_tracing(recorded.telemetry, teams_target)]) as http:
            async with http.post(server.make_url("/v3/conversations/a%3A1/activities"),
                                 json={}) as response:
                assert response.status == 429
            async with http.post(server.make_url("/v1.0/chats"), json={}) as response:
                assert response.status == 201
            with pytest.raises(aiohttp.ClientConnectionError):
                async with http.post("http://127.0.0.1:9/v3/conversations", json={}):
                    pass
    finally:
        await server.close()

    lines: list[dict[str, Any]] = [
        {**vars(r), "level": r.levelname} for r in caplog.records if r.name == "bot.outbound"]
    assert [(r["level"], r["target"], r.get("status"), r.get("retry_after"), r.get("error"))
            for r in lines] == [
        ("WARNING", "connector", 429, "2", None),
        ("DEBUG", "graph", 201, None, None),
        ("WARNING", "connector", None, None, "ClientConnectorError")]
    assert all(r["duration_ms"] >= 0 for r in lines)
    spans = recorded.spans()
    assert [(s.name, s.kind) for s in spans] == [
        ("POST connector", SpanKind.CLIENT), ("POST graph", SpanKind.CLIENT),
        ("POST connector", SpanKind.CLIENT)]
    assert spans[0].attributes is not None
    assert spans[0].attributes["http.response.status_code"] == 429
    assert recorded.value("switchboard.outbound.calls", target="connector") == 2
    assert recorded.value("switchboard.outbound.calls", target="connector", status="429") == 1
    assert recorded.value("switchboard.outbound.calls", target="graph", status="201") == 1
    assert recorded.value("switchboard.outbound.throttled", target="connector") == 1
    assert recorded.value("switchboard.outbound.throttled", target="graph") == 0


def test_an_smtp_send_is_watched(caplog: pytest.LogCaptureFixture) -> None:
    recorded = Recorded()
    observer = EngineObserver(recorded.telemetry)
    with observer.outbound("smtp", "SEND"):
        pass
    with pytest.raises(ConnectionRefusedError), observer.outbound("smtp", "SEND"):
        raise ConnectionRefusedError
    [failed] = [r for r in caplog.records if r.name == "bot.outbound"]
    assert failed.levelname == "WARNING" and vars(failed)["error"] == "ConnectionRefusedError"
    assert recorded.value("switchboard.outbound.calls", target="smtp", status="error") == 1
    assert recorded.value("switchboard.outbound.calls", target="smtp", status="ok") == 1
    assert [s.name for s in recorded.spans()] == ["SEND smtp", "SEND smtp"]
