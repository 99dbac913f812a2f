import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { MessageStreamDocument, SendMessageDocument, StopGenerationDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { connectWs } from './helpers/ws.js';

// Two instances behave as one service only with shared PostgreSQL and Redis.
const databaseUrl = inject('databaseUrl');
const redisUrl = process.env.REDIS_URL;
const clustered = Boolean(databaseUrl && redisUrl);

describe.skipIf(!clustered)('two instances on one PostgreSQL and one Redis', () => {
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

    const client = connectWs(urlB, user.accessToken);
    try {
      const events: Array<{ seq: number; delta: string; done: boolean; message?: { status: string } | null }> = [];
      for await (const result of client.iterate({
        query: print(MessageStreamDocument),
        variables: { messageId: sent.assistantMessage.id },
      })) {
        expect(result.errors).toBeUndefined();
        events.push((result.data as { messageStream: (typeof events)[number] }).messageStream);
      }
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(events.map((e) => e.delta).join('')).toBe(reply);
      expect(events.at(-1)).toMatchObject({ done: true, message: { status: 'COMPLETE' } });
    } finally {
      await client.dispose();
    }
  });

  it('stops on instance B a generation running on instance A', async () => {
    const user = await registerUser(a);
    const prompt = upstream.prompt({ content: 'a b c d e f g h i j k l m n o p' }, { chunkSize: 2, latency: 80 });
    const sent = expectData(await a.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken })).sendMessage;
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stopped = expectData(
      await b.execute(StopGenerationDocument, { messageId: sent.assistantMessage.id }, { token: user.accessToken }),
    ).stopGeneration;
    expect(stopped.status).toBe('STOPPED');
    expect(stopped.content.length).toBeGreaterThan(0);
    expect(a.app.runner.size).toBe(0);
  });
});
