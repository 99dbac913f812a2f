import { randomUUID } from 'node:crypto';
import { print } from 'graphql';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { connectRedis } from '../src/db/redis.js';
import { createLogger } from '../src/logger.js';
import type { StoredReply } from '../src/streams/stream-follower.js';
import { StreamHub, type StreamEvent } from '../src/streams/stream-hub.js';
import { createRedisTransport } from '../src/streams/stream-transports.js';
import { registerUser } from './helpers/accounts.js';
import { expectData, startTestApp } from './helpers/app.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { registerLeftover } from './helpers/leftovers.js';
import { startRedisServer } from './helpers/own-services.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { connectWs, type MessageStreamEvent } from './helpers/ws.js';
import { skipping } from './helpers/skips.js';

const databaseUrl = inject('databaseUrl');
const redisUrl = process.env.REDIS_URL;

/** One instance's stream hub on `url`, on the server's own Redis clients. */
async function instance(url: string) {
  const clients = await connectRedis(url);
  const transport = createRedisTransport(clients, 'local-delivery:');
  const hub = new StreamHub(transport.store, transport.channel, { idleCheckMs: 60_000, retryWritesForMs: 30_000, logger: createLogger('silent') });
  registerLeftover(async () => {
    await hub.close();
    await clients.close();
  });
  return {
    commands: clients.commands,
    hub,
    /**
     * The process dies at once (kill -9): what it had written to the replay connection's socket
     * still reaches Redis, what it still held in memory does not, and nothing is sent again.
     */
    die() {
      clients.replayWrites.stream.destroy();
      clients.replayWrites.disconnect();
    },
  };
}

const notFinal = async (): Promise<StoredReply | null> => ({ content: '', final: false });
const text = (messageId: string, seq: number, delta: string, offset: number): StreamEvent => ({ messageId, seq, delta, done: false, offset });

/** The seqs the events stand for, in order (an event joined from several stands for firstSeq..seq). */
const seqsCovered = (events: StreamEvent[]) => events.flatMap((e) => Array.from({ length: e.seq - (e.firstSeq ?? e.seq) + 1 }, (_, i) => (e.firstSeq ?? e.seq) + i));

/**
 * Publishes words as seqs 2..`lastSeq` after `reply`, a tick apart as an upstream's chunks come
 * (the writes to Redis start, and wait), each received by the subscriber here before the next.
 */
async function publishWordsReceivedHere(
  publish: (event: StreamEvent) => void,
  local: AsyncGenerator<StreamEvent>,
  messageId: string,
  reply: string,
  lastSeq: number,
): Promise<string> {
  for (let seq = 2; seq <= lastSeq; seq += 1) {
    const delta = ` w${seq - 1}`;
    publish(text(messageId, seq, delta, reply.length));
    reply += delta;
    expect((await local.next()).value).toMatchObject({ seq, delta });
    await new Promise((resolve) => setImmediate(resolve));
  }
  return reply;
}

describe.skipIf(skipping(!redisUrl, 'a stream published while Redis is paused: needs REDIS_URL'))('a stream published here, while Redis is paused', () => {
  it('reaches its subscriber here event by event without waiting for Redis; Redis, and the instance elsewhere, get every event once, in order, when it is back', async () => {
    const redis = await startRedisServer();
    const here = await instance(redis.url);
    const elsewhere = await instance(redis.url);
    const messageId = randomUUID();
    const publish = here.hub.publishHere(messageId);
    const local = here.hub.subscribe(messageId, notFinal);
    const remoteEvents: StreamEvent[] = [];
    const remoteEnded = (async () => {
      for await (const event of elsewhere.hub.subscribe(messageId, notFinal)) remoteEvents.push(event);
    })();
    await waitFor('the remote subscription', async () => ((await here.commands.pubsub('NUMSUB', `local-delivery:stream:${messageId}`)) as [string, number])[1] === 1);
    publish(text(messageId, 1, 'w0', 0));
    expect((await local.next()).value).toMatchObject({ seq: 1, delta: 'w0' });
    await waitFor('the first event elsewhere', () => remoteEvents.length === 1);

    redis.pause();
    // Each event is there as soon as it is published: were it waiting for Redis, next() would never resolve.
    const reply = await publishWordsReceivedHere(publish, local, messageId, 'w0', 200);
    publish({ messageId, seq: 201, delta: '', done: true, offset: reply.length });
    expect((await local.next()).value).toMatchObject({ seq: 201, done: true });
    expect((await local.next()).done).toBe(true);
    // Nothing went through Redis meanwhile.
    expect(remoteEvents).toHaveLength(1);
    expect(here.hub.unstoredEvents).toBeGreaterThan(0);

    redis.resume();
    await remoteEnded;
    expect(remoteEvents.map((e) => e.delta).join('')).toBe(reply);
    expect(seqsCovered(remoteEvents)).toEqual(Array.from({ length: 201 }, (_, i) => i + 1));
    await waitFor('every event written', () => here.hub.unstoredEvents === 0);
    const stored = await here.hub.buffered(messageId);
    expect(seqsCovered(stored)).toEqual(Array.from({ length: 201 }, (_, i) => i + 1));
    expect(stored.map((e) => e.delta).join('')).toBe(reply);
    expect(stored.at(-1)?.done).toBe(true);
    // Fewer, larger events: what was published while Redis was paused went as one.
    expect(stored.length).toBeLessThan(201);
  });
});

