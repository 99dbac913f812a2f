import { print } from 'graphql';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { encodeGlobalId } from '../src/global-id.js';
import { expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { MessageStreamDocument, SendMessageDocument, StopGenerationDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { connectWs, followStream } from './helpers/ws.js';
import { skipping } from './helpers/skips.js';

// Two instances behave as one service only with shared PostgreSQL and Redis.
const databaseUrl = inject('databaseUrl');
const redisUrl = process.env.REDIS_URL;
const clustered = Boolean(databaseUrl && redisUrl);

describe.skipIf(skipping(!clustered, 'two instances on one PostgreSQL and one Redis: needs DATABASE_URL and REDIS_URL (PostgreSQL and Redis)'))('two instances on one PostgreSQL and one Redis', () => {
  let upstream: MockUpstream;
  let a: TestApp;
  let b: TestApp;
  let urlB: URL;
  beforeAll(async () => {
    upstream = await MockUpstream.start();
    a = await startTestApp({ ...upstream.env, REDIS_URL: redisUrl });
    b = await startTestApp({ ...upstream.env, REDIS_URL: redisUrl });
    urlB = await b.app.start(0);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await upstream?.stop();
  });

  it('delivers on instance B the whole stream of a generation running on instance A', async () => {
    const reply = 'Tokens cross instances through Redis, in order and complete.';
    const user = await registerUser(a);
    const prompt = upstream.prompt({ content: reply }, { chunkSize: 3, latency: 30 });
    const sent = expectData(await a.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken })).sendMessage;
    expect(a.app.runner.size).toBe(1);
    expect(b.app.runner.size).toBe(0);

    const events = await followStream(urlB, user.accessToken, sent.assistantMessage.id);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.map((e) => e.delta).join('')).toBe(reply);
    expect(events.at(-1)).toMatchObject({ done: true, message: { status: 'COMPLETE' } });
  });

  it('stops on instance B a generation running on instance A', async () => {
    const user = await registerUser(a);
    const prompt = upstream.prompt({ content: 'a b c d e f g h i j k l m n o p' }, { chunkSize: 2, latency: 80 });
    const sent = expectData(await a.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken })).sendMessage;
    await followStream(urlB, user.accessToken, sent.assistantMessage.id, (events) => events.length > 0);
    const stopped = expectData(
      await b.execute(StopGenerationDocument, { messageId: sent.assistantMessage.id }, { token: user.accessToken }),
    ).stopGeneration;
    expect(stopped.status).toBe('STOPPED');
    expect(stopped.content.length).toBeGreaterThan(0);
    expect(a.app.runner.size).toBe(0);
  });

  it('releases the Redis subscription when a client leaves a stream that has gone quiet', async () => {
    const user = await registerUser(b);
    const { id: userId } = await b.app.db.prisma.user.findUniqueOrThrow({ where: { email: user.email } });
    // A reply another instance is still generating, and producing nothing for now (without a
    // reservation, no sweep closes it).
    const conversation = await b.app.db.prisma.conversation.create({ data: { userId, title: 'quiet', model: 'gpt-4o-mini' } });
    const message = await b.app.db.prisma.message.create({
      data: {
        conversationId: conversation.id,
        userId,
        role: 'ASSISTANT',
        content: '',
        status: 'STREAMING',
      },
    });
    const redis = new Redis(redisUrl!);
    const channel = `${b.config.redisKeyPrefix}stream:${message.id}`;
    const listeners = async () => ((await redis.pubsub('NUMSUB', channel)) as [string, number])[1];
    const waitForListeners = (expected: number) =>
      waitFor(`${expected} Redis subscriber(s) on ${channel}`, async () => (await listeners()) === expected);
    const client = connectWs(urlB, user.accessToken);
    try {
      const messageId = encodeGlobalId('Message', message.id);
      const unsubscribe = client.subscribe({ query: print(MessageStreamDocument), variables: { messageId } }, { next: () => {}, error: () => {}, complete: () => {} });
      await waitForListeners(1);
      unsubscribe();
      await waitForListeners(0);
    } finally {
      await client.dispose();
      await redis.quit();
      await b.app.db.prisma.message.update({ where: { id: message.id }, data: { status: 'FAILED' } });
    }
  });
});
