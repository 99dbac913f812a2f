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
