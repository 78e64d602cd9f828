"""Start Switchboard: python -m bot."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from bot import heap
from bot.app import create_app
from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure


def configured() -> Settings | None:
    """The settings from the environment, with logging set up as they say; None (and why, on
    stderr) when they are not valid. Also the start of bench/sbserver.py."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return None
    configure(settings.log_level)
    return settings


def main() -> int:
    settings = configured()
    if settings is None:
        return 2
    if settings.local_mode:
        logging.getLogger("bot").warning(
            "LOCAL MODE: MicrosoftAppId is not set, so inbound requests are NOT authenticated "
            "and anyone who can reach the port acts as any Teams user; listening on "
            f"{settings.host} only. Set MicrosoftAppId for production.")
    app = create_app(settings)
    heap.settle()
    # aiohttp's "Running on" banner becomes one JSON line; bot/observability/access.py
    # writes the access lines.
    web.run_app(app, host=settings.host, port=settings.port, access_log=None,
                print=lambda _text: logging.getLogger("bot").info(
                    "listening", extra={"host": settings.host, "port": settings.port}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
