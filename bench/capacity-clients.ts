import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * The clients of the capacity benchmark, in a process of their own (started by capacity.ts) so
 * that reading 2,000 streams does not share an event loop with the server or the upstream.
 *
 * Protocol over the IPC channel: the parent sends `run`; this process opens the sockets and runs
 * a small warm-up, sends `warm`, waits for `go`, sends every message (the upstream holds the
 * replies meanwhile), sends `ramped`, gets `released` once the replies flow, reports `progress`
 * while they stream, and ends with `result`.
 */

export interface ClientConfig {
  url: string;
  /** One access token per socket: each user holds one socket, so the per-user caps stay low. */
  tokens: string[];
  prompt: string;
  reply: string;
  streams: number;
  warmupStreams: number;
  /** sendMessage calls in flight at once during the ramp. */
  sendConcurrency: number;
  chunkMs: number;
  /** Streams not done by then are reported incomplete. */
  timeoutMs: number;
}

export interface ClientResult {
  streams: number;
  sendFailures: number;
  firstSendError?: string;
  streamErrors: number;
  firstStreamError?: string;
  /** Ended with `done` and exactly the expected text. */
  complete: number;
  wrongText: number;
  charsDelivered: number;
  charsExpected: number;
  deltas: number;
  /** From the first send to the last sendMessage answer. */
  rampMs: number;
  /** From the release of the replies to the last `done`. */
  streamingMs: number;
  wallMs: number;
  /** Streams that had their first delta and not yet `done`, sampled every 100 ms. */
  peakRunning: number;
  sendP50Ms: number;
  sendP99Ms: number;
  /** From the release of the replies (the upstream waits 100 ms + up to one interval itself). */
  firstDeltaP50Ms: number;
  firstDeltaP99Ms: number;
  /** From the last delta to `done`: the server records the message before announcing its end. */
  doneP50Ms: number;
  doneP99Ms: number;
  gapP50Ms: number;
  gapP99Ms: number;
  gapMaxMs: number;
  gapsOver2x: number;
  streamsWithStall: number;
  cpuMs: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

export type ToClients = { type: 'run'; config: ClientConfig } | { type: 'go' } | { type: 'released' };
export type FromClients =
  | { type: 'warm' }
  | { type: 'ramped' }
  | { type: 'progress'; sent: number; running: number; done: number }
  | { type: 'result'; result: ClientResult }
  | { type: 'failed'; message: string };

const SEND = 'mutation($input: SendMessageInput!) { sendMessage(input: $input) { assistantMessage { id } } }';
const STREAM = 'subscription($id: ID!) { messageStream(messageId: $id) { seq delta done } }';
const SAMPLE_MS = 100;

/** What the client saw of one stream. */
interface Tracked {
  startedAt: number;
  sentAt?: number;
  firstAt?: number;
  lastAt?: number;
  doneAt?: number;
  text: string;
  deltas: number;
  maxGap: number;
  done: boolean;
  error?: string;
}

/** Gaps between deltas, in 0.1 ms bins: 1.5 M gaps do not need to be kept one by one. */
class GapHistogram {
  private readonly bins = new Uint32Array(600_000);
  count = 0;
  max = 0;
  /** Gaps longer than `stallMs`. */
  stalls = 0;

  constructor(private readonly stallMs: number) {}

  add(ms: number): void {
    if (ms > this.stallMs) this.stalls += 1;
    this.bins[Math.min(this.bins.length - 1, Math.floor(ms * 10))]! += 1;
    this.count += 1;
    this.max = Math.max(this.max, ms);
  }

