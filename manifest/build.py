#!/usr/bin/env python3
"""Build the Teams app package and validate it offline against the official manifest schema.

    python manifest/build.py [--out build/appPackage.zip] [--dev] [--app-version X.Y.Z]

Reads the template ``manifest/manifest.json`` and fills its ``${{NAME}}`` placeholders:

- ``MicrosoftAppId`` (environment): the bot's Microsoft Entra app id (client id), also used as
  the Teams app id and in ``webApplicationInfo``;
- ``SWITCHBOARD_PUBLIC_HOST`` (environment): the public host name of the bot, e.g.
  ``switchboard.example.com`` (no scheme, no path);
- ``APP_VERSION``: the ``[project] version`` of pyproject.toml, or ``--app-version``.

``--dev`` fills unset environment values with fixed examples (an all-zero GUID and
``localhost:3978``) so that the package can be built and validated without any configuration;
such a package is for tests and local tools only.

The filled manifest is validated against the schema of its ``manifestVersion`` bundled in the npm
package ``@microsoft/app-manifest`` (node_modules), with the same keyword set as that package's
own Ajv validator (draft-04 plus ``const`` and ``if``/``then``/``else``). The icons are checked
too (PNG, color 192x192, outline 32x32 white on transparent). On any error the build lists all of
them and exits with status 1 without writing the package.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import re
import struct
import sys
import tomllib
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from jsonschema import Draft4Validator, Draft7Validator, FormatChecker, ValidationError, validators
from jsonschema.exceptions import best_match

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TEMPLATE = HERE / "manifest.json"
PYPROJECT = ROOT / "pyproject.toml"
SCHEMA_DIR = (
    ROOT / "node_modules" / "@microsoft" / "app-manifest" / "build" / "json-schemas" / "teams"
)
DEFAULT_OUT = ROOT / "build" / "appPackage.zip"

DEV_VALUES = {
    "MicrosoftAppId": "00000000-0000-0000-0000-000000000000",
    "SWITCHBOARD_PUBLIC_HOST": "localhost:3978",
}
ENV_PLACEHOLDERS = tuple(DEV_VALUES)

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?")
PLACEHOLDER_RE = re.compile(r"\$\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

ICON_SIZES = {"color": (192, 192), "outline": (32, 32)}


class BuildError(Exception):
    """The package cannot be built; ``problems`` lists every reason, one line each."""

    def __init__(self, title: str, problems: list[str]) -> None:
        super().__init__(title)
        self.title = title
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join([self.title, *(f"  - {p}" for p in self.problems)])


# ---------------------------------------------------------------------------------------------
# Template


def project_version(pyproject: Path = PYPROJECT) -> str:
    with pyproject.open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def placeholder_values(
    environ: Mapping[str, str], *, dev: bool, app_version: str
) -> dict[str, str]:
    """The values for the template's placeholders; raises BuildError listing what is wrong."""
    values: dict[str, str] = {"APP_VERSION": app_version}
    problems = []
    for name in ENV_PLACEHOLDERS:
        value = environ.get(name, "").strip()
        if not value and dev:
            value = DEV_VALUES[name]
        if not value:
            problems.append(f"{name} is not set (use --dev for a local example package)")
            continue
        values[name] = value
    app_id = values.get("MicrosoftAppId")
    if app_id is not None and not GUID_RE.match(app_id):
        problems.append(f"MicrosoftAppId must be a GUID (the app's client id), got {app_id!r}")
    host = values.get("SWITCHBOARD_PUBLIC_HOST")
    if host is not None and (len(host) > 253 or not HOST_RE.fullmatch(host)):
        problems.append(
            "SWITCHBOARD_PUBLIC_HOST must be a host name such as switchboard.example.com "
            f"(no scheme, no path), got {host!r}"
        )
    if problems:
        raise BuildError("cannot fill the manifest template:", problems)
    return values


