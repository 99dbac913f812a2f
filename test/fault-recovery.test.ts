import { print } from 'graphql';
import pg from 'pg';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { estimateCompletionTokens } from '../src/metering/tokens.js';
import { executeOver, expectData, STRONG_PASSWORD, TEST_JWT_SECRET, uniqueEmail } from './helpers/app.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { RegisterDocument } from './helpers/documents.js';
import { registerLeftover, tempDir } from './helpers/leftovers.js';
import { CANONICAL_ANSWER, HEALTHY_MODEL, startFaultProvider } from './helpers/fault-provider.js';
import { startOwnPostgres, startRedisServer } from './helpers/own-services.js';
import { SERVER_PROCESS_TIMEOUT_MS, spawnServer, type ServerProcess } from './helpers/server-process.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { connectWs, type MessageStreamEvent } from './helpers/ws.js';
import { skipping } from './helpers/skips.js';

// Faults between instances only happen with a shared PostgreSQL and Redis.
const sharedDatabaseUrl = inject('databaseUrl');
const redisUrl = process.env.REDIS_URL;
const clustered = Boolean(sharedDatabaseUrl && redisUrl);

/** What the provider reports for each reply; what an exact record holds. */
const PROVIDER_USAGE = { prompt_tokens: 17, completion_tokens: 200 };
const reply = (words: number) => Array.from({ length: words }, (_, i) => `w${i}`).join(' ');

