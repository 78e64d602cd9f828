// Azure Bot (single-tenant app registration or user-assigned managed identity; new multi-tenant
// bots cannot be created any more) with the Microsoft Teams channel.

param name string
param tags object
param sku string
param endpoint string
param microsoftAppId string

@allowed([
  'SingleTenant'
  'UserAssignedMSI'
])
param microsoftAppType string
param microsoftAppTenantId string

@description('Resource id of the user-assigned managed identity (used when microsoftAppType is UserAssignedMSI).')
param identityId string

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: name
  location: 'global'
  tags: tags
  kind: 'azurebot'
  sku: {
    name: sku
  }
  properties: {
    displayName: 'Switchboard'
    description: 'Contact-center task bot for Microsoft Teams'
    endpoint: endpoint
    msaAppId: microsoftAppId
    msaAppType: microsoftAppType
    msaAppTenantId: microsoftAppTenantId
    msaAppMSIResourceId: microsoftAppType == 'UserAssignedMSI' ? identityId : null
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
      enableCalling: false
      acceptedTerms: true
    }
  }
}

output name string = bot.name
