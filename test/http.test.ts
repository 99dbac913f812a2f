import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { print } from 'graphql';
import { auditServer } from 'graphql-http';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';

import { errorCodes, expectData, serveForFile, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { CreateConversationDocument } from './helpers/chat-documents.js';
import { CreateApiKeyDocument, MeDocument } from './helpers/documents.js';
import { captureLogs } from './helpers/logs.js';
import { connectWs, wsExecute, wsUrl } from './helpers/ws.js';

let t: TestApp;
let url: URL;
serveForFile((app, address) => ((t = app), (url = address)));

const post = (body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('HTTP endpoints on a real port', () => {
  it('answers /health and /ready', async () => {
    const health = await fetch(new URL('/health', url));
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(new URL('/ready', url));
    expect(ready.status).toBe(200);
    const expectedChecks = process.env.REDIS_URL
      ? { database: 'ok', redis: 'ok', upstream: 'ok' }
      : { database: 'ok', upstream: 'ok' };
    // Circuit states are advisory, and on Redis shared with the rest of the suite: any state, named.
    const circuit = expect.stringMatching(/^(HEALTHY|DEGRADED|OPEN)$/);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: expectedChecks,
      providers: { openai: { state: circuit, deployments: { 'switchboard-demo': circuit } } },
    });
  });

  it('reports an unreachable model provider on /ready without taking the instance out of service', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const offline = await startTestApp({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: `http://127.0.0.1:${closedPort}/v1` });
    try {
      const offlineUrl = await offline.app.start(0);
      const ready = await fetch(new URL('/ready', offlineUrl));
      expect(ready.status).toBe(200);
      const body = await ready.json();
      expect(body).toMatchObject({ status: 'ready', checks: { database: 'ok', upstream: 'unavailable' } });
      expect(JSON.stringify(body)).not.toContain(String(closedPort));
    } finally {
      await offline.stop();
    }
  });

  it('serves GraphiQL at /graphql to browsers', async () => {
    const response = await fetch(url, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(await response.text()).toMatch(/graphiql/i);
  });

  it('passes the GraphQL over HTTP audit (every MUST)', async () => {
    const results = await auditServer({ url: url.toString() });
    const failed = results.filter((r) => r.status === 'error').map((r) => `${r.name}: ${'reason' in r ? r.reason : ''}`);
    expect(failed).toEqual([]);
  });

  it('adds a request id and security headers to every response', async () => {
    const response = await post(JSON.stringify({ query: '{ __typename }' }), { 'x-request-id': 'trace-123' });
    expect(response.headers.get('x-request-id')).toBe('trace-123');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    const health = await fetch(new URL('/health', url));
    expect(health.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('refuses an oversized body with 413 before reading it', async () => {
    const response = await post(JSON.stringify({ query: `{ me { id } } #${'x'.repeat(1024 * 1024)}` }));
    expect(response.status).toBe(413);
    expect((await response.json()).errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('refuses a body of unknown length (chunked) with 411, so no body is read past the limit', async () => {
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(JSON.stringify({ query: '{ __typename }' })));
        controller.close();
      },
    });
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(411);
    expect((await response.json()).errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('answers malformed JSON and unparsable queries with errors, not crashes', async () => {
    const malformed = await post('{"query": ');
    expect(malformed.status).toBe(400);
    const unparsable = await post(JSON.stringify({ query: '{ me { ' }), { accept: 'application/graphql-response+json' });
    expect(unparsable.status).toBe(400);
    expect((await unparsable.json()).errors[0].message).toMatch(/Syntax Error/);
  });

  it('refuses documents with too many tokens', async () => {
    const max = t.config.limits.document.maxTokens;
    const query = `{ ${'a '.repeat(max + 1)}}`;
    const response = await post(JSON.stringify({ query }), { accept: 'application/graphql-response+json' });
    expect((await response.json()).errors[0].message).toMatch(`more that ${max} tokens`);
  });

  it('serves operations as server-sent events', async () => {
    const user = await registerUser(t);
    const response = await post(JSON.stringify({ query: '{ me { email } }' }), {
      accept: 'text/event-stream',
      authorization: `Bearer ${user.accessToken}`,
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const text = await response.text();
    expect(text).toContain('event: next');
    expect(text).toContain(user.email);
    expect(text).toContain('event: complete');
  });

  it('masks unexpected errors over HTTP and graphql-ws: a generic message, no stack, SQL or internal text', async () => {
    // The database fails the insert of a conversation with this title (only that one: on
    // PostgreSQL the whole suite shares the database), its message carrying internal details.
    const title = `break-${randomUUID()}`;
    const internal = `disk full at block ${randomUUID()}`;
    // In a schema of its own: the application's schema holds only the functions of prisma/sql.
    const name = `test_fail_${title.slice(6, 14)}`;
    const fn = `test_faults.${name}`;
    await t.app.db.withConnection(async (conn) => {
      await conn.exec('CREATE SCHEMA IF NOT EXISTS test_faults');
      await conn.exec(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '${internal}'; END $$`);
      await conn.exec(`CREATE TRIGGER ${name} BEFORE INSERT ON "Conversation" FOR EACH ROW WHEN (NEW.title = '${title}') EXECUTE FUNCTION ${fn}()`);
    });
    onTestFinished(() =>
      t.app.db.withConnection(async (conn) => {
        await conn.exec(`DROP TRIGGER IF EXISTS ${name} ON "Conversation"`);
        await conn.exec(`DROP FUNCTION IF EXISTS ${fn}()`);
      }),
    );
    const user = await registerUser(t);
    const expectMasked = (result: { data?: unknown; errors?: readonly unknown[] }, raw: string) => {
      expect(result.errors).toEqual([
        { message: 'Unexpected error.', locations: expect.any(Array), path: ['createConversation'], extensions: { code: 'INTERNAL_SERVER_ERROR' } },
      ]);
      for (const leak of [internal, 'disk full', 'INSERT', '"Conversation"', 'Prisma', 'stack', '.ts:']) expect(raw).not.toContain(leak);
    };

    const response = await post(JSON.stringify({ query: print(CreateConversationDocument), variables: { input: { title } } }), {
      accept: 'application/graphql-response+json',
      authorization: `Bearer ${user.accessToken}`,
    });
    const raw = await response.text();
    expectMasked(JSON.parse(raw), raw);

    const client = connectWs(url, user.accessToken);
    const overWs = await wsExecute(client, CreateConversationDocument, { input: { title } });
    expectMasked(overWs, JSON.stringify(overWs));
  });
});

describe('graphql-ws on the same port and path', () => {
  it('authenticates with an API key in connectionParams', async () => {
    const user = await registerUser(t);
    const key = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'ws' } }, { token: user.accessToken }));
    const client = connectWs(url, key.createApiKey.secret);
    try {
      const result = await wsExecute(client, MeDocument);
      expect(result.data?.me?.email).toBe(user.email);
    } finally {
      await client.dispose();
    }
  });

  it('authenticates with an access token and runs mutations', async () => {
    const user = await registerUser(t);
    const client = connectWs(url, user.accessToken);
    try {
      const result = await wsExecute(client, CreateApiKeyDocument, { input: { name: 'over ws' } });
      expect(result.data?.createApiKey.apiKey.name).toBe('over ws');
    } finally {
      await client.dispose();
    }
  });

  it('is anonymous without a credential', async () => {
    const client = connectWs(url);
    try {
      expect((await wsExecute(client, MeDocument)).data?.me).toBeNull();
      const refused = await wsExecute(client, CreateApiKeyDocument, { input: { name: 'x' } });
      expect(errorCodes(refused)).toEqual(['UNAUTHENTICATED']);
    } finally {
      await client.dispose();
    }
  });

  it('closes the connection with 4401 and the reason for an invalid credential', async () => {
    const client = connectWs(url, 'sk_revoked-or-unknown');
    const { code, reason } = await client.closed;
    expect(code).toBe(4401);
    expect(reason).toMatch(/Unauthorized: API key is invalid, revoked or expired/);
    await client.dispose();
  });

  it('drops messages larger than the payload limit, logging one line instead of an internal error with its stack', async () => {
    const logs = captureLogs('info');
    const own = await startTestApp({}, { logger: logs.logger });
    const ownUrl = await own.app.start(0);
    const printed = vi.spyOn(console, 'error');
    onTestFinished(() => printed.mockRestore());
    const socket = new WebSocket(wsUrl(ownUrl), 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    const closed = new Promise<number>((resolve) => socket.once('close', resolve));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(own.config.limits.ws.maxPayloadBytes + 1) } }));
    expect(await closed).toBe(1009);
    expect(printed).not.toHaveBeenCalled();
    expect(logs.entries()).toContainEqual(
      expect.objectContaining({ code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', msg: 'websocket client closed: Max payload size exceeded' }),
    );
  });
});
