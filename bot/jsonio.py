"""JSON in and out of the hot paths (store rows, log lines, HTTP bodies) through orjson, with
the standard library as the fallback for whatever orjson refuses.

orjson does the same work in a fraction of the time (JSON was ~8 % of a chat's CPU through the
standard library). Its output is compact UTF-8. What it does differently stays the standard
library's: datetimes, dataclasses and subclasses of str, int, dict and list go to `default`
(or fail) as they would with `json.dumps`, and a value orjson cannot write (a key that is not
a string, an integer past 64 bits, a lone surrogate) or text it cannot read (NaN, lone
surrogates, deep nesting) or would read differently (integers past 64 bits, which it makes
floats) goes to the standard library, so every answer and every error is one
`json` would give.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

# orjson reads an integer past 64 bits as a float: text with a run of 19 digits or more (inside
# a string too, which costs nothing but speed) is read by the standard library, exactly. The
# run is found by mapping every digit to "9" and the rest to " " (bytes.translate, a tenth of a
# regular expression's time).
_DIGIT_MAP = bytes(57 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_RUN = b"9" * 19

_PASSTHROUGH = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
                | orjson.OPT_PASSTHROUGH_SUBCLASS)


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """Compact JSON text, non-ASCII as is."""
    try:
        return orjson.dumps(value, default=default, option=_PASSTHROUGH).decode()
    except TypeError:  # orjson.JSONEncodeError: let the standard library write it or refuse
        return json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """The value of JSON text; ValueError (json.JSONDecodeError) when it is not JSON."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _LONG_RUN in data.translate(_DIGIT_MAP):
        return json.loads(text)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # what json takes and orjson does not, or an error json names
        return json.loads(text)
