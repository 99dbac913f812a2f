import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quotaPeriodOf } from '../src/metering/quota.js';
import { estimatePromptTokens } from '../src/metering/tokens.js';
import { errorCodes, expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';

const QUOTA = 100_000;
let upstream: MockUpstream;
let t: TestApp;
beforeAll(async () => {
  upstream = await MockUpstream.start();
  t = await startTestApp({ ...upstream.env, QUOTA_FREE_TOKENS: String(QUOTA) });
});
afterAll(async () => {
  await t.stop();
  await upstream.stop();
});

async function userCloseToQuota(remaining: number) {
  const user = await registerUser(t);
  const { id } = await t.app.db.prisma.user.findUniqueOrThrow({ where: { email: user.email } });
  await t.app.db.prisma.quotaPeriod.create({ data: { userId: id, period: quotaPeriodOf(), usedTokens: BigInt(QUOTA - remaining) } });
  return { ...user, id };
}

describe('monthly token quota', () => {
  it('never overshoots under 20 concurrent sendMessage calls; refused calls write nothing', async () => {
    const maxTokens = 100;
    const prompt = upstream.prompt(
      { content: 'fits', usage: { prompt_tokens: 10, completion_tokens: 20 } },
      { chunkSize: 2, latency: 10 },
      'quota race',
    );
    const reservation = estimatePromptTokens([{ role: 'user', content: prompt }]) + maxTokens;
    // Room for exactly five worst cases.
    const user = await userCloseToQuota(5 * reservation + Math.floor(reservation / 2));

    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.execute(SendMessageDocument, { input: { content: prompt, maxTokens, stream: false } }, { token: user.accessToken }),
      ),
    );
    const succeeded = results.filter((r) => !r.errors);
    const refused = results.filter((r) => r.errors);
    expect(succeeded).toHaveLength(5);
    expect(refused.every((r) => errorCodes(r).join() === 'QUOTA_EXCEEDED')).toBe(true);
    expect(refused[0]?.errors?.[0]?.extensions).toMatchObject({ quota: QUOTA, requested: reservation });

    const period = await t.app.db.prisma.quotaPeriod.findUniqueOrThrow({
      where: { userId_period: { userId: user.id, period: quotaPeriodOf() } },
    });
    expect(period.reservedTokens).toBe(0n);
    expect(Number(period.usedTokens)).toBe(QUOTA - (5 * reservation + Math.floor(reservation / 2)) + 5 * 30);
    expect(Number(period.usedTokens)).toBeLessThanOrEqual(QUOTA);
    expect(await t.app.db.prisma.message.count({ where: { userId: user.id } })).toBe(10);
    expect(await t.app.db.prisma.conversation.count({ where: { userId: user.id } })).toBe(5);
    expect(upstream.requestsFor(prompt)).toHaveLength(5);
  });

  it('refuses a call whose worst case does not fit, with the remaining tokens in the error', async () => {
    const user = await userCloseToQuota(50);
    const result = await t.execute(SendMessageDocument, { input: { content: 'hello', maxTokens: 100 } }, { token: user.accessToken });
    expect(errorCodes(result)).toEqual(['QUOTA_EXCEEDED']);
    expect(result.errors?.[0]?.extensions?.remaining).toBe(50);
    expect(await t.app.db.prisma.message.count({ where: { userId: user.id } })).toBe(0);
  });

  it('gives unused reservation back: a short reply leaves room for the next call', async () => {
    const prompt = upstream.prompt({ content: 'short', usage: { prompt_tokens: 5, completion_tokens: 5 } }, undefined, 'refund');
    const reservation = estimatePromptTokens([{ role: 'user', content: prompt }]) + 1000;
    const user = await userCloseToQuota(reservation + 20);
    expectData(await t.execute(SendMessageDocument, { input: { content: prompt, maxTokens: 1000, stream: false } }, { token: user.accessToken }));
    // Only 10 tokens were used, so the same worst case fits again.
    expectData(await t.execute(SendMessageDocument, { input: { content: prompt, maxTokens: 1000, stream: false } }, { token: user.accessToken }));
  });
});
