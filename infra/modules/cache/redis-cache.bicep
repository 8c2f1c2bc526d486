// Azure Cache for Redis (Microsoft.Cache/redis), Basic/Standard/Premium:
// non-clustered (no shardCount), TLS only on 6380, minimum TLS 1.2, the URL
// in Key Vault.
//
// WARNING: this service runs Redis 6.0; the app uses SMISMEMBER and ZADD GT,
// which need Redis 6.2. Choose it only once the app avoids them (docs/deploy.md).
param name string
param location string
param tags object
param skuName string
param capacity int
param evictionPolicy string

@description('Subnet for a private endpoint (networkAccess private); empty: public endpoint.')
param privateEndpointSubnetId string

@description('Private DNS zone privatelink.redis.cache.windows.net (networkAccess private).')
param privateDnsZoneId string
param keyVaultName string
param logAnalyticsWorkspaceId string

var isPrivate = !empty(privateEndpointSubnetId)
// Azure Cache for Redis spells the policy in lower case with a dash.
var maxmemoryPolicy = {
  AllKeysLRU: 'allkeys-lru'
  AllKeysRandom: 'allkeys-random'
  NoEviction: 'noeviction'
  VolatileLRU: 'volatile-lru'
  VolatileRandom: 'volatile-random'
  VolatileTTL: 'volatile-ttl'
}

resource cache 'Microsoft.Cache/redis@2024-11-01' = {
  // checkov:skip=CKV_AZURE_89:Public only with networkAccess public (TLS 1.2+ and an access key); networkAccess private disables it and adds a private endpoint.
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
      family: skuName == 'Premium' ? 'P' : 'C'
      capacity: capacity
    }
    redisVersion: '6'
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: isPrivate ? 'Disabled' : 'Enabled'
    disableAccessKeyAuthentication: false
    redisConfiguration: {
      'maxmemory-policy': maxmemoryPolicy[evictionPolicy]
    }
  }
}

resource privateEndpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = if (isPrivate) {
  name: 'pe-${name}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'redis'
        properties: {
          privateLinkServiceId: cache.id
          groupIds: [
            'redisCache'
          ]
        }
      }
    ]
  }
}

resource privateDnsGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = if (isPrivate) {
  parent: privateEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'redis'
        properties: {
          privateDnsZoneId: privateDnsZoneId
        }
      }
    ]
  }
}

resource privateEndpointDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (isPrivate) {
  name: 'to-log-analytics'
  scope: privateEndpoint
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

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource urlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:No expiry: the app's Key Vault reference would break at that instant; rotation is by procedure (docs/deploy.md).
  parent: vault
  name: 'redis-url'
  properties: {
    value: 'rediss://:${uriComponent(cache.listKeys().primaryKey)}@${cache.properties.hostName}:6380/0'
    contentType: 'text/plain'
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: cache
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

output id string = cache.id
output name string = cache.name
output hostName string = cache.properties.hostName
output urlSecretUri string = urlSecret.properties.secretUri
