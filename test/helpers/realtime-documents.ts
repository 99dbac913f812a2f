import { graphql } from '../generated/gql.js';

export const CreateRealtimeSessionDocument = graphql(`
  mutation CreateRealtimeSession($input: CreateRealtimeSessionInput) {
    createRealtimeSession(input: $input) {
      clientSecret
      expiresAt
      model
    }
  }
`);
