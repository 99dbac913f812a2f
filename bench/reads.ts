import { record } from './goals.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { createPasswordHasher } from '../src/auth/passwords.js';
import { databaseTargetOf, openDatabase, type DatabaseTarget } from '../src/db/client.js';
import { encodeGlobalId } from '../src/global-id.js';
import { migrate, type SqlConnection } from '../src/db/migrate.js';
import { registerUser } from '../test/helpers/accounts.js';
import { executeRaw } from '../test/helpers/app.js';
import { trackChild } from '../test/helpers/leftovers.js';
import { ROOT } from '../test/helpers/processes.js';
import { BENCH_JWT_SECRET, graphql, startCountingApp, startSwitchboard, startUpstream } from './harness.js';

/**
 * Reads: what each layer of a GraphQL read costs against a bare route (autocannon against the
 * server process), a nested read against a hand-written handler answering the same data with one
 * SQL statement, and the SQL statements the nested read sends as the data grows.
 */

const DURATION_SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
// BENCH_CONNECTIONS: autocannon's concurrent connections.
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const CONVERSATIONS = 50;
const MESSAGES_EACH = 20;
const STATEMENT_SIZES = [5, 50, 500];
/** Messages in the long conversation, of which a chat screen reads the last 20. */
const LONG_CONVERSATION = 5000;
const PASSWORD = 'correct horse battery staple';
// About the length of a short chat message, so that the nested answer (~1000 of them) has a realistic size.
const FILLER = 'The quick brown fox jumps over the lazy dog, then naps in the afternoon sun.';
const NESTED_QUERY =
  '{ me { conversations(first: 50) { edges { node { id title messageCount ' +
  'messages(last: 20) { edges { node { id role content } } } } } } } }';
// Targets: `me` (auth + one read) at least a quarter of the bare route; the nested read at least
// 0.4 of the hand-written handler.
const ME_TARGET = 0.25;
const NESTED_TARGET = 0.4;

