"""The committed Teams JavaScript client is the npm package's, as `make tabs-assets` copies it."""

from __future__ import annotations

import json

import pytest

from tests.support.node import NODE_MODULES, node_missing

VENDOR = NODE_MODULES.parent / "bot" / "tabs" / "static" / "vendor" / "MicrosoftTeams.min.js"
PACKAGE = NODE_MODULES / "@microsoft" / "teams-js"
MAP_COMMENT = "//# sourceMappingURL=MicrosoftTeams.min.js.map"


def test_the_committed_teams_client_is_the_pinned_packages() -> None:
    missing = node_missing("@microsoft/teams-js")
    if missing:
        pytest.skip(missing)
    shipped = (PACKAGE / "dist" / "umd" / "MicrosoftTeams.min.js").read_text(encoding="utf-8")
    assert VENDOR.read_text(encoding="utf-8") == shipped.replace(MAP_COMMENT, ""), \
        "run make tabs-assets"
    pinned = json.loads((NODE_MODULES.parent / "package.json").read_text())["devDependencies"]
    assert json.loads((PACKAGE / "package.json").read_text())["version"] == \
        pinned["@microsoft/teams-js"]
