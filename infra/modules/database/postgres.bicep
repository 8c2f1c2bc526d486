// Azure Database for PostgreSQL flexible server: TLS required, the app's
// database, the server parameters the app relies on, firewall rules or VNet
// injection, and the secrets (admin password, the app's DSN) in Key Vault.
//
// The migrations (sql/*.sql) need no extension and no server parameter beyond
// the defaults: they use only built-in SQL, PL/pgSQL, partitioning and
// advisory locks. The app turns jit off per session itself (options=-c
// jit=off on its report and access pools). A migration that runs CREATE
// EXTENSION needs the extension in allowedExtensions below (azure.extensions);
// tests/unit/test_infra.py fails until it is there.
param name string
param location string
param tags object
param version string
param skuName string
param skuTier string
param storageSizeGB int
param backupRetentionDays int
param geoRedundantBackup string
param highAvailability string
param administratorLogin string

@secure()
param administratorPassword string
param databaseName string

@allowed([
  'public'
  'private'
])
param networkAccess string

@description('Firewall rules added for networkAccess public: [{ name, startIpAddress, endIpAddress }].')
param allowedIpRanges array

@description('Subnet delegated to Microsoft.DBforPostgreSQL/flexibleServers (networkAccess private).')
param delegatedSubnetId string

@description('Private DNS zone <name>.private.postgres.database.azure.com (networkAccess private).')
param privateDnsZoneId string
param keyVaultName string
param logAnalyticsWorkspaceId string

var isPrivate = networkAccess == 'private'
// Extensions the migrations may create (the server's azure.extensions allow-list).
var allowedExtensions = []

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: version
    administratorLogin: administratorLogin
    administratorLoginPassword: administratorPassword
    authConfig: {
      // The app connects with a password DSN (POSTGRES_DSN); Entra ID tokens
      // would need token refresh in its connection pools.
      passwordAuth: 'Enabled'
      activeDirectoryAuth: 'Disabled'
    }
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: backupRetentionDays
      geoRedundantBackup: geoRedundantBackup
    }
    highAvailability: {
      mode: highAvailability
    }
    network: isPrivate ? {
      delegatedSubnetResourceId: delegatedSubnetId
      privateDnsZoneArmResourceId: privateDnsZoneId
      publicNetworkAccess: 'Disabled'
    } : {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// TLS required (the default, pinned here so nobody turns it off by accident),
// TLS 1.2 at least, and the connection log for the audit trail. Applied one
// after another: the server accepts one configuration change at a time.
resource requireTls 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'require_secure_transport'
  properties: {
    value: 'on'
    source: 'user-override'
  }
}

resource minTls 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'ssl_min_protocol_version'
  properties: {
    value: 'TLSv1.2'
    source: 'user-override'
  }
  dependsOn: [
    requireTls
  ]
}

resource logConnections 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'log_connections'
  properties: {
    value: 'on'
    source: 'user-override'
  }
  dependsOn: [
    minTls
  ]
}

resource logDisconnections 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'log_disconnections'
  properties: {
    value: 'on'
    source: 'user-override'
  }
  dependsOn: [
    logConnections
  ]
}

resource extensions 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = if (!empty(allowedExtensions)) {
  parent: server
  name: 'azure.extensions'
  properties: {
    value: join(allowedExtensions, ',')
    source: 'user-override'
  }
  dependsOn: [
    logDisconnections
  ]
}

// 0.0.0.0-0.0.0.0 is Azure's "allow Azure services": Flex Consumption has no
// fixed outbound addresses. Password + TLS still guard the server.
resource allowAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = if (!isPrivate) {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

@batchSize(1)
resource extraRules 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = [for rule in allowedIpRanges: if (!isPrivate) {
  parent: server
  name: rule.name
  properties: {
    startIpAddress: rule.startIpAddress
    endIpAddress: rule.endIpAddress
  }
  dependsOn: [
    allowAzure
  ]
}]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource passwordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:No expiry: the app's Key Vault reference would break at that instant; rotation is by procedure (docs/deploy.md).
  parent: vault
  name: 'postgres-admin-password'
  properties: {
    value: administratorPassword
    contentType: 'text/plain'
    attributes: {
      enabled: true
    }
  }
}

// libpq URI; sslmode=require (README "Deploying to Azure").
resource dsnSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:No expiry: the app's Key Vault reference would break at that instant; rotation is by procedure (docs/deploy.md).
  parent: vault
  name: 'postgres-dsn'
  properties: {
    value: 'postgresql://${uriComponent(administratorLogin)}:${uriComponent(administratorPassword)}@${server.properties.fullyQualifiedDomainName}:5432/${databaseName}?sslmode=require'
    contentType: 'text/plain'
    attributes: {
      enabled: true
    }
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: server
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

output id string = server.id
output name string = server.name
output fqdn string = server.properties.fullyQualifiedDomainName
output dsnSecretName string = dsnSecret.name
output dsnSecretUri string = dsnSecret.properties.secretUri
