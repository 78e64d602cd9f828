"""Outbound calls (Bot Connector, Graph, sign-in, web requests, SMTP): a CLIENT span each, the
call and 429 metrics, a DEBUG line when it worked and a WARNING when it failed or will be
retried; W3C trace context goes along with web requests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import SimpleNamespace, TracebackType

import aiohttp
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from yarl import URL

from bot.observability.telemetry import Instruments, Telemetry

log = logging.getLogger("bot.outbound")

_PROPAGATOR = TraceContextTextMapPropagator()
OK_BELOW = 400


def teams_target(url: URL) -> str:
    """Which Microsoft API a call on the Teams session goes to, by its path."""
    path = url.path
    if "/v3/" in path:
        return "connector"
    if "/oauth2/" in path or "/.well-known/" in path or path.endswith("/keys"):
        return "auth"
    return "graph"


def record(telemetry: Telemetry, target: str, operation: str, started: float,
           status: int | None, error: str | None, retry_after: str | None = None,
           span: trace.Span | None = None, *, lines: bool = True) -> None:
    """What one attempt came to: its line, its metrics, the end of its span."""
    seconds = time.monotonic() - started
    failed = error is not None or (status is not None and status >= OK_BELOW)
    if lines and (failed or log.isEnabledFor(logging.DEBUG)):
        fields: dict[str, object] = {"target": target, "operation": operation,
                                     "duration_ms": round(seconds * 1000, 1)}
        if status is not None:
            fields["status"] = status
        if error is not None:
            fields["error"] = error
        if retry_after:
            fields["retry_after"] = retry_after[:40]
        if failed:
            log.warning("outbound call failed", extra=fields)
        else:
            log.debug("outbound call", extra=fields)
    instruments: Instruments | None = telemetry.instruments
    if instruments is not None:
        outcome = str(status) if status is not None else "error" if error else "ok"
        attributes = {"target": target, "status": outcome}
        instruments.outbound_calls.add(1, attributes)
        instruments.outbound_duration.record(seconds, {"target": target})
        if status == 429:
            instruments.outbound_throttled.add(1, {"target": target})
    if span is not None:
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        if failed:
            span.set_status(trace.StatusCode.ERROR, error or str(status))
        span.end()


def outbound_tracing(telemetry: Telemetry, target: Callable[[URL], str], *,
                     propagate: bool = False, lines: bool = True) -> aiohttp.TraceConfig:
    """Hooks for an aiohttp session: every request on it is observed. `propagate` sends the
    current trace context along (web requests: the receiver may join the trace); without
    `lines` the session's owner writes its own log lines (bot/webhooks/sender.py)."""
    config = aiohttp.TraceConfig()
    tracer = telemetry.tracer

    async def start(_session: aiohttp.ClientSession, ctx: SimpleNamespace,
                    params: aiohttp.TraceRequestStartParams) -> None:
        ctx.started = time.monotonic()
        ctx.target = target(params.url)
        ctx.span = None
        if tracer is not None:
            ctx.span = tracer.start_span(
                f"{params.method} {ctx.target}", kind=trace.SpanKind.CLIENT,
                attributes={"http.request.method": params.method,
                            "server.address": params.url.host or "",
                            "switchboard.target": ctx.target})
            if propagate:
                _PROPAGATOR.inject(params.headers,
                                   context=trace.set_span_in_context(ctx.span))

    async def end(_session: aiohttp.ClientSession, ctx: SimpleNamespace,
                  params: aiohttp.TraceRequestEndParams) -> None:
        response = params.response
        _record(ctx, params.method, response.status, None,
                response.headers.get("Retry-After"))

    async def failed(_session: aiohttp.ClientSession, ctx: SimpleNamespace,
                     params: aiohttp.TraceRequestExceptionParams) -> None:
        _record(ctx, params.method, None, type(params.exception).__name__, None)

    def _record(ctx: SimpleNamespace, method: str, status: int | None, error: str | None,
                retry_after: str | None) -> None:
        record(telemetry, ctx.target, method, ctx.started, status, error, retry_after,
               ctx.span, lines=lines)

    config.on_request_start.append(start)
    config.on_request_end.append(end)
    config.on_request_exception.append(failed)
    return config


class OutboundWatch:
    """One call no HTTP session sees (an SMTP send): failed when it ends with an exception."""

    __slots__ = ("_operation", "_span", "_started", "_target", "_telemetry")

    def __init__(self, telemetry: Telemetry, target: str, operation: str) -> None:
        self._telemetry, self._target, self._operation = telemetry, target, operation
        self._started = 0.0
        self._span: trace.Span | None = None

    def __enter__(self) -> OutboundWatch:
        self._started = time.monotonic()
        if self._telemetry.tracer is not None:
            self._span = self._telemetry.tracer.start_span(
                f"{self._operation} {self._target}", kind=trace.SpanKind.CLIENT,
                attributes={"switchboard.target": self._target})
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        record(self._telemetry, self._target, self._operation, self._started, None,
               kind.__name__ if kind is not None else None, span=self._span)

    def conflict(self) -> None:
        return None
