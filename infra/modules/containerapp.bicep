// Azure Container Apps: the Linux hosting of the app (the image built from the repository's
// Dockerfile). External HTTPS ingress to port 3978 (bot endpoint /api/messages, the Interact
// widget and its WebSockets, the task API), health probes on /healthz, rolling revisions.
//
// The environment variables below are the app's configuration contract (README, "Configuration");
// tests/deploy checks that they match bot.config.ENV_NAMES.

param environmentName string
param appName string
param location string
param tags object
param workspaceName string
param identityId string
param image string
param registryServer string
param customHost string
param minReplicas int
param maxReplicas int
param keyVaultUri string
param hasAppPassword bool
@description('Name of the Key Vault certificate the bot authenticates with instead of a client secret (empty: none).')
param appCertificateName string = ''
param microsoftAppId string
param microsoftAppType string
param microsoftAppTenantId string
param cosmosEndpoint string
param cosmosDatabase string
param logLevel string
param services string
param graphUrl string
param authority string
param teamsCatalogAppId string
param sqliteDb string
param smtpPort string
param smtpRelay string
param serviceUrlHosts string
param hasAppInsights bool

var port = 3978

resource workspace 'Microsoft.OperationalInsights/workspaces@2022-10-01' existing = {
  name: workspaceName
}

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: environmentName
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: workspace.properties.customerId
        sharedKey: workspace.listKeys().primarySharedKey
      }
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
  }
}

var publicHost = empty(customHost) ? '${appName}.${environment.properties.defaultDomain}' : customHost

// Secrets come from Key Vault (versionless URIs: a new secret version is picked up on restart).
var passwordSecret = hasAppPassword ? [
  {
    name: 'microsoft-app-password'
    keyVaultUrl: '${keyVaultUri}secrets/microsoft-app-password'
    identity: identityId
  }
] : []

var insightsSecret = hasAppInsights ? [
  {
    name: 'appinsights-connection-string'
    keyVaultUrl: '${keyVaultUri}secrets/appinsights-connection-string'
    identity: identityId
  }
] : []

// A Key Vault certificate read as a secret is its PKCS#12 (base64) or PEM, with the private key:
// MicrosoftAppCertificate takes either.
var certificateSecret = empty(appCertificateName) ? [] : [
  {
    name: 'microsoft-app-certificate'
    keyVaultUrl: '${keyVaultUri}secrets/${appCertificateName}'
    identity: identityId
  }
]

var secrets = concat([
  {
    name: 'cosmos-key'
    keyVaultUrl: '${keyVaultUri}secrets/cosmos-key'
    identity: identityId
  }
], passwordSecret, certificateSecret, insightsSecret)

var registries = empty(registryServer) ? [] : [
  {
    server: registryServer
    identity: identityId
  }
]

// Settings the app always gets.
var requiredEnv = [
  {
    name: 'MicrosoftAppId'
    value: microsoftAppId
  }
  {
    name: 'MicrosoftAppType'
    value: microsoftAppType
  }
  {
    name: 'MicrosoftAppTenantId'
    value: microsoftAppTenantId
  }
  {
    name: 'PORT'
    value: string(port)
  }
  {
    name: 'SWITCHBOARD_PUBLIC_HOST'
    value: publicHost
  }
  {
    name: 'SWITCHBOARD_LOG_LEVEL'
    value: logLevel
  }
  {
    name: 'SWITCHBOARD_STORE'
    value: 'cosmos'
  }
  {
    name: 'COSMOS_ENDPOINT'
    value: cosmosEndpoint
  }
  {
    name: 'COSMOS_KEY'
    secretRef: 'cosmos-key'
  }
  {
    name: 'COSMOS_DATABASE'
    value: cosmosDatabase
  }
  {
    name: 'SWITCHBOARD_SMTP_PORT'
    value: smtpPort
  }
  // Fail closed: the image never runs unauthenticated (local mode) in Azure.
  {
    name: 'SWITCHBOARD_LOCAL_MODE'
    value: '0'
  }
  {
    name: 'SWITCHBOARD_HOST'
    value: '0.0.0.0'
  }
  // The Container Apps ingress appends the customer's address to X-Forwarded-For.
  {
    name: 'SWITCHBOARD_TRUSTED_PROXIES'
    value: '1'
  }
]

// The client secret only for a SingleTenant bot (a managed identity has none).
var passwordEnv = hasAppPassword ? [
  {
    name: 'MicrosoftAppPassword'
    secretRef: 'microsoft-app-password'
  }
] : []

// Traces and metrics go to Application Insights when the deployment made one.
var telemetryEnv = hasAppInsights ? [
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    secretRef: 'appinsights-connection-string'
  }
] : []

// A certificate instead of the client secret (SingleTenant with botAppCertificateName).
var certificateEnv = empty(appCertificateName) ? [] : [
  {
    name: 'MicrosoftAppCertificate'
    secretRef: 'microsoft-app-certificate'
  }
]

// Optional settings: set only when given, otherwise the app's defaults apply.
var optionalEnv = concat(
  empty(services) ? [] : [
    {
      name: 'SWITCHBOARD_SERVICES'
      value: services
    }
  ],
  empty(graphUrl) ? [] : [
    {
      name: 'SWITCHBOARD_GRAPH_URL'
      value: graphUrl
    }
  ],
  empty(authority) ? [] : [
    {
      name: 'SWITCHBOARD_AUTHORITY'
      value: authority
    }
  ],
  empty(teamsCatalogAppId) ? [] : [
    {
      name: 'SWITCHBOARD_TEAMS_APP_ID'
      value: teamsCatalogAppId
    }
  ],
  empty(sqliteDb) ? [] : [
    {
      name: 'SWITCHBOARD_DB'
      value: sqliteDb
    }
  ],
  empty(smtpRelay) ? [] : [
    {
      name: 'SWITCHBOARD_SMTP_RELAY'
      value: smtpRelay
    }
  ],
  empty(serviceUrlHosts) ? [] : [
    {
      name: 'SWITCHBOARD_SERVICE_URL_HOSTS'
      value: serviceUrlHosts
    }
  ]
)

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: appName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: port
        transport: 'auto'
        allowInsecure: false
        traffic: [
          {
            latestRevision: true
            weight: 100
          }
        ]
      }
      secrets: secrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'switchboard'
          image: image
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          env: concat(requiredEnv, passwordEnv, certificateEnv, telemetryEnv, optionalEnv)
          probes: [
            {
              // start-up includes the storage schema migrations: allow up to 100 s
              type: 'Startup'
              httpGet: {
                path: '/healthz'
                port: port
              }
              initialDelaySeconds: 3
              periodSeconds: 10
              timeoutSeconds: 5
              failureThreshold: 10
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/healthz'
                port: port
              }
              periodSeconds: 10
              timeoutSeconds: 5
              failureThreshold: 3
            }
            {
              type: 'Liveness'
              httpGet: {
                path: '/healthz'
                port: port
              }
              periodSeconds: 30
              timeoutSeconds: 5
              failureThreshold: 3
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'http'
            http: {
              metadata: {
                concurrentRequests: '50'
              }
            }
          }
        ]
      }
    }
  }
}

output appName string = app.name
output publicHost string = publicHost
