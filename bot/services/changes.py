"""Follows the store's change feed and wakes this instance's chats that other instances wrote to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.services.ports import ChangeFeed, ConflictError, StoreUnavailable

log = logging.getLogger(__name__)

OUTAGE_PAUSE = 1.0  # seconds between polls while the store cannot be read


async def follow_changes(feed: ChangeFeed, notify: Callable[[set[str] | None], None]) -> None:
    """Poll the feed every `feed.every` seconds for as long as the app runs (one loop per
    instance, whatever the number of open chats); `notify(None)` when it lost track."""
    while True:
        try:
            topics = await feed.poll()
        except (StoreUnavailable, ConflictError) as exc:
            log.warning("change feed not read", extra={"error": type(exc).__name__})
            await asyncio.sleep(OUTAGE_PAUSE)
            continue
        if topics is None or topics:
            notify(topics)
        await asyncio.sleep(feed.every)
