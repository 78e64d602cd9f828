"""Real SMTP for the email tests: send with smtplib, and a local sink that plays the relay."""

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.app_process import free_port as free_port  # the email tests' ports


def _send(port: int, raw: bytes, sender: str, recipients: Sequence[str]) -> dict[str, object]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        return dict(smtp.sendmail(sender, list(recipients), raw))


async def send(port: int, message: EmailMessage | bytes, *, sender: str = "jane@example.net",
               to: Sequence[str] = ("sales@example.com",)) -> dict[str, object]:
    """Deliver over SMTP (in a thread: the listener runs on this loop); refused recipients."""
    raw = message if isinstance(message, bytes) else message.as_bytes()
    raw = re.sub(rb"(?<!\r)\n", b"\r\n", raw)  # SMTP lines end in CRLF; smtplib sends bytes as is
    return await asyncio.to_thread(_send, port, raw, sender, to)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Sink:
    """Everything the relay was given, parsed."""

    port: int = 0
    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        parsed = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 OK"


@asynccontextmanager
async def smtp_sink(port: int = 0) -> AsyncIterator[Sink]:
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="sink", loop=loop),
                                      host="127.0.0.1", port=port)
    sink.port = int(server.sockets[0].getsockname()[1])
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


def mail(subject: str = "Refund", body: str = "Please refund order 42.\nThanks, Jane",
         *, sender: str = "Jane Doe <jane@example.net>", to: str = "sales@example.com",
         cc: str = "", message_id: str = "<m1@example.net>") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(body)
    return message
