"""[[api_key]] and [service.external] in the services file: parsed, or an error naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import ConfigError, parse_catalog
from tests.tasks_api.conftest import CRM_KEY, digest, tasks_catalog

SERVICES = [{"id": "sales", "modalities": ["external"]},
            {"id": "chat", "modalities": ["im"]}]


def catalog(keys: Any, services: list[dict[str, Any]] | None = None) -> Any:
    return parse_catalog({"service": services or SERVICES, "api_key": keys}, "svc.toml")


def test_keys_are_parsed_and_found_by_their_hash() -> None:
    parsed = tasks_catalog()
    assert [k.name for k in parsed.api_keys] == ["crm", "ops"]
    key = parsed.api_key(digest(CRM_KEY))
    assert key is not None and key.name == "crm" and key.allows("sales")
    assert not key.allows("billing")
    assert parsed.api_key(digest("guess")) is None
    ops = parsed.api_keys[1]
    assert ops.sha256 == ops.sha256.lower()  # upper-case hex in the file is accepted
    assert parsed.service("sales").external.max_open == 100
    assert parse_catalog({"service": SERVICES}, "x").api_keys == ()


def test_max_open() -> None:
    parsed = parse_catalog({"service": [
        {"id": "a", "modalities": ["external"], "external": {"max_open": 0}},
        {"id": "b", "modalities": ["external"]},
    ]}, "svc.toml")
    assert parsed.service("a").external.max_open == 0
    assert parsed.service("b").external.max_open == 100


@pytest.mark.parametrize(("keys", "message"), [
    ({"name": "x"}, "svc.toml: api_key: declare keys as [[api_key]] tables"),
    (["x"], "svc.toml: api_key[0]: must be a table"),
    ([{"sha256": digest("k"), "services": ["sales"]}], "svc.toml: api_key[0].name: is required"),
    ([{"name": " ", "sha256": digest("k"), "services": ["sales"]}],
     "svc.toml: api_key[0].name: must not be empty"),
    ([{"name": "crm", "sha256": "my-secret-key", "services": ["sales"]}],
     "svc.toml: api_key 'crm'.sha256: must be the SHA-256 hex digest"),
    ([{"name": "crm", "key": "k", "sha256": digest("k"), "services": ["sales"]}],
     "svc.toml: api_key 'crm'.key: unknown key"),
    ([{"name": "crm", "sha256": digest("k")}], "svc.toml: api_key 'crm'.services: name at least"),
    ([{"name": "crm", "sha256": digest("k"), "services": "sales"}],
     "svc.toml: api_key 'crm'.services: must be a list of strings"),
    ([{"name": "crm", "sha256": digest("k"), "services": ["nope"]}],
     "svc.toml: api_key 'crm'.services: there is no service 'nope'"),
    ([{"name": "crm", "sha256": digest("k"), "services": ["chat"]}],
     "svc.toml: api_key 'crm'.services: service 'chat' does not take external tasks"),
    ([{"name": "crm", "sha256": digest("k"), "services": ["sales"]},
      {"name": "crm", "sha256": digest("j"), "services": ["sales"]}],
     "svc.toml: api_key 'crm'.name: duplicate name 'crm'"),
    ([{"name": "a", "sha256": digest("k"), "services": ["sales"]},
      {"name": "b", "sha256": digest("k").upper(), "services": ["sales"]}],
     "svc.toml: api_key 'b'.sha256: the same key is already declared"),
])
def test_bad_keys_name_file_key_and_problem(keys: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        catalog(keys)
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize(("external", "message"), [
    ({"max_open": -1}, "svc.toml: service 'a'.external.max_open: must be at least 0"),
    ({"max_open": "many"}, "svc.toml: service 'a'.external.max_open: must be a whole number"),
    ("x", "svc.toml: service 'a'.external: must be a table"),
])
def test_bad_max_open(external: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_catalog({"service": [{"id": "a", "external": external}]}, "svc.toml")
    assert str(error.value).startswith(message), str(error.value)
