"""OpenTelemetry set up from the environment: OTLP, Azure Monitor, the console, or nothing."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation

log = logging.getLogger(__name__)

SERVICE_NAME = "switchboard"
INSTANCE_ID = uuid.uuid4().hex[:12]  # this process, in every span and metric it exports


@dataclass
class Gauges:
    """The last live picture read (bot/observability/status.py refreshes it): what the
    observable gauges report at each collection, without a store read on the exporter's
    thread. Each entry: (attributes, value)."""

    queue_length: list[tuple[dict[str, str], float]] = field(default_factory=list)
    oldest_wait: list[tuple[dict[str, str], float]] = field(default_factory=list)
    agents: list[tuple[dict[str, str], float]] = field(default_factory=list)
    sessions: list[tuple[dict[str, str], float]] = field(default_factory=list)
    jobs_due: list[tuple[dict[str, str], float]] = field(default_factory=list)
    jobs_overdue: list[tuple[dict[str, str], float]] = field(default_factory=list)


def _observe(values: Callable[[], list[tuple[dict[str, str], float]]]
             ) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def callback(_options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, attributes) for attributes, value in values()]
    return callback


class Instruments:
    """Every metric Switchboard exports (names in docs/deploy.md)."""

    def __init__(self, meter: metrics.Meter, gauges: Gauges) -> None:
        self.tasks = meter.create_counter(
            "switchboard.tasks", unit="{task}",
            description="Task transitions by outcome (created, expired, cancelled, done, "
                        "transferred), service and modality")
        self.offers = meter.create_counter(
            "switchboard.offers", unit="{offer}",
            description="Offers by result (offered, accepted, declined, rona, missed, "
                        "cancelled, rescinded, expired, failed), service and modality")
        self.accept_time = meter.create_histogram(
            "switchboard.offer.accept_time", unit="s",
            description="From the invitation reaching the agent (or the offer) to Accept")
        self.delivery_time = meter.create_histogram(
            "switchboard.invitation.delivery_time", unit="s",
            description="From the offer to Teams taking the invitation card")
        self.outbound_calls = meter.create_counter(
            "switchboard.outbound.calls", unit="{request}",
            description="Outbound HTTP/SMTP attempts by target and status")
        self.outbound_throttled = meter.create_counter(
            "switchboard.outbound.throttled", unit="{request}",
            description="Outbound attempts answered 429 by target")
        self.outbound_duration = meter.create_histogram(
            "switchboard.outbound.duration", unit="s",
            description="Outbound attempt duration by target")
        self.conflicts = meter.create_counter(
            "switchboard.store.conflicts", unit="{conflict}",
            description="Units of work that lost a race, by use case")
        self.retries = meter.create_counter(
            "switchboard.store.retries", unit="{retry}",
            description="Units of work run again after a conflict, by use case")
        for name, unit, values, description in (
                ("switchboard.queue.length", "{task}", lambda: gauges.queue_length,
                 "Tasks waiting (queued or ringing) by service"),
                ("switchboard.queue.oldest_wait", "s", lambda: gauges.oldest_wait,
                 "The longest wait of a waiting task by service"),
                ("switchboard.agents", "{agent}", lambda: gauges.agents,
                 "Members by derived state by service"),
                ("switchboard.sessions", "{session}", lambda: gauges.sessions,
                 "Sessions connected (live) and in after-call work (acw) by service"),
                ("switchboard.jobs.due", "{job}", lambda: gauges.jobs_due,
                 "Timers and jobs due now and not held"),
                ("switchboard.jobs.overdue", "{job}", lambda: gauges.jobs_overdue,
                 "Timers and jobs due for more than 30 s")):
            meter.create_observable_gauge(name, [_observe(values)], unit=unit,
                                          description=description)


DEFAULT_TRACE_RATIO = 0.1
"""New traces recorded unless OTEL_TRACES_SAMPLER says otherwise (a chat makes ~75 spans)."""


def default_sampler(env: Mapping[str, str]) -> Any:
    """Head sampling: a caller's sampled traceparent is always followed, and 1 in 10 of the
    traces that start here is recorded (metrics count everything). With OTEL_TRACES_SAMPLER
    set, None: the SDK builds the sampler it names (e.g. parentbased_always_on)."""
    if env.get("OTEL_TRACES_SAMPLER"):
        return None
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    return ParentBased(TraceIdRatioBased(DEFAULT_TRACE_RATIO))


def _otlp(env: Mapping[str, str], signal: str) -> str | None:
    """The OTLP/HTTP URL of a signal, as OpenTelemetry's variables say (None: the
    exporter's own default)."""
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    if specific:
        return specific
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/v1/{signal}" if base else None


