"""The access line per request (route template, status, duration, request id, caller kind) and
the server span that carries the caller's W3C trace context."""

from __future__ import annotations

import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from bot.http import CALLER, Handler
from bot.logs import REQUEST_ID

log = logging.getLogger("bot.access")

_PROPAGATOR = TraceContextTextMapPropagator()
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def request_id(request: web.Request) -> str:
    """The caller's X-Request-Id when it is a plain token, else the trace id of its
    traceparent, else a new one."""
    given = request.headers.get("X-Request-Id", "")
    if _REQUEST_ID.fullmatch(given):
        return given
    parent = _TRACEPARENT.fullmatch(request.headers.get("traceparent", "").strip())
    if parent is not None and parent[1] != "0" * 32:
        return parent[1]
    return uuid.uuid4().hex


def route_template(request: web.Request) -> str:
    """/api/interact/v1/chats/{chat_id}/messages: the route, never the path with ids."""
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "unmatched"


def caller_kind(request: web.Request) -> str:
    """teams, widget, apikey:<name>, or anonymous."""
    named = request.get(CALLER)
    if isinstance(named, str):
        return f"apikey:{named}"
    path = request.path
    if path == "/api/messages":
        return "teams"
    if path.startswith("/api/interact/") or path.startswith("/widget"):
        return "widget"
    return "anonymous"


def access_middleware(tracer: trace.Tracer | None) -> Middleware:
    """One INFO line per request once answered; a SERVER span around it when tracing."""

    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        rid = request_id(request)
        token = REQUEST_ID.set(rid)
        route = route_template(request)
        status = 500
        try:
            if tracer is None:
                response = await handler(request)
                status = response.status
                return _tagged(response, rid)
            context = _PROPAGATOR.extract(request.headers)
            # The span's status is ours to set: a refusal (404, 410, a redirect) raised as an
            # HTTPException is an answer, not a failure of the server.
            with tracer.start_as_current_span(
                    f"{request.method} {route}", context=context, kind=trace.SpanKind.SERVER,
                    attributes={"http.request.method": request.method, "http.route": route,
                                "switchboard.request_id": rid},
                    record_exception=False, set_status_on_exception=False) as span:
                try:
                    response = await handler(request)
                    status = response.status
                except web.HTTPException as exc:
                    status = exc.status
                    raise
                except Exception as exc:
                    span.record_exception(exc)
                    raise
                finally:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(trace.StatusCode.ERROR)
                return _tagged(response, rid)
        except web.HTTPException as exc:
            status = exc.status
            exc.headers["X-Request-Id"] = rid
            raise
        finally:
            log.info("request", extra={
                "method": request.method, "route": route, "status": status,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
                "caller": caller_kind(request)})
            REQUEST_ID.reset(token)

    return access


def _tagged(response: web.StreamResponse, rid: str) -> web.StreamResponse:
    if not response.prepared:
        response.headers["X-Request-Id"] = rid
    return response
