import { print } from 'graphql';
import { describe, expect, it, vi } from 'vitest';
import { AppError } from '../src/errors.js';
import { errorCodes, expectData, serveWithUpstreamForFile, startTestApp, TEST_JWT_SECRET, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { MessageStreamDocument, ModelsDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { LoginDocument, MeDocument } from './helpers/documents.js';
import { sample, scrape } from './helpers/metrics.js';
import { MockUpstream } from './helpers/upstream.js';
import { connectWs, wsExecute } from './helpers/ws.js';

const MODEL = 'priced-model';
let upstream: MockUpstream;
let t: TestApp;
let url: URL;
serveWithUpstreamForFile(
  (app, address, mock) => ((t = app), (url = address), (upstream = mock)),
  {
    UPSTREAM_MAX_ATTEMPTS: '1',
    RATE_LIMIT_LOGIN_PER_ACCOUNT: '2/1m',
    MODELS_JSON: JSON.stringify([
      { id: MODEL, contextWindow: 128_000, maxOutputTokens: 4096, promptMicrosPerMillion: 150_000, completionMicrosPerMillion: 600_000 },
    ]),
  },
);

/** Runs `work` and returns how much each named sample grew meanwhile. */
async function growth(samples: Record<string, [string, Record<string, string>?]>, work: () => Promise<unknown>) {
  const before = await scrape(url);
  await work();
  const after = await scrape(url);
  return Object.fromEntries(
    Object.entries(samples).map(([key, [name, labels]]) => [key, sample(after, name, labels) - sample(before, name, labels)]),
  );
}

const post = (query: string, token?: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query }),
  }).then((response) => response.json() as Promise<{ errors?: Array<{ extensions?: { code?: string } }> }>);

describe('the /metrics endpoint', () => {
  it("serves this instance's metrics with the process metrics, openly outside production", async () => {
    const response = await fetch(new URL('/metrics', url));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const body = await response.text();
    expect(body).toContain('process_cpu_user_seconds_total');
    expect(body).toContain('# TYPE switchboard_graphql_operations_total counter');
  });

  it('asks for the bearer token when METRICS_TOKEN is set', async () => {
    const token = 'metrics-token-0123456789';
    const guarded = await startTestApp({ METRICS_TOKEN: token });
    try {
      const guardedUrl = await guarded.app.start(0);
      const get = (authorization?: string) =>
        fetch(new URL('/metrics', guardedUrl), { headers: authorization ? { authorization } : {} });
      expect((await get()).status).toBe(401);
      expect((await get(`Bearer ${token}x`)).status).toBe(401);
      expect((await get(token)).status).toBe(401);
      const allowed = await get(`Bearer ${token}`);
      expect(allowed.status).toBe(200);
      expect(await allowed.text()).toContain('switchboard_graphql_operations_total');
    } finally {
      await guarded.stop();
    }
  });

  it('is off in production unless METRICS_TOKEN is set', async () => {
    const production = await startTestApp({ NODE_ENV: 'production', JWT_SECRET: TEST_JWT_SECRET, DEMO_MODEL: 'true' });
    try {
      expect((await fetch(new URL('/metrics', await production.app.start(0)))).status).toBe(404);
    } finally {
      await production.stop();
    }
  });
});

