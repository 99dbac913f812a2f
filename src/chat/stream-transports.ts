import type { Redis } from 'ioredis';
import type { LiveChannel, ReplayStore, StreamEvent } from './stream-hub.js';

// Finished streams stay replayable this long; after that the persisted message is the source.
export const REPLAY_TTL_SECONDS = 15 * 60;

type AppendAndAnnounce = {
  appendAndAnnounce(key: string, event: string, ttlSeconds: number, channel: string): Promise<unknown>;
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
    async close() {
      handlers.clear();
    },
  };
  return {
    channel,
    store: {
      async appendAndAnnounce(event, topic, payload) {
        const buffer = buffers.get(event.messageId) ?? { events: [] };
        buffers.set(event.messageId, buffer);
        buffer.events.push(event);
        if (event.done) {
          buffer.expiry = setTimeout(() => buffers.delete(event.messageId), REPLAY_TTL_SECONDS * 1000);
          buffer.expiry.unref();
        }
        await channel.publish(topic, payload);
      },
      async read(messageId) {
        return [...(buffers.get(messageId)?.events ?? [])];
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
 * one instance follows a generation running on another.
 */
export function createRedisTransport(
  { commands, subscriber }: { commands: Redis; subscriber: Redis },
  keyPrefix = 'switchboard:',
): { store: ReplayStore; channel: LiveChannel } {
  const handlers = new Map<string, Set<(payload: string) => void>>();
  subscriber.on('message', (channel: string, payload: string) => {
    for (const handler of handlers.get(channel) ?? []) handler(payload);
  });
  const listKey = (messageId: string) => `${keyPrefix}replay:${messageId}`;
  // Append, refresh the expiry and announce: one command, atomic, and pipelined with the other
  // streams' commands of the same tick (the commands client auto-pipelines).
  commands.defineCommand('appendAndAnnounce', {
    numberOfKeys: 1,
    lua: `redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[1])`,
  });
  const appendAndAnnounce = (commands as unknown as AppendAndAnnounce).appendAndAnnounce.bind(commands);

  return {
    store: {
      async appendAndAnnounce(event, topic, payload) {
        await appendAndAnnounce(listKey(event.messageId), payload, REPLAY_TTL_SECONDS, keyPrefix + topic);
      },
      async read(messageId) {
        return (await commands.lrange(listKey(messageId), 0, -1)).map((e) => JSON.parse(e) as StreamEvent);
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
        const set = handlers.get(channel) ?? new Set();
        handlers.set(channel, set);
        set.add(handler);
        if (set.size === 1) await subscriber.subscribe(channel);
        return async () => {
          set.delete(handler);
          if (set.size === 0) {
            handlers.delete(channel);
            await subscriber.unsubscribe(channel).catch(() => {});
          }
        };
      },
      async close() {
        handlers.clear();
      },
    },
  };
}
