import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type ExecutionResult, type GraphQLFormattedError } from 'graphql';
import { afterAll, beforeAll, inject } from 'vitest';
import { buildApp, type App, type AppOptions } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { DatabaseTarget } from '../../src/db/client.js';
import { registerLeftover } from './leftovers.js';
import { GENEROUS_LIMITS } from './limits.js';
import { MockUpstream } from './upstream.js';

export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

const FILE_REDIS_PREFIX = `test-${randomUUID().slice(0, 8)}:`;

/** Config as a test server sees it; `env` overrides single variables. */
export function testConfig(env: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    JWT_SECRET: TEST_JWT_SECRET,
    // Cheap hashing keeps the suite fast; production uses the default cost (2^17).
    PASSWORD_HASH_COST: '12',
    // With REDIS_URL set (CI), every test server streams through Redis instead of in-process.
    REDIS_URL: process.env.REDIS_URL,
    // The servers of one test file share their Redis keys (as a cluster does), and no others: a
    // circuit opened by one file's failing upstream, or by an earlier run, never reaches another.
    REDIS_KEY_PREFIX: FILE_REDIS_PREFIX,
    ...GENEROUS_LIMITS,
    ...env,
  });
}

let template: Blob | undefined;

export function testDatabase(): DatabaseTarget {
  const url = inject('databaseUrl');
  if (url) return { kind: 'postgres', url };
  const file = inject('pgliteTemplate');
  template ??= file ? new Blob([readFileSync(file)]) : undefined;
  return { kind: 'pglite', dataDir: 'memory://', template };
}

export interface TestApp {
  app: App;
  config: Config;
  /** Runs an operation in-process through yoga.fetch (no port). */
  execute<R, V>(
    document: TypedDocumentNode<R, V>,
    variables?: V,
    options?: { token?: string | null },
  ): Promise<ExecutionResult<R> & { status: number }>;
  stop(): Promise<void>;
}

export async function startTestApp(
  env: Record<string, string | undefined> = {},
  options: AppOptions = {},
): Promise<TestApp> {
  const config = testConfig(env);
  const app = await buildApp(config, { ...options, database: options.database ?? testDatabase() });
  return {
    app,
    config,
    execute: (document, variables, options = {}) =>
      executeOver(app.yoga.fetch, 'http://yoga/graphql', document, variables, options.token),
    // Stopped at the end of the test (or file) that started it, unless the test stops it first.
    stop: registerLeftover(() => app.stop()),
  };
}

/**
 * One test server on a free port for the whole test file: started before its tests, stopped
 * after; `onStarted` receives it and its URL.
 */
export function serveForFile(onStarted: (t: TestApp, url: URL) => void, env: Record<string, string | undefined> = {}): void {
  let t: TestApp | undefined;
  beforeAll(async () => {
    t = await startTestApp(env);
    onStarted(t, await t.app.start(0));
  });
  afterAll(() => t?.stop());
}

/**
 * An in-process test app with an aimock upstream of its own, which it uses as its model provider,
 * for the whole file: started before its tests, both disposed at its end.
 */
export function startWithUpstreamForFile(
  onStarted: (t: TestApp, upstream: MockUpstream) => void | Promise<void>,
  env: Record<string, string | undefined> = {},
): void {
  beforeAll(async () => {
    const upstream = await MockUpstream.start();
    await onStarted(await startTestApp({ ...upstream.env, ...env }), upstream);
  });
}

/** The same, served on a free port; `onStarted` also receives its URL. */
export function serveWithUpstreamForFile(
  onStarted: (t: TestApp, url: URL, upstream: MockUpstream) => void,
  env: Record<string, string | undefined> = {},
): void {
  startWithUpstreamForFile(async (t, upstream) => onStarted(t, await t.app.start(0), upstream), env);
}

/** Runs an operation with a fetch function: yoga.fetch in-process, or the global fetch over a port. */
export async function executeOver<R, V>(
  fetchFn: (url: string, init: RequestInit) => Promise<Response> | Response,
  url: string | URL,
  document: TypedDocumentNode<R, V>,
  variables?: V,
  token?: string | null,
): Promise<ExecutionResult<R> & { status: number }> {
  const response = await fetchFn(url.toString(), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: print(document), variables }),
  });
  return { ...(await response.json()), status: response.status };
}

/** Posts a raw GraphQL request in-process (for documents codegen cannot type: attacks, limits). */
export async function executeRaw(
  t: TestApp,
  body: { query?: string; documentId?: string; variables?: unknown; operationName?: string; extensions?: unknown },
  options: { token?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; data?: Record<string, unknown> | null; errors?: GraphQLFormattedError[] }> {
  const response = await t.app.yoga.fetch('http://yoga/graphql', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body: JSON.stringify(body),
  });
  return { ...(await response.json()), status: response.status, headers: response.headers };
}

/** Throws with the errors when a result has any, so a test fails at the real cause. */
export function expectData<R>(result: ExecutionResult<R>): R {
  if (result.errors?.length || !result.data) {
    throw new Error(`Expected data, got errors: ${JSON.stringify(result.errors)}`);
  }
  return result.data;
}

export function errorCodes(result: ExecutionResult<unknown>): unknown[] {
  return (result.errors ?? []).map((e) => e.extensions?.code);
}

export function uniqueEmail(label = 'user'): string {
  return `${label}-${randomUUID().slice(0, 8)}@example.com`;
}

export const STRONG_PASSWORD = 'correct horse battery staple';
