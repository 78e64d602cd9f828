"""JSON in and out of the hot paths (store rows, log lines, HTTP bodies) through orjson, with
the standard library for whatever orjson refuses or would read differently.

orjson does the same work in a fraction of the time (JSON was ~8 % of a chat's CPU through the
standard library). Its output is compact UTF-8. Where it differs, `json` does the work:
- writing: datetimes and dataclasses are refused (as `json.dumps` refuses them), and what
  orjson cannot write (a key that is not a string, an integer past 64 bits, a lone surrogate)
  `json` writes, non-ASCII escaped, so the text is always valid UTF-8;
- reading: text with an integer past 64 bits (orjson makes it a float), lone surrogates or deep
  nesting. Numbers JSON cannot hold (NaN, Infinity, 1e400), which `json` takes and nothing
  writes back (orjson writes null), are refused with `finite=True`: what comes in from outside
  (`bot.http.parse_json`); rows the store holds from before still read as they were written.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

# orjson reads an integer past 64 bits as a float: text with a run of 19 digits or more (inside
# a string too, which costs nothing but speed) is read by the standard library, exactly. The
# run is found by mapping every digit to "9" and the rest to " " (bytes.translate, a tenth of a
# regular expression's time).
_DIGIT_MAP = bytes(57 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_RUN = b"9" * 19

_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any) -> str:
    """Compact JSON text."""
    try:
        return orjson.dumps(value, option=_PASSTHROUGH).decode()
    except TypeError:  # orjson.JSONEncodeError: let the standard library write it or refuse
        return json.dumps(value, separators=(",", ":"))


def loads(text: str | bytes, *, finite: bool = False) -> Any:
    """The value of JSON text; ValueError (json.JSONDecodeError) when it is not JSON, or (with
    `finite`) when it holds NaN, Infinity or a number past a float's range."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _LONG_RUN in data.translate(_DIGIT_MAP):
        return _json_loads(text, finite)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # what json takes and orjson does not, or an error json names
        return _json_loads(text, finite)


def _json_loads(text: str | bytes, finite: bool) -> Any:
    if finite:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    return json.loads(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is too large for a JSON number")
    return number
