import type { Logger } from '../logger.js';
import { LocalStream } from './local-stream.js';
import { ReplayWriter } from './replay-writer.js';
import { StreamFollower, type StoredReply } from './stream-follower.js';

/** One step of a generation as clients see it: text appended, in order, until `done`. */
export interface StreamEvent {
  messageId: string;
  seq: number;
  delta: string;
  done: boolean;
  /** Characters of the reply before this delta, when the publisher knows it (a gap is then filled from a checkpoint). */
  offset?: number;
  /** The first seq this event covers, when it stands for several (a slow subscriber's merged events, a filled gap). */
  firstSeq?: number;
  /**
   * The text received so far is dropped and this delta starts the reply anew (at offset 0): the
   * reply is being generated again elsewhere after its provider failed mid-way.
   */
  reset?: boolean;
  /** Pieces of the tool calls the model writes, in order (none when the event only carries text). */
  toolCallDeltas?: ToolCallDelta[];
}

/** A piece of a tool call: the call at `index` begins with its id and name, then its arguments come in pieces. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  name?: string;
  argumentsDelta: string;
}

/**
 * Appends tool-call pieces to a list, in order: a piece that only carries more arguments of the
 * call the last one belongs to is joined to it, so joined events stay as small as their text.
 */
export function appendToolCallDeltas(list: ToolCallDelta[], more: readonly ToolCallDelta[]): ToolCallDelta[] {
  for (const delta of more) {
    const last = list.at(-1);
    if (last && last.index === delta.index && delta.id === undefined && delta.name === undefined) {
      list[list.length - 1] = { ...last, argumentsDelta: last.argumentsDelta + delta.argumentsDelta };
    } else {
      list.push({ ...delta });
    }
  }
  return list;
}

/**
 * Joins `event` into `into`, the event before it (which the caller owns): its text is appended,
 * its tool-call pieces joined in order, its seq taken, and `firstSeq` says where `into` began.
 * A reset drops what `into` held. Arrays are replaced, never changed, as other events may share them.
 */
export function joinEvents(into: StreamEvent, event: StreamEvent): void {
  into.firstSeq ??= into.seq;
  into.seq = event.seq;
  if (event.reset) {
    into.reset = true;
    into.delta = event.delta;
    into.offset = event.offset;
    into.toolCallDeltas = event.toolCallDeltas && [...event.toolCallDeltas];
  } else {
    into.delta += event.delta;
    if (event.toolCallDeltas) into.toolCallDeltas = appendToolCallDeltas([...(into.toolCallDeltas ?? [])], event.toolCallDeltas);
  }
  if (!into.toolCallDeltas?.length) delete into.toolCallDeltas;
}

/** Where events are kept so that subscribers on other instances, and recovery, can replay them. */
export interface ReplayStore {
  /**
   * Keeps each event for replay, then announces it on its stream's topic of the live channel
   * (so whoever hears of it can read it back), in order, in one round trip for all of them.
   * An event whose seq its stream already holds is skipped, so a retry cannot duplicate it.
   */
  append(events: readonly StreamEvent[]): Promise<void>;
  read(messageId: string): Promise<StreamEvent[]>;
  /** Drops a stream's replay, so that later subscribers read the stored message instead. */
  discard(messageId: string): Promise<void>;
  close(): Promise<void>;
}

/** Fan-out of live events (and stop requests) to every instance. */
export interface LiveChannel {
  publish(topic: string, payload: string): Promise<void>;
  /** Resolves once the subscription is active, so nothing published afterwards is missed. */
  subscribe(topic: string, handler: (payload: string) => void): Promise<() => Promise<void>>;
  /** Calls `listener` each time the channel is back after losing its connection (what was published meanwhile is lost). */
  onReconnected(listener: () => void): () => void;
  close(): Promise<void>;
}

export const eventTopic = (messageId: string) => `stream:${messageId}`;
const STOP_TOPIC = 'stop-generation';

// How long closing waits for the replay store to take what is left (a Redis that is away holds it longer).
const CLOSE_WAIT_MS = 1_000;

/**
 * Ordered, replayable token streams. A stream published here is held in memory while it runs
 * (see LocalStream): its subscribers here replay and follow it from there, never waiting for a
 * Redis round trip. Each tick's events go to the replay store in one call, and to the
 * subscribers here right after it was issued (see ReplayWriter). They reach the other instances
 * through the store's announcements: a subscriber there listens before reading the store, so,
 * joining at any moment, it gets every event exactly once (duplicates from the overlap are
 * dropped by `seq`). What the store or the channel lost is made good by each subscriber (see
 * StreamFollower).
 */
export class StreamHub {
  private readonly publishedHere = new Map<string, LocalStream>();
  private readonly writer: ReplayWriter;
  private readonly followers = new Set<StreamFollower>();
  /** One timer for every subscriber here, not one each: thousands of streams share its wake-ups. */
  private readonly ticks: NodeJS.Timeout;

