// Switchboard on Azure: an Azure Bot with the Microsoft Teams channel, the app in Azure Container
// Apps (Linux), Cosmos DB for NoSQL (serverless) and Key Vault for the secrets.
//
//   az deployment group create -g <resource group> -f infra/main.bicep \
//     -p @infra/main.parameters.json -p botAppPassword=<client secret>
//
// See docs/deploy.md for the whole procedure (app registration, Graph permissions, Teams package).

targetScope = 'resourceGroup'

@description('Short lowercase name used in every resource name (letters and digits).')
@minLength(3)
@maxLength(12)
param namePrefix string = 'switchboard'

@description('Azure region of the resources (the bot resource itself is global).')
param location string = resourceGroup().location

@description('How the bot authenticates: SingleTenant (an Entra app registration with a client secret, or a Key Vault certificate: botAppCertificateName) or UserAssignedMSI (the user-assigned managed identity created here; docs/deploy.md says which to choose).')
@allowed([
  'SingleTenant'
  'UserAssignedMSI'
])
param botAppType string = 'SingleTenant'

@description('SingleTenant only: the application (client) id of the single-tenant Entra app registration.')
param botAppId string = ''

@description('SingleTenant only: a client secret of that app registration. Stored in Key Vault; may be left empty on later deployments (the stored secret is kept).')
@secure()
param botAppPassword string = ''

@description('SingleTenant only: name of a certificate in the Key Vault created here (import the app registration\'s certificate into it after the first deployment) that the bot authenticates with instead of botAppPassword. Empty: the client secret.')
param botAppCertificateName string = ''

@description('Container image of the app, for example myregistry.azurecr.io/switchboard:0.1.0.')
param containerImage string

@description('Name of an Azure Container Registry in this resource group that holds the image; the managed identity gets AcrPull on it. Empty for a public image.')
param containerRegistryName string = ''

@description('Public host name of the bot if you bind a custom domain to the container app. Empty: the container app\'s default host name.')
param customHost string = ''

@description('SWITCHBOARD_LOG_LEVEL of the app.')
@allowed([
  'DEBUG'
  'INFO'
  'WARNING'
  'ERROR'
])
param logLevel string = 'INFO'

@description('Send traces and metrics to an Application Insights resource on the workspace (APPLICATIONINSIGHTS_CONNECTION_STRING).')
param applicationInsights bool = true

@description('SWITCHBOARD_SERVICES of the app: path of the services file (TOML) inside the container, e.g. /app/services.toml in an image derived from the Switchboard image. Empty: the demo services shipped with the app.')
param services string = ''

@description('SWITCHBOARD_GRAPH_URL of the app. Empty: the app default (the global Microsoft Graph).')
param graphUrl string = ''

@description('SWITCHBOARD_AUTHORITY of the app. Empty: the app default (the global Microsoft Entra authority).')
param authority string = ''

@description('SWITCHBOARD_TEAMS_APP_ID: the Teams app catalog id, to install the app into chats without looking it up (AppCatalog.Read.All). Empty: look it up.')
param teamsCatalogAppId string = ''

@description('SWITCHBOARD_DB of the app: the SQLite file of the embedded store, unused with Cosmos DB. Empty: the app default.')
param sqliteDb string = ''

@description('SWITCHBOARD_SMTP_PORT: the port of the inbound SMTP listener for email tasks; 0 = off. These templates expose only HTTPS ingress, so mail reaches the listener only through a TCP port mapping you add.')
param smtpPort string = '0'

@description('SWITCHBOARD_SMTP_RELAY: host:port of the SMTP relay that sends agents\' email replies. Empty: replies are off.')
param smtpRelay string = ''

@description('Bot Connector hosts to call besides Teams\' own, comma-separated (rarely needed).')
param serviceUrlHosts string = ''

@description('Cosmos DB database name (COSMOS_DATABASE).')
param cosmosDatabase string = 'switchboard'

@description('Fewest replicas. At least 1: the scheduler (ring timeouts, RONA reset, ACW) must always run.')
@minValue(1)
param minReplicas int = 1

@description('Most replicas (instances share the Cosmos DB account; every decision is a conditional write).')
@minValue(1)
param maxReplicas int = 3

