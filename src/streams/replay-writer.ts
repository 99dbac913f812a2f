import type { Logger } from '../logger.js';
import { joinEvents, type ReplayStore, type StreamEvent } from './stream-hub.js';

const FIRST_RETRY_MS = 100;
const LONGEST_RETRY_MS = 2_000;
// Events per store call: one Lua script runs alone in Redis, so a tick with many streams is cut into several.
const EVENTS_PER_CALL = 128;

/** A stream's events on their way to the store, in seq order. */
interface Outbox {
  /** Sent (or tried) as they are: they may be in the store already, so they are sent again unchanged, never joined. */
  sent: StreamEvent[];
  /**
   * Not sent yet: kept apart within a tick, but joined into one text event while the stream has
   * a write in flight or failing (so at most a tick's events, or a text event and `done`).
   */
  waiting: StreamEvent[];
  inFlight: boolean;
  failures: number;
  failingSince?: number;
  retryAt: number;
  /** Called once all of it was acknowledged or given up. */
  onWritten: Array<() => void>;
}

/**
 * Writes the events of the streams published here to the replay store, behind their local
 * delivery: nothing local waits for it. Once per event-loop tick, every stream with events to
 * send and none in flight sends them, all streams together in one store call (one Redis round
 * trip, one Lua script, for a whole tick of events). Each stream has one call in flight at a
 * time, so its events reach the store in seq order; what it publishes meanwhile is joined into
 * one event (covering `firstSeq`..`seq`), so a slow or absent Redis costs a bounded outbox per
 * stream, and the store fewer, larger events. A store that keeps up gets every event as published. A failed call is sent again unchanged with
 * backoff (the store skips the seqs it already holds), for up to `retryForMs`: past that its
 * events are given up, leaving a gap in seq that subscribers elsewhere fill from the stored message.
 */
export class ReplayWriter {
  private readonly outboxes = new Map<string, Outbox>();
  private flushScheduled = false;
  private retryTimer?: NodeJS.Timeout;
  private readonly calls = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly store: ReplayStore,
    private readonly options: { retryForMs: number; logger: Logger },
  ) {}

  append(event: StreamEvent): void {
    let outbox = this.outboxes.get(event.messageId);
    if (!outbox) {
      outbox = { sent: [], waiting: [], inFlight: false, failures: 0, retryAt: 0, onWritten: [] };
      this.outboxes.set(event.messageId, outbox);
    }
    const last = outbox.waiting.at(-1);
    const storeBusy = outbox.inFlight || outbox.sent.length > 0;
    // The outbox owns a copy: joining changes it, and the event itself went to the subscribers here.
    if (storeBusy && last && !last.done && !event.done) joinEvents(last, event);
    else outbox.waiting.push({ ...event });
    this.scheduleFlush();
  }

  /** Resolves once every event of the stream appended so far is in the store, or was given up. */
  written(messageId: string): Promise<void> {
    const outbox = this.outboxes.get(messageId);
    if (!outbox) return Promise.resolve();
    return new Promise((resolve) => outbox.onWritten.push(resolve));
  }

  /** Events not yet acknowledged by the store, over every stream. */
  get backlog(): number {
    let events = 0;
    for (const outbox of this.outboxes.values()) events += outbox.sent.length + outbox.waiting.length;
    return events;
  }

  /**
   * Sends what is left and waits for the calls in flight, up to `waitMs` (a Redis that is away
   * holds a call until it is back): past that, what Redis has not taken is left to the stored messages.
   */
  async close(waitMs: number): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)));
    const sentAll = (async () => {
      this.flush();
      while (this.calls.size > 0) await Promise.all(this.calls);
    })();
    await Promise.race([sentAll, deadline]);
    clearTimeout(timer);
    for (const outbox of this.outboxes.values()) for (const written of outbox.onWritten) written();
    this.outboxes.clear();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const now = Date.now();
    const batch: Array<{ outbox: Outbox; events: StreamEvent[] }> = [];
    let nextRetryAt = Number.POSITIVE_INFINITY;
    for (const [messageId, outbox] of this.outboxes) {
      if (outbox.inFlight) continue;
      if (outbox.retryAt > now && !this.closed) {
        nextRetryAt = Math.min(nextRetryAt, outbox.retryAt);
        continue;
      }
      if (outbox.failingSince !== undefined && now - outbox.failingSince > this.options.retryForMs) this.giveUp(messageId, outbox);
      if (outbox.sent.length === 0) outbox.sent = outbox.waiting.splice(0);
      if (outbox.sent.length === 0) {
        this.outboxes.delete(messageId);
        for (const written of outbox.onWritten) written();
        continue;
      }
      outbox.inFlight = true;
      batch.push({ outbox, events: outbox.sent });
    }
    for (let start = 0, events = 0, end = 0; start < batch.length; start = end, events = 0) {
      while (end < batch.length && (end === start || events + batch[end]!.events.length <= EVENTS_PER_CALL)) events += batch[end++]!.events.length;
      this.send(batch.slice(start, end));
    }
    if (nextRetryAt !== Number.POSITIVE_INFINITY && !this.closed) {
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.flush(), nextRetryAt - now);
      this.retryTimer.unref();
    }
  }

  private send(batch: Array<{ outbox: Outbox; events: StreamEvent[] }>): void {
    const call = this.store.append(batch.flatMap((b) => b.events)).then(
      () => {
        for (const { outbox } of batch) {
          outbox.sent = [];
          outbox.failures = 0;
          outbox.failingSince = undefined;
          outbox.retryAt = 0;
        }
        return true;
      },
      (error: unknown) => {
        const now = Date.now();
        for (const { outbox, events } of batch) {
          if (outbox.failures === 0) this.options.logger.error({ err: error, messageId: events[0]!.messageId }, 'could not write stream events to the replay store; retrying');
          outbox.failingSince ??= now;
          outbox.retryAt = now + Math.min(FIRST_RETRY_MS * 2 ** outbox.failures, LONGEST_RETRY_MS);
          outbox.failures += 1;
        }
        return false;
      },
    );
    const settled = call.then((stored) => {
      this.calls.delete(settled);
      for (const { outbox } of batch) outbox.inFlight = false;
      // Closing: what waited behind this call goes now; what failed is not tried again.
      if (!this.closed) this.scheduleFlush();
      else if (stored) this.flush();
    });
    this.calls.add(settled);
  }

  private giveUp(messageId: string, outbox: Outbox): void {
    this.options.logger.error({ messageId }, 'gave up writing stream events to the replay store');
    outbox.sent = [];
    outbox.failingSince = undefined;
  }
}
