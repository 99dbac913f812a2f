import { graphql } from '../generated/gql.js';

export const ToolMessageFieldsFragment = graphql(`
  fragment ToolMessageFields on Message {
    id
    role
    content
    status
    finishReason
    toolCallId
    toolCalls {
      id
      name
      arguments
    }
    promptTokens
    completionTokens
    usageEstimated
    error {
      code
      message
    }
  }
`);

export const SendWithToolsDocument = graphql(`
  mutation SendWithTools($input: SendMessageInput!) {
    sendMessage(input: $input) {
      conversation {
        id
      }
      assistantMessage {
        ...ToolMessageFields
      }
    }
  }
`);

export const SubmitToolResultsDocument = graphql(`
  mutation SubmitToolResults($input: SubmitToolResultsInput!) {
    submitToolResults(input: $input) {
      conversation {
        id
      }
      userMessage {
        ...ToolMessageFields
      }
      assistantMessage {
        ...ToolMessageFields
      }
    }
  }
`);

export const ToolMessageStreamDocument = graphql(`
  subscription ToolMessageStream($messageId: ID!) {
    messageStream(messageId: $messageId) {
      seq
      delta
      reset
      done
      toolCallDeltas {
        index
        id
        name
        argumentsDelta
      }
      message {
        ...ToolMessageFields
      }
    }
  }
`);

export const ToolMessageDocument = graphql(`
  query ToolMessage($id: ID!) {
    node(id: $id) {
      ...ToolMessageFields
    }
  }
`);

export const ConversationTranscriptDocument = graphql(`
  query ConversationTranscript($id: ID!) {
    conversation(id: $id) {
      messages(first: 50) {
        edges {
          node {
            ...ToolMessageFields
          }
        }
      }
    }
  }
`);
