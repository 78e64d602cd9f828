"""Start Switchboard: python -m bot."""

from __future__ import annotations

import sys

from aiohttp import web

from bot import heap
from bot.app import create_app
from bot.config import ConfigError, load_settings
from bot.logs import configure


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return 2
    configure(settings.log_level)
    app = create_app(settings)
    heap.settle()
    web.run_app(app, port=settings.port, access_log=None,
                print=lambda text: print(text, file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
