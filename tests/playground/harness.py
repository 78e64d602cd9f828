"""Drive the real Microsoft 365 Agents Playground (the local Teams) from Python tests.

``Playground`` starts npm ``@microsoft/m365agentsplayground`` (0.2.28, from the repo's
``node_modules``) as a subprocess pointed at a bot endpoint, reads its config, listens to its
message stream and its log stream, and offers helpers to act as the Teams user. See
``fixtures.py`` for the pytest fixture and ``test_harness.py`` for a worked example.

API in one breath
-----------------
``pg = await Playground(bot_url).start()`` (or ``async with``; or the ``playground_factory``
fixture) -> ``pg.port``, ``pg.base_url``, ``pg.service_url``, ``pg.config``, ``pg.user_id``,
``pg.current_user``, ``pg.users``, ``pg.personal_chat_id``, ``pg.group_chat_id``, ``pg.bot_id``,
``pg.bot_name``, ``pg.tenant_id``. Acting: ``install(cid=None)``, ``send_text(cid, text,
from_id=, mention_bot=)``, ``execute_card_action(message_id, verb, data)`` (returns the bot's
invoke response), ``send_custom_activity(activity)`` (fire and forget; ``card_action_activity(
message_id, verb, data)`` builds an invoke), ``activity_template(cid, kind)``. Observing:
``events`` (``StreamEvent``: action, conversation_id, message_id, text, cards, card, all_text),
``mark()``, ``wait_for(pred, timeout, since=, action=, conversation_id=)``,
``wait_for_message(contains, since=, with_card=)``, ``wait_for_update(message_id, contains=)``;
``log_items`` (``LogItem``: every HTTP exchange with the bot and every warning),
``log_mark()``, ``wait_for_log(pred)``, ``bot_response(activity_id)``, ``problems()``;
``request(method, path)`` for any other endpoint; ``diagnostics()``, ``log_text()``.
``await pg.stop()`` kills the process group.

Facts verified against 0.2.28 (by running it and reading ``dist/index.js``), November 2026
==========================================================================================

Process
-------
- Command: ``node node_modules/@microsoft/m365agentsplayground/cli.js -e <bot>/api/messages
  -c msteams -p <port> --disable-telemetry`` with ``TEAMSAPPTESTER_BROWSER=none`` (otherwise it
  runs ``xdg-open`` and dies). ``--disable-telemetry`` stops Application Insights events.
- ``-p 0`` lets the OS pick a free port. If a requested port is busy it silently picks another
  one. With stdout not a TTY it prints exactly one line, ``Listening on <port>``, and nothing else;
  all console output (including crash traces) goes only to its log file. The harness sends
  stdout to a file and reads the real port from it. Ready in about 0.6 s.
- The working directory only decides where ``devTools/m365agentsplayground.log`` (wiped at
  start) and ``devTools/events_recording_*.log`` go, and where ``.m365agentsplayground.yml`` /
  ``.teamsapptesttool.yml`` (mock tenant: users, chat ids) are looked for. The web client is served
  from the package directory. The harness runs it in a fresh temporary directory, so a stray YAML
  file in the repo cannot change the ids; pass ``config_yaml=`` to supply one on purpose.
- Env vars it reads (the harness removes them from the child's environment):
  ``M365_AGENTS_PLAYGROUND_{CONVERSATION_ID,SERVICE_URL,DELIVERY_MODE,ENABLE_EVENTS_RECORDING,
  CONFIG_PATH,LOGFILE,RECORDING_FILE,TARGET_SDK}``, ``TEAMSAPPTESTER_{PORT,LOGFILE}``,
  ``TEAMS_APP_TEST_TOOL_CONFIG_PATH``. It honours ``HTTP(S)_PROXY``/``NO_PROXY`` for calls to
  the bot, so the harness adds ``127.0.0.1,localhost`` to ``NO_PROXY``.
- It listens on all interfaces. SIGTERM ends it at once (no graceful shutdown needed). The harness
  also loads a small ``--require`` script that, when its stdin pipe closes (pytest killed, even
  with SIGKILL), deletes the work directory and kills node, so nothing is left behind.
- ``config_yaml=``: the playground's ``.m365agentsplayground.yml`` (version ``"0.1.1"``:
  ``tenantId``, ``bot {id, name}``, ``currentUser``, exactly 5 ``users``, ``personalChat {id}``,
  ``groupChat {id, name}``, ``team {id, name, aadGroupId, channels (at most 1)}``). Checked: the
  personal and group chat ids given there are used (e.g. ``a:personal-1``).

Ids and what the bot receives
-----------------------------
- ``serviceUrl`` = ``http://localhost:<port>/_connector`` (``localhost``, not 127.0.0.1).
- Bot: id ``00000000-0000-0000-0000-00000000000011``, name ``Test Bot``. Tenant id
  ``00000000-0000-0000-0000-0000000000001`` (not a valid GUID: 13 digits in the last group).
- Current user: id ``user-id-0``, Alex Wilber, ``alexw@example.com``, aadObjectId
  ``00000000-0000-0000-0000-0000000000020``. Other users ``user-id-1`` .. ``user-id-5``.
- Personal chat id: a random UUID per run (no ``a:``/``19:`` prefix), conversationType
  ``personal``. One group chat (random UUID, conversationType ``groupChat``, ``isGroup``), one team
  ``team-id`` (General channel id == ``team-id``, plus ``channel-announcements-id``).
- Activities to the bot: ``channelId`` ``msteams``; ``from`` = ``{id: "user-id-0", aadObjectId}``
  (plus ``name`` on messages/invokes); ``recipient`` = ``{id: <bot id>, name: "Test Bot"}``;
  ``conversation`` = ``{id, conversationType, tenantId}``; ``channelData.tenant.id``. No
  ``Authorization`` header (unless started with client id/secret); header
  ``x-ms-agents-playground: true``. Activity ``id`` is a fresh UUID; it is NOT the playground's
  message id for the same user message.
- Message ids the playground gives (connector POST answer, stream ``messageId``, user messages):
  epoch milliseconds as a string, e.g. ``"1795288400057"``; on a clash ``"<ms>-<8 hex>"``.

Scriptable endpoints (body shapes checked)
------------------------------------------
- ``GET /_debug/ping`` -> ``pong``. Used for readiness.
- ``GET /_internal/v1/config`` -> ``{config: {tenantId, bot, currentUser, users, personalChat:
  {id, name}, groupChats: [{id, name, members}], teams: [...]}, internalConfig: {...}}``. It first
  waits (wait-on, up to 15 s) for the bot endpoint to accept connections. ``GET
  /_internal/v1/testConfig`` returns the same ``config`` at once; the harness reads that one.
- ``POST /_debug/conversation/{cid}/installation`` (body ``{}``) -> 200 with an empty body
  *before* anything is sent; then it sends ``installationUpdate`` (action ``add``, msteams only)
  and ``conversationUpdate`` (membersAdded: user and bot in a personal chat, bot only in a group)
  **concurrently**: the bot may see them in either order. Unknown cid -> 404.
- ``POST /_conversation/v1/conversations/{cid}/messages`` with ``{"from": {"id": "user-id-0"},
  "text": "...", "textFormat": "plain"|"markdown"|"xml"}`` (optional ``mentions: [{mentioned:
  {id}, text}]``) -> 200 ``{messageId, timestamp}`` at once; the bot is called afterwards, and
  its errors are only logged. In a group chat the bot is only called if it is mentioned; it then
  gets the text as sent (``"<at>Test Bot</at> help"``) plus a ``mention`` entity, like Teams.
  ``from.id`` must be a member of the chat, but the bot ALWAYS sees the current user as ``from``
  (acting as another user needs ``config_yaml`` or a custom activity). The user's own message
  is NOT echoed on the stream.
- ``POST /_conversation/v1/invoke`` (what the web client does when a card button is pressed) with
  ``{"name": "adaptiveCard/action", "from": {"id"}, "conversation": {"id"}, "replyToId":
  <card message id>, "value": {"action": {...}, "trigger": "manual"}}`` -> waits for the bot and
  answers 200 ``{type, value}`` copied from the bot's invoke response body (``statusCode`` is
  dropped; an empty body gives ``{}``). If the bot answers HTTP 4xx/5xx: 502 ``{"code":
  "UserBotError", "innerHttpError": {"statusCode", "body"}}``. Unknown replyToId: 400
  ``ActivityNotFoundInConversation``. When the card message has exactly one attachment it also
  replaces that card's content with ``value`` in its store, WITHOUT a stream event. No timeout.
  The invoke it sends carries ``channelData.source.name = "message"`` and a clientInfo entity.
  Unlike messages, ``from`` here is the user given (checked: ``user-id-2`` in the group chat
  reaches the bot as Adele Vance). ``conversation.id`` must be the card's chat (else 400).
- ``POST /_internal/v1/customActivities`` with any JSON activity -> 200 with an empty body
  immediately, before the bot is called; the body is POSTed to the bot exactly as given (nothing
  filled in: a bare ``{"type": "invoke"}`` reaches the bot as that), and the bot's answer,
  including an invoke response, is discarded (errors only logged). Build activities on
  ``GET /_internal/v1/customActivities/template?conversationId=<cid>[&type=install|uninstall|
  botAdded|userAdded|botRemoved|userRemoved|...]`` (id, timestamp, channelId, serviceUrl,
  recipient, conversation, from, and for ``type`` the full event); ``send_custom_activity`` does.
- WebSocket ``/_ws_conversation/v1/conversations/stream`` -> JSON text frames
  ``{"action": "createMessage"|"updateMessage", "actionConversationId": cid, "message":
  {"messageId", "timestamp", "from": {"id"}, "text"?, "textFormat"?, "attachments": [{contentType,
  content}], "attachmentLayout", "mentions", "directLineConversationId", ...}}`` and
  ``{"action": "typing", "actionConversationId": cid}``. Only bot-side changes appear. Frames
  produced while no client is connected are buffered and flushed to the next client that
  connects; every connected client gets every frame. Messages to chats the current user is not in
  (e.g. a 1:1 created for user-id-1) are not streamed.

Its Bot Connector (``{serviceUrl}/v3/...``)
----------------------------------------
- ``POST /v3/conversations/{cid}/activities`` (and ``.../activities/{replyToId}``): 201 ``{"id":
  <message id>}`` when the activity becomes ONE message. It splits list-layout activities: text
  + N attachments become 1 + N messages (text first), and then it answers **202 with an empty
  body, no id**. Send cards without ``text`` (or with ``attachmentLayout: "carousel"``) to get an
  id you can update later. ``typing`` -> 202 and a ``typing`` stream frame. A message with neither
  text nor attachments -> 400 ``BadSyntax``. Unknown conversation -> 404 ``ConversationNotFound``.
  It accepts any card JSON (no Adaptive Card validation).
- ``PUT /v3/conversations/{cid}/activities/{id}`` -> 200 ``{"id"}`` and an ``updateMessage``
  stream frame with the same ``messageId`` (content replaced wholesale). Text + attachment in one
  update -> 400 "Activity resulted into multiple skype activities"; unknown id -> 404
  ``ActivityNotFoundInConversation``. DELETE -> 501 ``DeleteActivityAPINotImplemented``.
- ``POST /v3/conversations`` with ``{"isGroup": false, "members": [{"id": "user-id-0"}], ...}``
  -> 201 ``{"id": <personal chat id>}``; for another user it makes a new chat
  ``<uuid>@test.user`` whose messages are not streamed. ``isGroup: true`` without
  ``channelData.channel.id`` -> 500.
- ``GET /v3/conversations/{cid}/members`` and ``.../members/{userId}`` (``userPrincipalName``,
  ``email``, ``aadObjectId``, ``tenantId``, ``userRole``), ``pagedmembers``, team endpoints.
- Its axios client to the bot has no timeout.

Log stream (``/_ws/log/stream``)
-------------------------------
- Frames ``{"logAction": "appendLog", "log": {...}}``; buffered like the message stream. ``log``
  of ``type: "bot"`` = one HTTP exchange: ``from``/``to`` are ``"Microsoft 365 Agents
  Playground"`` / ``"User Application"`` (the bot), ``activityName``, ``messageId`` (playground ->
  bot: the activity id sent; bot -> playground: the message id answered), ``conversationId``,
  ``request.body``, ``response.statusCode``/``body`` (bot errors included). ``type: "text"`` =
  notes, ``level: "warning"`` for e.g. "Cannot connect to your app, please make sure your app is
  running or restart your application." (bot down; the install/send call itself still said 200).
  This is where the bot's answer to a customActivities invoke can be read (``bot_response``).

botbuilder 4.17.1 against it (throwaway CloudAdapter bot, APP_ID empty)
--------------------------------------------------------------------
- Works: inbound without auth, outbound connector calls without a token, ``send_activity``
  (ResourceResponse id = the playground message id), ``update_activity`` (-> ``updateMessage``),
  ``TeamsInfo.get_member`` (``alexw@example.com``, aadObjectId), ``continue_conversation(ref,
  cb, "")`` with the reference stored at install.
- ``send_activity`` with text AND a card: split in two messages, ResourceResponse id ``""``.
- BUG in botbuilder: ``ActivityHandler.on_adaptive_card_invoke`` + ``CloudAdapter.process`` ->
  HTTP 500 (``AttributeError: 'dict' object has no attribute 'is_xml_model'``):
  ``_create_invoke_response`` already serialises the body and ``CloudAdapter.process`` serialises
  it again. Workaround: override ``on_invoke_activity`` and for ``adaptiveCard/action`` return
  ``InvokeResponse(status=200, body=AdaptiveCardInvokeResponse(...))`` (a Model, not a dict).
  The playground then returns ``{type, value}``. Without it ``execute_card_action`` raises
  (502 wrapping the bot's 500); if the handler raises or is missing the bot answers 501.
- ``_get_adaptive_card_invoke_value`` leaves ``invoke_value.action`` a plain dict (``["verb"]``,
  ``["data"]``) and prints "trigger is not a known attribute" on each invoke.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

__all__ = [
    "ADAPTIVE_CARD",
    "DEFAULT_CLI",
    "LogItem",
    "Playground",
    "PlaygroundError",
    "PlaygroundHTTPError",
    "PlaygroundUnavailable",
    "StreamEvent",
    "StreamTimeout",
    "availability_problem",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "node_modules" / "@microsoft" / "m365agentsplayground"
DEFAULT_CLI = PACKAGE_DIR / "cli.js"
EXPECTED_VERSION = "0.2.28"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"

# Environment variables the playground reads; removed from the child's environment so the
# caller's shell cannot change its behaviour behind the harness's back.
_SCRUBBED_ENV = (
    "M365_AGENTS_PLAYGROUND_CONVERSATION_ID",
    "M365_AGENTS_PLAYGROUND_SERVICE_URL",
    "M365_AGENTS_PLAYGROUND_DELIVERY_MODE",
    "M365_AGENTS_PLAYGROUND_ENABLE_EVENTS_RECORDING",
    "M365_AGENTS_PLAYGROUND_CONFIG_PATH",
    "M365_AGENTS_PLAYGROUND_LOGFILE",
    "M365_AGENTS_PLAYGROUND_RECORDING_FILE",
    "M365_AGENTS_PLAYGROUND_TARGET_SDK",
    "TEAMSAPPTESTER_PORT",
    "TEAMSAPPTESTER_LOGFILE",
    "TEAMS_APP_TEST_TOOL_CONFIG_PATH",
)

# Loaded with `node --require`: when our stdin pipe closes, i.e. the Python process that started
# us is gone (even after SIGKILL), remove the work directory (unless it is to be kept) and die.
_WATCHDOG_JS = """\
const fs = require("fs");
function parentGone() {
  const dir = process.env.PLAYGROUND_HARNESS_WORKDIR;
  if (dir) {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch (e) {}
  }
  process.kill(process.pid, "SIGKILL");
}
process.stdin.on("end", parentGone);
process.stdin.on("error", parentGone);
process.stdin.resume();
"""

_LISTENING_RE = re.compile(rb"Listening on (\d+)")

_live_groups: set[int] = set()


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@atexit.register
def _kill_leftovers() -> None:  # pragma: no cover - only runs if stop() was skipped
    for pgid in list(_live_groups):
        _kill_group(pgid, signal.SIGKILL)


class PlaygroundError(RuntimeError):
    """The playground failed to start, died, or answered something unexpected."""


class PlaygroundUnavailable(PlaygroundError):
    """Node.js or the npm package is missing: tests should skip, not fail."""


class PlaygroundHTTPError(PlaygroundError):
    """A playground endpoint answered with an error status."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:2000]}")
        self.method = method
        self.url = url
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class StreamTimeout(AssertionError):
    """``wait_for`` saw no matching stream event in time (an assertion failure in tests)."""


