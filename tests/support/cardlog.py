"""Every Adaptive Card a test file's tests saw, collected for one check at the file's end."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tests.support.world import World

CARD_TYPE = "application/vnd.microsoft.card.adaptive"


class CardLog:
    """The session's collection: (label, card) pairs by test file (a node id's file part)."""

    def __init__(self) -> None:
        self._by_file: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)

    def add(self, test_id: str, source: str, card: dict[str, Any]) -> None:
        test_file, _, test = test_id.partition("::")
        self._by_file[test_file].append((f"{test} ({source})", card))

    def add_world(self, test_id: str, world: World) -> None:
        """Every card posted, updated or latest in the world's connector stand-in, and every
        card an invoke of one of its agents answered with."""
        connector = world.connector
        posted = [a for activities in connector.activities.values() for a in activities]
        for source, found in (("posted", posted), ("latest", list(connector.latest.values())),
                              ("updated", [u[2] for u in connector.updates])):
            for activity in found:
                for attachment in activity.get("attachments") or []:
                    if attachment.get("contentType") == CARD_TYPE:
                        self.add(test_id, source, attachment["content"])
        for agent in world.agents:
            for verb, card in agent.invoke_cards:
                self.add(test_id, f"invoke {verb}", card)

    def of(self, test_file: str) -> list[tuple[str, dict[str, Any]]]:
        return list(self._by_file.get(test_file, []))
