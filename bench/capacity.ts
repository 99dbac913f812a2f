import { record } from './goals.js';
import { LLMock } from '@copilotkit/aimock';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { trackChild } from '../test/helpers/leftovers.js';
import { ROOT } from '../test/helpers/processes.js';
import type { ClientConfig, ClientResult, FromClients, ToClients } from './capacity-clients.js';
import { cpuMsOf, PACED_FIRST_TOKEN_MS, registerBenchUser, startSwitchboard } from './harness.js';

/**
 * Capacity: how many paced streams one server process carries at once with every token delivered
 * and no stall (a gap between deltas over twice the chunk interval), and what each stream costs in
 * memory. The server, the clients (capacity-clients.ts) and the upstream (aimock, in this process)
 * each have their own process: they share the machine's CPU, never an event loop.
 *
 * BENCH_CAPACITY_STREAMS: streams at once, a comma-separated list (default 2000 with
 * BENCH_ONLY=capacity, 200 in the full bench run, to keep that one quick).
 * BENCH_CAPACITY_CHUNK_MS: upstream chunk intervals, a list (default 20,100: a fast model, and one
 * emitting several tokens per chunk). BENCH_CAPACITY_SECONDS: how long each reply streams
 * (default 10). The replies are held until every send is answered, so all streams overlap
 * however long the ramp takes.
 */

const CHUNK_CHARS = 8;
/** Each user holds one socket with this many streams: the server's default per-connection cap. */
const STREAMS_PER_SOCKET = 20;
const SEND_CONCURRENCY = 50;
const WARMUP_STREAMS = 20;

interface Pace {
  chunkMs: number;
  prompt: string;
  reply: string;
}

interface Row {
  pace: Pace;
  streams: number;
  clients: ClientResult;
  server: { idleRssKb: number; peakRssKb: number; rampCpuMs: number; streamingCpuMs: number };
  upstream: { cpuMs: number; loopDelayP99Ms: number; loopDelayMaxMs: number };
}

export async function benchCapacity(): Promise<string> {
  const seconds = Number(process.env.BENCH_CAPACITY_SECONDS ?? 10);
  const defaultStreams = process.env.BENCH_ONLY === 'capacity' ? '2000' : '200';
  const streamLevels = numbers(process.env.BENCH_CAPACITY_STREAMS ?? defaultStreams);
  const paces = numbers(process.env.BENCH_CAPACITY_CHUNK_MS ?? '20,100').map((chunkMs) => paceOf(chunkMs, seconds));
  const upstream = await startPacedUpstream(paces);
  const rows: Row[] = [];
  try {
    for (const pace of paces) {
      for (const streams of streamLevels) rows.push(await runRow(upstream, pace, streams));
    }
  } finally {
    await upstream.stop();
  }
  recordCapacityGoals(rows);
  return report(rows, seconds);
}

/** The goals read off the largest run at the fastest pace (the hardest one measured). */
function recordCapacityGoals(rows: Row[]): void {
  const fastest = Math.min(...rows.map((row) => row.pace.chunkMs));
  const hardest = rows.filter((row) => row.pace.chunkMs === fastest).sort((a, b) => b.streams - a.streams)[0];
  if (!hardest) return;
  const c = hardest.clients;
  record('capacityDelivered', (100 * c.charsDelivered) / c.charsExpected);
  record('capacityGaps', 100 * (1 - c.gapsOver2x / Math.max(1, c.deltas - c.complete)));
  record('capacityRss', (hardest.server.peakRssKb - hardest.server.idleRssKb) / Math.max(1, c.peakRunning));
}

function numbers(list: string): number[] {
  return list.split(',').map(Number).filter((n) => n > 0);
}

/** A reply of `seconds` worth of chunks at `chunkMs`, with a text that shows a lost or repeated chunk. */
function paceOf(chunkMs: number, seconds: number): Pace {
  const chunks = Math.ceil((seconds * 1000) / chunkMs);
  const reply = Array.from({ length: chunks }, (_, i) => `c${String(i).padStart(CHUNK_CHARS - 1, '0')}`).join('');
  return { chunkMs, prompt: `bench capacity ${chunkMs} ms`, reply };
}

interface PacedUpstream {
  baseUrl: string;
  /** Holds every reply before its first chunk until the returned function is called. */
  hold(): () => void;
  stop(): Promise<void>;
}

/**
 * aimock answering each pace's prompt with its reply: the first chunk after 100 ms, then one every
 * `chunkMs`. Replies can be held while the sends ramp up, so that every stream runs at once
 * however slowly the server takes the sends; released, each starts at a random point of one
 * interval, so the streams' chunks are spread over time as in steady traffic, not in lockstep.
 */
