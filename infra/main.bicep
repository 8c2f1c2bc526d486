// The whole deployment of the activity-tracking Functions app (azd: `azd up`).
//
// One resource group holding: the Function App on Flex Consumption with a
// user-assigned identity, its storage account (queues, archive tables, the
// payload container, the deployment container), optionally a second storage
// account for the archive, PostgreSQL flexible server, Redis, Key Vault,
// Log Analytics + Application Insights, alert rules and, for
// networkAccess = 'private', a virtual network.
//
// What was validated offline and what was not: docs/deploy.md.
targetScope = 'subscription'

// --- environment --------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('azd environment name; part of every resource name and the resource group name.')
param environmentName string

@minLength(1)
@description('Azure region of every resource.')
param location string

@description('Object id of the principal running azd (AZURE_PRINCIPAL_ID): may read the Key Vault secrets, so the migration hook can read the PostgreSQL DSN. Empty: no grant.')
param principalId string = ''

@description('Tags added to every resource.')
param tags object = {}

@description('Resource names overriding the generated ones, by key: resourceGroup, identity, logAnalytics, appInsights, storage, archiveStorage, keyVault, postgres, redis, plan, functionApp, vnet, actionGroup.')
param resourceNames object = {}

// --- access (docs/access.md, "In Azure") ---------------------------------------------

@allowed([
  'keys'
  'principal'
])
@description('AUTH_MODE of the app. keys: function keys, Easy Auth allows unauthenticated requests. principal: Easy Auth answers 401 to unauthenticated requests except the public paths.')
param authMode string = 'keys'

@description('Application (client) id of the Entra ID app registration Easy Auth uses (app roles Student, Teacher, Admin, Service). Empty: App Service Authentication stays off (only valid with authMode keys).')
param authClientId string = ''

@description('Tenant of that app registration.')
param authTenantId string = tenant().tenantId

@description('AUTH_USER_ID_CLAIM: the claim holding the user id (Entra ID object id by default).')
param authUserIdClaim string = 'http://schemas.microsoft.com/identity/claims/objectidentifier'

@description('Origins allowed by the Function App CORS setting (a dashboard on another origin).')
param corsAllowedOrigins array = []

@description('CORS Access-Control-Allow-Credentials (a page sending the Easy Auth cookie from another origin).')
param corsSupportCredentials bool = false

// --- network -----------------------------------------------------------------------

@allowed([
  'public'
  'private'
])
@description('public: PostgreSQL behind its firewall (Azure services + postgresAllowedIpRanges), Redis on its public TLS endpoint. private: a VNet; PostgreSQL VNet-injected, Redis behind a private endpoint, the Function App VNet-integrated; migrations must then run from inside the VNet.')
param networkAccess string = 'public'

@description('Extra PostgreSQL firewall rules for networkAccess public, e.g. the network that runs migrations: [{ name, startIpAddress, endIpAddress }].')
param postgresAllowedIpRanges array = []

@description('Address space of the VNet and its three subnets (networkAccess private).')
param vnetAddressPrefix string = '10.40.0.0/16'
param appSubnetPrefix string = '10.40.0.0/24'
param postgresSubnetPrefix string = '10.40.1.0/24'
param endpointsSubnetPrefix string = '10.40.2.0/24'

// --- Function App --------------------------------------------------------------------

@minValue(1)
@maxValue(1000)
@description('Flex Consumption maximum instance count (40 is the lowest value every API version has accepted). Each instance opens up to 15 PostgreSQL connections (three pools of 5): instances x 15 should stay under the server max_connections (docs/deploy.md, "Sizing").')
param functionMaximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption instance memory (MB).')
param functionInstanceMemoryMB int = 2048

// --- storage -----------------------------------------------------------------------

@description('true: the archive tables live in a storage account of their own (ARCHIVE_STORAGE_CONNECTION).')
param separateArchiveStorage bool = false

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
@description('Replication of the main storage account (queues, payloads, and the archive unless separate).')
param storageSkuName string = 'Standard_LRS'

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
@description('Replication of the archive storage account when separate (the compliance archive: geo-redundant by default).')
param archiveStorageSkuName string = 'Standard_GRS'

