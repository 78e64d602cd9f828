"""Log capture on the root logger: the records, and each formatted as production does (JSON)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from bot.logs import JsonFormatter


class CapturedLogs(logging.Handler):
    """Keeps every record and its JSON line, formatted when it was emitted."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))

    def entries(self, message: str) -> list[dict[str, object]]:
        """The JSON entries whose message is `message`."""
        found = [json.loads(line) for line in self.lines]
        return [entry for entry in found if entry["msg"] == message]


@contextmanager
def capturing_logs(level: int = logging.DEBUG) -> Iterator[CapturedLogs]:
    """The root logger at `level` with a `CapturedLogs` attached; both undone on exit."""
    handler = CapturedLogs()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