  percentile(p: number): number {
    const target = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let bin = 0; bin < this.bins.length; bin += 1) {
      seen += this.bins[bin]!;
      if (seen >= target && seen > 0) return bin / 10;
    }
    return NaN;
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function send(message: FromClients): Promise<void> {
  return new Promise((resolve) => process.send!(message, undefined, {}, () => resolve()));
}

/** Opens one graphql-ws socket per token and waits until each is acknowledged. */
async function openSockets(url: string, tokens: string[]): Promise<Client[]> {
  return Promise.all(
    tokens.map(
      (token) =>
        new Promise<Client>((resolve, reject) => {
          const client: Client = createClient({
            url: url.replace(/^http/, 'ws'),
            webSocketImpl: WebSocket,
            connectionParams: { authorization: `Bearer ${token}` },
            lazy: false,
            retryAttempts: 0,
            onNonLazyError: reject,
            on: { connected: () => resolve(client) },
          });
        }),
    ),
  );
}

/** One sendMessage over HTTP (fetch keeps its connections alive); returns the assistant message id. */
async function sendMessage(config: ClientConfig, token: string): Promise<string> {
  const response = await fetch(config.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: SEND, variables: { input: { content: config.prompt, model: 'gpt-4o-mini' } } }),
  });
  const body = (await response.json()) as { data?: { sendMessage: { assistantMessage: { id: string } } }; errors?: unknown[] };
  if (!body.data || body.errors?.length) throw new Error(JSON.stringify(body.errors ?? body));
  return body.data.sendMessage.assistantMessage.id;
}

/**
 * Runs `count` streams: sends ramp up `sendConcurrency` at a time, and each stream follows its
 * reply on socket `i % sockets` (round robin, so consecutive sends belong to different users and
 * do not queue on one user's row lock). Resolves when every stream ended or the timeout passed.
 */
async function runStreams(
  config: ClientConfig,
  clients: Client[],
  count: number,
  gaps: GapHistogram | undefined,
  hooks: { onRamped?: () => Promise<void>; onSample?: (tracked: Tracked[], sent: number) => void } = {},
): Promise<{ tracked: Tracked[]; rampMs: number; endedAt: number; sendFailures: number; firstSendError?: string }> {
  const tracked: Tracked[] = [];
  let next = 0;
  let sent = 0;
  let sendFailures = 0;
  let firstSendError: string | undefined;
  let settle!: () => void;
  const allEnded = new Promise<void>((resolve) => (settle = resolve));
  let ended = 0;
  const end = () => {
    ended += 1;
    if (ended === count) settle();
  };

  const follow = (stream: Tracked, client: Client, messageId: string) => {
    client.subscribe<{ messageStream: { delta: string; done: boolean } }>(
      { query: STREAM, variables: { id: messageId } },
      {
        next: (result) => {
          const event = result.data?.messageStream;
          if (!event) {
            stream.error ??= JSON.stringify(result.errors);
            return;
          }
          const now = performance.now();
          if (event.delta) {
            if (stream.lastAt !== undefined) {
              const gap = now - stream.lastAt;
              gaps?.add(gap);
              stream.maxGap = Math.max(stream.maxGap, gap);
            }
            stream.firstAt ??= now;
            stream.lastAt = now;
            stream.text += event.delta;
            stream.deltas += 1;
          }
          if (event.done) {
            stream.done = true;
            stream.doneAt = now;
          }
        },
        error: (error) => {
          stream.error ??= error instanceof Error ? error.message : JSON.stringify(error);
          end();
        },
        complete: end,
      },
    );
  };

  const sender = async () => {
    while (next < count) {
      const index = next++;
      const socket = index % clients.length;
      const stream: Tracked = { startedAt: performance.now(), text: '', deltas: 0, maxGap: 0, done: false };
      tracked.push(stream);
      try {
        const messageId = await sendMessage(config, config.tokens[socket]!);
        stream.sentAt = performance.now();
        sent += 1;
        follow(stream, clients[socket]!, messageId);
      } catch (error) {
        sendFailures += 1;
        firstSendError ??= (error as Error).message;
        stream.error = 'send failed';
        end();
      }
    }
  };

  const started = performance.now();
  const { onSample } = hooks;
  const sampler = onSample && setInterval(() => onSample(tracked, sent), SAMPLE_MS);
  await Promise.all(Array.from({ length: Math.min(config.sendConcurrency, count) }, sender));
  const rampMs = performance.now() - started;
  await hooks.onRamped?.();
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, config.timeoutMs).unref());
  await Promise.race([allEnded, timeout]);
  const endedAt = performance.now();
  if (sampler) clearInterval(sampler);
  return { tracked, rampMs, endedAt, sendFailures, firstSendError };
}

