"""The inbound SMTP listener (aiosmtpd): mail to a service's address becomes an email task.

RCPT refuses every address that is not a service's (550), so the listener relays nothing.
DATA answers 250 only after the task is committed to the store; when the store cannot take
it the answer is 451 and the sending server tries again later, so no accepted mail is lost.
A message the parser will never take (too many MIME parts, nested too deep, or one it fails
on) gets 554 at once: parsing runs in a thread, after a look at the bytes that refuses such a
message in milliseconds, and only MAX_SESSIONS clients are served at once (421 to the next).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bot.email.parse import Unparseable, parse_mail
from bot.services import mail as mail_cases
from bot.services.engine import Engine
from bot.services.ports import ConflictError, StoreUnavailable

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
MAX_RECIPIENTS = 50
IDLE_TIMEOUT = 120.0  # seconds a client may stay silent
MAX_SESSIONS = 32  # clients served at once; the next is told 421 and may come back
MAX_PARSING = 2  # messages parsed at once (threads compete with the event loop for the GIL)


class MailHandler:
    """aiosmtpd hooks: check recipients, store the message, answer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.parsing = asyncio.Semaphore(MAX_PARSING)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.engine.catalog.email_service(address) is None:
            return "550 5.1.1 No such mailbox here"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        recipients: dict[str, str] = {}
        for address in envelope.rcpt_tos:
            service = self.engine.catalog.email_service(address)
            if service is not None:
                recipients.setdefault(service.id, address)
        raw = envelope.original_content or b""
        try:
            async with self.parsing:
                mail = await asyncio.to_thread(parse_mail, raw,
                                               envelope_sender=envelope.mail_from)
        except Unparseable as exc:
            log.warning("inbound mail refused", extra={"reason": str(exc)})
            return "554 5.6.0 Message refused: it cannot be parsed (too many parts or too deep)"
        try:
            received = await self.engine.run_durably(mail_cases.receive_mail, mail,
                                                     list(recipients.items()))
        except (ConflictError, StoreUnavailable):
            log.warning("inbound mail not stored: store busy or unavailable")
            return "451 4.3.0 Cannot store the message now; try again later"
        except Exception as exc:  # never 250 for a message that was not stored
            log.error("inbound mail not stored", extra={"error": type(exc).__name__})
            return "451 4.3.0 Cannot store the message now; try again later"
        if received.automatic:
            log.info("automatic mail recorded", extra={"reason": received.automatic})
        return "250 2.0.0 Message accepted"


BLOCK = 64 * 1024
_END = b"\r\n.\r\n"
_LONG_LINE = re.compile(rb"[^\n]{%d}" % SMTP.line_length_limit)  # with its CR: too long


def _undotted(received: bytearray) -> bytes | None:
    """The message from DATA as received after a leading CRLF, up to its closing CRLF: dots
    that open a line unstuffed (RFC 5321 4.5.2). None when a line is too long."""
    if _LONG_LINE.search(received):
        return None
    return bytes(received.replace(b"\r\n.", b"\r\n"))[2:]


class _CappedSMTP(SMTP):
    """aiosmtpd's SMTP server that first takes a place among `listener`'s sessions."""

    def __init__(self, listener: SmtpListener, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listener = listener
        self.counted = False
        self.refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.counted:
            if self.listener.sessions >= MAX_SESSIONS:
                self.refused = True
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(b"421 4.7.0 Too many connections; try again later\r\n")
                transport.close()
                return
            self.counted = True
            self.listener.sessions += 1
        super().connection_made(transport)

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, reading the message in blocks rather than line by line: its loop
        over lines held the event loop a tenth of a second per 256 KB of short lines."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        received = bytearray(b"\r\n")  # a line end before the first line: one search for ends
        size, limit, too_much = 0, self.data_size_limit or MAX_MESSAGE_BYTES, False
        while True:
            block = await self._reader.read(BLOCK)
            if not block:
                return  # the client went away
            size += len(block)
            too_much = too_much or size > limit + len(_END)
            if too_much:
                del received[:-len(_END)]  # keep only what may end the data
            start = max(0, len(received) - len(_END))
            received += block
            end = received.find(_END, start)
            if end >= 0:
                break
        # Anything after the end would be a pipelined command, which this server does not offer.
        del received[end + 2:]
        if too_much:
            status = "552 Error: Too much mail data"
        else:
            content = await asyncio.to_thread(_undotted, received)
            if content is None:
                status = "500 Line too long (see RFC5321 4.5.3.1.6)"
            else:
                self.envelope.content = self.envelope.original_content = content
                status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)

    def connection_lost(self, error: Exception | None) -> None:
        if self.refused:
            return
        if self.counted:
            self.counted = False
            self.listener.sessions -= 1
        super().connection_lost(error)


class SmtpListener:
    """The SMTP server on the app's event loop; `port` 0 picks a free port (tests)."""

    def __init__(self, engine: Engine, port: int, *, host: str | None = None,
                 hostname: str = "switchboard") -> None:
        self.handler = MailHandler(engine)
        self.host = host
        self.requested_port = port
        self.hostname = hostname
        self.sessions = 0  # clients connected now
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return 0
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        # aiosmtpd logs every command line at INFO (sender addresses) and echoes bad commands
        # in warnings: customer data never goes into our logs.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        loop = asyncio.get_running_loop()

        def protocol() -> SMTP:
            return _CappedSMTP(self, self.handler, hostname=self.hostname, ident="Switchboard",
                               data_size_limit=MAX_MESSAGE_BYTES, enable_SMTPUTF8=True,
                               timeout=IDLE_TIMEOUT, loop=loop)

        self._server = await loop.create_server(protocol, host=self.host,
                                                port=self.requested_port)
        log.info("SMTP listener started", extra={"port": self.port})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