@minValue(1)
@description('Days after which claim-check payload blobs are deleted (the queue message TTL, 7 days; docs/privacy.md).')
param payloadRetentionDays int = 7

// --- PostgreSQL ----------------------------------------------------------------------

@allowed([
  '15'
  '16'
])
param postgresVersion string = '16'

@description('Compute SKU. Standard_B2s: max_connections 429 (Standard_B1ms has 50: two app instances).')
param postgresSkuName string = 'Standard_B2s'

@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string = 'Burstable'

@minValue(32)
param postgresStorageSizeGB int = 32

@minValue(7)
@maxValue(35)
param postgresBackupRetentionDays int = 7

@allowed([
  'Enabled'
  'Disabled'
])
param postgresGeoRedundantBackup string = 'Disabled'

@allowed([
  'Disabled'
  'SameZone'
  'ZoneRedundant'
])
@description('High availability (a standby and automatic failover); not available on Burstable.')
param postgresHighAvailability string = 'Disabled'

param postgresAdminLogin string = 'activityadmin'

@secure()
@minLength(16)
@description('PostgreSQL administrator password. azd: main.parameters.json reads it from Key Vault (secret postgres-admin-password) or generates one.')
param postgresAdminPassword string

param postgresDatabaseName string = 'activity'

// --- Redis -------------------------------------------------------------------------

@allowed([
  'managed'
  'cache'
])
@description('managed: Azure Managed Redis (Redis 7.4, non-clustered policy). cache: Azure Cache for Redis (Basic/Standard/Premium), which runs Redis 6.0 while the app uses SMISMEMBER and ZADD GT (Redis 6.2+): see docs/deploy.md before choosing it.')
param redisService string = 'managed'

@description('Azure Managed Redis SKU (redisService managed).')
param redisManagedSku string = 'Balanced_B0'

@description('Azure Managed Redis high availability (a replica).')
param redisManagedHighAvailability bool = true

@allowed([
  'Basic'
  'Standard'
  'Premium'
])
@description('Azure Cache for Redis tier (redisService cache). Standard has a replica and an SLA.')
param redisCacheSkuName string = 'Standard'

@minValue(0)
@maxValue(6)
@description('Azure Cache for Redis size: C0..C6 (Basic/Standard), P1..P5 (Premium).')
param redisCacheCapacity int = 1

@allowed([
  'AllKeysLRU'
  'AllKeysRandom'
  'NoEviction'
  'VolatileLRU'
  'VolatileRandom'
  'VolatileTTL'
])
@description('What Redis evicts when full. VolatileLRU evicts only keys with an expiry (views rebuilt from PostgreSQL), never a key without one.')
param redisEvictionPolicy string = 'VolatileLRU'

// --- app settings the app reads (shared/settings.py; README "Settings") --------------

param redisPrefix string = 'activity:'

@minValue(1)
param rollupBucketSeconds int = 60

param persistQueueName string = 'activity-persist'
param archiveQueueName string = 'activity-archive'
param realtimeQueueName string = 'activity-realtime'
param archiveTablePrefix string = 'activityarchive'
param payloadContainerName string = 'activity-payloads'

@minValue(1)
param postgresTimeoutSeconds int = 10

@minValue(1)
param retryAfterSeconds int = 5

@minValue(1)
param pythonThreadpoolThreadCount int = 16

@minValue(1)
param retentionPostgresDays int = 730

@minValue(1)
param retentionArchiveDays int = 2555

@description('SINK_RETRY_DELAYS: seconds between a sink\'s retries while a dependency is down, comma-separated.')
param sinkRetryDelays string = '10,30,60,120,300'

@minValue(1)
@description('SINK_RETRY_HORIZON_SECONDS: how long a sink retries before dead-lettering.')
param sinkRetryHorizonSeconds int = 86400

// --- monitoring ----------------------------------------------------------------------

@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Email address the alerts go to. Empty: the action group has no receiver (add one later).')
param alertEmail string = ''

@description('Application Insights accepts only Entra ID-authenticated telemetry when true (the app sends with its identity either way).')
param appInsightsDisableLocalAuth bool = false