function summarize(
  config: ClientConfig,
  run: Awaited<ReturnType<typeof runStreams>>,
  gaps: GapHistogram,
  peakRunning: number,
  wallMs: number,
  releasedAt: number,
): Omit<ClientResult, 'cpuMs' | 'loopDelayP99Ms' | 'loopDelayMaxMs'> {
  const { tracked } = run;
  const stallMs = 2 * config.chunkMs;
  const sentStreams = tracked.filter((t) => t.sentAt !== undefined);
  const withDelta = tracked.filter((t) => t.firstAt !== undefined);
  const finished = withDelta.filter((t) => t.doneAt !== undefined);
  const streamErrors = tracked.filter((t) => t.error && t.error !== 'send failed');
  return {
    streams: config.streams,
    sendFailures: run.sendFailures,
    firstSendError: run.firstSendError,
    streamErrors: streamErrors.length,
    firstStreamError: streamErrors[0]?.error,
    complete: tracked.filter((t) => t.done && t.text === config.reply).length,
    wrongText: tracked.filter((t) => t.done && t.text !== config.reply).length,
    charsDelivered: tracked.reduce((sum, t) => sum + t.text.length, 0),
    charsExpected: config.streams * config.reply.length,
    deltas: tracked.reduce((sum, t) => sum + t.deltas, 0),
    rampMs: run.rampMs,
    streamingMs: run.endedAt - releasedAt,
    wallMs,
    peakRunning,
    sendP50Ms: percentile(sentStreams.map((t) => t.sentAt! - t.startedAt), 50),
    sendP99Ms: percentile(sentStreams.map((t) => t.sentAt! - t.startedAt), 99),
    firstDeltaP50Ms: percentile(withDelta.map((t) => t.firstAt! - releasedAt), 50),
    firstDeltaP99Ms: percentile(withDelta.map((t) => t.firstAt! - releasedAt), 99),
    doneP50Ms: percentile(finished.map((t) => t.doneAt! - t.lastAt!), 50),
    doneP99Ms: percentile(finished.map((t) => t.doneAt! - t.lastAt!), 99),
    gapP50Ms: gaps.percentile(50),
    gapP99Ms: gaps.percentile(99),
    gapMaxMs: gaps.max,
    gapsOver2x: gaps.stalls,
    streamsWithStall: tracked.filter((t) => t.maxGap > stallMs).length,
  };
}

async function main(config: ClientConfig): Promise<void> {
  const clients = await openSockets(config.url, config.tokens);
  try {
    // A few streams first, so that the server's idle memory is measured after its code paths warmed up.
    if (config.warmupStreams > 0) await runStreams(config, clients, config.warmupStreams, undefined);
    await send({ type: 'warm' });
    await new Promise<void>((resolve) => process.once('message', () => resolve()));

    const gaps = new GapHistogram(2 * config.chunkMs);
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    let cpuBefore = process.cpuUsage();
    const started = performance.now();
    let peakRunning = 0;
    let releasedAt = NaN;
    const run = await runStreams(config, clients, config.streams, gaps, {
      onRamped: async () => {
        const released = new Promise<void>((resolve) => process.once('message', () => resolve()));
        await send({ type: 'ramped' });
        await released;
        releasedAt = performance.now();
        // CPU and loop delay count from here: the streaming phase.
        cpuBefore = process.cpuUsage();
        loopDelay.enable();
      },
      onSample: (tracked, sent) => {
        const running = tracked.filter((t) => t.firstAt !== undefined && !t.done).length;
        peakRunning = Math.max(peakRunning, running);
        void send({ type: 'progress', sent, running, done: tracked.filter((t) => t.done).length });
      },
    });
    const wallMs = performance.now() - started;
    loopDelay.disable();
    const cpu = process.cpuUsage(cpuBefore);
    const result: ClientResult = {
      ...summarize(config, run, gaps, peakRunning, wallMs, releasedAt),
      cpuMs: (cpu.user + cpu.system) / 1000,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
    };
    await send({ type: 'result', result });
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
  }
}

// Orphaned (the parent died), this process must not live on.
process.once('disconnect', () => process.exit(1));
process.once('message', (message: ToClients) => {
  if (message.type !== 'run') return;
  main(message.config)
    .catch((error: unknown) => send({ type: 'failed', message: (error as Error).stack ?? String(error) }))
    .finally(() => process.disconnect());
});
