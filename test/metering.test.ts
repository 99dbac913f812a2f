import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { appendCreditEntry, grantPendingSignupCredits } from '../src/metering/credits.js';
import { costMicros } from '../src/metering/prices.js';
import { quotaPeriodOf } from '../src/metering/quota.js';
import { estimatePromptTokens } from '../src/metering/tokens.js';
import { findModel } from '../src/model-catalog.js';
import { errorCodes, expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { AccountBalanceDocument } from './helpers/metering-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

const REPLY = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');

let upstream: MockUpstream;
let t: TestApp;
beforeAll(async () => {
  upstream = await MockUpstream.start();
  // A lease long enough that no test server sweeps a live generation on a busy machine.
  t = await startTestApp({ ...upstream.env, GENERATION_LEASE_SECONDS: '3' });
});
afterAll(async () => {
  await t.stop();
  await upstream.stop();
});

const prisma = () => t.app.db.prisma;
const price = () => findModel(t.config.chat.models, 'gpt-4o-mini')!.price;

async function newUser() {
  const user = await registerUser(t);
  const { id } = await prisma().user.findUniqueOrThrow({ where: { email: user.email } });
  return { ...user, id };
}

async function balanceOf(token: string) {
  return expectData(await t.execute(AccountBalanceDocument, {}, { token })).me!;
}

/** Leaves the user exactly `micros` of credits, through the ledger like any other movement. */
async function setCredits(userId: string, micros: number) {
  const { creditBalanceMicros } = await prisma().user.findUniqueOrThrow({ where: { id: userId } });
  const delta = BigInt(micros) - creditBalanceMicros;
  if (delta === 0n) return;
  await prisma().$transaction((tx) =>
    appendCreditEntry(tx, { userId, kind: 'ADJUSTMENT', amountMicros: delta, reason: 'test set-up' }),
  );
}

async function reservationsOf(userId: string) {
  return prisma().reservation.findMany({ where: { userId } });
}

async function quotaRow(userId: string) {
  return prisma().quotaPeriod.findUniqueOrThrow({ where: { userId_period: { userId, period: quotaPeriodOf() } } });
}

describe('exact cost', () => {
  it('records cached and reasoning tokens and prices each at its own rate', async () => {
    const openRouter = await startTestApp({ ...upstream.openRouterEnv });
    try {
      const user = await registerUser(openRouter);
      const usage = {
        prompt_tokens: 2000,
        completion_tokens: 900,
        prompt_tokens_details: { cached_tokens: 1500 },
        completion_tokens_details: { reasoning_tokens: 600 },
      };
      const prompt = upstream.prompt({ content: 'thought it through', usage }, undefined, 'cached');
      const sent = expectData(
        await openRouter.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token: user.accessToken }),
      ).sendMessage.assistantMessage;
      const modelPrice = findModel(openRouter.config.chat.models, 'gpt-4o-mini')!.price;
      const expected = costMicros(modelPrice, { promptTokens: 2000, cachedTokens: 1500, cacheWriteTokens: 0, completionTokens: 900, reasoningTokens: 600 });
      // Cached tokens are cheaper than fresh ones, so the cost is below the all-fresh price.
      expect(expected).toBeLessThan(costMicros(modelPrice, { promptTokens: 2000, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 900, reasoningTokens: 0 }));
      expect(sent).toMatchObject({ promptTokens: 2000, cachedTokens: 1500, cacheWriteTokens: 0, completionTokens: 900, reasoningTokens: 600, totalTokens: 2900 });
      expect(BigInt(sent.costMicros)).toBe(expected);

      const me = expectData(await openRouter.execute(AccountBalanceDocument, {}, { token: user.accessToken })).me!;
      expect(me.usage!.totals).toMatchObject({ promptTokens: 2000, cachedTokens: 1500, cacheWriteTokens: 0, completionTokens: 900, reasoningTokens: 600, costMicros: sent.costMicros });
      expect(me.credits!.ledger!.edges[0]!.node).toMatchObject({ kind: 'USAGE', amountMicros: -sent.costMicros });
    } finally {
      await openRouter.stop();
    }
  });

  it('charges what the upstream billed even above the reservation: quota, roll-up and credits alike', async () => {
    const user = await newUser();
    const before = await balanceOf(user.accessToken);
    const prompt = upstream.prompt({ content: 'a lot', usage: { prompt_tokens: 5000, completion_tokens: 5000 } }, undefined, 'over');
    const sent = expectData(
      await t.execute(SendMessageDocument, { input: { content: prompt, maxTokens: 10, stream: false } }, { token: user.accessToken }),
    ).sendMessage.assistantMessage;
    expect(sent.totalTokens).toBe(10_000);

    const after = await balanceOf(user.accessToken);
    expect(after.quota).toMatchObject({ usedTokens: 10_000, reservedTokens: 0 });
    expect(after.usage!.totals).toMatchObject({ totalTokens: 10_000, costMicros: sent.costMicros });
    expect(after.credits!.balanceMicros).toBe(before.credits!.balanceMicros - sent.costMicros);
    expect(after.credits!.heldMicros).toBe(0);
    expect(BigInt(sent.costMicros)).toBe(costMicros(price(), { promptTokens: 5000, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 5000, reasoningTokens: 0 }));
  });
});