export interface LoadResult {
  name: string;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

interface BenchUser {
  userId: string;
  email: string;
  /** Another user, with one conversation of LONG_CONVERSATION messages. */
  long: { userId: string; email: string; conversationId: string };
}

export async function benchReads(): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sb-bench-reads-'));
  const target = databaseTargetOf({ databaseUrl: process.env.DATABASE_URL, dataDir });
  // Seeded before the server starts: an embedded database has one owner at a time.
  const user = await seedBenchUser(target);
  try {
    const { results, token, nestedData } = await measureSwitchboard(dataDir, user);
    // After the server has stopped, for the same reason, and so that the two never share the CPU.
    results.push(...(await measureHandwritten(target, token, nestedData)));
    return report(results, await countNestedStatements());
  } finally {
    await deleteConversations([user.userId, user.long.userId]);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function load(name: string, options: autocannon.Options): Promise<LoadResult> {
  // One worker thread: the load generator gets its own event loop (and core) beside the bench's.
  const result = await autocannon({ connections: CONNECTIONS, duration: DURATION_SECONDS, workers: 1, ...options });
  // A run with errors or non-2xx answers measured the error path, not the scenario.
  if (result.errors > 0 || result.non2xx > 0) {
    throw new Error(`${name}: ${result.errors} errors, ${result.non2xx} non-2xx responses`);
  }
  return { name, requestsPerSecond: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99 };
}

const post = (url: URL, query: string, token?: string): autocannon.Options => ({
  url: url.toString(),
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  body: JSON.stringify({ query }),
});

/**
 * Inserts `count` conversations of MESSAGES_EACH messages (alternating user / assistant) for a
 * user, in two statements however many rows. v7 ids, as the app creates them: time-ordered.
 */
async function insertConversations(conn: SqlConnection, userId: string, count: number, messagesEach = MESSAGES_EACH): Promise<string[]> {
  const conversationIds = Array.from({ length: count }, () => uuidv7());
  const messages = conversationIds.flatMap((conversationId, c) =>
    Array.from({ length: messagesEach }, (_, m) => ({
      id: uuidv7(),
      conversationId,
      role: m % 2 === 0 ? 'USER' : 'ASSISTANT',
      content: `Message ${m + 1} of conversation ${c + 1}. ${FILLER}`,
    })),
  );
  await conn.query(
    `INSERT INTO "Conversation" (id, "userId", title, model, "updatedAt")
     SELECT c.id, $2::uuid, 'Conversation ' || c.n, 'gpt-4o-mini', now() FROM unnest($1::uuid[]) WITH ORDINALITY AS c(id, n)`,
    [conversationIds, userId],
  );
  await conn.query(
    `INSERT INTO "Message" (id, "conversationId", "userId", role, content, status, "updatedAt")
     SELECT m.id, m.conversation_id, $5::uuid, m.role::"MessageRole", m.content, 'COMPLETE', now()
     FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS m(id, conversation_id, role, content)`,
    [messages.map((m) => m.id), messages.map((m) => m.conversationId), messages.map((m) => m.role), messages.map((m) => m.content), userId],
  );
  return conversationIds;
}

/** A user with a password (to log in through the server) and CONVERSATIONS conversations, and one with a long conversation. */
async function seedBenchUser(target: DatabaseTarget): Promise<BenchUser> {
  const db = await openDatabase(target);
  try {
    await db.withConnection((conn) => migrate(conn));
    // The cost the bench server hashes with (PASSWORD_HASH_COST in harness.ts), so login does not rehash.
    const passwordHash = await createPasswordHasher({ concurrency: 2, queue: 8 }).hash(PASSWORD, 12);
    const create = async () => {
      const email = `bench-reads-${uuidv7()}@example.com`;
      const { id: userId } = await db.prisma.user.create({ data: { email, name: 'Bench', passwordHash } });
      return { userId, email };
    };
    const user = await create();
    await db.withConnection((conn) => insertConversations(conn, user.userId, CONVERSATIONS));
    const long = await create();
    const [conversationId] = await db.withConnection((conn) => insertConversations(conn, long.userId, 1, LONG_CONVERSATION));
    return { ...user, long: { ...long, conversationId: conversationId! } };
  } finally {
    await db.close();
  }
}

/** The layers of a GraphQL read, each under load; also returns the nested answer, to check the hand-written one against. */
async function measureSwitchboard(
  dataDir: string,
  user: BenchUser,
): Promise<{ results: LoadResult[]; token: string; nestedData: unknown }> {
  const upstream = await startUpstream('unused', 8);
  const server = await startSwitchboard(upstream.baseUrl, {
    DATA_DIR: dataDir,
    // Tens of thousands of reads per scenario from one address and one user.
    RATE_LIMIT_OPERATIONS: '100000000/1m',
  });
  try {
    const { url } = server;
    const login = await graphql<{ login: { accessToken: string } }>(
      url,
      'mutation($input: LoginInput!) { login(input: $input) { accessToken } }',
      { input: { email: user.email, password: PASSWORD } },
    );
    const token = login.login.accessToken;
    const longLogin = await graphql<{ login: { accessToken: string } }>(url, 'mutation($input: LoginInput!) { login(input: $input) { accessToken } }', {
      input: { email: user.long.email, password: PASSWORD },
    });
    const lastOfLong = `{ conversation(id: "${encodeGlobalId('Conversation', user.long.conversationId)}") { messages(last: 20) { edges { node { id role content } } } } }`;
    const key = await graphql<{ createApiKey: { secret: string } }>(
      url,
      'mutation { createApiKey(input: { name: "bench" }) { secret } }',
      {},
      token,
    );
    const nestedData = await graphql(url, NESTED_QUERY, {}, token);
    checkNestedShape(nestedData);
    const results = [
      await load('GET /health (HTTP baseline)', { url: new URL('/health', url).toString() }),
      await load('{ __typename } anonymous', post(url, '{ __typename }')),
      await load('{ me { id email } } with an access token', post(url, '{ me { id email } }', token)),
      await load('{ me { id email } } with an API key', post(url, '{ me { id email } }', key.createApiKey.secret)),
      // One request at a time (first: not in the heap the 32 connections leave behind), the cost
      // of one read; then 32 at once.
      await load('nested, one connection', { ...post(url, NESTED_QUERY, token), connections: 1 }),
      await load(`nested: ${CONVERSATIONS} conversations × last ${MESSAGES_EACH} messages`, post(url, NESTED_QUERY, token)),
      await load(`the last 20 of a conversation of ${LONG_CONVERSATION} messages`, post(url, lastOfLong, longLogin.login.accessToken)),
    ];
    return { results, token, nestedData };
  } finally {
    await server.stop();
    await upstream.stop();
  }
}

function checkNestedShape(data: any): void {
  const edges = data.me?.conversations?.edges ?? [];
  const complete = edges.length === CONVERSATIONS && edges.every((e: any) => e.node.messages.edges.length === MESSAGES_EACH);
  if (!complete) throw new Error(`The nested read did not return ${CONVERSATIONS} × ${MESSAGES_EACH} messages`);
}

/** The hand-written handler (bench/handwritten-server.ts) under the same load, after checking it answers the same data. */
async function measureHandwritten(target: DatabaseTarget, token: string, expected: unknown): Promise<LoadResult[]> {
  const server = await startHandwritten(
    target.kind === 'postgres' ? { DATABASE_URL: target.url } : { PGLITE_DIR: target.dataDir },
  );
  try {
    const headers = { authorization: `Bearer ${token}` };
    const answer = (await (await fetch(server.url, { headers })).json()) as { data: unknown };
    if (!isDeepStrictEqual(answer.data, expected)) throw new Error('The hand-written handler answers other data than GraphQL');
    const options = { url: server.url.toString(), headers };
    return [
      await load('hand-written, one connection', { ...options, connections: 1 }),
      await load('hand-written node:http + one SQL statement (same nested data)', options),
    ];
  } finally {
    await server.stop();
  }
}

async function startHandwritten(env: Record<string, string>): Promise<{ url: URL; stop(): Promise<unknown> }> {
  // exit-with-parent: the handler exits if the bench dies without stopping it.
  const exitWithParent = pathToFileURL(join(ROOT, 'test', 'helpers', 'exit-with-parent.ts')).href;
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', exitWithParent, 'bench/handwritten-server.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, JWT_SECRET: BENCH_JWT_SECRET, ...env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const closed = trackChild(child);
  const url = await new Promise<URL>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) resolve(new URL(match[1]));
    });
    void closed.then((status) => reject(new Error(`hand-written server exited (${status}): ${output}`)));
  });
  return {
    url,
    stop: () => {
      child.kill('SIGTERM');
      return closed;
    },
  };
}