@minValue(60)
@description('Queue message age alert: oldest message picked up in 5 minutes older than this (seconds).')
param queueAgeThresholdSeconds int = 600

@allowed([
  300
  600
  900
])
@description('Seconds between two runs of the /api/v1/health availability test, from each of three locations (each run is billed).')
param healthProbeFrequencySeconds int = 300

@minValue(1)
@maxValue(100)
@description('HTTP 5xx alert: percentage of failed HTTP requests over 15 minutes (at least 20 requests).')
param http5xxPercentThreshold int = 5

// --- names ---------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, { 'azd-env-name': environmentName })
var defaultNames = {
  resourceGroup: 'rg-${environmentName}'
  identity: 'id-${resourceToken}'
  logAnalytics: 'log-${resourceToken}'
  appInsights: 'appi-${resourceToken}'
  storage: 'st${resourceToken}'
  archiveStorage: 'starc${resourceToken}'
  keyVault: 'kv-${resourceToken}'
  postgres: 'psql-${resourceToken}'
  redis: 'redis-${resourceToken}'
  plan: 'plan-${resourceToken}'
  functionApp: 'func-${resourceToken}'
  vnet: 'vnet-${resourceToken}'
  actionGroup: 'ag-${resourceToken}'
}
var names = union(defaultNames, resourceNames)
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'
var isPrivate = networkAccess == 'private'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: allTags
}

module identity 'modules/identity/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    location: location
    tags: allTags
    retentionInDays: logRetentionDays
    disableLocalAuth: appInsightsDisableLocalAuth
    publisherPrincipalId: identity.outputs.principalId
  }
}

