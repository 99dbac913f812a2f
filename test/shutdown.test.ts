import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { print } from 'graphql';
import { describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { openDatabase, type DatabaseTarget, type PrismaClient } from '../src/db/client.js';
import { decodeGlobalId } from '../src/global-id.js';
import { executeOver, expectData, STRONG_PASSWORD, startTestApp, TEST_JWT_SECRET, testDatabase, uniqueEmail } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { LoginDocument, RegisterDocument } from './helpers/documents.js';
import { dataDirFromTemplate, registerLeftover, trackChild } from './helpers/leftovers.js';
import { ROOT } from './helpers/processes.js';
import { SERVER_PROCESS_TIMEOUT_MS, spawnServer } from './helpers/server-process.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { connectWs, wsUrl } from './helpers/ws.js';

// Paced so that a reply is still streaming, seconds later, when the server is told to stop.
const REPLY = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
const PACED = { chunkSize: 2, latency: 100 };

const rawId = (globalId: string) => decodeGlobalId(globalId).id;

/** A database that outlives the app, so that what stop() left behind can be read afterwards. */
function lastingDatabase(): DatabaseTarget {
  const target = testDatabase();
  if (target.kind === 'postgres') return target;
  return { kind: 'pglite', dataDir: join(dataDirFromTemplate('sb-shutdown', inject('pgliteDataDirTemplate')), 'pglite') };
}

/** What the user's rows look like once the app is gone: every message and reservation. */
async function rowsLeftBehind(target: DatabaseTarget, userId: string) {
  const db = await openDatabase(target);
  try {
    const messages = await db.prisma.message.findMany({ where: { userId }, orderBy: { id: 'asc' } });
    const reservations = await db.prisma.reservation.findMany({ where: { userId } });
    return { messages, reservations };
  } finally {
    await db.close();
  }
}

/**
 * Holds a lock on a message's row until released: the reply's final record waits for it, so the
 * shutdown drain is busy for as long as the test needs (on PGlite the whole database waits).
 */
async function holdMessageRow(prisma: PrismaClient, messageId: string): Promise<{ release(): Promise<void> }> {
  let locked!: () => void;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (locked = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const transaction = prisma.$transaction(
    async (tx) => {
      await tx.$queryRaw`SELECT "id" FROM "Message" WHERE "id" = ${messageId}::uuid FOR UPDATE`;
      locked();
      await released;
    },
    { timeout: 120_000 },
  );
  await Promise.race([held, transaction]);
  return {
    release: async () => {
      release();
      await transaction;
    },
  };
}

/** Opens a plain WebSocket to /graphql; resolves with the HTTP answer when the handshake is refused. */
function refusedHandshake(url: URL): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl(url), 'graphql-transport-ws');
    socket.on('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'] as string | undefined });
      socket.terminate();
    });
    socket.on('open', () => {
      socket.close();
      reject(new Error('the handshake was accepted'));
    });
    socket.on('error', () => {});
  });
}

