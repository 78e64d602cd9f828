// Cosmos DB for NoSQL, serverless: database and containers of the Cosmos DB store. Every container
// is partitioned on /pk and has TTL on without a default (defaultTtl -1): items live until the
// app sets a "ttl" on them (stored customer context expires that way). The account key goes to
// Key Vault for the app (COSMOS_KEY).

param accountName string
param location string
param tags object
param databaseName string
param keyVaultName string

@description('Principal id of the app\'s managed identity: gets Cosmos DB Built-in Data Contributor, for when the app authenticates with it instead of the key (COSMOS_KEY empty).')
param dataContributorPrincipalId string

var containerNames = [
  'tasks'
  'agents'
  'sessions'
  'events'
  'timers'
  'messages'
  'meta'
]

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    capabilities: [
      {
        name: 'EnableServerless'
      }
    ]
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

resource containers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = [for containerName in containerNames: {
  parent: database
  name: containerName
  properties: {
    resource: {
      id: containerName
      partitionKey: {
        paths: [
          '/pk'
        ]
        kind: 'Hash'
        version: 2
      }
      defaultTtl: -1
      // Same as bot.storage.cosmos.INDEXING_POLICY: the entity document body is not indexed.
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [
          {
            path: '/*'
          }
        ]
        excludedPaths: [
          {
            path: '/data/*'
          }
          {
            path: '/"_etag"/?'
          }
        ]
      }
    }
  }
}]

// Cosmos DB Built-in Data Contributor (data-plane role, not an Azure RBAC role)
resource dataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = {
  parent: account
  name: guid(account.id, dataContributorPrincipalId, 'data-contributor')
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/00000000-0000-0000-0000-000000000002'
    principalId: dataContributorPrincipalId
    scope: account.id
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource cosmosKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'cosmos-key'
  properties: {
    value: account.listKeys().primaryMasterKey
    contentType: 'Cosmos DB account key (COSMOS_KEY)'
  }
}

output accountName string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
output containerNames array = containerNames
