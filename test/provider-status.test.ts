import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CIRCUIT_BREAKER_DEFAULTS } from '../src/providers/circuit-breaker.js';
import { signUp } from './helpers/admin.js';
import { errorCodes, expectData, startTestApp, uniqueEmail, type TestApp } from './helpers/app.js';
import { sample, scrape } from './helpers/metrics.js';
import { ProvidersDocument } from './helpers/provider-documents.js';

const PRICED = { contextWindow: 128_000, maxOutputTokens: 4096, promptMicrosPerMillion: 150_000, completionMicrosPerMillion: 600_000 };

/**
 * An app with two providers of its own (ids unique to the test, so circuits shared through Redis
 * and attempt rows on a shared database are its own), configured with recognisable keys and
 * addresses that must never come out. Nothing is ever sent to them.
 */
async function startWithProviders(options: { onQuery?: (sql: string) => void } = {}) {
  const suffix = randomUUID().slice(0, 8);
  const ids = { primary: `primary-${suffix}`, backup: `backup-${suffix}` };
  const secrets = [`sk-fake-provider-key-${suffix}`, `fake-provider-${suffix}.invalid`, `sk-fake-anthropic-key-${suffix}`, `fake-anthropic-${suffix}.invalid`];
  const adminEmail = uniqueEmail('ops');
  const t = await startTestApp(
    {
      ADMIN_EMAILS: adminEmail,
      PROVIDERS_JSON: JSON.stringify([
        { id: ids.primary, kind: 'openai-compatible', baseUrl: `https://${secrets[1]}/v1`, apiKey: secrets[0] },
        { id: ids.backup, kind: 'anthropic', baseUrl: `https://${secrets[3]}`, apiKey: secrets[2] },
      ]),
      MODELS_JSON: JSON.stringify([
        { ...PRICED, id: 'chat-model', deployments: [{ provider: ids.primary, model: 'upstream-a' }, { provider: ids.backup, model: 'claude-x' }] },
        { ...PRICED, id: 'second-model', deployments: [{ provider: ids.primary, model: 'upstream-b' }] },
      ]),
      // The default provider's readiness probe stays on this machine: a closed port.
      OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
    },
    { onQuery: options.onQuery },
  );
  const admin = await signUp(t, { email: adminEmail });
  return { t, ids, secrets, admin };
}

const providersOf = async (t: TestApp, token: string) => expectData(await t.execute(ProvidersDocument, {}, { token })).providers;

function expectNoSecrets(output: unknown, secrets: string[]) {
  const text = typeof output === 'string' ? output : JSON.stringify(output);
  for (const secret of secrets) expect(text).not.toContain(secret);
  expect(text).not.toMatch(/apiKey|baseUrl/i);
}

const healthy = (model: string, upstreamModel: string) => ({ model, upstreamModel, state: 'HEALTHY', consecutiveFailures: 0, nextProbeAt: null });
const noFigures = { attempts: 0, errors: 0, timeouts: 0, cuts: 0, medianFirstTokenMs: null, p95FirstTokenMs: null, billedCostMicros: 0, unbilledCostMicros: 0 };

/** Opens a deployment's circuit the way failing calls do. */
async function openCircuit(t: TestApp, key: string) {
  for (let i = 0; i < CIRCUIT_BREAKER_DEFAULTS.failureThreshold; i += 1) await t.app.circuit.recordFailure(key);
}

