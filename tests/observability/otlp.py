"""An OTLP/HTTP receiver on 127.0.0.1 (protobuf, as the exporters send it): keeps every span
and every metric data point it is sent."""

from __future__ import annotations

import gzip
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Point:
    """One data point: a sum's or gauge's value, or a histogram's count."""

    metric: str
    attributes: dict[str, Any]
    value: float


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclass
class OtlpReceiver:
    spans: list[Span] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    async def _body(request: web.Request) -> bytes:
        raw = await request.read()
        return gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw

    async def _traces(self, request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest.FromString(await self._body(request))
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(Span(span.trace_id.hex(), span.span_id.hex(),
                                           span.parent_span_id.hex(), span.name, span.kind,
                                           _attributes(span.attributes)))
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def _metrics(self, request: web.Request) -> web.Response:
        message = ExportMetricsServiceRequest.FromString(await self._body(request))
        for resource_metrics in message.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    self._add(metric)
        return web.Response(body=ExportMetricsServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    def _add(self, metric: Any) -> None:
        kind = metric.WhichOneof("data")
        for point in getattr(metric, kind).data_points:
            if kind == "histogram":
                value = float(point.count)
            else:
                value = float(point.as_double if point.WhichOneof("value") == "as_double"
                              else point.as_int)
            self.points.append(Point(metric.name, _attributes(point.attributes), value))

    def latest(self) -> dict[tuple[str, frozenset[tuple[str, Any]]], float]:
        """The last value of each (metric, attributes): cumulative sums and counts, gauges."""
        found: dict[tuple[str, frozenset[tuple[str, Any]]], float] = {}
        for point in self.points:
            found[(point.metric, frozenset(point.attributes.items()))] = point.value
        return found

    def value(self, metric: str, **attributes: Any) -> float:
        """The latest value of `metric` summed over the points whose attributes include
        `attributes`."""
        total = 0.0
        for (name, attrs), value in self.latest().items():
            if name == metric and set(attributes.items()) <= set(attrs):
                total += value
        return total

    def traces(self) -> dict[str, list[Span]]:
        grouped: dict[str, list[Span]] = defaultdict(list)
        for span in self.spans:
            grouped[span.trace_id].append(span)
        return grouped
