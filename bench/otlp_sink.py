"""An OTLP/HTTP receiver that keeps nothing, for `BENCH_OTLP=1 make bench` (the chat phases
with traces and metrics exported): ``python -m bench.otlp_sink --port N``. It answers every
export at once and counts what arrived at ``GET /_bench/stats``, so the bench measures what
exporting costs Switchboard, not what a collector costs."""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from bench.sidecar import run_sidecar


def sink_app() -> web.Application:
    received: Counter[str] = Counter()

    async def export(request: web.Request) -> web.Response:
        received[request.path] += 1
        received[f"{request.path} bytes"] += len(await request.read())
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(dict(received))

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", export)
    app.router.add_post("/v1/metrics", export)
    app.router.add_get("/_bench/stats", stats)
    return app


async def _start(port: int) -> str:
    runner = web.AppRunner(sink_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return f"otlp sink on http://127.0.0.1:{port}"


def main() -> None:
    run_sidecar(__doc__, _start)


if __name__ == "__main__":
    main()
