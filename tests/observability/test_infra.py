"""The Bicep wires Application Insights: a workspace-based resource whose connection string
reaches the app from Key Vault as APPLICATIONINSIGHTS_CONNECTION_STRING."""

from __future__ import annotations

import re

from tests.deploy.test_deploy_infra import INFRA, MAIN, parse


def test_application_insights_is_wired_to_the_app() -> None:
    main = parse(MAIN)
    assert main["parameters"]["applicationInsights"]["default"] is True
    insights = parse(INFRA / "modules" / "appinsights.bicep")["resources"]
    component = insights["insights"]["config"]
    assert component["properties"]["WorkspaceResourceId"] == "workspaceId"
    assert insights["connectionString"]["config"]["name"] == "appinsights-connection-string"
    text = (INFRA / "modules" / "containerapp.bicep").read_text(encoding="utf-8")
    assert re.search(r"name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'\s*\n\s*"
                     r"secretRef: 'appinsights-connection-string'", text)
    assert "keyVaultUrl: '${keyVaultUri}secrets/appinsights-connection-string'" in text
    [env] = re.findall(r"^\s*env: concat\(([^)]*)\)", text, re.M)
    assert "telemetryEnv" in [name.strip() for name in env.split(",")]
    [secrets] = re.findall(r"^\], (passwordSecret[^)]*)\)", text, re.M)
    assert "insightsSecret" in [name.strip() for name in secrets.split(",")]
