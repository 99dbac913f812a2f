import { beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { quotaPeriodOf } from '../src/metering/quota.js';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, expectData, startTestApp, type TestApp } from './helpers/app.js';
import { problemsOf } from './helpers/config.js';
import { GENEROUS_LIMITS } from './helpers/limits.js';
import { AccountBalanceDocument } from './helpers/metering-documents.js';
import { LocalRealtimeApi, TEST_OPENAI_KEY } from './helpers/realtime-api.js';
import { CreateRealtimeSessionDocument } from './helpers/realtime-documents.js';

const SESSION_PRICE = 100_000;
const SIGNUP_CREDITS = Number(GENEROUS_LIMITS.SIGNUP_CREDITS_MICROS);

let api: LocalRealtimeApi;
let t: TestApp;

beforeAll(async () => {
  api = await LocalRealtimeApi.start();
  t = await startTestApp({ ...api.env, REALTIME_SESSION_PRICE_MICROS: String(SESSION_PRICE) });
});

async function signUp(app: TestApp = t) {
  const session = await registerUser(app);
  return { token: session.accessToken, userId: decodeGlobalId(session.user.id).id };
}

const balanceOf = async (token: string, app: TestApp = t) => expectData(await app.execute(AccountBalanceDocument, {}, { token })).me!;

async function chargesOf(userId: string, app: TestApp = t) {
  const { prisma } = app.app.db;
  const [ledger, usage, reservations] = await Promise.all([
    prisma.creditLedgerEntry.findMany({ where: { userId, kind: { not: 'GRANT' } } }),
    prisma.usageDaily.findMany({ where: { userId } }),
    prisma.reservation.findMany({ where: { userId } }),
  ]);
  return { ledger, usage, reservations };
}

describe('minting a Realtime client secret', () => {
  it("returns OpenAI's secret, its expiry and the model, and never the server's key", async () => {
    const { token } = await signUp();
    const result = await t.execute(CreateRealtimeSessionDocument, { input: { model: 'gpt-4o-realtime-preview', voice: 'verse' } }, { token });
    expect(JSON.stringify(result)).not.toContain(TEST_OPENAI_KEY);
    const session = expectData(result).createRealtimeSession;

    const received = api.requestFor(session.clientSecret);
    expect(received).toBeDefined();
    expect(session).toEqual({
      clientSecret: received!.secret,
      expiresAt: new Date(received!.expiresAt! * 1000).toISOString(),
      model: 'gpt-4o-realtime-preview',
    });
    expect(received!.authorization).toBe(`Bearer ${TEST_OPENAI_KEY}`);
    expect(received!.body).toEqual({
      expires_after: { anchor: 'created_at', seconds: 60 },
      session: { type: 'realtime', model: 'gpt-4o-realtime-preview', audio: { output: { voice: 'verse' } } },
    });
  });

  it('asks for the configured default model and the alloy voice when the client names neither', async () => {
    const { token } = await signUp();
    const session = expectData(await t.execute(CreateRealtimeSessionDocument, {}, { token })).createRealtimeSession;

    expect(session.model).toBe('gpt-realtime');
    expect(api.requestFor(session.clientSecret)!.body).toMatchObject({
      session: { model: 'gpt-realtime', audio: { output: { voice: 'alloy' } } },
    });
  });

  it('charges exactly the session price, as a usage line of its own', async () => {
    const { token, userId } = await signUp();
    expectData(await t.execute(CreateRealtimeSessionDocument, { input: { model: 'gpt-realtime' } }, { token }));

    const { credits, quota } = await balanceOf(token);
    expect(credits).toMatchObject({ balanceMicros: SIGNUP_CREDITS - SESSION_PRICE, heldMicros: 0, availableMicros: SIGNUP_CREDITS - SESSION_PRICE });
    expect(quota).toMatchObject({ usedTokens: 0, reservedTokens: 0 });
    const { ledger, usage, reservations } = await chargesOf(userId);
    expect(ledger.map((e) => ({ kind: e.kind, amountMicros: e.amountMicros }))).toEqual([{ kind: 'USAGE', amountMicros: BigInt(-SESSION_PRICE) }]);
    expect(ledger[0]!.reason).toContain('realtime:gpt-realtime');
    expect(usage.map((u) => ({ model: u.model, costMicros: u.costMicros, requests: u.requests, totalTokens: u.totalTokens }))).toEqual([
      { model: 'realtime:gpt-realtime', costMicros: BigInt(SESSION_PRICE), requests: 1, totalTokens: 0n },
    ]);
    expect(reservations).toMatchObject([{ kind: 'REALTIME', settledBy: 'RUN', chargedMicros: BigInt(SESSION_PRICE) }]);
  });
});

