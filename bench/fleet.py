"""The fleet phase of ``make bench``: three ``python -m bot`` instances on one store, as a load
balancer spreads the traffic, against a Bot Connector stand-in that enforces the Teams limits.

Run twice, on one SQLite file and on the Cosmos DB stand-in (``@vercel/cosmosdb-server``,
started as tests/cosmos_server.py starts it). Each run:

  1. starts the instances (the unmodified ``python -m bot``: its outbound limiter paces to the
     real Teams limits, which is what the tenant budget check is about) and the connector
     stand-in (in this process, enforcing the limits at real speed, recording every call);
  2. registers the agents; each activity of an agent goes to a random instance (setup: its
     calls are reported apart and not in the figures below);
  3. opens the chats at ``OPEN_RATE``: each customer's widget (Interact API and WebSocket)
     on a random instance; agents accept, each activity again to a random instance. This
     burst asks Teams for more than the tenant's 50 calls/s: the fleet's limiter must hold it;
  4. measures ``WINDOW`` seconds of chat: every customer writes every ``MESSAGE_INTERVAL`` s
     (±50 %) and the agent answers each line, so the connector sees about
     ``CHATS / MESSAGE_INTERVAL`` relayed lines a second, well below the budget: the latency
     measures the path between instances, not the queue before the budget;
  5. waits for what is still on its way (at most ``DRAIN`` s, longer than the WebSocket's
     resync safety net), then counts what never arrived (lost) and what arrived twice.

Figures per store: customer → chatroom (posted on the customer's instance, the relayed line
arriving at the stand-in) and agent → widget (posted on a random instance, seen on the
customer's WebSocket, also split into same-instance and cross-instance samples); every Bot
Connector call's arrival time from step 3 on: the busiest one-second window of the whole
fleet (calls the stand-in saw, 429s included) and the 429s.

``python -m bench.fleet`` (or ``BENCH_FLEET_ONLY=1 python -m bench``) runs only this phase
and writes its figures into bench/results/latest.json and latest.md, leaving the rest as the
last full run left it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.agents import AgentSim
from bench.connector import bench_connector, peak_per_window
from bench.customers import API, customer_sessions
from bench.procs import Proc, Procs
from bench.scene import Chat, Scene, cancel_all, now, wait_all
from bench.services import PATH as SERVICES_PATH
from bench.services import SERVICE
from bench.stats import Samples, summary_ms
from bot.interact.api import RESYNC_POLL
from tests.support.teams import TeamsError

STORES = ("sqlite", "cosmos")
INSTANCES = 3
CHATS = 200
AGENTS = 210  # a few more than chats: an offer that rings out finds someone else


@dataclass(frozen=True)
class Load:
    chats: int
    agents: int
    open_rate: float  # chats opened per second


def cosmos_load() -> Load:
    """The Cosmos DB stand-in's share: one single-threaded Node process, ~2 ms of its CPU a
    request, next to three instances and the driver on this machine's cores (bench/README)."""
    chats = int(os.environ.get("BENCH_FLEET_COSMOS_CHATS", "50"))
    return Load(chats, chats + max(2, chats // 20),
                float(os.environ.get("BENCH_FLEET_COSMOS_RATE", "5")))


def load_of(store: str) -> Load:
    return cosmos_load() if store == "cosmos" else Load(CHATS, AGENTS, OPEN_RATE)
# Agents registering at once. Each registration dispatches, and on Cosmos DB every dispatch
# of the service writes one guard document: more at once only lose races (503 after retries).
REGISTER_CONCURRENCY = 10
REGISTER_WAIT = 15.0  # seconds the agents get to register; the phase goes on with those that did
# A request answered 503 (the store busy: Switchboard asks to retry) is tried again after a
# pause, as Teams redelivers an activity and a customer presses "try again"; each is counted.
BUSY_ATTEMPTS = 6
OPEN_RATE = 25.0  # chats opened per second; ~4 Bot Connector calls each: ~100 calls/s asked
# Seconds after the last chat opened for every chat to reach its chatroom. ~800 calls at the
# fleet's 45/s take 18 s at least: the window must start with all 200 open, else an opening
# still running takes the budget (invitations first) from the window's relayed lines.
OPEN_WAIT = 25.0
MESSAGE_INTERVAL = 10.0  # seconds between a customer's lines: 200 chats, ~20 lines/s each way
WINDOW = 10.0  # seconds of measured chat
QUIET = 0.5  # the opening is over once the stand-in heard nothing for this long
QUIET_WAIT = 3.0  # ... or after this many seconds
# What is not delivered this long after the window is lost: longer than the resync, the
# WebSocket's safety net for rows another instance committed.
DRAIN = min(RESYNC_POLL + 3.0, 20.0)
COSMOS_DATABASE = "bench-fleet"

Log = Callable[[str], None]


class FleetAgent(AgentSim):
    """An agent whose every activity reaches a random instance, as behind a load balancer."""

    def __init__(self, n: int, fleet: Fleet, http: aiohttp.ClientSession,
                 urls: list[str]) -> None:
        super().__init__(n, fleet.scene, fleet.connector, http, urls[0])
        self.fleet = fleet
        self.urls = urls
        self.balancer = random.Random(1000 + n)

    async def register(self) -> None:
        """Teams' conversationUpdate of the install (the reference is stored, nothing sent
        back), then "register": two Bot Connector calls an agent (a member lookup and the
        reply), where installationUpdate's welcome card would add a third."""
        await self.post(self.activity("conversationUpdate", membersAdded=[{"id": self.bot_id}]))
        await self.say("register")

    async def post(self, activity: dict[str, Any], *,
                   timeout: float | None = None) -> tuple[int, Any]:
        for attempt in range(BUSY_ATTEMPTS):
            instance = self.balancer.randrange(len(self.urls))  # each attempt: the balancer
            if activity.get("type") == "message":
                self.fleet.sent_via[str(activity.get("text"))] = instance
            self.base_url = self.urls[instance]
            try:
                return await super().post(activity, timeout=timeout)
            except TeamsError as exc:
                if exc.status != 503 or attempt == BUSY_ATTEMPTS - 1:
                    raise
                await self.fleet.busy(attempt, self.balancer)
        raise AssertionError("unreachable")


class Widget:
    """One customer's website chat, held on one instance: Interact API and WebSocket."""

    def __init__(self, chat: Chat, instance: int, url: str, http: aiohttp.ClientSession,
                 fleet: Fleet) -> None:
        self.chat = chat
        self.instance = instance
        self.api = f"{url}{API}"
        self.http = http
        self.fleet = fleet
        self.rng = random.Random(chat.n)

    async def run(self, start: asyncio.Event, stop: asyncio.Event) -> None:
        """Open the chat, hold its WebSocket; write between `start` and `stop`."""
        chat = self.chat
        try:
            chat.created_at = now()
            status, opened = await self.post("/chats", {
                "service": SERVICE, "text": f"start {chat.label}",
                "customer": {"name": chat.label}})
            if status != 201:
                raise ValueError(f"open chat answered {status}: {str(opened)[:200]}")
            chat.chat_id, chat.token = opened["chat_id"], opened["token"]
            async with self.http.ws_connect(
                    f"{self.api}/chats/{chat.chat_id}/ws?token={chat.token}") as ws:
                reader = asyncio.create_task(self.read(ws))
                try:
                    await start.wait()
                    if chat.chatting.is_set():  # only chats that reached an agent write
                        await self.write(stop)
                    await asyncio.Event().wait()  # stay connected until cancelled
                finally:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
            self.fleet.scene.samples.error(f"{chat.label}: {type(exc).__name__}: {exc}")

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST to the widget's instance; a 503 is tried again (the customer's "try again")."""
        headers = {"Authorization": f"Bearer {self.chat.token}"} if self.chat.token else {}
        for attempt in range(BUSY_ATTEMPTS):
            async with self.http.post(f"{self.api}{path}", json=body, headers=headers) \
                    as response:
                answer = await response.json() \
                    if response.content_type == "application/json" else await response.text()
                if response.status != 503 or attempt == BUSY_ATTEMPTS - 1:
                    return response.status, answer
            await self.fleet.busy(attempt, self.rng)
        raise AssertionError("unreachable")

    async def write(self, stop: asyncio.Event) -> None:
        chat = self.chat
        pause = self.rng.uniform(0, MESSAGE_INTERVAL)  # customers do not write in step
        sent = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            if stop.is_set():
                return
            text = f"c{chat.n}-{sent}"
            chat.customer_sent[text] = now()  # before: the relay may beat the answer
            status, answer = await self.post(f"/chats/{chat.chat_id}/messages", {"text": text})
            if status != 202:
                del chat.customer_sent[text]
                raise ValueError(f"message answered {status}: {str(answer)[:200]}")
            sent += 1
            pause = MESSAGE_INTERVAL * self.rng.uniform(0.5, 1.5)

    async def read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        chat, scene = self.chat, self.fleet.scene
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(message.data)
            scene.last_delivery = now()
            if event.get("type") == "accepted":
                chat.accepted.set()
            elif event.get("type") == "message" and event.get("from") == "agent":
                text = event.get("text", "")
                sent = chat.agent_sent.get(text)
                if sent is not None and not chat.widget_got[text]:
                    where = "same" if self.fleet.sent_via.get(text) == self.instance \
                        else "cross"
                    scene.samples.add("agent_to_widget", now() - sent)
                    scene.samples.add(f"agent_to_widget_{where}", now() - sent)
                chat.widget_got[text] += 1


class Fleet:
    """One store's run: the instances, the stand-in, the agents and the widgets."""

    def __init__(self, store: str, procs: Procs, tmp: Path, log: Log) -> None:
        self.store = store
        self.procs = procs
        self.tmp = tmp
        self.log = log
        self.instances: list[Proc] = []
        self.connector = bench_connector(enforce=True, time_scale=1.0)
        self.scene = Scene("")
        self.sent_via: dict[str, int] = {}  # agent message text -> the instance it went to
        self.rng = random.Random(18)
        self.http_503 = 0  # requests answered 503 (and tried again), from the first chat on

    async def busy(self, attempt: int, rng: random.Random) -> None:
        """A 503 met: count it, and pause before the next attempt."""
        self.http_503 += 1
        await asyncio.sleep(min(2.0, 0.1 * 2 ** attempt) * rng.uniform(0.5, 1.5))

    def env(self, cosmos: Any) -> dict[str, str]:
        env = {"PORT": "{port}", "SWITCHBOARD_DB": str(self.tmp / f"fleet-{self.store}.db"),
               "SWITCHBOARD_SERVICES": str(SERVICES_PATH), "MicrosoftAppId": "",
               "MicrosoftAppPassword": "",
               "SWITCHBOARD_LOG_LEVEL": os.environ.get("BENCH_FLEET_LOG_LEVEL", "WARNING"),
               "SWITCHBOARD_SMTP_PORT": "0"}
        if cosmos is not None:
            env |= {"SWITCHBOARD_STORE": "cosmos", "COSMOS_ENDPOINT": cosmos.endpoint,
                    "COSMOS_KEY": cosmos.key, "COSMOS_DATABASE": COSMOS_DATABASE}
        return env

    async def start_instances(self, env: dict[str, str]) -> None:
        """The first instance alone (it creates the schema or the containers), then the rest."""
        for n in range(INSTANCES):
            self.instances.append(self.procs.start(f"fleet-{self.store}-{n + 1}", "bot",
                                                   env=env))
            if n == 0:
                await asyncio.to_thread(self.instances[0].wait_ready, "/readyz")
        await asyncio.gather(*(asyncio.to_thread(p.wait_ready, "/readyz")
                               for p in self.instances[1:]))

    async def run(self) -> dict[str, Any]:
        cosmos = None
        if self.store == "cosmos":
            from tests.cosmos_server import CosmosServer

            cosmos = await asyncio.to_thread(CosmosServer().start)
        await self.connector.start()
        self.scene = Scene(self.connector.service_url)
        self.connector.listeners.append(self.scene.on_activity)
        try:
            await self.start_instances(self.env(cosmos))
            self.log(f"fleet {self.store}: {INSTANCES} instances up")
            return await self.chats()
        except Exception:
            for proc in self.instances:
                print(f"--- {proc.name} log tail ---\n{proc.tail()}", flush=True)
            raise
        finally:
            for proc in self.instances:
                proc.terminate()
            for proc in self.instances:
                proc.stop()
            keep = os.environ.get("BENCH_FLEET_LOGS")  # a directory to keep the servers' logs in
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                for proc in self.instances:
                    shutil.copy(proc.log_path, Path(keep) / proc.log_path.name)
            await self.connector.close()
            if cosmos is not None:
                await asyncio.to_thread(cosmos.stop)

    async def chats(self) -> dict[str, Any]:
        scene, connector = self.scene, self.connector
        urls = [p.url for p in self.instances]
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=60))
        sessions = customer_sessions()
        load = load_of(self.store)
        agents = [FleetAgent(n, self, http, urls) for n in range(1, load.agents + 1)]
        tasks: list[asyncio.Task[None]] = []
        start, stop = asyncio.Event(), asyncio.Event()
        try:
            setup = await self.register(agents)
            tasks += [asyncio.create_task(agent.run()) for agent in agents]
            connector.reset_counts()
            began = time.monotonic()
            chats: list[Chat] = []
            for i in range(load.chats):
                await asyncio.sleep(max(0.0, began + i / load.open_rate - time.monotonic()))
                chat = scene.new_chat(self.store)
                chats.append(chat)
                instance = self.rng.randrange(INSTANCES)
                widget = Widget(chat, instance, urls[instance], sessions[i % len(sessions)],
                                self)
                tasks.append(asyncio.create_task(widget.run(start, stop)))
            await wait_all([c.chatting for c in chats], OPEN_WAIT)  # after the last opened
            opened = time.monotonic() - began
            connected = sum(c.chatting.is_set() for c in chats)
            await self.quiet()
            self.log(f"fleet {self.store}: {connected}/{load.chats} chats connected in "
                     f"{opened:.1f}s; {connector.requests} calls, {connector.throttled} x 429")
            scene.relay_tag = self.store
            scene.recording = True  # until the end: a late arrival is a sample too
            cpu = [p.cpu_seconds() for p in self.instances]
            window_began = time.monotonic()
            start.set()
            if connected:  # else there is nothing to measure: no chat reached an agent
                await asyncio.sleep(WINDOW)
            stop.set()
            window_ended = time.monotonic()
            cpu = [round((p.cpu_seconds() - c) / max(window_ended - window_began, 1e-3), 2)
                   for p, c in zip(self.instances, cpu, strict=True)]
            drained = await self.drain(chats) if connected else 0.0
            if not connected:
                self.log(f"fleet {self.store}: no chat reached an agent: nothing to measure")
            elif drained < DRAIN:
                self.log(f"fleet {self.store}: window over, everything arrived after "
                         f"{drained:.1f}s")
            else:
                self.log(f"fleet {self.store}: window over, {undelivered(chats)} lines still "
                         f"missing after {DRAIN:.0f}s")
            return self.summary(chats, setup, opened, connected, cpu, drained,
                                (window_began, window_ended))
        finally:
            await cancel_all(tasks)
            await bounded(http.close())
            for session in sessions:
                await bounded(session.close())

    async def register(self, agents: list[FleetAgent]) -> dict[str, Any]:
        for agent in agents:
            agent.enrol()
        gate = asyncio.Semaphore(REGISTER_CONCURRENCY)
        registered = 0

        async def one(agent: FleetAgent) -> None:
            nonlocal registered
            async with gate:
                try:
                    await agent.register()
                    registered += 1
                except (TeamsError, aiohttp.ClientError, TimeoutError) as exc:
                    self.scene.samples.error(f"register: {type(exc).__name__}: {exc}")

        began = time.monotonic()
        steps = [asyncio.create_task(one(a)) for a in agents]
        await asyncio.wait(steps, timeout=REGISTER_WAIT)
        await cancel_all(steps)  # those still registering: the phase goes on without them
        await self.quiet()
        setup = {"agents": len(agents), "registered": registered,
                 "seconds": round(time.monotonic() - began, 1),
                 "calls": self.connector.requests, "http_429": self.connector.throttled,
                 "http_503": self.http_503, "errors": self.scene.samples.error_count,
                 "peak_per_s": peak_per_window(self.connector.arrival_times)}
        self.log(f"fleet {self.store}: {registered}/{len(agents)} agents registered in "
                 f"{setup['seconds']}s ({setup['calls']} calls, {setup['http_429']} x 429, "
                 f"{setup['http_503']} x 503)")
        self.http_503 = 0
        self.scene.samples = Samples()
        return setup

    async def quiet(self) -> None:
        """Until the stand-in heard nothing for QUIET seconds (at most QUIET_WAIT)."""
        deadline = time.monotonic() + QUIET_WAIT
        while time.monotonic() < deadline:
            arrivals = self.connector.arrival_times
            if not arrivals or time.monotonic() - arrivals[-1] > QUIET:
                return
            await asyncio.sleep(0.1)

    async def drain(self, chats: list[Chat]) -> float:
        """Seconds until every line arrived both ways (DRAIN if some never did)."""
        began = time.monotonic()
        while time.monotonic() - began < DRAIN:
            await asyncio.sleep(0.1)
            answered = all(len(c.agent_sent) >= sum(1 for t in c.customer_sent if c.delivered[t])
                           for c in chats)
            if answered and not undelivered(chats):
                return time.monotonic() - began
        return DRAIN

    def summary(self, chats: list[Chat], setup: dict[str, Any], opened: float, connected: int,
                cpu: list[float], drained: float,
                window: tuple[float, float]) -> dict[str, Any]:
        scene, connector = self.scene, self.connector
        lost = {"customer_to_chatroom": 0, "agent_to_widget": 0}
        duplicated = {**lost, "invitations": 0}
        repeats = {"same_offer": 0, "same_agent_new_offer": 0, "other_agent": 0}
        for chat in chats:
            for text in chat.customer_sent:
                lost["customer_to_chatroom"] += chat.delivered[text] == 0
                duplicated["customer_to_chatroom"] += max(0, chat.delivered[text] - 1)
            for text in chat.agent_sent:
                lost["agent_to_widget"] += chat.widget_got[text] == 0
                duplicated["agent_to_widget"] += max(0, chat.widget_got[text] - 1)
            duplicated["invitations"] += max(0, chat.invitations - 1)
            # Of those: one offer's card posted again, or another offer of the same chat (to
            # another agent after a ring-out, or to the same agent again).
            distinct = set(chat.offers)
            reached = {cid for cid, _ in distinct}
            repeats["same_offer"] += len(chat.offers) - len(distinct)
            repeats["same_agent_new_offer"] += len(distinct) - len(reached)
            repeats["other_agent"] += max(0, len(reached) - 1)
        series = {name: summary_ms(scene.samples.series.get(name, [])) for name in (
            f"relay@{self.store}", "agent_to_widget", "agent_to_widget_cross",
            "agent_to_widget_same")}
        customer_to_chatroom = series[f"relay@{self.store}"]
        in_window = [t for t in connector.arrival_times if window[0] <= t < window[1]]
        return {
            "relay_customer_to_chatroom_p99_ms": customer_to_chatroom["p99_ms"],
            "relay_agent_to_widget_p99_ms": series["agent_to_widget"]["p99_ms"],
            "tenant_peak_per_s": peak_per_window(connector.arrival_times),
            "tenant_peak_accepted_per_s": peak_per_window(connector.accepted_times),
            "http_429": connector.throttled,
            "http_429_by": dict(connector.throttled_by),
            "http_503": self.http_503,
            "lost": lost, "duplicated": duplicated, "invitation_repeats": repeats,
            "relay_customer_to_chatroom": customer_to_chatroom,
            "relay_agent_to_widget": series["agent_to_widget"],
            "relay_agent_to_widget_cross_instance": series["agent_to_widget_cross"],
            "relay_agent_to_widget_same_instance": series["agent_to_widget_same"],
            "chats": len(chats), "connected": connected, "open_seconds": round(opened, 1),
            "window_s": WINDOW, "drained_s": round(drained, 1),
            "calls": connector.requests, "posts": connector.posts, "puts": connector.puts,
            "calls_per_s_in_window": round(len(in_window) / max(window[1] - window[0], 1e-3),
                                           1),
            "server_cpu_share_in_window": cpu,
            "errors": scene.samples.error_count,
            "error_kinds": dict(scene.samples.error_kinds.most_common(10)),
            "invitation": summary_ms(scene.samples.series.get(f"invite@{self.store}", [])),
            "setup": setup,
        }


