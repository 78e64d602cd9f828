"""bench/results: latest.json (every figure), latest.md (figures against targets), latency.png."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
HEADLINE = ("invite_p99_ms", "relay_p99_ms", "widget_p99_ms", "echo_ratio", "raw_ratio",
            "route_ms_500_5000", "route_ms_5000_50000", "route_growth", "lost", "duplicated",
            "errors", "tasks_per_s", "kib_per_open_chat", "teams_rate_share", "http_429",
            "fleet_relay_p99_ms", "fleet_tenant_peak_per_s", "fleet_http_429", "fleet_lost",
            "fleet_duplicated")
FLEET_HEADLINE = HEADLINE[-5:]
FLEET_STORES = {"sqlite": "SQLite file", "cosmos": "Cosmos DB stand-in"}
FLEET_RELAY_TARGET_MS = {"sqlite": 100, "cosmos": 250}
FLEET_TENANT_LIMIT = 50
FLEET_BEGIN, FLEET_END = "<!-- fleet -->", "<!-- /fleet -->"  # python -m bench.fleet rewrites
INVITE_TARGET_RATE = 50
RELAY_TARGET_CHATS = 200


def _ms(series: dict[str, Any], name: str, key: str = "p99_ms") -> float:
    return float(series.get(name, {}).get(key, math.nan))


def headline(results: dict[str, Any]) -> dict[str, Any]:
    series = results.get("series", {})
    flow = results.get("flow", {})
    through = results.get("throughput", {})
    teams = results.get("teams", {})
    sb, echo, raw = (through.get(k, {}).get("per_s", math.nan) for k in ("sb", "echo", "raw"))
    floods = [*through.values(), teams]
    lost = sum(flow.get("lost", {}).values()) + sum(f.get("lost", 0) for f in floods)
    duplicated = sum(flow.get("duplicated", {}).values()) + sum(
        f.get("duplicated", 0) for f in floods)
    step = next((s for s in results.get("invite_steps", [])
                 if s["rate"] == INVITE_TARGET_RATE), {})
    routing = results.get("routing", {})
    return {
        "invite_p50_ms": _ms(series, f"invite@{INVITE_TARGET_RATE}", "p50_ms"),
        "invite_p95_ms": _ms(series, f"invite@{INVITE_TARGET_RATE}", "p95_ms"),
        "invite_p99_ms": _ms(series, f"invite@{INVITE_TARGET_RATE}"),
        "relay_p50_ms": _ms(series, f"relay@{RELAY_TARGET_CHATS}", "p50_ms"),
        "relay_p95_ms": _ms(series, f"relay@{RELAY_TARGET_CHATS}", "p95_ms"),
        "relay_p99_ms": _ms(series, f"relay@{RELAY_TARGET_CHATS}"),
        "widget_p50_ms": _ms(series, f"widget@{RELAY_TARGET_CHATS}", "p50_ms"),
        "widget_p95_ms": _ms(series, f"widget@{RELAY_TARGET_CHATS}", "p95_ms"),
        "widget_p99_ms": _ms(series, f"widget@{RELAY_TARGET_CHATS}"),
        "sb_per_s": sb, "echo_per_s": echo, "raw_per_s": raw,
        "echo_ratio": results.get("throughput_ratios", {}).get("echo", math.nan),
        "raw_ratio": results.get("throughput_ratios", {}).get("raw", math.nan),
        "paced_per_s": through.get("sb-teams", {}).get("per_s", math.nan),
        "route_ms_500_5000": routing.get("route_ms_500_5000", math.nan),
        "route_ms_5000_50000": routing.get("route_ms_5000_50000", math.nan),
        "route_growth": routing.get("route_growth", math.nan),
        "lost": lost,
        "duplicated": duplicated,
        "errors": results.get("errors_flow", 0) + sum(f.get("failed", 0) for f in floods),
        "tasks_per_s": step.get("completed_per_s", math.nan),
        "tasks_per_s_peak": max((s["completed_per_s"] for s in results.get("invite_steps", [])),
                                default=math.nan),
        "invite_censored": flow.get("censored", {}).get(f"invite@{INVITE_TARGET_RATE}", 0),
        "kib_per_open_chat": results.get("memory", {}).get("kib_per_open_chat", math.nan),
        "teams_rate_share": teams.get("teams_rate_share", math.nan),
        "http_429": teams.get("http_429", -1),
        **fleet_headline(results.get("fleet", {})),
    }


def fleet_headline(fleet: dict[str, Any]) -> dict[str, Any]:
    """The fleet figures over both stores: the worst relay p99 (either way, either store),
    the busiest second, and the sums of 429s, lost and duplicated messages."""
    stores = [fleet[s] for s in FLEET_STORES if s in fleet]
    if not stores:
        return dict.fromkeys(FLEET_HEADLINE, math.nan)
    relays = [float(s.get(k) if s.get(k) is not None else math.nan) for s in stores
              for k in ("relay_agent_to_widget_p99_ms", "relay_customer_to_chatroom_p99_ms")]
    return {
        # A way with no sample at all is no pass: NaN (null in latest.json) then.
        "fleet_relay_p99_ms": math.nan if any(math.isnan(r) for r in relays) else max(relays),
        "fleet_tenant_peak_per_s": max(s["tenant_peak_per_s"] for s in stores),
        "fleet_http_429": sum(s["http_429"] for s in stores),
        "fleet_lost": sum(sum(s["lost"].values()) for s in stores),
        "fleet_duplicated": sum(sum(s["duplicated"].values()) for s in stores),
    }


def _ok(met: bool) -> str:
    return "✅" if met else "❌"


def markdown(results: dict[str, Any]) -> str:
    h = results["headline"]
    routing = results.get("routing", {})
    memory = results.get("memory", {})
    teams = results.get("teams", {})
    at_least = "≥ " if h["invite_censored"] else ""  # some invitations never came: lower bound
    rows = [
        ("Invitation: task created → card delivered, p99 at 50 new tasks/s",
         f"{at_least}{h['invite_p99_ms']:.1f} ms (p50 {h['invite_p50_ms']:.1f}, p95 "
         f"{h['invite_p95_ms']:.1f})", "< 100 ms", _ok(h["invite_p99_ms"] < 100)),
        ("Relay: customer message → chatroom, p99 with 200 open chats",
         f"{h['relay_p99_ms']:.1f} ms (p50 {h['relay_p50_ms']:.1f}, p95 "
         f"{h['relay_p95_ms']:.1f})", "< 50 ms", _ok(h["relay_p99_ms"] < 50)),
        ("Relay: agent message → widget (WebSocket), p99 with 200 open chats",
         f"{h['widget_p99_ms']:.1f} ms (p50 {h['widget_p50_ms']:.1f}, p95 "
         f"{h['widget_p95_ms']:.1f})", "< 50 ms", _ok(h["widget_p99_ms"] < 50)),
        ("/api/messages throughput vs stock botbuilder echo bot",
         f"{h['echo_ratio']:.1f}× (median {h['sb_per_s']:.0f} vs {h['echo_per_s']:.0f} "
         f"activities/s){_previous(results, 'echo_ratio', '{:.1f}×')}",
         "≥ 5×", _ok(h["echo_ratio"] >= 5)),
        ("/api/messages throughput vs raw aiohttp handler",
         f"{h['raw_ratio']:.0%} (median {h['sb_per_s']:.0f} vs {h['raw_per_s']:.0f} "
         f"activities/s){_previous(results, 'raw_ratio', '{:.0%}')}",
         "≥ 25 %", _ok(h["raw_ratio"] >= 0.25)),
        ("Offer decision, 500 agents / 5,000 queued tasks",
         f"{h['route_ms_500_5000']:.3f} ms", "< 1 ms", _ok(h["route_ms_500_5000"] < 1)),
        ("Offer decision, 5,000 agents / 50,000 queued tasks",
         f"{h['route_ms_5000_50000']:.3f} ms", "< 1 ms", _ok(h["route_ms_5000_50000"] < 1)),
        ("Offer decision growth for 10× agents and tasks",
         f"×{h['route_growth']:.1f} (exponent {routing.get('route_growth_exponent', math.nan)})",
         "sub-linear (< ×10)", _ok(h["route_growth"] < 10)),
        ("Messages lost (chat both ways, invitations, replies)", str(h["lost"]), "0",
         _ok(h["lost"] == 0)),
        ("Messages duplicated", str(h["duplicated"]), "0", _ok(h["duplicated"] == 0)),
        ("Errors (failed requests, agent or customer steps)", str(h["errors"]), "0",
         _ok(h["errors"] == 0)),
        ("Tasks completed per second at 50 new tasks/s (best step)",
         f"{h['tasks_per_s']:.1f} ({h['tasks_per_s_peak']:.1f})", "—", ""),
        ("Server CPU per chat at 50 new tasks/s (offer to saved wrap-up and the card's settled "
         "update; × 50 = the cores asked for while they arrive)", _cpu_per_chat(results), "—",
         ""),
        ("Resident memory per open chat (VmRSS growth, 0 → "
         f"{memory.get('open_chats', 0)} open chats on a warmed-up server)",
         f"{h['kib_per_open_chat']:.0f} KiB", "—", ""),
        ("Teams limits enforced: share of the 50/s tenant rate used (`python -m bot`)",
         f"{h['teams_rate_share']:.0%}", "—", ""),
        ("Teams limits enforced: HTTP 429 answers", str(h["http_429"]), "—", ""),
        ("`python -m bot` throughput, paced to the Teams limits",
         f"{h['paced_per_s']:.0f} activities/s", "—", ""),
    ]
    lag = results.get("driver_loop_lag", {})
    lines = [
        f"# Switchboard bench — {results['when']}",
        "",
        f"`make bench` on {results['machine']}, {results.get('bench_seconds', '?')} s; load "
        f"average {results.get('load_average_before', 0):.1f} before, "
        f"{results.get('load_average_after', 0):.1f} after; a fixed piece of Python took "
        f"{results.get('probe_ms_before', math.nan)} ms before and "
        f"{results.get('probe_ms_after', math.nan)} ms after (`cpu_probe`: this machine's speed "
        "moves, and CPU per chat with it); the driver's own event loop lagged "
        f"p99 {lag.get('p99_ms', math.nan)} ms. Speeds are ratios against baselines measured "
        "in the same run; latencies include this machine's other load. Traces and metrics "
        f"exported: {results.get('telemetry', 'off')} (`BENCH_OTLP=1 make bench`: on).",
        "",
        "| Figure | Measured | Target | Met |",
        "| --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
        "## Latency against load",
        "",
        "| Load | Invitation p50 / p95 / p99 (ms) | Customer → chatroom p50 / p95 / p99 | "
        "Agent → widget p50 / p95 / p99 | Tasks completed/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    series = results.get("series", {})

    def trio(name: str) -> str:
        s = series.get(name)
        if not s or not s.get("n"):
            return "—"
        return f"{s['p50_ms']:.1f} / {s['p95_ms']:.1f} / {s['p99_ms']:.1f} (n={s['n']})"

    for step in results.get("invite_steps", []):
        rate = step["rate"]
        lines.append(f"| {rate} new tasks/s | {trio(f'invite@{rate}')} | "
                     f"{trio(f'relay@tasks{rate}')} | {trio(f'widget@tasks{rate}')} | "
                     f"{step['completed_per_s']} ({step['completed']}/{step['chats']}) |")
    for step in results.get("relay_steps", []):
        chats = step["open_chats"]
        lines.append(f"| {chats} open chats | — | {trio(f'relay@{chats}')} | "
                     f"{trio(f'widget@{chats}')} | — |")
    through = results.get("throughput", {})
    lines += [
        "",
        "Each invitation-step chat: accept after 50–150 ms, two customer messages 0.3 s apart, "
        "each answered, Terminate, End ACW, Save. Open chats: each customer writes every "
        "2 s (±50 %), the agent answers each; each step measures 5 s, starting 1 s after its "
        "last chat connected. A chat not finished 25 s after its step is an "
        "error; an invitation that never came counts with the time waited (lower bound).",
        "",
        "## /api/messages throughput (one reply per activity, "
        f"{results.get('flood', {}).get('concurrency', 32)} concurrent senders, "
        f"{results.get('flood', {}).get('rounds', 1)} interleaved rounds of "
        f"{results.get('flood', {}).get('seconds', 0)} s)",
        "",
        "| Bot | Activities/s (median; rounds) | Per server CPU-second | Latency p50 / p99 (ms) "
        "| Lost | Dup |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    names = {"sb": "Switchboard (limiter ×1000)", "echo": "Stock echo bot (CloudAdapter)",
             "raw": "Raw aiohttp handler", "sb-teams": "Switchboard `python -m bot` (paced)"}
    for key, name in names.items():
        t = through.get(key)
        if t:
            lat = t["latency"]
            rounds = ", ".join(str(r) for r in t.get("rounds_per_s", []))
            lines.append(f"| {name} | {t['per_s']} ({rounds}) | {t['per_cpu_s']} | "
                         f"{lat['p50_ms']} / {lat['p99_ms']} | {t['lost']} | "
                         f"{t['duplicated']} |")
    lines += [
        "",
        "Switchboard answers an unknown text (one store read, one reply); the stand-in counts "
        "each reply's token, so a lost or doubled reply shows. Per server CPU-second, "
        f"Switchboard does {results.get('throughput_ratios', {}).get('echo_cpu', math.nan)}× "
        "the echo bot's work and "
        f"{results.get('throughput_ratios', {}).get('raw_cpu', math.nan):.0%} of the raw "
        "handler's (the raw handler is limited by the load generator, not its CPU).",
        "",
        f"Teams limits phase: `python -m bot`, {teams.get('ok', 0)} activities, "
        f"{teams.get('teams_rate_share', 0):.0%} of the 50/s tenant limit used, "
        f"{teams.get('http_429', 0)} × 429, lost {teams.get('lost', 0)}, "
        f"duplicated {teams.get('duplicated', 0)}.",
        "",
        f"Memory: VmRSS {memory.get('rss_before_kib', 0)} KiB before, "
        f"{memory.get('rss_after_kib', 0)} KiB with {memory.get('open_chats', 0)} open chats.",
        "",
        "Routing (one offer decision on SQLite, in a unit of work: the queue head, the "
        "longest-idle available agents from the availability index, `pick_agents`; median, "
        "p99): "
        + "; ".join(f"{s['agents']:,} agents / {s['tasks']:,} tasks: {s['decision_ms']:.3f} ms"
                    f" (p99 {s['decision_p99_ms']:.3f})"
                    for s in routing.get("sizes", [])) + ". The same decision over every "
        "member of the service loaded and decoded (as before the index): "
        f"{routing.get('members_ms_500', math.nan)} ms with 500 agents, "
        f"{routing.get('members_ms_5000', math.nan)} ms with 5,000.",
    ]
    lines += store_section(results.get("store", {}))
    if results.get("fleet"):
        lines += ["", *fleet_markdown(results["fleet"])]
    kinds = results.get("error_kinds", {})
    if kinds:
        lines += ["", "Errors by kind: " + "; ".join(f"{n} × {k}" for k, n in kinds.items())]
    return "\n".join(lines) + "\n"


def store_section(store: dict[str, Any]) -> list[str]:
    if not store.get("available"):
        return []
    lines = [
        "",
        f"## Store cost of one chat ({store['chats']} chats, {store['at_once']} at a time, "
        f"{store['agents']} agents)",
        "",
        f"{store['statements_per_chat']} SQL statements in {store['transactions_per_chat']} "
        f"transactions; the store lock was held {store['lock_ms_per_chat']} ms per chat "
        "(SQLite runs every unit of work under one lock, so this bounds tasks per second). "
        f"Bot Connector calls per chat: {store.get('connector_posts_per_chat', '?')} posts, "
        f"{store.get('connector_puts_per_chat', '?')} updates (at the Teams limit of 50 "
        "calls/s per tenant that caps one tenant's chats per second accordingly).",
        "",
        "| Use case | Runs per chat | Statements | Lock ms |",
        "| --- | --- | --- | --- |",
    ]
    for row in store["by_use_case"]:
        lines.append(f"| `{row['use_case']}` | {row['runs']} | {row['statements']} | "
                     f"{row['lock_ms']} |")
    return lines


def fleet_markdown(fleet: dict[str, Any]) -> list[str]:
    """The fleet section of latest.md, between markers (``python -m bench.fleet`` replaces it)."""
    stores = [s for s in FLEET_STORES if s in fleet]
    config = fleet.get("config", {})

    def cells(figure: Callable[[dict[str, Any]], str]) -> str:
        return " | ".join(figure(fleet[s]) if s in fleet else "—" for s in FLEET_STORES)

    def met(check: Callable[[str, dict[str, Any]], bool]) -> str:
        return ", ".join(f"{_ok(check(s, fleet[s]))}" for s in stores)

    def p99(s: dict[str, Any], key: str) -> float:
        value = s.get(key)
        return math.nan if value is None else float(value)

    def relay(key: str) -> Callable[[dict[str, Any]], str]:
        def cell(s: dict[str, Any]) -> str:
            d = s[key]
            if not d["n"]:
                return "no samples"
            return f"{d['p99_ms']:.1f} ms (p50 {d['p50_ms']:.1f}, n={d['n']})"
        return cell

    def split(d: dict[str, Any]) -> str:
        return f"{d['p50_ms']:.1f} / {d['p99_ms']:.1f} (n={d['n']})" if d["n"] else "—"

    def widget(s: dict[str, Any]) -> str:
        d = s["relay_agent_to_widget"]
        if not d["n"]:
            return "no samples"
        return (f"{d['p99_ms']:.1f} ms (p50 {d['p50_ms']:.1f}, n={d['n']}; posted on another "
                f"instance p50 / p99 {split(s['relay_agent_to_widget_cross_instance'])}, on "
                f"the widget's {split(s['relay_agent_to_widget_same_instance'])})")

    def under(key: str) -> Callable[[str, dict[str, Any]], bool]:
        return lambda store, s: p99(s, key) < FLEET_RELAY_TARGET_MS[store]

    rows = [
        ("Agent → widget: posted on a random instance, seen on the customer's WebSocket, p99",
         cells(widget), "< 100 ms SQLite, < 250 ms Cosmos",
         met(under("relay_agent_to_widget_p99_ms"))),
        ("Customer → chatroom: posted on the widget's instance, the relayed line at the "
         "stand-in, p99", cells(relay("relay_customer_to_chatroom")),
         "< 100 ms SQLite, < 250 ms Cosmos", met(under("relay_customer_to_chatroom_p99_ms"))),
        ("Bot Connector calls in the busiest one-second window, whole fleet (429s included; "
         "accepted only)",
         cells(lambda s: f"{s['tenant_peak_per_s']} ({s['tenant_peak_accepted_per_s']})"),
         f"≤ {FLEET_TENANT_LIMIT}",
         met(lambda _, s: s["tenant_peak_per_s"] <= FLEET_TENANT_LIMIT)),
        ("HTTP 429 answers", cells(lambda s: f"{s['http_429']} {_counts(s['http_429_by'])}"),
         "0",
         met(lambda _, s: s["http_429"] == 0)),
        ("Chat lines lost (customer → chatroom, agent → widget, in the chats that reached an "
         "agent)",
         cells(lambda s: f"{sum(s['lost'].values())} {_counts(s['lost'])}"), "0",
         met(lambda _, s: sum(s["lost"].values()) == 0)),
        ("Chat lines and invitations duplicated",
         cells(lambda s: f"{sum(s['duplicated'].values())} {_counts(s['duplicated'])}"), "0",
         met(lambda _, s: sum(s["duplicated"].values()) == 0)),
        ("Chats that reached an agent (the chatroom header at the stand-in) / opened; seconds "
         "from the first opened to the last connected or the wait's end",
         cells(lambda s: f"{s['connected']}/{s['chats']}; {s['open_seconds']} s"), "all",
         met(lambda _, s: s["connected"] == s["chats"])),
        ("Invitation: task created → card delivered, p50 / p99 (during the opening burst)",
         cells(lambda s: f"{s['invitation']['p50_ms']:.0f} / {s['invitation']['p99_ms']:.0f} "
                         f"ms (n={s['invitation']['n']})"), "—", ""),
        ("Bot Connector calls/s in the window; each instance's CPU share",
         cells(lambda s: f"{s['calls_per_s_in_window']}; {s['server_cpu_share_in_window']}"),
         "—", ""),
        ("Errors (failed requests, agent or customer steps); 503s answered and tried again",
         cells(lambda s: f"{s['errors']}; {s['http_503']} × 503"), "0",
         met(lambda _, s: s["errors"] == 0)),
    ]
    setup = "; ".join(
        f"{FLEET_STORES[s]}: {fleet[s]['setup']['registered']}/{fleet[s]['setup']['agents']} "
        f"agents in {fleet[s]['setup']['seconds']} s, {fleet[s]['setup']['calls']} calls, "
        f"busiest second {fleet[s]['setup']['peak_per_s']}, {fleet[s]['setup']['http_429']} × "
        f"429, {fleet[s]['setup']['http_503']} × 503" for s in stores)
    kinds = {k: n for s in stores for k, n in fleet[s].get("error_kinds", {}).items()}
    lines = [
        FLEET_BEGIN,
        f"## Fleet: {config.get('instances', 3)} × `python -m bot` on one store",
        "",
        f"Measured by `{fleet.get('source', 'make bench')}` at {fleet.get('when', '?')} in "
        f"{fleet.get('seconds', '?')} s (load average {fleet.get('load_average_before', 0):.1f} "
        f"before, {fleet.get('load_average_after', 0):.1f} after). {config.get('chats')} chats "
        "opened at "
        f"{config.get('open_rate_per_s')}/s and {config.get('agents')} agents on SQLite; "
        + (f"{config['cosmos_chats']} chats at {config.get('cosmos_open_rate_per_s')}/s and "
           f"{config.get('cosmos_agents')} agents on the Cosmos DB stand-in (one Node process "
           "next to the rest on this machine: bench/README says why not more); "
           if "cosmos_chats" in config else "")
        + "each widget (Interact API and WebSocket) on a "
        "random instance, every agent activity to a random instance; the unmodified server, "
        "paced to the real Teams limits, against a stand-in that enforces them. Then "
        f"{config.get('window_s')} s of chat measured: each customer writes every "
        f"{config.get('message_interval_s')} s (±50 %), the agent answers each line. A line "
        f"not arrived {config.get('drain_s')} s after the window is lost (the WebSocket's "
        f"resync safety net is {config.get('resync_poll_s')} s). Calls and 429s count from "
        "the first chat on; the agents' registration before it (setup) apart.",
        "",
        f"| Figure | {' | '.join(FLEET_STORES.values())} | Target | Met |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
        f"Setup (agents registering, not in the figures): {setup}.",
    ]
    if kinds:
        lines += ["", "Errors by kind: " + "; ".join(f"{n} × {k}" for k, n in kinds.items())]
    return [*lines, FLEET_END]


def _counts(counts: dict[str, int]) -> str:
    parts = [f"{k.replace('_', ' ')} {n}" for k, n in counts.items() if n]
    return f"({', '.join(parts)})" if parts else ""


def write_fleet(fleet: dict[str, Any], directory: Path = RESULTS) -> None:
    """``python -m bench.fleet``: the fleet figures into latest.json and latest.md; every other
    figure stays as the last full run wrote it."""
    directory.mkdir(exist_ok=True)
    fleet["when"] = _now()
    path = directory / "latest.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    figures = fleet_headline(fleet)
    results.update(figures)
    results.setdefault("headline", {}).update(figures)
    results["fleet"] = fleet
    results = {k: results[k] for k in HEADLINE if k in results} | results
    path.write_text(json.dumps(no_nan(results), indent=2, default=str, allow_nan=False) + "\n")
    md = directory / "latest.md"
    text = md.read_text(encoding="utf-8") if md.exists() else ""
    section = "\n".join(fleet_markdown(fleet))
    if FLEET_BEGIN in text and FLEET_END in text:
        head, rest = text.split(FLEET_BEGIN, 1)
        text = head + section + rest.split(FLEET_END, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
    md.write_text(text, encoding="utf-8")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = results.get("series", {})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=90)
    rates = [s["rate"] for s in results.get("invite_steps", [])]
    for pct, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^-")):
        left.plot(rates, [series.get(f"invite@{r}", {}).get(pct, math.nan) for r in rates],
                  style, label=f"invitation {pct[:3]}")
    left.axhline(100, color="red", lw=0.8, ls=":")
    left.plot([INVITE_TARGET_RATE], [100], "rx", label="target: p99 < 100 ms at 50/s")
    left.set(title="Task created → invitation card delivered", xlabel="new tasks per second",
             ylabel="ms", yscale="log")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    chats = [s["open_chats"] for s in results.get("relay_steps", [])]
    for kind, color in (("relay", "tab:blue"), ("widget", "tab:green")):
        label = "customer → chatroom" if kind == "relay" else "agent → widget"
        for pct, style in (("p50_ms", "o-"), ("p99_ms", "^--")):
            right.plot(chats, [series.get(f"{kind}@{c}", {}).get(pct, math.nan) for c in chats],
                       style, color=color, label=f"{label} {pct[:3]}")
    right.axhline(50, color="red", lw=0.8, ls=":", label="target: p99 < 50 ms at 200 chats")
    right.set(title="Chat message latency", xlabel="open chats", ylabel="ms", yscale="log")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.suptitle(f"Switchboard make bench — {results['when']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _previous(results: dict[str, Any], key: str, form: str) -> str:
    """`; previous run (<when>): <figure>` for a ratio the last run's latest.json had."""
    previous = results.get("previous_run") or {}
    value = previous.get(key)
    if not isinstance(value, int | float) or math.isnan(value):
        return ""
    return f"; previous run ({previous.get('when', '?')}): {form.format(value)}"


