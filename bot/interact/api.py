"""The Interact JSON API and WebSocket under /api/interact/v1 (a product interface)."""

from __future__ import annotations

import asyncio
import math
import re
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from aiohttp import WSMsgType, web
from yarl import URL

from bot import jsonio
from bot.domain.customer import Customer
from bot.domain.message import ChatMessage, Kind, LinePace
from bot.domain.task import Task
from bot.http import (
    ANSWERED,
    Handler,
    HttpError,
    answer,
    answering,
    bearer_token,
    http_error,
    is_loopback_host,
    problem,
    read_json_object,
)
from bot.interact import identity
from bot.interact.limits import WindowLimiter
from bot.services import chats, conversation, lifecycle
from bot.services.context import Ctx
from bot.services.ports import ConflictError, StoreUnavailable
from bot.services.slot import EngineSlot

PREFIX = "/api/interact/v1"
MAX_TEXT_BYTES = 4096
MAX_BODY_BYTES = 64 * 1024  # JSON escapes can make 4 KB of text six times larger
POSITION_POLL = 1.0  # seconds between queue-position checks while a chat waits
# Other instances' rows arrive through the store's change feed (bot/services/changes.py);
# a chat also looks by itself this often, a safety net should a wake-up ever be lost.
RESYNC_POLL = 15.0
MAX_CONTEXT = 20  # entries of a chat's `context`
MAX_CONTEXT_VALUE = 256  # characters of one value
CONTEXT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # as the task API's context names
BUSY = "The chat service is busy; please retry."


class Doorbell:
    """Wakes one WebSocket's stream: rung on a commit to its chat or when its client leaves.
    A ring while nobody waits is kept for the next `wait` (cheaper than an Event waited on
    by a task of its own: the stream waits once per push)."""

    __slots__ = ("_rung", "_waiter")

    def __init__(self) -> None:
        self._rung = False
        self._waiter: asyncio.Future[None] | None = None

    def ring(self) -> None:
        self._rung = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def clear(self) -> None:
        self._rung = False

    async def wait(self, timeout: float) -> None:
        """Until rung (at once if it was since `clear`) or `timeout` seconds passed."""
        if self._rung:
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        later = loop.call_later(timeout, _settle, waiter)
        try:
            await waiter
        finally:
            later.cancel()
            self._waiter = None


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ChatHub:
    """Wakes the WebSockets of a chat when this instance commits rows to its conversation."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[Doorbell]] = defaultdict(set)

    def notify(self, chat_ids: set[str] | None) -> None:
        """Wake the chats that got new rows; None: every chat (a change feed lost track)."""
        if chat_ids is None:
            chat_ids = set(self._waiters)
        for chat_id in chat_ids:
            for bell in self._waiters.get(chat_id, ()):
                bell.ring()

    def subscribe(self, chat_id: str) -> Doorbell:
        bell = Doorbell()
        self._waiters[chat_id].add(bell)
        return bell

    def unsubscribe(self, chat_id: str, bell: Doorbell) -> None:
        waiters = self._waiters.get(chat_id)
        if waiters is not None:
            waiters.discard(bell)
            if not waiters:
                del self._waiters[chat_id]


def event_json(row: ChatMessage) -> dict[str, Any]:
    """One customer-facing event; `seq` is the conversation's sequence number."""
    base: dict[str, Any] = {"seq": row.seq, "type": row.kind.value, "at": row.at.isoformat()}
    if row.kind is Kind.MESSAGE:
        base.update(id=f"{row.task_id}:{row.seq}", text=row.text, **{"from": row.sender.value})
    elif row.kind is Kind.ACCEPTED:
        base["agent"] = row.data.get("agent", "An agent")
    elif row.kind is Kind.ENDED:
        base["by"] = row.data.get("by", "system")
    elif row.kind is Kind.EXPIRED:
        base["message"] = row.text
    elif row.kind is Kind.QUEUED and row.data.get("transfer"):
        base["transfer"] = row.data["transfer"]
    return base


