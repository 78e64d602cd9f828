"""Showing untrusted text as text: markdown escaping, truncation and URL checks."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

ELLIPSIS = "…"

# Length limits (characters, before escaping) for the kinds of text a card shows.
NAME = 120
LINE = 300
PARAGRAPH = 1_500
URL = 2_048

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Every ASCII punctuation character TextBlock markdown (bold, italic, links, code,
# strikethrough, headings, lists) or the DATE()/TIME() functions ({{...}}) give a meaning.
_PUNCTUATION = re.compile(r"([\\*_\[\]()#`~{])")
_LINE_MARKER = re.compile(r"^([ \t]*)([-+=])", re.MULTILINE)
_NUMBERED = re.compile(r"^([ \t]*\d+)([.)])", re.MULTILINE)
_ENTITY = re.compile(r"&(?=#?\w+;)")
# "<" and ">" could open HTML or autolinks or a block quote: show look-alikes instead.
_ANGLES = str.maketrans({"<": "‹", ">": "›"})


# Anything a step of `escape` would change (\r is a control character); most names and lines
# have none of it.
_SPECIAL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\\*_\[\]()#`~{&<>]|^[ \t]*(?:[-+=]|\d+[.)])",
                      re.MULTILINE)


def plain(text: str) -> str:
    """Escape `text` so that a TextBlock (or Fact) shows it literally, never as markdown."""
    return text if _SPECIAL.search(text) is None else escape(text)


def escape(text: str) -> str:
    """`plain` without its shortcut for text with nothing to escape."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _PUNCTUATION.sub(r"\\\1", text)
    text = _ENTITY.sub(r"\\&", text)
    text = _LINE_MARKER.sub(r"\1\\\2", text)
    text = _NUMBERED.sub(r"\1\\\2", text)
    return text.translate(_ANGLES)


def truncate(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + ELLIPSIS


def shown(text: str, limit: int) -> str:
    """Untrusted text as a TextBlock shows it: truncated to `limit`, then escaped."""
    return plain(truncate(text, limit))


Show = Callable[[str, int], str]
"""How a row builder shows untrusted text: `shown` on a card, `as_is` on a web page."""


def as_is(text: str, limit: int) -> str:
    """Untrusted text for a web page, which sets it as text (never as markup) itself."""
    return text


def cut_escaped(text: str, limit: int) -> str:
    """Shorten already escaped text without leaving a dangling backslash."""
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - 1)]
    trailing = len(head) - len(head.rstrip("\\"))
    if trailing % 2:
        head = head[:-1]
    return head + ELLIPSIS


def safe_url(url: str | None) -> str | None:
    """The URL when it is an absolute http(s) URL of sane length, else None."""
    if not url or len(url) > URL or any(c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url