module network 'modules/network/network.bicep' = if (isPrivate) {
  name: 'network'
  scope: rg
  params: {
    name: names.vnet
    location: location
    tags: allTags
    addressPrefix: vnetAddressPrefix
    appSubnetPrefix: appSubnetPrefix
    postgresSubnetPrefix: postgresSubnetPrefix
    endpointsSubnetPrefix: endpointsSubnetPrefix
    postgresServerName: names.postgres
    redisService: redisService
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module storage 'modules/storage/storage-account.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: allTags
    skuName: storageSkuName
    queueNames: [
      persistQueueName
      '${persistQueueName}-poison'
      archiveQueueName
      '${archiveQueueName}-poison'
      realtimeQueueName
      '${realtimeQueueName}-poison'
    ]
    containerNames: [
      payloadContainerName
      deploymentContainerName
    ]
    expiringContainerName: payloadContainerName
    expiryDays: payloadRetentionDays
    dataPrincipalId: identity.outputs.principalId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module archiveStorage 'modules/storage/storage-account.bicep' = if (separateArchiveStorage) {
  name: 'archive-storage'
  scope: rg
  params: {
    name: names.archiveStorage
    location: location
    tags: allTags
    skuName: archiveStorageSkuName
    queueNames: []
    containerNames: []
    expiringContainerName: ''
    expiryDays: payloadRetentionDays
    dataPrincipalId: identity.outputs.principalId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module keyVault 'modules/security/key-vault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: allTags
    secretsUserPrincipalIds: empty(principalId) ? [
      identity.outputs.principalId
    ] : [
      identity.outputs.principalId
      principalId
    ]
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module postgres 'modules/database/postgres.bicep' = {
  name: 'postgres'
  scope: rg
  params: {
    name: names.postgres
    location: location
    tags: allTags
    version: postgresVersion
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    storageSizeGB: postgresStorageSizeGB
    backupRetentionDays: postgresBackupRetentionDays
    geoRedundantBackup: postgresGeoRedundantBackup
    highAvailability: postgresHighAvailability
    administratorLogin: postgresAdminLogin
    administratorPassword: postgresAdminPassword
    databaseName: postgresDatabaseName
    networkAccess: networkAccess
    allowedIpRanges: postgresAllowedIpRanges
    delegatedSubnetId: isPrivate ? network.outputs.postgresSubnetId : ''
    privateDnsZoneId: isPrivate ? network.outputs.postgresDnsZoneId : ''
    keyVaultName: keyVault.outputs.name
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module redisManaged 'modules/cache/redis-managed.bicep' = if (redisService == 'managed') {
  name: 'redis-managed'
  scope: rg
  params: {
    name: names.redis
    location: location
    tags: allTags
    skuName: redisManagedSku
    highAvailability: redisManagedHighAvailability
    evictionPolicy: redisEvictionPolicy
    privateEndpointSubnetId: isPrivate ? network.outputs.endpointsSubnetId : ''
    privateDnsZoneId: isPrivate ? network.outputs.redisDnsZoneId : ''
    keyVaultName: keyVault.outputs.name
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module redisCache 'modules/cache/redis-cache.bicep' = if (redisService == 'cache') {
  name: 'redis-cache'
  scope: rg
  params: {
    name: names.redis
    location: location
    tags: allTags
    skuName: redisCacheSkuName
    capacity: redisCacheCapacity
    evictionPolicy: redisEvictionPolicy
    privateEndpointSubnetId: isPrivate ? network.outputs.endpointsSubnetId : ''
    privateDnsZoneId: isPrivate ? network.outputs.redisDnsZoneId : ''
    keyVaultName: keyVault.outputs.name
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module functionApp 'modules/function/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: allTags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    archiveStorageAccountName: separateArchiveStorage ? archiveStorage.outputs.name : storage.outputs.name
    maximumInstanceCount: functionMaximumInstanceCount
    instanceMemoryMB: functionInstanceMemoryMB
    virtualNetworkSubnetId: isPrivate ? network.outputs.appSubnetId : ''
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    postgresDsnSecretUri: postgres.outputs.dsnSecretUri
    redisUrlSecretUri: redisService == 'managed' ? redisManaged.outputs.urlSecretUri : redisCache.outputs.urlSecretUri
    authMode: authMode
    authClientId: authClientId
    authTenantId: authTenantId
    authUserIdClaim: authUserIdClaim
    corsAllowedOrigins: corsAllowedOrigins
    corsSupportCredentials: corsSupportCredentials
    redisPrefix: redisPrefix
    rollupBucketSeconds: rollupBucketSeconds
    persistQueueName: persistQueueName
    archiveQueueName: archiveQueueName
    realtimeQueueName: realtimeQueueName
    archiveTablePrefix: archiveTablePrefix
    payloadContainerName: payloadContainerName
    postgresTimeoutSeconds: postgresTimeoutSeconds
    retryAfterSeconds: retryAfterSeconds
    pythonThreadpoolThreadCount: pythonThreadpoolThreadCount
    retentionPostgresDays: retentionPostgresDays
    retentionArchiveDays: retentionArchiveDays
    sinkRetryDelays: sinkRetryDelays
    sinkRetryHorizonSeconds: sinkRetryHorizonSeconds
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module alerts 'modules/monitoring/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: allTags
    actionGroupName: names.actionGroup
    alertEmail: alertEmail
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    appInsightsId: monitoring.outputs.appInsightsId
    functionAppName: functionApp.outputs.name
    functionAppHostName: functionApp.outputs.defaultHostName
    postgresServerId: postgres.outputs.id
    queueAgeThresholdSeconds: queueAgeThresholdSeconds
    healthProbeFrequencySeconds: healthProbeFrequencySeconds
    http5xxPercentThreshold: http5xxPercentThreshold
  }
}

// azd stores these in the environment (.azure/<env>/.env); the hooks read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_ARCHIVE_STORAGE_ACCOUNT_NAME string = separateArchiveStorage ? archiveStorage.outputs.name : storage.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.logAnalyticsName
output POSTGRES_SERVER_NAME string = postgres.outputs.name
output POSTGRES_HOST string = postgres.outputs.fqdn
output POSTGRES_DATABASE string = postgresDatabaseName
output POSTGRES_DSN_SECRET_NAME string = postgres.outputs.dsnSecretName
output NETWORK_ACCESS string = networkAccess
output REDIS_SERVICE string = redisService
output AUTH_MODE string = authMode
output PERSIST_QUEUE string = persistQueueName
output ARCHIVE_QUEUE string = archiveQueueName
output REALTIME_QUEUE string = realtimeQueueName
