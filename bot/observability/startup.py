"""The one start-up line: version, store, services, which features are on; never a secret."""

from __future__ import annotations

import logging
from importlib import metadata

from bot.config import Settings
from bot.observability.telemetry import INSTANCE_ID, Telemetry

log = logging.getLogger("bot.startup")


def version() -> str:
    try:
        return metadata.version("switchboard")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def features(settings: Settings, telemetry: Telemetry) -> dict[str, object]:
    catalog = settings.catalog
    return {
        "teams_auth": not settings.local_mode,
        "graph": settings.graph_enabled,
        "smtp_in": settings.smtp_port > 0,
        "smtp_replies": bool(settings.smtp_relay),
        "web_requests": any(s.web_requests for s in catalog.services.values()),
        "api_keys": len(catalog.api_keys),
        "telemetry": ",".join(telemetry.exporters) or "off",
    }


def log_startup(settings: Settings, telemetry: Telemetry) -> None:
    log.info("switchboard started", extra={
        "version": version(), "instance": INSTANCE_ID, "store": settings.store,
        "services": ",".join(settings.catalog.services), "local_mode": settings.local_mode,
        **features(settings, telemetry)})
