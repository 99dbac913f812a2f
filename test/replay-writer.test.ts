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
  /** Every event handed to the subscribers here, and, per call, how many had been when it was issued. */
  const delivered: StreamEvent[] = [];
  const deliveredAtCall: number[] = [];
  const deliver = (event: StreamEvent) => void delivered.push(event);
  let failAll = false;
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
      deliveredAtCall.push(delivered.length);
      if (failAll) return Promise.reject(new Error('redis down'));
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
  const failEveryCall = (fail: boolean) => (failAll = fail);
  return { store, calls, kept, next, delivered, deliveredAtCall, deliver, failEveryCall };
}

describe('ReplayWriter', () => {
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const seqs = (events: StreamEvent[]) => events.map((e) => e.seq);

  it('hands events to the subscribers here only once the store call carrying them is issued, without waiting for its answer', async () => {
    const { store, calls, kept, next, delivered, deliveredAtCall, deliver } = controlledStore();
    const writer = new ReplayWriter(store, { retryForMs: 30_000, logger });
    writer.append(text('m1', 1, 'a', 0), deliver);
    expect(delivered).toEqual([]);
    const first = await next();
    expect(seqs(delivered)).toEqual([1]);
    writer.append(text('m1', 2, 'b', 1), deliver);
    writer.append(text('m1', 3, 'c', 2), deliver);
    writer.append(done('m1', 4, 3), deliver);
    // The first call is still unanswered: the next one is issued anyway, and delivered behind it.
    const second = await next();
    expect(seqs(delivered)).toEqual([1, 2, 3, 4]);
    expect(calls.map(seqs)).toEqual([[1], [2, 3, 4]]);
    // No event reached a subscriber here before the call carrying it was issued.
    expect(deliveredAtCall).toEqual([0, 1]);
    first.pass();
    second.pass();
    await writer.written('m1');
    expect(seqs(kept.get('m1')!)).toEqual([1, 2, 3, 4]);
  });

  it('writes the events of every stream published in one tick in one call, each as it was published', async () => {
    const { store, calls, next, deliver } = controlledStore();
    const writer = new ReplayWriter(store, { retryForMs: 30_000, logger });
    for (const id of ['a', 'b', 'c']) writer.append(text(id, 1, id, 0), deliver);
    writer.append(text('a', 2, 'A', 1), deliver);
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

  it('once a write is refused, hands new events over at once and sends the refused ones again, unchanged and first', async () => {
    const { store, calls, kept, next, delivered, deliver } = controlledStore();
    const writer = new ReplayWriter(store, { retryForMs: 30_000, logger });
    writer.append(text('m2', 1, 'held ', 0), deliver);
    const first = await next();
    first.fail(new Error('connection lost'));
    await tick();
    // The store lags: a subscriber here does not wait for it.
    writer.append(text('m2', 2, 'back', 5), deliver);
    expect(seqs(delivered)).toEqual([1, 2]);
    const retry = await next();
    expect(retry.call).toEqual([first.call[0], expect.objectContaining({ seq: 2, delta: 'back' })]);
    retry.pass();
    writer.append(done('m2', 3, 9), deliver);
    (await next()).pass();
    await writer.written('m2');
    expect(calls.map(seqs)).toEqual([[1], [1, 2], [3]]);
    expect(kept.get('m2')!.map((e) => [e.seq, e.delta])).toEqual([
      [1, 'held '],
      [2, 'back'],
      [3, ''],
    ]);
  });

  it('while many calls of a stream are unanswered (a paused Redis), hands events over at once and joins them for the store', async () => {
    const { store, calls, kept, next, delivered, deliver } = controlledStore();
    const writer = new ReplayWriter(store, { retryForMs: 30_000, logger });
    const unanswered = [];
    let seq = 0;
    for (let call = 0; call < 8; call++) {
      writer.append(text('m4', ++seq, String(seq), seq - 1), deliver);
      unanswered.push(await next());
    }
    for (const _ of [1, 2, 3]) writer.append(text('m4', ++seq, String(seq), seq - 1), deliver);
    writer.append(done('m4', ++seq, seq - 1), deliver);
    expect(seqs(delivered)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    await tick();
    expect(calls).toHaveLength(8);
    for (const call of unanswered) call.pass();
    (await next()).pass();
    await writer.written('m4');
    expect(kept.get('m4')!.slice(8).map((e) => [e.firstSeq, e.seq, e.delta, e.done])).toEqual([
      [9, 11, '91011', false],
      [undefined, 12, '', true],
    ]);
  });

  it('gives up refused events after the retry time, and writes what is published afterwards', async () => {
    const { store, kept, next, deliver, failEveryCall } = controlledStore();
    const writer = new ReplayWriter(store, { retryForMs: 250, logger });
    failEveryCall(true);
    const failed = Date.now();
    writer.append(text('m3', 1, 'lost words', 0), deliver);
    await waitFor('the refused events given up', () => writer.backlog === 0);
    expect(Date.now() - failed).toBeGreaterThanOrEqual(250);
    failEveryCall(false);
    writer.append(done('m3', 2, 10), deliver);
    (await next()).pass();
    await writer.written('m3');
    expect(seqs(kept.get('m3')!)).toEqual([2]);
  });
});
