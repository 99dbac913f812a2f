import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUp } from './helpers/admin.js';
import { errorCodes, expectData, startTestApp, uniqueEmail, type TestApp } from './helpers/app.js';
import { ProviderUsageReportDocument } from './helpers/provider-documents.js';

const ADMINS = [uniqueEmail('root'), uniqueEmail('root'), uniqueEmail('root')];
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ ADMIN_EMAILS: ADMINS.join(',') });
});
afterAll(() => t.stop());

type Outcome = 'OK' | 'ERROR' | 'TIMEOUT' | 'CUT' | 'REFUSED';
interface Seed { at: string; outcome: Outcome; billed: boolean; p: number; cached?: number; c: number; reasoning?: number; cost: number }

/** Attempt rows of providers whose ids only this test uses, on days long past. */
async function seedAttempts(userId: string, seeds: Record<string, Seed[]>) {
  await t.app.db.prisma.messageAttempt.createMany({
    data: Object.entries(seeds).flatMap(([provider, rows]) =>
      rows.map((s) => ({
        userId,
        position: 0,
        provider,
        model: 'chat-model',
        upstreamModel: 'upstream-model',
        outcome: s.outcome,
        billed: s.billed,
        promptTokens: s.p,
        cachedTokens: s.cached ?? 0,
        completionTokens: s.c,
        reasoningTokens: s.reasoning ?? 0,
        costMicros: BigInt(s.cost),
        startedAt: new Date(s.at),
        durationMs: 1000,
      })),
    ),
  });
}

const report = (token: string, from: string, to: string, groupBy: 'PROVIDER' | 'DAY' = 'PROVIDER') =>
  t.execute(ProviderUsageReportDocument, { from, to, groupBy }, { token });

describe('the usage report by provider', () => {
  it('sums the billed attempts of each provider within the UTC days asked for, counts every attempt, and the unbilled cost apart', async () => {
    const admin = await signUp(t, { email: ADMINS[0] });
    const user = await signUp(t);
    const suffix = randomUUID().slice(0, 8);
    const [big, small] = [`big-${suffix}`, `small-${suffix}`];
    await seedAttempts(user.userId, {
      [big]: [
        { at: '2004-05-01T00:00:00.000Z', outcome: 'OK', billed: true, p: 100, cached: 20, c: 10, cost: 1000 },
        { at: '2004-05-02T12:00:00.000Z', outcome: 'CUT', billed: false, p: 100, c: 5, cost: 300 },
        { at: '2004-05-03T23:59:59.999Z', outcome: 'OK', billed: true, p: 50, c: 30, reasoning: 5, cost: 700 },
        // Outside the days asked for.
        { at: '2004-04-30T23:59:59.999Z', outcome: 'OK', billed: true, p: 999, c: 999, cost: 9999 },
        { at: '2004-05-04T00:00:00.000Z', outcome: 'ERROR', billed: false, p: 999, c: 0, cost: 9999 },
      ],
      [small]: [
        { at: '2004-05-02T08:00:00.000Z', outcome: 'TIMEOUT', billed: false, p: 40, c: 0, cost: 20 },
        { at: '2004-05-02T08:00:05.000Z', outcome: 'OK', billed: true, p: 7, c: 3, cost: 40 },
      ],
    });

    const rows = expectData(await report(admin.token, '2004-05-01', '2004-05-03')).usageReport.filter((r) => r.key.endsWith(suffix));

    // Largest cost first.
    expect(rows).toEqual([
      {
        key: big,
        provider: big,
        model: null,
        day: null,
        promptTokens: 150,
        cachedTokens: 20,
        completionTokens: 40,
        reasoningTokens: 5,
        totalTokens: 190,
        costMicros: 1700,
        requests: 3,
        unbilledCostMicros: 300,
      },
      {
        key: small,
        provider: small,
        model: null,
        day: null,
        promptTokens: 7,
        cachedTokens: 0,
        completionTokens: 3,
        reasoningTokens: 0,
        totalTokens: 10,
        costMicros: 40,
        requests: 2,
        unbilledCostMicros: 20,
      },
    ]);
  });

  it('leaves the provider and the unbilled cost empty in the other groupings', async () => {
    const admin = await signUp(t, { email: ADMINS[1] });
    const user = await signUp(t);
    const usage = { promptTokens: 10, cachedTokens: 0, completionTokens: 5, reasoningTokens: 0 };
    await t.app.db.prisma.$executeRaw`
      SELECT "usage_add_to_daily"(${user.userId}::uuid, '2004-06-01'::date, 'chat-model', ${JSON.stringify(usage)}::jsonb, 100::bigint, 1)`;

    const [day] = expectData(await report(admin.token, '2004-06-01', '2004-06-01', 'DAY')).usageReport;

    expect(day).toMatchObject({ key: '2004-06-01', provider: null, unbilledCostMicros: null });
  });

  it('is for admins only, over the same ranges as the other groupings', async () => {
    const admin = await signUp(t, { email: ADMINS[2] });
    const user = await signUp(t);
    expect(errorCodes(await report(user.token, '2004-05-01', '2004-05-03'))).toEqual(['FORBIDDEN']);
    expect(errorCodes(await report(admin.token, '2004-05-03', '2004-05-01'))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await report(admin.token, '2004-01-01', '2005-01-02'))).toEqual(['BAD_USER_INPUT']);
  });
});
