"""The app's environment names (bot.config.ENV_NAMES) match the Bicep app settings and the README.

ENV_NAMES is the contract. Every name in it is set by the Bicep (or offered as an optional
setting there) and documented in the README's configuration table; neither of them names a
setting the app does not read.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy.conftest import ROOT

INFRA = ROOT / "infra"
README = ROOT / "README.md"

# An environment entry of a container: `name: 'X'` directly followed by `value:` or `secretRef:`
# (secrets, registries and resources have other properties after their name).
_ENV_ENTRY = re.compile(r"\bname:\s*'([^'$]+)'\s*\n\s*(?:value|secretRef)\s*:")
# What an app setting looks like: the Bot Framework's MicrosoftApp* names or UPPER_SNAKE_CASE.
_ENV_LIKE = re.compile(r"^(?:Microsoft[A-Za-z]+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)$")


def bicep_app_settings(infra: Path = INFRA) -> dict[str, Path]:
    """Every env-like app setting name in the Bicep files, with the file that sets it."""
    found: dict[str, Path] = {}
    for path in sorted(infra.rglob("*.bicep")):
        for name in _ENV_ENTRY.findall(path.read_text(encoding="utf-8")):
            if _ENV_LIKE.match(name):
                found.setdefault(name, path)
    return found


def configuration_table_names(markdown: str) -> list[str]:
    """First-column names of the first table under a heading that mentions "configuration"."""
    lines = []
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        lines.append("" if fenced else line)
    for index, line in enumerate(lines):
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if not heading or "configuration" not in heading.group(2).lower():
            continue
        level = len(heading.group(1))
        rows: list[list[str]] = []
        for row in lines[index + 1 :]:
            deeper = re.match(r"^(#{1,6})\s", row)
            if deeper and len(deeper.group(1)) <= level:
                break
            if row.lstrip().startswith("|"):
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            elif rows:
                break
        # rows[0] is the header, rows[1] the |---| separator
        if len(rows) > 2:
            return [cells[0].strip("`* ") for cells in rows[2:]]
    return []


def test_configuration_table_parser() -> None:
    text = "\n".join(
        [
            "# Switchboard",
            "```sh",
            "# configuration of the shell, not a heading",
            "```",
            "## Configuration reference",
            "Set these in the environment.",
            "",
            "| Variable | Default | Meaning |",
            "| --- | --- | --- |",
            "| `PORT` | 3978 | HTTP port |",
            "| `MicrosoftAppId` | | bot id |",
            "",
            "## Other",
            "| `NOT_THIS` | | |",
        ]
    )
    assert configuration_table_names(text) == ["PORT", "MicrosoftAppId"]


def test_bicep_sets_app_settings() -> None:
    settings = bicep_app_settings()
    # the parser finds the container's environment (guards against it silently finding nothing)
    assert {"MicrosoftAppId", "PORT", "COSMOS_ENDPOINT", "COSMOS_KEY"} <= set(settings)


def test_every_env_name_is_a_bicep_app_setting(env_names: tuple[str, ...]) -> None:
    missing = sorted(set(env_names) - set(bicep_app_settings()))
    assert not missing, f"add these app settings to infra/modules/containerapp.bicep: {missing}"


def test_every_bicep_app_setting_is_an_env_name(env_names: tuple[str, ...]) -> None:
    extra = {n: str(p.relative_to(ROOT)) for n, p in bicep_app_settings().items()}
    unknown = {n: p for n, p in extra.items() if n not in env_names}
    assert not unknown, (
        f"app settings the app does not read (not in bot.config.ENV_NAMES): {unknown}"
    )


def readme_names() -> list[str]:
    assert README.is_file(), "README.md is missing"
    names = configuration_table_names(README.read_text(encoding="utf-8"))
    assert names, (
        "README.md needs a configuration reference: a heading with 'Configuration' followed by a "
        "table whose first column is the environment variable name"
    )
    return names


def test_every_env_name_is_in_the_readme(env_names: tuple[str, ...]) -> None:
    documented = readme_names()
    missing = [n for n in env_names if n not in documented]
    assert not missing, f"document these in the README configuration table: {missing}"


def test_every_readme_setting_is_an_env_name(env_names: tuple[str, ...]) -> None:
    unknown = [n for n in readme_names() if n not in env_names]
    assert not unknown, f"the README documents settings the app does not read: {unknown}"
