import { print } from 'graphql';
import { describe, expect, inject, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { registerUser } from './helpers/accounts.js';
import { expectData, startTestApp, type TestApp } from './helpers/app.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { startRedisServer } from './helpers/own-services.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { connectWs, type MessageStreamEvent } from './helpers/ws.js';
import { skipping } from './helpers/skips.js';

const databaseUrl = inject('databaseUrl');
const REPLIES = 4;
const WORDS = 300;
// How long Redis stays away: a real restart takes about this long.
const OUTAGE_MS = 1_500;

/** A subscriber that records every event it receives, and whether its stream ended. */
function subscribe(url: URL, token: string, messageId: string) {
  const client = connectWs(url, token);
  const events: MessageStreamEvent[] = [];
  const ended = new Promise<MessageStreamEvent[]>((resolve, reject) =>
    client.subscribe(
      { query: print(MessageStreamDocument), variables: { messageId } },
      {
        next: (result) => {
          if (result.errors?.length) reject(new Error(JSON.stringify(result.errors)));
          else events.push((result.data as { messageStream: MessageStreamEvent }).messageStream);
        },
        error: reject,
        complete: () => resolve(events),
      },
    ),
  );
  return { events, ended };
}

/** What a subscriber received is the stored reply: in order, once, ending with one done. */
function expectStoredReply(events: MessageStreamEvent[], content: string) {
  expect(events.map((e) => e.delta).join('')).toBe(content);
  expect(events.filter((e) => e.done)).toHaveLength(1);
  expect(events.at(-1)?.done).toBe(true);
  events.forEach((e, i) => i > 0 && expect(e.firstSeq).toBeGreaterThan(events[i - 1]!.seq));
}

describe.skipIf(skipping(!databaseUrl, 'a Redis restart under two instances: needs DATABASE_URL (PostgreSQL)'))('a Redis restart under two instances', () => {
  async function setUp() {
    const redis = await startRedisServer();
    const upstream = await MockUpstream.start();
    // A short lease: idle subscribers look for a lost done every second.
    const env = { ...upstream.env, REDIS_URL: redis.url, GENERATION_LEASE_SECONDS: '3' };
    const a = await startTestApp(env);
    const b = await startTestApp(env);
    const urls = { a: await a.app.start(0), b: await b.app.start(0) };
    const user = await registerUser(a);
    // The instances stop before the restarted redis-server, which was registered as a leftover after them.
    const stopInstances = async () => {
      await b.stop();
      await a.stop();
    };
    return { redis, upstream, a, b, urls, user, stopInstances };
  }

  async function sendReplies(a: TestApp, upstream: MockUpstream, token: string) {
    return Promise.all(
      Array.from({ length: REPLIES }, async (_, r) => {
        const content = Array.from({ length: WORDS }, (_, w) => `r${r}w${w}`).join(' ');
        const prompt = upstream.prompt({ content }, { chunkSize: 8, latency: 10 });
        const sent = expectData(await a.execute(SendMessageDocument, { input: { content: prompt } }, { token })).sendMessage;
        return { globalId: sent.assistantMessage.id, id: decodeGlobalId(sent.assistantMessage.id).id, length: content.length };
      }),
    );
  }

  const storedContent = async (t: TestApp, id: string) => {
    const message = await t.app.db.prisma.message.findUniqueOrThrow({ where: { id } });
    expect(message.status).toBe('COMPLETE');
    return message.content;
  };

  it('gives every subscriber, on both instances and joining late, the whole stored reply when Redis restarts mid-stream', async () => {
    const { redis, upstream, a, b, urls, user, stopInstances } = await setUp();
    try {
      const replies = await sendReplies(a, upstream, user.accessToken);
      const live = replies.flatMap((reply) => [urls.a, urls.b].map((url) => ({ reply, ...subscribe(url, user.accessToken, reply.globalId) })));
      await waitFor('every subscriber to receive some text', () => live.every((s) => s.events.length >= 5));

      await redis.kill();
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      await redis.start();
      // Joining after the restart, while the replies go on: the replay buffer has lost its beginning.
      const late = replies.map((reply) => ({ reply, ...subscribe(urls.b, user.accessToken, reply.globalId) }));

      for (const subscriber of [...live, ...late]) {
        expectStoredReply(await subscriber.ended, await storedContent(a, subscriber.reply.id));
      }
      // After the end, the replay buffer still lacks the beginning: joiners get the stored reply.
      for (const reply of replies) {
        const after = subscribe(urls.b, user.accessToken, reply.globalId);
        expectStoredReply(await after.ended, await storedContent(b, reply.id));
      }
    } finally {
      await stopInstances();
    }
  });

  it('gives every subscriber its done and the whole reply when Redis restarts over the end of the replies', async () => {
    const { redis, upstream, a, urls, user, stopInstances } = await setUp();
    try {
      const replies = await sendReplies(a, upstream, user.accessToken);
      const live = replies.flatMap((reply) => [urls.a, urls.b].map((url) => ({ reply, ...subscribe(url, user.accessToken, reply.globalId) })));
      // Near the end of every reply: what is left, and the done, come while Redis is away.
      await waitFor('the replies to near their end', () =>
        live.every((s) => s.events.reduce((length, e) => length + e.delta.length, 0) >= s.reply.length * 0.9),
      );
      await redis.kill();
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      await redis.start();

      for (const subscriber of live) {
        expectStoredReply(await subscriber.ended, await storedContent(a, subscriber.reply.id));
      }
      for (const reply of replies) {
        const after = subscribe(urls.b, user.accessToken, reply.globalId);
        expectStoredReply(await after.ended, await storedContent(a, reply.id));
      }
    } finally {
      await stopInstances();
    }
  });

  it('shuts an instance down while Redis is away', async () => {
    const redis = await startRedisServer();
    const t = await startTestApp({ REDIS_URL: redis.url });
    await redis.kill();
    const started = Date.now();
    await t.stop();
    // A command waits about 10 s for Redis to come back; shutting down does not.
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
