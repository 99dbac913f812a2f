import { LLMock } from '@copilotkit/aimock';
import pg from 'pg';
import { registerUser } from '../test/helpers/accounts.js';
import { executeRaw } from '../test/helpers/app.js';
import { cpuMsOf, graphql, percentile, registerBenchUser, startCountingApp, startSwitchboard } from './harness.js';

/**
 * Writes: sendMessage with `stream: false` (the whole lifecycle in one request) against an
 * upstream that answers at once, so that what is measured is Switchboard's own work. Throughput
 * and CPU per request of the server process, then the database round trips of one message,
 * counted in this process.
 */

const WRITES = Number(process.env.BENCH_WRITES ?? 400);
const CLIENTS = Number(process.env.BENCH_WRITE_CLIENTS ?? 16);
// Before the measured run: JIT, the database pool's connections, the first quota period row.
const WARMUP_WRITES = 2 * CLIENTS;
const COUNTED_MESSAGES = 20;
const PROMPT = 'bench write';
const REPLY = 'A short reply from the bench upstream.';
// No statement for this long after a request: its lifecycle (and anything it set off) is over.
const QUIET_MS = 100;
const SEND_MESSAGE = `mutation($content: String!, $conversationId: ID) {
  sendMessage(input: { content: $content, conversationId: $conversationId, model: "gpt-4o-mini", stream: false }) {
    conversation { id }
    assistantMessage { id status }
  }
}`;

interface SendResult {
  conversation: { id: string };
  assistantMessage: { id: string; status: string };
}

interface Throughput {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuSeconds: number;
  /** CPU of the PostgreSQL backends serving this database; undefined without a local PostgreSQL. */
  postgresCpuSeconds?: number;
}

/** Prisma statements and round trips of one sendMessage request; see ROUND_TRIP_METHOD. */
interface MessageCount {
  sendPath: number;
  sendPathRoundTrips: number;
  lifecycle: number;
  lifecycleRoundTrips: number;
  /** Queries the pg driver sent (PostgreSQL only): the round trips, counted at the wire. */
  driverQueries?: number;
}

const TRANSACTION_END = /^\s*(COMMIT|ROLLBACK)\b|^-- Implicit "(COMMIT|ROLLBACK)"/i;
const ROUND_TRIP_METHOD =
  "Statements: Prisma's query events. Prisma reports an interactive transaction's COMMIT (or ROLLBACK; " +
  'with PGlite as an "Implicit COMMIT" comment) but not its BEGIN, so round trips = statements + one BEGIN per transaction' +
  (process.env.DATABASE_URL ? '; the pg column counts the queries the pg driver sent, which must agree.' : '.') +
  ' Send path: up to the moment the upstream receives the request (auth, lookups, the reservation and ' +
  'message writes); lifecycle: the whole request, including finalize/settle and the reply read back.';

export async function benchWrites(): Promise<string> {
  const throughput = await measureThroughput();
  const counts = await countRoundTrips();
  return report(throughput, counts);
}

/**
 * aimock answering every bench prompt at once. `onRequest` runs as a request arrives (aimock
 * evaluates the predicate then): the moment the send path hands over to the model.
 */
