"""plain(), truncation and URL checks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cards.text import ELLIPSIS, cut_escaped, escape, plain, safe_url, shown, truncate

HOSTILE = "**bold** [x](http://evil) <script>alert(1)</script>"
# CommonMark: a backslash before ASCII punctuation shows the punctuation itself.
_UNESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_SPECIAL = set("\\*_[]()#`~{")


def unescape(shown_text: str) -> str:
    return _UNESCAPE.sub(r"\1", shown_text)


def escaped_at(text: str, index: int) -> bool:
    """Whether text[index] is preceded by an odd number of backslashes."""
    run = len(text[:index]) - len(text[:index].rstrip("\\"))
    return run % 2 == 1


def test_hostile_text_is_shown_literally() -> None:
    result = plain(HOSTILE)
    assert result == (r"\*\*bold\*\* \[x\]\(http://evil\) ‹script›alert\(1\)‹/script›")
    assert "<" not in result and ">" not in result


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("- item", r"\- item"),
        ("  + item", r"  \+ item"),
        ("1. first\n22) second", "1\\. first\n22\\) second"),
        ("# title", r"\# title"),
        ("> quote", "› quote"),
        ("===", r"\==="),
        ("a_b ~c~ `d`", r"a\_b \~c\~ \`d\`"),
        ("back\\slash", "back\\\\slash"),
        ("&amp; & &#60;", r"\&amp; & &\#60;"),
        ("{{DATE(2017-02-14T06:08:39Z, SHORT)}}", r"\{\{DATE\(2017-02-14T06:08:39Z, SHORT\)}}"),
        ("line\r\nnext\rlast", "line\nnext\nlast"),
        ("bell\x07tab\tend", "bell tab\tend"),
        ("Plain text, 3.5 stars!", "Plain text, 3.5 stars!"),
    ],
)
def test_plain_escapes(raw: str, expected: str) -> None:
    assert plain(raw) == expected


@given(st.text())
def test_plain_shows_the_original_text(raw: str) -> None:
    """Unescaped as CommonMark does it, the result is the input (angles and controls aside)."""
    normalized = re.sub(
        r"[\x00-\x08\x0b-\x1f\x7f]", " ", raw.replace("\r\n", "\n").replace("\r", "\n")
    )
    assert unescape(plain(raw)) == normalized.translate(str.maketrans("<>", "‹›"))


@given(st.text(alphabet=st.characters(codec="ascii") | st.sampled_from("‹›😀é")))
def test_plain_leaves_no_markup(raw: str) -> None:
    result = plain(raw)
    assert "<" not in result and ">" not in result
    for index, char in enumerate(result):
        if char in _SPECIAL and not escaped_at(result, index):
            assert char == "\\" and escaped_at(result, index + 1)
    for line in result.split("\n"):
        assert not re.match(r"[ \t]*([-+=#]|\d+[.)])", line)


def test_truncate() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("exactly10!", 10) == "exactly10!"
    cut = truncate("a much longer text", 10)
    assert cut.endswith(ELLIPSIS) and len(cut) <= 10
    assert shown("**" * 100, 11) == r"\*\*\*\*\*\*\*\*\*\*" + ELLIPSIS


@given(st.text(), st.integers(min_value=1, max_value=50))
def test_truncate_never_exceeds_the_limit(raw: str, limit: int) -> None:
    assert len(truncate(raw, limit)) <= limit


@given(st.text(alphabet="\\*ab"), st.integers(min_value=1, max_value=30))
def test_cut_escaped_leaves_no_dangling_backslash(raw: str, limit: int) -> None:
    cut = cut_escaped(plain(raw), limit)
    assert len(cut) <= limit
    if cut.endswith(ELLIPSIS):
        assert not escaped_at(cut, len(cut) - 1)


@pytest.mark.parametrize(
    "url",
    ["https://crm.example.com/c?id=1", "http://localhost:3978/x", "HTTPS://EXAMPLE.COM"],
)
def test_safe_url_accepts_http(url: str) -> None:
    assert safe_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "javascript:alert(1)",
        "data:text/html,<script>",
        "/relative/path",
        "https://",
        "https://example.com/a b",
        "https://example.com/" + "x" * 3000,
        "http://[::1",
    ],
)
def test_safe_url_rejects_others(url: str | None) -> None:
    assert safe_url(url) is None


# One piece escaping may react to (at a line start or not), among pieces it never does.
_LOUD = ["\r", "\r\n", ".", ")", "1.", "2)", "-", "+", "=", "*", "_", "[", "]", "(", "#", "`",
         "~", "{", "}", "&", "&amp;", "&#9;", "<", ">", "\\", "\x00", "\x1f", "\x7f"]
_QUIET = st.lists(st.sampled_from(["a", "b", " ", "\t", "\n", "1", "12", ".", ";", "é"]),
                  max_size=5).map("".join)


@pytest.mark.parametrize("loud", _LOUD)
@pytest.mark.parametrize("before", ["", "a", " \t", "x\n", "x\n 12"])
def test_plain_escapes_each_piece_where_escaping_would(before: str, loud: str) -> None:
    raw = f"{before}{loud}b"
    assert plain(raw) == escape(raw)


@given(st.one_of(st.tuples(_QUIET, st.sampled_from(_LOUD), _QUIET).map("".join),
                 st.text(max_size=30)))
def test_plain_takes_its_shortcut_only_where_escaping_changes_nothing(raw: str) -> None:
    assert plain(raw) == escape(raw)
