"""The load driver behind ``make bench``: starts the servers, runs the phases, writes results.

Processes (each in its own process group, all stopped at the end, also on error):
  sb        Switchboard, ``python -m bench.sbserver``: ``python -m bot`` with the outbound
            limiter's windows scaled 1/1000 (capacity phases; see bench/sbserver.py)
  sb-teams  Switchboard, the unmodified ``python -m bot`` (paced to the Teams limits)
  echo      stock botbuilder echo bot (CloudAdapter), ``python -m bench.baselines echo``
  raw       raw aiohttp handler, ``python -m bench.baselines raw``
  sink      the connector stand-in in its own process, for the throughput phases
The chat phases use the same connector stand-in inside this process, so agents see each card
the moment it arrives.

Phases, in order:
  1. /api/messages throughput of echo, raw and sb in interleaved rounds, then sb-teams (fresh
     servers, sink not limiting)
  2. sb-teams against the sink enforcing the Teams limits: share of 50/s used, 429s
  3. register the agents on sb, a few warm-up chats
  4. invitation latency at 10, 25, 50 (and 75 if 50 kept up) new tasks/s; each chat:
     accept, two messages each way, terminate, end ACW, save the wrap-up
  5. relay latency with 50, 100, 200 open chats (customers write every 2 s, agents answer),
     memory per open chat; the chats stay open to the end
  6. the fleet: three ``python -m bot`` on one SQLite file, then on the Cosmos DB stand-in,
     customers and agents spread across them at random (bench/fleet.py)
  7. store cost per chat (in this process), routing micro-benchmark, report

``BENCH_FLEET_ONLY=1`` runs only phase 6 (as ``python -m bench.fleet``).
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench import fleet, report, routing, storecost
from bench.agents import AgentSim
from bench.connector import bench_connector, tenant_share
from bench.customers import Customers, customer_sessions
from bench.flood import FloodResult, flood
from bench.procs import Proc, Procs
from bench.scene import Chat, Scene, cancel_all, now, wait_all
from bench.services import PATH as SERVICES_PATH
from bench.services import current as services_current
from bench.stats import summary_ms
from bot.domain.timers import CARD_SETTLE

AGENTS = 300
CAPACITY_SCALE = "0.001"  # sb's limiter windows: 1/1000 of the Teams ones
FLOOD_CONCURRENCY = 32
FLOOD_CONVERSATIONS = 100
FLOOD_ROUNDS = 3
FLOOD_WARMUP, FLOOD_WINDOW = 0.3, 2.0
TEAMS_CONCURRENCY = 100  # demand far above the 50/s tenant limit
TEAMS_WARMUP, TEAMS_WINDOW = 1.5, 5.0
WARM_UP_CHATS = 20
INVITE_RATES = (10, 25, 50, 75)  # new tasks per second; 75 only if 50 kept up
INVITE_TARGET = 50
INVITE_WINDOW = 3.0  # seconds of arrivals at each rate
INVITE_MESSAGES = 2  # customer messages per chat, each answered by the agent
INVITE_INTERVAL = 0.3
KEEP_UP = 0.9  # a step keeps up when chats complete at 90 % of the rate they arrive
DRAIN = 25.0  # seconds the chats of a step get to finish; then the customers leave
SETTLED_UPDATES = (CARD_SETTLE + timedelta(seconds=1.5)).total_seconds()
RELAY_STEPS = (50, 100, 200)  # open chats
RELAY_INTERVAL = 2.0  # seconds between a customer's messages (so 200 chats: 100 msg/s each way)
RELAY_WINDOW = 5.0  # seconds measured at each step
# Seconds between the last chat of a step connecting and the measurement: the step's opening
# burst (offers, accepts, cards, headers) drains first, so the window sees steady state.
RELAY_SETTLE = 1.0
OPEN_RATE = 50.0  # chats opened per second while stepping up
CONNECT_WAIT = 25.0  # seconds the chats of a step get to be connected before measuring
# make bench must end within 3 minutes even when Switchboard falls far behind: the chat phases
# end by these times (seconds from the start); waits are cut short to fit, and what did not
# finish is reported as such.
INVITE_PHASE_END = 97.0
RELAY_PHASE_END = 128.0
QUIET = 2.0  # seconds without any delivery after which undelivered messages count as lost


@dataclass
class Run:
    procs: Procs
    tmp: Path
    results: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def left(self, until: float) -> float:
        """Seconds from now until `until` seconds after the start (at least 0)."""
        return max(0.0, self.started + until - time.monotonic())

    def log(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)


def cpu_probe() -> float:
    """Milliseconds this machine takes for a fixed piece of Python (best of three). The same
    code's CPU per chat moves with it: on a shared virtual machine it changed by half within an
    hour, so runs compare by it, not by the clock alone."""
    best = math.inf
    gc.disable()  # else a full collection of the driver's heap after the run is timed too
    try:
        for _ in range(3):
            start = time.perf_counter()
            table: dict[int, str] = {}
            for n in range(300_000):
                table[n % 1000] = str(n)
            best = min(best, time.perf_counter() - start)
    finally:
        gc.enable()
    return round(best * 1000, 1)


def switchboard_env(tmp: Path, name: str) -> dict[str, str]:
    return {"PORT": "{port}", "SWITCHBOARD_DB": str(tmp / f"{name}.db"),
            "SWITCHBOARD_SERVICES": str(SERVICES_PATH), "MicrosoftAppId": "",
            "MicrosoftAppPassword": "", "SWITCHBOARD_LOG_LEVEL": "INFO",
            "SWITCHBOARD_SMTP_PORT": "0"}  # no inbound SMTP: two instances, and not measured


async def main() -> dict[str, Any]:
    if not services_current():
        raise SystemExit("bench/services.toml is stale: run `python -m bench.services`")
    if importlib.util.find_spec("matplotlib") is None:
        raise SystemExit("make bench needs matplotlib for the plot: pip install 'matplotlib>=3.8'")
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp_name, \
            Procs(Path(tmp_name)) as procs:
        run = Run(procs, Path(tmp_name))
        run.results["load_average_before"] = os.getloadavg()[0]
        run.results["probe_ms_before"] = cpu_probe()
        try:
            await servers_phases(run)
        except Exception:
            for proc in procs.started:
                print(f"--- {proc.name} log tail ---\n{proc.tail()}", flush=True)
            raise
        finally:
            procs.stop_all()
        began = time.monotonic()
        run.results["fleet"] = await fleet.measure(procs, run.tmp, run.log)
        run.results["fleet"] |= {"seconds": round(time.monotonic() - began, 1),
                                 "source": "make bench"}
        run.log("store cost per chat (in process)")
        run.results["store"] = await storecost.measure(run.tmp)
        run.log("routing micro-benchmark")
        run.results["routing"] = await routing.run_async()
        run.results["load_average_after"] = os.getloadavg()[0]
        run.results["probe_ms_after"] = cpu_probe()
        times = os.times()
        run.results["driver_cpu_s"] = round(times.user + times.system, 1)
        run.results["bench_seconds"] = round(time.monotonic() - run.started, 1)
        report.write(run.results)
        run.log(f"done: {report.RESULTS}/latest.json, latest.md, latency.png")
        return run.results


async def servers_phases(run: Run) -> None:
    tmp = run.tmp
    telemetry: dict[str, str] = {}
    if os.environ.get("BENCH_OTLP"):  # opt in: the measured server exports traces and metrics
        otlp = run.procs.start("otlp", "bench.otlp_sink", args=["--port", "{port}"])
        await asyncio.to_thread(otlp.wait_ready, "/_bench/stats")
        telemetry = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
                     "OTEL_METRIC_EXPORT_INTERVAL": "10000"}
    run.results["telemetry"] = "otlp" if telemetry else "off"
    sb = run.procs.start("sb", "bench.sbserver", env={
        **switchboard_env(tmp, "sb"), "BENCH_CONNECTOR_TIME_SCALE": CAPACITY_SCALE,
        **telemetry})
    teams = run.procs.start("sb-teams", "bot", env=switchboard_env(tmp, "sb-teams"))
    echo = run.procs.start("echo", "bench.baselines", args=["echo", "--port", "{port}"])
    raw = run.procs.start("raw", "bench.baselines", args=["raw", "--port", "{port}"])
    sink = run.procs.start("sink", "bench.connector", args=["--port", "{port}"])
    await asyncio.gather(*(asyncio.to_thread(proc.wait_ready, path) for proc, path in (
        (sb, "/readyz"), (teams, "/readyz"), (echo, "/healthz"), (raw, "/healthz"),
        (sink, "/_bench/stats"))))
    run.log("servers up")
    await throughput_phase(run, sb, teams, echo, raw, sink)
    await teams_phase(run, teams, sink)
    for proc in (teams, echo, raw, sink):
        proc.stop()
    await chat_phases(run, sb)


async def chat_phases(run: Run, sb: Proc) -> None:
    connector = await bench_connector().start()
    scene = Scene(connector.service_url)
    connector.listeners.append(scene.on_activity)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                 timeout=aiohttp.ClientTimeout(total=60))
    sessions = customer_sessions()
    agents = [AgentSim(n, scene, connector, http, sb.url) for n in range(1, AGENTS + 1)]
    workers: list[asyncio.Task[None]] = []
    customers_tasks: list[asyncio.Task[None]] = []
    lags: list[float] = []
    monitor = asyncio.create_task(loop_lag(lags))
    try:
        await register(run, agents)
        workers = [asyncio.create_task(agent.run()) for agent in agents]
        customers = Customers(scene, sb.url, sessions)
        await warm_up(run, scene, customers)
        await invite_phase(run, scene, customers, sb)
        await settle_down(scene, run.left(INVITE_PHASE_END + 10))  # the last step's leftovers
        customers_tasks = await relay_phase(run, scene, customers, sb)
        went_quiet = await settle(scene, run.left(RELAY_PHASE_END + 4))
        run.results["flow"] = flow_accounting(scene, went_quiet)
        run.results["driver_loop_lag"] = summary_ms(lags)
        run.results["errors_flow"] = scene.samples.error_count
        run.results["error_kinds"] = dict(scene.samples.error_kinds.most_common(10))
        run.results["error_samples"] = scene.samples.errors
        run.results["series"] = {name: scene.samples.summary(name)
                                 for name in sorted(scene.samples.series)}
        run.results["connector_flow"] = {"requests": connector.requests,
                                         "posts": connector.posts, "puts": connector.puts}
    finally:
        # Each step bounded: a stuck close must not hold up the run (make bench has 3 minutes).
        await bounded(run, "stop the simulated agents and customers",
                      cancel_all([monitor, *customers_tasks, *workers]))
        await bounded(run, "close the agents' HTTP session", http.close())
        for session in sessions:
            await bounded(run, "close a customer HTTP session", session.close())
        await bounded(run, "stop the connector stand-in", connector.close())


async def bounded(run: Run, what: str, step: Awaitable[Any], limit: float = 5.0) -> None:
    try:
        async with asyncio.timeout(limit):
            await step
    except TimeoutError:
        run.log(f"gave up after {limit:.0f}s: {what}")


# -- throughput -------------------------------------------------------------------------------

async def throughput_phase(run: Run, sb: Proc, teams: Proc, echo: Proc, raw: Proc,
                           sink: Proc) -> None:
    """The same message load on each bot; every message earns exactly one reply. Rounds
    interleave the bots, so load from elsewhere on the machine hits them alike; the ratios
    are the medians of the per-round ratios."""
    await control(sink, "limits", {"enforce": False})
    rounds: dict[str, list[dict[str, Any]]] = {p.name: [] for p in (echo, raw, sb, teams)}
    for _ in range(FLOOD_ROUNDS):
        for proc in (echo, raw, sb):
            rounds[proc.name].append(await flood_once(proc, sink, FLOOD_WINDOW))
    rounds[teams.name].append(await flood_once(teams, sink, 2 * FLOOD_WINDOW))
    out = {name: merge_rounds(results) for name, results in rounds.items()}
    for name, summary in out.items():
        run.log(f"throughput {name}: {summary['per_s']} activities/s "
                f"(rounds: {summary['rounds_per_s']})")
    sb_rounds = out[sb.name]["rounds_per_s"]
    run.results["throughput"] = out
    run.results["throughput_ratios"] = {
        "echo": round(statistics.median(
            a / b for a, b in zip(sb_rounds, out[echo.name]["rounds_per_s"], strict=True)), 2),
        "raw": round(statistics.median(
            a / b for a, b in zip(sb_rounds, out[raw.name]["rounds_per_s"], strict=True)), 3),
        # Activities per CPU-second of each server: efficiency, whatever the harness can push.
        "echo_cpu": round(out[sb.name]["per_cpu_s"] / out[echo.name]["per_cpu_s"], 2),
        "raw_cpu": round(out[sb.name]["per_cpu_s"] / out[raw.name]["per_cpu_s"], 3)}
    run.results["flood"] = {"concurrency": FLOOD_CONCURRENCY, "rounds": FLOOD_ROUNDS,
                            "conversations": FLOOD_CONVERSATIONS, "seconds": FLOOD_WINDOW}


async def flood_once(proc: Proc, sink: Proc, window: float) -> dict[str, Any]:
    await control(sink, "reset")
    cpu = proc.cpu_seconds()
    result = await flood(proc.url, sink.url, concurrency=FLOOD_CONCURRENCY,
                         conversations=FLOOD_CONVERSATIONS, warmup=FLOOD_WARMUP,
                         duration=window)
    cpu = proc.cpu_seconds() - cpu
    return flood_summary(result, await control(sink, "stats"), cpu)


def merge_rounds(results: list[dict[str, Any]]) -> dict[str, Any]:
    merged = dict(results[len(results) // 2])  # latencies of a middle round
    for key in ("ok", "failed", "replies", "lost", "duplicated", "server_cpu_s"):
        merged[key] = round(sum(r[key] for r in results), 2)
    merged["rounds_per_s"] = [r["per_s"] for r in results]
    merged["per_s"] = statistics.median(merged["rounds_per_s"])
    merged["per_cpu_s"] = statistics.median(r["per_cpu_s"] or 0 for r in results)
    return merged


async def teams_phase(run: Run, teams: Proc, sink: Proc) -> None:
    """``python -m bot`` against a stand-in that enforces the Teams limits at real speed."""
    await control(sink, "limits", {"enforce": True, "time_scale": 1.0})
    await control(sink, "reset")
    result = await flood(teams.url, sink.url, concurrency=TEAMS_CONCURRENCY,
                         conversations=FLOOD_CONVERSATIONS, warmup=TEAMS_WARMUP,
                         duration=TEAMS_WINDOW)
    stats = await control(sink, "stats")
    await control(sink, "limits", {"enforce": False})
    summary = flood_summary(result, stats, 0.0)
    summary["teams_rate_share"] = round(tenant_share(stats["accepted_times"], *result.window), 3)
    summary["http_429"] = stats["throttled"]
    summary["http_429_by"] = stats["throttled_by"]
    run.results["teams"] = summary
    run.log(f"teams limits: {summary['teams_rate_share']:.0%} of 50/s used, "
            f"{summary['http_429']} x 429 {stats['throttled_by']}")


def flood_summary(result: FloodResult, stats: dict[str, Any], cpu: float) -> dict[str, Any]:
    return {
        "per_s": round(result.per_second, 1), "ok": result.ok, "failed": result.failed,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "replies": stats["tokens"], "lost": max(0, result.ok - stats["tokens"]),
        "duplicated": stats["token_duplicates"], "server_cpu_s": round(cpu, 2),
        "per_cpu_s": round(result.ok / cpu, 1) if cpu else None,
        "latency": summary_ms(result.latencies),
    }


async def control(sink: Proc, what: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        if what == "stats":
            async with http.get(f"{sink.url}/_bench/stats") as response:
                return dict(await response.json())
        async with http.post(f"{sink.url}/_bench/{what}", json=body or {}) as response:
            return dict(await response.json())


# -- chats ----------------------------------------------------------------------------------

async def register(run: Run, agents: list[AgentSim]) -> None:
    for agent in agents:
        agent.enrol()
    gate = asyncio.Semaphore(30)

    async def one(agent: AgentSim) -> None:
        async with gate:
            await agent.register()

    start = time.monotonic()
    await asyncio.gather(*(one(a) for a in agents))
    run.log(f"{len(agents)} agents registered in {time.monotonic() - start:.1f}s")


async def warm_up(run: Run, scene: Scene, customers: Customers) -> None:
    """A few complete chats, so that every code path ran once before anything is measured."""
    scene.recording = False
    chats = [scene.new_chat("warmup") for _ in range(WARM_UP_CHATS)]
    tasks = [asyncio.create_task(customers.converse(c, count=1, interval=0.1)) for c in chats]
    await finish(scene, customers, chats, tasks, DRAIN)
    run.log(f"warm-up: {sum(c.done.is_set() for c in chats)}/{len(chats)} chats")


async def invite_phase(run: Run, scene: Scene, customers: Customers, sb: Proc) -> None:
    """New chats at a fixed rate per step; each: accept, two messages each way, wrap-up."""
    steps: list[dict[str, Any]] = []
    for rate in INVITE_RATES:
        scene.relay_tag = f"tasks{rate}"
        scene.recording = True
        chats: list[Chat] = []
        tasks: list[asyncio.Task[None]] = []
        start, cpu = time.monotonic(), sb.cpu_seconds()
        for i in range(int(rate * INVITE_WINDOW)):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            chat = scene.new_chat(f"{rate}")
            chats.append(chat)
            tasks.append(asyncio.create_task(customers.converse(
                chat, count=INVITE_MESSAGES, interval=INVITE_INTERVAL)))
        offered = len(chats) / (time.monotonic() - start)
        later = sum(r * INVITE_WINDOW for r in INVITE_RATES if rate < r <= INVITE_TARGET)
        drain = min(DRAIN, run.left(INVITE_PHASE_END) - later / INVITE_TARGET)
        await finish(scene, customers, chats, tasks, max(drain, 2.0))
        scene.recording = False
        # The update of each card clicked goes out once it settled: counted with its step.
        await asyncio.sleep(SETTLED_UPDATES)
        done = [c for c in chats if c.done.is_set()]
        span = max((c.done_at for c in done), default=start) - start
        rate_done = len(done) / span if span > 0 else 0.0
        cpu = sb.cpu_seconds() - cpu
        steps.append({"rate": rate, "offered_per_s": round(offered, 1), "chats": len(chats),
                      "completed": len(done), "completed_per_s": round(rate_done, 1),
                      "no_invitation_in_time": sum(c.invitations == 0 for c in chats),
                      "server_cpu_share": round(cpu / (time.monotonic() - start), 2),
                      "server_cpu_ms_per_chat": round(cpu * 1000 / max(1, len(done)), 1)})
        run.log(f"invitation step: {rate} tasks/s offered, {len(done)}/{len(chats)} "
                f"completed at {rate_done:.1f}/s")
        if rate >= INVITE_TARGET and (rate_done < KEEP_UP * rate
                                      or run.left(INVITE_PHASE_END) < INVITE_WINDOW + 5):
            break  # behind at the target rate: a faster step would only say so again
    run.results["invite_steps"] = steps
    scene.relay_tag = ""


async def relay_phase(run: Run, scene: Scene, customers: Customers,
                      sb: Proc) -> list[asyncio.Task[None]]:
    """Hold 50, 100, then 200 chats open; customers write every 2 s, agents answer each.
    Returns the customers, still connected (cancelled at the end of the run)."""
    scene.recording = False
    rss_before = sb.rss_kib()
    chats: list[Chat] = []
    tasks: list[asyncio.Task[None]] = []
    steps: list[dict[str, Any]] = []
    for target in RELAY_STEPS:
        for _ in range(target - len(chats)):
            chat = scene.new_chat(f"open{target}")
            chat.keep_open = True
            chats.append(chat)
            tasks.append(asyncio.create_task(
                customers.converse(chat, count=None, interval=RELAY_INTERVAL)))
            await asyncio.sleep(1 / OPEN_RATE)
        steps_left = len(RELAY_STEPS) - len(steps)
        budget = run.left(RELAY_PHASE_END) - steps_left * (RELAY_WINDOW + RELAY_SETTLE)
        await wait_all([c.chatting for c in chats], max(1.0, min(CONNECT_WAIT, budget)))
        await asyncio.sleep(RELAY_SETTLE)
        scene.relay_tag = f"{target}"
        scene.recording = True
        cpu = sb.cpu_seconds()
        await asyncio.sleep(RELAY_WINDOW)
        scene.recording = False
        connected = sum(c.chatting.is_set() for c in chats)
        steps.append({"open_chats": target, "connected": connected, "rss_kib": sb.rss_kib(),
                      "server_cpu_share": round((sb.cpu_seconds() - cpu) / RELAY_WINDOW, 2)})
        run.log(f"relay step: {connected}/{target} chats connected")
    for chat in chats:
        chat.stop.set()  # the customers stop writing and stay
    rss_after = steps[-1]["rss_kib"]
    run.results["relay_steps"] = steps
    run.results["memory"] = {
        "rss_before_kib": rss_before, "rss_after_kib": rss_after, "open_chats": len(chats),
        "kib_per_open_chat": round((rss_after - rss_before) / len(chats), 1)}
    scene.relay_tag = ""
    return tasks


async def finish(scene: Scene, customers: Customers, chats: list[Chat],
                 tasks: list[asyncio.Task[None]], drain: float) -> None:
    """Give the chats `drain` seconds to end. A chat that did not is an error: its customer
    leaves, and a missing invitation counts with the time waited so far (a lower bound)."""
    await wait_all([c.done for c in chats], drain)
    late = [c for c in chats if not c.done.is_set()]
    for chat in late:
        chat.abandoned = True
        scene.samples.error(f"{chat.label}: not finished {drain:.0f}s after its step")
        if chat.invitations == 0:
            scene.record(f"invite@{chat.tag}", now() - chat.created_at)
            scene.censored[f"invite@{chat.tag}"] += 1
    await cancel_all(tasks)
    await asyncio.gather(*(customers.leave(chat) for chat in late))
    for chat in late:
        if chat.agent is not None:  # let the agent wrap up what is left
            chat.final_count = len(chat.customer_sent)
            chat.agent.wake(chat)


def undelivered(scene: Scene) -> int:
    return sum(not chat.delivered[t] for chat in scene.chats.values() if not chat.abandoned
               for t in chat.customer_sent) + sum(
        not chat.widget_got[t] for chat in scene.chats.values() if not chat.abandoned
        for t in chat.agent_sent)


async def settle(scene: Scene, limit: float) -> bool:
    """Wait until every message arrived, or nothing arrived for QUIET seconds (True: the
    server went quiet, so what is missing is lost), or `limit` ran out (False: backlog)."""
    deadline = time.monotonic() + limit
    while undelivered(scene):
        if now() - scene.last_delivery > QUIET:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def settle_down(scene: Scene, limit: float) -> None:
    """Wait (at most `limit` seconds) until nothing arrived for QUIET seconds."""
    deadline = time.monotonic() + limit
    while now() - scene.last_delivery < QUIET and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


async def loop_lag(lags: list[float], every: float = 0.05) -> None:
    """How late this process's event loop wakes up: if the driver lags, it says so."""
    while True:
        start = time.monotonic()
        await asyncio.sleep(every)
        lags.append(time.monotonic() - start - every)


