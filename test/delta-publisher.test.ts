import { describe, expect, it } from 'vitest';
import { DeltaPublisher } from '../src/streams/delta-publisher.js';
import type { StreamEvent } from '../src/streams/stream-hub.js';

describe('DeltaPublisher', () => {
  it('publishes each delta at once as the next event, ignores empty ones, and ends with done after the last', () => {
    const events: StreamEvent[] = [];
    const publisher = new DeltaPublisher('m1', (event) => void events.push(event));
    expect(publisher.started).toBe(false);
    publisher.push('x');
    expect(events.map((e) => e.delta)).toEqual(['x']);
    expect(publisher.started).toBe(true);
    for (const delta of ['', 'yy', 'z']) publisher.push(delta);
    publisher.finish();
    expect(events.map((e) => [e.seq, e.delta, e.offset, e.done])).toEqual([
      [1, 'x', 0, false],
      [2, 'yy', 1, false],
      [3, 'z', 3, false],
      [4, '', 4, true],
    ]);
    expect(events.every((e) => e.messageId === 'm1')).toBe(true);
  });

  it('tells subscribers of a restart with the first event after it, which starts at offset 0', () => {
    const events: StreamEvent[] = [];
    const publisher = new DeltaPublisher('m2', (event) => void events.push(event));
    publisher.push('The first ans');
    publisher.reset();
    expect(publisher.started).toBe(false);
    publisher.push('Another');
    publisher.push(' answer.');
    publisher.finish();
    expect(events.map((e) => [e.seq, e.delta, e.offset, e.reset === true])).toEqual([
      [1, 'The first ans', 0, false],
      [2, 'Another', 0, true],
      [3, ' answer.', 7, false],
      [4, '', 15, false],
    ]);
  });
});
