"""The fleet store of a storage backend (`bot.services.fleet.FleetStore`), if it has one."""

from __future__ import annotations

from bot.services.fleet import FleetStore
from bot.services.ports import Store
from bot.storage.sqlite import SqliteStore


def fleet_store(store: Store) -> FleetStore | None:
    """The registry and send logs kept in `store`; None for a store that holds no fleet (one
    instance then keeps the limits alone)."""
    if isinstance(store, SqliteStore):
        if store.path == ":memory:":
            return None  # nobody else can open it
        from bot.storage.sqlite_fleet import SqliteFleet

        return SqliteFleet(store)
    try:
        from bot.storage.cosmos import CosmosStore
    except ImportError:  # pragma: no cover - azure-cosmos is a dependency
        return None
    if isinstance(store, CosmosStore):
        from bot.storage.cosmos_fleet import CosmosFleet

        return CosmosFleet(store)
    return None
