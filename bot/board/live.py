"""Wakes this instance's open boards when a service they show changed, on any instance."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

from bot.services.context import ALL_BOARDS, BOARD_TOPIC


class Bell:
    """One open board's wake-up: rung by any change to a service it shows."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False

    def ring(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True when rung (since the last wait), False after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True


class BoardHub:
    """The bells of the boards open on this instance, by service. `notify` takes the topics of
    the store's change feed (and of this instance's own commits): `board:<service>` rings."""

    def __init__(self) -> None:
        self._bells: dict[str, set[Bell]] = defaultdict(set)
        self._closed = False

    def notify(self, topics: set[str] | None) -> None:
        """Wake the boards of the services in `topics`; None: every board (the feed lost
        track of what changed)."""
        if topics is None or ALL_BOARDS in topics:
            services: Iterable[str] = list(self._bells)
        else:
            services = [t.removeprefix(BOARD_TOPIC) for t in topics
                        if t.startswith(BOARD_TOPIC)]
        for service_id in services:
            for bell in self._bells.get(service_id, ()):
                bell.ring()

    def subscribe(self, service_ids: Iterable[str]) -> Bell:
        bell = Bell()
        bell.closed = self._closed
        for service_id in service_ids:
            self._bells[service_id].add(bell)
        return bell

    def unsubscribe(self, bell: Bell) -> None:
        for service_id in list(self._bells):
            self._bells[service_id].discard(bell)
            if not self._bells[service_id]:
                del self._bells[service_id]

    def close(self) -> None:
        """The app stops: every open board ends its stream (the page reconnects elsewhere)."""
        self._closed = True
        for bells in self._bells.values():
            for bell in bells:
                bell.closed = True
                bell.ring()

    @property
    def open_boards(self) -> int:
        return len({bell for bells in self._bells.values() for bell in bells})
