import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Prisma } from '../src/generated/prisma/client.js';
import { errorCodes, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { SendMessageDocument } from './helpers/chat-documents.js';

const MARKER = `secret-marker-${randomUUID()}`;

/** A stand-in for Sentry's ingest: hands over each envelope POSTed to /api/1/envelope/. */
function startSentryIngest(): Promise<{ server: Server; dsn: string; nextEnvelope(): Promise<string> }> {
  const waiting: Array<(body: string) => void> = [];
  const received: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      res.writeHead(200).end('{}');
      if (req.url?.startsWith('/api/1/envelope/')) {
        const body = Buffer.concat(chunks).toString();
        const waiter = waiting.shift();
        if (waiter) waiter(body);
        else received.push(body);
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        server,
        dsn: `http://public@127.0.0.1:${port}/1`,
        nextEnvelope: () => {
          const body = received.shift();
          return body !== undefined ? Promise.resolve(body) : new Promise((r) => waiting.push(r));
        },
      });
    }),
  );
}

let ingest: Awaited<ReturnType<typeof startSentryIngest>>;
let t: TestApp;
let url: URL;
beforeAll(async () => {
  ingest = await startSentryIngest();
  t = await startTestApp({ SENTRY_DSN: ingest.dsn }, { database: { kind: 'pglite', dataDir: 'memory://' } });
  // Messages containing the marker fail to insert: Prisma's error then quotes the message text.
  await t.app.db.withConnection((conn) =>
    conn.exec(`ALTER TABLE "Message" ADD CONSTRAINT "test_no_marker" CHECK (content NOT LIKE '%${MARKER}%')`),
  );
  url = await t.app.start(0);
});
afterAll(async () => {
  await t?.stop();
  await new Promise((resolve) => ingest?.server.close(resolve));
});

/** Sends a message that fails unexpectedly over HTTP; returns the request id it was sent with. */
async function sendFailingMessage(token: string, content: string): Promise<string> {
  const requestId = `report-${randomUUID()}`;
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-request-id': requestId },
    body: JSON.stringify({ query: print(SendMessageDocument), variables: { input: { content, stream: false } } }),
  });
  expect(errorCodes(await response.json())).toEqual(['INTERNAL_SERVER_ERROR']);
  return requestId;
}

/** The event in a Sentry envelope (a header line, then item header and payload lines). */
function eventOf(envelope: string) {
  const [, itemHeader, payload] = envelope.split('\n');
  expect(JSON.parse(itemHeader!)).toMatchObject({ type: 'event' });
  return JSON.parse(payload!);
}

describe('error reports (Sentry)', () => {
  it('report an unexpected error with its type and stack, the request id and user id, and nothing a user sent', async () => {
    const user = await registerUser(t);
    const requestId = await sendFailingMessage(user.accessToken, `hi ${MARKER}`);
    const envelope = await ingest.nextEnvelope();
    const event = eventOf(envelope);
    const [exception] = event.exception.values;
    expect(exception.type).toBe('PrismaClientKnownRequestError');
    expect(exception.stacktrace.frames.some((frame: { filename?: string }) => frame.filename?.includes('chat-service'))).toBe(true);
    expect(event.tags).toMatchObject({ request_id: requestId });
    expect(Object.keys(event.user)).toEqual(['id']);
    expect(event.request).toBeUndefined();
    for (const secret of [MARKER, user.email, user.password, user.accessToken]) expect(envelope).not.toContain(secret);
  });

  it("leave out the message of an error that quotes the query's arguments", async () => {
    const user = await registerUser(t);
    const sendMessage = vi.spyOn(t.app.services.chat, 'sendMessage');
    sendMessage.mockRejectedValueOnce(
      new Prisma.PrismaClientValidationError(`Invalid \`prisma.message.create()\`: { content: "${MARKER}", email: "${user.email}" }`, {
        clientVersion: 'test',
      }),
    );
    try {
      await sendFailingMessage(user.accessToken, 'hello');
    } finally {
      sendMessage.mockRestore();
    }
    const envelope = await ingest.nextEnvelope();
    expect(eventOf(envelope).exception.values[0].type).toBe('PrismaClientValidationError');
    for (const secret of [MARKER, user.email]) expect(envelope).not.toContain(secret);
  });
});
