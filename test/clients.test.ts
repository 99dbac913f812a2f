import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { Client as UrqlClient, cacheExchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { serveForFile, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { MeDocument } from './helpers/documents.js';
import { wsUrl } from './helpers/ws.js';

// The clients app developers use, as they configure them, against the demo model: queries and
// mutations over HTTP, the reply stream over graphql-ws (Apollo, urql) and over SSE (urql).
let t: TestApp;
let url: URL;
serveForFile((app, address) => ((t = app), (url = address)));

interface StreamEvent {
  seq: number;
  delta: string;
  done: boolean;
  message?: { id: string; status: string; content: string } | null;
}

let wsClients: WsClient[] = [];
afterEach(async () => {
  await Promise.all(wsClients.map((c) => c.dispose()));
  wsClients = [];
});
function graphqlWs(token: string): WsClient {
  const client = createWsClient({ url: wsUrl(url), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` } });
  wsClients.push(client);
  return client;
}

/** What every client must see: ordered deltas that add up to the persisted reply. */
function expectWholeReply(events: StreamEvent[], prompt: string) {
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  const last = events.at(-1)!;
  expect(last.done).toBe(true);
  expect(last.message?.status).toBe('COMPLETE');
  expect(events.map((e) => e.delta).join('')).toBe(last.message?.content);
  expect(last.message?.content).toContain(`You said: "${prompt}"`);
}

describe('real GraphQL clients', () => {
  it('Apollo Client: HTTP for queries and mutations, GraphQLWsLink for the stream', async () => {
    const user = await registerUser(t);
    const http = new HttpLink({ uri: url.toString(), headers: { authorization: `Bearer ${user.accessToken}` } });
    const ws = new GraphQLWsLink(graphqlWs(user.accessToken));
    const link = ApolloLink.split(
      ({ query }) => {
        const definition = getMainDefinition(query);
        return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
      },
      ws,
      http,
    );
    const client = new ApolloClient({ link, cache: new InMemoryCache() });

    const me = await client.query({ query: MeDocument });
    expect(me.data?.me?.email).toBe(user.email);
    const sent = await client.mutate({ mutation: SendMessageDocument, variables: { input: { content: 'Hello from Apollo' } } });
    const messageId = sent.data!.sendMessage.assistantMessage.id;

    const events = await new Promise<StreamEvent[]>((resolve, reject) => {
      const received: StreamEvent[] = [];
      client.subscribe({ query: MessageStreamDocument, variables: { messageId } }).subscribe({
        next: (result) => {
          if (result.error) return reject(result.error);
          received.push(result.data!.messageStream);
        },
        error: reject,
        complete: () => resolve(received),
      });
    });
    expectWholeReply(events, 'Hello from Apollo');
    // The normalized cache now holds the finished message under its global id.
    const cached = client.cache.extract() as Record<string, { status?: string } | undefined>;
    expect(cached[`Message:${messageId}`]).toMatchObject({ status: 'COMPLETE' });
    client.stop();
  });

  for (const transport of ['graphql-ws', 'SSE'] as const) {
    it(`urql: HTTP for queries and mutations, ${transport} for the stream`, async () => {
      const user = await registerUser(t);
      const socket = transport === 'graphql-ws' ? graphqlWs(user.accessToken) : undefined;
      const client = new UrqlClient({
        url: url.toString(),
        fetchOptions: { headers: { authorization: `Bearer ${user.accessToken}` } },
        // Without a subscription exchange urql sends subscriptions over fetch as server-sent events.
        fetchSubscriptions: transport === 'SSE',
        exchanges: [
          cacheExchange,
          ...(socket
            ? [
                subscriptionExchange({
                  forwardSubscription: (request) => ({
                    subscribe: (sink) => ({ unsubscribe: socket.subscribe({ ...request, query: request.query ?? '' }, sink) }),
                  }),
                }),
              ]
            : []),
          fetchExchange,
        ],
      });

      const me = await client.query(MeDocument, {}).toPromise();
      expect(me.error).toBeUndefined();
      expect(me.data?.me?.email).toBe(user.email);
      const sent = await client.mutation(SendMessageDocument, { input: { content: `Hello from urql over ${transport}` } }).toPromise();
      expect(sent.error).toBeUndefined();
      const messageId = sent.data!.sendMessage.assistantMessage.id;

      const events = await new Promise<StreamEvent[]>((resolve, reject) => {
        const received: StreamEvent[] = [];
        // Not unsubscribed on `done`: the server ends the stream itself, and unsubscribing
        // mid-response makes urql abort its fetch with a rejection nobody handles.
        client.subscription(MessageStreamDocument, { messageId }).subscribe((result) => {
          if (result.error) return reject(result.error);
          const event = result.data!.messageStream as StreamEvent;
          received.push(event);
          if (event.done) resolve(received);
        });
      });
      expectWholeReply(events, `Hello from urql over ${transport}`);
    });
  }
});
