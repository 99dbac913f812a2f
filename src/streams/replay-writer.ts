import type { Logger } from '../logger.js';
import { joinEvents, type ReplayStore, type StreamEvent } from './stream-hub.js';

const FIRST_RETRY_MS = 100;
const LONGEST_RETRY_MS = 2_000;
// Events per store call: one Lua script runs alone in Redis, so a tick with many streams is cut into several.
const EVENTS_PER_CALL = 128;
// Store calls a stream may have unanswered before the store counts as lagging (a paused Redis answers nothing).
const CALLS_IN_FLIGHT_PER_STREAM = 8;

/** Hands events to the subscribers of their stream on this instance. */
export type Deliver = (event: StreamEvent) => void;

/** A stream's events on their way to the store, and to its subscribers here. */
interface Outbox {
  deliver: Deliver;
  /** Not handed to the subscribers here yet: they wait for the store call that carries them. */
  undelivered: StreamEvent[];
  /** Not sent yet. While the store lags, what is published is joined here into one text event. */
  waiting: StreamEvent[];
  /** Refused by the store: sent again unchanged (the store skips what it already holds), never joined. */
  refused: StreamEvent[];
  callsInFlight: number;
  /** The refused events are being sent again. */
  retrying: boolean;
  failures: number;
  failingSince?: number;
  retryAt: number;
  /** Called once all of it was acknowledged or given up. */
  onWritten: Array<() => void>;
}

/**
 * Writes the events of the streams published here to the replay store, and hands them to the
 * stream's subscribers here right after, in the same tick. Once per event-loop tick, every event
 * published goes out in one store call for all streams (one Redis round trip and one Lua script
 * for a whole tick), and only then to the local subscribers: the command is on its way to Redis
 * before any client here can have the text, so a client of an instance killed at any moment
 * never holds text that recovery, reading Redis, cannot keep. Nothing here waits for the answer:
 * calls are pipelined on one connection, so they reach the store in order.
 *
 * While the store lags (it refused a call, or leaves many unanswered: Redis away or paused), the
 * subscribers here are handed each event at once (the store may take long, they do not wait for
 * it), and what is published meanwhile is joined into one event covering `firstSeq`..`seq`, so a
 * stream's outbox stays bounded. Refused events are sent again unchanged with backoff for up to
 * `retryForMs`; past that they are given up, leaving a gap in seq that subscribers elsewhere
 * fill from the stored message.
 */
export class ReplayWriter {
  private readonly outboxes = new Map<string, Outbox>();
  private flushScheduled = false;
  private retryTimer?: NodeJS.Timeout;
  private readonly calls = new Set<Promise<void>>();
  /** Events in unanswered calls, beyond those counted as refused (a retry's). */
  private eventsInFlight = 0;
  private closed = false;

  constructor(
    private readonly store: ReplayStore,
    private readonly options: { retryForMs: number; logger: Logger },
  ) {}

