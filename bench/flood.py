"""Closed-loop load on POST /api/messages: message activities that each earn one reply.

Every activity carries a token ``q<n>x`` that the reply repeats (the echo bots echo it,
Switchboard names the unknown command), so the connector stand-in can tell a lost reply
from a duplicated one.

``python -m bench.flood [--rounds N] [--window S] [--compare DIR]... [--profile FILE]`` runs
only the throughput phase of ``make bench`` (echo, raw and Switchboard in interleaved rounds)
and prints activities/s and the median per-round ratios. ``--compare DIR`` floods, in the same
rounds, ``bench.sbserver`` from another source tree too (e.g. an export of the code before a
change), so a before/after comparison sees the same machine load.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import aiohttp

_tokens = itertools.count(1)


@dataclass
class FloodResult:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    measured: int = 0  # answered inside the measurement window
    seconds: float = 0.0
    window: tuple[float, float] = (0.0, 0.0)
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.measured / self.seconds if self.seconds else 0.0


def message(service_url: str, n: int, conversation: int) -> dict[str, object]:
    return {
        "type": "message",
        "id": f"flood-{n}",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": f"29:flood-{conversation}", "name": f"User {conversation}"},
        "recipient": {"id": "28:bench-bot", "name": "Bot"},
        "conversation": {"id": f"a:flood-{conversation}", "conversationType": "personal",
                         "tenantId": "bench-tenant"},
        "channelData": {"tenant": {"id": "bench-tenant"}},
        "text": f"q{n}x",
        "textFormat": "plain",
    }


async def flood(bot_url: str, service_url: str, *, concurrency: int, conversations: int,
                warmup: float, duration: float) -> FloodResult:
    """`concurrency` senders back to back for warmup + duration seconds; count the window."""
    result = FloodResult(seconds=duration)
    url = f"{bot_url}/api/messages"
    start = time.monotonic()
    window = (start + warmup, start + warmup + duration)
    result.window = window

    async def sender(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < window[1]:
            n = next(_tokens)
            result.sent += 1
            began = time.monotonic()
            try:
                async with http.post(url, json=message(service_url, n, n % conversations)) \
                        as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            ended = time.monotonic()
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                result.ok += 1
                if window[0] <= ended < window[1]:
                    result.measured += 1
                    result.latencies.append(ended - began)
            else:
                result.failed += 1

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as http:
        await asyncio.gather(*(sender(http) for _ in range(concurrency)))
    return result


# -- python -m bench.flood: only the throughput phase --------------------------------------------

_FROM_TREE = ("import runpy, sys; sys.path.insert(0, sys.argv[1]); "
              "runpy.run_module('bench.sbserver', run_name='__main__')")


async def throughput_only(rounds: int, window: float, compare: list[str],
                          profile: str | None) -> dict[str, object]:
    """Phase 1 of ``make bench`` alone: echo, raw and sb (plus, with ``compare``, sb from other
    source trees, e.g. a copy of the code before a change) in interleaved rounds; prints each
    bot's activities/s and the median per-round ratios of every sb against raw and echo."""
    import statistics
    import sys
    import tempfile
    from pathlib import Path

    from bench.driver import CAPACITY_SCALE, control, flood_once, merge_rounds, switchboard_env
    from bench.procs import Proc, Procs, free_port

    with tempfile.TemporaryDirectory(prefix="switchboard-flood-") as tmp_name, \
            Procs(Path(tmp_name)) as procs:
        tmp = Path(tmp_name)
        scaled = {"BENCH_CONNECTOR_TIME_SCALE": CAPACITY_SCALE}
        bots = [procs.start("echo", "bench.baselines", args=["echo", "--port", "{port}"]),
                procs.start("raw", "bench.baselines", args=["raw", "--port", "{port}"]),
                procs.start("sb", "bench.sbserver", env={
                    **switchboard_env(tmp, "sb"), **scaled,
                    **({"BENCH_PROFILE": profile} if profile else {})})]
        for n, tree in enumerate(compare, 1):
            print(f"sb-cmp{n}: bench.sbserver from {tree}", flush=True)
            port = free_port()
            env = {k: v.format(port=port) for k, v in switchboard_env(tmp, f"cmp{n}").items()}
            proc = Proc(f"sb-cmp{n}", [sys.executable, "-c", _FROM_TREE, tree],
                        {"PYTHONUNBUFFERED": "1", **env, **scaled}, tmp, port)
            procs.started.append(proc)
            bots.append(proc)
        sink = procs.start("sink", "bench.connector", args=["--port", "{port}"])
        for proc in [*bots, sink]:
            path = ("/_bench/stats" if proc is sink
                    else "/healthz" if proc.name in ("echo", "raw") else "/readyz")
            await asyncio.to_thread(proc.wait_ready, path)
        await control(sink, "limits", {"enforce": False})
        results: dict[str, list[dict[str, object]]] = {p.name: [] for p in bots}
        for _ in range(rounds):
            for proc in bots:
                results[proc.name].append(await flood_once(proc, sink, window))
        merged = {name: merge_rounds(r) for name, r in results.items()}
        for name, summary in merged.items():
            print(f"{name:>24}: {summary['per_s']:7.1f} activities/s, "
                  f"{summary['per_cpu_s']:7.1f} per CPU-s, lost {summary['lost']}, "
                  f"dup {summary['duplicated']}, failed {summary['failed']} "
                  f"(rounds: {summary['rounds_per_s']})", flush=True)
        ratios: dict[str, object] = {}
        for proc in bots[2:]:
            own = merged[proc.name]["rounds_per_s"]
            ratios[proc.name] = {
                base: round(statistics.median(a / b for a, b in zip(
                    own, merged[base]["rounds_per_s"], strict=True)), 3)
                for base in ("raw", "echo")}
            print(f"{proc.name:>24}: {ratios[proc.name]} (median per-round ratio)", flush=True)
        return {"throughput": merged, "ratios": ratios}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=throughput_only.__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=2.0, help="seconds per round")
    parser.add_argument("--compare", action="append", default=[], metavar="DIR",
                        help="also flood bench.sbserver from this source tree (repeatable)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile sb into FILE")
    options = parser.parse_args()
    asyncio.run(throughput_only(options.rounds, options.window, options.compare,
                                options.profile))


if __name__ == "__main__":
    main()
