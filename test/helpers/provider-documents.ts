import { graphql } from '../generated/gql.js';

export const ProvidersDocument = graphql(`
  query Providers {
    providers {
      id
      kind
      state
      deployments {
        model
        upstreamModel
        state
        consecutiveFailures
        nextProbeAt
      }
      recent {
        since
        attempts
        errors
        timeouts
        cuts
        medianFirstTokenMs
        p95FirstTokenMs
        billedCostMicros
        unbilledCostMicros
      }
    }
  }
`);

export const ProviderUsageReportDocument = graphql(`
  query ProviderUsageReport($from: Date!, $to: Date!, $groupBy: UsageGroupBy!) {
    usageReport(from: $from, to: $to, groupBy: $groupBy) {
      key
      provider
      model
      day
      promptTokens
      cachedTokens
      completionTokens
      reasoningTokens
      totalTokens
      costMicros
      requests
      unbilledCostMicros
    }
  }
`);
