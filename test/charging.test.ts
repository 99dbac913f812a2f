import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { appendCreditEntry } from '../src/metering/credits.js';
import { costMicros } from '../src/metering/prices.js';
import { quotaPeriodOf } from '../src/metering/quota.js';
import { expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { SendMessageDocument, StopGenerationDocument } from './helpers/chat-documents.js';
import { captureLogs } from './helpers/logs.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { skipping } from './helpers/skips.js';

const PRICED = { contextWindow: 128_000, maxOutputTokens: 16_384, promptMicrosPerMillion: 150_000, completionMicrosPerMillion: 600_000 };
let upstream: MockUpstream;
let t: TestApp;
const logs = captureLogs('info');
beforeAll(async () => {
  upstream = await MockUpstream.start();
  t = await startTestApp(
    {
      ...upstream.env,
      UPSTREAM_TIMEOUT_SECONDS: '1',
      UPSTREAM_MAX_ATTEMPTS: '3',
      // The upstream fails on purpose here, test after test: no circuit should open over it.
      CIRCUIT_FAILURE_THRESHOLD: '100',
      MODELS_JSON: JSON.stringify([
        { ...PRICED, id: 'gpt-4o-mini', fallbacks: ['gpt-4o-mini-backup'] },
        // The same upstream model, as a fallback: what a silent first call is retried on.
        { ...PRICED, id: 'gpt-4o-mini-backup', deployments: [{ provider: 'openai', model: 'gpt-4o-mini' }] },
      ]),
    },
    { logger: logs.logger },
  );
});
afterAll(async () => {
  await t.stop();
  await upstream.stop();
});

const prisma = () => t.app.db.prisma;
const logged = (message: string, messageId: string) => logs.entries().filter((e) => e.msg === message && e.messageId === messageId);

async function send(token: string, content: string) {
  const sent = expectData(await t.execute(SendMessageDocument, { input: { content } }, { token }));
  return { globalId: sent.sendMessage.assistantMessage.id, id: decodeGlobalId(sent.sendMessage.assistantMessage.id).id };
}

describe('a call that was never sent', () => {
  it('costs nothing when the reply is stopped during a retry wait, and the retry is never sent', async () => {
    const user = await registerUser(t);
    const prompt = upstream.promptSequence([
      { response: { error: { message: 'slow down', type: 'rate_limit_error' }, status: 429, retryAfter: 8 } },
      { response: { content: 'never asked for' } },
    ]);
    const message = await send(user.accessToken, prompt);
    await waitFor('the runner to wait before its retry', () => logged('retrying upstream call', message.id).length === 1);
    const stopped = expectData(await t.execute(StopGenerationDocument, { messageId: message.globalId }, { token: user.accessToken }));
    expect(stopped.stopGeneration).toMatchObject({ status: 'STOPPED', content: '', promptTokens: 0, completionTokens: 0 });

    const stored = await prisma().message.findUniqueOrThrow({ where: { id: message.id } });
    expect(stored).toMatchObject({ status: 'STOPPED', totalTokens: 0, costMicros: 0n, usageEstimated: false });
    const reservation = await prisma().reservation.findFirstOrThrow({ where: { messageId: message.id } });
    expect(reservation).toMatchObject({ settledBy: 'RUN', chargedMicros: 0n });
    expect(upstream.requestsFor(prompt)).toHaveLength(1);
  });

  // The row is read after the stopped instance closed its database: a shared PostgreSQL only.
  it.skipIf(skipping(!inject('databaseUrl'), 'a shutdown during a retry wait: needs DATABASE_URL (PostgreSQL)'))('costs nothing when the instance shuts down during a retry wait', async () => {
    const other = captureLogs('info');
    const instance = await startTestApp({ ...upstream.env, UPSTREAM_MAX_ATTEMPTS: '3' }, { logger: other.logger });
    const user = await registerUser(instance);
    const prompt = upstream.promptSequence([
      { response: { error: { message: 'slow down', type: 'rate_limit_error' }, status: 429, retryAfter: 8 } },
      { response: { content: 'never asked for' } },
    ]);
    const sent = expectData(await instance.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
    const messageId = decodeGlobalId(sent.sendMessage.assistantMessage.id).id;
    await waitFor('the runner to wait before its retry', () =>
      other.entries().some((e) => e.msg === 'retrying upstream call' && e.messageId === messageId),
    );
    await instance.stop();

    const stored = await prisma().message.findUniqueOrThrow({ where: { id: messageId } });
    expect(stored).toMatchObject({ status: 'STOPPED', totalTokens: 0, costMicros: 0n, usageEstimated: false });
    expect(await prisma().reservation.findFirstOrThrow({ where: { messageId } })).toMatchObject({ settledBy: 'RUN', chargedMicros: 0n });
    expect(upstream.requestsFor(prompt)).toHaveLength(1);
  });
});

describe('an attempt that timed out and was failed over', () => {
  it('is recorded with its estimate as unbilled, and the user pays for the attempt that answered', async () => {
    const user = await registerUser(t);
    const unbilled = async () => (await t.app.metrics.generation.unbilledAttemptTokens.get()).values.find((v) => v.labels.model === 'gpt-4o-mini')?.value ?? 0;
    const before = await unbilled();
    const prompt = upstream.promptSequence([
      // Nothing within the 1 s idle timeout.
      { response: { content: 'too late' }, options: { streamingProfile: { ttft: 4000 } } },
      { response: { content: 'on time', usage: { prompt_tokens: 30, completion_tokens: 3 } } },
    ]);
    const message = await send(user.accessToken, prompt);
    const stored = await waitFor('the reply to complete', async () => {
      const row = await prisma().message.findUniqueOrThrow({ where: { id: message.id } });
      return row.status === 'COMPLETE' ? row : undefined;
    });
    // The silent route is not called again: the fallback answers, and names the reply.
    expect(stored).toMatchObject({ content: 'on time', promptTokens: 30, completionTokens: 3, usageEstimated: false, model: 'gpt-4o-mini-backup', provider: 'openai' });
    expect(upstream.requestsFor(prompt)).toHaveLength(2);
    const price = { inputMicrosPerMillion: 150_000, cachedInputMicrosPerMillion: 150_000, cacheWriteMicrosPerMillion: 150_000, outputMicrosPerMillion: 600_000, reasoningMicrosPerMillion: 600_000, source: 'configuration' as const };
    expect(stored.costMicros).toBe(costMicros(price, { promptTokens: 30, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 3, reasoningTokens: 0 }));

    const attempts = await prisma().messageAttempt.findMany({ where: { messageId: message.id }, orderBy: { position: 'asc' } });
    expect(attempts).toMatchObject([
      { model: 'gpt-4o-mini', upstreamModel: 'gpt-4o-mini', outcome: 'TIMEOUT', billed: false, usageEstimated: true, completionTokens: 0 },
      { model: 'gpt-4o-mini-backup', upstreamModel: 'gpt-4o-mini', outcome: 'OK', billed: true, usageEstimated: false, promptTokens: 30, completionTokens: 3 },
    ]);
    expect(attempts[0]!.promptTokens).toBeGreaterThan(0);
    expect(attempts[0]!.costMicros).toBeGreaterThan(0n);
    expect((await unbilled()) - before).toBe(attempts[0]!.promptTokens);
  });
});

describe('a PRO call near the end of the quota', () => {
  it('uses what is left of the quota and pays only the rest from credits', async () => {
    const user = await registerUser(t);
    const { id: userId } = await prisma().user.update({ where: { email: user.email }, data: { plan: 'PRO' } });
    await prisma().$transaction((tx) => appendCreditEntry(tx, { userId, kind: 'ADJUSTMENT', amountMicros: 1_000_000n, reason: 'test set-up' }));
    const period = quotaPeriodOf();
    const quota = t.config.quotas.PRO;
    await prisma().quotaPeriod.upsert({
      where: { userId_period: { userId, period } },
      create: { userId, period, usedTokens: BigInt(quota - 20) },
      update: { usedTokens: BigInt(quota - 20) },
    });
    const balanceBefore = (await prisma().user.findUniqueOrThrow({ where: { id: userId } })).creditBalanceMicros;

    // 30 tokens, 20 of them within the quota: credits pay a third of the cost, rounded up.
    const prompt = upstream.prompt({ content: 'split', usage: { prompt_tokens: 10, completion_tokens: 20 } }, undefined, 'split');
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, maxTokens: 100, stream: false } }, { token: user.accessToken }));
    const messageId = decodeGlobalId(sent.sendMessage.assistantMessage.id).id;
    const cost = costMicros(t.config.chat.models[0]!.price, { promptTokens: 10, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 20, reasoningTokens: 0 });
    const fromCredits = cost - (cost * 20n) / 30n;
    expect(fromCredits).toBeGreaterThan(0n);
    expect(fromCredits).toBeLessThan(cost);

    expect(await prisma().message.findUniqueOrThrow({ where: { id: messageId } })).toMatchObject({ totalTokens: 30, costMicros: cost });
    expect(await prisma().quotaPeriod.findUniqueOrThrow({ where: { userId_period: { userId, period } } })).toMatchObject({
      usedTokens: BigInt(quota),
      reservedTokens: 0n,
    });
    const after = await prisma().user.findUniqueOrThrow({ where: { id: userId } });
    expect(after).toMatchObject({ creditBalanceMicros: balanceBefore - fromCredits, creditHeldMicros: 0n });
    const usage = await prisma().creditLedgerEntry.findMany({ where: { userId, kind: 'USAGE' } });
    expect(usage.map((e) => [e.amountMicros, e.reason])).toEqual([[-fromCredits, 'gpt-4o-mini: 30 tokens, 10 past the quota']]);
    const [daily] = await prisma().usageDaily.findMany({ where: { userId } });
    expect(daily).toMatchObject({ totalTokens: 30n, costMicros: cost, requests: 1 });
  });
});