def undelivered(chats: list[Chat]) -> int:
    return sum(not chat.delivered[t] for chat in chats for t in chat.customer_sent) + sum(
        not chat.widget_got[t] for chat in chats for t in chat.agent_sent)


async def bounded(step: Awaitable[Any], limit: float = 5.0) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit):
            await step


def config() -> dict[str, Any]:
    cosmos = cosmos_load()
    return {"instances": INSTANCES, "chats": CHATS, "agents": AGENTS,
            "open_rate_per_s": OPEN_RATE, "cosmos_chats": cosmos.chats,
            "cosmos_agents": cosmos.agents, "cosmos_open_rate_per_s": cosmos.open_rate,
            "message_interval_s": MESSAGE_INTERVAL,
            "window_s": WINDOW, "drain_s": DRAIN, "resync_poll_s": RESYNC_POLL}


async def measure(procs: Procs, tmp: Path, log: Log,
                  stores: tuple[str, ...] = STORES) -> dict[str, Any]:
    """Both stores, one after the other; each with fresh instances and a fresh stand-in."""
    results: dict[str, Any] = {"config": config(), "load_average_before": os.getloadavg()[0]}
    for store in stores:
        began = time.monotonic()
        results[store] = await Fleet(store, procs, tmp, log).run()
        results[store]["seconds"] = round(time.monotonic() - began, 1)
        log(f"fleet {store}: customer → chatroom p99 "
            f"{results[store]['relay_customer_to_chatroom_p99_ms']} ms, agent → widget p99 "
            f"{results[store]['relay_agent_to_widget_p99_ms']} ms, busiest second "
            f"{results[store]['tenant_peak_per_s']} calls, {results[store]['http_429']} x 429")
    results["load_average_after"] = os.getloadavg()[0]
    return results


async def main() -> dict[str, Any]:
    from bench import report

    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)

    # BENCH_FLEET_STORES=sqlite: one store only (while working on one of them)
    stores = tuple(os.environ.get("BENCH_FLEET_STORES", ",".join(STORES)).split(","))
    with tempfile.TemporaryDirectory(prefix="switchboard-fleet-") as tmp_name, \
            Procs(Path(tmp_name)) as procs:
        fleet = await measure(procs, Path(tmp_name), log, stores)
    fleet["seconds"] = round(time.monotonic() - started, 1)
    fleet["source"] = "python -m bench.fleet"
    report.write_fleet(fleet)
    log(f"done: {report.RESULTS}/latest.json and latest.md (fleet part)")
    return fleet


def run_sync() -> dict[str, Any]:
    fleet = asyncio.run(main())
    from bench import report

    print(json.dumps(report.no_nan(report.fleet_headline(fleet)), indent=2))
    return fleet


if __name__ == "__main__":
    run_sync()
