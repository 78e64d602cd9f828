"""The Cosmos DB store's index entries in meta: `queue|<service>` (which tasks wait in a
service) and `chat|<chat id>` (the sessions relayed in a chat)."""

from __future__ import annotations

import contextlib
import math

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.cosmos import exceptions as cosmos_errors

from bot.domain.session import Phase
from bot.domain.task import TaskState
from bot.services.ports import ConflictError
from bot.storage.cosmos_base import (
    META,
    Doc,
    clean,
    conflict_retried,
    read_item,
    sid,
    unavailable,
)
from bot.storage.cosmos_core import (
    UnitOfWorkCore,
)

WAITING = (TaskState.QUEUED.value, TaskState.RINGING.value)
FINISHED = tuple(s.value for s in TaskState if s.finished)
ORPHAN_GRACE = 300.0  # seconds before an index entry whose item never appeared is dropped


def queue_pk(service_id: str) -> str:
    return f"queue|{service_id}"


def chat_pk(chat_id: str) -> str:
    return f"chat|{chat_id}"


def waiting_in(doc: Doc | None, service_id: str | None = None) -> bool:
    return (doc is not None and doc["state"] in WAITING
            and (service_id is None or doc["service_id"] == service_id))


Order = tuple[int, int, str]


def is_queued(doc: Doc | None) -> bool:
    return doc is not None and doc["state"] == TaskState.QUEUED.value


class QueueIndex:
    """Entries `queue|<service>` in meta: which tasks wait (queued or ringing) in a service.

    An entry is written before the task write that makes the task wait there, and removed after a
    committed write that ends its wait, only if the entry is not newer than that write. So every
    waiting task has its entry; an entry without a waiting task (a write that lost its race) is
    skipped by readers, which drop it once the task has finished.

    An entry also carries a hint `q`: false only once a committed write (version `v`) made the
    task ring, so `queued()` (every dispatch) reads only the tasks that may be queued, not every
    ringing one. A write that makes a task queued sets `q` true before it (as the entry itself);
    `q` turns false after the committed write that made it ring (here, when this unit of work
    wrote the entry and knows its ETag; else the next reader that finds the task ringing), only
    if the entry is not newer. So a queued task's entry always says `q`; a stale `q` only costs
    a read.
    """

    async def before(self, uow: UnitOfWorkCore, cur: Doc | None, new: Doc | None) -> None:
        if new is None or not waiting_in(new):
            return
        if (waiting_in(cur, new["service_id"]) and cur is not None
                and (cur["priority"], cur["enq"]) == (new["priority"], new["enq"])
                and (is_queued(cur) or not is_queued(new))):
            return  # already waiting there: its entry exists, and says `q` if it must
        await self.ensure(uow, new)

    async def after(self, uow: UnitOfWorkCore, cur: Doc | None, new: Doc | None) -> None:
        if new is not None and new["state"] == TaskState.RINGING.value:
            known = uow.index_items.get((queue_pk(new["service_id"]), sid(new["data"]["id"])))
            if known is not None and known.get("q", True):
                await self.ringing(uow, known, int(new["version"]))
        if cur is None or not waiting_in(cur):
            return
        if waiting_in(new, cur["service_id"]):
            return
        version = int(new["version"]) if new is not None else math.inf
        await self.drop(uow, cur["service_id"], cur["data"]["id"], version)

    @staticmethod
    async def ringing(uow: UnitOfWorkCore, entry: Doc, version: int) -> None:
        """Say in the entry that its task rings since `version` (committed): one write
        conditional on the entry as read; if it changed meanwhile, a reader says it later."""
        if int(entry["v"]) > version:
            return
        marked = clean(entry) | {"v": version, "q": False}
        with contextlib.suppress(cosmos_errors.CosmosHttpResponseError, AzureError):
            written = await uow.container(META).replace_item(
                entry["id"], marked, etag=entry["_etag"],
                match_condition=MatchConditions.IfNotModified)
            uow.index_items[(str(entry["pk"]), str(entry["id"]))] = written

    @staticmethod
    async def ensure(uow: UnitOfWorkCore, task: Doc) -> None:
        meta = uow.container(META)
        task_id = str(task["data"]["id"])
        entry: Doc = {"id": sid(task_id), "pk": queue_pk(task["service_id"]), "kind": "queue",
                      "task_id": task_id, "v": task["version"], "priority": task["priority"],
                      "enq": task["enq"], "q": True}
        for _ in range(uow.options_write_retries):
            with conflict_retried():
                try:
                    uow.index_items[(entry["pk"], entry["id"])] = await meta.create_item(entry)
                    return
                except cosmos_errors.CosmosResourceExistsError:
                    pass
                found = await read_item(meta, entry["pk"], entry["id"])
                if found is None:
                    continue
                if int(found["v"]) > int(entry["v"]):
                    return  # a newer write already described the task
                uow.index_items[(entry["pk"], entry["id"])] = await meta.replace_item(
                    entry["id"], entry, etag=found["_etag"],
                    match_condition=MatchConditions.IfNotModified)
                return
        raise ConflictError(f"queue entry of task {task_id} kept changing")

    @staticmethod
    async def drop(uow: UnitOfWorkCore, service_id: str, task_id: str,
                   version: float) -> None:
        meta = uow.container(META)
        for _ in range(uow.options_write_retries):
            found = await read_item(meta, queue_pk(service_id), sid(task_id))
            if found is None or int(found["v"]) > version:
                return
            with conflict_retried():
                with contextlib.suppress(cosmos_errors.CosmosResourceNotFoundError):
                    await meta.delete_item(found["id"], partition_key=found["pk"],
                                           etag=found["_etag"],
                                           match_condition=MatchConditions.IfNotModified)
                return


class ChatIndex:
    """Entries `chat|<chat id>` in meta: the sessions relayed in a chat, with a `live` hint.

    The entry is created (live) before the first write that gives a session its chat, so every
    session of a chat has one. `live` turns false after a committed write leaves the connected
    phase; a session never returns to it, so a stale hint can only say live of a session that is
    not, which the reader checks against the session itself.
    """

    async def before(self, uow: UnitOfWorkCore, cur: Doc | None, new: Doc | None) -> None:
        if new is None or not new.get("chat_id"):
            return
        if cur is not None and cur.get("chat_id") == new["chat_id"]:
            return
        try:
            await uow.container(META).create_item(self._entry(new, live=True))
        except cosmos_errors.CosmosResourceExistsError:
            pass
        except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
            raise unavailable(exc) from exc

    async def after(self, uow: UnitOfWorkCore, cur: Doc | None, new: Doc | None) -> None:
        if new is None or not new.get("chat_id") or new["phase"] == Phase.CONNECTED.value:
            return
        if (cur is not None and cur.get("chat_id") == new["chat_id"]
                and cur["phase"] != Phase.CONNECTED.value):
            return
        try:
            await uow.container(META).upsert_item(self._entry(new, live=False))
        except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
            raise unavailable(exc) from exc

    @staticmethod
    def _entry(session: Doc, *, live: bool) -> Doc:
        session_id = str(session["data"]["id"])
        return {"id": sid(session_id), "pk": chat_pk(session["chat_id"]), "kind": "chat",
                "session_id": session_id, "offered": session["offered"], "live": live}
