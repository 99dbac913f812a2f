import { Redis } from 'ioredis';
import { connectionFailureReason, StartupError } from '../errors.js';

/**
 * The Redis clients of an instance, created once and handed to what needs them: a command client,
 * one for replay writes and a subscriber for the stream bus, and one for rate-limit counters that fails fast when Redis
 * is away (no offline queue), so requests are then served without counters rather than held up.
 *
 * The stream clients keep a command through a short outage (a Redis restart): it waits for the
 * reconnection for about 10 s (STREAM_COMMAND_RETRIES reconnection attempts) before it fails, and
 * the hub's replay writer retries beyond that by itself.
 */
export async function connectRedis(url: string) {
  // disableClientInfo: with ioredis >= 5.9 a subscriber created without it receives nothing.
  const options = {
    disableClientInfo: true,
    maxRetriesPerRequest: STREAM_COMMAND_RETRIES,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000),
  } as const;
  // Auto-pipelining: the commands that many streams issue in the same tick share one write.
  const commands = new Redis(url, { ...options, enableAutoPipelining: true });
  // The replay writes: each is written to the socket when it is issued (no auto-pipelining, which
  // holds commands while an earlier pipeline is unanswered), before a client here gets its events.
  const replayWrites = new Redis(url, options);
  const subscriber = new Redis(url, options);
  const rateLimits = new Redis(url, {
    disableClientInfo: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
  });
  const clients = [commands, replayWrites, subscriber, rateLimits];
  // Connection errors are retried by ioredis; failed commands surface to their callers.
  for (const client of clients) client.on('error', () => {});
  // Connected before serving, so the first requests are counted and streamed too. At start-up an
  // unreachable Redis is a configuration problem: refuse at its first error instead of retrying forever.
  try {
    await Promise.all(clients.map((client) => readyOrFirstError(client)));
  } catch (error) {
    for (const client of clients) client.disconnect();
    const { host, port } = commands.options;
    throw new StartupError(`REDIS_URL: cannot connect to Redis at ${host}:${port} (${connectionFailureReason(error)})`);
  }
  return {
    commands,
    replayWrites,
    subscriber,
    rateLimits,
    async close() {
      // quit() after unsubscribing; disconnect() in the middle of an unsubscribe crashes ioredis.
      // A client whose Redis has just gone may still say 'ready': its goodbyes get a short wait, then it is cut.
      if (subscriber.status === 'ready') await withinCloseWait(subscriber.unsubscribe());
      await Promise.all(
        clients.map(async (client) => {
          if (client.status === 'ready') await withinCloseWait(client.quit());
          client.disconnect();
        }),
      );
    },
  };
}

const REDIS_CLOSE_WAIT_MS = 1_000;

/** Waits for a closing command, but not for a Redis that is away (commands wait for it about 10 s). */
async function withinCloseWait(command: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, REDIS_CLOSE_WAIT_MS)));
  await Promise.race([command.catch(() => {}), waited]);
  clearTimeout(timer);
}

const STREAM_COMMAND_RETRIES = 14;

/** Resolves once the client is ready; rejects with its first error (ioredis bounds a connect attempt with connectTimeout). */
function readyOrFirstError(client: Redis): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      client.off('ready', ready);
      reject(error);
    };
    const ready = () => {
      client.off('error', fail);
      resolve();
    };
    client.once('ready', ready);
    client.once('error', fail);
  });
}
