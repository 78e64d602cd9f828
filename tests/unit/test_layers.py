"""The import contract that keeps the layers: read from the source with `ast`, so it runs in
`make test` with nothing to install and fails on a violation anywhere in `bot/` (imports
inside functions and under TYPE_CHECKING count too).

- the domain imports only the standard library and itself;
- the use cases (services) import only the standard library, the domain and themselves;
- only `bot.teams` imports the Bot SDK (the Microsoft 365 Agents SDK, `microsoft_agents`);
- nothing imports the archived Bot Framework SDK (`botbuilder`, `botframework`, `msrest`): it
  stays only in the bench's stock baseline;
- only `bot.storage` and the composition root (`bot.app`) import the stores;
- the desk (`bot.dialogs`) opens no unit of work of its own (`bot.services.context`) but asks
  use cases: one known exception until its inline reads move to `bot/services/queries.py`.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK = ("microsoft_agents",)
ARCHIVED_SDK = ("botbuilder", "botframework", "msrest")


@dataclass(frozen=True)
class Rule:
    """Modules under `layer` import nothing under `may_not`; with `may`, nothing but the
    standard library and modules under `may`. `why` says what the rule keeps."""

    layer: str
    why: str
    may: tuple[str, ...] = ()
    may_not: tuple[str, ...] = ()


CONTRACT = (
    Rule("bot.domain", "the domain is plain data and rules", may=("bot.domain",)),
    Rule("bot.services", "use cases see only the domain", may=("bot.domain", "bot.services")),
    Rule("bot", "only bot.teams speaks the Bot SDK", may_not=SDK),
    Rule("bot", "the archived Bot Framework SDK is gone", may_not=ARCHIVED_SDK),
    Rule("bot", "only the composition root opens a store", may_not=("bot.storage",)),
    Rule("bot.dialogs", "the desk asks use cases", may_not=("bot.services.context",)),
)

# Modules a rule does not bind, each with the reason. Shrink this; never grow it quietly.
EXEMPT: dict[tuple[str, str], str] = {
    ("bot.teams", "only bot.teams speaks the Bot SDK"): "the Teams adapter",
    ("bot.storage", "only the composition root opens a store"): "the stores themselves",
    ("bot.app", "only the composition root opens a store"): "the composition root",
}


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the tree, relative ones resolved."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                if not is_package:
                    package.pop()
                package = package[:len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            if node.module is None or node.level:
                # `from . import x` may name a submodule: count each name as one.
                found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, base))
    return found


def _breaks(rule: Rule, target: str) -> bool:
    if any(_under(target, banned) for banned in rule.may_not):
        return True
    if not rule.may or target.split(".")[0] in sys.stdlib_module_names:
        return False
    return not any(_under(target, allowed) for allowed in rule.may)


def _sources(root: Path) -> list[tuple[Path, str]]:
    return [(path, _module_name(path, root)) for path in sorted((root / "bot").rglob("*.py"))]


def _broken(rule: Rule, path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [(line, target) for line, target in imports(tree, module, path.name == "__init__.py")
            if _breaks(rule, target)]


def violations(root: Path) -> list[str]:
    """Every import under `root/bot` that breaks the contract, as `path:line: ... (why)`."""
    found: list[str] = []
    for path, module in _sources(root):
        for rule in CONTRACT:
            if not _under(module, rule.layer) or any(
                    _under(module, exempt) for exempt, why in EXEMPT if why == rule.why):
                continue
            found.extend(f"{path.relative_to(root)}:{line}: imports {target} ({rule.why})"
                         for line, target in _broken(rule, path, module))
    return found


def test_the_code_keeps_the_contract() -> None:
    assert violations(ROOT) == []


def test_every_exemption_is_still_needed() -> None:
    """An exemption whose modules keep the rule anyway goes: the contract only tightens."""
    for (exempt, why), _reason in EXEMPT.items():
        rule = next(r for r in CONTRACT if r.why == why)
        assert any(_broken(rule, path, module) for path, module in _sources(ROOT)
                   if _under(module, exempt)), f"{exempt} keeps {why!r}: drop its exemption"


@pytest.mark.parametrize(("where", "source", "why"), [
    ("bot/domain/leak.py", "from bot.services.engine import Engine\n",
     "the domain is plain data and rules"),
    ("bot/domain/leak.py", "import aiohttp\n", "the domain is plain data and rules"),
    ("bot/domain/sub/leak.py", "from ...services import engine\n",
     "the domain is plain data and rules"),
    ("bot/services/leak.py", "def f():\n    from bot.teams import outbound\n",
     "use cases see only the domain"),
    ("bot/services/leak.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
     "    from bot.webhooks import sender\n", "use cases see only the domain"),
    ("bot/interact/leak.py", "from microsoft_agents.hosting.core import TurnContext\n",
     "only bot.teams speaks the Bot SDK"),
    ("bot/teams/leak.py", "from botbuilder.core import TurnContext\n",
     "the archived Bot Framework SDK is gone"),
    ("bot/teams/leak.py", "def f():\n    import msrest.serialization\n",
     "the archived Bot Framework SDK is gone"),
    ("bot/email/leak.py", "import bot.storage.sqlite\n",
     "only the composition root opens a store"),
    ("bot/dialogs/leak.py", "from bot.services.context import Ctx\n",
     "the desk asks use cases"),
])
def test_a_deliberate_violation_fails_the_contract(tmp_path: Path, where: str, source: str,
                                                   why: str) -> None:
    leak = tmp_path / where
    leak.parent.mkdir(parents=True)
    leak.write_text(source)
    found = violations(tmp_path)
    assert len(found) == 1 and found[0].startswith(where) and found[0].endswith(f"({why})")


def test_what_the_layers_may_import_passes(tmp_path: Path) -> None:
    allowed = {
        "bot/domain/ok.py": "import json\nfrom datetime import UTC\nfrom bot.domain import ids\n"
                            "from . import errors\n",
        "bot/services/ok.py": "from bot.domain.task import Task\nfrom bot.services import ports\n",
        "bot/teams/ok.py": "from microsoft_agents.hosting.core import TurnContext\n",
        "bot/app.py": "from bot.storage.sqlite import SqliteStore\n",
        "bot/interact/ok.py": "import aiohttp\nfrom bot.services import chats\n",
    }
    for where, source in allowed.items():
        (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / where).write_text(source)
    assert violations(tmp_path) == []
