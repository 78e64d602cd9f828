"""The inbound SMTP listener (aiosmtpd): mail to a service's address becomes an email task.

RCPT refuses every address that is not a service's (550), so the listener relays nothing.
DATA answers 250 only after the task is committed to the store; when the store cannot take
it the answer is 451 and the sending server tries again later, so no accepted mail is lost.
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.smtp import SMTP, Envelope, Session

from bot.email.parse import parse_mail
from bot.services import mail as mail_cases
from bot.services.engine import Engine
from bot.services.ports import ConflictError, StoreUnavailable

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
MAX_RECIPIENTS = 50
IDLE_TIMEOUT = 120.0  # seconds a client may stay silent


class MailHandler:
    """aiosmtpd hooks: check recipients, store the message, answer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
            mail = await asyncio.to_thread(parse_mail, raw, envelope_sender=envelope.mail_from)
            received = await self.engine.run(mail_cases.receive_mail, mail,
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


class SmtpListener:
    """The SMTP server on the app's event loop; `port` 0 picks a free port (tests)."""

    def __init__(self, engine: Engine, port: int, *, host: str | None = None,
                 hostname: str = "switchboard") -> None:
        self.handler = MailHandler(engine)
        self.host = host
        self.requested_port = port
        self.hostname = hostname
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
            return SMTP(self.handler, hostname=self.hostname, ident="Switchboard",
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
