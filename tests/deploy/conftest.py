"""Fixtures of the deployment checks: the manifest scripts, the app's env-name contract, Ajv."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.node import skip_without_node

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str) -> ModuleType:
    """Import ``manifest/<name>.py`` (a script directory, not a package)."""
    module_name = f"_switchboard_manifest_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "manifest" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def build() -> ModuleType:
    return load_script("build")


@pytest.fixture(scope="session")
def make_icons() -> ModuleType:
    return load_script("make_icons")


@pytest.fixture(scope="session")
def env_names() -> tuple[str, ...]:
    """``bot.config.ENV_NAMES``: every environment variable the app reads."""
    if importlib.util.find_spec("bot.config") is None:
        pytest.skip("bot.config does not exist yet (it will define ENV_NAMES)")
    config = importlib.import_module("bot.config")
    names = getattr(config, "ENV_NAMES", None)
    assert names is not None, "bot.config must define ENV_NAMES (the environment names it reads)"
    return tuple(names)


@pytest.fixture(scope="session")
def ajv_validate() -> Path:
    """The Ajv cross-check script; skips when node or the npm packages are missing."""
    skip_without_node("ajv-draft-04", "ajv-formats", "@microsoft/app-manifest")
    return Path(__file__).resolve().parent / "ajv_validate.js"


def run_ajv(script: Path, schema: Path, manifest: Path) -> list[dict[str, object]]:
    import json

    done = subprocess.run(
        ["node", str(script), str(schema), str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))