async function startPacedUpstream(paces: Pace[]): Promise<PacedUpstream> {
  const mock = new LLMock({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
  let gate = Promise.resolve();
  for (const pace of paces) {
    const respond = async () => {
      await gate;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * pace.chunkMs));
      return { content: pace.reply };
    };
    mock.on(
      { userMessage: pace.prompt },
      respond,
      { chunkSize: CHUNK_CHARS, streamingProfile: { ttft: PACED_FIRST_TOKEN_MS, tps: 1000 / pace.chunkMs } },
    );
  }
  await mock.start();
  return {
    baseUrl: `${mock.url}/v1`,
    hold: () => {
      let release!: () => void;
      gate = new Promise((resolve) => (release = resolve));
      return release;
    },
    stop: () => mock.stop(),
  };
}

/** One measurement on a fresh server, so that its idle memory is not what an earlier row left. */
async function runRow(upstream: PacedUpstream, pace: Pace, streams: number): Promise<Row> {
  const server = await startSwitchboard(upstream.baseUrl, {
    // Spread over one user per socket: per-user caps stay far from these.
    MAX_CONCURRENT_GENERATIONS: '1000',
    WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: String(STREAMS_PER_SOCKET),
    WS_MAX_CONNECTIONS_PER_IP: '100000',
    WS_MAX_CONNECTIONS_PER_USER: '100',
    // Held replies wait for their first chunk as long as the ramp of sends lasts.
    UPSTREAM_TIMEOUT_SECONDS: '900',
    GENERATION_MAX_SECONDS: '1800',
  });
  let clients: ChildProcess | undefined;
  try {
    const tokens = await registerUsers(server.url, Math.ceil(streams / STREAMS_PER_SOCKET));
    const config: ClientConfig = {
      url: server.url.toString(),
      tokens,
      prompt: pace.prompt,
      reply: pace.reply,
      streams,
      warmupStreams: Math.min(WARMUP_STREAMS, streams),
      sendConcurrency: SEND_CONCURRENCY,
      chunkMs: pace.chunkMs,
      // The reply's own duration, plus a generous margin for the ramp and a saturated machine.
      timeoutMs: pace.reply.length / CHUNK_CHARS * pace.chunkMs * 3 + 60_000,
    };
    clients = spawn(process.execPath, ['--import', 'tsx', 'bench/capacity-clients.ts'], {
      cwd: ROOT,
      env: process.env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = trackChild(clients);
    return await measure(clients, exited, config, server.pid, upstream, pace, streams);
  } finally {
    clients?.kill('SIGKILL');
    await server.stop();
  }
}

/** Registers `count` users, a few at a time (password hashing is deliberately slow). */
async function registerUsers(url: URL, count: number): Promise<string[]> {
  const tokens: string[] = [];
  let started = 0;
  const worker = async () => {
    for (; started < count; started += 1) tokens.push((await registerBenchUser(url)).accessToken);
  };
  await Promise.all(Array.from({ length: Math.min(8, count) }, worker));
  return tokens;
}

/**
 * Drives the clients through warm-up and the run, sampling the server's memory and CPU: idle
 * after the warm-up (sockets open, code paths loaded), then at every progress report. The
 * replies are held from the first send until the last one is answered; CPU is counted apart
 * for the ramp of sends and for the streaming.
 */
function measure(
  clients: ChildProcess,
  exited: Promise<unknown>,
  config: ClientConfig,
  serverPid: number,
  upstream: PacedUpstream,
  pace: Pace,
  streams: number,
): Promise<Row> {
  return new Promise<Row>((resolve, reject) => {
    let idleRssKb = 0;
    let peakRssKb = 0;
    const serverCpuAt = { go: 0, released: 0 };
    let upstreamCpuBefore = process.cpuUsage();
    let release = () => {};
    // The upstream's event loop is this one: its delay is how late aimock's chunk timers fire.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    void exited.then((status) => {
      release();
      reject(new Error(`the clients exited (${String(status)}) before reporting`));
    });
    clients.on('message', (message: FromClients) => {
      if (message.type === 'warm') {
        idleRssKb = rssKbOf(serverPid);
        serverCpuAt.go = cpuMsOf(serverPid);
        release = upstream.hold();
        clients.send({ type: 'go' } satisfies ToClients);
      } else if (message.type === 'ramped') {
        serverCpuAt.released = cpuMsOf(serverPid);
        upstreamCpuBefore = process.cpuUsage();
        loopDelay.enable();
        release();
        clients.send({ type: 'released' } satisfies ToClients);
      } else if (message.type === 'progress') {
        peakRssKb = Math.max(peakRssKb, rssKbOf(serverPid));
      } else if (message.type === 'failed') {
        release();
        reject(new Error(`the clients failed: ${message.message}`));
      } else {
        loopDelay.disable();
        const upstreamCpu = process.cpuUsage(upstreamCpuBefore);
        resolve({
          pace,
          streams,
          clients: message.result,
          server: {
            idleRssKb,
            peakRssKb: Math.max(peakRssKb, rssKbOf(serverPid)),
            rampCpuMs: serverCpuAt.released - serverCpuAt.go,
            streamingCpuMs: cpuMsOf(serverPid) - serverCpuAt.released,
          },
          upstream: {
            cpuMs: (upstreamCpu.user + upstreamCpu.system) / 1000,
            loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
            loopDelayMaxMs: loopDelay.max / 1e6,
          },
        });
      }
    });
    clients.send({ type: 'run', config } satisfies ToClients);
  });
}

