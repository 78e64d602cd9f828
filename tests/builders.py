"""Small builders for catalogs and agents used across the tests."""

from __future__ import annotations

from typing import Any

from bot.config import parse_catalog
from bot.domain.service import Catalog


def catalog(*services: dict[str, Any], settings: dict[str, Any] | None = None) -> Catalog:
    """A catalog from services-file tables; every service defaults to members a1..a5."""
    tables = []
    for raw in services or ({"id": "sales"},):
        table = {"name": raw["id"].title(), "members": [f"a{i}@example.com" for i in range(1, 6)],
                 "modalities": ["im", "email", "external"]}
        table.update(raw)
        tables.append(table)
    data: dict[str, Any] = {"service": tables}
    if settings:
        data["settings"] = settings
    return parse_catalog(data, "test.toml")
