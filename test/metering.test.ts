import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { recordFinalMessage } from '../src/generation/finalize.js';
import { encodeGlobalId } from '../src/global-id.js';
import { appendCreditEntry, grantPendingSignupCredits } from '../src/metering/credits.js';
import { costMicros, genaiPrice, type MeteredUsage, type ModelPrice } from '../src/metering/prices.js';
import { quotaPeriodOf } from '../src/metering/quota.js';
import { estimatePromptTokens } from '../src/metering/tokens.js';
import { findModel } from '../src/model-catalog.js';
import { errorCodes, expectData, startTestApp, uniqueEmail, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { signUp } from './helpers/admin.js';
import { UsageReportDocument } from './helpers/admin-documents.js';
import { ConversationDocument, MessageDocument, SendMessageDocument, UsageDocument } from './helpers/chat-documents.js';
import { AccountBalanceDocument } from './helpers/metering-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

const REPLY = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
const ADMIN = uniqueEmail('root');

let upstream: MockUpstream;
let t: TestApp;
beforeAll(async () => {
  upstream = await MockUpstream.start();
  // A lease long enough that no test server sweeps a live generation on a busy machine.
  t = await startTestApp({ ...upstream.env, GENERATION_LEASE_SECONDS: '3', ADMIN_EMAILS: ADMIN });
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

/** A reply running for `model` (any id and price: settling needs only the reservation), as a send leaves it. */
async function runningReply(userId: string, model: { id: string; price: ModelPrice }) {
  const conversation = await prisma().conversation.create({ data: { userId, title: 'Cache', model: model.id } });
  const message = await prisma().message.create({
    data: { conversationId: conversation.id, userId, role: 'ASSISTANT', content: '', status: 'STREAMING', model: model.id },
  });
  const reservation = await t.app.metering.reserve(prisma(), {
    userId,
    messageId: message.id,
    model,
    promptEstimate: 20,
    maxOutputTokens: 100,
    leaseMs: 60_000,
  });
  return { conversation, message, reservation };
}

/** The end of a running reply, as its generation records it. */
function finished(reply: Awaited<ReturnType<typeof runningReply>>, usage: MeteredUsage) {
  return { messageId: reply.message.id, conversationId: reply.conversation.id, status: 'COMPLETE' as const, content: 'done', usage, usageEstimated: false };
}

const deps = () => ({ prisma: prisma(), metering: t.app.metering, logger: t.app.services.logger });
const usageLedger = async (token: string) =>
  (await balanceOf(token)).credits!.ledger!.edges.filter((e) => e.node.kind === 'USAGE').map((e) => e.node);

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

describe('prompt-cache writes', () => {
  // Claude Sonnet 4 as genai-prices has it: $3 in, $3.75 per million written to the cache, $0.30 read, $15 out.
  const claude = () => ({ id: 'claude-sonnet-4', price: genaiPrice('anthropic', 'claude-sonnet-4')! });

  it('are held at their rate, recorded apart and charged at their own rate: on the message, the conversation, the usage and the usage report', async () => {
    const user = await newUser();
    const admin = await signUp(t, { email: ADMIN });
    const reply = await runningReply(user.id, claude());
    // The worst case held: every prompt token written to the cache (20 × $3.75), every output token (100 × $15).
    expect(await prisma().reservation.findUniqueOrThrow({ where: { id: reply.reservation.id } })).toMatchObject({ creditMicros: 75n + 1500n });
    const usage = { promptTokens: 5500, cachedTokens: 4000, cacheWriteTokens: 1000, completionTokens: 200, reasoningTokens: 0 };
    expect(await recordFinalMessage(deps(), finished(reply, usage), { reservationId: reply.reservation.id, by: 'RUN', price: claude().price })).toBe(
      'recorded',
    );

    // 1000 written × $3.75 + 4000 read × $0.30 + 500 fresh × $3 + 200 out × $15, per million.
    const cost = 3750 + 1200 + 1500 + 3000;
    const counts = { promptTokens: 5500, cacheWriteTokens: 1000, completionTokens: 200, totalTokens: 5700, costMicros: cost };
    const message = expectData(await t.execute(MessageDocument, { id: encodeGlobalId('Message', reply.message.id) }, { token: user.accessToken })).node;
    expect(message).toMatchObject({ ...counts, cachedTokens: 4000, reasoningTokens: 0 });
    const conversation = expectData(
      await t.execute(ConversationDocument, { id: encodeGlobalId('Conversation', reply.conversation.id) }, { token: user.accessToken }),
    ).conversation;
    expect(conversation?.usage).toEqual({ ...counts, requests: 1 });
    const today = new Date().toISOString().slice(0, 10);
    const usageToday = expectData(await t.execute(UsageDocument, { from: today, to: today }, { token: user.accessToken })).me!.usage!;
    expect(usageToday.totals).toEqual({ ...counts, requests: 1 });
    expect(usageToday.daily).toEqual([{ date: today, ...counts, requests: 1 }]);
    expect((await balanceOf(user.accessToken)).usage!.totals).toMatchObject({ ...counts, cachedTokens: 4000 });
    expect((await usageLedger(user.accessToken)).map((e) => e.amountMicros)).toEqual([-cost]);

    // Only this test serves claude-sonnet-4.
    const byModel = expectData(await t.execute(UsageReportDocument, { from: today, to: today, groupBy: 'MODEL' }, { token: admin.token })).usageReport;
    expect(byModel.find((row) => row.model === 'claude-sonnet-4')).toMatchObject({ ...counts, cachedTokens: 4000, requests: 1 });
  });

  it('of a reservation made before they were priced apart are charged at the price it holds: writes at its input rate', async () => {
    const user = await newUser();
    const { price } = claude();
    const reply = await runningReply(user.id, claude());
    // The price as such a reservation stored it, without a cache-write rate.
    const { cacheWriteMicrosPerMillion: _, ...storedBefore } = price;
    await prisma().reservation.update({ where: { id: reply.reservation.id }, data: { price: storedBefore } });

    const usage = { promptTokens: 2000, cachedTokens: 0, cacheWriteTokens: 2000, completionTokens: 0, reasoningTokens: 0 };
    const settled = await t.app.metering.settle(prisma(), { reservationId: reply.reservation.id, usage, by: 'RUN', price });
    // 2000 written at $3 (the input rate), not at $3.75.
    expect(settled).toEqual({ model: 'claude-sonnet-4', costMicros: 6000n });
    expect((await usageLedger(user.accessToken)).map((e) => e.amountMicros)).toEqual([-6000]);
  });
});

describe('a call served by another model than the one reserved (a fallback)', () => {
  const usage = { promptTokens: 300, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 40, reasoningTokens: 0 };
  const rollUp = async (userId: string) =>
    (await prisma().usageDaily.findMany({ where: { userId }, orderBy: { model: 'asc' } })).map((d) => [d.model, d.requests, d.totalTokens, d.costMicros]);

  it('is counted under the model that served it, in the roll-up and the ledger', async () => {
    const user = await newUser();
    const model = findModel(t.config.chat.models, 'gpt-4o-mini')!;
    const reply = await runningReply(user.id, model);
    const settlement = { reservationId: reply.reservation.id, by: 'RUN' as const, price: model.price, model: 'gpt-4.1-nano' };
    expect(await recordFinalMessage(deps(), finished(reply, usage), settlement)).toBe('recorded');

    const cost = costMicros(model.price, usage);
    expect(await rollUp(user.id)).toEqual([['gpt-4.1-nano', 1, 340n, cost]]);
    expect(await usageLedger(user.accessToken)).toEqual([expect.objectContaining({ amountMicros: -Number(cost), reason: 'gpt-4.1-nano: 340 tokens' })]);
  });

  it("moves to the model that served it when the call's real usage corrects a recovery's estimate", async () => {
    const user = await newUser();
    const model = findModel(t.config.chat.models, 'gpt-4o-mini')!;
    const reply = await runningReply(user.id, model);
    const estimate = { ...usage, promptTokens: 20, completionTokens: 10 };
    await recordFinalMessage(deps(), { ...finished(reply, estimate), usageEstimated: true }, { reservationId: reply.reservation.id, by: 'RECOVERY' });
    expect(await rollUp(user.id)).toEqual([['gpt-4o-mini', 1, 30n, costMicros(model.price, estimate)]]);

    const settlement = { reservationId: reply.reservation.id, by: 'RUN' as const, price: model.price, model: 'gpt-4.1-nano' };
    expect(await recordFinalMessage(deps(), finished(reply, usage), settlement)).toBe('corrected');
    const cost = costMicros(model.price, usage);
    expect(await rollUp(user.id)).toEqual([
      ['gpt-4.1-nano', 1, 340n, cost],
      ['gpt-4o-mini', 0, 0n, 0n],
    ]);
    expect((await balanceOf(user.accessToken)).usage!.totals).toMatchObject({ requests: 1, totalTokens: 340, costMicros: Number(cost) });
  });
});

describe('a cost computed by the caller', () => {
  it('is charged as given, instead of the price times the usage: on the message, the reservation, the roll-up and the credits', async () => {
    const user = await newUser();
    const model = findModel(t.config.chat.models, 'gpt-4o-mini')!;
    const reply = await runningReply(user.id, model);
    const usage = { promptTokens: 1000, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 100, reasoningTokens: 0 };
    // Two upstream attempts, each priced at its own deployment's rate.
    const costMicrosGiven = 12_345n;
    expect(costMicros(model.price, usage)).not.toBe(costMicrosGiven);
    const settlement = { reservationId: reply.reservation.id, by: 'RUN' as const, price: model.price, costMicros: costMicrosGiven };
    expect(await recordFinalMessage(deps(), finished(reply, usage), settlement)).toBe('recorded');

    expect(await prisma().message.findUniqueOrThrow({ where: { id: reply.message.id } })).toMatchObject({ costMicros: costMicrosGiven, totalTokens: 1100 });
    expect(await prisma().reservation.findUniqueOrThrow({ where: { id: reply.reservation.id } })).toMatchObject({ chargedMicros: costMicrosGiven });
    expect((await balanceOf(user.accessToken)).usage!.totals).toMatchObject({ costMicros: Number(costMicrosGiven), totalTokens: 1100 });
    expect((await usageLedger(user.accessToken)).map((e) => e.amountMicros)).toEqual([-Number(costMicrosGiven)]);
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
