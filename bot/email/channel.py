"""The email channel for the app's lifetime: the reply job when a relay is set, the listener."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.config import Settings, parse_relay
from bot.email.listener import SmtpListener
from bot.email.relay import ReplySender
from bot.services.engine import Engine
from bot.services.mail import SEND_REPLY

log = logging.getLogger(__name__)


@asynccontextmanager
async def email_channel(settings: Settings, engine: Engine) -> AsyncIterator[SmtpListener | None]:
    """Register the `send_reply` job (with SWITCHBOARD_SMTP_RELAY) and listen for mail on
    SWITCHBOARD_SMTP_PORT (when not 0); yields the listener, None when it is off."""
    if settings.smtp_relay:
        engine.add_effects({SEND_REPLY: ReplySender(engine,
                                                    parse_relay(settings.smtp_relay)).send})
    listener = None
    if settings.smtp_port:
        listener = SmtpListener(engine, settings.smtp_port,
                                hostname=settings.public_host or "switchboard")
        try:
            await listener.start()
        except OSError as exc:
            log.error("SMTP listener cannot start", extra={"port": settings.smtp_port,
                                                           "error": exc.strerror or str(exc)})
            raise
    try:
        yield listener
    finally:
        if listener is not None:
            await listener.stop()
