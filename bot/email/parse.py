"""MIME parsing of inbound mail: bodies in their character sets, attachments, automatic mail."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses

from bot.domain.mail import Attachment, InboundMail, automatic_reason
from bot.email.sanitize import html_text, sanitize_html

MAX_TEXT = 32_000  # characters of plain text kept on the task
MAX_HTML = 64_000  # characters of sanitized HTML kept on the task
MAX_RAW_HTML = 1_000_000  # HTML looked at before sanitizing
MAX_ATTACHMENTS = 50
MAX_NAME = 200
MAX_ADDRESSES = 100
_ID = re.compile(r"<[^<>\s]{1,250}>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_mail(raw: bytes, *, envelope_sender: str | None = None) -> InboundMail:
    """Parse a message as received; `envelope_sender` "" or "<>" is the null sender."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    sender_name, sender = _first_address(_header(message, "from"))
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    text = _content(plain) if plain is not None else ""
    html = sanitize_html(_content(rich)[:MAX_RAW_HTML], MAX_HTML) if rich is not None else ""
    if not text.strip() and html:
        text = html_text(html)
    text = text.rstrip()
    truncated = len(text) > MAX_TEXT
    headers = {name: _header(message, name) for name in (
        "auto-submitted", "precedence", "x-autoreply", "x-autorespond")}
    automatic = automatic_reason(headers, message.get_content_type(),
                                 null_sender=envelope_sender in ("", "<>"))
    if automatic is None and (headers["x-autoreply"] or headers["x-autorespond"]):
        automatic = "auto_reply"
    references = _ids(_header(message, "references")) or _ids(_header(message, "in-reply-to"))
    message_ids = _ids(_header(message, "message-id"))
    return InboundMail(
        sender=sender,
        sender_name=sender_name,
        reply_to=tuple(a for _, a in _addresses(_header(message, "reply-to"))),
        to=tuple(a for _, a in _addresses(_header(message, "to"))),
        cc=tuple(a for _, a in _addresses(_header(message, "cc"))),
        subject=_CONTROL.sub(" ", _header(message, "subject")).strip()[:998],
        text=text[:MAX_TEXT],
        html=html,
        attachments=tuple(_attachments(message, {id(plain), id(rich)}))[:MAX_ATTACHMENTS],
        message_id=message_ids[0] if message_ids else "",
        references=references,
        truncated=truncated,
        automatic=automatic,
    )


def _clean(value: str) -> str:
    """Text without lone surrogates (raw 8-bit header bytes are read as UTF-8)."""
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")


def _header(message: Message, name: str) -> str:
    """A header decoded; the raw value when the parser cannot make sense of it."""
    try:
        value = message.get(name)
        return _clean(str(value)) if value is not None else ""
    except Exception:  # the header parser has failed on hostile input before
        for key, raw in message.raw_items():
            if key.lower() == name:
                return _clean(str(raw))
        return ""


def _addresses(value: str) -> list[tuple[str, str]]:
    found = []
    for name, address in getaddresses([value])[:MAX_ADDRESSES]:
        address = _CONTROL.sub("", address).strip()
        if "@" in address and len(address) <= 320:
            found.append((_CONTROL.sub(" ", name).strip()[:MAX_NAME], address))
    return found


def _first_address(value: str) -> tuple[str, str]:
    found = _addresses(value)
    return found[0] if found else ("", "")


def _ids(value: str) -> tuple[str, ...]:
    return tuple(_ID.findall(value))


def _content(part: Message) -> str:
    """A text part decoded with its charset; unknown charsets are read as UTF-8."""
    return _decoded(part).replace("\r\n", "\n").replace("\r", "\n")


def _decoded(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
        if isinstance(content, str):
            return _clean(content)
    except (LookupError, UnicodeError, ValueError, AssertionError):
        pass
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    try:
        return data.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _attachments(part: Message, bodies: set[int]) -> list[Attachment]:
    """Files of the message: leaves that are not the bodies nor embedded resources."""
    if id(part) in bodies:
        return []
    kind = part.get_content_type()
    if kind == "message/rfc822":
        return [Attachment(_name(part) or "forwarded message.eml", _size(part), kind)]
    if part.is_multipart():
        found: list[Attachment] = []
        for child in part.get_payload():
            if isinstance(child, Message):
                found += _attachments(child, bodies)
            if len(found) >= MAX_ATTACHMENTS:
                break
        return found
    name = _name(part)
    disposition = part.get_content_disposition()
    if not name:
        if disposition != "attachment" and (part.get_content_maintype() == "text"
                                            or part.get("content-id")):
            return []  # an alternative body, or an image the HTML embeds
        name = f"unnamed ({kind})"
    return [Attachment(name, _size(part), kind)]


def _name(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # a broken RFC 2231 parameter
        name = ""
    name = _CONTROL.sub("", _clean(name)).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:MAX_NAME]


def _size(part: Message) -> int:
    try:
        if part.get_content_type() == "message/rfc822":
            return len(part.as_bytes())
        payload = part.get_payload(decode=True)
        return len(payload) if isinstance(payload, bytes) else 0
    except Exception:  # a broken transfer encoding
        return 0
