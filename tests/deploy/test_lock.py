"""The locked build: hashed lock files that agree with pyproject.toml and with each other, the
archived Bot Framework SDK only in the bench's, and a base image pinned (or marked unpinned)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ("runtime", "test", "bench")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def locked(name: str) -> dict[str, tuple[str, int]]:
    """Package -> (version, number of hashes) of requirements/<name>.txt."""
    found: dict[str, tuple[str, int]] = {}
    current = ""
    for line in (ROOT / "requirements" / f"{name}.txt").read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            found[current] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
    return found


def declared(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(text) for text in texts]


@pytest.mark.parametrize("name", LOCKS)
def test_every_locked_package_is_pinned_with_hashes(name: str) -> None:
    packages = locked(name)
    assert packages, f"requirements/{name}.txt pins nothing"
    unhashed = sorted(p for p, (_, hashes) in packages.items() if hashes == 0)
    assert not unhashed, f"requirements/{name}.txt: no hash for {unhashed}"


@pytest.mark.parametrize(("name", "extras"), [("runtime", []), ("test", ["test"]),
                                              ("bench", ["test", "bench"])])
def test_the_lock_holds_what_pyproject_asks_for(name: str, extras: list[str]) -> None:
    packages = locked(name)
    for requirement in declared() + [r for e in extras for r in declared(e)]:
        key = canonicalize_name(requirement.name)
        assert key in packages, f"{requirement} is not in requirements/{name}.txt: make lock"
        assert requirement.specifier.contains(packages[key][0], prereleases=True), \
            f"requirements/{name}.txt pins {key}=={packages[key][0]}, pyproject asks " \
            f"{requirement}: make lock"


def test_the_locks_agree_on_every_shared_package() -> None:
    runtime, test, bench = (locked(name) for name in LOCKS)
    assert {p: v for p, (v, _) in runtime.items()} == {p: test[p][0] for p in runtime}
    assert {p: v for p, (v, _) in test.items()} == {p: bench[p][0] for p in test}


def test_the_archived_bot_framework_sdk_is_only_in_the_bench() -> None:
    # msrest comes along with the Azure Monitor exporter (its own serializer); bot/ never
    # imports it (tests/unit/test_layers.py), so it is no way back to the old SDK.
    archived = {"botbuilder-core", "botbuilder-schema", "botframework-connector"}
    assert not archived & set(locked("runtime")) and not archived & set(locked("test"))
    assert {"botbuilder-core", "botbuilder-integration-aiohttp"} <= set(locked("bench"))
    assert {"microsoft-agents-activity", "microsoft-agents-hosting-core"} <= set(
        locked("runtime"))


def test_every_stage_starts_from_the_base_image_pinned_by_digest() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    [image] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", image)
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert stages and all(stage == "${PYTHON_IMAGE}" for stage in stages)
