"""Static checks of the Bicep templates (no Bicep compiler here): syntax, wiring, Cosmos DB layout.

The Bicep files are parsed with ``pycep-parser`` (a Python Bicep parser) when it is installed;
checks that need it skip otherwise.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.storage.cosmos import CONTAINERS as COSMOS_CONTAINERS
from tests.deploy.conftest import ROOT

INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
CONTAINERS = set(COSMOS_CONTAINERS)  # what the Cosmos store opens is what the Bicep creates


def parse(path: Path) -> dict[str, Any]:
    pycep = pytest.importorskip("pycep", reason="pycep-parser is not installed")
    return dict(pycep.BicepParser().parse(file_path=path))


def strip_strings_and_comments(text: str) -> str:
    text = re.sub(r"'''.*?'''", "''", text, flags=re.S)
    text = re.sub(r"'(?:\\.|[^'\\\n])*'", "''", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_parses(path: Path) -> None:
    parsed = parse(path)
    assert parsed.get("resources") or parsed.get("modules")


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_brackets_balance(path: Path) -> None:
    code = strip_strings_and_comments(path.read_text(encoding="utf-8"))
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for line_no, line in enumerate(code.splitlines(), 1):
        for ch in line:
            if ch in "([{":
                stack.append(ch)
            elif ch in pairs:
                assert stack and stack.pop() == pairs[ch], f"{path.name}:{line_no}: unbalanced {ch}"
    assert not stack, f"{path.name}: unclosed {stack}"


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_api_versions_are_stable(path: Path) -> None:
    versions = re.findall(r"'([A-Za-z.]+/[A-Za-z/]+)@([^']+)'", path.read_text(encoding="utf-8"))
    assert versions
    for resource_type, version in versions:
        assert re.fullmatch(r"20\d\d-\d\d-\d\d", version), f"{resource_type}@{version}"


def test_modules_get_exactly_their_parameters() -> None:
    for bicep in BICEP_FILES:
        for name, module in parse(bicep).get("modules", {}).items():
            target = bicep.parent / module["detail"]["path"]
            assert target.is_file(), f"{bicep.name}: module {name}: {target} missing"
            declared = parse(target)["parameters"]
            config = module["config"]
            config = config.get("config", config)  # a conditional module nests its body
            given = set(config["params"])
            unknown = given - set(declared)
            required = {p for p, spec in declared.items() if spec.get("default") is None}
            assert not unknown, f"module {name} does not declare {sorted(unknown)}"
            assert required <= given, f"module {name} is missing {sorted(required - given)}"


def test_every_parameter_is_used() -> None:
    for bicep in BICEP_FILES:
        code = strip_strings_and_comments(bicep.read_text(encoding="utf-8"))
        interpolated = " ".join(re.findall(r"\$\{([^}]*)\}", bicep.read_text(encoding="utf-8")))
        for param in parse(bicep).get("parameters", {}):
            uses = len(re.findall(rf"\b{param}\b", code + " " + interpolated))
            assert uses >= 2, f"{bicep.name}: parameter {param} is never used"


def test_cosmos_database_and_containers() -> None:
    cosmos = parse(INFRA / "modules" / "cosmos.bicep")
    assert set(cosmos["variables"]["containerNames"]["value"]) == CONTAINERS
    account = cosmos["resources"]["account"]["config"]
    assert {"name": "EnableServerless"} in account["properties"]["capabilities"]
    containers = cosmos["resources"]["containers"]["config"]
    assert containers["loop_type"]["detail"]["array_name"] == "containerNames"
    resource = containers["config"]["properties"]["resource"]
    assert resource["partitionKey"]["paths"] == ["/pk"]
    # -1: TTL on, no default; items expire when they carry their own "ttl"
    assert resource["defaultTtl"] == {
        "operator": {"type": "minus", "operands": {"integer_value": 1}}
    }
    main = parse(MAIN)
    assert main["parameters"]["cosmosDatabase"]["default"] == "switchboard"


def test_bot_is_single_tenant_or_managed_identity_with_teams_channel() -> None:
    main = parse(MAIN)
    assert main["parameters"]["botAppType"]["default"] == "SingleTenant"
    allowed = next(
        d for d in main["parameters"]["botAppType"]["decorators"] if d["type"] == "allowed"
    )
    assert set(allowed["argument"]) == {"SingleTenant", "UserAssignedMSI"}
    bot = parse(INFRA / "modules" / "bot.bicep")["resources"]
    assert bot["teams"]["config"]["properties"]["channelName"] == "MsTeamsChannel"
    assert bot["teams"]["config"]["properties"]["properties"]["isEnabled"] is True


def test_secrets_come_from_key_vault() -> None:
    text = (INFRA / "modules" / "containerapp.bicep").read_text(encoding="utf-8")
    assert re.search(r"name: 'COSMOS_KEY'\s*\n\s*secretRef: 'cosmos-key'", text)
    assert re.search(
        r"name: 'MicrosoftAppPassword'\s*\n\s*secretRef: 'microsoft-app-password'", text
    )
    assert "keyVaultUrl: '${keyVaultUri}secrets/cosmos-key'" in text
    assert "keyVaultUrl: '${keyVaultUri}secrets/microsoft-app-password'" in text


def test_example_parameters_match_main_bicep() -> None:
    params = json.loads((INFRA / "main.parameters.example.json").read_text(encoding="utf-8"))
    declared = parse(MAIN)["parameters"]
    given = set(params["parameters"])
    assert given <= set(declared), sorted(given - set(declared))
    required = {p for p, spec in declared.items() if spec.get("default") is None}
    assert required <= given, sorted(required - given)
    secure = {
        p for p, spec in declared.items() if any(d["type"] == "secure" for d in spec["decorators"])
    }
    assert not (secure & given), "never put secrets in the parameters file"
