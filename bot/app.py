"""The composition root: create_app(settings) builds the store, engine, Teams side and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bot import jsonio
from bot.board.api import BoardApi
from bot.bootstrap import Outside, build_engine
from bot.config import Settings, parse_relay
from bot.domain.timers import STALE_SWEEP
from bot.email.channel import email_channel
from bot.interact.api import InteractApi
from bot.interact.openapi import openapi_route
from bot.interact.site import site_routes
from bot.logs import keep_payloads_out
from bot.observability.access import access_middleware
from bot.observability.observer import EngineObserver
from bot.observability.outbound import outbound_tracing, teams_target
from bot.observability.startup import log_startup, version
from bot.observability.status import Instance, gauges_kept, status_route
from bot.observability.telemetry import Telemetry
from bot.reporting.api import routes as reporting_routes
from bot.services import agents as agent_cases
from bot.services import dispatch as dispatch_cases
from bot.services.changes import follow_changes
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.ports import Clock, Store, StoreUnavailable
from bot.services.system_clock import SystemClock
from bot.storage.fleet import fleet_store
from bot.storage.sqlite import SqliteStore
from bot.tabs.site import mount_tabs
from bot.tasks_api.api import TasksApi
from bot.teams.gateway import TeamsGateway

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
ENGINE = web.AppKey("engine", Engine)
GATEWAY = web.AppKey("gateway", TeamsGateway)
INTERACT = web.AppKey("interact", InteractApi)
TELEMETRY = web.AppKey("telemetry", Telemetry)
INSTANCE = web.AppKey("instance", Instance)
SHUTDOWN_GRACE = 3.0  # seconds outbound calls get to finish when the app stops


async def open_store(settings: Settings) -> Store:
    if settings.store == "cosmos":
        # Imported only when chosen, so SQLite deployments never load azure-cosmos.
        from bot.storage.cosmos import open_cosmos

        store: Store = await open_cosmos(settings)
        return store
    return await SqliteStore(settings.db_path).open()


async def _startup(ctx: Ctx) -> None:
    """Bring stored state in line with this start: memberships, the availability index (both
    depend on the services file), the recurring sweep; then offer what waits in the queues
    (capacities or members may have changed while the app was down)."""
    await agent_cases.sync_memberships(ctx)
    await dispatch_cases.index_agents(ctx)
    await dispatch_cases.redispatch(ctx, ctx.catalog.services)
    if await ctx.uow.timers.get(f"{STALE_SWEEP}:all") is None:
        await ctx.arm_in(STALE_SWEEP, "all", ctx.catalog.stale_sweep_every)


def create_app(settings: Settings, *, storage: Store | None = None,
               clock: Clock | None = None, connector_time_scale: float = 1.0,
               authenticate_inbound: bool = True,
               msal_http_client: object | None = None,
               bot_openid_metadata: str | None = None,
               telemetry: Telemetry | None = None) -> web.Application:
    """Build the app. The keywords after `clock` exist for tests that put stand-ins in place
    of Teams and Entra ID; production (python -m bot) passes only settings (telemetry comes
    from the OTEL_* and APPLICATIONINSIGHTS_* environment variables)."""
    keep_payloads_out()
    telemetry = telemetry or Telemetry.from_env(version=version())
    app = web.Application(client_max_size=256 * 1024,
                          middlewares=[access_middleware(telemetry.tracer)])
    app[SETTINGS] = settings
    app[TELEMETRY] = telemetry
    interact = InteractApi(public_origin=public_origin(settings.public_host),
                           trusted_proxies=settings.trusted_proxies)
    app[INTERACT] = interact
    tasks_api = TasksApi()
    # The Teams tabs (/tabs/...) and the supervisor board's API: one sign-in for both.
    tabs = mount_tabs(app, settings, ENGINE)
    board = BoardApi(identify=tabs.supervisor, guard=tabs.answering)

    def notify(topics: set[str] | None) -> None:
        """Wake this instance's live chats and boards: own commits, and the change feed."""
        interact.hub.notify(topics)
        board.notify(topics)

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = storage or await open_store(settings)
        app[STORE] = store
        yield
        if storage is None:
            await store.close()

    async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
        """The engine with every job (bot/bootstrap.py) and the Teams side its jobs talk to.
        Web requests are wired before any channel can take a task, and outlive the scheduler."""
        teams_traced = outbound_tracing(telemetry, teams_target)
        webhooks_traced = outbound_tracing(telemetry, lambda _url: "webhook", propagate=True,
                                           lines=False)  # bot/webhooks/sender.py logs them
        async with aiohttp.ClientSession(trace_configs=[teams_traced],
                                         json_serialize=jsonio.dumps) as teams_http, \
                aiohttp.ClientSession(trace_configs=[webhooks_traced]) as webhooks_http:
            gateway = TeamsGateway(settings, teams_http,
                                   time_scale=connector_time_scale,
                                   authenticate_inbound=authenticate_inbound,
                                   msal_http_client=msal_http_client,
                                   openid_metadata=bot_openid_metadata,
                                   fleet=fleet_store(app[STORE]))
            relay = parse_relay(settings.smtp_relay) if settings.smtp_relay else None
            engine = build_engine(app[STORE], clock or SystemClock(), settings.catalog,
                                  Outside(teams=gateway, smtp_relay=relay,
                                          webhooks=webhooks_http, chats=notify),
                                  observer=EngineObserver(telemetry))
            app[ENGINE], app[GATEWAY] = engine, gateway
            app[INSTANCE] = Instance(version(), time.monotonic(), lambda: gateway.sender.pending)
            await engine.run(_startup)
            interact.attach(engine)
            if gateway.fleet is not None:
                membership = gateway.fleet
                interact.share_limits(lambda: membership.live)
            gateway.attach(engine)
            await gateway.start()
            log_startup(settings, telemetry)
            async with gauges_kept(engine, telemetry):
                yield
            await gateway.sender.close(grace=SHUTDOWN_GRACE)
            await gateway.stop()

    async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
        jobs = app[ENGINE].jobs
        task = asyncio.create_task(jobs.run_scheduler())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await jobs.stop_jobs()

    async def chats_ctx(app: web.Application) -> AsyncIterator[None]:
        """Chats wake on rows committed by any instance: the store's change feed."""
        feed = await app[STORE].changes()
        follower = asyncio.create_task(follow_changes(feed, notify))
        yield
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await interact.close_streams()  # the widget reconnects to whichever instance is up

    async def channels_ctx(app: web.Application) -> AsyncIterator[None]:
        """The SMTP listener and the external task API."""
        tasks_api.attach(app[ENGINE])
        async with email_channel(settings, app[ENGINE]):
            yield

    async def telemetry_ctx(app: web.Application) -> AsyncIterator[None]:
        """Export what is left when the app stops (off the loop: the exporters block)."""
        yield
        await asyncio.to_thread(telemetry.shutdown)

    app.cleanup_ctx.extend([telemetry_ctx, store_ctx, engine_ctx, channels_ctx, scheduler_ctx,
                            chats_ctx])
    app.router.add_post("/api/messages", messages)
    app.router.add_routes(interact.routes())
    app.router.add_routes(tasks_api.routes())
    app.router.add_routes([openapi_route()])
    app.router.add_routes(reporting_routes(ENGINE))
    app.router.add_routes([status_route(lambda request: request.app[ENGINE],
                                        lambda request: request.app[INSTANCE],
                                        settings.local_mode)])
    app.router.add_routes(site_routes(settings))
    board.mount(app, ENGINE)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    for path in LEGAL_PAGES:
        app.router.add_get(path, legal_page)
    return app