/** Resident memory of a process, in kB, from /proc (Linux). */
function rssKbOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? NaN);
}

function report(rows: Row[], seconds: number): string {
  const lines = [
    `\n## Capacity: paced streams in one server process\n`,
    `Each reply streams for ~${seconds} s: its first chunk after ${PACED_FIRST_TOKEN_MS} ms, then one chunk of ` +
      `${CHUNK_CHARS} characters every interval. Clients in their own process, ${STREAMS_PER_SOCKET} streams per ` +
      `graphql-ws socket (one user each), sendMessage ${SEND_CONCURRENCY} at a time over HTTP keep-alive. The upstream ` +
      `holds every reply until the last send is answered, then releases them (each at a random point of one interval), ` +
      `so all streams overlap. Peak: streams that had their first delta and not yet \`done\`, sampled every 100 ms. ` +
      `Gaps between consecutive deltas of a stream (the server joins chunks into one delta while a publish is in ` +
      `flight, so a slow server shows as longer gaps); a stall is a gap over twice the interval. CPU and loop delays ` +
      `are for the streaming phase (from the release to the last \`done\`); RSS per stream is (peak − idle) / peak.\n`,
    '| interval ms | streams | peak at once | complete | chars delivered / expected | ramp s (sends/s) | sendMessage p50 / p99 ms | first delta after release p50 / p99 ms | gap p50 / p99 / max ms | `done` after last delta p50 / p99 ms | gaps > 2× | streams with a stall | errors |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map(deliveryLine),
    '',
    '| interval ms | streams | streaming s | deltas/s | server RSS idle → peak MB | RSS per stream KB | server CPU ms per send | server CPU streaming s (% of a core) | clients CPU % / loop delay p99, max ms | upstream CPU % / loop delay p99, max ms |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(resourceLine),
  ];
  return lines.join('\n');
}

function deliveryLine({ pace, streams, clients: c }: Row): string {
  const errors = [
    c.sendFailures ? `${c.sendFailures} sends failed: ${c.firstSendError?.slice(0, 120)}` : '',
    c.streamErrors ? `${c.streamErrors} streams failed: ${c.firstStreamError?.slice(0, 120)}` : '',
    c.wrongText ? `${c.wrongText} wrong texts` : '',
  ].filter(Boolean);
  return (
    `| ${pace.chunkMs} | ${streams} | ${c.peakRunning} | ${c.complete} / ${streams} | ${c.charsDelivered} / ${c.charsExpected} | ` +
    `${(c.rampMs / 1000).toFixed(1)} (${((streams * 1000) / c.rampMs).toFixed(0)}) | ${c.sendP50Ms.toFixed(0)} / ${c.sendP99Ms.toFixed(0)} | ` +
    `${c.firstDeltaP50Ms.toFixed(0)} / ${c.firstDeltaP99Ms.toFixed(0)} | ` +
    `${c.gapP50Ms.toFixed(1)} / ${c.gapP99Ms.toFixed(1)} / ${c.gapMaxMs.toFixed(0)} | ${c.doneP50Ms.toFixed(0)} / ${c.doneP99Ms.toFixed(0)} | ${c.gapsOver2x} | ${c.streamsWithStall} | ` +
    `${errors.join('; ') || 'none'} |`
  );
}

function resourceLine({ pace, streams, clients: c, server, upstream }: Row): string {
  const mb = (kb: number) => (kb / 1024).toFixed(0);
  const percentOfCore = (cpuMs: number) => ((100 * cpuMs) / c.streamingMs).toFixed(0);
  const perStreamKb = (server.peakRssKb - server.idleRssKb) / Math.max(1, c.peakRunning);
  return (
    `| ${pace.chunkMs} | ${streams} | ${(c.streamingMs / 1000).toFixed(1)} | ${(c.deltas / (c.streamingMs / 1000)).toFixed(0)} | ` +
    `${mb(server.idleRssKb)} → ${mb(server.peakRssKb)} | ${perStreamKb.toFixed(0)} | ${(server.rampCpuMs / streams).toFixed(1)} | ` +
    `${(server.streamingCpuMs / 1000).toFixed(1)} (${percentOfCore(server.streamingCpuMs)} %) | ` +
    `${percentOfCore(c.cpuMs)} % / ${c.loopDelayP99Ms.toFixed(0)}, ${c.loopDelayMaxMs.toFixed(0)} | ` +
    `${percentOfCore(upstream.cpuMs)} % / ${upstream.loopDelayP99Ms.toFixed(0)}, ${upstream.loopDelayMaxMs.toFixed(0)} |`
  );
}