async function startWriteUpstream(onRequest: () => void = () => {}): Promise<{ baseUrl: string; stop(): Promise<void> }> {
  const mock = new LLMock({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
  mock.on(
    {
      predicate: (request) => {
        if (!lastUserText(request.messages)?.startsWith(PROMPT)) return false;
        onRequest();
        return true;
      },
    },
    { content: REPLY },
    { latency: 0 },
  );
  await mock.start();
  return { baseUrl: `${mock.url}/v1`, stop: () => mock.stop() };
}

function lastUserText(messages: ReadonlyArray<{ role: string; content?: unknown }>): string | undefined {
  const last = messages.findLast((m) => m.role === 'user');
  return typeof last?.content === 'string' ? last.content : undefined;
}

/** Sends one message and fails loudly unless its reply ended COMPLETE. */
async function send(url: URL, token: string, content: string): Promise<void> {
  const data = await graphql<{ sendMessage: SendResult }>(url, SEND_MESSAGE, { content }, token);
  const { status } = data.sendMessage.assistantMessage;
  if (status !== 'COMPLETE') throw new Error(`sendMessage ended ${status}, not COMPLETE`);
}

/** `count` sends, each to a new conversation, by `CLIENTS` clients in parallel; returns each one's latency in ms. */
async function sendMany(url: URL, token: string, count: number): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const client = async () => {
    while (next < count) {
      const started = performance.now();
      await send(url, token, `${PROMPT} ${next++}`);
      latencies.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  return latencies;
}

async function measureThroughput(): Promise<Throughput> {
  const upstream = await startWriteUpstream();
  const server = await startSwitchboard(upstream.baseUrl);
  try {
    const { accessToken } = await registerBenchUser(server.url);
    await sendMany(server.url, accessToken, WARMUP_WRITES);
    const postgresBefore = await postgresBackendCpuMs();
    const cpuBefore = cpuMsOf(server.pid);
    const started = performance.now();
    const latencies = await sendMany(server.url, accessToken, WRITES);
    const seconds = (performance.now() - started) / 1000;
    const serverCpuSeconds = (cpuMsOf(server.pid) - cpuBefore) / 1000;
    const postgresAfter = await postgresBackendCpuMs();
    return {
      requestsPerSecond: WRITES / seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      serverCpuSeconds,
      postgresCpuSeconds: postgresBefore && postgresAfter ? cpuDeltaMs(postgresBefore, postgresAfter) / 1000 : undefined,
    };
  } finally {
    await server.stop();
    await upstream.stop();
  }
}

/**
 * CPU used so far by each PostgreSQL backend connected to the bench database (its pid → ms), when
 * PostgreSQL runs on this machine. Background processes (WAL writer, checkpointer) are left out.
 */
async function postgresBackendCpuMs(): Promise<Map<number, number> | undefined> {
  const url = process.env.DATABASE_URL;
  if (!url) return undefined;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    return new Map(rows.map((r) => [r.pid, cpuMsOf(r.pid)]));
  } catch {
    return undefined; // PostgreSQL on another machine: no /proc entry for its backends.
  } finally {
    await client.end();
  }
}

/** A backend that connected during the run used all of its CPU in it. */
function cpuDeltaMs(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

/**
 * Statements and round trips per message, in this process: COUNTED_MESSAGES messages each to a
 * new conversation, then as many to one existing conversation, one at a time. Deterministic: the
 * same code path gives the same counts, whatever the machine's load.
 */
async function countRoundTrips(): Promise<Array<{ scenario: string; counts: MessageCount[] }>> {
  let statements: string[] = [];
  let sendPathEnd: number | undefined;
  const upstream = await startWriteUpstream(() => (sendPathEnd ??= statements.length));
  const driver = process.env.DATABASE_URL ? countDriverQueries() : undefined;
  const t = await startCountingApp(
    { OPENAI_API_KEY: 'sk-bench', OPENAI_BASE_URL: upstream.baseUrl, SIGNUP_CREDITS_MICROS: '1000000000000' },
    (sql) => statements.push(sql),
  );
  /** Sends one message and counts what it cost; returns the conversation it went to. */
  const countOne = async (token: string, content: string, conversationId?: string) => {
    statements = [];
    sendPathEnd = undefined;
    driver?.reset();
    const result = await executeRaw(t, { query: SEND_MESSAGE, variables: { content, conversationId } }, { token });
    const data = result.data?.sendMessage as SendResult | undefined;
    if (data?.assistantMessage.status !== 'COMPLETE') throw new Error(`sendMessage failed: ${JSON.stringify(result)}`);
    await quiet(() => statements.length);
    // SHOW_SQL=1: the statements of the first counted message of each kind.
    if (process.env.SHOW_SQL && content.endsWith(' 0')) console.log(`-- ${content}:\n${statements.join('\n')}\n`);
    return { conversationId: data.conversation.id, count: countOf(statements, sendPathEnd, driver?.count()) };
  };
  try {
    const { accessToken } = await registerUser(t);
    // One message first, not counted: the user's first send creates rows later sends only update.
    const first = await countOne(accessToken, `${PROMPT} warm-up`);
    const fresh: MessageCount[] = [];
    const existing: MessageCount[] = [];
    for (let i = 0; i < COUNTED_MESSAGES; i += 1) fresh.push((await countOne(accessToken, `${PROMPT} new ${i}`)).count);
    for (let i = 0; i < COUNTED_MESSAGES; i += 1) {
      existing.push((await countOne(accessToken, `${PROMPT} existing ${i}`, first.conversationId)).count);
    }
    return [
      { scenario: 'new conversation', counts: fresh },
      { scenario: 'existing conversation', counts: existing },
    ];
  } finally {
    await t.stop();
    driver?.restore();
    await upstream.stop();
  }
}

function countOf(statements: string[], sendPathEnd: number | undefined, driverQueries: number | undefined): MessageCount {
  if (sendPathEnd === undefined) throw new Error('The upstream never received the message');
  // Prisma reports the end of an interactive transaction, not its BEGIN. With PGlite, whose driver
  // runs both itself, the end is a comment: '-- Implicit "COMMIT" query via underlying driver'.
  const transactions = (list: string[]) => list.filter((sql) => TRANSACTION_END.test(sql)).length;
  const sendPath = statements.slice(0, sendPathEnd);
  return {
    sendPath: sendPath.length,
    sendPathRoundTrips: sendPath.length + transactions(sendPath),
    lifecycle: statements.length,
    lifecycleRoundTrips: statements.length + transactions(statements),
    driverQueries,
  };
}

/**
 * Counts every query the pg driver sends, BEGIN included, by wrapping Client.prototype.query
 * (the Prisma adapter's pool creates its clients from it) until restore().
 */
function countDriverQueries(): { count(): number; reset(): void; restore(): void } {
  const prototype = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = prototype.query;
  let count = 0;
  prototype.query = function (this: unknown, ...args: unknown[]) {
    count += 1;
    return original.apply(this, args);
  };
  return {
    count: () => count,
    reset: () => (count = 0),
    restore: () => (prototype.query = original),
  };
}

/** Resolves once `size()` has not changed for QUIET_MS. */
async function quiet(size: () => number): Promise<void> {
  for (let last = -1; size() !== last; ) {
    last = size();
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
  }
}

/** "n" when every message cost the same, else "median (min–max)". */
function summarize(values: number[]): string {
  const min = Math.min(...values);
  const max = Math.max(...values);
  return min === max ? String(min) : `${percentile(values, 50)} (${min}–${max})`;
}

function report(throughput: Throughput, rows: Array<{ scenario: string; counts: MessageCount[] }>): string {
  const database = process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite (embedded)';
  const perCpuSecond = WRITES / throughput.serverCpuSeconds;
  const postgres = throughput.postgresCpuSeconds;
  const withDriver = rows.some((r) => r.counts.some((c) => c.driverQueries !== undefined));
  return [
    `## Writes — ${database}${process.env.REDIS_URL ? ' + Redis' : ''}: sendMessage(stream: false), ` +
      `${WRITES} requests (after ${WARMUP_WRITES} warm-up), ${CLIENTS} clients, one user, upstream answering at once`,
    '',
    '| req/s | p50 ms | p99 ms | server CPU s | requests per server CPU-second | PostgreSQL backend CPU s |',
    '|---:|---:|---:|---:|---:|---:|',
    `| ${throughput.requestsPerSecond.toFixed(0)} | ${throughput.p50Ms.toFixed(1)} | ${throughput.p99Ms.toFixed(1)} | ` +
      `${throughput.serverCpuSeconds.toFixed(2)} | **${perCpuSecond.toFixed(0)}** | ${postgres === undefined ? 'n/a' : postgres.toFixed(2)} |`,
    '',
    `Database work per message (${COUNTED_MESSAGES} messages each, one at a time, in this process). ${ROUND_TRIP_METHOD}`,
    '',
    `| message to | send path statements | send path round trips | lifecycle statements | lifecycle round trips |${withDriver ? ' pg driver queries |' : ''}`,
    `|---|---:|---:|---:|---:|${withDriver ? '---:|' : ''}`,
    ...rows.map(({ scenario, counts }) => {
      const column = (pick: (c: MessageCount) => number | undefined) => summarize(counts.map((c) => pick(c) ?? NaN));
      return (
        `| ${scenario} | ${column((c) => c.sendPath)} | ${column((c) => c.sendPathRoundTrips)} | ${column((c) => c.lifecycle)} | ` +
        `**${column((c) => c.lifecycleRoundTrips)}** |${withDriver ? ` ${column((c) => c.driverQueries)} |` : ''}`
      );
    }),
    '',
    `**${perCpuSecond.toFixed(0)} sendMessage requests per server CPU-second; ` +
      rows.map(({ scenario, counts }) => `${scenario}: ${summarize(counts.map((c) => c.lifecycleRoundTrips))} round trips`).join(', ') +
      ' per message.**',
    '',
  ].join('\n');
}
