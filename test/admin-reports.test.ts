import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsageGroupBy } from '../src/admin/usage-report.js';
import { signUp } from './helpers/admin.js';
import { UsageReportDocument, UserAccountDocument } from './helpers/admin-documents.js';
import { errorCodes, expectData, startTestApp, uniqueEmail, type TestApp } from './helpers/app.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';

const ADMINS = [uniqueEmail('root'), uniqueEmail('root'), uniqueEmail('root')];
let upstream: MockUpstream;
let t: TestApp;
let statements: string[] = [];
beforeAll(async () => {
  upstream = await MockUpstream.start();
  t = await startTestApp({ ...upstream.env, ADMIN_EMAILS: ADMINS.join(',') }, { onQuery: (sql) => statements.push(sql) });
});
afterAll(async () => {
  await t.stop();
  await upstream.stop();
});

const report = (token: string, groupBy: UsageGroupBy, from: string, to = from) =>
  t.execute(UsageReportDocument, { from, to, groupBy }, { token });

interface Seed {
  user: 'a' | 'b';
  day: string;
  model: string;
  p: number;
  cached: number;
  written: number;
  c: number;
  reasoning: number;
  cost: number;
  requests: number;
}

/** Roll-ups on days long past, which only this file writes, so the sums are exact on a shared database too. */
const SEEDS: Seed[] = [
  { user: 'a', day: '2003-03-01', model: 'gpt-4o-mini', p: 100, cached: 20, written: 30, c: 10, reasoning: 0, cost: 1000, requests: 2 },
  { user: 'a', day: '2003-03-02', model: 'model-b', p: 50, cached: 0, written: 0, c: 30, reasoning: 5, cost: 700, requests: 1 },
  { user: 'b', day: '2003-03-01', model: 'model-b', p: 10, cached: 0, written: 4, c: 5, reasoning: 0, cost: 100, requests: 1 },
  { user: 'b', day: '2003-03-03', model: 'gpt-4o-mini', p: 7, cached: 0, written: 0, c: 3, reasoning: 0, cost: 40, requests: 1 },
  // Outside the range asked for below.
  { user: 'a', day: '2003-03-04', model: 'gpt-4o-mini', p: 999, cached: 0, written: 999, c: 999, reasoning: 0, cost: 9999, requests: 9 },
];

function expectedSums(seeds: Seed[]) {
  const sum = (pick: (s: Seed) => number) => seeds.reduce((total, s) => total + pick(s), 0);
  return {
    promptTokens: sum((s) => s.p),
    cachedTokens: sum((s) => s.cached),
    cacheWriteTokens: sum((s) => s.written),
    completionTokens: sum((s) => s.c),
    reasoningTokens: sum((s) => s.reasoning),
    totalTokens: sum((s) => s.p + s.c),
    costMicros: sum((s) => s.cost),
    requests: sum((s) => s.requests),
  };
}

describe('the usage report', () => {
  it('sums the whole service by day, model and user, within the range, with each user read once', async () => {
    const admin = await signUp(t, { email: ADMINS[0] });
    const users = { a: await signUp(t), b: await signUp(t) };
    await t.app.db.prisma.$transaction(async (tx) => {
      for (const s of SEEDS) {
        const usage = { promptTokens: s.p, cachedTokens: s.cached, cacheWriteTokens: s.written, completionTokens: s.c, reasoningTokens: s.reasoning };
        await tx.$executeRaw`
          SELECT "usage_add_to_daily"(${users[s.user].userId}::uuid, ${s.day}::date, ${s.model}, ${JSON.stringify(usage)}::jsonb,
                                      ${BigInt(s.cost)}, ${s.requests}::int)`;
      }
    });
    const inRange = SEEDS.filter((s) => s.day <= '2003-03-03');
    const where = (pick: (s: Seed) => boolean) => expectedSums(inRange.filter(pick));

    const byDay = expectData(await report(admin.token, 'DAY', '2003-03-01', '2003-03-03')).usageReport;
    expect(byDay).toEqual(
      ['2003-03-01', '2003-03-02', '2003-03-03'].map((day) => ({ key: day, day, model: null, user: null, ...where((s) => s.day === day) })),
    );
    const byModel = expectData(await report(admin.token, 'MODEL', '2003-03-01', '2003-03-03')).usageReport;
    // Largest cost first.
    expect(byModel).toEqual(
      ['gpt-4o-mini', 'model-b'].map((model) => ({ key: model, model, day: null, user: null, ...where((s) => s.model === model) })),
    );

    statements = [];
    const byUser = expectData(await report(admin.token, 'USER', '2003-03-01', '2003-03-03')).usageReport;
    const twoUsers = statements.length;
    expect(byUser).toEqual(
      (['a', 'b'] as const).map((u) => ({
        key: users[u].id,
        user: { id: users[u].id, email: users[u].email },
        model: null,
        day: null,
        ...where((s) => s.user === u),
      })),
    );
    statements = [];
    expect(expectData(await report(admin.token, 'USER', '2003-03-02')).usageReport).toHaveLength(1);
    expect(statements.length).toBe(twoUsers);
  });

  it("matches each user's own usage for replies they were charged for", async () => {
    const admin = await signUp(t, { email: ADMINS[1] });
    const today = new Date().toISOString().slice(0, 10);
    const users = [await signUp(t), await signUp(t)];
    for (const [index, user] of users.entries()) {
      for (let i = 0; i <= index; i++) {
        const prompt = upstream.prompt({ content: 'counted', usage: { prompt_tokens: 40 + i, completion_tokens: 7 } }, undefined, 'report');
        expectData(await t.execute(SendMessageDocument, { input: { content: prompt, model: 'gpt-4o-mini', stream: false } }, { token: user.token }));
      }
    }
    const rows = expectData(await report(admin.token, 'USER', today)).usageReport;
    for (const [index, user] of users.entries()) {
      const node = expectData(await t.execute(UserAccountDocument, { id: user.id }, { token: admin.token })).node;
      if (node?.__typename !== 'User') throw new Error('expected the user');
      const row = rows.find((r) => r.key === user.id);
      expect(row).toMatchObject({ ...node.usage!.totals, requests: index + 1 });
      expect(row!.costMicros).toBeGreaterThan(0);
    }
  });

  it('is for admins only, over at most 366 days, from no later than to', async () => {
    const admin = await signUp(t, { email: ADMINS[2] });
    const user = await signUp(t);
    expect(errorCodes(await report(user.token, 'DAY', '2003-03-01'))).toEqual(['FORBIDDEN']);
    expect(errorCodes(await report(admin.token, 'DAY', '2003-03-02', '2003-03-01'))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await report(admin.token, 'DAY', '2003-01-01', '2004-01-02'))).toEqual(['BAD_USER_INPUT']);
    // 366 days, both ends included, is allowed.
    expectData(await report(admin.token, 'DAY', '2003-01-01', '2004-01-01'));
  });
});
