import { describe, expect, it } from 'vitest';
import { StreamHub } from '../src/streams/stream-hub.js';
import { createInProcessTransport } from '../src/streams/stream-transports.js';
import { createLogger } from '../src/logger.js';
import { waitFor } from './helpers/wait.js';

const hubOptions = (idleCheckMs: number) => ({ idleCheckMs, retryWritesForMs: 30_000, logger: createLogger('silent') });

function inProcessHub() {
  const { store, channel } = createInProcessTransport();
  return new StreamHub(store, channel, hubOptions(60_000));
}

describe('StreamHub', () => {
  it('lets a subscriber leave while it waits for an event that may never come (a stalled stream)', async () => {
    const hub = inProcessHub();
    await hub.publish({ messageId: 'm1', seq: 1, delta: 'a', done: false });
    const events = hub.subscribe('m1', async () => null);
    expect((await events.next()).value).toMatchObject({ seq: 1, delta: 'a' });
    const waiting = events.next();
    // Without ending the live queue first, this return() would wait forever.
    await events.return(undefined);
    expect(await waiting).toEqual({ value: undefined, done: true });
    await hub.close();
  });

  it('replays, then follows live, dropping duplicates by seq, until done', async () => {
    const hub = inProcessHub();
    await hub.publish({ messageId: 'm2', seq: 1, delta: 'a', done: false });
    const events = hub.subscribe('m2', async () => null);
    const received = (async () => {
      const all = [];
      for await (const event of events) all.push(event);
      return all;
    })();
    await new Promise((resolve) => setImmediate(resolve));
    await hub.publish({ messageId: 'm2', seq: 1, delta: 'a', done: false });
    await hub.publish({ messageId: 'm2', seq: 2, delta: 'b', done: false });
    await hub.publish({ messageId: 'm2', seq: 3, delta: '', done: true });
    expect((await received).map((e) => [e.seq, e.delta, e.done])).toEqual([
      [1, 'a', false],
      [2, 'b', false],
      [3, '', true],
    ]);
    await hub.close();
  });

  it('hands the events of a stream published here straight to its subscribers here, and late joiners replay them', async () => {
    const { store, channel } = createInProcessTransport();
    const subscribedTopics: string[] = [];
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const hub = new StreamHub(
      // The store's answers are held: the subscribers here do not wait for them.
      {
        ...store,
        append: async (events) => {
          await held;
          await store.append(events);
        },
      },
      {
        ...channel,
        subscribe: (topic, handler) => {
          subscribedTopics.push(topic);
          return channel.subscribe(topic, handler);
        },
      },
      hubOptions(60_000),
    );
    const follow = async (events: AsyncGenerator<{ seq: number; delta: string; done: boolean }>) => {
      const all = [];
      for await (const event of events) all.push([event.seq, event.delta, event.done]);
      return all;
    };
    hub.publishHere('m3');
    const live = follow(hub.subscribe('m3', async () => null));
    await new Promise((resolve) => setImmediate(resolve));
    await hub.publish({ messageId: 'm3', seq: 1, delta: 'a', done: false });
    await hub.publish({ messageId: 'm3', seq: 2, delta: '', done: true });
    const expected = [
      [1, 'a', false],
      [2, '', true],
    ];
    expect(await live).toEqual(expected);
    // Until the replay store has it all, a late subscriber replays it from here.
    expect(hub.unstoredEvents).toBe(2);
    expect(await follow(hub.subscribe('m3', async () => null))).toEqual(expected);
    expect(subscribedTopics).toEqual([]);
    // Then the stream is no longer held here: a late subscriber reads the replay store.
    release();
    await waitFor('the events in the store', () => hub.unstoredEvents === 0);
    expect(await follow(hub.subscribe('m3', async () => null))).toEqual(expected);
    expect(subscribedTopics).toEqual(['stream:m3']);
    await hub.close();
  });

  it('fills a gap from the stored checkpoint when the replay buffer lost the beginning of a running reply', async () => {
    const { store, channel } = createInProcessTransport();
    const hub = new StreamHub(store, channel, hubOptions(60_000));
    // What a restarted Redis holds: the stream from seq 3 on (the first 5 characters are gone).
    await store.append([{ messageId: 'm4', seq: 3, delta: 'fg', done: false, offset: 5 }]);
    const events = hub.subscribe('m4', async () => ({ content: 'abcdefg', final: false }));
    const received = (async () => {
      const all = [];
      for await (const event of events) all.push(event);
      return all;
    })();
    await new Promise((resolve) => setImmediate(resolve));
    await hub.publish({ messageId: 'm4', seq: 4, delta: 'h', done: false, offset: 7 });
    await hub.publish({ messageId: 'm4', seq: 5, delta: '', done: true, offset: 8 });
    const all = await received;
    expect(all.map((e) => e.delta).join('')).toBe('abcdefgh');
    expect(all[0]).toMatchObject({ firstSeq: 1, seq: 2, delta: 'abcde' });
    await hub.close();
  });

  it('ends a stream whose done is lost from the final stored message, with what the subscriber lacks', async () => {
    const { store, channel } = createInProcessTransport();
    const hub = new StreamHub(store, channel, hubOptions(50));
    let stored = { content: 'ab', final: false };
    await hub.publish({ messageId: 'm5', seq: 1, delta: 'ab', done: false, offset: 0 });
    const events = hub.subscribe('m5', async () => stored);
    expect((await events.next()).value).toMatchObject({ seq: 1, delta: 'ab' });
    // The rest and the done never reach the store; the message becomes final in the database.
    stored = { content: 'abcd', final: true };
    const rest = [];
    for await (const event of events) rest.push(event);
    expect(rest.map((e) => [e.delta, e.done])).toEqual([
      ['cd', false],
      ['', true],
    ]);
    await hub.close();
  });

  it('replays a reply restarted mid-way to a late subscriber: the text before the reset is dropped', async () => {
    const hub = inProcessHub();
    const id = 'restarted';
    await hub.publish({ messageId: id, seq: 1, delta: 'The first ans', done: false, offset: 0 });
    await hub.publish({ messageId: id, seq: 2, delta: 'Another', done: false, offset: 0, reset: true });
    await hub.publish({ messageId: id, seq: 3, delta: ' answer.', done: false, offset: 7 });
    await hub.publish({ messageId: id, seq: 4, delta: '', done: true, offset: 15 });
    const events = [];
    for await (const event of hub.subscribe(id, async () => ({ content: 'Another answer.', final: true }))) events.push(event);
    expect(events.reduce((text, e) => (e.reset ? e.delta : text + e.delta), '')).toBe('Another answer.');
    expect(events.at(-1)?.done).toBe(true);
    await hub.close();
  });

  it('gives a subscriber that missed a reset the stored reply anew, after a reset, rather than gluing two answers', async () => {
    const { store, channel } = createInProcessTransport();
    const hub = new StreamHub(store, channel, hubOptions(50));
    let stored = { content: 'The first ans', final: false };
    await hub.publish({ messageId: 'm6', seq: 1, delta: 'The first ans', done: false, offset: 0 });
    const events = hub.subscribe('m6', async () => stored);
    expect((await events.next()).value).toMatchObject({ delta: 'The first ans' });
    // The reset, the new answer and the done never reach the store; the message is final in the database.
    stored = { content: 'Another answer.', final: true };
    const rest = [];
    for await (const event of events) rest.push(event);
    expect(rest.map((e) => [e.reset === true, e.delta, e.done])).toEqual([
      [true, 'Another answer.', false],
      [false, '', true],
    ]);
    await hub.close();
  });

  it('ends at once a stream whose done arrives over a gap right after its first catch-up', async () => {
    // A tick a minute away: the stream must end without one.
    const hub = inProcessHub();
    await hub.publish({ messageId: 'm7', seq: 1, delta: 'ab', done: false, offset: 0 });
    const events = hub.subscribe('m7', async () => ({ content: 'abcd', final: true }));
    expect((await events.next()).value).toMatchObject({ delta: 'ab' });
    // Heard while the first catch-up is finishing; seq 2 was lost on the way.
    await hub.publish({ messageId: 'm7', seq: 3, delta: '', done: true, offset: 4 });
    const rest = [];
    for await (const event of events) rest.push(event);
    expect(rest.map((e) => [e.delta, e.done])).toEqual([
      ['cd', false],
      ['', true],
    ]);
    await hub.close();
  }, 10_000);
});
