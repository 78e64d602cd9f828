"""No credential reaches the log, whichever part of the stack writes the line: aiohttp's
parser quotes the raw header line of a request it cannot parse."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.logs import JsonFormatter, redact
from tests.resilience.harness import new_server

HOSTILE = [
    # A control character in the Authorization header: aiohttp refuses the request.
    b"POST /api/interact/v1/chats HTTP/1.1\r\nHost: x\r\n"
    b"Authorization: Bearer KEY-ONE\x01tail\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /api/v1/sessions?token=KEY-TWO HTTP/1.1\r\nHost: x\r\n"
    b"Authorization: Bearer KEY-THREE\r\nContent-Length: abc\r\n\r\n",
    b"GET /x?token=KEY-FOUR&a=1 HTTP/1.1\r\nHost: x\r\nCookie: s=KEY-FIVE\x01\r\n\r\n",
    b"GET /api/interact/v1/chats/x/ws?token=KEY-SIX HTTP/1.1\r\nHost: x\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \x01\r\n\r\n",
]


async def test_hostile_requests_leave_no_key_in_the_log_at_debug(tmp_path: Path) -> None:
    server = new_server(tmp_path, env={"SWITCHBOARD_LOG_LEVEL": "DEBUG"})
    server.start()
    try:
        await server.ready()
        for request in HOSTILE:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(request)
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            assert b" 400 " in status or b" 404 " in status or b" 401 " in status, status
        await asyncio.sleep(0.3)
    finally:
        server.stop()
    log = server.log_text()
    assert "aiohttp.server" in log  # the parser errors were logged...
    assert "KEY-" not in log  # ...without any of the credentials they quote


def test_redact_covers_headers_tokens_and_query_secrets() -> None:
    text = ("b'Authorization: Bearer abc.def\\x01'\nProxy-Authorization=Basic Zm9v\n"
            "GET /a?token=t0k&x=1&sig=s1g\ncookie: sid=1\n{'h': 'Bearer eyJhbGci.x.y'}")
    cleaned = redact(text)
    for secret in ("abc.def", "Zm9v", "t0k", "s1g", "sid=1", "eyJhbGci"):
        assert secret not in cleaned, (secret, cleaned)
    assert "x=1" in cleaned and "GET /a?" in cleaned


def test_the_formatter_redacts_extras_and_tracebacks() -> None:
    try:
        raise ValueError("header Authorization: Bearer SECRET-1")
    except ValueError:
        record = logging.LogRecord("azure.core", logging.ERROR, __file__, 1,
                                   "calling %s", ("https://x/?sig=SECRET-2",), exc_info=None)
        import sys
        record.exc_info = sys.exc_info()
    record.url = "https://x/?access_token=SECRET-3"
    line = JsonFormatter().format(record)
    assert "SECRET" not in line, line