def fill(template: Any, values: Mapping[str, str]) -> Any:
    """Replace ``${{NAME}}`` in every string of the template; unknown names are an error."""
    unknown: set[str] = set()

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            unknown.add(name)
            return match.group(0)
        return values[name]

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return PLACEHOLDER_RE.sub(sub, node)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {walk(key): walk(value) for key, value in node.items()}
        return node

    result = walk(template)
    if unknown:
        raise BuildError(
            "the manifest template uses unknown placeholders:",
            [f"${{{{{name}}}}}" for name in sorted(unknown)],
        )
    return result


def load_template(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BuildError(f"{path}: no such file", []) from None
    except json.JSONDecodeError as exc:
        raise BuildError(f"{path}: not valid JSON", [str(exc)]) from None


# ---------------------------------------------------------------------------------------------
# Schema validation


def available_schema_versions(schema_dir: Path = SCHEMA_DIR) -> list[str]:
    """Numbered schema versions bundled in @microsoft/app-manifest, oldest first."""
    found = []
    for entry in schema_dir.glob("v*/MicrosoftTeams.schema.json"):
        m = re.fullmatch(r"v(\d+)\.(\d+)", entry.parent.name)
        if m:
            found.append((int(m.group(1)), int(m.group(2))))
    return [f"{major}.{minor}" for major, minor in sorted(found)]


def load_schema(version: Any, schema_dir: Path = SCHEMA_DIR) -> tuple[Path, dict[str, Any]]:
    if not schema_dir.is_dir():
        raise BuildError(
            f"the official manifest schemas are not installed ({schema_dir})",
            ["run `npm ci` in the repository root (npm package @microsoft/app-manifest)"],
        )
    if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+|devPreview", version):
        raise BuildError(
            "the manifest has no usable manifestVersion",
            [f"manifestVersion is {version!r}; bundled: {available_schema_versions(schema_dir)}"],
        )
    path = schema_dir / f"v{version}" / "MicrosoftTeams.schema.json"
    if not path.is_file():
        raise BuildError(
            f"no official schema for manifestVersion {version} in {schema_dir}",
            [f"bundled versions: {', '.join(available_schema_versions(schema_dir))}"],
        )
    # strip a byte-order mark if there is one, as the npm package does
    return path, json.loads(path.read_text(encoding="utf-8-sig"))


@functools.cache
def _unicode_class(category: str) -> str:
    """Character-class body (no brackets) matching Unicode general category ``category``."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)).startswith(category):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])

    def esc(code: int) -> str:
        return f"\\U{code:08x}"

    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)


def _ecmascript_to_python(pattern: str) -> str:
    r"""Rewrite an ECMAScript pattern for Python's ``re``.

    ``\p{X}`` / ``\P{X}`` (Unicode general categories) become explicit ranges, and ``$``
    becomes ``\Z`` (in ECMAScript without the ``m`` flag ``$`` does not match before a final
    newline, in Python it does).
    """
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            m = re.match(r"\{([A-Za-z]+)\}", pattern[i + 2 :]) if nxt in "pP" else None
            if m:
                category = m.group(1)
                if not re.fullmatch(r"[LMNPSZC][a-z]?", category) or not _unicode_class(category):
                    raise re.error(f"unsupported Unicode property \\{nxt}{{{category}}}")
                body = _unicode_class(category)
                if nxt == "p":
                    out.append(body if in_class else f"[{body}]")
                elif in_class:
                    raise re.error(f"\\P{{{category}}} inside a character class is not supported")
                else:
                    out.append(f"[^{body}]")
                i += 2 + m.end()
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "$" and not in_class:
            out.append(r"\Z")
            i += 1
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


@functools.cache
def compile_pattern(pattern: str) -> re.Pattern[str]:
    r"""Compile a JSON-schema ``pattern`` the way Ajv (ECMAScript, ``u`` flag) reads it.

    ``\d`` and ``\w`` are ASCII-only as in ECMAScript; ``\p{L}``-style Unicode property escapes,
    which Python's ``re`` lacks (the schemas use one from v1.23), are expanded to explicit ranges.
    """
    return re.compile(_ecmascript_to_python(pattern), re.ASCII)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if compile_pattern(pattern).search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


# Ajv (draft-04 mode, as used by @microsoft/app-manifest) also applies these newer keywords,
# which the Teams schemas use although they declare draft-04.
TeamsSchemaValidator = validators.extend(
    Draft4Validator,
    {
        "const": Draft7Validator.VALIDATORS["const"],
        "if": Draft7Validator.VALIDATORS["if"],
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
    },
)

# The formats @microsoft/app-manifest enables in Ajv: uri, email, regex.
FORMATS = FormatChecker(formats=())


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    return (
        not isinstance(value, str)
        or re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]*", value) is not None
    )


@FORMATS.checks("email")
def _is_email(value: object) -> bool:
    return (
        not isinstance(value, str) or re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value) is not None
    )


@FORMATS.checks("regex", raises=re.error)
def _is_regex(value: object) -> bool:
    if isinstance(value, str):
        compile_pattern(value)
    return True


def _location(error: ValidationError) -> str:
    path = "/".join(str(part) for part in error.absolute_path)
    return f"/{path}" if path else "(root)"


def schema_errors(manifest: Any, schema: dict[str, Any]) -> list[str]:
    """Every schema violation as ``/json/pointer: message``, sorted by location."""
    validator = TeamsSchemaValidator(schema, format_checker=FORMATS)
    try:
        errors = list(validator.iter_errors(manifest))
    except re.error as exc:
        return [f"(schema): a pattern of the schema cannot be checked in Python: {exc}"]
    lines = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        line = f"{_location(error)}: {error.message}"
        if error.context:
            closest = best_match(error.context)
            line += f" (closest: {_location(closest)}: {closest.message})"
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------------
# Icons


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    pixels: list[list[tuple[int, int, int, int]]]  # rows of RGBA


def read_png(data: bytes) -> Png:
    """Decode an 8-bit, non-interlaced PNG (grey, RGB, palette, grey+alpha or RGBA) to RGBA."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos = 8
    header = None
    palette: list[tuple[int, int, int]] = []
    trns = b""
    idat = []
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if (
            len(body) != length
            or zlib.crc32(kind + body)
            != struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0]
        ):
            raise ValueError(f"corrupt {kind.decode('latin-1')} chunk")
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = [(body[i], body[i + 1], body[i + 2]) for i in range(0, len(body) - 2, 3)]
        elif kind == b"tRNS":
            trns = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("no IHDR chunk")
    width, height, depth, color_type, _compression, _filter, interlace = header
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color_type)
    if depth != 8 or channels is None or interlace != 0:
        raise ValueError(
            f"unsupported PNG (bit depth {depth}, colour type {color_type}, interlace {interlace});"
            " save it as 8-bit RGBA"
        )
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
            elif ftype != 0:
                raise ValueError(f"bad filter type {ftype}")
        rows.append(line)
        prev = line

    def rgba(line: bytearray, x: int) -> tuple[int, int, int, int]:
        i = x * channels
        if color_type == 6:
            return (line[i], line[i + 1], line[i + 2], line[i + 3])
        if color_type == 4:
            return (line[i], line[i], line[i], line[i + 1])
        if color_type == 2:
            rgb = (line[i], line[i + 1], line[i + 2])
            key = struct.unpack(">HHH", trns) if len(trns) == 6 else None
            return (*rgb, 0 if key == rgb else 255)
        if color_type == 0:
            grey = line[i]
            key = struct.unpack(">H", trns)[0] if len(trns) == 2 else None
            return (grey, grey, grey, 0 if key == grey else 255)
        index = line[i]
        r, g, b = palette[index]
        return (r, g, b, trns[index] if index < len(trns) else 255)

    return Png(width, height, [[rgba(line, x) for x in range(width)] for line in rows])


