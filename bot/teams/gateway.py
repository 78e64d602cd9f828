"""Wires the Teams side together and serves POST /api/messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
from aiohttp import web

from bot import jsonio
from bot.config import Settings
from bot.dialogs.desk import Desk
from bot.http import ANSWERED, BadBody, answer, http_error, parse_json, problem
from bot.services.engine import Engine
from bot.services.fleet import FleetStore
from bot.services.ports import ConflictError, StoreUnavailable
from bot.signing_keys import PublishedKeys
from bot.teams.adapter import BadActivity, InboundAuth, SwitchboardAdapter, Unauthorized
from bot.teams.bf_auth import CHANNEL_METADATA_URL, ChannelTokenValidator
from bot.teams.clock import MonotonicClock
from bot.teams.connector import ConnectorClient
from bot.teams.credentials import outbound_tokens
from bot.teams.directory import TeamsMemberDirectory
from bot.teams.fleet_pacing import FleetMembership, SharedWindows
from bot.teams.graph import GraphClient
from bot.teams.handler import SwitchboardBot
from bot.teams.outbound import OutboundError, OutboundHTTPError, OutboundSender
from bot.teams.ratelimit import RateLimiter
from bot.teams.service_urls import TEAMS_HOSTS, ServiceUrlPolicy

log = logging.getLogger(__name__)


# Teams counts a request when it arrives, so pacing exactly at the limit still draws 429s when
# latency varies; 5 % longer windows drew none in the bench.
LIMIT_HEADROOM = 0.05


class TeamsGateway:
    """Everything that talks Bot Framework: one pooled session, one sender, one adapter."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession,
                 *, time_scale: float = 1.0, authenticate_inbound: bool = True,
                 msal_http_client: object | None = None,
                 fleet: FleetStore | None = None, openid_metadata: str | None = None) -> None:
        clock = MonotonicClock()
        self.session = session
        limiter = RateLimiter(clock, time_scale=time_scale, headroom=LIMIT_HEADROOM)
        self.limiter = limiter
        self.sender = OutboundSender(limiter, clock)
        # With a store that other instances share, the Teams limits hold for the fleet.
        self.fleet: FleetMembership | None = None
        self._beating: asyncio.Task[None] | None = None
        if fleet is not None:
            limiter.shared = SharedWindows(fleet, limiter, clock)
            self.fleet = FleetMembership(fleet, limiter, limiter.shared)
        graph: GraphClient | None = None
        # A stand-in token endpoint (tests) is reached through its own http client and has no
        # instance discovery; production uses MSAL's defaults.
        msal: dict[str, Any] = {}
        if msal_http_client is not None:
            msal = {"http_client": msal_http_client, "instance_discovery": False}
        tokens = outbound_tokens(settings, session, msal)
        if tokens.graph is not None:
            graph = GraphClient(session, self.sender, base_url=settings.graph_url,
                                tokens=tokens.graph)
        policy = ServiceUrlPolicy(TEAMS_HOSTS + settings.service_url_hosts,
                                  loopback=settings.local_mode)
        self.connector = ConnectorClient(session, self.sender, tokens=tokens.bot_connector,
                                         policy=policy)
        self.graph = graph
        self.bot_app_id, self.catalog_app_id = settings.app_id, settings.teams_app_id
        auth = None
        if settings.app_id and authenticate_inbound:
            keys = PublishedKeys(session, openid_metadata or CHANNEL_METADATA_URL)
            single = settings.tenant_id if settings.single_tenant else ""
            auth = InboundAuth(ChannelTokenValidator(settings.app_id, keys, tenant_id=single))
        self.adapter = SwitchboardAdapter(self.connector, auth)
        self.bot: SwitchboardBot | None = None

    def attach(self, engine: Engine) -> None:
        """Serve the agents' activities with the desk over the engine's use cases."""
        self.bot = SwitchboardBot(Desk(engine, TeamsMemberDirectory(self.connector)))

    async def start(self) -> None:
        """Join the fleet: the first heartbeat sets this instance's share before any send."""
        if self.fleet is None:
            return
        try:
            await self.fleet.beat()
        except (StoreUnavailable, ConflictError):
            self.limiter.set_tenant_share(1, joining=True)  # unknown fleet: err low
        self._beating = asyncio.create_task(self.fleet.run())

    async def stop(self) -> None:
        """Leave the fleet, so the others take this instance's share at once."""
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
            self._beating = None
        if self.fleet is not None:
            await self.fleet.leave()

    async def messages(self, request: web.Request) -> web.Response:
        """POST /api/messages: one activity in, 200/201 or an invoke response out."""
        if self.bot is None:
            return problem(503, "Switchboard is starting; please retry.")
        if request.content_type != "application/json":
            return problem(415, "Send the activity as JSON with Content-Type: application/json.")
        try:
            body = parse_json(await request.read())
        except BadBody as exc:
            return answer(exc)
        try:
            status, payload = await self.adapter.process(
                body, request.headers.get("Authorization", ""), self.bot)
        except BadActivity as exc:
            return problem(400, str(exc))
        except Unauthorized as exc:
            return problem(401, str(exc))
        except OutboundHTTPError as exc:
            if exc.status in (401, 403, 404):
                # The user blocked the bot or the activity is gone: retrying cannot help.
                log.warning("reply refused by the connector", extra={"status": exc.status})
                return web.Response(status=200)
            return problem(503, "Teams could not be reached; the activity was not finished.")
        except OutboundError:
            return problem(503, "Teams could not be reached; the activity was not finished.")
        except ANSWERED as exc:
            return answer(http_error(exc, "Switchboard is busy; the activity was not "
                                          "processed. Please retry."))
        if payload is None:
            return web.Response(status=status)
        return web.json_response(payload, status=status, dumps=jsonio.dumps)
