import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { ReplayWriter } from '../src/streams/replay-writer.js';
import type { ReplayStore, StreamEvent } from '../src/streams/stream-hub.js';
import { waitFor } from './helpers/wait.js';

const logger = createLogger('silent');
const text = (messageId: string, seq: number, delta: string, offset: number): StreamEvent => ({ messageId, seq, delta, done: false, offset });
const done = (messageId: string, seq: number, offset: number): StreamEvent => ({ messageId, seq, delta: '', done: true, offset });

/** A replay store whose calls the test holds, fails, or lets through; what it keeps skips seqs it has, like Redis. */
function controlledStore() {
  const calls: StreamEvent[][] = [];
  const kept = new Map<string, StreamEvent[]>();
  const pending: Array<{ fail: (error: Error) => void; pass: () => void }> = [];
  const keep = (events: readonly StreamEvent[]) => {
    for (const event of events) {
      const list = kept.get(event.messageId) ?? [];
      kept.set(event.messageId, list);
      if ((list.at(-1)?.seq ?? 0) < event.seq) list.push(event);
    }
  };
  const store: ReplayStore = {
    append: (events) => {
      calls.push([...events]);
      return new Promise<void>((resolve, reject) =>
        pending.push({
          pass: () => {
            keep(events);
            resolve();
          },
          fail: reject,
        }),
      );
    },
    read: async (messageId) => [...(kept.get(messageId) ?? [])],
    discard: async () => {},
    close: async () => {},
  };
  const next = async () => {
    const at = calls.length;
    await waitFor('a call to the store', () => pending.length > 0);
    return { call: calls[at]!, ...pending.shift()! };
  };
  return { store, calls, kept, next };
}

describe('ReplayWriter', () => {
  it('joins what is published while a write is in flight into one event, after it, and keeps done apart', async () => {
    const { store, calls, kept, next } = controlledStore();
    const writer = new ReplayWriter(store, { retryForMs: 30_000, logger });
    writer.append(text('m1', 1, 'a', 0));
    const first = await next();
    writer.append(text('m1', 2, 'b', 1));
    writer.append(text('m1', 3, 'c', 2));
    writer.append(done('m1', 4, 3));
    // A tick passes while the first write is in flight: the next one waits for it.
    await new Promise((resolve) => setImmediate(resolve));
    first.pass();
    const second = await next();
    second.pass();
    await writer.written('m1');
    // One write of the stream at a time: the second waited for the first.
    expect(calls.map((call) => call.map((e) => e.seq))).toEqual([[1], [3, 4]]);
    expect(kept.get('m1')!.map((e) => [e.firstSeq, e.seq, e.delta, e.offset, e.done])).toEqual([
      [undefined, 1, 'a', 0, false],
      [2, 3, 'bc', 1, false],
      [undefined, 4, '', 3, true],
    ]);
  });

  it('writes the events of every stream published in one tick in one call, each as it was published', async () => {
    const { store, calls, next } = controlledStore();
    const writer = new ReplayWriter(store, { retryForMs: 30_000, logger });
    for (const id of ['a', 'b', 'c']) writer.append(text(id, 1, id, 0));
    writer.append(text('a', 2, 'A', 1));
    (await next()).pass();
    await Promise.all(['a', 'b', 'c'].map((id) => writer.written(id)));
    expect(calls.map((call) => call.map((e) => [e.messageId, e.seq]))).toEqual([
      [
        ['a', 1],
        ['a', 2],
        ['b', 1],
        ['c', 1],
      ],
    ]);
  });

  it('sends a failed write again unchanged, before what was published after it, and the store keeps each seq once', async () => {
    const { store, calls, kept, next } = controlledStore();
    const writer = new ReplayWriter(store, { retryForMs: 30_000, logger });
    writer.append(text('m2', 1, 'held ', 0));
    const first = await next();
    writer.append(text('m2', 2, 'back', 5));
    // The store took it, but its answer was lost: the retry must not add it twice.
    first.pass = () => {};
    first.fail(new Error('connection lost'));
    const retry = await next();
    expect(retry.call).toEqual(first.call);
    retry.pass();
    // Its first attempt landed after all.
    const afterRetry = await next();
    afterRetry.pass();
    writer.append(done('m2', 3, 9));
    (await next()).pass();
    await writer.written('m2');
    expect(calls.map((call) => call.map((e) => e.seq))).toEqual([[1], [1], [2], [3]]);
    expect(kept.get('m2')!.map((e) => [e.seq, e.delta])).toEqual([
      [1, 'held '],
      [2, 'back'],
      [3, ''],
    ]);
  });

  it('gives up a write that fails for the whole retry time, leaving a gap that the events after it show', async () => {
    const { store, kept, next } = controlledStore();
    const writer = new ReplayWriter(store, { retryForMs: 250, logger });
    writer.append(text('m3', 1, 'lost words', 0));
    const failed = Date.now();
    let attempt = await next();
    writer.append(text('m3', 2, '', 10));
    for (;; attempt = await next()) {
      if (attempt.call.some((e) => e.seq === 2)) {
        expect(Date.now() - failed).toBeGreaterThanOrEqual(250);
        expect(attempt.call.map((e) => e.seq)).toEqual([2]);
        attempt.pass();
        break;
      }
      attempt.fail(new Error('redis down'));
    }
    writer.append(done('m3', 3, 10));
    (await next()).pass();
    await writer.written('m3');
    expect(kept.get('m3')!.map((e) => [e.seq, e.done, e.offset])).toEqual([
      [2, false, 10],
      [3, true, 10],
    ]);
  });
});