describe('reservations', () => {
  it('are settled when the conversation is deleted while its reply runs', async () => {
    const user = await newUser();
    const prompt = upstream.prompt({ content: REPLY, usage: { prompt_tokens: 30, completion_tokens: 60 } }, { chunkSize: 4, latency: 20 }, 'deleted');
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken })).sendMessage;
    await upstream.waitForRequest(prompt);
    // As a send that slipped in while the conversation was being deleted: its rows go, its reply runs on.
    await prisma().conversation.delete({ where: { id: decodeGlobalId(sent.conversation.id).id } });
    await waitFor('the reply to end', () => t.app.runner.size === 0);

    const [reservation] = await reservationsOf(user.id);
    expect(reservation!.settledAt).not.toBeNull();
    expect(reservation!.settledBy).toBe('RUN');
    const quota = await quotaRow(user.id);
    expect(quota.reservedTokens).toBe(0n);
    expect(quota.usedTokens).toBeGreaterThan(0n);
    expect((await balanceOf(user.accessToken)).credits!.heldMicros).toBe(0);
  });

  it('whose instance died with no message left are swept at their estimate, once', async () => {
    const user = await newUser();
    const model = findModel(t.config.chat.models, 'gpt-4o-mini')!;
    // As a send whose instance died right after committing, its conversation since deleted.
    const reservation = await prisma().$transaction((tx) =>
      t.app.metering.reserve(tx, { userId: user.id, messageId: randomUUID(), model, promptEstimate: 40, maxOutputTokens: 500, leaseMs: -1000 }),
    );
    expect((await quotaRow(user.id)).reservedTokens).toBe(540n);

    await Promise.all([t.app.recovery.recoverOrphans(), t.app.recovery.recoverOrphans()]);
    const swept = await prisma().reservation.findUniqueOrThrow({ where: { id: reservation.id } });
    expect(swept.settledBy).toBe('SWEEP');
    const quota = await quotaRow(user.id);
    expect(quota).toMatchObject({ reservedTokens: 0n, usedTokens: 40n });
    const me = await balanceOf(user.accessToken);
    const estimate = costMicros(model.price, { promptTokens: 40, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 0, reasoningTokens: 0 });
    expect(me.credits!.ledger!.edges.filter((e) => e.node.kind === 'USAGE').map((e) => e.node.amountMicros)).toEqual([-Number(estimate)]);
    expect(me.credits!.heldMicros).toBe(0);
    expect(me.usage!.totals.requests).toBe(1);
  });

  it('are settled at the price they were reserved at, even when the settling caller names another', async () => {
    const user = await newUser();
    const model = findModel(t.config.chat.models, 'gpt-4o-mini')!;
    const reservation = await prisma().$transaction((tx) =>
      t.app.metering.reserve(tx, { userId: user.id, messageId: randomUUID(), model, promptEstimate: 40, maxOutputTokens: 500, leaseMs: 60_000 }),
    );
    const usage = { promptTokens: 1000, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 2000, reasoningTokens: 0 };
    const tenTimesDearer = { ...model.price, inputMicrosPerMillion: model.price.inputMicrosPerMillion * 10 };
    const settled = await prisma().$transaction((tx) => t.app.metering.settle(tx, { reservationId: reservation.id, usage, by: 'RUN', price: tenTimesDearer }));
    expect(settled?.costMicros).toBe(costMicros(model.price, usage));
    const me = await balanceOf(user.accessToken);
    expect(me.credits!.ledger!.edges.filter((e) => e.node.kind === 'USAGE').map((e) => e.node.amountMicros)).toEqual([
      -Number(costMicros(model.price, usage)),
    ]);
    // Settling is exactly-once, whatever the price named.
    expect(await prisma().$transaction((tx) => t.app.metering.settle(tx, { reservationId: reservation.id, usage, by: 'RUN', price: model.price }))).toBeNull();
  });

  it('of an instance that comes back after being presumed dead are corrected once with the real reply and usage', async () => {
    const user = await newUser();
    const before = await balanceOf(user.accessToken);
    const prompt = upstream.prompt({ content: REPLY, usage: { prompt_tokens: 400, completion_tokens: 44 } }, { chunkSize: 4, latency: 20 }, 'paused');
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
    const messageId = decodeGlobalId(sent.sendMessage.assistantMessage.id).id;
    await upstream.waitForRequest(prompt);

    // What another instance does once this one's lease lapsed (a long GC pause, a frozen VM).
    const running = await prisma().message.findUniqueOrThrow({ where: { id: messageId } });
    expect(await t.app.recovery.close(running, 'FAILED')).toBe(true);
    expect(await t.app.recovery.close(running, 'FAILED')).toBe(false);
    const recovered = await prisma().message.findUniqueOrThrow({ where: { id: messageId } });
    expect(recovered).toMatchObject({ status: 'FAILED', errorCode: 'INTERRUPTED', usageEstimated: true });

    // The instance was alive after all: it finishes, and its real reply and usage replace the estimate.
    await waitFor('the generation to finish', () => t.app.runner.size === 0);
    const corrected = await prisma().message.findUniqueOrThrow({ where: { id: messageId } });
    expect(corrected).toMatchObject({ status: 'COMPLETE', content: REPLY, promptTokens: 400, completionTokens: 44, usageEstimated: false, errorCode: null });
    expect(corrected.costMicros).toBe(costMicros(price(), { promptTokens: 400, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 44, reasoningTokens: 0 }));

    const quota = await quotaRow(user.id);
    expect(quota).toMatchObject({ reservedTokens: 0n, usedTokens: 444n });
    const daily = await prisma().usageDaily.findMany({ where: { userId: user.id } });
    expect(daily.map((d) => [d.requests, d.totalTokens, d.costMicros])).toEqual([[1, 444n, corrected.costMicros]]);
    const after = await balanceOf(user.accessToken);
    expect(after.credits!.balanceMicros).toBe(before.credits!.balanceMicros - Number(corrected.costMicros));
  });
});