describe.skipIf(skipping(!clustered, 'two server processes through faults: needs DATABASE_URL and REDIS_URL (PostgreSQL and Redis)'))('two server processes through faults', () => {
  // A database of this file's own: an instance of another test file (with Redis keys of its own)
  // must never be the one to recover these replies, reading an empty replay buffer.
  let databaseUrl: string;
  beforeAll(async () => {
    databaseUrl = await createOwnDatabase(sharedDatabaseUrl!);
  });

  it('kill -9 mid-stream: the reply is closed with every character its subscribers received, estimated once', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const upstream = await MockUpstream.start();
    // Long enough that a busy machine never delays A's renewals past it: B must take over only once
    // A is dead (an early takeover closes the reply while A's own subscriber still receives more).
    const [a, b] = await startPair({ ...upstream.env, DATABASE_URL: databaseUrl, REDIS_URL: redisUrl!, GENERATION_LEASE_SECONDS: '5' });
    const db = await connect(databaseUrl);
    const user = await register(a);
    const text = reply(150);
    const prompt = upstream.prompt({ content: text, usage: PROVIDER_USAGE }, { chunkSize: 4, latency: 40 }, 'kill');
    const messageId = await send(a, user.token, prompt);
    const onA = follow(a, user.token, messageId);
    const onB = follow(b, user.token, messageId);

    await waitFor('30 events on B', () => onB.events.length >= 30);
    // Everything B's subscriber received, which is what the replay buffer held: more than a checkpoint.
    const { stored } = await killAndWaitForRecovery(a, b, db, user.token, messageId, onB);
    expect(onB.events.at(-1)!.message!.content).toBe(stored.content);
    expect(text.startsWith(stored.content)).toBe(true);
    expect(stored.content.startsWith(onA.text())).toBe(true);
    expect(stored.completionTokens).toBe(estimateCompletionTokens(stored.content));
    await expectChargedOnce(db, user.id, messageId, { settledBy: 'RECOVERY', corrected: false, promptTokens: stored.promptTokens, completionTokens: stored.completionTokens });
  });

  it('kill -9 in the middle of a continued reply: closed with the cut leg and the continuation its subscribers received, glued seamlessly', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    // An Anthropic-shaped primary cut after 40 tokens, continued from its partial text on the fallback.
    const wall = await startFaultProvider({ timings: { tokenIntervalMs: 40 } });
    const entry = (id: string, upstream: string, fallbacks: string[] = []) => ({
      id,
      contextWindow: 200_000,
      maxOutputTokens: 1000,
      promptMicrosPerMillion: 3_000_000,
      completionMicrosPerMillion: 15_000_000,
      deployments: [{ provider: 'claude', model: upstream }],
      fallbacks,
    });
    const env = {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl!,
      // Long enough that a busy machine never delays A's renewals past it: B must take over only once A is dead.
      GENERATION_LEASE_SECONDS: '5',
      PROVIDERS_JSON: JSON.stringify([{ id: 'claude', kind: 'anthropic', baseUrl: wall.anthropicBaseUrl, apiKey: 'sk-ant-fault' }]),
      MODELS_JSON: JSON.stringify([entry('cut', 'fb-s08-stream-cut', ['whole']), entry('whole', HEALTHY_MODEL)]),
      DEFAULT_MODEL: 'cut',
    };
    const [a, b] = await startPair(env);
    const db = await connect(databaseUrl);
    const user = await register(a);
    const messageId = await send(a, user.token, 'Explain failover.');
    const onB = follow(b, user.token, messageId);

    const [continuation] = await wall.waitForAttempts(HEALTHY_MODEL, 1, 30_000);
    expect(continuation!.prefill).not.toBeNull();
    // Some of the continuation reached B's subscriber, then A dies.
    await waitFor('the continuation on B', () => receivedAtLeast(onB, 1) && onB.text().length > continuation!.prefill!.length + 20);
    const { stored } = await killAndWaitForRecovery(a, b, db, user.token, messageId, onB);
    // One seamless reply: the cut leg and the continuation, never two answers glued together.
    expect(onB.events.some((e) => e.reset)).toBe(false);
    expect(CANONICAL_ANSWER.startsWith(stored.content)).toBe(true);
    expect(stored.content.length).toBeGreaterThan(continuation!.prefill!.length);
    await expectChargedOnce(db, user.id, messageId, { settledBy: 'RECOVERY', corrected: false, promptTokens: stored.promptTokens, completionTokens: stored.completionTokens });
  });

  it('SIGSTOP past the lease: the resumed instance corrects the recovery with the whole reply and the provider’s usage', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const upstream = await MockUpstream.start();
    // An upstream timeout shorter than the pause: its timer fires first when the process resumes.
    const env = { ...upstream.env, DATABASE_URL: databaseUrl, REDIS_URL: redisUrl!, GENERATION_LEASE_SECONDS: '2', UPSTREAM_TIMEOUT_SECONDS: '1' };
    const [a, b] = await startPair(env);
    const db = await connect(databaseUrl);
    const user = await register(a);
    // About 1.5 s of streaming: the provider has finished long before the lease lapses.
    const text = reply(60);
    const prompt = upstream.prompt({ content: text, usage: PROVIDER_USAGE }, { chunkSize: 4, latency: 25 }, 'pause');
    const messageId = await send(a, user.token, prompt);
    const onA = follow(a, user.token, messageId);
    const onB = follow(b, user.token, messageId);

    await waitFor('10 events on B', () => onB.events.length >= 10);
    a.child.kill('SIGSTOP');
    try {
      // B closes the reply once A's lease lapses, with what B's subscriber received.
      expect(await onB.ended).toBe('done');
      const recovered = await messageRow(db, messageId);
      expect(recovered).toMatchObject({ status: 'FAILED', usageEstimated: true });
      expect(recovered.content).toBe(onB.text());
    } finally {
      a.child.kill('SIGCONT');
    }

    await waitFor('A to correct the record', async () => {
      const { rows } = await db.query('SELECT "correctedAt" FROM "Reservation" WHERE "messageId" = $1', [decodeGlobalId(messageId).id]);
      return rows[0]?.correctedAt;
    });
    expect(await messageRow(db, messageId)).toMatchObject({
      status: 'COMPLETE',
      content: text,
      usageEstimated: false,
      promptTokens: PROVIDER_USAGE.prompt_tokens,
      completionTokens: PROVIDER_USAGE.completion_tokens,
    });
    // A's own subscriber followed A to the end; a late one ends on the corrected message.
    expect(await onA.ended).toBe('done');
    expect(onA.text()).toBe(text);
    // Once A has dropped the recovery's replay (just after its correction), late subscribers replay the whole reply.
    let late = follow(b, user.token, messageId);
    await waitFor('a late subscriber to replay the corrected reply', async () => {
      if ((await late.ended) === 'done' && late.text() === text) return true;
      late = follow(b, user.token, messageId);
      return false;
    });
    expect(late.events.at(-1)!.message).toMatchObject({ status: 'COMPLETE', content: text });
    await expectChargedOnce(db, user.id, messageId, {
      settledBy: 'RECOVERY',
      corrected: true,
      promptTokens: PROVIDER_USAGE.prompt_tokens,
      completionTokens: PROVIDER_USAGE.completion_tokens,
    });
    await a.stop();
  });

  it('PostgreSQL restarts mid-stream and over the end of replies: every reply is recorded whole, with the provider’s usage, once', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const postgres = await startOwnPostgres();
    const redis = await startRedisServer();
    const upstream = await MockUpstream.start();
    const [a, b] = await startPair({ ...upstream.env, DATABASE_URL: postgres.url, REDIS_URL: redis.url, GENERATION_LEASE_SECONDS: '3' });
    const user = await register(a);
    const replies = 3;

    // Mid-stream: an outage shorter than the lease, while the replies stream.
    const midText = reply(100);
    const mid = await Promise.all(
      Array.from({ length: replies }, async () => {
        const prompt = upstream.prompt({ content: midText, usage: PROVIDER_USAGE }, { chunkSize: 4, latency: 40 }, 'pg-mid');
        const messageId = await send(a, user.token, prompt);
        return { messageId, onA: follow(a, user.token, messageId), onB: follow(b, user.token, messageId) };
      }),
    );
    await waitFor('10 events of each reply on B', () => mid.every((r) => receivedAtLeast(r.onB, 10)));
    await postgres.stop();
    await waitFor('20 more events of each reply on B', () => mid.every((r) => receivedAtLeast(r.onB, 30)));
    await postgres.start();

    // Over the end: the provider finishes while the database is down, and stays down past a few record attempts.
    const endText = reply(30);
    const end = await Promise.all(
      Array.from({ length: replies }, async () => {
        const prompt = upstream.prompt({ content: endText, usage: PROVIDER_USAGE }, { chunkSize: 4, latency: 40 }, 'pg-end');
        const messageId = await send(a, user.token, prompt);
        return { messageId, onA: follow(a, user.token, messageId), onB: follow(b, user.token, messageId) };
      }),
    );
    await waitFor('10 events of each reply on B', () => end.every((r) => receivedAtLeast(r.onB, 10)));
    await postgres.stop();
    await waitFor('every reply streamed to the end on B', () => end.every((r) => r.onB.text() === endText));
    const recordFailures = (messageId: string) =>
      a.output().split('\n').filter((line) => line.includes(decodeGlobalId(messageId).id) && /record (of )?(a|the) final message/.test(line)).length;
    // Three attempts were all a record had before: since then, it waits for the database.
    await waitFor('three failed record attempts of each reply', () => end.every((r) => recordFailures(r.messageId) >= 3));
    await postgres.start();

    const db = await connect(postgres.url);
    for (const [text, group] of [[midText, mid], [endText, end]] as const) {
      for (const r of group) {
        expect(await r.onA.ended).toBe('done');
        expect(await r.onB.ended).toBe('done');
        const late = follow(b, user.token, r.messageId);
        expect(await late.ended).toBe('done');
        const stored = await messageRow(db, r.messageId);
        expect(stored).toMatchObject({
          status: 'COMPLETE',
          content: text,
          usageEstimated: false,
          promptTokens: PROVIDER_USAGE.prompt_tokens,
          completionTokens: PROVIDER_USAGE.completion_tokens,
        });
        expect(r.onA.text()).toBe(text);
        expect(r.onB.text()).toBe(text);
        expect(late.text()).toBe(text);
        const [reservation] = (await db.query('SELECT * FROM "Reservation" WHERE "messageId" = $1', [decodeGlobalId(r.messageId).id])).rows;
        expect(reservation.settledAt).not.toBeNull();
      }
    }
    const total = 2 * replies;
    const [daily] = (await db.query('SELECT SUM("requests")::int AS requests, SUM("promptTokens")::int AS prompt, SUM("completionTokens")::int AS completion FROM "UsageDaily" WHERE "userId" = $1', [user.id])).rows;
    expect(daily).toEqual({ requests: total, prompt: total * PROVIDER_USAGE.prompt_tokens, completion: total * PROVIDER_USAGE.completion_tokens });
    const [quota] = (await db.query('SELECT "usedTokens"::int AS used, "reservedTokens"::int AS reserved FROM "QuotaPeriod" WHERE "userId" = $1', [user.id])).rows;
    expect(quota).toEqual({ used: total * (PROVIDER_USAGE.prompt_tokens + PROVIDER_USAGE.completion_tokens), reserved: 0 });
  });
});