  /**
   * `idleCheckMs`: how often a subscriber that hears nothing looks for what it may have missed (a lost `done`).
   * `retryWritesForMs`: how long events the replay store refuses are sent again before they are given up.
   */
  constructor(
    private readonly store: ReplayStore,
    private readonly channel: LiveChannel,
    options: { idleCheckMs: number; retryWritesForMs: number; logger: Logger },
  ) {
    this.writer = new ReplayWriter(store, { retryForMs: options.retryWritesForMs, logger: options.logger });
    this.ticks = setInterval(() => {
      for (const follower of this.followers) follower.tick();
    }, options.idleCheckMs);
    this.ticks.unref();
  }

  /**
   * Marks a stream as published by this instance, before its first event, so its subscribers
   * here follow it in memory. Returns the stream's publish: it never waits and never fails.
   */
  publishHere(messageId: string): (event: StreamEvent) => void {
    let local = this.publishedHere.get(messageId);
    if (!local?.running) {
      local = new LocalStream();
      this.publishedHere.set(messageId, local);
    }
    const stream = local;
    const deliver = (event: StreamEvent) => stream.publish(event);
    return (event) => {
      if (!stream.accept(event)) return;
      this.writer.append(event, deliver);
      if (event.done) this.forgetOnceStored(messageId, stream);
    };
  }

  /** Ends local publishing of a stream (after its `done`, or when it could not be published). */
  stopPublishingHere(messageId: string): void {
    const stream = this.publishedHere.get(messageId);
    if (!stream) return;
    stream.end();
    this.forgetOnceStored(messageId, stream);
  }

  /**
   * An ended stream is replayed from here until the store has all of it: a subscriber joining in
   * between would find neither. From then on, subscribers read the store, or the stored message.
   */
  private forgetOnceStored(messageId: string, stream: LocalStream): void {
    void this.writer.written(messageId).then(() => {
      if (this.publishedHere.get(messageId) === stream) this.publishedHere.delete(messageId);
    });
  }

  /** Publishes an event: through the stream's local record when it is published here, else to the store directly. */
  async publish(event: StreamEvent): Promise<void> {
    if (this.publishedHere.has(event.messageId)) return this.publishHere(event.messageId)(event);
    await this.store.append([event]);
  }

  /**
   * Replays what was generated, then follows live until the `done` event. `storedReply` reads
   * the persisted message: it fills what the store lacks and ends a stream whose `done` was lost.
   */
  subscribe(messageId: string, storedReply: () => Promise<StoredReply | null>): AsyncGenerator<StreamEvent> {
    const local = this.publishedHere.get(messageId);
    const follower = local
      ? new StreamFollower(messageId, async () => local.replay(), async () => (local.running ? null : storedReply()))
      : new StreamFollower(messageId, () => this.store.read(messageId), storedReply);
    const events = this.follow(messageId, follower, local);
    // An async generator's return() waits while the generator awaits the next live event, which
    // may never come (a client leaving a stalled stream). Ending the queue first lets it finish.
    const returnEvents = events.return.bind(events);
    events.return = (value) => {
      follower.close();
      return returnEvents(value);
    };
    return events;
  }

  /** Events waiting for their subscribers, over every subscriber of this instance. */
  get queuedEvents(): number {
    let queued = 0;
    for (const follower of this.followers) queued += follower.events.size;
    return queued;
  }

  /** Events published here that the replay store has not acknowledged yet. */
  get unstoredEvents(): number {
    return this.writer.backlog;
  }

  private async *follow(messageId: string, follower: StreamFollower, local: LocalStream | undefined): AsyncGenerator<StreamEvent> {
    const hear = (event: StreamEvent) => follower.hear(event);
    let unfollow: () => unknown;
    if (local) {
      unfollow = local.follow(hear);
    } else {
      const unsubscribe = await this.channel.subscribe(eventTopic(messageId), (payload) => hear(JSON.parse(payload) as StreamEvent));
      const stopHearingReconnects = this.channel.onReconnected(() => follower.reconnected());
      unfollow = () => {
        stopHearingReconnects();
        return unsubscribe();
      };
    }
    this.followers.add(follower);
    try {
      void follower.start({ publishedHere: local?.running === true });
      yield* follower.events;
    } finally {
      this.followers.delete(follower);
      follower.close();
      await unfollow();
    }
  }

  /** What the replay store holds for a message (recovery finishes a stream from it). */
  buffered(messageId: string): Promise<StreamEvent[]> {
    return this.store.read(messageId);
  }

  /** Forgets what a stream replays (its stored message was corrected since): later subscribers get the stored message. */
  async discardReplay(messageId: string): Promise<void> {
    // After the events still on their way: written later, they would bring the replay back.
    await this.writer.written(messageId);
    await this.store.discard(messageId);
  }

  /** Asks whichever instance runs the generation to stop it. */
  requestStop(messageId: string): Promise<void> {
    return this.channel.publish(STOP_TOPIC, messageId);
  }

  onStopRequested(handler: (messageId: string) => void): Promise<() => Promise<void>> {
    return this.channel.subscribe(STOP_TOPIC, handler);
  }

  async close(): Promise<void> {
    clearInterval(this.ticks);
    await this.writer.close(CLOSE_WAIT_MS);
    await this.channel.close();
    await this.store.close();
  }
}
