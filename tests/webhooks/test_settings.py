"""`[[service.web_request]]` in the services file: good tables load, bad ones name file, key
and problem."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import ConfigError, load_catalog
from bot.domain.webhooks.model import BodyFormat, Trigger

GOOD = """
[[service]]
id = "sales"
members = ["a1@example.com"]

[[service.web_request]]
on = "accepted"
method = "post"
url = "https://crm.example.com/hooks/{task.id}?agent={session.agent}&q={param.Ticket-ID}"
headers = { Authorization = "Bearer abc", "X-Customer" = "{customer.name}" }
body = '''{"task": "{task.id}", "name": "{customer.name}", "at": "{event.at}"}'''
secret = "0123456789abcdef0123"
timeout = "5s"

[[service.web_request]]
on = "concluded"
method = "PUT"
url = "https://crm.example.com/form"
headers = { "Content-Type" = "application/x-www-form-urlencoded" }
body = "codes={session.primary_code}&tags={session.tags}"

[[service.web_request]]
on = "ringing"
method = "GET"
url = "http://127.0.0.1:9/ring/{session.id}"
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "services.toml"
    path.write_text(text, encoding="utf-8")
    return load_catalog(path)


def test_templates_load_in_order_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "services.toml"
    path.write_text(GOOD, encoding="utf-8")
    accepted, concluded, ringing = load_catalog(path).service("sales").web_requests
    assert (accepted.on, accepted.method, accepted.timeout) == (
        Trigger.ACCEPTED, "POST", timedelta(seconds=5))
    assert accepted.headers == (("Authorization", "Bearer abc"), ("X-Customer", "{customer.name}"))
    assert accepted.body_format is BodyFormat.JSON and accepted.secret
    assert "0123456789abcdef" not in repr(accepted)  # the secret stays out of reprs and logs
    assert (concluded.method, concluded.body_format) == ("PUT", BodyFormat.FORM)
    assert (ringing.method, ringing.body, ringing.timeout, ringing.secret) == (
        "GET", "", timedelta(seconds=10), "")


def test_a_service_without_templates_has_none(tmp_path: Path) -> None:
    path = tmp_path / "services.toml"
    path.write_text('[[service]]\nid = "sales"\n', encoding="utf-8")
    assert load_catalog(path).service("sales").web_requests == ()


FIRST = '[[service.web_request]]\non = "accepted"\nmethod = "post"\n'


@pytest.mark.parametrize(("change", "message"), [
    (('on = "accepted"', 'on = "answered"'),
     "web_request[0].on: 'answered' is not one of ringing, accepted, terminated, concluded"),
    (('method = "post"', 'method = "TRACE"'),
     "web_request[0].method: 'TRACE' is not one of GET, POST, PUT, PATCH, DELETE"),
    (("{session.agent}", "{session.agent_upn}"),
     "web_request[0].url: unknown placeholder {session.agent_upn}"),
    (('"Bearer abc"', '"Bearer {task.secret}"'),
     "web_request[0].headers.Authorization: unknown placeholder {task.secret}"),
    (("https://crm.example.com/hooks", "ftp://crm.example.com/hooks"),
     "web_request[0].url: 'ftp://crm.example.com/hooks/{task.id}"),
    (("https://crm.example.com/hooks", "https://{param.host}/hooks"),
     "web_request[0].url: placeholders may stand in the path, query or fragment"),
    (("https://crm.example.com/hooks", "https://crm.example.com/my hooks"),
     "web_request[0].url: must not contain spaces"),
    (("https://crm.example.com/hooks", "https://user:pw@crm.example.com/hooks"),
     "web_request[0].url: must not carry credentials"),
    (('"at": "{event.at}"}', '"at": {event.at}}'),
     "web_request[0].body: is not JSON once placeholders are filled"),
    (('secret = "0123456789abcdef0123"', 'secret = "short"'),
     "web_request[0].secret: must be at least 16 characters"),
    (('timeout = "5s"', 'timeout = "1m"'),
     "web_request[0].timeout: must be between 1s and 20s"),
    (('timeout = "5s"', 'timeout = "soon"'),
     "web_request[0].timeout: duration 'soon' is not a number"),
    (('timeout = "5s"', 'retries = 3'), "web_request[0].retries: unknown key"),
    (("?agent={session.agent}", "?token={env.CRM_TOKEN}"),
     "web_request[0].url: {env.…} may stand only in secret and in header values"),
    (('"at": "{event.at}"}', '"at": "{event.at}", "token": "{env.CRM_TOKEN}"}'),
     "web_request[0].body: {env.…} may stand only in secret and in header values"),
    (('Authorization = "Bearer abc"', '"Idempotency-Key" = "x"'),
     "web_request[0].headers.Idempotency-Key: is set by Switchboard itself"),
    (('Authorization = "Bearer abc"', '"Bad Header" = "x"'),
     "web_request[0].headers.Bad Header: is not a valid header name"),
    (('method = "GET"\nurl = "http://127.0.0.1:9/ring/{session.id}"',
      'method = "GET"\nurl = "http://127.0.0.1:9/ring/{session.id}"\nbody = "x"'),
     "web_request[2].body: a GET request has no body"),
    ((FIRST, FIRST.replace('on = "accepted"\n', '')), "web_request[0].on: is required"),
])
def test_bad_templates_name_the_file_key_and_problem(tmp_path: Path, change: tuple[str, str],
                                                     message: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, GOOD.replace(old, new, 1))
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'services.toml'}: service 'sales'.")
    assert message in text


