"""MIME parsing of inbound mail: bodies in their character sets, attachments, automatic mail."""

from __future__ import annotations

import itertools
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
# The parser costs about a millisecond of CPU per MIME part and recurses per level of nesting:
# past these a message is refused for good (554) before it is parsed.
MAX_PARTS = 250
MAX_CONTAINERS = 40  # multipart and message parts: a bound on the nesting depth, and then some
MAX_DEPTH = 12
_ID = re.compile(r"<[^<>\s]{1,250}>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTAINER = re.compile(rb"^content-type:[ \t]*(?:\r?\n[ \t]+)?(?:multipart|message)/",
                        re.IGNORECASE | re.MULTILINE)
_BOUNDARY = re.compile(rb"\bboundary[ \t]*=[ \t]*(?:\"([^\"\r\n]{1,200})\"|([^\s;\"]{1,200}))",
                       re.IGNORECASE)
_DELIMITER = re.compile(rb"^--([^\r\n]{1,202}?)[ \t]*\r?$", re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_BARE_CR = re.compile(rb"\r(?!\n)")
_ESCAPED = re.compile("[\udc80-\udcff]")  # bytes the parser could not read as ASCII
_FOLD = re.compile(r"\r?\n[ \t]*")


class Unparseable(ValueError):
    """A message this listener will never take, whenever it is sent again (554)."""


def check_shape(raw: bytes) -> None:
    """Refuse a message with more MIME parts or containers than MAX_PARTS / MAX_CONTAINERS,
    looking at the bytes only (regular expressions in C: milliseconds for the largest mail)."""
    containers = len(list(itertools.islice(_CONTAINER.finditer(raw), MAX_CONTAINERS + 1)))
    if containers > MAX_CONTAINERS:
        raise Unparseable("too deeply nested")
    boundaries = {m.group(1) or m.group(2) for m in _BOUNDARY.finditer(raw)}
    if len(boundaries) > MAX_CONTAINERS:
        raise Unparseable("too deeply nested")
    parts = 0
    for line in _DELIMITER.finditer(raw):
        found = line.group(1)
        if found in boundaries or (found.endswith(b"--") and found[:-2] in boundaries):
            parts += 1
            if parts > MAX_PARTS + containers:  # a delimiter per part, a close per container
                raise Unparseable("too many parts")


def _depth(part: Message, limit: int) -> int:
    """How deep the parts nest, counting no further than `limit` + 1."""
    if limit < 0:
        return 1
    payload = part.get_payload() if part.is_multipart() else None
    children = [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def _unfold_bare_cr(raw: bytes) -> bytes:
    """A CR alone in the header section is not a line end (the parser would take the rest of
    the headers for the body): it becomes a space."""
    end = _HEADER_END.search(raw)
    cut = end.start() if end else len(raw)
    return _BARE_CR.sub(b" ", raw[:cut]) + raw[cut:]


def parse_mail(raw: bytes, *, envelope_sender: str | None = None) -> InboundMail:
    """Parse a message as received; `envelope_sender` "" or "<>" is the null sender.

    Raises Unparseable for a message that no later attempt could take."""
    check_shape(raw)
    try:
        message = BytesParser(policy=policy.default).parsebytes(_unfold_bare_cr(raw))
        assert isinstance(message, EmailMessage)
        if _depth(message, MAX_DEPTH) > MAX_DEPTH:
            raise Unparseable("too deeply nested")
        return _read(message, envelope_sender)
    except Unparseable:
        raise
    except (RecursionError, MemoryError) as exc:
        raise Unparseable(type(exc).__name__) from None
    except Exception as exc:  # a defect of the parser on this input: the same next time
        raise Unparseable(type(exc).__name__) from exc


def _read(message: EmailMessage, envelope_sender: str | None) -> InboundMail:
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
    """Text without lone surrogates (raw 8-bit header bytes, read as by `_text`)."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    if not _ESCAPED.search(value):
        return value
    return _text(raw)


def _text(data: bytes) -> str:
    """8-bit text in no known charset: UTF-8 when it is valid UTF-8, else Windows-1252, else
    Latin-1 (which takes any byte): never a replacement character."""
    for charset in ("utf-8", "cp1252"):
        try:
            return data.decode(charset)
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")


def _header(message: Message, name: str) -> str:
    """A header decoded; the raw value when it holds 8-bit bytes (the header parser would
    turn them into replacement characters) or the parser cannot make sense of it."""
    for key, raw in message.raw_items():
        if key.lower() == name and isinstance(raw, str) and _ESCAPED.search(raw):
            return _FOLD.sub(" ", _clean(raw)).strip()
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
    """The part's text in its declared charset; without one (or ASCII declared for 8-bit
    bytes, or one that does not fit the bytes) as `_text` reads it."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding
        payload = None
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset()
    if charset and charset not in ("us-ascii", "ascii"):
        try:
            return data.decode(charset)
        except (LookupError, UnicodeError, ValueError):
            pass
    return _text(data)


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