/** Two server processes on the same database and Redis, each with its own data directory. */
function startPair(env: Record<string, string>): Promise<[ServerProcess, ServerProcess]> {
  const server = () =>
    spawnServer({ ...env, JWT_SECRET: TEST_JWT_SECRET, PASSWORD_HASH_COST: '12', LOG_LEVEL: 'info', DATA_DIR: tempDir('sb-fault') });
  return Promise.all([server(), server()]);
}

async function register(server: ServerProcess): Promise<{ id: string; token: string }> {
  const input = { email: uniqueEmail('fault'), password: STRONG_PASSWORD, name: 'Fault' };
  const { register } = expectData(await executeOver(fetch, server.url, RegisterDocument, { input }));
  return { id: decodeGlobalId(register.user.id).id, token: register.accessToken };
}

/** Sends a prompt on `server`; the assistant message's global id. */
async function send(server: ServerProcess, token: string, content: string): Promise<string> {
  return expectData(await executeOver(fetch, server.url, SendMessageDocument, { input: { content } }, token)).sendMessage.assistantMessage.id;
}

interface Follower {
  events: MessageStreamEvent[];
  /** Why the stream ended without its done event, when it did. */
  error?: unknown;
  text(): string;
  /** 'done' once the stream ended with its done event; 'closed' when it ended otherwise (its server died). */
  ended: Promise<'done' | 'closed'>;
}