@description('Azure Bot pricing tier; Teams is a standard channel (free messages on F0).')
@allowed([
  'F0'
  'S1'
])
param botSku string = 'F0'

@description('Tags for every resource.')
param tags object = {}

var prefix = toLower(namePrefix)
var suffix = uniqueString(resourceGroup().id, prefix)
var tenantId = tenant().tenantId

// The app's runtime identity: reads the Key Vault secrets, pulls the image, and is the bot's
// identity when botAppType is UserAssignedMSI.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${prefix}'
  location: location
  tags: tags
}

var microsoftAppId = botAppType == 'UserAssignedMSI' ? identity.properties.clientId : botAppId

resource workspace 'Microsoft.OperationalInsights/workspaces@2022-10-01' = {
  name: 'log-${prefix}-${suffix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'switchboard-keyvault'
  params: {
    name: 'kv-${take(prefix, 8)}-${take(suffix, 10)}'
    location: location
    tags: tags
    readerPrincipalId: identity.properties.principalId
    botAppPassword: botAppPassword
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'switchboard-cosmos'
  params: {
    accountName: 'cosmos-${prefix}-${suffix}'
    location: location
    tags: tags
    databaseName: cosmosDatabase
    keyVaultName: keyVault.outputs.name
    dataContributorPrincipalId: identity.properties.principalId
  }
}

module appInsights 'modules/appinsights.bicep' = if (applicationInsights) {
  name: 'switchboard-appinsights'
  params: {
    name: 'appi-${prefix}-${suffix}'
    location: location
    tags: tags
    workspaceId: workspace.id
    keyVaultName: keyVault.outputs.name
  }
}

module acrPull 'modules/acrpull.bicep' = if (!empty(containerRegistryName)) {
  name: 'switchboard-acrpull'
  params: {
    registryName: containerRegistryName
    principalId: identity.properties.principalId
  }
}

module app 'modules/containerapp.bicep' = {
  name: 'switchboard-app'
  dependsOn: [
    acrPull
    appInsights
  ]
  params: {
    environmentName: 'cae-${prefix}'
    appName: 'ca-${prefix}'
    location: location
    tags: tags
    workspaceName: workspace.name
    identityId: identity.id
    image: containerImage
    registryServer: empty(containerRegistryName) ? '' : '${toLower(containerRegistryName)}.azurecr.io'
    customHost: customHost
    minReplicas: minReplicas
    maxReplicas: maxReplicas
    keyVaultUri: keyVault.outputs.uri
    hasAppPassword: botAppType == 'SingleTenant' && empty(botAppCertificateName)
    appCertificateName: botAppType == 'SingleTenant' ? botAppCertificateName : ''
    microsoftAppId: microsoftAppId
    microsoftAppType: botAppType
    microsoftAppTenantId: tenantId
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabase: cosmos.outputs.databaseName
    logLevel: logLevel
    services: services
    graphUrl: graphUrl
    authority: authority
    teamsCatalogAppId: teamsCatalogAppId
    sqliteDb: sqliteDb
    smtpPort: smtpPort
    smtpRelay: smtpRelay
    serviceUrlHosts: serviceUrlHosts
    hasAppInsights: applicationInsights
  }
}

module bot 'modules/bot.bicep' = {
  name: 'switchboard-bot'
  params: {
    name: 'bot-${prefix}-${suffix}'
    tags: tags
    sku: botSku
    endpoint: 'https://${app.outputs.publicHost}/api/messages'
    microsoftAppId: microsoftAppId
    microsoftAppType: botAppType
    microsoftAppTenantId: tenantId
    identityId: identity.id
  }
}

@description('SWITCHBOARD_PUBLIC_HOST: build the Teams app package with it (make package).')
output publicHost string = app.outputs.publicHost

@description('MicrosoftAppId: the bot id and Teams app id (make package).')
output microsoftAppId string = microsoftAppId

@description('The bot messaging endpoint.')
output messagingEndpoint string = 'https://${app.outputs.publicHost}/api/messages'

@description('Principal (object) id of the managed identity (grant it the Graph app roles when botAppType is UserAssignedMSI).')
output identityPrincipalId string = identity.properties.principalId

output containerAppName string = app.outputs.appName
output keyVaultName string = keyVault.outputs.name
output cosmosAccountName string = cosmos.outputs.accountName
output botName string = bot.outputs.name
