"""MIME parsing, sanitizing, the reply's rules and the SMTP settings, without a network."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from bot.config import ConfigError, Settings, load_settings, parse_relay
from bot.domain.mail import others, references, reply_subject, size_label, task_id_for
from bot.email.parse import MAX_HTML, parse_mail
from bot.email.relay import build_reply
from bot.email.sanitize import html_text, sanitize_html

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


def test_related_images_are_not_attachments_but_forwarded_mail_is() -> None:
    related = EmailMessage()
    related.set_content('<p>Logo: <img src="cid:logo"></p>', subtype="html")
    related.add_related(PNG, maintype="image", subtype="png", cid="<logo>")
    forwarded = EmailMessage()
    forwarded["Subject"] = "Original"
    forwarded.set_content("the original text")
    outer = EmailMessage()
    outer["From"] = "jane@example.net"
    outer.make_mixed()
    outer.attach(related)
    outer.add_attachment(forwarded)
    parsed = parse_mail(outer.as_bytes())
    assert parsed.text == "Logo:"
    assert '<img src="cid:logo">' in parsed.html
    assert [(a.name, a.content_type) for a in parsed.attachments] == [
        ("forwarded message.eml", "message/rfc822")]


def test_an_unnamed_attachment_gets_a_name_and_paths_are_cut() -> None:
    message = EmailMessage()
    message["From"] = "jane@example.net"
    message.set_content("see attached")
    message.add_attachment(b"\x00\x01", maintype="application", subtype="octet-stream",
                           disposition="attachment")
    message.add_attachment(b"x", maintype="application", subtype="zip",
                           filename="..\\..\\evil/../secret.zip")
    names = [a.name for a in parse_mail(message.as_bytes()).attachments]
    assert names == ["unnamed (application/octet-stream)", "secret.zip"]


def test_an_unknown_charset_is_read_as_utf_8() -> None:
    raw = (b"From: x@example.net\r\nContent-Type: text/plain; charset=x-martian\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n")
    assert parse_mail(raw).text == "Grüße"


@pytest.mark.parametrize(("body", "text"), [
    ("Grüße aus Köln – 5 €".encode(), "Grüße aus Köln – 5 €"),
    ("Grüße aus Köln – 5 €".encode("cp1252"), "Grüße aus Köln – 5 €"),
    (b"Caf\xe9 \x81\x8d", "Café \x81\x8d"),  # not UTF-8, not Windows-1252: Latin-1
])
@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=us-ascii", None])
def test_an_8bit_body_without_a_charset_is_utf_8_else_windows_1252_else_latin_1(
        body: bytes, text: str, content_type: str | None) -> None:
    """Issue #19 item 8: never a replacement character."""
    head = b"From: x@example.net\r\nSubject: 8 bit\r\nContent-Transfer-Encoding: 8bit\r\n"
    if content_type:
        head += b"MIME-Version: 1.0\r\nContent-Type: " + content_type.encode() + b"\r\n"
    parsed = parse_mail(head + b"\r\n" + body + b"\r\n")
    assert parsed.text == text
    assert "\ufffd" not in parsed.text


def test_8bit_header_bytes_are_read_like_the_body() -> None:
    raw = ("From: Jürg <j@example.ch>\r\nSubject: Grüße\r\n\r\nhi\r\n").encode("latin-1")
    parsed = parse_mail(raw)
    assert (parsed.subject, parsed.sender_name) == ("Grüße", "Jürg")


def test_a_bare_cr_in_a_header_keeps_the_headers_that_follow() -> None:
    raw = (b"Subject: first\rsecond\r\nFrom: Jane <jane@example.net>\r\n"
           b"Message-ID: <cr@example.net>\r\nTo: sales@example.com\r\n\r\nThe body.\r\n")
    parsed = parse_mail(raw)
    assert parsed.sender == "jane@example.net"
    assert parsed.message_id == "<cr@example.net>"
    assert parsed.text == "The body."
    assert parsed.subject == "first second"


def test_broken_headers_do_not_stop_the_parser() -> None:
    raw = (b"From: \"unterminated <x@example.net\r\nTo: ,,,@@\r\nSubject: =?utf-8?b?!!!?=\r\n"
           b"Content-Type: multipart/mixed\r\n\r\nno boundary at all\r\n")
    parsed = parse_mail(raw)
    assert parsed.automatic is None
    assert parsed.to == ()


def test_the_null_sender_is_a_bounce() -> None:
    raw = b"From: someone@example.net\r\nSubject: hi\r\n\r\nhello"
    assert parse_mail(raw, envelope_sender="").automatic == "bounce"
    assert parse_mail(raw, envelope_sender="someone@example.net").automatic is None


