// The Function App's user-assigned managed identity. User-assigned, not
// system-assigned, so its role assignments exist before the app first starts
// (the host needs its storage at once) and survive a re-created app.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
