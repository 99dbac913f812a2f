/** One step of a generation as clients see it: text appended, in order, until `done`. */
export interface StreamEvent {
  messageId: string;
  seq: number;
  delta: string;
  done: boolean;
}

/** Where events are kept so that late subscribers can replay them. */
export interface ReplayStore {
  /**
   * Keeps the event for replay, then announces `payload` on `topic` of the live channel, in this
   * order (so whoever hears of it can read it back), in one step: one Redis round trip per event.
   */
  appendAndAnnounce(event: StreamEvent, topic: string, payload: string): Promise<void>;
  read(messageId: string): Promise<StreamEvent[]>;
  close(): Promise<void>;
}

/** Fan-out of live events (and stop requests) to every instance. */
export interface LiveChannel {
  publish(topic: string, payload: string): Promise<void>;
  /** Resolves once the subscription is active, so nothing published afterwards is missed. */
  subscribe(topic: string, handler: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const eventTopic = (messageId: string) => `stream:${messageId}`;
const STOP_TOPIC = 'stop-generation';

/**
 * Ordered, replayable token streams. Publishing appends to the replay store before notifying,
 * and subscribing listens before reading the store, so a subscriber joining at any moment gets
 * every event exactly once (duplicates from the overlap are dropped by `seq`).
 *
 * Subscribers of a stream published by this instance are handed its events directly, once they
 * are appended, instead of hearing them back from the live channel: on Redis that saves each
 * event a pub/sub message in and its parsing. Other instances follow it through the channel.
 */
export class StreamHub {
  /** Streams published here (until their `done`), with their local subscribers. */
  private readonly publishedHere = new Map<string, Set<(event: StreamEvent) => void>>();

  constructor(
    private readonly store: ReplayStore,
    private readonly channel: LiveChannel,
  ) {}

  /** Marks a stream as published by this instance, before its first event, so its subscribers here follow it directly. */
  publishHere(messageId: string): void {
    if (!this.publishedHere.has(messageId)) this.publishedHere.set(messageId, new Set());
  }

  /** Ends local publishing of a stream (after its `done`, or when it could not be published). */
  stopPublishingHere(messageId: string): void {
    this.publishedHere.delete(messageId);
  }

  async publish(event: StreamEvent): Promise<void> {
    await this.store.appendAndAnnounce(event, eventTopic(event.messageId), JSON.stringify(event));
    const followers = this.publishedHere.get(event.messageId);
    if (!followers) return;
    for (const follower of followers) follower(event);
    if (event.done) this.publishedHere.delete(event.messageId);
  }

  /**
   * Replays what was generated, then follows live until the `done` event. `whenNothingBuffered`
   * supplies the events of a message whose buffer has expired (it finished long ago).
   */
  subscribe(messageId: string, whenNothingBuffered: () => Promise<StreamEvent[] | null>): AsyncGenerator<StreamEvent> {
    const queue = new AsyncQueue<StreamEvent>();
    const events = this.follow(messageId, queue, whenNothingBuffered);
    // An async generator's return() waits while the generator awaits the next live event, which
    // may never come (a client leaving a stalled stream). Ending the queue first lets it finish.
    const returnEvents = events.return.bind(events);
    events.return = (value) => {
      queue.end();
      return returnEvents(value);
    };
    return events;
  }

  private async *follow(
    messageId: string,
    queue: AsyncQueue<StreamEvent>,
    whenNothingBuffered: () => Promise<StreamEvent[] | null>,
  ): AsyncGenerator<StreamEvent> {
    const followers = this.publishedHere.get(messageId);
    const unsubscribe = followers
      ? followLocally(followers, (event) => queue.push(event))
      : await this.channel.subscribe(eventTopic(messageId), (payload) => queue.push(JSON.parse(payload)));
    try {
      const buffered = await this.store.read(messageId);
      const pending = buffered.length > 0 ? buffered : ((await whenNothingBuffered()) ?? []);
      let lastSeq = 0;
      for (const event of pending) {
        if (event.seq <= lastSeq) continue;
        lastSeq = event.seq;
        yield event;
        if (event.done) return;
      }
      for await (const event of queue) {
        if (event.seq <= lastSeq) continue;
        lastSeq = event.seq;
        yield event;
        if (event.done) return;
      }
    } finally {
      queue.end();
      await unsubscribe();
    }
  }

  /** What the replay buffer holds for a message (recovery finishes a stream from it). */
  buffered(messageId: string): Promise<StreamEvent[]> {
    return this.store.read(messageId);
  }

  /** Asks whichever instance runs the generation to stop it. */
  requestStop(messageId: string): Promise<void> {
    return this.channel.publish(STOP_TOPIC, messageId);
  }

  onStopRequested(handler: (messageId: string) => void): Promise<() => Promise<void>> {
    return this.channel.subscribe(STOP_TOPIC, handler);
  }

  async close(): Promise<void> {
    await this.channel.close();
    await this.store.close();
  }
}

function followLocally(followers: Set<(event: StreamEvent) => void>, follower: (event: StreamEvent) => void) {
  followers.add(follower);
  return async () => void followers.delete(follower);
}

/** A minimal push-to-pull queue: producers push, one consumer iterates. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiting?: (result: IteratorResult<T>) => void;
  private ended = false;

  push(item: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  end(): void {
    this.ended = true;
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiting = resolve));
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
