import { print } from 'graphql';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, expectData, serveWithUpstreamForFile, startTestApp, type TestApp } from './helpers/app.js';
import { MessageStreamDocument, SendMessageDocument, StopGenerationDocument } from './helpers/chat-documents.js';
import { CreateApiKeyDocument, LogoutEverywhereDocument, MeDocument, RevokeApiKeyDocument } from './helpers/documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { connectWs, wsExecute, wsUrl } from './helpers/ws.js';

let t: TestApp;
let url: URL;
let upstream: MockUpstream;
const MAX_SUBSCRIPTIONS = 5;
const MAX_PER_USER = 3;

serveWithUpstreamForFile((app, address, mock) => ((t = app), (url = address), (upstream = mock)), {
  WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: String(MAX_SUBSCRIPTIONS),
  WS_MAX_CONNECTIONS_PER_USER: String(MAX_PER_USER),
});

/** A raw graphql-transport-ws socket, acknowledged, collecting every message it receives. */
async function rawSocket(token: string) {
  const socket = new WebSocket(wsUrl(url), 'graphql-transport-ws');
  const messages: Array<{ type: string; id?: string; payload?: unknown }> = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (data) => {
    messages.push(JSON.parse(data.toString()));
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<number>((resolve) => socket.once('close', resolve));
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
  const until = async (done: () => boolean) => {
    while (!done()) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  await until(() => messages.some((m) => m.type === 'connection_ack'));
  return { socket, messages, closed, until };
}

describe('WebSocket limits', () => {
  it('holds the per-connection operation cap when 200 subscribe messages arrive back to back', async () => {
    const { accessToken: token } = await registerUser(t);
    // A reply slow enough that every stream of it stays open during the burst.
    const prompt = upstream.prompt({ content: 'a b c d e f g h i j k l m n o p' }, { chunkSize: 1, latency: 250 });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token }));
    const messageId = sent.sendMessage.assistantMessage.id;
    const { socket, messages, until } = await rawSocket(token);
    try {
      const query = print(MessageStreamDocument);
      for (let i = 0; i < 200; i += 1) {
        socket.send(JSON.stringify({ id: `op${i}`, type: 'subscribe', payload: { query, variables: { messageId } } }));
      }
      const refused = () => messages.filter((m) => m.type === 'error' && JSON.stringify(m.payload).includes('operations per connection'));
      await until(() => refused().length >= 200 - MAX_SUBSCRIPTIONS);
      await until(() => new Set(messages.filter((m) => m.type === 'next').map((m) => m.id)).size >= MAX_SUBSCRIPTIONS);
      const streaming = new Set(messages.filter((m) => m.type === 'next').map((m) => m.id));
      expect(streaming.size).toBe(MAX_SUBSCRIPTIONS);
      expect(refused()).toHaveLength(200 - MAX_SUBSCRIPTIONS);
      expect(socket.readyState).toBe(WebSocket.OPEN);
    } finally {
      socket.close();
      await t.execute(StopGenerationDocument, { messageId }, { token });
    }
  });

  it('caps the connections from one address', async () => {
    const proxied = await startTestApp({ WS_MAX_CONNECTIONS_PER_IP: '3', TRUST_PROXY_HOPS: '1' });
    const proxiedUrl = await proxied.app.start(0);
    const sockets: WebSocket[] = [];
    const open = (ip: string) => {
      const socket = new WebSocket(wsUrl(proxiedUrl), 'graphql-transport-ws', { headers: { 'x-forwarded-for': ip } });
      sockets.push(socket);
      return new Promise<number | 'open'>((resolve) => {
        socket.once('close', (code) => resolve(code));
        socket.once('open', () => {
          socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
          socket.once('message', () => resolve('open'));
        });
      });
    };
    try {
      const first = [await open('198.51.100.1'), await open('198.51.100.1'), await open('198.51.100.1')];
      expect(first).toEqual(['open', 'open', 'open']);
      expect(await open('198.51.100.1')).toBe(4429);
      expect(await open('198.51.100.2')).toBe('open');
    } finally {
      for (const socket of sockets) socket.terminate();
    }
  });

  it('caps the connections of one account', async () => {
    const { accessToken } = await registerUser(t);
    const clients = Array.from({ length: MAX_PER_USER }, () => connectWs(url, accessToken));
    try {
      for (const client of clients) expectData(await wsExecute(client, MeDocument));
      const extra = connectWs(url, accessToken);
      clients.push(extra);
      expect((await extra.closed).code).toBe(4429);
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });

  it('closes the connections of a revoked API key at once and refuses it afterwards', async () => {
    const user = await registerUser(t);
    const key = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'ws' } }, { token: user.accessToken })).createApiKey;
    const keyClient = connectWs(url, key.secret);
    const tokenClient = connectWs(url, user.accessToken);
    try {
      expectData(await wsExecute(keyClient, MeDocument));
      expectData(await wsExecute(tokenClient, MeDocument));
      expectData(await t.execute(RevokeApiKeyDocument, { id: key.apiKey.id }, { token: user.accessToken }));
      expect(await keyClient.closed).toMatchObject({ code: 4401, reason: expect.stringMatching(/revoked/) });
      // The owner's other connections are untouched.
      expectData(await wsExecute(tokenClient, MeDocument));
      expect(errorCodes(await t.execute(MeDocument, undefined, { token: key.secret }))).toEqual(['UNAUTHENTICATED']);
    } finally {
      await keyClient.dispose();
      await tokenClient.dispose();
    }
  });

  it('closes the connections of sessions logged out everywhere', async () => {
    const user = await registerUser(t);
    const client = connectWs(url, user.accessToken);
    try {
      expectData(await wsExecute(client, MeDocument));
      expectData(await t.execute(LogoutEverywhereDocument, undefined, { token: user.accessToken }));
      expect((await client.closed).code).toBe(4401);
    } finally {
      await client.dispose();
    }
  });
});
