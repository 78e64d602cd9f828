"""The fleet registry and shared send logs in the Cosmos DB `meta` container."""

from __future__ import annotations

from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.cosmos import exceptions as cosmos_errors

from bot.services.fleet import SendLog
from bot.storage.cosmos import CosmosStore
from bot.storage.cosmos_base import (
    META,
    is_conflict,
    params,
    query_all,
    read_item,
    sid,
    unavailable,
)

INSTANCES_PK = "fleet|instances"
SENDLOG_ID = "sendlog"
INSTANCE_TTL = 600  # seconds: the service removes a dead instance's row by itself
SENDLOG_TTL = 7200  # seconds: a conversation quiet for two hours needs no log


def sendlog_pk(key: str) -> str:
    return f"sendlog|{sid(key)}"


class CosmosFleet:
    """`bot.services.fleet.FleetStore` on Cosmos DB: instances are documents of the partition
    `fleet|instances` (an upsert of its own row, a single-partition query for the live ones);
    a conversation's send log is one document in `sendlog|<conversation>`, replaced only if
    its ETag is still the one read (a create for a new one: a 409 loses the same way)."""

    def __init__(self, store: CosmosStore) -> None:
        self.store = store

    async def heartbeat(self, instance_id: str, now: float, live_for: float) -> list[str]:
        meta = self.store.container(META)
        try:
            await meta.upsert_item({"id": sid(instance_id), "pk": INSTANCES_PK,
                                    "instance": instance_id, "seen": now, "ttl": INSTANCE_TTL})
        except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
            raise unavailable(exc) from exc
        rows = await query_all(meta, "SELECT c.instance, c.seen FROM c WHERE c.pk = @pk",
                               params(pk=INSTANCES_PK), pk=INSTANCES_PK)
        return sorted(str(r["instance"]) for r in rows if float(r["seen"]) > now - live_for)

    async def leave(self, instance_id: str) -> None:
        try:
            await self.store.container(META).delete_item(sid(instance_id),
                                                         partition_key=INSTANCES_PK)
        except cosmos_errors.CosmosResourceNotFoundError:
            return
        except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
            raise unavailable(exc) from exc

    async def read_sendlog(self, key: str) -> SendLog | None:
        found = await read_item(self.store.container(META), sendlog_pk(key), SENDLOG_ID)
        if found is None:
            return None
        return SendLog(times=[float(t) for t in found.get("t", [])],
                       buckets=[[float(b), float(n)] for b, n in found.get("b", [])],
                       version=int(found.get("version", 0)), etag=str(found.get("_etag", "")))

    async def write_sendlog(self, key: str, log: SendLog, now: float) -> bool:
        meta = self.store.container(META)
        doc: dict[str, Any] = {"id": SENDLOG_ID, "pk": sendlog_pk(key), "t": log.times,
                               "b": log.buckets, "version": log.version + 1, "updated": now,
                               "ttl": SENDLOG_TTL}
        try:
            if not log.etag:
                written = await meta.create_item(doc)
            else:
                written = await meta.replace_item(SENDLOG_ID, doc, etag=log.etag,
                                                  match_condition=MatchConditions.IfNotModified)
        except cosmos_errors.CosmosHttpResponseError as exc:
            if is_conflict(exc):
                return False
            raise unavailable(exc) from exc
        except AzureError as exc:
            raise unavailable(exc) from exc
        log.version += 1
        log.etag = str(written.get("_etag", ""))
        return True