class InteractApi(EngineSlot):
    """Routes exist from the start; the engine is attached once the store is open (its commits
    wake the chats through self.hub: bot/bootstrap.py)."""

    def __init__(self, *, public_origin: str = "", trusted_proxies: int = 0,
                 chats_per_ip_minute: int = 120, messages_per_chat_10s: int = 20) -> None:
        super().__init__("the chat service is starting")
        self.hub = ChatHub()
        self.public_origin = public_origin
        self.trusted_proxies = trusted_proxies
        self.per_ip = WindowLimiter(chats_per_ip_minute, 60.0)
        # Counted in the store: a widget's lines may reach any instance.
        self.line_pace = LinePace(messages_per_chat_10s, timedelta(seconds=10))
        self._sockets: set[web.WebSocketResponse] = set()

    def share_limits(self, fleet_size: Callable[[], int]) -> None:
        """Keep the new chats per address for the fleet: `fleet_size` counts the live instances
        (the heartbeats the Teams limits keep too). The lines per chat need no share: the
        use case counts them in the store (`line_pace`)."""
        self.per_ip.fleet_size = fleet_size

    async def close_streams(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"server shutting down")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{PREFIX}/chats", self._wrap(self.create_chat)),
            web.post(f"{PREFIX}/chats/{{chat_id}}/messages", self._wrap(self.post_message)),
            web.post(f"{PREFIX}/chats/{{chat_id}}/end", self._wrap(self.end_chat)),
            web.get(f"{PREFIX}/chats/{{chat_id}}/ws", self.websocket),
            web.options(f"{PREFIX}/{{tail:.*}}", self.preflight),
        ]

    # -- plumbing ---------------------------------------------------------------------------

    def _wrap(self, handler: Handler) -> Handler:
        answered = answering(handler, busy=BUSY)

        async def wrapped(request: web.Request) -> web.StreamResponse:
            response = await answered(request)
            self._cors(request, response)
            return response

        return wrapped

    def _allowed_origin(self, request: web.Request, service_ids: list[str]) -> bool:
        origin = request.headers.get("Origin")
        if not origin or self._own_origin(origin):
            return True
        for service_id in service_ids:
            service = self.engine.catalog.services.get(service_id)
            if service is not None and origin in service.interact.allowed_origins:
                return True
        return False

    def _own_origin(self, origin: str) -> bool:
        """The bot's own pages: its public origin; without one (local mode), pages on a
        loopback host. Never the Host header: a page on a name that resolves to this server
        (DNS rebinding) would send that name as both Host and Origin."""
        if self.public_origin:
            return origin == self.public_origin
        try:
            url = URL(origin)
        except ValueError:
            return False
        return url.scheme in ("http", "https") and is_loopback_host(url.host or "")

    def _check_origin(self, request: web.Request, service_id: str) -> None:
        if not self._allowed_origin(request, [service_id]):
            raise HttpError(403, "This website is not allowed to open chats for this service.")

    def _cors(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin and self._allowed_origin(request, list(self.engine.catalog.services)):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"

    async def preflight(self, request: web.Request) -> web.Response:
        if not self._allowed_origin(request, list(self.engine.catalog.services)):
            return problem(403, "This website is not allowed to use the chat.")
        response = web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, Authorization",
            "Access-Control-Max-Age": "600",
        })
        self._cors(request, response)
        return response

    def _limit(self, limiter: WindowLimiter, key: str) -> None:
        wait = limiter.hit(key)
        if wait:
            raise HttpError(429, "Too many requests; slow down.",
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})

    @staticmethod
    def _bearer(request: web.Request) -> str:
        return bearer_token(request, "the chat token", "token")

    async def _task(self, request: web.Request, token: str) -> Task:
        async def load(ctx: Ctx) -> Task:
            return await chats.authorized_chat(ctx, request.match_info["chat_id"], token)

        return await self.engine.read(load)

    # -- endpoints --------------------------------------------------------------------------

    async def create_chat(self, request: web.Request) -> web.Response:
        self._limit(self.per_ip, client_ip(request, self.trusted_proxies))
        body = await read_json_object(request, MAX_BODY_BYTES)
        service_id = body.get("service")
        if not isinstance(service_id, str) or not service_id:
            raise HttpError(400, "Name the service: {\"service\": \"sales\", ...}.")
        if service_id not in self.engine.catalog.services:
            raise HttpError(404, f"There is no service {service_id[:60]!r}.")
        self._check_origin(request, service_id)
        text = _text(body.get("text", ""), "text", allow_empty=True)
        customer = _customer(body.get("customer"))
        customer = replace(customer, params={**customer.params, **_context(body.get("context"))})
        if body.get("identity") is not None:
            service = self.engine.catalog.services[service_id]
            who = identity.verify(body["identity"], service.interact.identity_secret,
                                  service_id, self.engine.clock.now())
            customer = replace(customer, name=who.name or customer.name,
                               email=who.email or customer.email, unverified=False)
        else:
            customer = replace(customer, unverified=bool(customer.name))
        token = secrets.token_urlsafe(32)
        opened = await self.engine.run_durably(chats.open_chat, service_id, customer, text, token,
                                       request.headers.get("Origin", ""))
        return web.json_response({
            "chat_id": opened.task.id, "token": token, "visitor": opened.task.customer_label,
            "position": opened.position,
        }, status=201, dumps=jsonio.dumps)

    async def post_message(self, request: web.Request) -> web.Response:
        token = self._bearer(request)
        body = await read_json_object(request, MAX_BODY_BYTES)
        task = await self._task(request, token)
        self._check_origin(request, task.service_id)
        text = _text(body.get("text"), "text")
        message = await self.engine.run_durably(conversation.customer_message, task.id, text,
                                                pace=self.line_pace)
        return web.json_response({"seq": message.seq}, status=202, dumps=jsonio.dumps)

    async def end_chat(self, request: web.Request) -> web.Response:
        token = self._bearer(request)
        task = await self._task(request, token)
        self._check_origin(request, task.service_id)
        if task.state.live:
            await self.engine.run(lifecycle.cancel_task, task.id, by="customer")
        return web.json_response({"chat_id": task.id, "ended": True})

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("token", "")
        after_text = request.query.get("after", "0")
        if not after_text.isdigit() or int(after_text) >= 2**62:
            return problem(400, "`after` must be a sequence number.")
        try:
            task = await self._task(request, token)
        except ANSWERED as exc:
            return answer(http_error(exc, BUSY))
        if not self._allowed_origin(request, [task.service_id]):
            return problem(403, "This website is not allowed to open this chat.")
        ws = web.WebSocketResponse(heartbeat=25.0)
        if not ws.can_prepare(request).ok:
            return problem(400, "This endpoint is a WebSocket: connect with an Upgrade.")
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await ChatStream(self, ws, task.id, token, int(after_text)).run()
        finally:
            self._sockets.discard(ws)
        return ws


