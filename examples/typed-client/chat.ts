// The chat example with types generated from schema.graphql (graphql-codegen's client preset):
// every document below is a TypedDocumentNode, so results and variables are checked by tsc.
// Usage, from the repository's root: npx tsx examples/typed-client/chat.ts "Hello there"
// (GRAPHQL_URL defaults to http://localhost:4000/graphql). It streams a reply, then makes a tool
// round trip: it offers a tool, runs the call the model asks for, and streams the answer.
import type { ResultOf, TypedDocumentNode, VariablesOf } from '@graphql-typed-document-node/core';
import { print, type ExecutionResult } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { graphql } from './generated/gql.js';

const url = process.env.GRAPHQL_URL ?? 'http://localhost:4000/graphql';

const Register = graphql(`
  mutation Register($input: RegisterInput!) {
    register(input: $input) { accessToken }
  }
`);

const SendMessage = graphql(`
  mutation SendMessage($content: String!) {
    sendMessage(input: { content: $content }) { conversation { id title } assistantMessage { id status } }
  }
`);

// A tool the model may call; the reply that asks for it ends with finishReason "tool_calls".
const AskWithTools = graphql(`
  mutation AskWithTools($conversationId: ID!, $content: String!, $tools: [ToolInput!]) {
    sendMessage(input: { conversationId: $conversationId, content: $content, tools: $tools, stream: false }) {
      assistantMessage { id finishReason toolCalls { id name arguments } }
    }
  }
`);

const SubmitToolResults = graphql(`
  mutation SubmitToolResults($messageId: ID!, $results: [ToolResultInput!]!) {
    submitToolResults(input: { messageId: $messageId, results: $results }) { assistantMessage { id } }
  }
`);

const MessageStream = graphql(`
  subscription MessageStream($id: ID!) {
    messageStream(messageId: $id) { delta done message { status content } usage { totalTokens costMicros } }
  }
`);

/** One operation over HTTP: the result's type comes from the document. */
async function execute<R, V>(document: TypedDocumentNode<R, V>, variables: V, token?: string): Promise<R> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const { data, errors } = (await response.json()) as ExecutionResult<R>;
  if (errors?.length || !data) throw new Error(errors?.map((error) => error.message).join('; ') ?? `HTTP ${response.status}`);
  return data;
}

const { register } = await execute(Register, {
  input: { email: `typed-${Date.now()}@example.com`, password: 'correct horse battery staple', name: 'Typed' },
});
const { sendMessage } = await execute(SendMessage, { content: process.argv[2] ?? 'Hello!' }, register.accessToken);
console.log(`conversation "${sendMessage.conversation.title}", reply ${sendMessage.assistantMessage.status}:`);

const client = createClient({
  url: url.replace(/^http/, 'ws'),
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${register.accessToken}` },
  retryAttempts: 0,
});

/** Prints a reply as it streams, then its final status and usage. */
async function follow(id: string): Promise<void> {
  const variables: VariablesOf<typeof MessageStream> = { id };
  for await (const { data, errors } of client.iterate<ResultOf<typeof MessageStream>>({ query: print(MessageStream), variables })) {
    if (errors?.length || !data) throw new Error(JSON.stringify(errors));
    const event = data.messageStream;
    process.stdout.write(event.delta);
    if (event.done && event.message && event.usage) {
      console.log(`\n[${event.message.status}] ${event.message.content.length} characters, ${event.usage.totalTokens} tokens`);
    }
  }
}

/** The tools this client runs itself, by name. */
const localTools: Record<string, (args: unknown) => string> = {
  get_time: () => new Date().toISOString(),
};

try {
  await follow(sendMessage.assistantMessage.id);

  const asked = await execute(
    AskWithTools,
    {
      conversationId: sendMessage.conversation.id,
      content: 'What time is it?',
      tools: [{ name: 'get_time', description: 'The current time, as ISO 8601', parameters: { type: 'object', properties: {} } }],
    },
    register.accessToken,
  );
  const reply = asked.sendMessage.assistantMessage;
  if (reply.finishReason === 'tool_calls') {
    const results = reply.toolCalls.map((call) => {
      console.log(`tool call ${call.name}(${call.arguments})`);
      return { toolCallId: call.id, content: localTools[call.name]?.(JSON.parse(call.arguments)) ?? `unknown tool ${call.name}` };
    });
    const { submitToolResults } = await execute(SubmitToolResults, { messageId: reply.id, results }, register.accessToken);
    await follow(submitToolResults.assistantMessage.id);
  }
} finally {
  await client.dispose();
}
