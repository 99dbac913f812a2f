import { graphql } from '../generated/gql.js';

export const CreateScopedApiKeyDocument = graphql(`
  mutation CreateScopedApiKey($input: CreateApiKeyInput!) {
    createApiKey(input: $input) {
      secret
      apiKey {
        id
        scopes
        monthlyBudgetMicros
        expiresAt
      }
    }
  }
`);

export const ApiKeySpendsDocument = graphql(`
  query ApiKeySpends {
    me {
      apiKeys(first: 50) {
        edges {
          node {
            id
            name
            scopes
            monthlyBudgetMicros
            spentThisMonthMicros
          }
        }
      }
    }
  }
`);
