import { joinEvents, type StreamEvent } from './stream-hub.js';

/** The persisted reply, as the database holds it: its text so far (checkpointed), and whether it is final. */
export interface StoredReply {
  content: string;
  final: boolean;
}

/** When a catch-up also reads the stored message: on a gap only, also when the store is empty, or always. */
const STORED_CHECKS = ['onGap', 'whenStoreEmpty', 'always'] as const;
type StoredCheck = (typeof STORED_CHECKS)[number];

/**
 * What one subscriber has been given of a stream, and how it gets the rest. Live events are
 * taken in order as they arrive; anything else (a gap in `seq`, a replay that does not start at
 * 1, a reconnect, a long silence) sends it back to its replay (the stream's record here, or the
 * replay store), and where that lacks
 * the text, to the stored message: its checkpoint fills a gap it covers, and a final message's
 * content, which is authoritative, ends the stream. So every subscriber gets the whole reply and
 * `done` once the message is final, whatever was lost on the way.
 */
export class StreamFollower {
  readonly events = new MergingQueue();
  private lastSeq = 0;
  /**
   * The text given since the last reset: a stored text that does not extend it (the reply was
   * restarted where this subscriber could not see the reset) is then given anew, after a reset.
   */
  private deliveredText = '';
  /** The highest seq heard of while it could not be taken (a gap, or a catch-up under way). */
  private highestHeard = 0;
  private doneHeard = false;
  private live = false;
  private heardSinceTick = false;
  private catchUpAsked?: StoredCheck;
  private catchingUp?: Promise<void>;

  constructor(
    private readonly messageId: string,
    /** What the stream's replay holds: the record of a stream published here, or the replay store. */
    private readonly replay: () => Promise<StreamEvent[]>,
    private readonly storedReply: () => Promise<StoredReply | null>,
  ) {}

  get ended(): boolean {
    return this.events.ended;
  }

  /**
   * First catch-up: what the store holds, or, when it holds nothing, the stored message (the
   * stream may have ended long ago). A stream published by this instance that has not ended needs
   * no read of the message: its events are all still to come here, and a gap among them shows.
   */
  start(options: { publishedHere: boolean }): Promise<void> {
    return this.catchUp(options.publishedHere ? 'onGap' : 'whenStoreEmpty');
  }

  /** A live event, from the channel or from this instance's publisher. */
  hear(event: StreamEvent): void {
    if (this.ended || event.seq <= this.lastSeq) return;
    this.heardSinceTick = true;
    if (this.live && this.follows(event)) return this.take(event);
    this.highestHeard = Math.max(this.highestHeard, event.seq);
    if (event.done) this.doneHeard = true;
    // A gap, or a done after one (the message is final then, so the stored text can end it). Other
    // events during an unresolved gap wait for the next tick, not to read the database per event.
    if (this.live || event.done) void this.catchUp('onGap');
  }

  /** The live channel reconnected: whatever was published meanwhile is read back from the store. */
  reconnected(): void {
    if (this.live) void this.catchUp('onGap');
  }

  /**
   * Runs periodically: a follower that heard nothing since the last tick, or is stuck at a gap,
   * looks again, in the store and at the message's status, in case its `done` was lost.
   */
  tick(): void {
    const quiet = !this.heardSinceTick;
    this.heardSinceTick = false;
    if (!this.live || quiet) void this.catchUp('always');
  }

  close(): void {
    this.events.end();
  }

  private get delivered(): number {
    return this.deliveredText.length;
  }

  /**
   * Whether the event can be given now: the next one, or several joined that reach past what was
   * given and start no later than the next one (its offset then says what was given already),
   * or a reset (which drops whatever a gap before it held).
   */
  private follows(event: StreamEvent): boolean {
    if (event.reset) return event.seq > this.lastSeq;
    const first = event.firstSeq ?? event.seq;
    if (event.offset === undefined) return first === this.lastSeq + 1;
    return first <= this.lastSeq + 1 && event.seq > this.lastSeq && event.offset <= this.delivered;
  }

  private take(event: StreamEvent): void {
    if (event.reset) this.deliveredText = '';
    // An event that starts before what was given (a checkpoint filled part of it) gives only the rest.
    const overlap = event.offset === undefined ? 0 : this.delivered - event.offset;
    const delta = event.delta.slice(overlap);
    this.lastSeq = event.seq;
    this.deliveredText += delta;
    this.events.push({ ...event, delta, ...(event.offset === undefined ? {} : { offset: event.offset + overlap }) });
    if (event.done) this.events.end();
  }

  /** Ends the stream with what a final message holds beyond what was given. */
  private finishFrom(content: string): void {
    if (content.length > this.delivered || !this.extendsDelivered(content)) this.fillTo(this.lastSeq + 1, content, content.length);
    this.take({ messageId: this.messageId, seq: this.lastSeq + 1, delta: '', done: true, offset: this.delivered });
  }

