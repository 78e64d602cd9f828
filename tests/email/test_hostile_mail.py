"""Issue #19: hostile MIME is refused for good (554) and quickly; the loop stays free."""

from __future__ import annotations

import asyncio
import smtplib
import time

import pytest

from bot.email.listener import MAX_SESSIONS
from bot.email.parse import MAX_DEPTH
from tests.email.conftest import MailWorld
from tests.email.mailer import mail, send
from tests.responsiveness import healthz_delays

HEAD = (b"From: Eve <eve@example.net>\r\nTo: sales@example.com\r\nSubject: parts\r\n"
        b"Message-ID: <hostile@example.net>\r\nMIME-Version: 1.0\r\n")


def many_parts(count: int) -> bytes:
    part = b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return (HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + part * count
            + b"--b--\r\n")


def nested_multipart(depth: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\nhello\r\n"
    for level in range(depth):
        mark = b"level%d" % level
        body = (b"Content-Type: multipart/mixed; boundary=" + mark + b"\r\n\r\n--" + mark
                + b"\r\n" + body + b"--" + mark + b"--\r\n")
    return HEAD + body


def nested_messages(depth: int) -> bytes:
    return (HEAD + b"Content-Type: message/rfc822\r\n\r\n" * depth
            + b"Content-Type: text/plain\r\n\r\nhello\r\n")


async def refusal(world: MailWorld, raw: bytes) -> int:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await send(world.smtp_port, raw, sender="eve@example.net")
    return refused.value.smtp_code


async def test_a_50000_part_mail_is_refused_at_once_and_healthz_answers_meanwhile(
        mail_world: MailWorld) -> None:
    world = mail_world.world
    raw = many_parts(50_000)
    assert len(raw) > 1_500_000
    began = time.monotonic()
    async with healthz_delays(world.client, world.server.make_url("/healthz")) as delays:
        code = await refusal(mail_world, raw)
    assert code == 554
    assert time.monotonic() - began < 3.0
    assert delays and max(delays) < 0.1, f"/healthz took {max(delays) * 1000:.0f} ms"
    assert await mail_world.tasks() == []
    # The listener goes on taking ordinary mail.
    assert await send(mail_world.smtp_port, mail()) == {}
    assert len(await mail_world.tasks()) == 1


async def test_mail_nested_too_deep_gets_554_not_451(mail_world: MailWorld) -> None:
    # The parser recursed into a RecursionError, and the sender was told 451 for ever.
    assert await refusal(mail_world, nested_messages(2000)) == 554
    assert await refusal(mail_world, nested_multipart(MAX_DEPTH + 3)) == 554
    assert await mail_world.tasks() == []
    # Nesting as deep as real mail has is fine.
    assert await send(mail_world.smtp_port, nested_multipart(4), sender="eve@example.net") == {}
    assert len(await mail_world.tasks()) == 1


async def greeting(port: int) -> tuple[bytes, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    line = await asyncio.wait_for(reader.readline(), 5)
    return line, writer


async def test_only_so_many_smtp_sessions_at_once(mail_world: MailWorld) -> None:
    port = mail_world.smtp_port
    held = [await greeting(port) for _ in range(MAX_SESSIONS)]
    assert all(line.startswith(b"220") for line, _ in held)
    line, extra = await greeting(port)
    assert line.startswith(b"421")
    extra.close()
    _, first = held.pop()
    first.close()
    await first.wait_closed()
    for _ in range(100):  # the server sees the close a moment later
        line, writer = await greeting(port)
        writer.close()
        if line.startswith(b"220"):
            break
        await asyncio.sleep(0.02)
    assert line.startswith(b"220")
    for _, writer in held:
        writer.close()


async def test_data_read_in_blocks_keeps_smtp_rules(mail_world: MailWorld) -> None:
    """DATA is read in blocks now: dot-stuffed lines come back with one dot, an empty line and
    a last line without its own dot are kept, and a line past 1,000 characters is refused."""
    body = ".leading dot\n..two dots\n\n.\nend"
    assert await send(mail_world.smtp_port, mail(body=body)) == {}
    [task] = await mail_world.tasks()
    assert task.content["text"] == body
    long_line = mail(message_id="<long@example.net>")
    raw = long_line.as_bytes().replace(b"Please refund", b"x" * 1200 + b" Please refund")
    assert await refusal(mail_world, raw) == 500
    assert len(await mail_world.tasks()) == 1
