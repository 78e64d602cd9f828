"""Switchboard as ``python -m bot`` starts it, with the outbound limiter's windows scaled.

``python -m bot`` paces every Bot Connector call to the Teams limits, and the per-tenant one
(50 requests/s) caps everything the bot sends, whatever the code costs. The capacity phases
(latency against load, throughput against the baselines, which pace nothing) therefore run the
same composition root with ``connector_time_scale`` — the seam the tests use — taken from
``BENCH_CONNECTOR_TIME_SCALE`` (0.001: every window a thousand times shorter). The Teams phase
runs the unmodified ``python -m bot``.
"""

from __future__ import annotations

import os
import sys

from aiohttp import web

from bot import heap
from bot.__main__ import configured
from bot.app import create_app


def main() -> int:
    settings = configured()
    if settings is None:
        return 2
    scale = float(os.environ.get("BENCH_CONNECTOR_TIME_SCALE", "1"))
    app = create_app(settings, connector_time_scale=scale)
    heap.settle()  # as python -m bot does
    profile_path = os.environ.get("BENCH_PROFILE")  # cProfile the server into this file
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()

        async def dump(app: web.Application) -> None:
            # On shutdown, before the cleanup contexts: the driver's SIGKILL after its grace
            # period must not find the file half written.
            profiler.disable()
            profiler.dump_stats(profile_path)

        app.on_shutdown.append(dump)
        profiler.enable()
    web.run_app(app, port=settings.port, access_log=None,
                print=lambda text: print(text, file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