/** A subscriber to a message's stream on `server`, collecting what it receives. */
function follow(server: ServerProcess, token: string, messageId: string): Follower {
  const client = connectWs(server.url, token);
  const events: MessageStreamEvent[] = [];
  const follower: Follower = { events, text: () => events.reduce((text, e) => (e.reset ? e.delta : text + e.delta), ''), ended: undefined! };
  follower.ended = new Promise<'done' | 'closed'>((resolve) => {
    client.subscribe(
      { query: print(MessageStreamDocument), variables: { messageId } },
      {
        next: (result) => {
          if (result.errors) follower.error = result.errors;
          const event = (result.data as { messageStream?: MessageStreamEvent } | undefined)?.messageStream;
          if (event) events.push(event);
        },
        error: (error) => {
          follower.error = error;
          resolve('closed');
        },
        complete: () => resolve(events.at(-1)?.done ? 'done' : 'closed'),
      },
    );
  });
  void follower.ended.then(() => client.dispose());
  return follower;
}

/** Whether `follower` received `count` events; a stream that ended without them fails the test. */
function receivedAtLeast(follower: Follower, count: number): boolean {
  if (follower.error) throw new Error(`a subscriber's stream failed: ${JSON.stringify(follower.error)}`);
  return follower.events.length >= count;
}

/**
 * Kills `a` in the middle of a reply and waits for `b` to close it: B's subscriber and a late one
 * both end with done, and the stored text is what they received.
 */
async function killAndWaitForRecovery(a: ServerProcess, b: ServerProcess, db: pg.Client, token: string, messageId: string, onB: Follower) {
  a.child.kill('SIGKILL');
  await a.exited;
  expect(await onB.ended).toBe('done');
  const late = follow(b, token, messageId);
  expect(await late.ended).toBe('done');
  const stored = await messageRow(db, messageId);
  expect(stored).toMatchObject({ status: 'FAILED', usageEstimated: true, errorCode: 'INTERRUPTED' });
  expect(stored.content).toBe(onB.text());
  expect(late.text()).toBe(stored.content);
  return { stored, late };
}

/** A new, empty database on the shared server (each server process migrates it), dropped at the end of the file. */
async function createOwnDatabase(sharedUrl: string): Promise<string> {
  const name = `fault_recovery_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = await connect(sharedUrl);
  await admin.query(`CREATE DATABASE "${name}"`);
  registerLeftover(async () => {
    const dropper = new pg.Client({ connectionString: sharedUrl });
    await dropper.connect();
    await dropper.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => dropper.end());
  });
  const url = new URL(sharedUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  registerLeftover(() => client.end());
  return client;
}

async function messageRow(db: pg.Client, messageId: string) {
  const { rows } = await db.query('SELECT * FROM "Message" WHERE "id" = $1', [decodeGlobalId(messageId).id]);
  return rows[0] as { status: string; content: string; usageEstimated: boolean; errorCode: string | null; promptTokens: number; completionTokens: number };
}

/** The reservation is settled once, and the roll-up and quota count the call once, with exactly `usage`. */
async function expectChargedOnce(
  db: pg.Client,
  userId: string,
  messageId: string,
  expected: { settledBy: string; corrected: boolean; promptTokens: number; completionTokens: number },
) {
  const [reservation] = (await db.query('SELECT * FROM "Reservation" WHERE "messageId" = $1', [decodeGlobalId(messageId).id])).rows;
  expect(reservation.settledBy).toBe(expected.settledBy);
  expect(reservation.correctedAt !== null).toBe(expected.corrected);
  const daily = (await db.query('SELECT "requests", "promptTokens"::int AS prompt, "completionTokens"::int AS completion FROM "UsageDaily" WHERE "userId" = $1', [userId])).rows;
  expect(daily).toEqual([{ requests: 1, prompt: expected.promptTokens, completion: expected.completionTokens }]);
  const [quota] = (await db.query('SELECT "usedTokens"::int AS used, "reservedTokens"::int AS reserved FROM "QuotaPeriod" WHERE "userId" = $1', [userId])).rows;
  expect(quota).toEqual({ used: expected.promptTokens + expected.completionTokens, reserved: 0 });
}