def test_huge_html_is_cut_and_still_sanitized() -> None:
    html = "<p>" + "<a href=\"https://x.example/\" onclick=\"x()\">link</a> " * 5_000 + "</p>"
    cleaned = sanitize_html(html, MAX_HTML)
    assert len(cleaned) <= MAX_HTML + 100
    assert "onclick" not in cleaned and cleaned.count("<a ") == cleaned.count("</a>")


def test_html_text_keeps_paragraphs_and_drops_hidden_content() -> None:
    html = sanitize_html("<style>p{}</style><p>One&amp;two</p><div>Three<br>Four</div>"
                         "<table><tr><td>a</td><td>b</td></tr></table>", 10_000)
    assert html_text(html) == "One&two\n\nThree\nFour\n\na b"


def test_reply_rules() -> None:
    assert reply_subject("Refund") == "Re: Refund"
    assert reply_subject("RE: Refund") == "RE: Refund"
    assert reply_subject("AW: Angebot") == "AW: Angebot"
    assert reply_subject("") == "Re: your message"
    assert others(["Sales@Example.com", "dana@x.org"], ["DANA@x.org", "bob@x.org"],
                  exclude={"sales@example.com"}) == ("dana@x.org", "bob@x.org")
    chain = references([f"<{i}@x>" for i in range(30)], "<new@x>")
    assert len(chain) == 20 and chain[-1] == "<new@x>"
    assert task_id_for("sales", "<a@x>") == task_id_for("sales", "<a@x>")
    assert task_id_for("sales", "<a@x>") != task_id_for("support", "<a@x>")
    assert task_id_for("sales", "") is None
    assert [size_label(n) for n in (5, 20_480, 3 * 1024 * 1024)] == ["5 B", "20 KB", "3.0 MB"]


def test_a_reply_cannot_carry_extra_headers() -> None:
    message = build_reply({
        "from_name": "Sales, EMEA", "sender": "sales@example.com", "to": ["jane@example.net"],
        "cc": [],
        "subject": "Re: hi\r\nBcc: victim@example.org", "message_id": "<r@example.com>",
        "in_reply_to": "<m@x>\r\nX-Evil: 1", "references": ["<m@x>"],
        "date": "2026-11-02T09:00:00+00:00", "body": "Hello"})
    raw = message.as_string()
    assert "\nBcc:" not in raw and "\nX-Evil:" not in raw
    assert message["Subject"] == "Re: hi Bcc: victim@example.org"
    assert 'From: "Sales, EMEA" <sales@example.com>' in raw


@pytest.mark.parametrize(("environ", "port"), [
    ({}, 2525),
    ({"SWITCHBOARD_SMTP_PORT": ""}, 2525),
    ({"MicrosoftAppId": "app", "SWITCHBOARD_PUBLIC_HOST": "bot.example.com",
      "MicrosoftAppTenantId": "t"}, 0),
    ({"SWITCHBOARD_SMTP_PORT": "0"}, 0),
    ({"SWITCHBOARD_SMTP_PORT": "25"}, 25),
    ({"MicrosoftAppId": "app", "SWITCHBOARD_PUBLIC_HOST": "bot.example.com",
      "MicrosoftAppTenantId": "t", "SWITCHBOARD_SMTP_PORT": "2526"}, 2526),
])
def test_the_smtp_port(environ: dict[str, str], port: int) -> None:
    assert load_settings(environ).smtp_port == port
    assert Settings().smtp_port == 0  # built by hand (tests, embedding): no listener


@pytest.mark.parametrize("value", ["smtp", "-1", "70000", "2525x"])
def test_a_bad_smtp_port_stops_start_up(value: str) -> None:
    with pytest.raises(ConfigError, match="SWITCHBOARD_SMTP_PORT"):
        load_settings({"SWITCHBOARD_SMTP_PORT": value})


def test_the_relay_setting() -> None:
    assert load_settings({"SWITCHBOARD_SMTP_RELAY": "mail.example.com:587"}).smtp_relay == \
        "mail.example.com:587"
    assert parse_relay("mail.example.com") == ("mail.example.com", 25)
    assert parse_relay("[::1]:2525") == ("::1", 2525)
    for bad in ("mail.example.com:x", "user@mail:25", "[::1", "host:0", "a b:25"):
        with pytest.raises(ConfigError, match="SWITCHBOARD_SMTP_RELAY"):
            load_settings({"SWITCHBOARD_SMTP_RELAY": bad})


def test_the_card_and_the_use_case_agree_on_the_reply_length() -> None:
    from bot.cards.outcomes import MAX_REPLY
    from bot.services.mail import MAX_REPLY_LENGTH

    assert MAX_REPLY == MAX_REPLY_LENGTH