describe('the providers query', () => {
  it('lists each configured provider with its kind and deployments in catalog order, and nothing of how to reach it', async () => {
    const { t, ids, secrets, admin } = await startWithProviders();

    const providers = await providersOf(t, admin.token);

    expect(providers).toEqual([
      {
        id: ids.primary,
        kind: 'OPENAI_COMPATIBLE',
        state: 'HEALTHY',
        deployments: [healthy('chat-model', 'upstream-a'), healthy('second-model', 'upstream-b')],
        recent: { ...noFigures, since: expect.any(String) },
      },
      {
        id: ids.backup,
        kind: 'ANTHROPIC',
        state: 'HEALTHY',
        deployments: [healthy('chat-model', 'claude-x')],
        recent: { ...noFigures, since: expect.any(String) },
      },
    ]);
    const windowMs = Date.now() - Date.parse(providers[0]!.recent.since);
    expect(windowMs).toBeGreaterThanOrEqual(15 * 60_000);
    expect(windowMs).toBeLessThan(16 * 60_000);
    expectNoSecrets(providers, secrets);
  });

  it('opens a provider only once all its deployments are open, degrades it while some are, and says when each is probed', async () => {
    const { t, ids, secrets, admin } = await startWithProviders();

    await openCircuit(t, `${ids.primary}/upstream-a`);
    await t.app.circuit.recordFailure(`${ids.backup}/claude-x`);
    const degraded = await providersOf(t, admin.token);
    expect(degraded.map((p) => [p.id, p.state])).toEqual([
      [ids.primary, 'DEGRADED'],
      [ids.backup, 'DEGRADED'],
    ]);
    const [openOne, stillHealthy] = degraded[0]!.deployments;
    expect(openOne).toMatchObject({ upstreamModel: 'upstream-a', state: 'OPEN', consecutiveFailures: 3 });
    const probeInMs = Date.parse(openOne!.nextProbeAt!) - Date.now();
    expect(probeInMs).toBeGreaterThan(0);
    expect(probeInMs).toBeLessThanOrEqual(CIRCUIT_BREAKER_DEFAULTS.probeAfterMs);
    expect(stillHealthy).toEqual(healthy('second-model', 'upstream-b'));
    expect(degraded[1]!.deployments).toEqual([{ ...healthy('chat-model', 'claude-x'), state: 'DEGRADED', consecutiveFailures: 1 }]);

    await openCircuit(t, `${ids.primary}/upstream-b`);
    const open = await providersOf(t, admin.token);
    expect(open[0]).toMatchObject({ id: ids.primary, state: 'OPEN' });
    expect(open[0]!.deployments.map((d) => d.state)).toEqual(['OPEN', 'OPEN']);
    expectNoSecrets(open, secrets);

    await t.app.circuit.recordSuccess(`${ids.primary}/upstream-a`);
    expect((await providersOf(t, admin.token))[0]).toMatchObject({ state: 'DEGRADED' });
  });

  it('sums the last 15 minutes of attempts of every provider in one query', async () => {
    const statements: string[] = [];
    const { t, ids, admin } = await startWithProviders({ onQuery: (sql) => statements.push(sql) });
    const user = await signUp(t);
    const now = Date.now();
    const attempt = (provider: string, minutesAgo: number, row: { outcome: 'OK' | 'ERROR' | 'TIMEOUT' | 'CUT' | 'REFUSED'; firstTokenMs?: number; cost: number; billed: boolean }) => ({
      userId: user.userId,
      position: 0,
      provider,
      model: 'chat-model',
      upstreamModel: 'upstream-a',
      outcome: row.outcome,
      firstTokenMs: row.firstTokenMs ?? null,
      costMicros: BigInt(row.cost),
      billed: row.billed,
      startedAt: new Date(now - minutesAgo * 60_000),
      durationMs: 1000,
    });
    await t.app.db.prisma.messageAttempt.createMany({
      data: [
        attempt(ids.primary, 1, { outcome: 'OK', firstTokenMs: 100, cost: 1000, billed: true }),
        attempt(ids.primary, 2, { outcome: 'OK', firstTokenMs: 200, cost: 2000, billed: true }),
        attempt(ids.primary, 3, { outcome: 'CUT', firstTokenMs: 300, cost: 50, billed: false }),
        attempt(ids.primary, 4, { outcome: 'TIMEOUT', cost: 40, billed: false }),
        attempt(ids.primary, 5, { outcome: 'ERROR', cost: 0, billed: false }),
        attempt(ids.primary, 14, { outcome: 'REFUSED', cost: 30, billed: false }),
        // Before the window.
        attempt(ids.primary, 16, { outcome: 'ERROR', firstTokenMs: 9000, cost: 9999, billed: false }),
        attempt(ids.backup, 20, { outcome: 'OK', firstTokenMs: 50, cost: 500, billed: true }),
      ],
    });

    statements.length = 0;
    const providers = await providersOf(t, admin.token);

    expect(providers.map((p) => ({ id: p.id, ...p.recent, since: undefined }))).toEqual([
      {
        id: ids.primary,
        since: undefined,
        attempts: 6,
        errors: 4,
        timeouts: 1,
        cuts: 1,
        medianFirstTokenMs: 200,
        // percentile_cont over 100, 200 and 300: 200 + 0.9 × 100.
        p95FirstTokenMs: 290,
        billedCostMicros: 3000,
        unbilledCostMicros: 120,
      },
      { id: ids.backup, since: undefined, ...noFigures },
    ]);
    expect(statements.filter((sql) => sql.includes('"MessageAttempt"'))).toHaveLength(1);
  });

  it('is for admins only', async () => {
    const { t } = await startWithProviders();
    const user = await signUp(t);
    expect(errorCodes(await t.execute(ProvidersDocument, {}, { token: user.token }))).toEqual(['FORBIDDEN']);
    expect(errorCodes(await t.execute(ProvidersDocument, {}))).toEqual(['UNAUTHENTICATED']);
  });
});

describe('provider circuits outside GraphQL', () => {
  it('are reported on /ready, where an open provider leaves the instance ready', async () => {
    const { t, ids, secrets } = await startWithProviders();
    const url = await t.app.start(0);
    await openCircuit(t, `${ids.primary}/upstream-a`);
    await openCircuit(t, `${ids.primary}/upstream-b`);
    await t.app.circuit.recordFailure(`${ids.backup}/claude-x`);

    const ready = await fetch(new URL('/ready', url));
    const text = await ready.text();

    expect(ready.status).toBe(200);
    expect(JSON.parse(text)).toMatchObject({
      status: 'ready',
      checks: { database: 'ok' },
      providers: {
        [ids.primary]: { state: 'OPEN', deployments: { 'upstream-a': 'OPEN', 'upstream-b': 'OPEN' } },
        [ids.backup]: { state: 'DEGRADED', deployments: { 'claude-x': 'DEGRADED' } },
      },
    });
    expectNoSecrets(text, secrets);
  });

  it('are exported on /metrics at each scrape: 0 healthy, 1 degraded, 2 open', async () => {
    const { t, ids, secrets } = await startWithProviders();
    const url = await t.app.start(0);
    const circuitState = (scraped: string, provider: string, model: string) =>
      scraped.split('\n').find((line) => line.startsWith(`switchboard_circuit_state{provider="${provider}",model="${model}"} `));

    const before = await scrape(url);
    expect(circuitState(before, ids.primary, 'upstream-a')).toMatch(/ 0$/);

    await openCircuit(t, `${ids.primary}/upstream-a`);
    await t.app.circuit.recordFailure(`${ids.backup}/claude-x`);
    const after = await scrape(url);

    expect(sample(after, 'switchboard_circuit_state', { provider: ids.primary, model: 'upstream-a' })).toBe(2);
    expect(circuitState(after, ids.primary, 'upstream-b')).toMatch(/ 0$/);
    expect(sample(after, 'switchboard_circuit_state', { provider: ids.backup, model: 'claude-x' })).toBe(1);
    expectNoSecrets(after, secrets);
  });
});
