"""The engine's observer: a log line per committed event, a span per unit of work and job,
the task, offer and store metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from opentelemetry import trace

from bot.domain import events as ev
from bot.observability.outbound import OutboundWatch
from bot.observability.telemetry import Instruments, Telemetry
from bot.services.observe import Emitted, SilentObserver, Watch
from bot.services.ports import ConflictError

log = logging.getLogger("bot.events")

# Event data an operator may see: states and results, never what a customer or agent wrote.
_SAFE_DATA = ("result", "task_state", "task_result", "phase", "state", "previous", "by",
              "rona", "trigger", "status")
_TASK_OUTCOMES = {ev.TASK_CREATED: "created", ev.TASK_EXPIRED: "expired",
                  ev.TASK_CANCELLED: "cancelled", ev.TASK_DONE: "done",
                  ev.TASK_TRANSFERRED: "transferred"}
_OFFER_ENDS = frozenset({ev.OFFER_ACCEPTED, ev.OFFER_DECLINED, ev.OFFER_TIMED_OUT,
                         ev.OFFER_RESCINDED, ev.OFFER_CANCELLED, ev.OFFER_EXPIRED,
                         ev.OFFER_FAILED})
_SILENT = SilentObserver()


def use_case_name(use_case: Callable[..., Any]) -> str:
    """offers.accept: the use case's module (last part) and name."""
    module = getattr(use_case, "__module__", "") or ""
    name = getattr(use_case, "__name__", None) or type(use_case).__name__
    return f"{module.rpartition('.')[2]}.{name}" if module else name


def event_fields(emitted: Emitted) -> dict[str, object]:
    """The fields of an event's log line: ids, safe data, the numbers (None left out)."""
    event = emitted.event
    fields: dict[str, object] = {"event": event.name}
    for key, value in (("task_id", event.task_id), ("session_id", event.session_id),
                       ("service_id", event.service_id),
                       ("agent_id", emitted.agent_object_id or event.agent_id),
                       ("modality", emitted.modality), ("waited_ms", emitted.waited_ms),
                       ("rang_ms", emitted.rang_ms), ("attempt", emitted.attempt)):
        if value is not None:
            fields[key] = value
    for key in _SAFE_DATA:
        value = event.data.get(key)
        if value is not None and isinstance(value, str | int | bool):
            fields[key] = value
    return fields


class _Watch:
    """One unit of work or job in a span; counts its conflicts."""

    __slots__ = ("_instruments", "_name", "_span_cm", "conflicts")

    def __init__(self, tracer: trace.Tracer | None, instruments: Instruments | None,
                 name: str, span_name: str) -> None:
        self._name = name
        self._instruments = instruments
        self._span_cm = (tracer.start_as_current_span(span_name, attributes={
            "switchboard.use_case": name}) if tracer is not None else None)
        self.conflicts = 0

    def __enter__(self) -> _Watch:
        if self._span_cm is not None:
            self._span_cm.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Each conflict was retried, but the last one when the engine gave up on it.
        retries = self.conflicts - isinstance(exc, ConflictError)
        if self.conflicts and self._instruments is not None and retries:
            self._instruments.retries.add(retries, {"use_case": self._name})
        if self._span_cm is not None:
            if self.conflicts:
                span = trace.get_current_span()
                span.set_attribute("switchboard.conflicts", self.conflicts)
                span.set_attribute("switchboard.retries", retries)
            self._span_cm.__exit__(kind, exc, tb)

    def conflict(self) -> None:
        self.conflicts += 1
        if self._instruments is not None:
            self._instruments.conflicts.add(1, {"use_case": self._name})


class EngineObserver:
    """Logs every committed event at INFO; with telemetry on, spans and metrics too."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.tracer = telemetry.tracer
        self.instruments = telemetry.instruments
        self._watching = self.tracer is not None or self.instruments is not None

    def unit_of_work(self, use_case: Callable[..., Any]) -> Watch:
        if not self._watching:
            return _SILENT.unit_of_work(use_case)
        name = use_case_name(use_case)
        return _Watch(self.tracer, self.instruments, name, name)

    def job(self, kind: str) -> Watch:
        if not self._watching:
            return _SILENT.job(kind)
        return _Watch(self.tracer, None, kind, f"job {kind}")

    def outbound(self, target: str, operation: str) -> Watch:
        return OutboundWatch(self.telemetry, target, operation)

    def committed(self, emitted: Sequence[Emitted]) -> None:
        logging_on = log.isEnabledFor(logging.INFO)
        for item in emitted:
            if logging_on:
                log.info(item.event.name, extra=event_fields(item))
            if self.instruments is not None:
                self._count(self.instruments, item)

    @staticmethod
    def _count(instruments: Instruments, item: Emitted) -> None:
        event = item.event
        attributes = {"service": event.service_id or "", "modality": item.modality or ""}
        outcome = _TASK_OUTCOMES.get(event.name)
        if outcome is not None:
            instruments.tasks.add(1, {**attributes, "outcome": outcome})
        if event.name == ev.OFFER_CREATED:
            instruments.offers.add(1, {**attributes, "result": "offered"})
        elif event.name in _OFFER_ENDS:
            result = str(event.data.get("result") or event.name.rpartition(".")[2])
            instruments.offers.add(1, {**attributes, "result": result})
            if item.delivery_ms is not None:
                instruments.delivery_time.record(item.delivery_ms / 1000, attributes)
            if event.name == ev.OFFER_ACCEPTED and item.rang_ms is not None:
                instruments.accept_time.record(item.rang_ms / 1000, attributes)