def flow_accounting(scene: Scene, quiet: bool) -> dict[str, Any]:
    """Every customer message once in the chatroom, every agent message once in the widget,
    one invitation per chat; chats the driver gave up on are errors, not counted here.
    Messages still missing when the run ends while Switchboard is still delivering are its
    backlog, not losses."""
    lost = {"customer_to_chatroom": 0, "agent_to_widget": 0, "invitations": 0}
    duplicated = dict.fromkeys(lost, 0)
    completed = abandoned = 0
    for chat in scene.chats.values():
        completed += chat.done.is_set()
        if chat.abandoned:
            abandoned += 1
            continue
        for text in chat.customer_sent:
            copies = chat.delivered[text]
            lost["customer_to_chatroom"] += copies == 0
            duplicated["customer_to_chatroom"] += max(0, copies - 1)
        for text in chat.agent_sent:
            copies = chat.widget_got[text]
            lost["agent_to_widget"] += copies == 0
            duplicated["agent_to_widget"] += max(0, copies - 1)
        lost["invitations"] += chat.invitations == 0
        duplicated["invitations"] += max(0, chat.invitations - 1)
    messages = sum(len(c.customer_sent) + len(c.agent_sent) for c in scene.chats.values())
    backlog = {}
    if not quiet:
        backlog, lost = lost, dict.fromkeys(lost, 0)
    return {"chats": len(scene.chats), "completed": completed, "abandoned": abandoned,
            "messages": messages, "lost": lost, "duplicated": duplicated,
            "undelivered_backlog_at_end": backlog, "censored": dict(scene.censored)}


def run_sync() -> dict[str, Any]:
    if os.environ.get("BENCH_FLEET_ONLY") == "1":
        return fleet.run_sync()
    results = asyncio.run(main())
    print(json.dumps({k: results[k] for k in report.HEADLINE if k in results}, indent=2))
    return results