  append(event: StreamEvent, deliver: Deliver): void {
    let outbox = this.outboxes.get(event.messageId);
    if (!outbox) {
      outbox = { deliver, undelivered: [], waiting: [], refused: [], callsInFlight: 0, retrying: false, failures: 0, retryAt: 0, onWritten: [] };
      this.outboxes.set(event.messageId, outbox);
    }
    if (lagging(outbox)) {
      const last = outbox.waiting.at(-1);
      // The outbox owns a copy: joining changes it, and the event itself goes to the subscribers here.
      if (last && !last.done && !event.done) joinEvents(last, event);
      else outbox.waiting.push({ ...event });
      deliverAll(outbox, event);
    } else {
      // A copy, which the outbox may join more into should the store start lagging before it is sent.
      outbox.waiting.push({ ...event });
      outbox.undelivered.push(event);
    }
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
    let events = this.eventsInFlight;
    for (const outbox of this.outboxes.values()) events += outbox.refused.length + outbox.waiting.length;
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
    for (const outbox of this.outboxes.values()) {
      deliverAll(outbox);
      for (const written of outbox.onWritten) written();
    }
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
    const batch: Array<{ outbox: Outbox; events: StreamEvent[]; retry: boolean }> = [];
    let nextRetryAt = Number.POSITIVE_INFINITY;
    for (const [messageId, outbox] of this.outboxes) {
      const events = this.eventsToSend(messageId, outbox, now);
      if (events === 'later') {
        deliverAll(outbox);
        if (outbox.retryAt > now) nextRetryAt = Math.min(nextRetryAt, outbox.retryAt);
        continue;
      }
      if (events.length > 0) {
        outbox.callsInFlight += 1;
        batch.push({ outbox, events, retry: outbox.retrying });
      } else if (outbox.callsInFlight === 0 && outbox.refused.length === 0) {
        this.outboxes.delete(messageId);
        deliverAll(outbox);
        for (const written of outbox.onWritten) written();
      }
    }
    for (let start = 0, events = 0, end = 0; start < batch.length; start = end, events = 0) {
      while (end < batch.length && (end === start || events + batch[end]!.events.length <= EVENTS_PER_CALL)) events += batch[end++]!.events.length;
      this.send(batch.slice(start, end));
    }
    // The store calls are issued: only now do the subscribers here get what they carry.
    for (const { outbox } of batch) deliverAll(outbox);
    if (nextRetryAt !== Number.POSITIVE_INFINITY && !this.closed) {
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.flush(), nextRetryAt - now);
      this.retryTimer.unref();
    }
  }

  /** What a stream sends in this tick's call: its new events, or, once refused, all that waits behind a retry. */
  private eventsToSend(messageId: string, outbox: Outbox, now: number): StreamEvent[] | 'later' {
    // Many calls unanswered: what comes meanwhile is joined, and goes once they are answered.
    if (outbox.failures === 0) return outbox.callsInFlight < CALLS_IN_FLIGHT_PER_STREAM ? outbox.waiting.splice(0) : 'later';
    // Failing: one call at a time, after the backoff, so the refused events go again before the rest.
    if (outbox.callsInFlight > 0 || (outbox.retryAt > now && !this.closed)) return 'later';
    if (outbox.failingSince !== undefined && now - outbox.failingSince > this.options.retryForMs) this.giveUp(messageId, outbox);
    outbox.refused.push(...outbox.waiting.splice(0));
    outbox.retrying = outbox.refused.length > 0;
    return [...outbox.refused];
  }

  private send(batch: Array<{ outbox: Outbox; events: StreamEvent[]; retry: boolean }>): void {
    let fresh = 0;
    for (const { events, retry } of batch) if (!retry) fresh += events.length;
    this.eventsInFlight += fresh;
    const call = this.store.append(batch.flatMap((b) => b.events)).then(
      () => {
        for (const { outbox, retry } of batch) {
          if (!retry) continue;
          outbox.refused = [];
          outbox.retrying = false;
          outbox.failures = 0;
          outbox.failingSince = undefined;
          outbox.retryAt = 0;
        }
        return true;
      },
      (error: unknown) => {
        const now = Date.now();
        for (const { outbox, events, retry } of batch) {
          if (outbox.failures === 0) this.options.logger.error({ err: error, messageId: events[0]!.messageId }, 'could not write stream events to the replay store; retrying');
          // Refused events are sent again in seq order: a retry's own events are there already.
          if (!retry) outbox.refused = mergeBySeq(outbox.refused, events);
          outbox.retrying = false;
          outbox.failingSince ??= now;
          outbox.retryAt = now + Math.min(FIRST_RETRY_MS * 2 ** outbox.failures, LONGEST_RETRY_MS);
          outbox.failures += 1;
        }
        return false;
      },
    );
    const settled = call.then((stored) => {
      this.calls.delete(settled);
      this.eventsInFlight -= fresh;
      for (const { outbox } of batch) outbox.callsInFlight -= 1;
      // Closing: what waited behind this call goes now; what failed is not tried again.
      if (!this.closed) this.scheduleFlush();
      else if (stored) this.flush();
    });
    this.calls.add(settled);
  }

  private giveUp(messageId: string, outbox: Outbox): void {
    this.options.logger.error({ messageId }, 'gave up writing stream events to the replay store');
    outbox.refused = [];
    outbox.failingSince = undefined;
  }
}

/** The store cannot be counted on to take the next event soon: the subscribers here do not wait for it. */
function lagging(outbox: Outbox): boolean {
  return outbox.failures > 0 || outbox.callsInFlight >= CALLS_IN_FLIGHT_PER_STREAM;
}

function deliverAll(outbox: Outbox, last?: StreamEvent): void {
  const events = outbox.undelivered.splice(0);
  if (last) events.push(last);
  for (const event of events) outbox.deliver(event);
}

function mergeBySeq(a: StreamEvent[], b: StreamEvent[]): StreamEvent[] {
  return [...a, ...b].sort((x, y) => x.seq - y.seq);
}
