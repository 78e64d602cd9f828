"""HTML from mail made safe to keep (nh3), and its readable text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

# nh3's defaults drop <script>, <style> and their content, every on* attribute and
# javascript: URLs; links get rel="noopener noreferrer". cid: keeps inline images addressable.
_CLEANER = nh3.Cleaner(url_schemes={"http", "https", "mailto", "cid"})
_BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
           "pre", "table", "ul", "ol", "hr", "dt", "dd", "section", "article", "header",
           "footer"}
_LINES = {"br", "li", "tr", "dt", "dd"}  # a new line, not a paragraph
_SPACES = re.compile(r"[ \t\r\f\v\xa0]+")
_GAPS = re.compile(r"\n{3,}")


def sanitize_html(html: str, limit: int) -> str:
    """Sanitized HTML of at most about `limit` characters (a cut is sanitized again)."""
    cleaned = _CLEANER.clean(html)
    if len(cleaned) > limit:
        cleaned = _CLEANER.clean(cleaned[:limit])
    return cleaned


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS and tag not in _LINES:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(html: str) -> str:
    """The text a reader sees in (already sanitized) HTML: blocks on their own lines."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
    return _GAPS.sub("\n\n", "\n".join(lines)).strip()
