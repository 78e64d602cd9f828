"""POST /api/v1/tasks with an Idempotency-Key: a retried request gets its task back."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tasks_api.conftest import OPS_KEY, Api

BODY = {"service": "sales", "title": "Call back about 4711",
        "customer": {"name": "Jane Doe", "email": "jane@example.com"}}


async def post(api: Api, idempotency_key: str | None, body: dict[str, Any] | None = None,
               key: str | None = None) -> tuple[int, Any, dict[str, str]]:
    headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
    extra = {} if key is None else {"key": key}
    return await api.call("POST", "/api/v1/tasks", json=body or BODY, headers=headers, **extra)


async def test_a_retry_with_the_same_key_gets_the_same_task(api: Api) -> None:
    status, first, headers = await post(api, "3f1c2a9e-flow-run-1")
    assert status == 201 and headers["Idempotent-Replayed"] == "false"
    # The client did not hear the answer and sends the request again.
    status, again, headers = await post(api, "3f1c2a9e-flow-run-1")
    assert status == 201 and headers["Idempotent-Replayed"] == "true"
    assert again == first and headers["Location"] == f"/api/v1/tasks/{first['task_id']}"
    # Only one task was queued: the cap of 3 open tasks still has two places.
    for n in range(2):
        status, _, _ = await post(api, f"another-{n}")
        assert status == 201
    status, _, _ = await post(api, "one-too-many")
    assert status == 429
    # Past the cap, a retry still gets its task back rather than a refusal.
    status, replayed, _ = await post(api, "3f1c2a9e-flow-run-1")
    assert (status, replayed["task_id"]) == (201, first["task_id"])


async def test_the_retry_sees_the_task_as_it_is_now(api: Api) -> None:
    _, created, _ = await post(api, "k-1")
    assert created["state"] == "queued"  # no agent signed in
    await api.call("DELETE", f"/api/v1/tasks/{created['task_id']}")
    status, again, headers = await post(api, "k-1")
    assert (status, again["task_id"], headers["Idempotent-Replayed"]) == (
        201, created["task_id"], "true")
    assert again["state"] == "cancelled"


async def test_without_a_key_or_with_another_each_request_is_a_task(api: Api) -> None:
    _, one, headers = await post(api, None)
    assert "Idempotent-Replayed" not in headers
    _, two, _ = await post(api, None)
    _, three, _ = await post(api, "k-2")
    assert len({one["task_id"], two["task_id"], three["task_id"]}) == 3


async def test_keys_are_per_api_key_and_per_service(api: Api) -> None:
    _, crm, _ = await post(api, "shared-value")
    status, ops, headers = await post(api, "shared-value", key=OPS_KEY)
    assert status == 201 and headers["Idempotent-Replayed"] == "false"
    assert ops["task_id"] != crm["task_id"]
    # The ops key names two services: its key for a sales task cannot make a billing one.
    status, body, _ = await post(api, "shared-value", {**BODY, "service": "billing"},
                                 key=OPS_KEY)
    assert status == 422 and body["field"] == "service" and "another service" in body["error"]
    status, _ = await api.get(ops["task_id"], key=OPS_KEY)
    assert status == 200


@pytest.mark.parametrize("value", ["", "x" * 256, "has space", "tab\tinside", "naïve"])
async def test_400_for_a_key_the_api_does_not_take(api: Api, value: str) -> None:
    status, body, _ = await api.call("POST", "/api/v1/tasks", json=BODY,
                                     headers={"Idempotency-Key": value.encode().decode("latin-1")})
    assert status == 400 and "Idempotency-Key" in body["error"]
    # Nothing was queued: the cap of 3 open tasks has all its places.
    assert [(await post(api, None))[0] for _ in range(4)] == [201, 201, 201, 429]