  /** Whether a stored text carries on from what was given (it does not after a restart this subscriber missed). */
  private extendsDelivered(content: string): boolean {
    return content.startsWith(this.deliveredText);
  }

  /** Gives the stored text from what was given up to `end`; or, when it does not carry on from it, all of it after a reset. */
  private fillTo(seq: number, content: string, end: number): void {
    const event: StreamEvent = { messageId: this.messageId, seq, firstSeq: this.lastSeq + 1, delta: '', done: false, offset: 0 };
    if (this.extendsDelivered(content)) this.take({ ...event, delta: content.slice(this.delivered, end), offset: this.delivered });
    else this.take({ ...event, delta: content.slice(0, end), reset: true });
  }

  /** One catch-up at a time; one asked for during another runs after it (the stronger of the two). */
  private catchUp(storedCheck: StoredCheck): Promise<void> {
    const asked = this.catchUpAsked;
    this.catchUpAsked = asked && STORED_CHECKS.indexOf(asked) > STORED_CHECKS.indexOf(storedCheck) ? asked : storedCheck;
    this.catchingUp ??= (async () => {
      while (this.catchUpAsked && !this.ended) {
        const check = this.catchUpAsked;
        this.catchUpAsked = undefined;
        await this.catchUpOnce(check);
      }
    })().finally(() => {
      this.catchingUp = undefined;
      // Asked for after the loop above had checked for the last time, but before this ran: not lost.
      if (this.catchUpAsked && !this.ended) void this.catchUp(this.catchUpAsked);
    });
    return this.catchingUp;
  }

  private async catchUpOnce(storedCheck: StoredCheck): Promise<void> {
    // Events heard from here on are read back from the store (appended before they are announced).
    this.live = false;
    const heardBefore = { seq: this.highestHeard, done: this.doneHeard };
    const buffered = (await this.readStore()).filter((event) => event.seq > this.lastSeq);
    let next = 0;
    while (next < buffered.length && this.follows(buffered[next]!)) this.take(buffered[next++]!);
    if (this.ended) return;
    const afterGap = buffered[next];
    // What was heard before the store was read is in the store, unless the store lost it.
    const gap = afterGap !== undefined || heardBefore.seq > this.lastSeq || heardBefore.done;
    if (gap || storedCheck === 'always' || (storedCheck === 'whenStoreEmpty' && buffered.length === 0)) {
      const stored = await this.storedReply().catch(() => null);
      if (this.ended) return;
      if (stored?.final) return this.finishFrom(stored.content);
      const gapEnd = afterGap?.offset;
      const coversGap = afterGap && gapEnd !== undefined && stored && stored.content.length >= gapEnd;
      if (coversGap && (gapEnd >= this.delivered || !this.extendsDelivered(stored.content))) {
        // The checkpoint covers the gap: fill it, then take the rest from the store.
        this.fillTo(Math.max((afterGap.firstSeq ?? afterGap.seq) - 1, this.lastSeq + 1), stored.content, gapEnd);
        this.catchUpAsked ??= 'onGap';
        return;
      }
      // A gap nothing covers yet stays open (not live) until a tick, or a done, finds more.
      if (gap) return;
    }
    // Events heard during this catch-up: one more look at the store.
    if (this.highestHeard > this.lastSeq) {
      this.catchUpAsked ??= 'onGap';
      return;
    }
    this.live = true;
  }

  private async readStore(): Promise<StreamEvent[]> {
    try {
      return (await this.replay()).sort((a, b) => a.seq - b.seq);
    } catch {
      // The store is away (Redis restarting): the stored message and later ticks stand in for it.
      return [];
    }
  }
}

/**
 * What a subscriber has not read yet, bounded: past a few events, text events that pile up while
 * it does not read are merged into the last one (its text grows, its tool-call pieces are joined
 * in order, its seq jumps to the newest, and `firstSeq` says so), so a slow reader holds a fixed number of events, however long the reply.
 */
// A reader keeping up gets every event as it was published; one that falls this far behind gets them merged.
const SEPARATE_EVENTS_KEPT = 16;

export class MergingQueue implements AsyncIterable<StreamEvent> {
  private readonly items: StreamEvent[] = [];
  private waiting?: (result: IteratorResult<StreamEvent>) => void;
  private closed = false;

  get ended(): boolean {
    return this.closed;
  }

  get size(): number {
    return this.items.length;
  }

  push(event: StreamEvent): void {
    if (this.closed) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      return resolve({ value: event, done: false });
    }
    const last = this.items.at(-1);
    // A reset drops the text before it, which this reader has not read yet anyway.
    if (this.items.length >= SEPARATE_EVENTS_KEPT && last && !last.done && !event.done) return joinEvents(last, event);
    this.items.push({ ...event });
  }

  /** No more events after those queued (a `done`, or the subscriber left). */
  end(): void {
    this.closed = true;
    if (this.items.length === 0) this.release();
  }

  private release(): void {
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiting = resolve));
      },
      return: () => {
        this.items.length = 0;
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
