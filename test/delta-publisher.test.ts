import { describe, expect, it } from 'vitest';
import { DeltaPublisher } from '../src/generation/delta-publisher.js';
import type { StreamEvent } from '../src/chat/stream-hub.js';
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

/** A hub whose first publish fails (Redis blipping), and that records the rest. */
function failingOnce() {
  const events: StreamEvent[] = [];
  let calls = 0;
  const publish = async (event: StreamEvent) => {
    calls += 1;
    if (calls === 1) throw new Error('redis down');
    events.push(event);
  };
  return { events, publish };
}

describe('DeltaPublisher', () => {
  it('joins the deltas that arrive while an event is being published, keeping order and gapless seq', async () => {
    const hub = gatedHub();
    const publisher = new DeltaPublisher('m1', hub.publish, logger);
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
    const lastSeq = await publisher.drain();

    expect(hub.published.map((e) => e.delta)).toEqual(['a', 'bc', 'd']);
    expect(hub.published.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(lastSeq).toBe(3);
    expect(hub.published.every((e) => e.messageId === 'm1' && !e.done)).toBe(true);
  });

  it('sends each delta on its own when the hub keeps up, and ignores empty ones', async () => {
    const events: StreamEvent[] = [];
    const publisher = new DeltaPublisher('m2', async (event) => void events.push(event), logger);
    for (const delta of ['x', '', 'y', 'z']) {
      publisher.push(delta);
      await publisher.drain();
    }
    expect(events.map((e) => [e.seq, e.delta])).toEqual([
      [1, 'x'],
      [2, 'y'],
      [3, 'z'],
    ]);
  });

  it('keeps the text of a failed publish and its seq, and sends it with what comes next', async () => {
    const { events, publish } = failingOnce();
    const publisher = new DeltaPublisher('m3', publish, logger);
    publisher.push('held ');
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual([]);
    publisher.push('back');
    expect(await publisher.drain()).toBe(1);
    expect(events.map((e) => [e.seq, e.delta])).toEqual([[1, 'held back']]);
  });

  it('tries once more on drain when nothing came after a failure', async () => {
    const { events, publish } = failingOnce();
    const publisher = new DeltaPublisher('m4', publish, logger);
    publisher.push('last words');
    expect(await publisher.drain()).toBe(1);
    expect(events.map((e) => [e.seq, e.delta])).toEqual([[1, 'last words']]);
  });
});