def test_web_request_must_be_an_array_of_tables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"service 'sales'\.web_request: must be an array"):
        load(tmp_path, '[[service]]\nid = "sales"\n[service.web_request]\non = "ringing"\n')


def test_the_documented_examples_load(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    for readme in (repo / "bot" / "webhooks" / "README.md", repo / "README.md"):
        text = readme.read_text(encoding="utf-8")
        start = text.index("```toml\n[[service.web_request]]") + len("```toml\n")
        example = text[start:text.index("```", start)]
        path = tmp_path / "services.toml"
        path.write_text('[[service]]\nid = "sales"\n' + example, encoding="utf-8")
        environ = {"CRM_SIGNING_KEY": "signing-key-from-the-vault", "CRM_TOKEN": "tok"}
        [template] = load_catalog(path, environ).service("sales").web_requests
        assert template.on is Trigger.ACCEPTED and template.secret == environ["CRM_SIGNING_KEY"]


ENV_SECRETS = GOOD.replace('secret = "0123456789abcdef0123"', 'secret = "{env.CRM_SIGNING_KEY}"') \
    .replace('Authorization = "Bearer abc"', 'Authorization = "Bearer {env.CRM_TOKEN}"')
ENVIRON = {"CRM_SIGNING_KEY": "signing-key-from-the-vault", "CRM_TOKEN": "tok-0123456789"}


def test_secrets_and_headers_can_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "services.toml"
    path.write_text(ENV_SECRETS, encoding="utf-8")
    accepted, _, _ = load_catalog(path, ENVIRON).service("sales").web_requests
    assert accepted.secret == "signing-key-from-the-vault"
    assert accepted.secret_headers == (("Authorization", "Bearer tok-0123456789"),)
    # Rendered into each delivery (and stored with it): only the other headers.
    assert accepted.headers == (("X-Customer", "{customer.name}"),)
    assert "tok-0123456789" not in repr(accepted) and "vault" not in repr(accepted)


@pytest.mark.parametrize(("environ", "change", "message"), [
    ({"CRM_TOKEN": "tok"}, None,
     "web_request[0].secret: the environment variable CRM_SIGNING_KEY is not set"),
    ({**ENVIRON, "CRM_SIGNING_KEY": ""}, None,
     "web_request[0].secret: the environment variable CRM_SIGNING_KEY is not set"),
    ({**ENVIRON, "CRM_SIGNING_KEY": "short-value"}, None,
     "web_request[0].secret: must be at least 16 characters"),
    ({**ENVIRON, "CRM_TOKEN": "tok\r\nX-Injected: 1"}, None,
     "web_request[0].headers.Authorization: the environment variable CRM_TOKEN must be one line"),
    ({"CRM_SIGNING_KEY": "signing-key-from-the-vault"}, None,
     "web_request[0].headers.Authorization: the environment variable CRM_TOKEN is not set"),
    (ENVIRON, ('"Bearer {env.CRM_TOKEN}"', '"Bearer {env.CRM_TOKEN} {customer.name}"'),
     "web_request[0].headers.Authorization: takes {env.…} or other placeholders, not both"),
    (ENVIRON, ("Authorization =", '"Content-Type" ='),
     "web_request[0].headers.Content-Type: comes from the file, not the environment"),
])
def test_secrets_from_the_environment_name_the_variable_never_the_value(
        tmp_path: Path, environ: dict[str, str], change: tuple[str, str] | None,
        message: str) -> None:
    path = tmp_path / "services.toml"
    text = ENV_SECRETS if change is None else ENV_SECRETS.replace(*change)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_catalog(path, environ)
    assert message in str(caught.value)
    for value in environ.values():
        assert not value or value not in str(caught.value)