def outline_problems(png: Png) -> list[str]:
    """Pixels that are neither fully transparent nor white (the outline icon's rule)."""
    bad = [
        (x, y, px)
        for y, row in enumerate(png.pixels)
        for x, px in enumerate(row)
        if px[3] != 0 and px[:3] != (255, 255, 255)
    ]
    if not bad:
        return []
    x, y, px = bad[0]
    return [
        f"{len(bad)} pixel(s) are neither white nor fully transparent, first at ({x}, {y}): "
        f"RGBA{px}"
    ]


def _icon_path(base: Path, rel: str) -> Path | None:
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or "\\" in rel:
        return None
    return base.joinpath(*pure.parts)


def icon_errors(manifest: Any, base: Path) -> list[str]:
    icons = manifest.get("icons") if isinstance(manifest, dict) else None
    if not isinstance(icons, dict):
        return []  # the schema reports it
    problems = []
    for kind, size in ICON_SIZES.items():
        rel = icons.get(kind)
        if not isinstance(rel, str):
            continue  # the schema reports it
        path = _icon_path(base, rel)
        if path is None:
            problems.append(f"icons.{kind}: {rel!r} must be a relative path inside the package")
            continue
        try:
            png = read_png(path.read_bytes())
        except FileNotFoundError:
            problems.append(f"icons.{kind}: {path} does not exist")
            continue
        except (ValueError, zlib.error, struct.error, IndexError) as exc:
            problems.append(f"icons.{kind}: {path} is not a usable PNG: {exc}")
            continue
        if (png.width, png.height) != size:
            problems.append(
                f"icons.{kind}: {path} is {png.width}x{png.height}, must be {size[0]}x{size[1]}"
            )
        if kind == "outline":
            problems += [f"icons.outline: {path}: {p}" for p in outline_problems(png)]
    return problems