def public_origin(public_host: str) -> str:
    """https://<host> from SWITCHBOARD_PUBLIC_HOST, with or without a scheme and slash."""
    host = public_host.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    return f"https://{host}" if host else ""


async def messages(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].messages(request)


async def legal_page(request: web.Request) -> web.Response:
    """/privacy and /terms, linked from the Teams app manifest."""
    return web.Response(text=LEGAL_PAGES[request.path], content_type="text/html")


LEGAL_PAGES = {
    "/privacy": "<!doctype html><title>Switchboard privacy</title><h1>Privacy</h1><p>Switchboard"
                " keeps customer details only while a task is live unless a service opted in to"
                " store conversation context, and deletes stored context after 30 days. Customer"
                " data never goes into logs. Your organisation operates this instance; ask its"
                " administrators about their policy.</p>",
    "/terms": "<!doctype html><title>Switchboard terms</title><h1>Terms of use</h1><p>This"
              " Switchboard instance is operated by your organisation for its contact center;"
              " its terms apply.</p>",
}


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[STORE].ping()
    except StoreUnavailable as exc:
        log.warning("store not ready", extra={"error": str(exc)[:200]})
        return web.json_response({"status": "unavailable", "message": "The store is not "
                                  "reachable."}, status=503)
    return web.json_response({"status": "ready"})
