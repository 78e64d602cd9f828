"""The Teams app package declares the tabs and the SSO resource the server checks tokens for;
it stays valid against the official schema (tests/deploy/test_deploy_manifest.py)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.signing_keys import PublishedKeys
from bot.tabs.entra import SsoTokenValidator
from bot.tabs.site import PAGES
from tests.deploy.conftest import load_script
from tests.tabs.entra_standin import APP_ID, HOST, TENANT


async def test_the_package_has_the_tabs_and_the_audience_the_server_checks(
        tmp_path: Path) -> None:
    build = load_script("build")
    manifest = build.build(out=tmp_path / "app.zip",
                           environ={"MicrosoftAppId": APP_ID, "SWITCHBOARD_PUBLIC_HOST": HOST})
    tabs = {t["entityId"]: t for t in manifest["staticTabs"]}
    assert list(tabs) == ["conversations", "my-sessions", "board"]  # the bot chat stays first
    assert tabs["my-sessions"]["contentUrl"] == f"https://{HOST}/tabs/sessions"
    assert tabs["board"]["contentUrl"] == f"https://{HOST}/tabs/board"
    assert all(t["scopes"] == ["personal"] for t in tabs.values())
    assert "/tabs/sessions" in PAGES
    async with aiohttp.ClientSession() as session:
        validator = SsoTokenValidator(app_id=APP_ID, public_host=HOST, tenant_id=TENANT,
                                      authority="https://login.microsoftonline.com",
                                      keys=PublishedKeys(session, "unused"))
    assert manifest["webApplicationInfo"] == {"id": APP_ID, "resource": validator.audiences[0]}
