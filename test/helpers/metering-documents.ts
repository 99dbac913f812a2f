import { graphql } from '../generated/gql.js';

export const AccountBalanceDocument = graphql(`
  query AccountBalance {
    me {
      id
      plan
      active
      credits {
        balanceMicros
        heldMicros
        availableMicros
        ledger(first: 50) {
          totalCount
          edges {
            node {
              id
              kind
              amountMicros
              balanceAfterMicros
              reason
            }
          }
        }
      }
      quota {
        limitTokens
        usedTokens
        reservedTokens
        remainingTokens
        resetsAt
      }
      usage {
        totals {
          promptTokens
          cachedTokens
          cacheWriteTokens
          completionTokens
          reasoningTokens
          totalTokens
          costMicros
          requests
        }
      }
    }
  }
`);
