// Key Vault for the app's secrets (PostgreSQL password and DSN, Redis URL),
// authorised by Azure RBAC. The secrets themselves are written by the modules
// that own them (database/postgres.bicep, cache/redis-*.bicep).
param name string
param location string
param tags object

@description('Principals given Key Vault Secrets User: the app identity (Key Vault references) and, optionally, whoever runs azd (the migration hook reads the DSN).')
param secretsUserPrincipalIds array
param logAnalyticsWorkspaceId string

// Key Vault Secrets User
var secretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_189:The app resolves Key Vault references over the public endpoint (Flex has no fixed outbound addresses); access is Entra RBAC only.
  // checkov:skip=CKV_AZURE_109:Same reason: network default action Allow; every request still needs an Entra ID token and a role.
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
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource secretsUsers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principal in secretsUserPrincipalIds: {
  name: guid(vault.id, principal, secretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUserRoleId)
    principalId: principal
  }
}]

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
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

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