class Telemetry:
    """Tracing and metrics for one app; both None when nothing exports (no cost then)."""

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None,
                 exporters: tuple[str, ...] = (), version: str = "") -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.exporters = exporters
        self.gauges = Gauges()
        self.tracer: trace.Tracer | None = (
            tracer_provider.get_tracer(SERVICE_NAME, version) if tracer_provider else None)
        self.instruments: Instruments | None = (
            Instruments(meter_provider.get_meter(SERVICE_NAME, version), self.gauges)
            if meter_provider else None)

    @property
    def enabled(self) -> bool:
        return bool(self.exporters)

    @classmethod
    def off(cls) -> Telemetry:
        return cls()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *,
                 version: str = "") -> Telemetry:
        """OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or the traces/metrics one) is set (the
        exporters read the standard OTEL_* variables), Azure Monitor when
        APPLICATIONINSIGHTS_CONNECTION_STRING is set, the console when OTEL_TRACES_EXPORTER
        or OTEL_METRICS_EXPORTER says console; none of them: off."""
        env = os.environ if environ is None else environ
        span_exporters: list[Any] = []
        metric_exporters: list[Any] = []
        names: list[str] = []
        if any(env.get(name) for name in ("OTEL_EXPORTER_OTLP_ENDPOINT",
                                          "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                          "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")):
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            span_exporters.append(OTLPSpanExporter(endpoint=_otlp(env, "traces")))
            metric_exporters.append(OTLPMetricExporter(endpoint=_otlp(env, "metrics")))
            names.append("otlp")
        connection = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "")
        if connection:
            try:
                from azure.monitor.opentelemetry.exporter import (
                    AzureMonitorMetricExporter,
                    AzureMonitorTraceExporter,
                )
            except ImportError:
                log.warning("APPLICATIONINSIGHTS_CONNECTION_STRING is set but the Azure Monitor "
                            "exporter is not installed (azure-monitor-opentelemetry-exporter)")
            else:
                span_exporters.append(AzureMonitorTraceExporter(connection_string=connection))
                metric_exporters.append(AzureMonitorMetricExporter(connection_string=connection))
                names.append("azure_monitor")
        console_traces = env.get("OTEL_TRACES_EXPORTER", "") == "console"
        console_metrics = env.get("OTEL_METRICS_EXPORTER", "") == "console"
        if console_traces or console_metrics:
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter
            if console_traces:
                span_exporters.append(ConsoleSpanExporter())
            if console_metrics:
                metric_exporters.append(ConsoleMetricExporter())
            names.append("console")
        if not names:
            return cls.off()
        return cls._built(span_exporters, metric_exporters, tuple(names), env, version)

    @classmethod
    def _built(cls, span_exporters: list[Any], metric_exporters: list[Any],
               names: tuple[str, ...], env: Mapping[str, str], version: str) -> Telemetry:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({
            "service.name": env.get("OTEL_SERVICE_NAME") or SERVICE_NAME,
            "service.version": version, "service.instance.id": INSTANCE_ID})
        tracer_provider = None
        if span_exporters:
            tracer_provider = TracerProvider(resource=resource, sampler=default_sampler(env))
            for exporter in span_exporters:
                tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
        meter_provider = None
        if metric_exporters:
            interval = float(env.get("OTEL_METRIC_EXPORT_INTERVAL") or 60_000)
            readers = [PeriodicExportingMetricReader(exporter, export_interval_millis=interval)
                       for exporter in metric_exporters]
            meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        return cls(tracer_provider=tracer_provider, meter_provider=meter_provider,
                   exporters=names, version=version)

    def shutdown(self) -> None:
        """Export what is left and stop (blocking: call it off the event loop)."""
        if self._tracer_provider is not None:
            self._tracer_provider.shutdown()
        if self._meter_provider is not None:
            self._meter_provider.shutdown()
