"""The Teams app package: template, offline validation against the official schema, icons."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from jsonschema import Draft4Validator

from tests.deploy.conftest import ROOT, run_ajv

MANIFEST_DIR = ROOT / "manifest"
BUILD_SCRIPT = MANIFEST_DIR / "build.py"
APP_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
HOST = "switchboard.contoso.example"
COMMANDS = {"help", "register", "status", "sessions", "duty", "reset", "nar"}


def run_build(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python manifest/build.py ...`` as `make package` runs it, with a clean environment."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MicrosoftAppId", "SWITCHBOARD_PUBLIC_HOST")
    }
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
        timeout=120,
        check=False,
    )


def template() -> dict[str, Any]:
    return json.loads((MANIFEST_DIR / "manifest.json").read_text(encoding="utf-8"))


def copy_manifest_dir(tmp_path: Path, manifest: dict[str, Any]) -> Path:
    """A copy of manifest/ with a different template; returns the template path."""
    for icon in ("color.png", "outline.png"):
        shutil.copy(MANIFEST_DIR / icon, tmp_path / icon)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def broken(manifest: dict[str, Any]) -> dict[str, Any]:
    manifest = json.loads(json.dumps(manifest))
    manifest["accentColor"] = "blue"
    manifest["bots"][0]["scopes"].append("everywhere")
    del manifest["developer"]["privacyUrl"]
    return manifest


@pytest.fixture(scope="module")
def dev_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package") / "appPackage.zip"
    done = run_build("--dev", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    return out


def package_manifest(package: Path) -> dict[str, Any]:
    with zipfile.ZipFile(package) as zf:
        return dict(json.loads(zf.read("manifest.json")))


# --- the template ------------------------------------------------------------------------------


def test_template_uses_the_newest_bundled_schema(build: ModuleType) -> None:
    versions = build.available_schema_versions()
    if not versions:
        pytest.skip("npm @microsoft/app-manifest is not installed (npm ci)")
    manifest = template()
    assert manifest["manifestVersion"] == versions[-1]
    assert manifest["$schema"].endswith(f"/v{versions[-1]}/MicrosoftTeams.schema.json")


def test_template_declares_bot_scopes_commands_and_graph_app(build: ModuleType) -> None:
    manifest = template()
    (bot,) = manifest["bots"]
    assert bot["scopes"] == ["personal", "groupChat"]
    titles = {c["title"] for lst in bot["commandLists"] for c in lst["commands"]}
    assert titles == COMMANDS
    assert manifest["webApplicationInfo"]["id"] == "${{MicrosoftAppId}}"
    assert manifest["validDomains"] == ["${{SWITCHBOARD_PUBLIC_HOST}}"]
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}


def test_placeholders_are_filled_from_the_environment(build: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "app.zip"
    manifest = build.build(
        out=out,
        environ={"MicrosoftAppId": APP_ID, "SWITCHBOARD_PUBLIC_HOST": HOST},
        app_version="2.3.4",
    )
    assert manifest == package_manifest(out)
    assert "${{" not in json.dumps(manifest)
    assert manifest["id"] == manifest["bots"][0]["botId"] == APP_ID
    assert manifest["webApplicationInfo"]["id"] == APP_ID
    assert manifest["validDomains"] == [HOST]
    assert manifest["developer"]["websiteUrl"] == f"https://{HOST}/"
    assert manifest["version"] == "2.3.4"


def test_version_defaults_to_the_project_version(build: ModuleType, tmp_path: Path) -> None:
    manifest = build.build(out=tmp_path / "app.zip", environ={}, dev=True)
    assert manifest["version"] == build.project_version()


# --- make package ------------------------------------------------------------------------------


def test_dev_package_holds_manifest_and_icons(dev_package: Path) -> None:
    with zipfile.ZipFile(dev_package) as zf:
        assert sorted(zf.namelist()) == ["color.png", "manifest.json", "outline.png"]
        assert zf.read("color.png") == (MANIFEST_DIR / "color.png").read_bytes()
        assert zf.read("outline.png") == (MANIFEST_DIR / "outline.png").read_bytes()
    manifest = package_manifest(dev_package)
    assert manifest["id"] == "00000000-0000-0000-0000-000000000000"
    assert manifest["validDomains"] == ["localhost:3978"]


def test_dev_package_is_valid_against_the_official_schema(
    build: ModuleType, dev_package: Path
) -> None:
    manifest = package_manifest(dev_package)
    _, schema = build.load_schema(manifest["manifestVersion"])
    assert build.schema_errors(manifest, schema) == []
    # and with the stock draft-04 validator, independent of the build's extensions
    assert [e.message for e in Draft4Validator(schema).iter_errors(manifest)] == []


def test_dev_package_is_valid_for_ajv_as_used_by_app_manifest(
    build: ModuleType, dev_package: Path, ajv_validate: Path, tmp_path: Path
) -> None:
    manifest = package_manifest(dev_package)
    schema_path, _ = build.load_schema(manifest["manifestVersion"])
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert run_ajv(ajv_validate, schema_path, tmp_path / "manifest.json") == []


def test_package_build_is_reproducible(build: ModuleType, tmp_path: Path) -> None:
    first = build.build(out=tmp_path / "a.zip", environ={}, dev=True)
    second = build.build(out=tmp_path / "b.zip", environ={}, dev=True)
    assert first == second
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_broken_manifest_fails_listing_the_schema_errors(tmp_path: Path) -> None:
    path = copy_manifest_dir(tmp_path, broken(template()))
    out = tmp_path / "appPackage.zip"
    done = run_build("--dev", "--template", str(path), "--out", str(out))
    assert done.returncode == 1
    assert "not valid against the official Teams app manifest schema" in done.stderr
    assert "/accentColor: 'blue' does not match" in done.stderr
    assert "/bots/0/scopes/2: 'everywhere' is not one of" in done.stderr
    assert "/developer: 'privacyUrl' is a required property" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_broken_manifest_errors_match_ajv(
    build: ModuleType, ajv_validate: Path, tmp_path: Path
) -> None:
    values = {"MicrosoftAppId": APP_ID, "SWITCHBOARD_PUBLIC_HOST": HOST, "APP_VERSION": "1.0.0"}
    manifest = build.fill(broken(template()), values)
    schema_path, schema = build.load_schema(manifest["manifestVersion"])
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    ajv_paths = {
        e["instancePath"] or "(root)"
        for e in run_ajv(ajv_validate, schema_path, tmp_path / "manifest.json")
    }
    ours = {line.split(": ", 1)[0] for line in build.schema_errors(manifest, schema)}
    assert ours == ajv_paths == {"/accentColor", "/bots/0/scopes/2", "/developer"}


def test_const_keyword_is_enforced_like_ajv(build: ModuleType) -> None:
    """The schemas say draft-04 but use ``const`` (Ajv applies it; plain draft-04 would not)."""
    values = {"MicrosoftAppId": APP_ID, "SWITCHBOARD_PUBLIC_HOST": HOST, "APP_VERSION": "1.0.0"}
    manifest = build.fill(template(), values)
    _, schema = build.load_schema(manifest["manifestVersion"])
    manifest["manifestVersion"] = "1.0"
    errors = build.schema_errors(manifest, schema)
    assert any(line.startswith("/manifestVersion:") for line in errors), errors


def test_real_package_needs_app_id_and_host(tmp_path: Path) -> None:
    done = run_build("--out", str(tmp_path / "app.zip"))
    assert done.returncode == 1
    assert "MicrosoftAppId is not set" in done.stderr
    assert "SWITCHBOARD_PUBLIC_HOST is not set" in done.stderr
    assert not (tmp_path / "app.zip").exists()


def test_real_package_rejects_malformed_values(tmp_path: Path) -> None:
    env = {"MicrosoftAppId": "my-bot", "SWITCHBOARD_PUBLIC_HOST": f"https://{HOST}/"}
    done = run_build("--out", str(tmp_path / "app.zip"), env=env)
    assert done.returncode == 1
    assert "MicrosoftAppId must be a GUID" in done.stderr
    assert "no scheme, no path" in done.stderr


def test_real_package_with_configuration(tmp_path: Path) -> None:
    env = {"MicrosoftAppId": APP_ID, "SWITCHBOARD_PUBLIC_HOST": HOST}
    done = run_build("--out", str(tmp_path / "app.zip"), env=env)
    assert done.returncode == 0, done.stderr
    assert package_manifest(tmp_path / "app.zip")["id"] == APP_ID


def test_unknown_placeholder_fails(build: ModuleType, tmp_path: Path) -> None:
    manifest = template()
    manifest["name"]["full"] = "${{NOT_A_SETTING}}"
    path = copy_manifest_dir(tmp_path, manifest)
    with pytest.raises(build.BuildError) as caught:
        build.build(template=path, out=tmp_path / "app.zip", environ={}, dev=True)
    assert "${{NOT_A_SETTING}}" in str(caught.value)


def test_missing_schema_version_fails_readably(build: ModuleType, tmp_path: Path) -> None:
    manifest = template()
    manifest["manifestVersion"] = "9.99"
    path = copy_manifest_dir(tmp_path, manifest)
    with pytest.raises(build.BuildError) as caught:
        build.build(template=path, out=tmp_path / "app.zip", environ={}, dev=True)
    assert "no official schema for manifestVersion 9.99" in str(caught.value)


# --- patterns the schema uses that Python's re does not know ------------------------------------


def test_unicode_property_pattern_of_extension_functions(build: ModuleType) -> None:
    """v1.23+ name extension functions with ``^[\\p{L}][\\p{L}0-9._]*$`` (ECMAScript, u flag)."""
    _, schema = build.load_schema(template()["manifestVersion"])
    pattern = schema["definitions"]["extensionFunction"]["properties"]["name"]["pattern"]
    compiled = build.compile_pattern(pattern)
    for name in ("getStatus", "Überprüfen.v2", "名前_1", "É"):
        assert compiled.search(name), name
    for name in ("1st", "_x", "a-b", "", "ok\n"):
        assert not compiled.search(name), name
    validator = build.TeamsSchemaValidator({"type": "string", "pattern": pattern})
    assert validator.is_valid("Überprüfen")
    assert not validator.is_valid("1st")


def test_dollar_does_not_accept_a_trailing_newline(build: ModuleType) -> None:
    validator = build.TeamsSchemaValidator({"pattern": "^[0-9a-f]{4}$"})
    assert validator.is_valid("beef")
    assert not validator.is_valid("beef\n")


# --- icons ------------------------------------------------------------------------------------


def test_icons_have_the_required_sizes(build: ModuleType) -> None:
    color = build.read_png((MANIFEST_DIR / "color.png").read_bytes())
    outline = build.read_png((MANIFEST_DIR / "outline.png").read_bytes())
    assert (color.width, color.height) == (192, 192)
    assert (outline.width, outline.height) == (32, 32)


def test_outline_icon_is_white_on_transparent(build: ModuleType) -> None:
    outline = build.read_png((MANIFEST_DIR / "outline.png").read_bytes())
    pixels = [px for row in outline.pixels for px in row]
    assert all(px[3] == 0 or px[:3] == (255, 255, 255) for px in pixels)
    # a real glyph: some opaque pixels, some transparent ones
    assert sum(px[3] == 255 for px in pixels) > 50
    assert sum(px[3] == 0 for px in pixels) > 300


def test_color_icon_is_opaque_with_a_glyph(build: ModuleType) -> None:
    color = build.read_png((MANIFEST_DIR / "color.png").read_bytes())
    pixels = [px for row in color.pixels for px in row]
    assert all(px[3] == 255 for px in pixels)
    assert len(set(pixels)) > 10


def test_icons_checked_with_pillow(tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    with image.open(MANIFEST_DIR / "color.png") as color:
        assert color.format == "PNG" and color.size == (192, 192)
    with image.open(MANIFEST_DIR / "outline.png") as outline:
        assert outline.format == "PNG" and outline.size == (32, 32)
        data = outline.convert("RGBA").tobytes()
        pixels = [tuple(data[i : i + 4]) for i in range(0, len(data), 4)]
        assert all(a == 0 or (r, g, b) == (255, 255, 255) for r, g, b, a in pixels)


def test_icons_are_the_generators_output(build: ModuleType, make_icons: ModuleType) -> None:
    """The committed PNGs are what manifest/make_icons.py draws (regenerate them if not)."""
    for name, draw in make_icons.ICONS.items():
        assert build.read_png((MANIFEST_DIR / name).read_bytes()).pixels == draw(), name


def test_build_rejects_a_coloured_outline_icon(
    build: ModuleType, make_icons: ModuleType, tmp_path: Path
) -> None:
    path = copy_manifest_dir(tmp_path, template())
    pixels = make_icons.outline_pixels()
    pixels[5][7] = (200, 200, 200, 255)
    (tmp_path / "outline.png").write_bytes(make_icons.png_bytes(pixels))
    with pytest.raises(build.BuildError) as caught:
        build.build(template=path, out=tmp_path / "app.zip", environ={}, dev=True)
    assert "neither white nor fully transparent, first at (7, 5)" in str(caught.value)
    assert not (tmp_path / "app.zip").exists()


def test_build_rejects_wrong_icon_sizes(
    build: ModuleType, make_icons: ModuleType, tmp_path: Path
) -> None:
    path = copy_manifest_dir(tmp_path, template())
    (tmp_path / "color.png").write_bytes(make_icons.png_bytes([[(1, 2, 3, 255)] * 96] * 96))
    (tmp_path / "outline.png").unlink()
    with pytest.raises(build.BuildError) as caught:
        build.build(template=path, out=tmp_path / "app.zip", environ={}, dev=True)
    message = str(caught.value)
    assert "is 96x96, must be 192x192" in message
    assert "outline.png does not exist" in message


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "LA", "L", "P"])
def test_png_reader_agrees_with_pillow(build: ModuleType, mode: str) -> None:
    """The build's own PNG decoder (no Pillow needed) on every filter type and colour type."""
    image_module = pytest.importorskip("PIL.Image")
    rng = random.Random(mode)
    image = image_module.new("RGBA", (23, 17))
    image.putdata(
        [
            (rng.randrange(256), (x * 11) % 256, (y * 15) % 256, rng.choice([0, 128, 255]))
            for y in range(17)
            for x in range(23)
        ]
    )
    image = image.convert(mode)
    if mode == "P":
        image.info["transparency"] = 0
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    decoded = build.read_png(buffer.getvalue())
    with image_module.open(io.BytesIO(buffer.getvalue())) as reread:
        data = reread.convert("RGBA").tobytes()
    expected = [tuple(data[i : i + 4]) for i in range(0, len(data), 4)]
    assert [px for row in decoded.pixels for px in row] == expected
