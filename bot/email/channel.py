"""The email channel for the app's lifetime: the SMTP listener (replies: bot/bootstrap.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.config import Settings
from bot.email.listener import SmtpListener
from bot.services.engine import Engine

log = logging.getLogger(__name__)


@asynccontextmanager
async def email_channel(settings: Settings, engine: Engine) -> AsyncIterator[SmtpListener | None]:
    """Listen for mail on SWITCHBOARD_SMTP_PORT (when not 0); yields the listener, None when
    it is off."""
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
