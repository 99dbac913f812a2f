import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredReply } from '../src/streams/stream-follower.js';
import { StreamHub, type StreamEvent } from '../src/streams/stream-hub.js';
import { createRedisTransport } from '../src/streams/stream-transports.js';
import { createLogger } from '../src/logger.js';
import { registerLeftover } from './helpers/leftovers.js';
import { waitFor } from './helpers/wait.js';
import { skipping } from './helpers/skips.js';

const redisUrl = process.env.REDIS_URL;

/** One instance's Redis clients and hub, on the shared Redis under a prefix of the test's own. */
async function instance(prefix: string, options: { idleCheckMs?: number } = {}) {
  const commands = new Redis(redisUrl!, { disableClientInfo: true, enableAutoPipelining: true });
  const subscriber = new Redis(redisUrl!, { disableClientInfo: true, retryStrategy: () => 50 });
  // Written to the socket when issued, as the server's own (no auto-pipelining).
  const replayWrites = new Redis(redisUrl!, { disableClientInfo: true });
  registerLeftover(() => Promise.all([commands.quit(), replayWrites.quit(), subscriber.quit().catch(() => subscriber.disconnect())]));
  // Its id is asked before it enters subscriber mode, where CLIENT is refused.
  const subscriberId = (await subscriber.client('ID')) as number;
  const transport = createRedisTransport({ commands, subscriber, replayWrites }, prefix);
  const hub = new StreamHub(transport.store, transport.channel, { idleCheckMs: options.idleCheckMs ?? 60_000, retryWritesForMs: 30_000, logger: createLogger('silent') });
  return { commands, subscriber, subscriberId, transport, hub };
}

const text = (messageId: string, seq: number, delta: string, offset: number): StreamEvent => ({ messageId, seq, delta, done: false, offset });
const done = (messageId: string, seq: number, offset: number): StreamEvent => ({ messageId, seq, delta: '', done: true, offset });

/** Collects what a subscriber receives, as it arrives. */
function collect(events: AsyncGenerator<StreamEvent>) {
  const received: StreamEvent[] = [];
  const ended = (async () => {
    for await (const event of events) received.push(event);
    return received;
  })();
  registerLeftover(() => events.return(undefined));
  return { received, ended };
}

const notFinal = async (): Promise<StoredReply | null> => ({ content: '', final: false });

describe.skipIf(skipping(!redisUrl, 'streams on Redis: needs REDIS_URL'))('streams on Redis', () => {
  const prefix = `switchboard-test-${randomUUID().slice(0, 8)}:`;
  afterEach(async () => {
    const redis = new Redis(redisUrl!);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it('resolves a second concurrent subscribe only once the SUBSCRIBE is active, and retries one that Redis refused', async () => {
    const { commands, subscriber, transport } = await instance(prefix);
    const realSubscribe = subscriber.subscribe.bind(subscriber) as (channel: string) => Promise<unknown>;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let refuseNext = false;
    (subscriber as unknown as { subscribe: (channel: string) => Promise<unknown> }).subscribe = async (channel) => {
      if (refuseNext) {
        refuseNext = false;
        throw new Error('refused');
      }
      await gate;
      return realSubscribe(channel);
    };
    const heard: string[] = [];
    const first = transport.channel.subscribe('topic', (payload) => heard.push(`first ${payload}`));
    let secondActive = false;
    const second = transport.channel.subscribe('topic', (payload) => heard.push(`second ${payload}`)).then((unsubscribe) => {
      secondActive = true;
      return unsubscribe;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(secondActive).toBe(false);
    release();
    await Promise.all([first, second]);
    await commands.publish(`${prefix}topic`, 'one');
    await waitFor('both subscribers to hear the message', () => heard.length === 2);
    expect(heard.sort()).toEqual(['first one', 'second one']);

    refuseNext = true;
    await expect(transport.channel.subscribe('refused-topic', () => {})).rejects.toThrow('refused');
    const later: string[] = [];
    await transport.channel.subscribe('refused-topic', (payload) => later.push(payload));
    await commands.publish(`${prefix}refused-topic`, 'two');
    await waitFor('the later subscriber to hear the message', () => later.length === 1);
  });

  it('keeps and announces each event once when a write is sent again after its answer was lost', async () => {
    const { commands, transport } = await instance(prefix);
    const messageId = randomUUID();
    const heard: string[] = [];
    await transport.channel.subscribe(`stream:${messageId}`, (payload) => heard.push(payload));
    const first = [text(messageId, 1, 'a', 0), { ...text(messageId, 3, 'bc', 1), firstSeq: 2 }];
    await transport.store.append(first);
    await transport.store.append([...first, done(messageId, 4, 3)]);
    expect((await transport.store.read(messageId)).map((e) => [e.seq, e.delta, e.done])).toEqual([
      [1, 'a', false],
      [3, 'bc', false],
      [4, '', true],
    ]);
    await commands.ping();
    await waitFor('the announcements', () => heard.length >= 3);
    expect(heard.map((payload) => (JSON.parse(payload) as StreamEvent).seq)).toEqual([1, 3, 4]);
  });

  it('reads back what was published while the subscriber connection was reconnecting', async () => {
    const publisher = await instance(prefix);
    const follower = await instance(prefix);
    const messageId = randomUUID();
    const { received, ended } = collect(follower.hub.subscribe(messageId, notFinal));
    await waitFor('the subscription', async () => ((await publisher.commands.pubsub('NUMSUB', `${prefix}stream:${messageId}`)) as [string, number])[1] === 1);
    await publisher.hub.publish(text(messageId, 1, 'a', 0));
    await waitFor('the first event', () => received.length === 1);

    await publisher.commands.client('KILL', 'ID', String(follower.subscriberId));
    await publisher.hub.publish(text(messageId, 2, 'b', 1));
    await publisher.hub.publish(done(messageId, 3, 2));
    const events = await ended;
    expect(events.map((e) => [e.seq, e.delta, e.done])).toEqual([
      [1, 'a', false],
      [2, 'b', false],
      [3, '', true],
    ]);
  });

  it('ends every subscriber, here and on another instance, when the final done could not be published', async () => {
    const here = await instance(prefix, { idleCheckMs: 100 });
    const elsewhere = await instance(prefix, { idleCheckMs: 100 });
    const messageId = randomUUID();
    let final = false;
    const storedReply = async (): Promise<StoredReply> => ({ content: 'abc', final });
    here.hub.publishHere(messageId);
    const local = collect(here.hub.subscribe(messageId, storedReply));
    const remote = collect(elsewhere.hub.subscribe(messageId, storedReply));
    await waitFor('the remote subscription', async () => ((await here.commands.pubsub('NUMSUB', `${prefix}stream:${messageId}`)) as [string, number])[1] === 1);
    await here.hub.publish(text(messageId, 1, 'ab', 0));
    await here.hub.publish(text(messageId, 2, 'c', 2));
    const textOf = (events: StreamEvent[]) => events.map((e) => e.delta).join('');
    await waitFor('both subscribers to have the text', () => textOf(local.received) === 'abc' && textOf(remote.received) === 'abc');

    // Redis refuses the done (as when it is restarting), after the message was recorded as final.
    final = true;
    const append = here.transport.store.append;
    here.transport.store.append = async (events) => {
      if (events.some((event) => event.done)) throw new Error('Redis is away');
      return append(events);
    };
    await here.hub.publish(done(messageId, 3, 3));
    for (const { ended } of [local, remote]) {
      const events = await ended;
      expect(events.map((e) => e.delta).join('')).toBe('abc');
      expect(events.at(-1)?.done).toBe(true);
    }
  });
});
