// The Function App on Flex Consumption (Linux, Python 3.11): its plan, the
// app with the user-assigned identity, every app setting the app reads
// (tests/unit/test_infra.py checks the list against shared/settings.py and the
// queue bindings), App Service Authentication for the chosen AUTH_MODE
// (docs/access.md, "In Azure"), and its resource logs.
param name string
param planName string
param location string
param tags object

@description('The azd service this app hosts (azure.yaml).')
param serviceName string = 'api'
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param archiveStorageAccountName string
param maximumInstanceCount int
param instanceMemoryMB int

@description('Subnet delegated to Microsoft.App/environments; empty: no VNet integration.')
param virtualNetworkSubnetId string
param appInsightsConnectionString string
param postgresDsnSecretUri string
param redisUrlSecretUri string

@allowed([
  'keys'
  'principal'
])
param authMode string
param authClientId string
param authTenantId string
param authUserIdClaim string
param corsAllowedOrigins array
param corsSupportCredentials bool

param redisPrefix string
param rollupBucketSeconds int
param persistQueueName string
param archiveQueueName string
param realtimeQueueName string
param archiveTablePrefix string
param payloadContainerName string
param postgresTimeoutSeconds int
param retryAfterSeconds int
param pythonThreadpoolThreadCount int
param retentionPostgresDays int
param retentionArchiveDays int
param sinkRetryDelays string
param sinkRetryHorizonSeconds int
param logAnalyticsWorkspaceId string

var isPrincipalMode = authMode == 'principal'
// Reachable without signing in when AUTH_MODE=principal (the app's PUBLIC
// routes and the dashboard's static files).
var publicPaths = [
  '/api/v1/health'
  '/api/v1/health/live'
  '/api/v1/openapi.json'
  '/api/dashboard/*'
]

// Entra ID as Easy Auth's provider: v2 tokens of the app registration, its
// Application ID URI or client id as audience (docs/access.md, "In Azure").
var entraProvider = {
  enabled: true
  registration: {
    clientId: authClientId
    openIdIssuer: '${environment().authentication.loginEndpoint}${authTenantId}/v2.0'
  }
  validation: {
    allowedAudiences: [
      'api://${authClientId}'
      authClientId
    ]
  }
  login: {
    disableWWWAuthenticate: false
  }
}

// Every app setting. Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION (functionAppConfig.runtime replaces them).
// Storage connections are identity-based: <connection>__accountName,
// __credential, __clientId (the app reads the same names).
var appSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  ARCHIVE_STORAGE_CONNECTION__accountName: archiveStorageAccountName
  ARCHIVE_STORAGE_CONNECTION__credential: 'managedidentity'
  ARCHIVE_STORAGE_CONNECTION__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  POSTGRES_DSN: '@Microsoft.KeyVault(SecretUri=${postgresDsnSecretUri})'
  POSTGRES_TIMEOUT_SECONDS: string(postgresTimeoutSeconds)
  REDIS_URL: '@Microsoft.KeyVault(SecretUri=${redisUrlSecretUri})'
  REDIS_PREFIX: redisPrefix
  ROLLUP_BUCKET_SECONDS: string(rollupBucketSeconds)
  PERSIST_QUEUE: persistQueueName
  ARCHIVE_QUEUE: archiveQueueName
  REALTIME_QUEUE: realtimeQueueName
  ARCHIVE_TABLE_PREFIX: archiveTablePrefix
  PAYLOAD_CONTAINER: payloadContainerName
  RETRY_AFTER_SECONDS: string(retryAfterSeconds)
  RETENTION_POSTGRES_DAYS: string(retentionPostgresDays)
  RETENTION_ARCHIVE_DAYS: string(retentionArchiveDays)
  SINK_RETRY_DELAYS: sinkRetryDelays
  SINK_RETRY_HORIZON_SECONDS: string(sinkRetryHorizonSeconds)
  AUTH_MODE: authMode
  AUTH_USER_ID_CLAIM: authUserIdClaim
  PYTHON_THREADPOOL_THREAD_COUNT: string(pythonThreadpoolThreadCount)
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Flex Consumption zone redundancy is a per-region opt-in, not enabled in this baseline (docs/deploy.md).
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17:Callers authenticate with function keys or Entra ID tokens (AUTH_MODE); client certificates are not part of the design.
  // checkov:skip=CKV_AZURE_222:A public HTTP API for browsers and the platform's backend; Easy Auth and function keys guard it.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero on demand; always-ready instances would cost at rest (docs/deploy.md).
  // checkov:skip=CKV_AZURE_213:Flex Consumption: health is probed by an Application Insights standard test on /api/v1/health (monitoring/alerts.bicep), which alerts.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
      cors: {
        allowedOrigins: corsAllowedOrigins
        supportCredentials: corsSupportCredentials
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// App Service Authentication (Easy Auth) with Entra ID; off when no client id.
resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13:False positive: the check reads authsettings V1 (properties.enabled); V2 enables it in properties.platform.enabled.
  // checkov:skip=CKV_AZURE_222:False positive: a Microsoft.Web/sites check applied to the authsettingsV2 child; the site's own skip says why.
  // checkov:skip=CKV_AZURE_80:False positive: .NET Framework version of a site, applied to the authsettingsV2 child (a Python app).
  // checkov:skip=CKV_AZURE_88:False positive: a site check (Azure Files mount) applied to the authsettingsV2 child; the app mounts no share.
  // checkov:skip=CKV_AZURE_65:False positive: a site check applied to the authsettingsV2 child; Flex Consumption logs go to Application Insights.
  // checkov:skip=CKV_AZURE_66:False positive: a site check applied to the authsettingsV2 child; requests are traced in Application Insights.
  // checkov:skip=CKV_AZURE_63:False positive: a site check applied to the authsettingsV2 child; HTTP logs are FunctionAppLogs/AppRequests.
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: !empty(authClientId)
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: isPrincipalMode
      unauthenticatedClientAction: isPrincipalMode ? 'Return401' : 'AllowAnonymous'
      excludedPaths: isPrincipalMode ? publicPaths : []
    }
    identityProviders: {
      azureActiveDirectory: empty(authClientId) ? {
        enabled: false
      } : entraProvider
    }
    login: {
      tokenStore: {
        enabled: false
      }
      preserveUrlFragmentsForLogins: false
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
  }
}

// No FTP and no basic-auth deployments: azd deploys with Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource planDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: plan
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: site
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