describe('when OpenAI refuses', () => {
  it('answers UPSTREAM_ERROR without the upstream body and charges nothing', async () => {
    const { token, userId } = await signUp();
    api.failNext(500, 'internal detail from the provider');
    const result = await t.execute(CreateRealtimeSessionDocument, {}, { token });

    expect(errorCodes(result)).toEqual(['UPSTREAM_ERROR']);
    expect(result.errors![0]!.message).toBe('The model provider failed (HTTP 500)');
    expect(JSON.stringify(result)).not.toContain('internal detail');
    expect(JSON.stringify(result)).not.toContain(TEST_OPENAI_KEY);
    await expectNothingCharged(token, userId);
  });

  it('passes on how long to wait when OpenAI rate limits the server', async () => {
    const { token, userId } = await signUp();
    api.failNext(429, 'Rate limit reached', { 'retry-after': '7' });
    const result = await t.execute(CreateRealtimeSessionDocument, {}, { token });

    expect(errorCodes(result)).toEqual(['UPSTREAM_ERROR']);
    expect(result.errors![0]!.extensions).toMatchObject({ retryAfter: 7 });
    await expectNothingCharged(token, userId);
  });

  it('refuses an answer that carries no client secret, charging nothing', async () => {
    const { token, userId } = await signUp();
    api.answerNext({ error: { message: 'not a secret' } });
    const result = await t.execute(CreateRealtimeSessionDocument, {}, { token });

    expect(errorCodes(result)).toEqual(['UPSTREAM_ERROR']);
    await expectNothingCharged(token, userId);
  });

  async function expectNothingCharged(token: string, userId: string) {
    const { credits, quota } = await balanceOf(token);
    expect(credits).toMatchObject({ balanceMicros: SIGNUP_CREDITS, heldMicros: 0 });
    expect(quota).toMatchObject({ usedTokens: 0, reservedTokens: 0 });
    const { ledger, usage, reservations } = await chargesOf(userId);
    expect(ledger).toEqual([]);
    expect(usage).toEqual([]);
    expect(reservations).toMatchObject([{ kind: 'REALTIME', chargedMicros: 0n }]);
    expect(reservations[0]!.settledAt).not.toBeNull();
  }
});

describe('who may mint a session', () => {
  it('refuses an anonymous caller', async () => {
    const before = api.requests.length;
    const result = await t.execute(CreateRealtimeSessionDocument, {});
    expect(errorCodes(result)).toEqual(['UNAUTHENTICATED']);
    expect(api.requests.length).toBe(before);
  });

  it('refuses an unknown voice or model, naming the field', async () => {
    const { token } = await signUp();
    const before = api.requests.length;
    const voice = await t.execute(CreateRealtimeSessionDocument, { input: { voice: 'robot' } }, { token });
    const model = await t.execute(CreateRealtimeSessionDocument, { input: { model: 'gpt-4o-mini' } }, { token });

    expect(errorCodes(voice)).toEqual(['BAD_USER_INPUT']);
    expect(voice.errors![0]!.extensions).toMatchObject({ field: 'voice' });
    expect(errorCodes(model)).toEqual(['BAD_USER_INPUT']);
    expect(model.errors![0]!.extensions).toMatchObject({ field: 'model' });
    expect(api.requests.length).toBe(before);
  });

  it('refuses a user whose monthly quota is used up, without calling OpenAI', async () => {
    const { token, userId } = await signUp();
    const period = quotaPeriodOf();
    await t.app.db.prisma.quotaPeriod.create({ data: { userId, period, usedTokens: BigInt(t.config.quotas.FREE) } });
    const before = api.requests.length;
    const result = await t.execute(CreateRealtimeSessionDocument, {}, { token });

    expect(errorCodes(result)).toEqual(['QUOTA_EXCEEDED']);
    expect(api.requests.length).toBe(before);
  });

  it('refuses a FREE user without credits, without calling OpenAI', async () => {
    const poor = await startTestApp({ ...api.env, SIGNUP_CREDITS_MICROS: '0' });
    const { token, userId } = await signUp(poor);
    const before = api.requests.length;
    const result = await poor.execute(CreateRealtimeSessionDocument, {}, { token });

    expect(errorCodes(result)).toEqual(['INSUFFICIENT_CREDITS']);
    expect(api.requests.length).toBe(before);
    expect(await chargesOf(userId, poor)).toEqual({ ledger: [], usage: [], reservations: [] });
  });

  it('limits how many sessions a user mints per window', async () => {
    const limited = await startTestApp({ ...api.env, RATE_LIMIT_REALTIME_SESSIONS: '2/1m' });
    const { token } = await signUp(limited);
    const mint = () => limited.execute(CreateRealtimeSessionDocument, {}, { token });
    const results = [await mint(), await mint(), await mint()];

    expect(results.map(errorCodes)).toEqual([[], [], ['RATE_LIMITED']]);
    expect(results[2]!.errors![0]!.extensions?.retryAfter).toBeGreaterThan(0);
    // Another user has a budget of their own.
    const other = await signUp(limited);
    expect(errorCodes(await limited.execute(CreateRealtimeSessionDocument, {}, { token: other.token }))).toEqual([]);
  });

  it('needs a real OpenAI key: the demo upstream has no Realtime API', async () => {
    const demo = await startTestApp({});
    const { token } = await signUp(demo);
    const result = await demo.execute(CreateRealtimeSessionDocument, {}, { token });

    expect(errorCodes(result)).toEqual(['LLM_NOT_CONFIGURED']);
    expect(result.errors![0]!.message).toBe('Realtime sessions need OPENAI_API_KEY');
  });
});

describe('Realtime configuration', () => {
  it('reports a default model outside the allowed list and a secret lifetime OpenAI refuses', () => {
    const problems = problemsOf({
      REALTIME_MODELS: 'gpt-realtime',
      REALTIME_DEFAULT_MODEL: 'gpt-4o-realtime-preview',
      REALTIME_SECRET_TTL_SECONDS: '5',
      RATE_LIMIT_REALTIME_SESSIONS: 'ten a minute',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^REALTIME_DEFAULT_MODEL: /),
        expect.stringMatching(/^REALTIME_SECRET_TTL_SECONDS: /),
        expect.stringMatching(/^RATE_LIMIT_REALTIME_SESSIONS: /),
      ]),
    );
  });
});
