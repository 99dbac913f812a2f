import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deleteConversation } from '../src/chat/conversations.js';
import { recordFinalMessage } from '../src/generation/finalize.js';
import { ZERO_METERED_USAGE } from '../src/metering/metering.js';
import { startTestApp, uniqueEmail, type TestApp } from './helpers/app.js';

const PAIRS = 250;

// On PGlite transactions run one at a time, so only PostgreSQL can show a deadlock.
describe.skipIf(!inject('databaseUrl'))('a reply that ends while its conversation is deleted', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  /** A user (one per pair, so that nothing but the conversation and message lines them up) with a running reply. */
  async function runningReply() {
    const { metering } = t.app;
    const { prisma } = t.app.db;
    const model = t.config.chat.models[0]!;
    const user = await prisma.user.create({ data: { email: uniqueEmail('lock'), name: 'Lock', plan: 'PRO' } });
    const conversation = await prisma.conversation.create({ data: { userId: user.id, title: 'Race', model: model.id } });
    const message = await prisma.message.create({
      data: { id: randomUUID(), conversationId: conversation.id, userId: user.id, role: 'ASSISTANT', content: '', status: 'STREAMING', model: model.id },
    });
    const reservation = await metering.reserve(prisma, { userId: user.id, messageId: message.id, model, promptEstimate: 20, maxOutputTokens: 100, leaseMs: 60_000 });
    return { user, conversation, message, reservation, model };
  }

  it(`never deadlocks, over ${PAIRS} concurrent pairs of a final record and a delete`, async () => {
    const { metering, services } = t.app;
    const { prisma } = t.app.db;
    const replies = await Promise.all(Array.from({ length: PAIRS }, () => runningReply()));
    const results = await Promise.allSettled(
      replies.flatMap(({ user, conversation, message, reservation, model }) => [
        recordFinalMessage(
          { prisma, metering, logger: services.logger },
          {
            messageId: message.id,
            conversationId: conversation.id,
            status: 'COMPLETE',
            content: 'done',
            usage: { ...ZERO_METERED_USAGE, promptTokens: 20, completionTokens: 5 },
            usageEstimated: false,
          },
          reservation.id,
          'RUN',
          model.price,
        ),
        deleteConversation(prisma, user.id, conversation.id),
      ]),
    );
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    expect(failures).toEqual([]);
    // Every reply was settled once, whichever came first, and every conversation is gone.
    const reservations = await prisma.reservation.findMany({ where: { id: { in: replies.map((r) => r.reservation.id) } } });
    expect(reservations.every((r) => r.settledAt && r.settledBy === 'RUN')).toBe(true);
    expect(await prisma.conversation.count({ where: { id: { in: replies.map((r) => r.conversation.id) } } })).toBe(0);
  });
});
