"""The tabs' web surface: pages, static files, the Entra key set, and `api()`, the wrapper
every tab JSON endpoint goes through (who is asking, refusals as JSON or a clear page).

`mount_tabs(app, settings, engine_key)` is all the composition root calls. A page is an HTML
shell from static/ with no data in it; its script signs in (Teams SSO, or the local-mode dev
sign-in) and calls the JSON endpoints under /tabs/api/, each behind `TabsSite.api` (a
registered agent) or `TabsSite.signed_api` (anyone signed in).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.config import Settings
from bot.http import HttpError, problem
from bot.http import answering as answered_by
from bot.services import queries
from bot.services.board import Supervisor
from bot.services.engine import Engine
from bot.signing_keys import PublishedKeys
from bot.tabs import sessions
from bot.tabs.auth import Signed, TabAuth, TabUser, local_members
from bot.tabs.entra import SsoTokenValidator, metadata_url

STATIC = Path(__file__).resolve().parent / "static"
BUSY = "Switchboard is busy; try again in a moment."
# Teams (and Microsoft 365 / Outlook) show a tab in a frame: these may frame the pages.
FRAME_ANCESTORS = ("'self' https://teams.microsoft.com https://*.teams.microsoft.com "
                   "https://*.teams.microsoft.us https://*.cloud.microsoft "
                   "https://*.office.com https://*.office365.com https://*.microsoft365.com "
                   "https://*.skype.com "
                   "https://outlook.office.com https://outlook.office365.com")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       f"frame-ancestors {FRAME_ANCESTORS}")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
STATIC_TYPES = {".js": "application/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class Page:
    """A tab page: its content (static/<content>, inside the shell static/page.html), title,
    script, and where its skip link leads."""

    content: str
    title: str
    script: str
    skip_to: str
    skip_label: str


PAGES = {
    "/tabs/sessions": Page("sessions.html", "My Sessions", "sessions.js", "sessions-table",
                           "Skip to the sessions"),
    "/tabs/board": Page("board.html", "Supervisor board", "board.js", "services",
                        "Skip to the services"),
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TabHandler = Callable[[web.Request, TabUser, Engine], Awaitable[web.StreamResponse]]
SignedHandler = Callable[[web.Request, Signed, Engine], Awaitable[web.StreamResponse]]


class TabsSite:
    def __init__(self, settings: Settings, engine_key: web.AppKey[Engine]) -> None:
        self.settings = settings
        self.engine_key = engine_key
        self.auth = TabAuth(settings, None)
        self.pages = {path: render_page(settings, page) for path, page in PAGES.items()}

    def engine(self, request: web.Request) -> Engine:
        return request.app[self.engine_key]

    async def keys_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """The Entra signing keys live as long as the app, on their own aiohttp session."""
        if self.settings.local_mode:
            yield
            return
        async with aiohttp.ClientSession() as session:
            keys = PublishedKeys(session, metadata_url(self.settings.authority,
                                                     self.settings.tenant_id))
            self.auth.validator = SsoTokenValidator(
                app_id=self.settings.app_id, public_host=self.settings.public_host,
                tenant_id=self.settings.tenant_id, authority=self.settings.authority, keys=keys)
            yield

    def api(self, handler: TabHandler) -> Handler:
        """`handler` for a signed-in registered agent only (401 / 403 for anyone else)."""

        async def for_agent(request: web.Request) -> web.StreamResponse:
            engine = self.engine(request)
            user = await self.auth.user(request.headers.get("Authorization", ""), engine)
            return await handler(request, user, engine)

        return self.answering(for_agent)

    def signed_api(self, handler: SignedHandler) -> Handler:
        """`handler` for anyone signed in (401 otherwise), agent or not: it decides itself
        (a supervisor need not be an agent)."""

        async def for_signed(request: web.Request) -> web.StreamResponse:
            signed = await self.auth.signed(request.headers.get("Authorization", ""))
            return await handler(request, signed, self.engine(request))

        return self.answering(for_signed)

    @staticmethod
    def answering(handler: Handler) -> Handler:
        """Every refusal answered (see `refusal`); anything else is a bug (500)."""
        return answered_by(handler, busy=BUSY, render=refusal)

    async def supervisor(self, request: web.Request) -> Supervisor:
        """Who asks the board (bot/board/api.py's `Identify`): the same sign-in as every tab;
        whether they supervise anything the board decides (403)."""
        signed = await self.auth.signed(request.headers.get("Authorization", ""))
        return Supervisor(upn=signed.upn, object_id=signed.object_id)

    async def me(self, request: web.Request, signed: Signed,
                 engine: Engine) -> web.StreamResponse:
        """Who is signed in, and the agent they are (null for none)."""
        agent = await engine.read(queries.agent_by_identity, signed.upn, signed.object_id)
        return web.json_response({
            "name": (agent.name if agent else "") or signed.name, "upn": signed.upn,
            "local_mode": self.settings.local_mode,
            "agent": {"name": agent.name, "services": list(agent.services)} if agent else None,
        })

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=self.pages[request.path],
                            content_type="text/html", headers=PAGE_HEADERS)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = (STATIC / name).resolve()
        if STATIC not in path.parents or path.suffix not in STATIC_TYPES or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": STATIC_TYPES[path.suffix],
                                               "Cache-Control": "public, max-age=300",
                                               "X-Content-Type-Options": "nosniff"})

    async def members(self, request: web.Request) -> web.Response:
        """Local mode's dev sign-in: who may be picked (the services file's members)."""
        if not self.settings.local_mode:
            return problem(404, "The dev sign-in exists only in local mode.")
        return web.json_response({"members": local_members(self.settings)})

    def routes(self) -> list[web.RouteDef]:
        return [
            *(web.get(path, self.page) for path in PAGES),
            web.get("/tabs/static/{name:[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?}", self.static),
            web.get("/tabs/api/local/members", self.members),
            web.get("/tabs/api/me", self.signed_api(self.me)),
            *sessions.routes(self),
        ]


TABS = web.AppKey("tabs", TabsSite)


def refusal(request: web.Request, error: HttpError) -> web.Response:
    """A refusal as `{"error": ...}` for the page's script, or as a small page for a person
    who opened an API address in a browser. Never data."""
    accept = request.headers.get("Accept", "")
    if "text/html" in accept and "application/json" not in accept:
        body = (f"<!doctype html><html lang=en><meta charset=utf-8><title>Switchboard</title>"
                f"<h1>{error.status}: not shown</h1><p>{escape(error.message)}</p></html>")
        return web.Response(text=body, status=error.status, content_type="text/html",
                            headers={**error.headers, **PAGE_HEADERS})
    return problem(error.status, error.message, field=error.field, headers=error.headers)


LOCAL_BANNER = ('<div class="banner" role="note">Local mode: no Teams sign-in, anyone who '
                'reaches this address may pick who they are. <button type="button" '
                'id="switch-user" hidden>Switch user</button></div>')


def render_page(settings: Settings, page: Page) -> str:
    """The shell (static/page.html) around the page's content, with its mode (local or
    teams), the local-mode banner, the sign-in parts every page shares (static/signin.html:
    the notice for refusals, the dev sign-in form that static/tabs.js drives) and the title."""
    mode = "local" if settings.local_mode else "teams"
    shell = (STATIC / "page.html").read_text(encoding="utf-8")
    content = (STATIC / page.content).read_text(encoding="utf-8")
    signin = (STATIC / "signin.html").read_text(encoding="utf-8")
    # The page's own parts first: its content then brings {{signin}} for the shell's pass.
    html = (shell.replace("{{content}}", content).replace("{{script}}", page.script)
            .replace("{{skip}}", page.skip_to).replace("{{skip_label}}", page.skip_label))
    return (html.replace("{{mode}}", mode).replace("{{title}}", escape(page.title))
            .replace("{{banner}}", LOCAL_BANNER if settings.local_mode else "")
            .replace("{{signin}}", signin))


def mount_tabs(app: web.Application, settings: Settings,
               engine_key: web.AppKey[Engine]) -> TabsSite:
    """Add the tabs' routes and their key set's lifetime to `app`."""
    site = TabsSite(settings, engine_key)
    app[TABS] = site
    app.cleanup_ctx.append(site.keys_ctx)
    app.router.add_routes(site.routes())
    return site
