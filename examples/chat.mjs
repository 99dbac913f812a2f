// Signs up, sends a message and prints the reply as it streams in over graphql-ws.
// Usage: node examples/chat.mjs "Hello there"      (GRAPHQL_URL defaults to http://localhost:4000/graphql)
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.env.GRAPHQL_URL ?? 'http://localhost:4000/graphql';

async function graphql(query, variables, token) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const { data, errors } = await response.json();
  if (errors) throw new Error(JSON.stringify(errors));
  return data;
}

const { register } = await graphql(
  'mutation ($input: RegisterInput!) { register(input: $input) { accessToken } }',
  { input: { email: `demo-${Date.now()}@example.com`, password: 'correct horse battery staple', name: 'Demo' } },
);
const token = register.accessToken;

const { sendMessage } = await graphql(
  'mutation ($content: String!) { sendMessage(input: { content: $content }) { conversation { title } assistantMessage { id status } } }',
  { content: process.argv[2] ?? 'Hello!' },
  token,
);
console.log(`conversation "${sendMessage.conversation.title}", reply ${sendMessage.assistantMessage.status}:`);

const client = createClient({
  url: url.replace(/^http/, 'ws'),
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
});
const subscription = client.iterate({
  query: `subscription ($id: ID!) {
    messageStream(messageId: $id) { seq delta done message { status } usage { totalTokens costMicros estimated } }
  }`,
  variables: { id: sendMessage.assistantMessage.id },
});
for await (const { data, errors } of subscription) {
  if (errors) throw new Error(JSON.stringify(errors));
  const event = data.messageStream;
  process.stdout.write(event.delta);
  if (event.done) {
    console.log(`\n[${event.message.status}] ${event.usage.totalTokens} tokens, ${event.usage.costMicros} micro-dollars`);
  }
}
await client.dispose();
