import { graphql } from '../generated/gql.js';

export const MessageAttemptsDocument = graphql(`
  query MessageAttempts($id: ID!) {
    node(id: $id) {
      ... on Message {
        id
        status
        content
        model
        provider
        promptTokens
        cachedTokens
        cacheWriteTokens
        completionTokens
        costMicros
        usageEstimated
        error {
          code
          message
        }
        attempts {
          provider
          model
          upstreamModel
          outcome
          httpStatus
          errorCode
          continued
          promptTokens
          cachedTokens
          cacheWriteTokens
          completionTokens
          usageEstimated
          costMicros
          billed
          firstTokenMs
          durationMs
        }
      }
    }
  }
`);