describe('a reply stopped on another instance while this one seemed gone', () => {
  it('stops here too, and is charged once', async () => {
    const user = await newUser();
    // About 20 s of reply: far longer than the runner takes to notice at its next lease renewal.
    const prompt = upstream.prompt({ content: REPLY }, { chunkSize: 1, latency: 50 }, 'stopped-elsewhere');
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
    const messageId = decodeGlobalId(sent.sendMessage.assistantMessage.id).id;
    await upstream.waitForRequest(prompt);

    // What stopGeneration does on another instance when no instance answers its stop request.
    const running = await prisma().message.findUniqueOrThrow({ where: { id: messageId } });
    expect(await t.app.recovery.close(running, 'STOPPED')).toBe(true);
    await waitFor('the runner to give the generation up', () => t.app.runner.size === 0);

    const message = await prisma().message.findUniqueOrThrow({ where: { id: messageId } });
    expect(message.status).toBe('STOPPED');
    expect(message.content.length).toBeLessThan(REPLY.length);
    const quota = await quotaRow(user.id);
    expect(quota.reservedTokens).toBe(0n);
    expect(Number(quota.usedTokens)).toBe(message.totalTokens);
    const daily = await prisma().usageDaily.findMany({ where: { userId: user.id } });
    expect(daily.map((d) => d.requests)).toEqual([1]);
  });
});

describe('accounts from before credits existed', () => {
  it('get the sign-up credits once, however many instances start at the same time', async () => {
    const user = await newUser();
    await setCredits(user.id, 0);
    await prisma().user.update({ where: { id: user.id }, data: { signupCreditsPending: true } });

    await Promise.all([1, 2, 3].map(() => grantPendingSignupCredits(prisma(), t.config.billing.signupCreditsMicros)));
    const me = await balanceOf(user.accessToken);
    expect(me.credits!.balanceMicros).toBe(t.config.billing.signupCreditsMicros);
    expect(me.credits!.ledger!.edges.filter((e) => e.node.reason === 'Sign-up credits')).toHaveLength(2);
  });
});

