import { randomUUID } from 'node:crypto';
import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Prisma } from '../src/generated/prisma/client.js';
import { errorCodes, expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { CreateApiKeyDocument } from './helpers/documents.js';
import { currentRequest, runOperationWithRequestId } from '../src/observability/request-context.js';
import { captureLogs } from './helpers/logs.js';
import { connectWs, wsExecute } from './helpers/ws.js';

// Messages containing this fail to insert (a CHECK constraint added below): a database error
// whose details (PostgreSQL's "Failing row contains …", in Prisma's meta) hold the message text.
const MARKER = `secret-marker-${randomUUID()}`;

const logs = captureLogs('debug');
let t: TestApp;
let url: URL;
beforeAll(async () => {
  t = await startTestApp({}, { database: { kind: 'pglite', dataDir: 'memory://' }, logger: logs.logger });
  await t.app.db.withConnection((conn) =>
    conn.exec(`ALTER TABLE "Message" ADD CONSTRAINT "test_no_marker" CHECK (content NOT LIKE '%${MARKER}%')`),
  );
  url = await t.app.start(0);
});
afterAll(() => t?.stop());

function sendOverHttp(content: string, token: string, requestId: string) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-request-id': requestId },
    body: JSON.stringify({ query: print(SendMessageDocument), variables: { input: { content, stream: false } } }),
  });
}

const unexpectedErrors = () => logs.entries().filter((entry) => entry.msg === 'unexpected error');

describe('logs', () => {
  it('tag every line of a request with its request id, the masked error included', async () => {
    const user = await registerUser(t);
    const requestId = `test-${randomUUID()}`;
    const response = await sendOverHttp(`hello ${MARKER}`, user.accessToken, requestId);
    expect(response.headers.get('x-request-id')).toBe(requestId);
    const body = await response.json();
    expect(errorCodes(body)).toEqual(['INTERNAL_SERVER_ERROR']);
    expect(JSON.stringify(body)).not.toContain(MARKER);

    const lines = logs.entries().filter((entry) => entry.requestId === requestId);
    expect(lines.map((entry) => entry.msg)).toEqual(expect.arrayContaining(['unexpected error', 'request']));
    expect(lines.find((entry) => entry.msg === 'unexpected error')).toMatchObject({
      level: 50,
      path: 'sendMessage',
      err: { type: expect.stringMatching(/^PrismaClient/), frames: expect.any(Array) },
    });
  });

  it('tag each graphql-ws operation with an id of its own', async () => {
    const user = await registerUser(t);
    const ws = connectWs(url, user.accessToken);
    try {
      const before = unexpectedErrors().length;
      for (let i = 0; i < 2; i += 1) {
        const result = await wsExecute(ws, SendMessageDocument, { input: { content: `ws ${MARKER}`, stream: false } });
        expect(errorCodes(result)).toEqual(['INTERNAL_SERVER_ERROR']);
      }
      const ids = unexpectedErrors().slice(before).map((entry) => entry.requestId);
      expect(ids).toHaveLength(2);
      expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
      expect(new Set(ids).size).toBe(2);
    } finally {
      await ws.dispose();
    }
  });

  it('never contain passwords, tokens, API keys or message text, not even in database errors', async () => {
    const user = await registerUser(t);
    const apiKey = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'ci' } }, { token: user.accessToken })).createApiKey.secret;
    const before = unexpectedErrors().length;
    await sendOverHttp(`leak? ${MARKER}`, user.accessToken, randomUUID());
    await sendOverHttp(`leak again? ${MARKER}`, apiKey, randomUUID());
    // Prisma's validation errors quote the query's arguments in their message.
    const sendMessage = vi.spyOn(t.app.services.chat, 'sendMessage');
    sendMessage.mockRejectedValueOnce(
      new Prisma.PrismaClientValidationError(`Invalid \`prisma.message.create()\`: { content: "${MARKER}" }`, { clientVersion: 'test' }),
    );
    try {
      await sendOverHttp(`quoted ${MARKER}`, user.accessToken, randomUUID());
    } finally {
      sendMessage.mockRestore();
    }
    expect(unexpectedErrors().length - before).toBe(3);
    const everything = logs.lines.join('\n');
    for (const secret of [MARKER, user.email, user.password, user.accessToken, user.refreshToken, apiKey]) {
      expect(everything).not.toContain(secret);
    }
  });
});

describe('errors in logs', () => {
  it("keep a library error's type, code and frames but not its message, even when logged without one", () => {
    class DriverError extends Error {
      code = 'P2000';
    }
    const own = captureLogs();
    own.logger.error(new DriverError(`failed for ${MARKER}`));
    own.logger.warn({ err: new DriverError(`failed for ${MARKER}`) });
    // Once read, a stack keeps the message it was read with, even when the message changes.
    const rewritten = new DriverError(`failed for ${MARKER}\non two lines`);
    expect(rewritten.stack).toContain(MARKER);
    rewritten.message = 'rewritten';
    own.logger.error({ err: rewritten }, 'rewritten');
    own.logger.error({ err: new TypeError('x is undefined') }, 'a bug');
    expect(own.lines.join('\n')).not.toContain(MARKER);
    expect(own.entries()).toMatchObject([
      { err: { type: 'Error', code: 'P2000', frames: expect.any(Array) } },
      { err: { type: 'Error', code: 'P2000' } },
      { msg: 'rewritten', err: { frames: expect.any(Array) } },
      { msg: 'a bug', err: { type: 'TypeError', message: 'x is undefined' } },
    ]);
  });
});

describe('the request context', () => {
  it('follows a subscription into the steps its transport pulls later, from outside the request', async () => {
    async function* events() {
      for (let i = 0; i < 3; i += 1) {
        await new Promise((resolve) => setImmediate(resolve));
        yield currentRequest()?.requestId;
      }
    }
    const stream = await runOperationWithRequestId('operation-1', () => events());
    const seen: unknown[] = [];
    for await (const requestId of stream) seen.push(requestId);
    expect(seen).toEqual(['operation-1', 'operation-1', 'operation-1']);
  });
});