# ---------------------------------------------------------------------------------------------
# Package


def package_bytes(manifest: Any, base: Path) -> bytes:
    """A reproducible zip: manifest.json and the two icons, at fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:

        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)

        add("manifest.json", (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
        for kind in ICON_SIZES:
            rel = manifest["icons"][kind]
            path = _icon_path(base, rel)
            assert path is not None
            add(str(PurePosixPath(rel)), path.read_bytes())
    return buffer.getvalue()


def build(
    *,
    template: Path = TEMPLATE,
    out: Path = DEFAULT_OUT,
    environ: Mapping[str, str] | None = None,
    dev: bool = False,
    app_version: str | None = None,
    schema_dir: Path = SCHEMA_DIR,
) -> dict[str, Any]:
    """Fill, validate and write the package; returns the filled manifest, or raises BuildError."""
    environ = os.environ if environ is None else environ
    values = placeholder_values(environ, dev=dev, app_version=app_version or project_version())
    manifest = fill(load_template(template), values)
    version = manifest.get("manifestVersion") if isinstance(manifest, dict) else None
    schema_path, schema = load_schema(version, schema_dir)
    problems = schema_errors(manifest, schema)
    declared = re.search(r"/v(\d+\.\d+|devPreview)/", str(manifest.get("$schema", "")))
    if declared and declared.group(1) != version:
        problems.append(
            f"/$schema: names schema v{declared.group(1)} but manifestVersion is {version}"
        )
    if problems:
        raise BuildError(
            f"{template}: the manifest is not valid against the official Teams app manifest "
            f"schema v{version} ({schema_path}):",
            problems,
        )
    problems = icon_errors(manifest, template.parent)
    if problems:
        raise BuildError(f"{template}: the icons are not valid:", problems)
    data = package_bytes(manifest, template.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return manifest


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="manifest/build.py",
        description="Build and validate the Teams app package (manifest.json + icons).",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="zip to write (default: %(default)s)"
    )
    parser.add_argument(
        "--dev",
        action="store_true",
        help="example values for unset MicrosoftAppId / SWITCHBOARD_PUBLIC_HOST (local tests only)",
    )
    parser.add_argument("--app-version", help="manifest version (default: pyproject.toml version)")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help=argparse.SUPPRESS)
    parser.add_argument("--schema-dir", type=Path, default=SCHEMA_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        manifest = build(
            template=args.template,
            out=args.out,
            environ=environ,
            dev=args.dev,
            app_version=args.app_version,
            schema_dir=args.schema_dir,
        )
    except BuildError as exc:
        print(f"manifest/build.py: error: {exc}", file=sys.stderr)
        return 1
    note = " (--dev example values: not for upload)" if args.dev else ""
    print(
        f"wrote {args.out}: Teams app {manifest['id']} version {manifest['version']}, "
        f"manifest schema v{manifest['manifestVersion']} valid{note}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