describe('billing model', () => {
  const send = (token: string, content: string, maxTokens = 100) =>
    t.execute(SendMessageDocument, { input: { content, maxTokens, stream: false } }, { token });

  it('FREE pays priced models from credits: without them the call is refused and nothing is written', async () => {
    const user = await newUser();
    await setCredits(user.id, 0);
    const refused = await send(user.accessToken, 'no credits');
    expect(errorCodes(refused)).toEqual(['INSUFFICIENT_CREDITS']);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ availableMicros: 0 });
    expect(await prisma().message.count({ where: { userId: user.id } })).toBe(0);
    expect(await reservationsOf(user.id)).toEqual([]);
    expect(await prisma().quotaPeriod.count({ where: { userId: user.id } })).toBe(0);
  });

  it('PRO includes its quota without credits, continues on credits past it, then refuses with QUOTA_EXCEEDED', async () => {
    const user = await newUser();
    await prisma().user.update({ where: { id: user.id }, data: { plan: 'PRO' } });
    const start = (await balanceOf(user.accessToken)).credits!.balanceMicros;
    const prompt = upstream.prompt({ content: 'included', usage: { prompt_tokens: 10, completion_tokens: 20 } }, undefined, 'pro');

    const included = expectData(await send(user.accessToken, prompt)).sendMessage.assistantMessage;
    expect(included.costMicros).toBeGreaterThan(0);
    expect((await balanceOf(user.accessToken)).credits!.balanceMicros).toBe(start);

    // The quota is used up: the next call is paid from credits.
    await prisma().quotaPeriod.update({
      where: { userId_period: { userId: user.id, period: quotaPeriodOf() } },
      data: { usedTokens: BigInt(t.config.quotas.PRO) },
    });
    const overage = expectData(await send(user.accessToken, prompt)).sendMessage.assistantMessage;
    const afterOverage = await balanceOf(user.accessToken);
    expect(afterOverage.credits!.balanceMicros).toBe(start - overage.costMicros);
    expect(afterOverage.credits!.ledger!.edges[0]!.node).toMatchObject({ kind: 'USAGE', amountMicros: -overage.costMicros });

    await setCredits(user.id, 0);
    expect(errorCodes(await send(user.accessToken, prompt))).toEqual(['QUOTA_EXCEEDED']);
  });

  it('never takes the balance below zero under 40 concurrent sends; refused calls write nothing', async () => {
    const user = await newUser();
    const maxTokens = 1000;
    const prompt = upstream.prompt({ content: 'paid', usage: { prompt_tokens: 10, completion_tokens: 20 } }, { latency: 50 }, 'race');
    const worst = costMicros(price(), {
      promptTokens: estimatePromptTokens([{ role: 'user', content: prompt }]),
      cachedTokens: 0,
      cacheWriteTokens: 0,
      completionTokens: maxTokens,
      reasoningTokens: 0,
    });
    // Enough for three and a half worst cases.
    await setCredits(user.id, Number(worst * 7n / 2n));

    const results = await Promise.all(Array.from({ length: 40 }, () => send(user.accessToken, prompt, maxTokens)));
    const succeeded = results.filter((r) => !r.errors);
    const refused = results.filter((r) => r.errors);
    expect(succeeded.length).toBeGreaterThanOrEqual(3);
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused.flatMap(errorCodes))).toEqual(new Set(['INSUFFICIENT_CREDITS']));

    const me = await balanceOf(user.accessToken);
    const spent = succeeded.reduce((sum, r) => sum + r.data!.sendMessage.assistantMessage.costMicros, 0);
    expect(me.credits!.balanceMicros).toBe(Number(worst * 7n / 2n) - spent);
    expect(me.credits!.balanceMicros).toBeGreaterThanOrEqual(0);
    expect(me.credits!.heldMicros).toBe(0);
    expect(Math.min(...me.credits!.ledger!.edges.map((e) => e.node.balanceAfterMicros))).toBeGreaterThanOrEqual(0);
    expect(await prisma().message.count({ where: { userId: user.id } })).toBe(2 * succeeded.length);
    expect(await reservationsOf(user.id)).toHaveLength(succeeded.length);
  });
});
