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

/** Where events are kept so that late subscribers can replay them. */
export interface ReplayStore {
  /**
   * Keeps the event for replay, then announces `payload` on `topic` of the live channel, in this
   * order (so whoever hears of it can read it back), in one step: one Redis round trip per event.
   * An event whose seq the store already holds is ignored, so a retry cannot duplicate it.
   */
  appendAndAnnounce(event: StreamEvent, topic: string, payload: string): Promise<void>;
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

const eventTopic = (messageId: string) => `stream:${messageId}`;
const STOP_TOPIC = 'stop-generation';

/**
 * Ordered, replayable token streams. Publishing appends to the replay store before notifying,
 * and subscribing listens before reading the store, so a subscriber joining at any moment gets
 * every event exactly once (duplicates from the overlap are dropped by `seq`). What the store
 * or the channel lost is made good by each subscriber (see StreamFollower).
 *
 * Subscribers of a stream published by this instance are handed its events directly, once they
 * are appended, instead of hearing them back from the live channel: on Redis that saves each
 * event a pub/sub message in and its parsing. Other instances follow it through the channel.
 */
export class StreamHub {
  /** Streams published here (until their `done`), with their local subscribers. */
  private readonly publishedHere = new Map<string, Set<(event: StreamEvent) => void>>();
  private readonly followers = new Set<StreamFollower>();
  /** One timer for every subscriber here, not one each: thousands of streams share its wake-ups. */
  private readonly ticks: NodeJS.Timeout;

  /** `idleCheckMs`: how often a subscriber that hears nothing looks for what it may have missed (a lost `done`). */
  constructor(
    private readonly store: ReplayStore,
    private readonly channel: LiveChannel,
    options: { idleCheckMs: number },
  ) {
    this.ticks = setInterval(() => {
      for (const follower of this.followers) follower.tick();
    }, options.idleCheckMs);
    this.ticks.unref();
  }

  /** Marks a stream as published by this instance, before its first event, so its subscribers here follow it directly. */
  publishHere(messageId: string): void {
    if (!this.publishedHere.has(messageId)) this.publishedHere.set(messageId, new Set());
  }

  /** Ends local publishing of a stream (after its `done`, or when it could not be published). */
  stopPublishingHere(messageId: string): void {
    this.publishedHere.delete(messageId);
  }

  async publish(event: StreamEvent): Promise<void> {
    const followers = this.publishedHere.get(event.messageId);
    try {
      await this.store.appendAndAnnounce(event, eventTopic(event.messageId), JSON.stringify(event));
    } catch (error) {
      // The message is final when its `done` is published: the subscribers here end with it even
      // if the store did not take it (they fill any gap from the stored message).
      if (event.done) this.handToFollowers(event, followers);
      throw error;
    }
    this.handToFollowers(event, followers);
  }

  private handToFollowers(event: StreamEvent, followers: Set<(event: StreamEvent) => void> | undefined): void {
    if (!followers) return;
    for (const follower of followers) follower(event);
    if (event.done) this.publishedHere.delete(event.messageId);
  }

  /**
   * Replays what was generated, then follows live until the `done` event. `storedReply` reads
   * the persisted message: it fills what the store lacks and ends a stream whose `done` was lost.
   */
  subscribe(messageId: string, storedReply: () => Promise<StoredReply | null>): AsyncGenerator<StreamEvent> {
    const follower = new StreamFollower(messageId, this.store, storedReply);
    const events = this.follow(messageId, follower);
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

  private async *follow(messageId: string, follower: StreamFollower): AsyncGenerator<StreamEvent> {
    const hear = (event: StreamEvent) => follower.hear(event);
    const localFollowers = this.publishedHere.get(messageId);
    const unsubscribe = localFollowers
      ? followLocally(localFollowers, hear)
      : await this.channel.subscribe(eventTopic(messageId), (payload) => hear(JSON.parse(payload) as StreamEvent));
    const stopHearingReconnects = this.channel.onReconnected(() => follower.reconnected());
    this.followers.add(follower);
    try {
      void follower.start({ publishedHere: localFollowers !== undefined });
      yield* follower.events;
    } finally {
      this.followers.delete(follower);
      stopHearingReconnects();
      follower.close();
      await unsubscribe();
    }
  }

  /** What the replay buffer holds for a message (recovery finishes a stream from it). */
  buffered(messageId: string): Promise<StreamEvent[]> {
    return this.store.read(messageId);
  }

  /** Forgets what a stream replays (its stored message was corrected since): later subscribers get the stored message. */
  discardReplay(messageId: string): Promise<void> {
    return this.store.discard(messageId);
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
    await this.channel.close();
    await this.store.close();
  }
}

function followLocally(followers: Set<(event: StreamEvent) => void>, follower: (event: StreamEvent) => void) {
  followers.add(follower);
  return async () => void followers.delete(follower);
}