/**
 * SQL statements per nested read, in this process (Prisma's query event), for users with more
 * and more conversations: a constant count means no N+1. SHOW_SQL=1 prints them.
 */
async function countNestedStatements(): Promise<Array<{ conversations: number; statements: number }>> {
  let statements: string[] = [];
  const t = await startCountingApp({}, (sql) => statements.push(sql));
  const userIds: string[] = [];
  try {
    const rows = [];
    for (const conversations of STATEMENT_SIZES) {
      const user = await registerUser(t);
      const { id } = await t.app.db.prisma.user.findUniqueOrThrow({ where: { email: user.email } });
      userIds.push(id);
      await t.app.db.withConnection((conn) => insertConversations(conn, id, conversations));
      statements = [];
      const result = await executeRaw(t, { query: NESTED_QUERY }, { token: user.accessToken });
      if (result.errors?.length) throw new Error(`Nested read failed: ${JSON.stringify(result.errors)}`);
      if (process.env.SHOW_SQL) console.log(`-- nested read, ${conversations} conversations:\n${statements.join('\n')}\n`);
      rows.push({ conversations, statements: statements.length });
    }
    return rows;
  } finally {
    await t.stop();
    await deleteConversations(userIds);
  }
}

/** Keeps the bench's PostgreSQL database from growing run after run (the users stay: their ledger entries are kept). */
async function deleteConversations(userIds: string[]): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url || userIds.length === 0) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('DELETE FROM "Conversation" WHERE "userId" = ANY($1::uuid[])', [userIds]);
  } finally {
    await client.end();
  }
}

function report(results: LoadResult[], statements: Array<{ conversations: number; statements: number }>): string {
  const [health, , meToken, meKey, nestedAlone, nested, , handwrittenAlone, handwritten] = results as [LoadResult, ...LoadResult[]];
  const ratio = (r: LoadResult | undefined, base: LoadResult | undefined) => (r && base ? r.requestsPerSecond / base.requestsPerSecond : NaN);
  const mark = (value: number, target: number) => `${value.toFixed(3)} ${value >= target ? '✓' : '✗'} (target ≥ ${target})`;
  const database = process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite (embedded)';
  const constant = statements.every((s) => s.statements === statements[0]?.statements);
  record('meRatio', ratio(meToken, health));
  record('nested32Ratio', ratio(nested, handwritten));
  return [
    `## Reads — ${database}${process.env.REDIS_URL ? ' + Redis' : ''}, ${CONNECTIONS} connections (unless a row says otherwise), ${DURATION_SECONDS} s each`,
    '',
    '| scenario | req/s | p50 ms | p99 ms | throughput vs /health |',
    '|---|---:|---:|---:|---:|',
    ...results.map(
      (r) => `| ${r.name} | ${r.requestsPerSecond.toFixed(0)} | ${r.p50Ms} | ${r.p99Ms} | ${ratio(r, health).toFixed(3)} |`,
    ),
    '',
    'The hand-written handler verifies the same JWT (jose, HS256) without a database lookup, then runs one ' +
      'SQL statement (json_agg over lateral joins) that returns the response body; it is a GET, GraphQL a POST.',
    '',
    '| nested read: conversations | SQL statements |',
    '|---:|---:|',
    ...statements.map((s) => `| ${s.conversations} | ${s.statements} |`),
    '',
    `**me / health: ${mark(ratio(meToken, health), ME_TARGET)} with a token, ${ratio(meKey, health).toFixed(3)} with an API key; ` +
      `nested GraphQL / hand-written: ${mark(ratio(nested, handwritten), NESTED_TARGET)}, ` +
      `one request at a time ${mark(ratio(nestedAlone, handwrittenAlone), NESTED_TARGET)}; ` +
      `statements per nested read ${constant ? 'constant ✓' : 'NOT constant ✗'}.**`,
    '',
  ].join('\n');
}
