// Application Insights on the Log Analytics workspace: the app exports its traces and metrics
// here (APPLICATIONINSIGHTS_CONNECTION_STRING, bot/observability/telemetry.py). The connection
// string goes to Key Vault like the other secrets.

param name string
param location string
param tags object
param workspaceId string
param keyVaultName string

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: name
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspaceId
    IngestionMode: 'LogAnalytics'
    RetentionInDays: 30
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource connectionString 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'appinsights-connection-string'
  properties: {
    value: insights.properties.ConnectionString
    contentType: 'Application Insights connection string (APPLICATIONINSIGHTS_CONNECTION_STRING)'
  }
}

output name string = insights.name
