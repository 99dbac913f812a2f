import type { Redis } from 'ioredis';
import { eventTopic, type LiveChannel, type ReplayStore, type StreamEvent } from './stream-hub.js';

// Finished streams stay replayable this long; after that the persisted message is the source.
export const REPLAY_TTL_SECONDS = 15 * 60;

type AppendAndAnnounce = {
  appendAndAnnounce(keyCount: number, ...keysThenArgs: Array<string | number>): Promise<unknown>;
};

/** Single-instance mode: replay buffers and fan-out in this process. */
export function createInProcessTransport(): { store: ReplayStore; channel: LiveChannel } {
  const buffers = new Map<string, { events: StreamEvent[]; expiry?: NodeJS.Timeout }>();
  const handlers = new Map<string, Set<(payload: string) => void>>();
  const channel: LiveChannel = {
    async publish(topic, payload) {
      for (const handler of handlers.get(topic) ?? []) handler(payload);
    },
    async subscribe(topic, handler) {
      const set = handlers.get(topic) ?? new Set();
      handlers.set(topic, set);
      set.add(handler);
      return async () => {
        set.delete(handler);
        if (set.size === 0) handlers.delete(topic);
      };
    },
    // Nothing in process can lose its connection.
    onReconnected() {
      return () => {};
    },
    async close() {
      handlers.clear();
    },
  };
  return {
    channel,
    store: {
      async append(events) {
        for (const event of events) {
          const buffer = buffers.get(event.messageId) ?? { events: [] };
          buffers.set(event.messageId, buffer);
          if ((buffer.events.at(-1)?.seq ?? 0) >= event.seq) continue;
          buffer.events.push(event);
          if (event.done) {
            buffer.expiry = setTimeout(() => buffers.delete(event.messageId), REPLAY_TTL_SECONDS * 1000);
            buffer.expiry.unref();
          }
          // Streams published here reach their subscribers directly: most topics have no listener.
          const topic = eventTopic(event.messageId);
          if (handlers.has(topic)) await channel.publish(topic, JSON.stringify(event));
        }
      },
      async read(messageId) {
        return [...(buffers.get(messageId)?.events ?? [])];
      },
      async discard(messageId) {
        clearTimeout(buffers.get(messageId)?.expiry);
        buffers.delete(messageId);
      },
      async close() {
        for (const buffer of buffers.values()) clearTimeout(buffer.expiry);
        buffers.clear();
      },
    },
  };
}

/**
 * Cluster mode: replay buffers are Redis lists, live events Redis pub/sub, so a subscriber on
 * one instance follows a generation running on another. Every key and channel starts with
 * `keyPrefix`, so deployments sharing a Redis stay apart (channels ignore database numbers).
 * Appends go through `replayWrites`, a client that writes each command to its socket when it is
 * issued (no auto-pipelining): the hub hands events to local subscribers right after.
 */
export function createRedisTransport(
  { commands, subscriber, replayWrites }: { commands: Redis; subscriber: Redis; replayWrites: Redis },
  keyPrefix: string,
): { store: ReplayStore; channel: LiveChannel } {
  // Per channel: its handlers, and the SUBSCRIBE they all wait for.
  const channels = new Map<string, { handlers: Set<(payload: string) => void>; active: Promise<unknown> }>();
  subscriber.on('message', (channel: string, payload: string) => {
    for (const handler of channels.get(channel)?.handlers ?? []) handler(payload);
  });
  const reconnectListeners = new Set<() => void>();
  let connectedBefore = subscriber.status === 'ready';
  subscriber.on('ready', () => {
    if (!connectedBefore) {
      connectedBefore = true;
      return;
    }
    // ioredis sends the re-SUBSCRIBEs right after emitting 'ready'; a PING queued behind them
    // answers once they are active, and only then is it safe to re-read what was missed.
    setImmediate(() => {
      subscriber
        .ping()
        .then(() => {
          for (const listener of reconnectListeners) listener();
        })
        .catch(() => {});
    });
  });
  const listKey = (messageId: string) => `${keyPrefix}replay:${messageId}`;
  // For each event (a key, and its payload, channel and seq): append, refresh the expiry and
  // announce. One script for a whole batch of streams: a round trip, and a script run, instead of
  // one per event. An event whose seq is already there (a retry of a batch whose reply was lost)
  // is neither kept nor announced twice. The seq is the first "seq" key of the stored JSON: in a
  // string, a quote is escaped, so only the event's own key matches, and no large text is decoded.
  replayWrites.defineCommand('appendAndAnnounce', {
    lua: `for i, key in ipairs(KEYS) do
  local payload, channel, seq = ARGV[3 * i - 1], ARGV[3 * i], tonumber(ARGV[3 * i + 1])
  local last = redis.call('LINDEX', key, -1)
  if not last or tonumber(string.match(last, '"seq":(%d+)')) < seq then
    redis.call('RPUSH', key, payload)
    redis.call('EXPIRE', key, ARGV[1])
    redis.call('PUBLISH', channel, payload)
  end
end
return 0`,
  });
  const appendAndAnnounce = (replayWrites as unknown as AppendAndAnnounce).appendAndAnnounce.bind(replayWrites);

  return {
    store: {
      async append(events) {
        const args: Array<string | number> = [REPLAY_TTL_SECONDS];
        for (const event of events) args.push(JSON.stringify(event), keyPrefix + eventTopic(event.messageId), event.seq);
        await appendAndAnnounce(events.length, ...events.map((event) => listKey(event.messageId)), ...args);
      },
      async read(messageId) {
        return (await commands.lrange(listKey(messageId), 0, -1)).map((e) => JSON.parse(e) as StreamEvent);
      },
      async discard(messageId) {
        await commands.del(listKey(messageId));
      },
      // The clients belong to the caller, which closes them.
      async close() {},
    },
    channel: {
      async publish(topic, payload) {
        await commands.publish(keyPrefix + topic, payload);
      },
      async subscribe(topic, handler) {
        const channel = keyPrefix + topic;
        let entry = channels.get(channel);
        if (!entry) {
          const created = { handlers: new Set<(payload: string) => void>(), active: subscriber.subscribe(channel) };
          // A refused SUBSCRIBE is forgotten at once: the next subscriber to the topic tries again.
          created.active.catch(() => {
            if (channels.get(channel) === created) channels.delete(channel);
          });
          channels.set(channel, created);
          entry = created;
        }
        const joined = entry;
        joined.handlers.add(handler);
        try {
          // Every subscriber waits for the SUBSCRIBE, also those that joined while it was on its way.
          await joined.active;
        } catch (error) {
          joined.handlers.delete(handler);
          throw error;
        }
        return async () => {
          joined.handlers.delete(handler);
          if (joined.handlers.size === 0 && channels.get(channel) === joined) {
            channels.delete(channel);
            // Not waited for: while Redis is away it would wait for the reconnection, and a
            // message that still arrives meanwhile finds no handler.
            subscriber.unsubscribe(channel).catch(() => {});
          }
        };
      },
      onReconnected(listener) {
        reconnectListeners.add(listener);
        return () => void reconnectListeners.delete(listener);
      },
      async close() {
        channels.clear();
        reconnectListeners.clear();
      },
    },
  };
}
