"""Cosmos DB basics every store module shares: container names, item ids, times, errors,
point reads and queries."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError
from azure.cosmos import exceptions as cosmos_errors
from azure.cosmos.aio import ContainerProxy

from bot.services.ports import ConflictError, StoreUnavailable

log = logging.getLogger(__name__)

Doc = dict[str, Any]
Key = tuple[str, str]  # (container, item id)

AGENTS, TASKS, SESSIONS, EVENTS, TIMERS, MESSAGES, META = (
    "agents", "tasks", "sessions", "events", "timers", "messages", "meta")
CONTAINERS: tuple[str, ...] = (TASKS, AGENTS, SESSIONS, EVENTS, TIMERS, MESSAGES, META)
PARTITION_KEY_PATH = "/pk"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID_ESCAPES = str.maketrans({"%": "%25", "/": "%2F", "\\": "%5C", "?": "%3F", "#": "%23"})
_MAX_ID = 200


def sid(value: str) -> str:
    """A Cosmos DB item id for a domain id: `/ \\ ? #` are not allowed in ids, 255 chars at most."""
    escaped = value.translate(_ID_ESCAPES)
    if len(escaped) <= _MAX_ID and escaped.strip() == escaped and escaped:
        return escaped
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
    return f"{escaped[:_MAX_ID - 40].strip()}~{digest}"


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def clean(doc: Doc) -> Doc:
    """The document without the system properties (`_etag`, `_ts`, `_rid`...)."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


# -- errors --------------------------------------------------------------------------------------

_CONFLICT_STATUS = (409, 412)


def unavailable(exc: BaseException) -> StoreUnavailable:
    status = getattr(exc, "status_code", None)
    return StoreUnavailable(f"Cosmos DB request failed ({status or type(exc).__name__}): {exc}")


def is_conflict(exc: cosmos_errors.CosmosHttpResponseError
                | cosmos_errors.CosmosBatchOperationError) -> bool:
    """412 (ETag changed), 409 (id taken), 404 (deleted meanwhile) on a conditional write."""
    return exc.status_code in (*_CONFLICT_STATUS, 404)


@contextmanager
def conflict_retried() -> Iterator[None]:
    """One try of a conditional write inside a retry loop: a conflict (another writer came
    first) ends the try quietly so that the loop reads again; any other failure is
    `StoreUnavailable`."""
    try:
        yield
    except cosmos_errors.CosmosHttpResponseError as exc:
        if not is_conflict(exc):
            raise unavailable(exc) from exc
    except AzureError as exc:
        raise unavailable(exc) from exc


def translate(exc: BaseException, what: str) -> Exception:
    if isinstance(exc, cosmos_errors.CosmosHttpResponseError) and is_conflict(exc):
        return ConflictError(f"{what} changed since it was read ({exc.status_code})")
    return unavailable(exc)


# -- reads ---------------------------------------------------------------------------------------

async def read_item(container: ContainerProxy, pk: str, item_id: str) -> Doc | None:
    """A point read (1 RU); None when the item does not exist."""
    try:
        found: Doc = await container.read_item(item_id, partition_key=pk)
    except cosmos_errors.CosmosResourceNotFoundError:
        return None
    except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
        raise unavailable(exc) from exc
    return found


def params(**values: Any) -> list[dict[str, Any]]:
    return [{"name": f"@{name}", "value": value} for name, value in values.items()]


async def iter_query(container: ContainerProxy, sql: str, parameters: list[dict[str, Any]], *,
                     pk: str | None = None, page_size: int = 100) -> AsyncGenerator[Any, None]:
    """Run a query page by page (continuation tokens); single-partition when `pk` is given.

    A single-partition query must also say `c.pk = @pk` in its SQL: the partition key option
    routes the request, the filter keeps the query right whatever routes it.
    """
    options: dict[str, Any] = {"max_item_count": page_size}
    if pk is not None:  # without one, the async client queries across partitions
        options["partition_key"] = pk
    try:
        pages = container.query_items(sql, parameters=parameters, **options).by_page()
        async for page in pages:
            async for item in page:
                yield item
    except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
        raise unavailable(exc) from exc


async def query_all(container: ContainerProxy, sql: str, parameters: list[dict[str, Any]], *,
                    pk: str | None = None) -> list[Any]:
    return [item async for item in iter_query(container, sql, parameters, pk=pk)]
