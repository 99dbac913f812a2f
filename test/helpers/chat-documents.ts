import { graphql } from '../generated/gql.js';

export const MessageFieldsFragment = graphql(`
  fragment MessageFields on Message {
    id
    role
    content
    status
    model
    promptTokens
    cachedTokens
    cacheWriteTokens
    completionTokens
    reasoningTokens
    totalTokens
    costMicros
    usageEstimated
    finishReason
    error {
      code
      message
    }
  }
`);

export const ModelsDocument = graphql(`
  query Models {
    models {
      id
      provider
      contextWindow
      maxOutputTokens
      isDemo
      pricing {
        promptMicrosPerMillion
        completionMicrosPerMillion
      }
    }
  }
`);

export const SendMessageDocument = graphql(`
  mutation SendMessage($input: SendMessageInput!) {
    sendMessage(input: $input) {
      conversation {
        id
        title
        model
        messageCount
      }
      userMessage {
        id
        role
        content
        status
      }
      assistantMessage {
        ...MessageFields
      }
    }
  }
`);

export const StopGenerationDocument = graphql(`
  mutation StopGeneration($messageId: ID!) {
    stopGeneration(messageId: $messageId) {
      id
      status
      content
      promptTokens
      completionTokens
      usageEstimated
      finishReason
    }
  }
`);

export const MessageStreamDocument = graphql(`
  subscription MessageStream($messageId: ID!) {
    messageStream(messageId: $messageId) {
      messageId
      seq
      firstSeq
      delta
      reset
      done
      message {
        ...MessageFields
      }
      usage {
        promptTokens
        completionTokens
        totalTokens
        costMicros
        estimated
      }
    }
  }
`);

export const MessageDocument = graphql(`
  query Message($id: ID!) {
    node(id: $id) {
      ...MessageFields
    }
  }
`);

export const CreateConversationDocument = graphql(`
  mutation CreateConversation($input: CreateConversationInput!) {
    createConversation(input: $input) {
      id
      title
      model
      systemPrompt
    }
  }
`);

export const UpdateConversationDocument = graphql(`
  mutation UpdateConversation($input: UpdateConversationInput!) {
    updateConversation(input: $input) {
      id
      title
      model
      systemPrompt
    }
  }
`);

export const DeleteConversationDocument = graphql(`
  mutation DeleteConversation($id: ID!) {
    deleteConversation(id: $id)
  }
`);

export const ConversationDocument = graphql(`
  query Conversation($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
    conversation(id: $id) {
      id
      title
      messageCount
      usage {
        promptTokens
        cacheWriteTokens
        completionTokens
        totalTokens
        costMicros
        requests
      }
      messages(first: $first, after: $after, last: $last, before: $before) {
        totalCount
        pageInfo {
          hasNextPage
          hasPreviousPage
          startCursor
          endCursor
        }
        edges {
          cursor
          node {
            id
            role
            content
          }
        }
      }
    }
  }
`);

export const MyConversationsDocument = graphql(`
  query MyConversations($first: Int, $after: String, $last: Int, $before: String) {
    me {
      conversations(first: $first, after: $after, last: $last, before: $before) {
        totalCount
        pageInfo {
          hasNextPage
          hasPreviousPage
          endCursor
          startCursor
        }
        edges {
          node {
            id
            title
          }
        }
      }
    }
  }
`);

export const UsageDocument = graphql(`
  query Usage($from: Date, $to: Date) {
    me {
      usage(from: $from, to: $to) {
        totals {
          promptTokens
          cacheWriteTokens
          completionTokens
          totalTokens
          costMicros
          requests
        }
        daily {
          date
          promptTokens
          cacheWriteTokens
          completionTokens
          totalTokens
          costMicros
          requests
        }
      }
    }
  }
`);

export const NestedConversationsDocument = graphql(`
  query NestedConversations {
    me {
      conversations(first: 50) {
        edges {
          node {
            messageCount
            usage {
              totalTokens
            }
            messages(last: 20) {
              edges {
                node {
                  id
                  content
                }
              }
            }
          }
        }
      }
    }
  }
`);
