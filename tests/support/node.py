"""The `needs_node(*packages)` marker: a test that runs Node.js with npm packages from the
repo's node_modules is skipped, with one line saying what is missing, where they are not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
MARKER = "needs_node"


def node_missing(*packages: str) -> str | None:
    """What is missing to run node with these npm packages (None: nothing)."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    absent = [p for p in packages if not (NODE_MODULES / p / "package.json").is_file()]
    if absent:
        return f"npm package {', '.join(absent)} is not in node_modules (run npm ci)"
    return None


def skip_without_node(*packages: str) -> None:
    """For fixtures: skip the test that asked for them where node or a package is missing."""
    missing = node_missing(*packages)
    if missing is not None:
        pytest.skip(f"needs node: {missing}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(*packages): skip unless node and these npm packages are installed")


def pytest_runtest_setup(item: pytest.Item) -> None:
    marks = list(item.iter_markers(MARKER))
    if marks:
        skip_without_node(*(p for mark in marks for p in mark.args))
