"""GET /api/v1/status: the live picture per service and per instance; the gauges it feeds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.http import answering, api_key
from bot.observability.telemetry import INSTANCE_ID, Gauges, Telemetry
from bot.services import live_status
from bot.services.engine import Engine
from bot.services.live_status import JobsStatus, ServiceStatus

log = logging.getLogger(__name__)

GAUGE_REFRESH = 15.0  # seconds between reads of the live picture for the gauges


@dataclass(frozen=True)
class Instance:
    """What this process knows of itself for the status answer."""

    version: str
    started: float  # time.monotonic() at start
    outbound_pending: Callable[[], int]  # requests queued or under way to Teams


async def read_picture(engine: Engine) -> tuple[list[ServiceStatus], JobsStatus]:
    services = await engine.read(live_status.services_status)
    jobs = await engine.read(live_status.jobs_status, list(engine.jobs.effects)
                             + list(engine.jobs.timers))
    return services, jobs


def service_json(status: ServiceStatus) -> dict[str, Any]:
    return {"id": status.service_id,
            "queue": {"waiting": status.waiting, "queued": status.queued,
                      "ringing": status.ringing,
                      "oldest_wait_seconds": status.oldest_wait_seconds},
            "agents": status.agents,
            "sessions": {"live": status.sessions_live, "acw": status.sessions_acw}}


def status_route(engine_of: Callable[[web.Request], Engine],
                 instance_of: Callable[[web.Request], Instance],
                 local_mode: bool) -> web.RouteDef:
    """The route: an API key with the `reporting` scope (its services only), or none in
    local mode (every service)."""

    async def status(request: web.Request) -> web.StreamResponse:
        engine = engine_of(request)
        visible: Callable[[str], bool] = lambda _service: True  # noqa: E731
        if not local_mode or "Authorization" in request.headers:
            key = api_key(request, engine.catalog, "reporting")
            visible = key.allows
        services, jobs = await read_picture(engine)
        instance = instance_of(request)
        return web.json_response({
            "instance": {"id": INSTANCE_ID, "version": instance.version,
                         "uptime_seconds": round(time.monotonic() - instance.started, 1),
                         "jobs_due": jobs.due, "jobs_overdue": jobs.overdue,
                         "outbound_queue": instance.outbound_pending()},
            "services": [service_json(s) for s in services if visible(s.service_id)]})

    return web.get("/api/v1/status", answering(status, busy="The store is busy; try again."))


def fill_gauges(gauges: Gauges, services: list[ServiceStatus], jobs: JobsStatus) -> None:
    """Put a picture into the gauges (replacing, never mutating, each list the exporter's
    thread may be reading)."""
    gauges.queue_length = [({"service": s.service_id}, float(s.waiting)) for s in services]
    gauges.oldest_wait = [({"service": s.service_id}, s.oldest_wait_seconds or 0.0)
                          for s in services]
    gauges.agents = [({"service": s.service_id, "state": state}, float(n))
                     for s in services for state, n in s.agents.items()]
    gauges.sessions = [({"service": s.service_id, "phase": phase}, float(n))
                       for s in services
                       for phase, n in (("live", s.sessions_live), ("acw", s.sessions_acw))]
    gauges.jobs_due = [({}, float(jobs.due))]
    gauges.jobs_overdue = [({}, float(jobs.overdue))]


async def refresh_gauges(engine: Engine, telemetry: Telemetry) -> None:
    try:
        services, jobs = await read_picture(engine)
    except Exception as exc:  # the store may be busy or away; the next refresh tries again
        log.warning("live picture not read", extra={"error": type(exc).__name__})
        return
    fill_gauges(telemetry.gauges, services, jobs)


async def keep_gauges(engine: Engine, telemetry: Telemetry,
                      sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Refresh the gauges every GAUGE_REFRESH seconds for as long as the app runs."""
    while True:
        await refresh_gauges(engine, telemetry)
        await sleep(GAUGE_REFRESH)


@contextlib.asynccontextmanager
async def gauges_kept(engine: Engine, telemetry: Telemetry) -> AsyncIterator[None]:
    """keep_gauges while inside; a last refresh on the way out (the final export has it)."""
    if telemetry.instruments is None:
        yield
        return
    task = asyncio.create_task(keep_gauges(engine, telemetry))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await refresh_gauges(engine, telemetry)