class ChatStream:
    """Sends a chat's events after `after`, then new ones as they are committed."""

    def __init__(self, api: InteractApi, ws: web.WebSocketResponse, chat_id: str, token: str,
                 after: int) -> None:
        self.api = api
        self.ws = ws
        self.chat_id = chat_id
        self.token = token
        self.after = after
        self.position: int | None = None

    async def run(self) -> None:
        wake = self.api.hub.subscribe(self.chat_id)
        reader = asyncio.create_task(self._drain_incoming())
        reader.add_done_callback(lambda _: wake.ring())
        try:
            while not self.ws.closed:
                wake.clear()
                finished = await self._push()
                if finished:
                    break
                await wake.wait(POSITION_POLL if self.position else RESYNC_POLL)
                if reader.done():
                    break
        except (ConnectionResetError, ConflictError, StoreUnavailable):
            pass
        finally:
            self.api.hub.unsubscribe(self.chat_id, wake)
            reader.cancel()
            if not self.ws.closed:
                await self.ws.close()

    async def _push(self) -> bool:
        """Send what is new; True once the chat has ended and everything was sent."""
        view = await self.api.engine.read(chats.chat_events, self.chat_id, self.token, self.after)
        for row in view.rows:
            await self.ws.send_json(event_json(row), dumps=jsonio.dumps)
            self.after = row.seq
        if view.position and view.position != self.position:
            await self.ws.send_json({"seq": self.after, "type": "queued",
                                     "position": view.position})
        self.position = view.position
        return not view.task.state.live and len(view.rows) < 200

    async def _drain_incoming(self) -> None:
        """The socket is server → client only; reading it notices when the client leaves."""
        async for message in self.ws:
            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break


def client_ip(request: web.Request, trusted_proxies: int) -> str:
    """The customer's address: the peer, or behind `trusted_proxies` reverse proxies the
    address the outermost of them saw (each appends its peer to X-Forwarded-For, so it is that
    many entries from the right; entries further left are whatever the client claimed)."""
    if trusted_proxies:
        hops = [entry.strip() for header in request.headers.getall("X-Forwarded-For", ())
                for entry in header.split(",")]
        if len(hops) >= trusted_proxies and hops[-trusted_proxies]:
            return hops[-trusted_proxies]
    return request.remote or "unknown"



def _text(value: Any, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise HttpError(400, f"`{field}` must be a string.")
    if len(value.encode()) > MAX_TEXT_BYTES:
        raise HttpError(413, f"`{field}` is longer than {MAX_TEXT_BYTES // 1024} KB.")
    if not allow_empty and not value.strip():
        raise HttpError(400, f"`{field}` must not be empty.")
    return value


def _customer(value: Any) -> Customer:
    if value is None:
        return Customer()
    if not isinstance(value, dict):
        raise HttpError(400, "`customer` must be an object with name, email, phone, params.")
    fields: dict[str, str] = {}
    for key in ("name", "email", "phone"):
        raw = value.get(key, "")
        if not isinstance(raw, str) or len(raw) > 320:
            raise HttpError(400, f"`customer.{key}` must be a string of at most 320 characters.")
        fields[key] = raw.strip()
    params = value.get("params", {})
    if not isinstance(params, dict) or len(params) > 50 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 1024
            for k, v in params.items()):
        raise HttpError(400, "`customer.params` must map at most 50 names to strings.")
    return Customer(name=fields["name"], email=fields["email"], phone=fields["phone"],
                    params=dict(params))


def _context(value: Any) -> dict[str, str]:
    """The website's `context`: a few named strings (they fill {param.X} like the task API's)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_CONTEXT:
        raise HttpError(400, f"`context` must map at most {MAX_CONTEXT} names to strings.")
    for key, item in value.items():
        if not CONTEXT_NAME.match(key):
            raise HttpError(400, "`context` names use letters, digits, '_', '.' and '-' (at "
                                "most 64).")
        if not isinstance(item, str) or len(item) > MAX_CONTEXT_VALUE:
            raise HttpError(400, f"`context.{key}` must be a string of at most "
                                f"{MAX_CONTEXT_VALUE} characters.")
    return dict(value)
