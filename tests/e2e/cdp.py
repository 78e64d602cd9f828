"""A small Chrome DevTools Protocol client: Debian's headless Chromium driven over aiohttp.

Only what the end-to-end tests need: open a page, evaluate JavaScript, click and type with
real input events, take screenshots, and notice JavaScript dialogs and uncaught errors.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots of failed tests
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--no-proxy-server", "--no-default-browser-check",
    "--remote-debugging-port=0",
)
LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
KEYS = {  # key -> (code, windowsVirtualKeyCode, text)
    "Enter": ("Enter", 13, "\r"),
    "Escape": ("Escape", 27, ""),
    "Tab": ("Tab", 9, ""),
}


class CdpError(Exception):
    pass


class Browser:
    """One Chromium process and the DevTools WebSocket to it."""

    def __init__(self, process: asyncio.subprocess.Process, ws: aiohttp.ClientWebSocketResponse,
                 stderr: deque[str]) -> None:
        self.process = process
        self.ws = ws
        self.stderr = stderr
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._reader = asyncio.create_task(self._read())

    async def send(self, method: str, params: dict[str, Any] | None = None, *,
                   session_id: str | None = None, timeout: float = 15.0) -> dict[str, Any]:
        message: dict[str, Any] = {"id": next(self._ids), "method": method,
                                   "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message["id"]] = future
        await self.ws.send_str(json.dumps(message))
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._pending.pop(message["id"], None)

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.get(data["id"])
                if future is None or future.done():
                    continue
                if "error" in data:
                    future.set_exception(CdpError(f"{data['error']}"))
                else:
                    future.set_result(data.get("result", {}))
            elif data.get("sessionId") in self._pages:
                self._pages[data["sessionId"]].on_event(data["method"], data.get("params", {}))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CdpError("the DevTools connection closed"))

    async def new_page(self, width: int = 1100, height: int = 760) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target["targetId"], "flatten": True})
        page = Page(self, target["targetId"], attached["sessionId"])
        self._pages[page.session_id] = page
        for domain in ("Page", "Runtime"):
            await page.send(f"{domain}.enable")
        await page.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send("Browser.close", timeout=5)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.ws.close()


class Page:
    """One tab, attached with a flat session."""

    def __init__(self, browser: Browser, target_id: str, session_id: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id
        self.dialogs: list[str] = []  # alert/confirm/prompt messages: none should ever open
        self.errors: list[str] = []  # uncaught exceptions and console.error calls
        self._loaded = asyncio.Event()

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, session_id=self.session_id)

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Page.javascriptDialogOpening":
            self.dialogs.append(str(params.get("message", "")))
            asyncio.get_running_loop().create_task(
                self.send("Page.handleJavaScriptDialog", {"accept": False}))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(str(details.get("exception", {}).get("description")
                                   or details.get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                        for a in params.get("args", [])))

    async def close(self) -> None:
        """Close the tab (and with it the page's connections)."""
        await self.browser.send("Target.closeTarget", {"targetId": self.target_id})

    async def goto(self, url: str) -> None:
        self._loaded.clear()
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CdpError(f"navigation to {url} failed: {result['errorText']}")
        async with asyncio.timeout(15):
            await self._loaded.wait()

    async def reload(self) -> None:
        self._loaded.clear()
        await self.send("Page.reload")
        async with asyncio.timeout(15):
            await self._loaded.wait()

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CdpError(details.get("exception", {}).get("description") or details["text"])
        return result["result"].get("value")

    async def wait_for(self, expression: str, *, timeout: float = 8.0) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not true within {timeout}s: {expression}")
            await asyncio.sleep(0.05)

    async def click(self, selector: str) -> None:
        """A real mouse click at the centre of the element."""
        point = await self.evaluate(f"""(() => {{
            const node = document.querySelector({json.dumps(selector)});
            if (!node) return null;
            node.scrollIntoView({{block: "center"}});
            const r = node.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2];
        }})()""")
        if point is None:
            raise CdpError(f"nothing matches {selector}")
        x, y = point
        await self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", {
                "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    async def type(self, text: str) -> None:
        """Text into the focused element, as an input method would insert it."""
        await self.send("Input.insertText", {"text": text})

    async def press(self, key: str, *, shift: bool = False) -> None:
        code, vk, text = KEYS[key]
        down: dict[str, Any] = {"type": "keyDown", "key": key, "code": code,
                                "windowsVirtualKeyCode": vk, "modifiers": 8 if shift else 0}
        if text:
            down["text"] = text
        await self.send("Input.dispatchKeyEvent", down)
        await self.send("Input.dispatchKeyEvent", {
            "type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk,
            "modifiers": 8 if shift else 0})

    async def screenshot(self, path: Path, selector: str | None = None,
                         margin: int = 16) -> None:
        params: dict[str, Any] = {"format": "png"}
        if selector:
            box = await self.evaluate(f"""(() => {{
                const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
                return {{x: r.x, y: r.y, width: r.width, height: r.height}};
            }})()""")
            params["clip"] = {"x": max(0, box["x"] - margin), "y": max(0, box["y"] - margin),
                              "width": box["width"] + 2 * margin,
                              "height": box["height"] + 2 * margin, "scale": 1}
        shot = await self.send("Page.captureScreenshot", params)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


async def _devtools_url(process: asyncio.subprocess.Process, profile: Path,
                        lines: deque[str]) -> str:
    """The browser's DevTools WebSocket, from its stderr line or the DevToolsActivePort file."""
    assert process.stderr is not None
    async with asyncio.timeout(20):
        while True:
            raw = await process.stderr.readline()
            if not raw:
                break
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            found = LISTENING.search(line)
            if found:
                return found.group(1)
        port_file = profile / "DevToolsActivePort"
        while not port_file.exists():
            if process.returncode is not None:
                raise CdpError("chromium exited: " + "\n".join(lines))
            await asyncio.sleep(0.05)
        port, path = port_file.read_text().split("\n")[:2]
        return f"ws://127.0.0.1:{port.strip()}{path.strip()}"


async def _drain(stream: asyncio.StreamReader, lines: deque[str]) -> None:
    while raw := await stream.readline():
        lines.append(raw.decode(errors="replace").rstrip())


@asynccontextmanager
async def launch(profile: Path, executable: Path = CHROMIUM) -> AsyncIterator[Browser]:
    """Start a headless Chromium with a throwaway profile; stop it (this process only) after."""
    profile.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        str(executable), *FLAGS, f"--user-data-dir={profile}", "about:blank",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    lines: deque[str] = deque(maxlen=200)
    drain: asyncio.Task[None] | None = None
    try:
        url = await _devtools_url(process, profile, lines)
        assert process.stderr is not None
        drain = asyncio.create_task(_drain(process.stderr, lines))
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(url, max_msg_size=0)
            browser = Browser(process, ws, lines)
            try:
                yield browser
            finally:
                await browser.close()
    finally:
        if process.returncode is None:
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain


def js(value: Any) -> str:
    """A Python value as a JavaScript literal, for the expressions the tests evaluate."""
    return json.dumps(value)
