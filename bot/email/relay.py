"""Replies leave through the SMTP relay: the `send_reply` job builds the message and sends it.

The job is a durable timer (see bot/services/mail.py): a relay that is down or answers 4xx is
tried again with backoff; a 5xx answer is final and recorded as `email.reply_failed`.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Mapping
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from bot.domain.timers import Timer
from bot.services import mail as mail_cases
from bot.services.engine import Engine

log = logging.getLogger(__name__)

TIMEOUT = 30.0  # seconds for each step of the SMTP conversation


def _header(value: Any) -> str:
    return " ".join(str(value).split())  # no CR/LF: a value can never add a header


def build_reply(outgoing: Mapping[str, Any]) -> EmailMessage:
    """The reply as MIME: plain text UTF-8, threaded with In-Reply-To and References."""
    message = EmailMessage()
    message["From"] = Address(display_name=_header(outgoing.get("from_name", "")),
                              addr_spec=_header(outgoing["sender"]))
    message["To"] = ", ".join(_header(a) for a in outgoing["to"])
    if outgoing.get("cc"):
        message["Cc"] = ", ".join(_header(a) for a in outgoing["cc"])
    message["Subject"] = _header(outgoing["subject"])
    message["Date"] = format_datetime(datetime.fromisoformat(outgoing["date"]))
    message["Message-ID"] = _header(outgoing["message_id"])
    if outgoing.get("in_reply_to"):
        message["In-Reply-To"] = _header(outgoing["in_reply_to"])
    if outgoing.get("references"):
        message["References"] = " ".join(_header(r) for r in outgoing["references"])
    message.set_content(str(outgoing["body"]))
    return message


class PermanentFailure(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _send(host: str, port: int, message: EmailMessage, sender: str,
          recipients: list[str]) -> int:
    """Send over SMTP (STARTTLS when offered); the number of refused recipients."""
    local = sender.rpartition("@")[2] or "switchboard"
    try:
        with smtplib.SMTP(host, port, timeout=TIMEOUT, local_hostname=local) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            refused = smtp.send_message(message, from_addr=sender, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            raise PermanentFailure(min(codes)) from None
        raise
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            raise PermanentFailure(exc.smtp_code) from None
        raise
    return len(refused)


class ReplySender:
    """The effect behind `send_reply` jobs."""

    def __init__(self, engine: Engine, relay: tuple[str, int]) -> None:
        self.engine = engine
        self.host, self.port = relay

    async def send(self, timer: Timer) -> None:
        outgoing: dict[str, Any] = dict(timer.data.get("mail") or {})
        if not outgoing.get("to"):
            return
        message = build_reply(outgoing)
        recipients = [*outgoing["to"], *outgoing.get("cc", [])]
        try:
            with self.engine.observer.outbound("smtp", "SEND"):
                refused = await asyncio.to_thread(_send, self.host, self.port, message,
                                                  str(outgoing["sender"]), recipients)
        except PermanentFailure as failure:
            log.error("reply refused by the relay", extra={"code": failure.code})
            await self.engine.run(mail_cases.reply_failed, outgoing, failure.code)
            return
        if refused:
            log.warning("reply not delivered to some recipients", extra={"refused": refused})
        await self.engine.finish(timer, mail_cases.reply_sent, outgoing, refused)
