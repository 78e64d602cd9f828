"""OpenTelemetry to an in-test OTLP/HTTP receiver: one chat's trace (inbound request, use case,
Bot Connector call under one trace id, carried on to web requests) and its metrics."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision, ParentBased

from bot.observability.telemetry import Telemetry, default_sampler
from tests.builders import catalog
from tests.observability.otlp import OtlpReceiver
from tests.observability.scene import whole_chat
from tests.support.world import running_world
from tests.webhooks.receiver import Receiver

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SERVER, CLIENT = 2, 3  # OTLP span kinds


async def test_a_chat_exports_one_trace_and_its_metrics(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with OtlpReceiver() as otlp, Receiver() as hooks:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint)
        monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")  # once, at shutdown
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")  # every trace
        services = catalog({"id": "sales", "web_request": [
            {"on": "accepted", "url": hooks.base + "/accepted/{task.id}"}]})
        async with running_world(services, tmp_path) as world, \
                aiohttp.ClientSession() as client:
            chat = await whole_chat(world, client, open_headers={
                "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
        # The app has stopped: its exporters flushed everything to the receiver.

    # The chat's opening request joined the caller's trace, and everything it started
    # (the use case, the invitation card's job, the Bot Connector call) is in it.
    spans = otlp.traces()[CALLER_TRACE]
    [server] = [s for s in spans if s.kind == SERVER]
    assert server.name == "POST /api/interact/v1/chats" and server.parent_id == CALLER_SPAN
    assert server.attributes["http.response.status_code"] == 201
    by_id = {s.span_id: s for s in spans}
    [use_case] = [s for s in spans if s.name == "chats.open_chat"]
    assert use_case.parent_id == server.span_id
    connector = [s for s in spans if s.kind == CLIENT
                 and s.attributes.get("switchboard.target") == "connector"]
    assert connector, [s.name for s in spans]
    for call in connector:  # each under the job that sent the card, under the use case
        job = by_id[call.parent_id]
        assert job.name == "job sync_card" and job.parent_id == use_case.span_id

    # The Accept's trace went on to the web request, which carried its context.
    [hit] = [h for h in hooks.hits if h.path == f"/accepted/{chat.task_id}"]
    version, trace_id, parent, _flags = hit.headers["traceparent"].split("-")
    assert version == "00"
    accept_trace = otlp.traces()[trace_id]
    assert any(s.name == "offers.accept" for s in accept_trace), [s.name for s in accept_trace]
    assert {s.name for s in accept_trace if s.kind == SERVER} == {"POST /api/messages"}
    webhook = next(s for s in accept_trace if s.span_id == parent)
    assert webhook.kind == CLIENT and webhook.attributes["switchboard.target"] == "webhook"

    # Metrics: the chat's offers and task, by service and modality.
    sales_im = {"service": "sales", "modality": "im"}
    for result, count in (("offered", 3), ("declined", 1), ("rona", 1), ("accepted", 1)):
        assert otlp.value("switchboard.offers", result=result, **sales_im) == count, result
    assert otlp.value("switchboard.tasks", outcome="created", **sales_im) == 1
    assert otlp.value("switchboard.tasks", outcome="done", **sales_im) == 1
    assert otlp.value("switchboard.offer.accept_time", **sales_im) == 1
    assert otlp.value("switchboard.invitation.delivery_time", **sales_im) == 3
    assert otlp.value("switchboard.outbound.calls", target="connector") >= 3
    assert otlp.value("switchboard.outbound.calls", target="webhook", status="200") == 1
    assert otlp.value("switchboard.outbound.throttled") == 0
    # The gauges: the queue is empty at the end, and the three members are counted.
    assert otlp.value("switchboard.queue.length", service="sales") == 0
    assert otlp.value("switchboard.agents", service="sales") == 3
    assert otlp.value("switchboard.sessions", service="sales", phase="live") == 0


def test_no_exporter_configured_means_telemetry_off() -> None:
    off = Telemetry.from_env({})
    assert not off.enabled and off.tracer is None and off.instruments is None


def test_exporters_follow_the_environment() -> None:
    azure = ("InstrumentationKey=00000000-0000-0000-0000-000000000000;"
             "IngestionEndpoint=http://127.0.0.1:9/")
    both = Telemetry.from_env({"APPLICATIONINSIGHTS_CONNECTION_STRING": azure,
                               "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    try:
        assert both.exporters == ("otlp", "azure_monitor")
        assert both.tracer is not None and both.instruments is not None
    finally:
        both.shutdown()
    console = Telemetry.from_env({"OTEL_TRACES_EXPORTER": "console"})
    try:
        assert console.exporters == ("console",)
        assert console.tracer is not None and console.instruments is None
    finally:
        console.shutdown()


def test_new_traces_are_sampled_one_in_ten_unless_the_environment_says_otherwise() -> None:
    sampler = default_sampler({})
    assert isinstance(sampler, ParentBased)
    assert "TraceIdRatioBased{0.1}" in sampler.get_description()
    # A caller's sampled trace is followed whatever the ratio.
    parent = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(
        int(CALLER_TRACE, 16), int(CALLER_SPAN, 16), is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))))
    decision = sampler.should_sample(parent, 1, "GET /x").decision
    assert decision is Decision.RECORD_AND_SAMPLE
    assert default_sampler({"OTEL_TRACES_SAMPLER": "parentbased_always_on"}) is None
