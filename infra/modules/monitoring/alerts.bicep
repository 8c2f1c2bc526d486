// Alert rules and the action group they notify. docs/operations.md explains
// each rule, its threshold and the runbook entry it leads to.
param location string
param tags object
param actionGroupName string

@description('Email receiver of the action group; empty: no receiver.')
param alertEmail string
param logAnalyticsWorkspaceId string
param appInsightsId string
param functionAppName string
param functionAppHostName string
param postgresServerId string
param queueAgeThresholdSeconds int

@description('Seconds between two runs of the health availability test (from each of 3 locations).')
param healthProbeFrequencySeconds int
param http5xxPercentThreshold int

var emailReceivers = empty(alertEmail) ? [] : [
  {
    name: 'operations'
    emailAddress: alertEmail
    useCommonAlertSchema: true
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'activity'
    enabled: true
    emailReceivers: emailReceivers
  }
}

// 1. A message was dead-lettered: PutMessage on a <queue>-poison queue, by
// the host (5 failed attempts) or by the app (a message that can never
// succeed, or a dependency down past SINK_RETRY_HORIZON_SECONDS).
resource poisonAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'poison-messages-${functionAppName}'
  location: location
  tags: tags
  properties: {
    displayName: 'Messages dead-lettered to a poison queue'
    description: 'A message reached <queue>-poison. Runbook: docs/operations.md, "Poison messages".'
    severity: 2
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
StorageQueueLogs
| where OperationName == "PutMessage" and StatusCode between (200 .. 299)
| where ObjectKey contains "-poison/"
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// 2. Queue message age: the host logs "Trigger Details: ... InsertedOn: <time>"
// when a queue function starts; the age is start time minus insertion time.
resource queueAgeAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'queue-message-age-${functionAppName}'
  location: location
  tags: tags
  properties: {
    displayName: 'Queue messages wait too long'
    description: 'The oldest queue message a function picked up was older than the threshold (seconds). Runbook: docs/operations.md, "Queue backlog".'
    severity: 2
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
AppTraces
| where Message startswith "Trigger Details:"
| extend InsertedOn = todatetime(extract(@"InsertedOn: ([^,]+)", 1, Message))
| where isnotnull(InsertedOn)
| summarize AgeSeconds = max(datetime_diff("second", TimeGenerated, InsertedOn))
'''
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'AgeSeconds'
          operator: 'GreaterThan'
          threshold: queueAgeThresholdSeconds
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// 3. HTTP 5xx rate over the HTTP functions (requests with a URL), at least 20
// requests in the window so one failure at night does not page anyone.
resource http5xxAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'http-5xx-rate-${functionAppName}'
  location: location
  tags: tags
  properties: {
    displayName: 'HTTP 5xx rate'
    description: 'Share of HTTP requests answered 5xx over 15 minutes above the threshold (percent). 503 is the app refusing while a queue or dependency is down. Runbook: docs/operations.md, "HTTP 5xx".'
    severity: 1
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
AppRequests
| where isnotempty(Url)
| summarize Total = count(), Failed = countif(toint(ResultCode) >= 500)
| where Total >= 20
| extend FailedPercent = 100.0 * Failed / Total
'''
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'FailedPercent'
          operator: 'GreaterThan'
          threshold: http5xxPercentThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// 4. The roll-up timer (every minute) has not succeeded for 15 minutes:
// counters pile up in Redis and /v1/reports/activity falls behind.
resource rollupAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'rollup-stalled-${functionAppName}'
  location: location
  tags: tags
  properties: {
    displayName: 'Roll-up timer not succeeding'
    description: 'rollup_counters had no successful run in 15 minutes. Runbook: docs/operations.md, "Roll-up delay".'
    severity: 2
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
AppRequests
| where Name == "rollup_counters" and Success == true
| summarize Runs = count()
'''
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'Runs'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// 5. Health from outside: GET /api/v1/health every 5 minutes (by default) from three
// regions; 503 means events cannot be accepted (a queue storage outage).
resource healthTest 'Microsoft.Insights/webtests@2022-06-15' = {
  name: 'health-${functionAppName}'
  location: location
  tags: union(tags, {
    'hidden-link:${appInsightsId}': 'Resource'
  })
  kind: 'standard'
  properties: {
    SyntheticMonitorId: 'health-${functionAppName}'
    Name: 'GET /api/v1/health (${functionAppName})'
    Enabled: true
    Frequency: healthProbeFrequencySeconds
    Timeout: 30
    Kind: 'standard'
    RetryEnabled: true
    Locations: [
      {
        Id: 'us-va-ash-azr'
      }
      {
        Id: 'emea-nl-ams-azr'
      }
      {
        Id: 'apac-sg-sin-azr'
      }
    ]
    Request: {
      RequestUrl: 'https://${functionAppHostName}/api/v1/health'
      HttpVerb: 'GET'
      ParseDependentRequests: false
    }
    ValidationRules: {
      ExpectedHttpStatusCode: 200
      SSLCheck: true
      SSLCertRemainingLifetimeCheck: 7
    }
  }
}

resource healthAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'health-check-failing-${functionAppName}'
  location: 'global'
  tags: tags
  properties: {
    description: 'GET /api/v1/health failed from 2 of 3 locations. Runbook: docs/operations.md, "Health check failing".'
    severity: 1
    enabled: true
    scopes: [
      healthTest.id
      appInsightsId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria'
      webTestId: healthTest.id
      componentId: appInsightsId
      failedLocationCount: 2
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

// 6. PostgreSQL storage (auto-grow is on, but it only grows, and costs).
resource postgresStorageAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'postgres-storage-${functionAppName}'
  location: 'global'
  tags: tags
  properties: {
    description: 'PostgreSQL storage above 80 percent. Runbook: docs/operations.md, "PostgreSQL".'
    severity: 2
    enabled: true
    scopes: [
      postgresServerId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'storage'
          criterionType: 'StaticThresholdCriterion'
          metricName: 'storage_percent'
          metricNamespace: 'Microsoft.DBforPostgreSQL/flexibleServers'
          operator: 'GreaterThan'
          threshold: 80
          timeAggregation: 'Average'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

// 7. PostgreSQL CPU saturated for 15 minutes (Burstable credits run out).
resource postgresCpuAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'postgres-cpu-${functionAppName}'
  location: 'global'
  tags: tags
  properties: {
    description: 'PostgreSQL CPU above 90 percent for 15 minutes. Runbook: docs/operations.md, "PostgreSQL".'
    severity: 3
    enabled: true
    scopes: [
      postgresServerId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'cpu'
          criterionType: 'StaticThresholdCriterion'
          metricName: 'cpu_percent'
          metricNamespace: 'Microsoft.DBforPostgreSQL/flexibleServers'
          operator: 'GreaterThan'
          threshold: 90
          timeAggregation: 'Average'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

output actionGroupId string = actionGroup.id