def availability_problem(cli: Path | str = DEFAULT_CLI, node: str = "node") -> str | None:
    """Why the playground cannot run here (for ``pytest.skip``), or None if it can."""
    if shutil.which(node) is None:
        return f"Node.js ({node!r}) is not on PATH"
    if not Path(cli).is_file():
        return f"npm package @microsoft/m365agentsplayground is not installed ({cli} missing)"
    return None


def installed_version(cli: Path | str = DEFAULT_CLI) -> str | None:
    try:
        data = json.loads((Path(cli).parent / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = data.get("version")
    return version if isinstance(version, str) else None


def _walk_texts(node: Any) -> Iterator[str]:
    """Every ``text``/``title``/``value`` string in a card (TextBlock, FactSet, actions…)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("text", "title", "value") and isinstance(value, str):
                yield value
            else:
                yield from _walk_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_texts(item)


@dataclass(frozen=True)
class StreamEvent:
    """One frame from ``/_ws_conversation/v1/conversations/stream``."""

    action: str  # "createMessage" | "updateMessage" | "typing"
    conversation_id: str  # actionConversationId
    raw: dict[str, Any] = field(repr=False)
    index: int = 0  # position in Playground.events

    @property
    def message(self) -> dict[str, Any]:
        message = self.raw.get("message")
        return message if isinstance(message, dict) else {}

    @property
    def message_id(self) -> str | None:
        return self.message.get("messageId")

    @property
    def from_id(self) -> str | None:
        return (self.message.get("from") or {}).get("id")

    @property
    def text(self) -> str:
        return self.message.get("text") or ""

    @property
    def attachments(self) -> list[dict[str, Any]]:
        return list(self.message.get("attachments") or [])

    @property
    def cards(self) -> list[dict[str, Any]]:
        """Contents of the Adaptive Card attachments."""
        return [
            a.get("content") or {}
            for a in self.attachments
            if a.get("contentType") == ADAPTIVE_CARD
        ]

    @property
    def card(self) -> dict[str, Any] | None:
        cards = self.cards
        return cards[0] if cards else None

    @property
    def all_text(self) -> str:
        """Message text plus every text/title/value string in its cards, newline-joined."""
        parts = [self.text] if self.text else []
        parts.extend(_walk_texts(self.cards))
        return "\n".join(parts)

    @property
    def is_create(self) -> bool:
        return self.action == "createMessage"

    @property
    def is_update(self) -> bool:
        return self.action == "updateMessage"

    def summary(self) -> str:
        if self.action == "typing":
            return f"#{self.index} typing in {self.conversation_id}"
        text = self.all_text.replace("\n", " | ")
        if len(text) > 160:
            text = text[:157] + "..."
        return (
            f"#{self.index} {self.action} {self.message_id} in {self.conversation_id}"
            f" ({len(self.cards)} card(s)): {text!r}"
        )


PLAYGROUND_LABEL = "Microsoft 365 Agents Playground"
BOT_LABEL = "User Application"


@dataclass(frozen=True)
class LogItem:
    """One entry of the playground's log stream (``/_ws/log/stream``).

    ``kind == "bot"`` items record one HTTP exchange: playground -> bot (``to_bot``: an activity
    POSTed to the bot and the bot's answer, invoke responses included) or bot -> playground
    (``from_bot``: a Bot Connector call). ``kind == "text"`` items are notes and warnings, e.g.
    "bot not connected".
    """

    raw: dict[str, Any] = field(repr=False)
    index: int = 0  # position in Playground.log_items

    @property
    def kind(self) -> str:
        return str(self.raw.get("type"))

    @property
    def to_bot(self) -> bool:
        return self.raw.get("from") == PLAYGROUND_LABEL and self.raw.get("to") == BOT_LABEL

    @property
    def from_bot(self) -> bool:
        return self.raw.get("from") == BOT_LABEL and self.raw.get("to") == PLAYGROUND_LABEL

    @property
    def activity_name(self) -> str | None:
        """Activity type sent (``message``, ``invoke``…) or the connector operation."""
        return self.raw.get("activityName")

    @property
    def activity_id(self) -> str | None:
        """``to_bot``: the id of the activity sent; ``from_bot``: the message id answered."""
        return self.raw.get("messageId")

    @property
    def conversation_id(self) -> str | None:
        return self.raw.get("conversationId")

    @property
    def request(self) -> Any:
        return (self.raw.get("request") or {}).get("body")

    @property
    def status(self) -> int | None:
        status = (self.raw.get("response") or {}).get("statusCode")
        return status if isinstance(status, int) else None

    @property
    def response(self) -> Any:
        """The answer body (JSON-decoded when it was JSON, else the text)."""
        return (self.raw.get("response") or {}).get("body")

    @property
    def level(self) -> str | None:
        return self.raw.get("level")

    @property
    def text(self) -> str:
        return str(self.raw.get("displayText") or "")

    @property
    def is_problem(self) -> bool:
        """An HTTP error either way, or a warning/error note from the playground."""
        if self.kind == "bot":
            return self.status is not None and self.status >= 400
        return self.level in ("warning", "error")

    def summary(self) -> str:
        if self.kind != "bot":
            return f"#{self.index} note[{self.level or 'default'}]: {self.text[:200]!r}"
        arrow = "-> bot" if self.to_bot else "<- bot" if self.from_bot else "?"
        body = json.dumps(self.response)[:160] if self.response not in (None, "") else ""
        return (
            f"#{self.index} {arrow} {self.activity_name} id={self.activity_id}"
            f" status={self.status} {body}"
        ).rstrip()


Predicate = Callable[[StreamEvent], bool]


class Playground:
    """One running playground process plus a client for its scripting endpoints.

    Use ``async with Playground(bot_url) as pg:`` or ``await pg.start()`` / ``await pg.stop()``.
    """

    def __init__(
        self,
        bot_endpoint: str,
        *,
        port: int = 0,
        channel: str = "msteams",
        cli: Path | str = DEFAULT_CLI,
        node: str = "node",
        config_yaml: str | None = None,
        startup_timeout: float = 20.0,
        request_timeout: float = 30.0,
        extra_args: list[str] | None = None,
        keep_workdir: bool | None = None,
    ) -> None:
        self.bot_endpoint = bot_endpoint
        self.requested_port = port
        self.channel = channel
        self.cli = Path(cli)
        self.node = node
        self.config_yaml = config_yaml
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self.extra_args = list(extra_args or [])
        if keep_workdir is None:
            keep_workdir = os.environ.get("PLAYGROUND_KEEP_WORKDIR") == "1"
        self.keep_workdir = keep_workdir

        self.port: int | None = None
        self.version = installed_version(self.cli)
        self.workdir: Path | None = None
        self.config: dict[str, Any] = {}
        self.events: list[StreamEvent] = []
        self.log_items: list[LogItem] = []

        self._proc: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._sockets: list[aiohttp.ClientWebSocketResponse] = []
        self._readers: list[asyncio.Task[None]] = []
        self._changed: asyncio.Condition | None = None
        self._stream_error: str | None = None
        self._stopped = False

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Playground:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> Playground:
        problem = availability_problem(self.cli, self.node)
        if problem:
            raise PlaygroundUnavailable(problem)
        if self._proc is not None:
            raise PlaygroundError("already started")
        if self.version != EXPECTED_VERSION:
            warnings.warn(
                f"Agents Playground {self.version} installed; the harness was verified against "
                f"{EXPECTED_VERSION}",
                stacklevel=2,
            )
        self.workdir = Path(tempfile.mkdtemp(prefix="m365playground-"))
        try:
            self._spawn()
            self.port = await self._wait_for_port()
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.request_timeout)
            )
            await self._wait_for_ping()
            self.config = (await self.request("GET", "/_internal/v1/testConfig"))["config"]
            await self._open_streams()
        except BaseException:
            await self.stop()
            raise
        return self

    def _spawn(self) -> None:
        assert self.workdir is not None
        watchdog = self.workdir / "exit-with-parent.js"
        watchdog.write_text(_WATCHDOG_JS)
        if self.config_yaml is not None:
            (self.workdir / ".m365agentsplayground.yml").write_text(self.config_yaml)
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env["TEAMSAPPTESTER_BROWSER"] = "none"
        env.pop("PLAYGROUND_HARNESS_WORKDIR", None)
        if not self.keep_workdir:
            env["PLAYGROUND_HARNESS_WORKDIR"] = str(self.workdir)
        no_proxy = [p for p in env.get("NO_PROXY", env.get("no_proxy", "")).split(",") if p]
        env["NO_PROXY"] = env["no_proxy"] = ",".join([*no_proxy, "127.0.0.1", "localhost"])
        args = [
            self.node,
            "--require",
            str(watchdog),
            str(self.cli.resolve()),
            "-e",
            self.bot_endpoint,
            "-c",
            self.channel,
            "-p",
            str(self.requested_port),
            "--disable-telemetry",
            *self.extra_args,
        ]
        with (
            open(self.workdir / "stdout.txt", "wb") as out,
            open(self.workdir / "stderr.txt", "wb") as err,
        ):
            self._proc = subprocess.Popen(
                args,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                start_new_session=True,  # own process group: stop() kills the whole group
            )
        _live_groups.add(self._proc.pid)

    async def _wait_for_port(self) -> int:
        assert self.workdir is not None and self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        stdout = self.workdir / "stdout.txt"
        while True:
            match = _LISTENING_RE.search(stdout.read_bytes())
            if match:
                return int(match.group(1))
            if self._proc.poll() is not None:
                raise PlaygroundError(
                    f"playground exited with code {self._proc.returncode} before listening\n"
                    + self.diagnostics()
                )
            if time.monotonic() > deadline:
                raise PlaygroundError(
                    f"playground did not listen within {self.startup_timeout} s\n"
                    + self.diagnostics()
                )
            await asyncio.sleep(0.05)

    async def _wait_for_ping(self) -> None:
        assert self._session is not None and self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error: object = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                async with self._session.get(
                    self.base_url + "/_debug/ping", timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"HTTP {resp.status}"
            except (TimeoutError, aiohttp.ClientError) as exc:
                last_error = exc
            await asyncio.sleep(0.05)
        raise PlaygroundError(f"playground not ready ({last_error!r})\n" + self.diagnostics())

    async def _open_streams(self) -> None:
        assert self._session is not None
        self._changed = asyncio.Condition()
        for url, handler, name in (
            (self.ws_url, self._on_stream_frame, "playground-stream"),
            (self.log_ws_url, self._on_log_frame, "playground-log-stream"),
        ):
            ws = await self._session.ws_connect(
                url, timeout=aiohttp.ClientWSTimeout(ws_close=2), heartbeat=None
            )
            self._sockets.append(ws)
            self._readers.append(asyncio.create_task(self._read_ws(ws, handler), name=name))

    def _on_stream_frame(self, data: dict[str, Any]) -> None:
        self.events.append(
            StreamEvent(
                action=str(data.get("action")),
                conversation_id=str(data.get("actionConversationId")),
                raw=data,
                index=len(self.events),
            )
        )

    def _on_log_frame(self, data: dict[str, Any]) -> None:
        log = data.get("log")
        if isinstance(log, dict):
            self.log_items.append(LogItem(raw=log, index=len(self.log_items)))

    async def _read_ws(
        self, ws: aiohttp.ClientWebSocketResponse, handler: Callable[[dict[str, Any]], None]
    ) -> None:
        assert self._changed is not None
        try:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    async with self._changed:
                        handler(data)
                        self._changed.notify_all()
        except Exception as exc:  # reported to waiters through _stream_error
            self._stream_error = f"stream reader failed: {exc!r}"
        finally:
            if self._stream_error is None and not self._stopped:
                self._stream_error = "stream closed by the playground"
            async with self._changed:
                self._changed.notify_all()

    async def stop(self) -> None:
        """Close the stream and kill the playground's process group. Safe to call twice."""
        self._stopped = True
        for reader in self._readers:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        self._readers.clear()
        for ws in self._sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        self._sockets.clear()
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
            self._session = None
        proc, self._proc = self._proc, None
        if proc is not None:
            _kill_group(proc.pid, signal.SIGTERM)
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            deadline = time.monotonic() + 5
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if proc.poll() is None:
                _kill_group(proc.pid, signal.SIGKILL)
                await asyncio.to_thread(proc.wait)
            # Reaped: from here on the pid may belong to someone else, so never signal it again.
            _live_groups.discard(proc.pid)
        if self.workdir is not None and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ addresses and ids

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise PlaygroundError("not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        """The serviceUrl the playground puts in activities (its Bot Connector)."""
        return f"http://localhost:{self.port}/_connector"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/_ws_conversation/v1/conversations/stream"

    @property
    def log_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/_ws/log/stream"

    @property
    def current_user(self) -> dict[str, Any]:
        return dict(self.config["currentUser"])

    @property
    def user_id(self) -> str:
        return str(self.config["currentUser"]["id"])

    @property
    def users(self) -> list[dict[str, Any]]:
        return [dict(u) for u in self.config["users"]]

    @property
    def personal_chat_id(self) -> str:
        return str(self.config["personalChat"]["id"])

    @property
    def group_chat_id(self) -> str:
        return str(self.config["groupChats"][0]["id"])

    @property
    def bot_id(self) -> str:
        return str(self.config["bot"]["id"])

    @property
    def bot_name(self) -> str:
        return str(self.config["bot"]["name"])

    @property
    def tenant_id(self) -> str:
        return str(self.config["tenantId"])

    # ------------------------------------------------------------------ HTTP plumbing

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200, 201, 202),
    ) -> Any:
        """Call any playground endpoint (``path`` starts with ``/``, e.g.
        ``/_connector/v3/conversations/{cid}/members``); returns the decoded JSON (text if not
        JSON, None if empty). Raises ``PlaygroundHTTPError`` for a status not in ``expect``."""
        if self._session is None:
            raise PlaygroundError("not started")
        url = self.base_url + path
        async with self._session.request(method, url, json=json_body, params=params) as resp:
            body = await resp.text()
            if resp.status not in expect:
                raise PlaygroundHTTPError(method, url, resp.status, body)
            if not body:
                return None
            try:
                return json.loads(body)
            except ValueError:
                return body

    # ------------------------------------------------------------------ acting as the user

    async def install(self, conversation_id: str | None = None) -> None:
        """Simulate installing the app: installationUpdate + conversationUpdate, in either order.

        Returns as soon as the playground accepted the request, before the bot saw anything.
        """
        cid = conversation_id or self.personal_chat_id
        await self.request("POST", f"/_debug/conversation/{cid}/installation", json_body={})

    async def send_text(
        self,
        conversation_id: str | None,
        text: str,
        *,
        from_id: str | None = None,
        text_format: str = "plain",
        mention_bot: bool = False,
    ) -> str:
        """Send a user message; returns the playground's message id (the bot sees another id).

        ``conversation_id=None`` means the personal chat. In a group chat the bot only gets the
        message if ``mention_bot=True`` (which prefixes ``<at>Test Bot</at>`` like Teams does).
        ``from_id`` must be a chat member, but the bot always sees the current user as sender.
        """
        cid = conversation_id or self.personal_chat_id
        body: dict[str, Any] = {
            "from": {"id": from_id or self.user_id},
            "text": text,
            "textFormat": text_format,
        }
        if mention_bot:
            tag = f"<at>{self.bot_name}</at>"
            body["text"] = f"{tag} {text}"
            body["mentions"] = [{"mentioned": {"id": self.bot_id}, "text": tag}]
        answer = await self.request(
            "POST", f"/_conversation/v1/conversations/{cid}/messages", json_body=body
        )
        return str(answer["messageId"])

    async def execute_card_action(
        self,
        reply_to_id: str,
        verb: str,
        data: dict[str, Any] | None = None,
        *,
        conversation_id: str | None = None,
        from_id: str | None = None,
        action_id: str | None = None,
        trigger: str = "manual",
    ) -> dict[str, Any]:
        """Press an ``Action.Execute`` button the way the web client does; returns the invoke
        response the bot gave, as ``{"type", "value"}`` (``statusCode`` is dropped by the
        playground). Raises ``PlaygroundHTTPError`` (status 502, ``.json()["innerHttpError"]``)
        if the bot answered HTTP 4xx/5xx.
        """
        body = {
            "name": "adaptiveCard/action",
            "from": {"id": from_id or self.user_id},
            "conversation": {"id": conversation_id or self.personal_chat_id},
            "replyToId": reply_to_id,
            "value": {"action": self._execute_action(verb, data, action_id), "trigger": trigger},
        }
        answer = await self.request(
            "POST", "/_conversation/v1/invoke", json_body=body, expect=(200,)
        )
        return answer if isinstance(answer, dict) else {}

    @staticmethod
    def _execute_action(
        verb: str, data: dict[str, Any] | None, action_id: str | None
    ) -> dict[str, Any]:
        action: dict[str, Any] = {"type": "Action.Execute", "verb": verb, "data": dict(data or {})}
        if action_id is not None:
            action["id"] = action_id
        return action

    async def activity_template(
        self, conversation_id: str | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """``GET /_internal/v1/customActivities/template``: a ready-made activity for the chat.

        ``kind`` None gives the base (id, timestamp, channelId, serviceUrl, from, recipient,
        conversation); otherwise one of install, uninstall, botAdded, userAdded, botRemoved,
        userRemoved, channelCreated, channelRenamed, channelDeleted, teamRenamed, teamDeleted.
        """
        params = {"conversationId": conversation_id or self.personal_chat_id}
        if kind is not None:
            params["type"] = kind
        answer = await self.request("GET", "/_internal/v1/customActivities/template", params=params)
        return dict(answer)

    def card_action_activity(
        self,
        reply_to_id: str,
        verb: str,
        data: dict[str, Any] | None = None,
        *,
        conversation_id: str | None = None,
        action_id: str | None = None,
        trigger: str = "manual",
    ) -> dict[str, Any]:
        """An ``adaptiveCard/action`` invoke for ``send_custom_activity`` (merged onto the
        template there), shaped like the one the playground's own client sends."""
        activity: dict[str, Any] = {
            "type": "invoke",
            "name": "adaptiveCard/action",
            "replyToId": reply_to_id,
            "value": {"action": self._execute_action(verb, data, action_id), "trigger": trigger},
            "channelData": {"source": {"name": "message"}, "tenant": {"id": self.tenant_id}},
            "locale": "en-US",
        }
        if conversation_id is not None:
            activity["conversation"] = {"id": conversation_id}
        return activity

    async def send_custom_activity(
        self, activity: dict[str, Any], *, fill_defaults: bool = True
    ) -> dict[str, Any]:
        """POST ``/_internal/v1/customActivities``; returns the activity actually sent.

        Fire and forget: the playground answers before calling the bot and throws the bot's
        answer (an invoke response too) away. With ``fill_defaults`` the activity is deep-merged
        onto the template for its conversation (``activity["conversation"]["id"]`` or the
        personal chat), so serviceUrl, from, recipient, ids and channelId are filled in.
        """
        sent = dict(activity)
        if fill_defaults:
            cid = (activity.get("conversation") or {}).get("id") or self.personal_chat_id
            sent = _deep_merge(await self.activity_template(cid), activity)
        await self.request("POST", "/_internal/v1/customActivities", json_body=sent)
        return sent

    # ------------------------------------------------------------------ the stream

    def mark(self) -> int:
        """Current stream position, to pass as ``since=`` and ignore earlier events."""
        return len(self.events)

    def events_since(self, since: int = 0) -> list[StreamEvent]:
        return self.events[since:]

    async def _wait(
        self,
        items: list[Any],
        matches: Callable[[Any], bool],
        timeout: float,
        since: int,
        what: str,
    ) -> Any:
        if self._changed is None:
            raise PlaygroundError("not started")
        position = since
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._changed:
            while True:
                for item in items[position:]:
                    if matches(item):
                        return item
                position = max(position, len(items))
                if self._stream_error is not None:
                    raise PlaygroundError(self._stream_error + "\n" + self.diagnostics())
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        seen = "\n".join(i.summary() for i in items[since:]) or "(none)"
        raise StreamTimeout(f"no {what} within {timeout} s (since={since}); seen:\n{seen}")

    async def wait_for(
        self,
        predicate: Predicate | None = None,
        timeout: float = 5.0,
        *,
        since: int = 0,
        action: str | None = None,
        conversation_id: str | None = None,
    ) -> StreamEvent:
        """First stream event at index >= ``since`` matching all filters, waiting up to
        ``timeout`` seconds. Raises ``StreamTimeout`` (an AssertionError) listing what arrived."""

        def matches(event: StreamEvent) -> bool:
            if action is not None and event.action != action:
                return False
            if conversation_id is not None and event.conversation_id != conversation_id:
                return False
            return predicate is None or bool(predicate(event))

        what = f"matching stream event (action={action!r}, conversation_id={conversation_id!r})"
        event: StreamEvent = await self._wait(self.events, matches, timeout, since, what)
        return event

    async def wait_for_message(
        self,
        contains: str | None = None,
        timeout: float = 5.0,
        *,
        since: int = 0,
        conversation_id: str | None = None,
        with_card: bool | None = None,
    ) -> StreamEvent:
        """A new bot message (createMessage) whose ``all_text`` contains ``contains``."""

        def predicate(event: StreamEvent) -> bool:
            if with_card is not None and bool(event.cards) != with_card:
                return False
            return contains is None or contains in event.all_text

        return await self.wait_for(
            predicate, timeout, since=since, action="createMessage", conversation_id=conversation_id
        )

    async def wait_for_update(
        self,
        message_id: str,
        timeout: float = 5.0,
        *,
        since: int = 0,
        contains: str | None = None,
    ) -> StreamEvent:
        """An updateMessage for ``message_id`` (optionally whose ``all_text`` has ``contains``)."""
        return await self.wait_for(
            lambda e: e.message_id == message_id and (contains is None or contains in e.all_text),
            timeout,
            since=since,
            action="updateMessage",
        )

    # ------------------------------------------------------------------ the log stream

    def log_mark(self) -> int:
        """Current position in ``log_items``, to pass as ``since=``."""
        return len(self.log_items)

    async def wait_for_log(
        self,
        predicate: Callable[[LogItem], bool],
        timeout: float = 5.0,
        *,
        since: int = 0,
    ) -> LogItem:
        """First log item at index >= ``since`` matching ``predicate``."""
        item: LogItem = await self._wait(
            self.log_items, predicate, timeout, since, "matching log item"
        )
        return item

    async def bot_response(self, activity_id: str, timeout: float = 5.0) -> LogItem:
        """How the bot answered the activity with this id: ``.status`` and ``.response``.

        This is the only way to see the invoke response to a ``send_custom_activity`` invoke
        (the playground logs it, but does not return it).
        """
        return await self.wait_for_log(
            lambda item: (
                item.to_bot and item.activity_id == activity_id and item.status is not None
            ),
            timeout,
        )

    def problems(self, since: int = 0) -> list[LogItem]:
        """HTTP errors between playground and bot (both ways) and playground warnings."""
        return [item for item in self.log_items[since:] if item.is_problem]

    # ------------------------------------------------------------------ debugging

    def log_text(self) -> str:
        """The playground's own log (every request/response it saw, and its errors)."""
        if self.workdir is None:
            return ""
        log = self.workdir / "devTools" / "m365agentsplayground.log"
        try:
            return log.read_text(errors="replace")
        except OSError:
            return ""

    def diagnostics(self, log_lines: int = 40) -> str:
        """Short report for failure output: process state, stream events, stderr, log tail."""
        lines = [f"playground port={self.port} workdir={self.workdir} bot={self.bot_endpoint}"]
        if self._proc is not None:
            lines.append(f"process pid={self._proc.pid} returncode={self._proc.poll()}")
        if self.events:
            lines.append("stream events:")
            lines.extend("  " + e.summary() for e in self.events[-30:])
        if self.log_items:
            lines.append("bot exchanges and notes (log stream):")
            lines.extend("  " + i.summary() for i in self.log_items[-30:])
        if self.workdir is not None:
            with contextlib.suppress(OSError):
                err = (self.workdir / "stderr.txt").read_text(errors="replace").strip()
                if err:
                    lines.append("stderr:\n" + err[-3000:])
        log = self.log_text().splitlines()
        if log:
            lines.append(f"log tail ({min(log_lines, len(log))} of {len(log)} lines):")
            lines.extend("  " + line[:300] for line in log[-log_lines:])
        return "\n".join(lines)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
