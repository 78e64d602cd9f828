"""Rendering: every placeholder escaped for where it stands; the signature a receiver checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

from bot.domain.agent import Agent
from bot.domain.customer import Customer
from bot.domain.service import Modality
from bot.domain.session import Phase, Session, SessionResult
from bot.domain.task import Task
from bot.domain.webhooks.model import Trigger
from bot.domain.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signature, verify
from bot.domain.webhooks.template import FIELDS, Rendered, render, unknown_placeholders, values_for
from tests.builders import catalog

AT = datetime(2026, 11, 2, 9, 0, 5, 250000, tzinfo=UTC)
NASTY = 'Zoë "Z" O\'Hara & Co/?#=%\n\t</script>{task.id}'


def rendered(template: dict[str, object], customer: Customer) -> tuple[dict[str, str], Rendered]:
    service = catalog({"id": "sales", "name": "Sales", "web_request": [template]}) \
        .service("sales")
    task = Task(id="t1", service_id="sales", modality=Modality.IM, created_at=AT,
                enqueued_at=AT, customer=customer)
    session = Session(id="s1", task_id="t1", agent_id="29:agent", service_id="sales",
                      modality=Modality.IM, offered_at=AT, queued_at=AT, ring_until=AT,
                      phase=Phase.ENDED, result=SessionResult.ACCEPTED, primary_code="Sale",
                      tags=["vip", "callback"])
    agent = Agent(id="29:agent", name="Alex Wilber", upn="alexw@example.com")
    values = values_for(task=task, service=service, session=session, agent=agent,
                        customer=customer, trigger=Trigger.CONCLUDED, at=AT, key="k-1")
    return values, render(service.web_requests[0], values, customer.params)


def test_every_field_has_a_value_and_ids_are_what_they_say() -> None:
    values, _ = rendered({"on": "concluded", "url": "https://x.example/"}, Customer(name="J"))
    assert set(values) == set(FIELDS)
    assert values["session.agent"] == "alexw@example.com"
    assert values["session.result"] == "accepted"
    assert values["session.tags"] == "vip, callback"
    assert values["event.name"] == "concluded"
    assert values["event.at"] == "2026-11-02T09:00:05.250Z"
    assert values["delivery.id"] == "k-1"


def test_url_values_are_percent_encoded_and_cannot_add_parts() -> None:
    customer = Customer(name=NASTY, email="a+b@example.org", params={"Ticket-ID": "#7 & 8"})
    _, request = rendered({"on": "concluded", "method": "GET",
                           "url": "https://crm.example/c/{customer.name}?e={customer.email}"
                                  "&t={param.Ticket-ID}&missing={param.nope}#{task.id}"},
                          customer)
    parts = urlsplit(request.url)
    assert parts.netloc == "crm.example"
    assert unquote(parts.path.removeprefix("/c/")) == NASTY
    assert "/" not in parts.path.removeprefix("/c/")
    assert parse_qs(parts.query, keep_blank_values=True) == {
        "e": ["a+b@example.org"], "t": ["#7 & 8"], "missing": [""]}
    assert parts.fragment == "t1"
    # A value is never read as a placeholder again: "{task.id}" in the name stays literal.
    assert "%7Btask.id%7D" in request.url


def test_json_body_values_are_json_escaped_and_the_body_stays_json() -> None:
    customer = Customer(name=NASTY, params={"note": "line1\nline2 \u2028 \\ \""})
    _, request = rendered({
        "on": "concluded", "url": "https://x.example/",
        "body": '{"name": "{customer.name}", "note": "{param.note}", '
                '"nested": {"tags": "{session.tags}", "literal": "{not.a.placeholder}"}}'},
        customer)
    document = json.loads(request.body)
    assert document == {"name": NASTY, "note": "line1\nline2 \u2028 \\ \"",
                        "nested": {"tags": "vip, callback", "literal": "{not.a.placeholder}"}}
    assert request.headers == {
        "Content-Type": "application/json; charset=utf-8"}


def test_form_body_values_are_form_encoded() -> None:
    _, request = rendered({
        "on": "concluded", "method": "PUT", "url": "https://x.example/",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "body": "name={customer.name}&code={session.primary_code}"}, Customer(name=NASTY))
    assert parse_qs(request.body) == {"name": [NASTY], "code": ["Sale"]}


def test_header_values_cannot_start_a_new_header() -> None:
    _, request = rendered({"on": "concluded", "url": "https://x.example/",
                           "headers": {"X-Name": "{customer.name}", "X-Fixed": "a b"}},
                          Customer(name="Eve\r\nX-Admin: yes"))
    assert request.headers == {"X-Name": "Eve  X-Admin: yes", "X-Fixed": "a b"}


def test_text_bodies_take_values_as_they_are() -> None:
    _, request = rendered({"on": "concluded", "url": "https://x.example/",
                           "headers": {"Content-Type": "text/plain"},
                           "body": "Hello {customer.name}"}, Customer(name=NASTY))
    assert request.body == f"Hello {NASTY}"


def test_unknown_placeholders_are_found() -> None:
    assert unknown_placeholders("{task.id}{task.nope}{param.ok}{param.}{x.y}{session.agent}") \
        == ["{task.nope}", "{param.}"]


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = '{"a": "ü"}'.encode()
    headers = sign("k" * 16, 1_700_000_000, body)
    expected = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: "1700000000", SIGNATURE_HEADER: "sha256=" + expected}
    assert verify("k" * 16, headers, body, now=1_700_000_100)
    assert not verify("k" * 16, headers, body + b" ", now=1_700_000_100)
    assert not verify("x" * 16, headers, body, now=1_700_000_100)
    assert not verify("k" * 16, headers, body, now=1_700_000_000 + 301)  # too old: a replay
    assert not verify("k" * 16, {}, body, now=1_700_000_000)
    assert signature("k" * 16, 1, b"") != signature("k" * 16, 2, b"")
