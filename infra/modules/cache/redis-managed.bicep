// Azure Managed Redis (Microsoft.Cache/redisEnterprise): Redis 7.4, TLS only
// (minimum 1.2), the non-clustered policy (the app's Lua scripts build key
// names under one prefix, so every key must live in one shard), access keys
// (the app connects with REDIS_URL), and the URL in Key Vault.
param name string
param location string
param tags object
param skuName string
param highAvailability bool
param evictionPolicy string

@description('Subnet for a private endpoint (networkAccess private); empty: public endpoint.')
param privateEndpointSubnetId string

@description('Private DNS zone privatelink.redis.azure.net (networkAccess private).')
param privateDnsZoneId string
param keyVaultName string
param logAnalyticsWorkspaceId string

var isPrivate = !empty(privateEndpointSubnetId)

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: highAvailability ? 'Enabled' : 'Disabled'
    publicNetworkAccess: isPrivate ? 'Disabled' : 'Enabled'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    clusteringPolicy: 'NoCluster'
    evictionPolicy: evictionPolicy
    accessKeysAuthentication: 'Enabled'
    persistence: {
      aofEnabled: false
      rdbEnabled: false
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
          privateLinkServiceId: cluster.id
          groupIds: [
            'redisEnterprise'
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
    value: 'rediss://:${uriComponent(database.listKeys().primaryKey)}@${cluster.properties.hostName}:10000/0'
    contentType: 'text/plain'
  }
}

resource clusterDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: cluster
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

resource databaseDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: database
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

output id string = cluster.id
output name string = cluster.name
output hostName string = cluster.properties.hostName
output urlSecretUri string = urlSecret.properties.secretUri
