import { randomUUID } from 'node:crypto';
import type { ExecutionResult } from 'graphql';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deleteConversation } from '../src/chat/conversations.js';
import { recordFinalMessage } from '../src/generation/finalize.js';
import { ZERO_METERED_USAGE } from '../src/metering/metering.js';
import { decodeGlobalId } from '../src/global-id.js';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, expectData, startTestApp, uniqueEmail, type TestApp } from './helpers/app.js';
import { CreateConversationDocument, DeleteConversationDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { skipping } from './helpers/skips.js';

const PAIRS = 250;

// On PGlite transactions run one at a time, so only PostgreSQL can show a deadlock.
describe.skipIf(skipping(!inject('databaseUrl'), 'the lock-order races: needs DATABASE_URL (PostgreSQL)'))('a reply that ends while its conversation is deleted', () => {
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
          { reservationId: reservation.id, by: 'RUN', price: model.price },
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

describe.skipIf(skipping(!inject('databaseUrl'), 'the lock-order races: needs DATABASE_URL (PostgreSQL)'))('a send into a conversation that is being deleted', () => {
  const SENDS = 60;
  let upstream: MockUpstream;
  let t: TestApp;
  // Each delete is fired when its send has read the conversation: it lands while the send writes.
  const deleteOnRead = new Map<string, () => void>();
  beforeAll(async () => {
    upstream = await MockUpstream.start();
    t = await startTestApp(upstream.env, {
      onQuery: (sql, params) => {
        if (!sql.includes('FROM "public"."Conversation"')) return;
        for (const [conversationId, fire] of deleteOnRead) {
          if (!params.includes(conversationId)) continue;
          deleteOnRead.delete(conversationId);
          fire();
        }
      },
    });
  });
  afterAll(async () => {
    await t.stop();
    await upstream.stop();
  });

  it(`never deadlocks, over ${SENDS} concurrent pairs of a send (and its reply's record) and a delete`, async () => {
    const users = await Promise.all(Array.from({ length: SENDS }, () => registerUser(t)));
    const conversations = await Promise.all(
      users.map(async (user) => expectData(await t.execute(CreateConversationDocument, { input: { title: 'Race' } }, { token: user.accessToken })).createConversation),
    );
    const prompt = upstream.prompt({ content: 'a short reply' }, undefined, 'race');
    const results = await Promise.all(
      users.flatMap((user, i) => {
        const id = conversations[i]!.id;
        const deleted = new Promise<ExecutionResult>((resolve) =>
          deleteOnRead.set(decodeGlobalId(id).id, () => void t.execute(DeleteConversationDocument, { id }, { token: user.accessToken }).then(resolve)),
        );
        // Streamed sends answer once written (the delete meets the send's statement); the others once replied (it meets the reply).
        const stream = i % 2 === 0;
        return [t.execute(SendMessageDocument, { input: { conversationId: id, content: prompt, stream } }, { token: user.accessToken }), deleted];
      }),
    );
    // A send or a reply that came second finds no conversation; nothing fails for any other reason.
    const codes = results.flatMap((result) => errorCodes(result));
    expect(codes.filter((code) => code !== 'NOT_FOUND')).toEqual([]);
    const { prisma } = t.app.db;
    expect(await prisma.conversation.count({ where: { id: { in: conversations.map((c) => decodeGlobalId(c.id).id) } } })).toBe(0);
    // Every reservation made by a send that got in is settled.
    const userIds = (await prisma.user.findMany({ where: { email: { in: users.map((u) => u.email) } }, select: { id: true } })).map((u) => u.id);
    await waitFor('every reservation to be settled', async () => (await prisma.reservation.count({ where: { userId: { in: userIds }, settledAt: null } })) === 0);
  });
});