describe('graceful shutdown', () => {
  it('lets in-flight requests finish, closes WebSockets with 1001 and refuses new connections', async () => {
    // A login looks its user up, then checks the password with a costly hash: in flight, with
    // work left that stopping does not cut short, once its lookup has reached the database.
    let lookedUp!: () => void;
    const loginInFlight = new Promise<void>((resolve) => (lookedUp = resolve));
    let loggingIn = false;
    const t = await startTestApp({ PASSWORD_HASH_COST: '16' }, { onQuery: (sql) => loggingIn && /"email" = \$1/.test(sql) && lookedUp() });
    const url = await t.app.start(0);
    const user = await registerUser(t);
    const socket = connectWs(url, user.accessToken);
    await new Promise((resolve) => socket.on('connected', resolve));

    loggingIn = true;
    const inFlight = executeOver(fetch, url, LoginDocument, { input: { email: user.email, password: user.password } });
    await loginInFlight;
    const stopped = t.app.stop();

    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(expectData(answer).login.user.email).toBe(user.email);
    expect((await socket.closed).code).toBe(1001);
    await stopped;
    await expect(fetch(new URL('/health', url))).rejects.toThrow();
  });

  it('stops running generations cleanly: subscribers get done, the message is STOPPED with its text', async () => {
    const upstream = await MockUpstream.start();
    const t = await startTestApp(upstream.env);
    const url = await t.app.start(0);
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'a long reply that is still streaming when the server stops' }, { chunkSize: 3, latency: 50 });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
    const client = connectWs(url, user.accessToken);
    const events: Array<{ delta: string; done: boolean; message?: { status: string; content: string } | null }> = [];
    const streamed = (async () => {
      for await (const result of client.iterate({
        query: print(MessageStreamDocument),
        variables: { messageId: sent.sendMessage.assistantMessage.id },
      })) {
        events.push((result.data as { messageStream: (typeof events)[number] }).messageStream);
      }
    })().catch(() => {});
    await waitFor('the first tokens to reach the subscriber', () => events.length > 0);
    await t.app.stop();
    await streamed;
    const last = events.at(-1);
    expect(last?.done).toBe(true);
    expect(last?.message?.status).toBe('STOPPED');
    expect(last?.message?.content).toBe(events.map((e) => e.delta).join(''));
    expect(last?.message?.content.length).toBeGreaterThan(0);
  });

  it('mid-drain refuses new sends, subscriptions and sockets with SHUTTING_DOWN (503, Retry-After), and leaves nothing running', async () => {
    const upstream = await MockUpstream.start();
    const database = lastingDatabase();
    const t = await startTestApp(upstream.env, { database });
    const url = await t.app.start(0);
    const user = await registerUser(t);
    const userId = rawId(user.user.id);
    const prompt = upstream.prompt({ content: REPLY }, PACED);
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken })).sendMessage;
    const messageId = sent.assistantMessage.id;
    const socket = connectWs(url, user.accessToken);
    const events: Array<{ delta: string; done: boolean; message?: { status: string; content: string } | null }> = [];
    const streamed = (async () => {
      for await (const result of socket.iterate({ query: print(MessageStreamDocument), variables: { messageId } })) {
        events.push((result.data as { messageStream: (typeof events)[number] }).messageStream);
      }
    })();
    await waitFor('the first tokens to reach the subscriber', () => events.length > 0);

    // The running reply cannot be recorded while the test holds its row: stop() is mid-drain until released.
    const hold = await holdMessageRow(t.app.db.prisma, rawId(messageId));
    let stopped: Promise<void> | undefined;
    try {
      stopped = t.app.stop();

      const send = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${user.accessToken}` },
        body: JSON.stringify({ query: print(SendMessageDocument), variables: { input: { content: 'one more' } } }),
      });
      expect(send.status).toBe(503);
      expect(send.headers.get('retry-after')).toBe('2');
      expect(await send.json()).toMatchObject({ errors: [{ extensions: { code: 'SHUTTING_DOWN', retryAfter: 2 } }] });

      const subscribed = await new Promise<unknown>((resolve) =>
        socket.subscribe({ query: print(MessageStreamDocument), variables: { messageId } }, { next: resolve, error: resolve, complete: () => resolve(null) }),
      );
      expect(subscribed).toMatchObject([{ extensions: { code: 'SHUTTING_DOWN', retryAfter: 2 } }]);

      expect(await refusedHandshake(url)).toEqual({ status: 503, retryAfter: '2' });

      // A send that reaches the chat use case itself (past the HTTP check) is refused before it writes anything.
      await expect(t.app.services.chat.sendMessage(userId, { content: 'and another' })).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    } finally {
      await hold.release();
    }
    await stopped;
    await streamed;
    expect(events.at(-1)).toMatchObject({ done: true, message: { status: 'STOPPED' } });

    const left = await rowsLeftBehind(database, userId);
    expect(left.messages.map((m) => [m.role, m.status])).toEqual([
      ['USER', 'COMPLETE'],
      ['ASSISTANT', 'STOPPED'],
    ]);
    expect(left.reservations).toHaveLength(1);
    expect(left.reservations.every((r) => r.settledAt !== null)).toBe(true);
  });

  it('a send accepted just before shutdown began has its reply stopped and recorded before stop() resolves', async () => {
    const upstream = await MockUpstream.start();
    const database = lastingDatabase();
    let stopWhenSending = false;
    let stopped: Promise<void> | undefined;
    // Shutdown begins the moment the send writes its messages: after it was accepted, before its reply starts.
    const t = await startTestApp(upstream.env, {
      database,
      onQuery: (sql) => {
        if (stopWhenSending && sql.includes('chat_send_message')) stopped ??= t.app.stop();
      },
    });
    const url = await t.app.start(0);
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: REPLY }, PACED);
    stopWhenSending = true;
    const answer = await executeOver(fetch, url, SendMessageDocument, { input: { content: prompt } }, user.accessToken);
    expect(stopped).toBeDefined();
    await stopped;

    expect(answer.status).toBe(200);
    expect(expectData(answer).sendMessage.assistantMessage).toMatchObject({ status: 'STOPPED', content: '' });
    const left = await rowsLeftBehind(database, rawId(user.user.id));
    expect(left.messages.map((m) => [m.role, m.status])).toEqual([
      ['USER', 'COMPLETE'],
      ['ASSISTANT', 'STOPPED'],
    ]);
    expect(left.reservations).toHaveLength(1);
    expect(left.reservations.every((r) => r.settledAt !== null)).toBe(true);
    // Stopped before it began: the upstream was never asked.
    expect(upstream.requestsFor(prompt)).toHaveLength(0);
  });

  it('on SIGTERM answers the request in flight, then exits 0', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const upstream = await MockUpstream.start();
    const databaseUrl = inject('databaseUrl');
    const server = await spawnServer({
      ...upstream.env,
      JWT_SECRET: TEST_JWT_SECRET,
      PASSWORD_HASH_COST: '12',
      DATA_DIR: dataDirFromTemplate('sb-main', inject('pgliteDataDirTemplate')),
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    });
    const input = { email: uniqueEmail('sigterm'), password: STRONG_PASSWORD, name: 'Sigterm' };
    const token = expectData(await executeOver(fetch, server.url, RegisterDocument, { input })).register.accessToken;

    const prompt = upstream.prompt({ content: REPLY }, PACED);
    const inFlight = executeOver(fetch, server.url, SendMessageDocument, { input: { content: prompt, stream: false } }, token);
    await upstream.waitForRequest(prompt);
    server.child.kill('SIGTERM');

    const answer = await inFlight;
    expect(answer.status).toBe(200);
    const message = expectData(answer).sendMessage.assistantMessage;
    expect(message).toMatchObject({ status: 'STOPPED', finishReason: 'stop_requested', usageEstimated: true });
    expect(REPLY.startsWith(message.content)).toBe(true);
    expect(message.promptTokens).toBeGreaterThan(0);
    expect(await server.exited).toBe(0);
    expect(server.output()).toContain('shutting down');
  });

  it('refuses a second server on the same embedded data directory, and names the holder', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const dataDir = dataDirFromTemplate('sb-main', inject('pgliteDataDirTemplate'));
    const first = await spawnServer({ DATA_DIR: dataDir });
    await expect(spawnServer({ DATA_DIR: dataDir })).rejects.toThrow(`in use by process ${first.child.pid}`);
    expect(await first.stop()).toBe(0);
    // A clean stop leaves no lock behind (a crashed holder's would be taken over), and the next server opens the data.
    expect(existsSync(join(dataDir, 'pglite', 'switchboard.pid'))).toBe(false);
    const next = await startTestApp({}, { database: { kind: 'pglite', dataDir: join(dataDir, 'pglite') } });
    await next.stop();
  });

  it('the dev server stops on Ctrl-C: the data directory is released and it exits 0', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const dataDir = dataDirFromTemplate('sb-dev', inject('pgliteDataDirTemplate'));
    // package.json's dev script, run by the shell as npm runs it (exec: the script's process is the one watched).
    const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { dev: string } }).scripts.dev;
    const dev = spawn('sh', ['-c', `exec ${script}`], {
      cwd: ROOT,
      env: {
        PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}`,
        HOST: '127.0.0.1',
        PORT: '0',
        JWT_SECRET: TEST_JWT_SECRET,
        DATA_DIR: dataDir,
      },
      // Its own process group, like a terminal's foreground job: Ctrl-C signals every process in it.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = trackChild(dev);
    registerLeftover(() => {
      try {
        process.kill(-dev.pid!, 'SIGKILL');
      } catch {
        // The group has already exited.
      }
    });
    let output = '';
    dev.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    dev.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor('the dev server to listen', () => /listening on http:\/\/127\.0\.0\.1:\d+/.test(output));
    // Readable lines, not JSON.
    expect(output).toMatch(/INFO.*: Switchboard listening on/);

    process.kill(-dev.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    expect(output).toMatch(/INFO.*: stopped/);
    expect(existsSync(join(dataDir, 'pglite', 'switchboard.pid'))).toBe(false);
  });
});