describe.skipIf(skipping(!redisUrl, 'an instance killed mid-stream: needs REDIS_URL'))('an instance killed mid-stream', () => {
  it('had written every event its subscriber here received to Redis before handing it over, even while Redis answered nothing', async () => {
    const redis = await startRedisServer();
    const here = await instance(redis.url);
    const messageId = randomUUID();
    const publish = here.hub.publishHere(messageId);
    const local = here.hub.subscribe(messageId, notFinal);
    publish(text(messageId, 1, 'w0', 0));
    expect((await local.next()).value).toMatchObject({ seq: 1 });
    // Paused, Redis leaves each write unanswered: the next ones must not wait behind it in this process.
    redis.pause();
    registerLeftover(() => redis.resume());
    const reply = await publishWordsReceivedHere(publish, local, messageId, 'w0', 6);
    here.die();
    redis.resume();
    const reader = new Redis(redis.url);
    registerLeftover(() => reader.disconnect());
    const stored = (await reader.lrange(`local-delivery:replay:${messageId}`, 0, -1)).map((e) => JSON.parse(e) as StreamEvent);
    expect(seqsCovered(stored)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(stored.map((e) => e.delta).join('')).toBe(reply);
  });
});

describe.skipIf(skipping(!databaseUrl, 'an instance whose Redis is paused mid-stream: needs DATABASE_URL (PostgreSQL)'))('an instance whose Redis is paused mid-stream', () => {
  it('streams every token of a reply to its subscriber here to the end, done included, before Redis is back', async () => {
    const redis = await startRedisServer();
    const upstream = await MockUpstream.start();
    const t = await startTestApp({ ...upstream.env, REDIS_URL: redis.url });
    registerLeftover(() => t.stop());
    registerLeftover(() => redis.resume());
    const url = await t.app.start(0);
    const user = await registerUser(t);
    const content = Array.from({ length: 150 }, (_, w) => `w${w}`).join(' ');
    const prompt = upstream.prompt({ content }, { chunkSize: 4, latency: 5 });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken })).sendMessage;
    const client = connectWs(url, user.accessToken);
    const events: MessageStreamEvent[] = [];
    const ended = new Promise<void>((resolve, reject) =>
      client.subscribe(
        { query: print(MessageStreamDocument), variables: { messageId: sent.assistantMessage.id } },
        {
          next: (result) => void events.push((result.data as { messageStream: MessageStreamEvent }).messageStream),
          error: reject,
          complete: resolve,
        },
      ),
    );
    await waitFor('the first tokens', () => events.length >= 3);
    redis.pause();
    await ended;
    expect(events.map((e) => e.delta).join('')).toBe(content);
    expect(events.at(-1)?.done).toBe(true);
    const stored = await t.app.db.prisma.message.findUniqueOrThrow({ where: { id: decodeGlobalId(sent.assistantMessage.id).id } });
    expect(stored).toMatchObject({ status: 'COMPLETE', content });
    redis.resume();
  });
});
