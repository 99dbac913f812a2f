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
