"""Telemetry that keeps what it would export in memory (the SDK's own in-memory reader and
exporter), for tests that look at single spans and metrics."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.observability.telemetry import Telemetry


class Recorded:
    def __init__(self) -> None:
        self.spans_out = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.telemetry = Telemetry(tracer_provider=tracer_provider,
                                   meter_provider=MeterProvider(metric_readers=[self.reader]),
                                   exporters=("memory",))

    def spans(self) -> list[ReadableSpan]:
        return list(self.spans_out.get_finished_spans())

    def value(self, metric: str, **attributes: Any) -> float:
        """The sum (or histogram count) of `metric` over points with these attributes."""
        data = self.reader.get_metrics_data()
        total = 0.0
        if data is None:
            return total
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for found in scope.metrics:
                    if found.name != metric:
                        continue
                    for point in found.data.data_points:
                        if set(attributes.items()) <= set(dict(point.attributes or {}).items()):
                            total += getattr(point, "count", None) or getattr(point, "value", 0)
        return total
