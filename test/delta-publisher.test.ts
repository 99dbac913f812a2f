import { describe, expect, it } from 'vitest';
import { DeltaPublisher } from '../src/streams/delta-publisher.js';
import type { StreamEvent } from '../src/streams/stream-hub.js';
import { createLogger } from '../src/logger.js';

const logger = createLogger('silent');

/** A hub whose every publish takes until the test lets it go. */
function gatedHub() {
  const published: StreamEvent[] = [];
  const gates: Array<() => void> = [];
  return {
    published,
    publish: (event: StreamEvent) =>
      new Promise<void>((resolve) => {
        published.push(event);
        gates.push(resolve);
      }),
    releaseAll: () => gates.splice(0).forEach((release) => release()),
  };
}

/** A hub that fails its first `failures` publishes (Redis away), then records the rest. */
function failingFirst(failures: number) {
  const events: StreamEvent[] = [];
  const attempts: StreamEvent[] = [];
  const publish = async (event: StreamEvent) => {
    attempts.push(event);
    if (attempts.length <= failures) throw new Error('redis down');
    events.push(event);
  };
  return { events, attempts, publish };
}

const LEASE_MS = 30_000;

describe('DeltaPublisher', () => {
  it('joins the deltas that arrive while an event is being published, keeping order and gapless seq', async () => {
    const hub = gatedHub();
    const publisher = new DeltaPublisher('m1', hub.publish, logger, LEASE_MS);
    expect(publisher.started).toBe(false);
    publisher.push('a');
    publisher.push('b');
    publisher.push('c');
    expect(publisher.started).toBe(true);
    expect(hub.published.map((e) => e.delta)).toEqual(['a']);
    hub.releaseAll();
    await new Promise((resolve) => setImmediate(resolve));
    publisher.push('d');
    hub.releaseAll();
    await new Promise((resolve) => setImmediate(resolve));
    hub.releaseAll();
    await publisher.drain();

    expect(hub.published.map((e) => [e.seq, e.delta, e.offset])).toEqual([
      [1, 'a', 0],
      [2, 'bc', 1],
      [3, 'd', 3],
    ]);
    expect(hub.published.every((e) => e.messageId === 'm1' && !e.done)).toBe(true);
  });

  it('sends each delta on its own when the hub keeps up, ignores empty ones, and ends with done after the last', async () => {
    const events: StreamEvent[] = [];
    const publisher = new DeltaPublisher('m2', async (event) => void events.push(event), logger, LEASE_MS);
    for (const delta of ['x', '', 'y', 'z']) {
      publisher.push(delta);
      await publisher.drain();
    }
    await publisher.finish();
    expect(events.map((e) => [e.seq, e.delta, e.done])).toEqual([
      [1, 'x', false],
      [2, 'y', false],
      [3, 'z', false],
      [4, '', true],
    ]);
    expect(events.at(-1)?.offset).toBe(3);
  });

  it('sends a failed event again as it was (same seq and text), with backoff, before the text that came after it', async () => {
    const { events, attempts, publish } = failingFirst(3);
    const publisher = new DeltaPublisher('m3', publish, logger, LEASE_MS);
    publisher.push('held ');
    await new Promise((resolve) => setImmediate(resolve));
    publisher.push('back');
    await publisher.finish();
    expect(attempts.slice(0, 4).map((e) => [e.seq, e.delta])).toEqual([
      [1, 'held '],
      [1, 'held '],
      [1, 'held '],
      [1, 'held '],
    ]);
    expect(events.map((e) => [e.seq, e.delta, e.done])).toEqual([
      [1, 'held ', false],
      [2, 'back', false],
      [3, '', true],
    ]);
  });

  it('gives up on text it could not publish for the whole retry time, and leaves the gap visible to the done after it', async () => {
    const { events, publish } = failingFirst(Number.POSITIVE_INFINITY);
    const publisher = new DeltaPublisher('m4', publish, logger, 250);
    publisher.push('lost words');
    await publisher.finish();
    expect(events).toEqual([]);

    const recovered = failingFirst(2);
    const second = new DeltaPublisher('m5', recovered.publish, logger, 250);
    second.push('a');
    await second.drain();
    second.push('b');
    await second.finish();
    // seq 1 was given up: done says seq 3, offset 2, so a subscriber knows it lacks text.
    expect(recovered.events.map((e) => [e.seq, e.delta, e.done, e.offset])).toEqual([
      [2, 'b', false, 1],
      [3, '', true, 2],
    ]);
  });
});