describe('GraphQL metrics', () => {
  it('counts operations by name and type over HTTP and graphql-ws, and times them', async () => {
    const user = await registerUser(t);
    const ws = connectWs(url, user.accessToken);
    try {
      const grown = await growth(
        {
          me: ['switchboard_graphql_operations_total', { operation_name: 'Me', operation_type: 'query' }],
          meTimed: ['switchboard_graphql_operation_duration_seconds_count', { operation_name: 'Me', operation_type: 'query' }],
          models: ['switchboard_graphql_operations_total', { operation_name: 'Models', operation_type: 'query' }],
        },
        async () => {
          expectData(await t.execute(MeDocument, {}, { token: user.accessToken }));
          expectData(await wsExecute(ws, MeDocument));
          expectData(await wsExecute(ws, ModelsDocument));
        },
      );
      expect(grown).toEqual({ me: 2, meTimed: 2, models: 1 });
    } finally {
      await ws.dispose();
    }
  });

  it('labels anonymous operations "anonymous" and names past the cap "other"', async () => {
    const before = await scrape(url);
    await post('{ models { id } }');
    const names = Array.from({ length: 101 }, (_, i) => `Probe${i}_${Date.now()}`);
    for (const name of names) await post(`query ${name} { models { id } }`);
    const after = await scrape(url);
    const ops = (labels: Record<string, string>) =>
      sample(after, 'switchboard_graphql_operations_total', labels) - sample(before, 'switchboard_graphql_operations_total', labels);
    expect(ops({ operation_name: 'anonymous', operation_type: 'query' })).toBe(1);
    expect(ops({ operation_name: 'other' })).toBeGreaterThan(0);
    expect(after).not.toContain(names.at(-1));
  });

  it('counts errors by the code clients get: expected, masked, rate limited, invalid documents', async () => {
    const user = await registerUser(t);
    const sendMessage = vi.spyOn(t.app.services.chat, 'sendMessage');
    try {
      const grown = await growth(
        {
          unauthenticated: ['switchboard_graphql_errors_total', { code: 'UNAUTHENTICATED' }],
          internal: ['switchboard_graphql_errors_total', { code: 'INTERNAL_SERVER_ERROR' }],
          rateLimited: ['switchboard_graphql_errors_total', { code: 'RATE_LIMITED' }],
          parse: ['switchboard_graphql_errors_total', { code: 'GRAPHQL_PARSE_FAILED' }],
          validation: ['switchboard_graphql_errors_total', { code: 'GRAPHQL_VALIDATION_FAILED' }],
        },
        async () => {
          expect(errorCodes(await t.execute(SendMessageDocument, { input: { content: 'hi' } }))).toEqual(['UNAUTHENTICATED']);
          expect(errorCodes(await t.execute(MeDocument, {}, { token: 'not-a-token' }))).toEqual(['UNAUTHENTICATED']);
          sendMessage.mockRejectedValueOnce(new Error('a bug'));
          const masked = await t.execute(SendMessageDocument, { input: { content: 'hi' } }, { token: user.accessToken });
          expect(errorCodes(masked)).toEqual(['INTERNAL_SERVER_ERROR']);
          sendMessage.mockRejectedValueOnce(new AppError('RATE_LIMITED', 'Slow down'));
          const limited = await t.execute(SendMessageDocument, { input: { content: 'hi' } }, { token: user.accessToken });
          expect(errorCodes(limited)).toEqual(['RATE_LIMITED']);
          await post('{ models { id ');
          await post('{ noSuchField }');
        },
      );
      expect(grown).toEqual({ unauthenticated: 2, internal: 1, rateLimited: 1, parse: 1, validation: 1 });
    } finally {
      sendMessage.mockRestore();
    }
  });

  it('counts rate-limit refusals by rule', async () => {
    const email = `nobody-${Date.now()}@example.com`;
    const grown = await growth({ refused: ['switchboard_rate_limited_total', { rule: 'loginPerAccount' }] }, async () => {
      for (let i = 0; i < 3; i += 1) await t.execute(LoginDocument, { input: { email, password: 'wrong password!' } });
    });
    expect(grown).toEqual({ refused: 1 });
  });
});

describe('generation metrics', () => {
  it('counts tokens and cost by model and times the first token and the whole generation', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'Counted.', usage: { prompt_tokens: 1000, completion_tokens: 2000 } });
    const grown = await growth(
      {
        prompt: ['switchboard_tokens_total', { model: MODEL, kind: 'prompt' }],
        completion: ['switchboard_tokens_total', { model: MODEL, kind: 'completion' }],
        cost: ['switchboard_cost_micros_total', { model: MODEL }],
        firstToken: ['switchboard_generation_time_to_first_token_seconds_count', { model: MODEL }],
        duration: ['switchboard_generation_duration_seconds_count', { model: MODEL, status: 'COMPLETE' }],
      },
      async () => {
        const sent = await t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token: user.accessToken });
        expect(expectData(sent).sendMessage.assistantMessage.status).toBe('COMPLETE');
      },
    );
    // 1000 × 0.15 + 2000 × 0.60 micro-dollars.
    expect(grown).toEqual({ prompt: 1000, completion: 2000, cost: 1350, firstToken: 1, duration: 1 });
  });

  it('counts upstream errors by HTTP status', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ error: { message: 'down', type: 'server_error' }, status: 503 });
    const grown = await growth({ unavailable: ['switchboard_upstream_errors_total', { status: '503' }] }, async () => {
      const sent = await t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token: user.accessToken });
      expect(errorCodes(sent)).toEqual(['UPSTREAM_ERROR']);
    });
    expect(grown).toEqual({ unavailable: 1 });
  });

  it('shows running generations, open graphql-ws connections and active subscriptions while a reply streams', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'one two three four five six' }, { chunkSize: 4, latency: 100 });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
    const ws = connectWs(url, user.accessToken);
    try {
      const stream = ws.iterate({ query: print(MessageStreamDocument), variables: { messageId: sent.sendMessage.assistantMessage.id } });
      await stream.next();
      const during = await scrape(url);
      expect(sample(during, 'switchboard_generations_running')).toBe(1);
      expect(sample(during, 'switchboard_ws_connections')).toBe(1);
      expect(sample(during, 'switchboard_ws_subscriptions')).toBe(1);
      for await (const event of stream) if ((event.data as { messageStream: { done: boolean } }).messageStream.done) break;
    } finally {
      await ws.dispose();
    }
    await vi.waitFor(async () => {
      const after = await scrape(url);
      expect(sample(after, 'switchboard_generations_running')).toBe(0);
      expect(sample(after, 'switchboard_ws_connections')).toBe(0);
      expect(sample(after, 'switchboard_ws_subscriptions')).toBe(0);
    });
  });
});
