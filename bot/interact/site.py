"""The widget script, and in local mode a demo page with a chat launcher per service."""

from __future__ import annotations

from html import escape
from pathlib import Path

from aiohttp import web

from bot.config import Settings

STATIC = Path(__file__).resolve().parent / "static"


def site_routes(settings: Settings) -> list[web.RouteDef]:
    async def widget(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "widget.js", headers={
            "Content-Type": "application/javascript; charset=utf-8",
            "Cache-Control": "public, max-age=300",
            "Access-Control-Allow-Origin": "*",
        })

    async def demo(request: web.Request) -> web.Response:
        return web.Response(text=demo_page(settings), content_type="text/html")

    routes = [web.get("/interact/widget.js", widget)]
    if settings.local_mode:
        routes.append(web.get("/", demo))
    return routes


def demo_page(settings: Settings) -> str:
    """A small page: one launcher per configured service that takes website chats."""
    launchers = "\n".join(
        f'    <li><script src="/interact/widget.js" data-service="{escape(s.id)}"'
        f' data-service-name="{escape(s.name)}" data-label="Chat with {escape(s.name)}">'
        '</script></li>'
        for s in settings.catalog.services.values() if "im" in s.modalities)
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Switchboard demo site</title>
  <style>body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto;
    padding: 0 1rem; line-height: 1.5 }}</style>
</head>
<body>
  <main>
    <h1>Contoso (demo)</h1>
    <p>You are the customer. Start a chat with a service below; you are the agent in the
    Microsoft 365 Agents Playground at <a href="http://localhost:56150">localhost:56150</a>.</p>
    <ul class="launchers">
{launchers}
    </ul>
  </main>
</body>
</html>
"""
