"""POST, GET and DELETE /api/v1/tasks: external tasks over HTTP, with API keys from the
services file (sent as `Authorization: Bearer <key>`, known only by their SHA-256)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from bot.domain.service import ApiKey
from bot.http import Handler, HttpError, answering, api_key, read_json_object
from bot.services import external_tasks as cases
from bot.services import privacy, privacy_requests
from bot.services.slot import EngineSlot
from bot.tasks_api.request import parse_create, parse_patch, parse_privacy

PREFIX = "/api/v1/tasks"
PRIVACY_PREFIX = "/api/v1/privacy"
MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_KEY_MAX = 255


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def status_json(status: cases.ExternalStatus) -> dict[str, Any]:
    task = status.task
    return {
        "task_id": task.id,
        "service": task.service_id,
        "state": task.state.value,
        "result": task.result.value if task.result is not None else None,
        "created_at": _time(task.created_at),
        "accepted_at": _time(task.connected_at),
        "completed_at": _time(status.completed_at),
        "ended_at": _time(task.ended_at),
    }


class TasksApi(EngineSlot):
    """Routes exist from the start; the engine is attached once the store is open."""

    def __init__(self) -> None:
        super().__init__("the task API is starting")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(PREFIX, self._wrap(self.create)),
            web.get(f"{PREFIX}/{{task_id}}", self._wrap(self.read)),
            web.delete(f"{PREFIX}/{{task_id}}", self._wrap(self.cancel)),
            web.patch(f"{PREFIX}/{{task_id}}", self._wrap(self.patch)),
            web.post(f"{PRIVACY_PREFIX}/erase", self._wrap(self.erase)),
            web.post(f"{PRIVACY_PREFIX}/export", self._wrap(self.export)),
        ]

    def _wrap(self, handler: Handler) -> Handler:
        return answering(handler, busy="The task service is busy; please retry.")

    def _key(self, request: web.Request, scope: str = "tasks") -> ApiKey:
        return api_key(request, self.engine.catalog, scope)

    @staticmethod
    def _idempotency_key(request: web.Request) -> str | None:
        value = request.headers.get(IDEMPOTENCY_HEADER)
        if value is None:
            return None
        if not 0 < len(value) <= IDEMPOTENCY_KEY_MAX or not all("!" <= c <= "~" for c in value):
            raise HttpError(400, f"{IDEMPOTENCY_HEADER} must be 1 to {IDEMPOTENCY_KEY_MAX} "
                                 "visible ASCII characters (a UUID, say).")
        return value

    async def create(self, request: web.Request) -> web.Response:
        key = self._key(request)
        idempotency_key = self._idempotency_key(request)
        body = await read_json_object(request, MAX_BODY_BYTES)
        service_id, task_request = parse_create(body)
        if not key.allows(service_id):
            raise HttpError(403, "This API key may not create tasks in this service.",
                            field="service")
        created = await self.engine.run_durably(cases.create_external_task, service_id,
                                                task_request, key_name=key.name,
                                                idempotency_key=idempotency_key)
        task = created.task
        headers = {"Location": f"{PREFIX}/{task.id}"}
        if idempotency_key is not None:
            headers[REPLAYED_HEADER] = "true" if created.replayed else "false"
        return web.json_response({"task_id": task.id, "state": task.state.value}, status=201,
                                 headers=headers)

    async def read(self, request: web.Request) -> web.Response:
        key = self._key(request)
        status = await self.engine.read(cases.external_task, request.match_info["task_id"],
                                        key.services)
        return web.json_response(status_json(status))

    async def cancel(self, request: web.Request) -> web.Response:
        key = self._key(request)
        task_id = request.match_info["task_id"]
        await self.engine.run(cases.cancel_external_task, task_id, key.services)
        status = await self.engine.read(cases.external_task, task_id, key.services)
        return web.json_response(status_json(status))

    async def patch(self, request: web.Request) -> web.Response:
        """Set or overwrite customer fields and parameters of a live task (any channel) in one
        of the key's services now; 409 once the task has ended."""
        key = self._key(request)
        task_id = request.match_info["task_id"]
        change = parse_patch(await read_json_object(request, MAX_BODY_BYTES))
        task = await self.engine.run(privacy.set_context, task_id, params=change.params,
                                     name=change.name, email=change.email, phone=change.phone,
                                     services=key.services)
        customer = task.customer
        return web.json_response({
            "task_id": task.id, "service": task.service_id, "state": task.state.value,
            "customer": {"name": customer.name, "email": customer.email,
                         "phone": customer.phone},
            "context": dict(customer.params)})

    async def erase(self, request: web.Request) -> web.Response:
        self._key(request, "privacy")
        who = parse_privacy(await read_json_object(request, MAX_BODY_BYTES))
        task_ids = await self.engine.read(privacy_requests.tasks_about, who)
        messages = 0
        for task_id in task_ids:
            messages += await self.engine.run(privacy_requests.erase_task, task_id)
        await self.engine.run(privacy_requests.record_erasure, len(task_ids), messages)
        return web.json_response({"tasks": len(task_ids), "messages": messages})

    async def export(self, request: web.Request) -> web.Response:
        self._key(request, "privacy")
        who = parse_privacy(await read_json_object(request, MAX_BODY_BYTES))
        found = await self.engine.read(privacy_requests.export, who)
        return web.json_response({"tasks": found.tasks})