def previous_run(path: Path) -> dict[str, Any]:
    """The /api/messages ratios of the run whose results are about to be replaced."""
    try:
        last = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {key: last.get(key) for key in ("when", "echo_ratio", "raw_ratio", "sb_per_s")
            if key in last}


def write(results: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    results["previous_run"] = previous_run(RESULTS / "latest.json")
    results["when"] = _now()
    if results.get("fleet"):
        results["fleet"].setdefault("when", results["when"])
    results["machine"] = f"{platform.machine()} × {_cpus()} CPUs, " \
                         f"{platform.python_implementation()} {platform.python_version()} " \
                         f"({os.path.realpath(sys.executable)})"
    results["headline"] = headline(results)
    for key in HEADLINE:  # the figures CI and people look for, at the top level
        results[key] = results["headline"][key]
    ordered = {k: results[k] for k in HEADLINE} | {k: v for k, v in results.items()
                                                   if k not in HEADLINE}
    (RESULTS / "latest.json").write_text(
        json.dumps(no_nan(ordered), indent=2, default=str, allow_nan=False) + "\n")
    (RESULTS / "latest.md").write_text(markdown(results), encoding="utf-8")
    plot(results, RESULTS / "latency.png")


def _cpu_per_chat(results: dict[str, Any]) -> str:
    step = next((s for s in results.get("invite_steps", []) if s.get("rate") == 50), None)
    if not step or "server_cpu_ms_per_chat" not in step:
        return "not measured"
    ms = float(step["server_cpu_ms_per_chat"])
    return f"{ms:.1f} ms ({ms * 50 / 1000:.2f} cores)"


def no_nan(value: Any) -> Any:
    """NaN (a figure that could not be measured) becomes null: latest.json stays strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [no_nan(v) for v in value]
    return value


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))
