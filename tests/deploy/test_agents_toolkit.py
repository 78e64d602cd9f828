"""The Microsoft 365 Agents Toolkit files (m365agents.yml, m365agents.local.yml, env/,
.vscode/) parse, name files that exist, and use only variables that something defines."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\$\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
PROJECTS = ("m365agents.yml", "m365agents.local.yml")


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def env_file(name: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (ROOT / "env" / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"env/{name}: {line!r} is not NAME=value"
            values[key.strip()] = value
    return values


def bicep_outputs() -> set[str]:
    text = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
    names = re.findall(r"^output (\w+) ", text, re.M)
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper() for name in names}


def steps(project: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for stage in ("provision", "deploy", "publish")
            for step in project.get(stage) or []]


@pytest.mark.parametrize("name", PROJECTS)
def test_the_project_files_parse_and_point_at_existing_files(name: str) -> None:
    project = load(name)
    assert project["version"].startswith("v1.")
    assert (ROOT / project["environmentFolderPath"]).is_dir()
    for step in steps(project):
        assert isinstance(step.get("uses"), str), step
        for template in step.get("with", {}).get("templates", []):
            assert (ROOT / template["path"]).is_file(), template
            assert (ROOT / template["parameters"]).is_file(), template


def test_provision_deploys_the_bicep_with_parameters_it_declares() -> None:
    [deploy] = [s for s in load("m365agents.yml")["provision"] if s["uses"] == "arm/deploy"]
    [template] = deploy["with"]["templates"]
    assert template["path"] == "./infra/main.bicep"
    declared = set(re.findall(r"^param (\w+) ",
                              (ROOT / "infra/main.bicep").read_text(encoding="utf-8"), re.M))
    parameters = json.loads((ROOT / template["parameters"]).read_text(encoding="utf-8"))
    assert set(parameters["parameters"]) <= declared
    assert "containerImage" in parameters["parameters"]  # the one without a default


def test_every_placeholder_is_defined_by_the_env_file_or_a_bicep_output() -> None:
    defined = set(env_file(".env.dev")) | bicep_outputs()
    texts = [(ROOT / "m365agents.yml").read_text(encoding="utf-8"),
             (ROOT / "infra/main.parameters.m365agents.json").read_text(encoding="utf-8")]
    used = {name for text in texts for name in PLACEHOLDER.findall(text)}
    secrets = {name for name in used if name.startswith("SECRET_")}  # env/.env.dev.user
    assert used - secrets <= defined, sorted(used - secrets - defined)


def test_the_committed_env_files_hold_no_secret() -> None:
    for path in (ROOT / "env").iterdir():
        assert not path.name.endswith(".user"), f"{path.name} must not be committed"
        for key, value in env_file(path.name).items():
            assert not key.startswith("SECRET_") and not re.search(
                r"PASSWORD|SECRET|KEY$|CERTIFICATE$", key), (path.name, key)
            assert not value.strip() or len(value) < 40, (path.name, key)


def test_publish_builds_the_package_with_make() -> None:
    runs = [s["with"]["run"] for s in load("m365agents.yml")["publish"] if s["uses"] == "script"]
    assert any(shlex.split(run)[-2:] == ["make", "package"] for run in runs)
    packaged = {s["with"]["appPackagePath"] for s in load("m365agents.yml")["publish"]
                if "appPackagePath" in s.get("with", {})}
    assert packaged == {"./build/appPackage.zip"}  # where make package writes it
    assert "--out build/appPackage.zip" in (ROOT / "Makefile").read_text(encoding="utf-8")


def test_vscode_starts_the_bot_with_the_agents_playground() -> None:
    launch = json.loads((ROOT / ".vscode/launch.json").read_text(encoding="utf-8"))
    tasks = {t["label"]: t for t in json.loads(
        (ROOT / ".vscode/tasks.json").read_text(encoding="utf-8"))["tasks"]}
    [bot] = [c for c in launch["configurations"] if c.get("module") == "bot"]
    assert bot["envFile"] == "${workspaceFolder}/env/.env.local"
    assert (ROOT / "env/.env.local").is_file() and bot["preLaunchTask"] in tasks
    [compound] = launch["compounds"]
    assert compound["configurations"] == [bot["name"]]
    playground = tasks[compound["preLaunchTask"]]
    words = shlex.split(playground["command"])
    assert (ROOT / words[1]).is_file(), words[1]  # the Playground's CLI in node_modules
    assert words[words.index("-e") + 1] == \
        f"http://127.0.0.1:{env_file('.env.local')['PORT']}/api/messages"
    assert tasks[playground["dependsOn"]]["command"] == \
        "make .venv/.installed node_modules/.installed"
