import { LLMock } from '@copilotkit/aimock';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseTarget } from '../src/db/client.js';
import { startTestApp, type TestApp } from '../test/helpers/app.js';
import { spawnServer } from '../test/helpers/server-process.js';

/** The prompts the upstream answers: the same reply, paced like a model or as fast as possible. */
export const PROMPTS = { unpaced: 'bench unpaced', paced: 'bench paced' } as const;
/** A model's pace: the first token after 100 ms, then a chunk every 20 ms. */
export const PACED_FIRST_TOKEN_MS = 100;
export const PACED_CHUNK_MS = 20;

/** The upstream every benchmark talks to: aimock, answering each bench prompt with a fixed reply. */
export async function startUpstream(reply: string, chunkSize: number): Promise<{ baseUrl: string; stop(): Promise<void> }> {
  const mock = new LLMock({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
  mock.on({ userMessage: PROMPTS.unpaced }, { content: reply }, { chunkSize, latency: 0 });
  mock.on(
    { userMessage: PROMPTS.paced },
    { content: reply },
    { chunkSize, streamingProfile: { ttft: PACED_FIRST_TOKEN_MS, tps: 1000 / PACED_CHUNK_MS } },
  );
  await mock.start();
  return { baseUrl: `${mock.url}/v1`, stop: () => mock.stop() };
}

/** The server's JWT secret: the hand-written comparison server verifies the same access tokens. */
export const BENCH_JWT_SECRET = 'bench-secret-that-is-long-enough-for-hs256-0123456789';

/**
 * A Switchboard server in its own process, as production runs it, so that the load generator and
 * the clients do not share its event loop. PostgreSQL and Redis when DATABASE_URL / REDIS_URL are
 * set, else the embedded defaults (PGlite under a temporary DATA_DIR, in-process pub/sub).
 */
export async function startSwitchboard(
  upstreamBaseUrl: string,
  extraEnv: Record<string, string | undefined> = {},
): Promise<{ url: URL; pid: number; stop(): Promise<unknown> }> {
  // BENCH_PROFILE=1 writes a V8 CPU profile of the server to bench/profiles/ (open it in Chrome DevTools).
  // BENCH_NODE_ARGS: more flags for the server's node (e.g. --max-semi-space-size=32).
  const nodeArgs = [
    ...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=bench/profiles'] : []),
    ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
  ];
  const server = await spawnServer(
    {
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'sb-bench-')),
      JWT_SECRET: BENCH_JWT_SECRET,
      PASSWORD_HASH_COST: '12',
      OPENAI_API_KEY: 'sk-bench',
      OPENAI_BASE_URL: upstreamBaseUrl,
      QUOTA_FREE_TOKENS: '1000000000',
      SIGNUP_CREDITS_MICROS: '1000000000000',
      DATABASE_URL: process.env.DATABASE_URL,
      REDIS_URL: process.env.REDIS_URL,
      ...extraEnv,
    },
    { nodeArgs, keepOutput: false },
  );
  return { url: server.url, pid: server.child.pid!, stop: server.stop };
}

/**
 * The app inside this process, reporting every SQL statement Prisma sends to `onQuery` (for the
 * statement counts): on DATABASE_URL when set, else on a fresh in-memory PGlite.
 */
export function startCountingApp(env: Record<string, string | undefined>, onQuery: (sql: string) => void): Promise<TestApp> {
  const url = process.env.DATABASE_URL;
  const database: DatabaseTarget = url ? { kind: 'postgres', url } : { kind: 'pglite', dataDir: 'memory://' };
  return startTestApp(env, { database, onQuery });
}

/** POSTs a GraphQL operation and fails loudly on errors: a benchmark of failures measures nothing. */
export async function graphql<T = Record<string, any>>(
  url: URL,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown[] };
  if (body.errors?.length || !body.data) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

export async function registerBenchUser(url: URL): Promise<{ accessToken: string; apiKey: string }> {
  const email = `bench-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const registered = await graphql<{ register: { accessToken: string } }>(
    url,
    'mutation($input: RegisterInput!) { register(input: $input) { accessToken } }',
    { input: { email, password: 'correct horse battery staple', name: 'Bench' } },
  );
  const accessToken = registered.register.accessToken;
  const key = await graphql<{ createApiKey: { secret: string } }>(
    url,
    'mutation { createApiKey(input: { name: "bench" }) { secret } }',
    {},
    accessToken,
  );
  return { accessToken, apiKey: key.createApiKey.secret };
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux). */
export function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
