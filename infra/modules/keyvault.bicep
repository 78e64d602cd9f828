// Key Vault for the app's secrets (RBAC mode). The app never reads the vault itself: Container
// Apps resolves the secrets with the managed identity and hands them to the app as environment
// variables (MicrosoftAppPassword, COSMOS_KEY).

param name string
param location string
param tags object

@description('Principal id of the managed identity that reads the secrets.')
param readerPrincipalId string

@description('Client secret of the bot app registration; written only when not empty, so later deployments may omit it.')
@secure()
param botAppPassword string

// Key Vault Secrets User (built-in role)
var secretsUserRole = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    publicNetworkAccess: 'Enabled'
  }
}

resource readSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, readerPrincipalId, secretsUserRole)
  scope: vault
  properties: {
    roleDefinitionId: secretsUserRole
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appPassword 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(botAppPassword)) {
  parent: vault
  name: 'microsoft-app-password'
  properties: {
    value: botAppPassword
    contentType: 'Client secret of the bot app registration (MicrosoftAppPassword)'
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
