"""Email tasks: an inbound message, which mail is automatic, and whom a reply goes to."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

EMAIL_FAILED = "email.failed"  # automatic mail (auto-reply, bounce, bulk, loop): no task
EMAIL_REPLY_QUEUED = "email.reply_queued"
EMAIL_REPLY_SENT = "email.reply_sent"
EMAIL_REPLY_FAILED = "email.reply_failed"

MAX_REFERENCES = 20  # message ids kept in References, the newest

_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw)\s*:", re.IGNORECASE)
_BULK = {"bulk", "junk", "list"}


@dataclass(frozen=True)
class Attachment:
    name: str
    size: int  # bytes, decoded
    content_type: str

    def label(self) -> str:
        """As an agent sees it: "report.pdf (12 KB)"."""
        return f"{self.name} ({size_label(self.size)})"


@dataclass(frozen=True)
class InboundMail:
    """A received message as the email channel parsed it; the HTML is already sanitized."""

    sender: str  # address
    sender_name: str = ""
    reply_to: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    subject: str = ""
    text: str = ""
    html: str = ""
    attachments: tuple[Attachment, ...] = ()
    message_id: str = ""
    references: tuple[str, ...] = ()
    truncated: bool = False
    automatic: str | None = None  # why no task is created: auto_reply, bounce, bulk, loop

    @property
    def sender_label(self) -> str:
        return f"{self.sender_name} <{self.sender}>" if self.sender_name else self.sender


def automatic_reason(headers: Mapping[str, str], content_type: str, *,
                     null_sender: bool) -> str | None:
    """Why a message is automatic (RFC 3834, RFC 3464), or None for mail from a person.

    `headers` has lower-case names. Auto-Submitted other than "no" is an auto-reply or an
    automatic notice; a delivery report or a null envelope sender is a bounce; Precedence
    bulk, junk or list is bulk mail.
    """
    if content_type.lower() == "multipart/report" or null_sender:
        return "bounce"
    auto = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return "auto_reply"
    if headers.get("precedence", "").strip().lower() in _BULK:
        return "bulk"
    return None


def reply_subject(subject: str) -> str:
    """The subject of a reply: "Re: " once, never stacked."""
    cleaned = subject.strip()
    if _REPLY_PREFIX.match(cleaned):
        return cleaned
    return f"Re: {cleaned}" if cleaned else "Re: your message"


def others(to: Iterable[str], cc: Iterable[str], *, exclude: Iterable[str]) -> tuple[str, ...]:
    """Who else a Reply all reaches: To and Cc less our addresses and the excluded ones."""
    skip = {address.lower() for address in exclude}
    kept: dict[str, str] = {}
    for address in (*to, *cc):
        key = address.strip().lower()
        if key and key not in skip and key not in kept:
            kept[key] = address.strip()
    return tuple(kept.values())


def references(previous: Iterable[str], message_id: str) -> tuple[str, ...]:
    """The References of a reply: the original's, then its Message-ID; the newest kept."""
    chain = [ref for ref in previous if ref]
    if message_id and message_id not in chain:
        chain.append(message_id)
    return tuple(chain[-MAX_REFERENCES:])


def task_id_for(service_id: str, message_id: str) -> str | None:
    """A task id fixed by the Message-ID: a message delivered twice becomes one task."""
    if not message_id:
        return None
    return hashlib.sha256(f"{service_id}\n{message_id}".encode()).hexdigest()[:32]


def size_label(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def preview(text: str, limit: int = 500) -> str:
    """The start of the text on one line, whitespace collapsed."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
